#!/usr/bin/env bash
# The NEON proof: cross-compiles the native kernel test (tests/native/kernel_test.cpp) for aarch64
# with the scalar and NEON kernel sets, statically, and runs it under qemu-user. Exits non-zero if
# the build or any check fails.
#
#   tests/native/run_neon_qemu.sh [BUILD_DIR] [TEST_ARGS...]     e.g. ... /tmp/neon --quick
#
# Needs Debian's g++-aarch64-linux-gnu and qemu-user (or qemu-user-static). Override the tools with
# AARCH64_CXX / QEMU_AARCH64. The flags mirror the top-level CMakeLists.txt: every target built from
# csrc/targets/kernels.cpp with -DFASTACT_TARGET_<NAME>, -ffp-contract=off -fno-math-errno, the
# scalar target without auto-vectorisation (NEON is the AArch64 baseline: no extra flag), and
# dispatch.cpp told which targets exist (-DFASTACT_HAVE_NEON). No OpenMP: parallel.cpp runs serial.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${TMPDIR:-/tmp}/fastact-neon-test
if [[ $# -gt 0 && $1 != -* ]]; then
  out=$1
  shift
fi

cxx=${AARCH64_CXX:-aarch64-linux-gnu-g++}
qemu=${QEMU_AARCH64:-$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)}
command -v "$cxx" >/dev/null || { echo "run_neon_qemu.sh: $cxx not found (apt-get install g++-aarch64-linux-gnu)" >&2; exit 2; }
[[ -n $qemu ]] || { echo "run_neon_qemu.sh: qemu-aarch64 not found (apt-get install qemu-user)" >&2; exit 2; }

mkdir -p "$out"
common=(-std=c++17 -O2 -Wall -ffp-contract=off -fno-math-errno -I"$root/csrc")

compile() {  # object source extra-flags...
  local obj=$1 src=$2
  shift 2
  "$cxx" "${common[@]}" "$@" -c "$src" -o "$out/$obj"
}

echo "== cross-compiling with $("$cxx" --version | head -n1)"
# Two jobs at a time (the machine is shared).
compile kernels_scalar.o "$root/csrc/targets/kernels.cpp" -DFASTACT_TARGET_SCALAR -fno-tree-vectorize &
compile kernels_neon.o "$root/csrc/targets/kernels.cpp" -DFASTACT_TARGET_NEON &
wait %1 && wait %2
compile dispatch.o "$root/csrc/dispatch.cpp" -DFASTACT_HAVE_NEON &
compile parallel.o "$root/csrc/parallel.cpp" &
wait %1 && wait %2
compile ops.o "$root/csrc/ops.cpp" &
compile kernel_test.o "$here/kernel_test.cpp" &
wait %1 && wait %2
exe=$out/fastact_kernel_test_aarch64
"$cxx" -static -o "$exe" "$out"/{kernel_test,dispatch,parallel,ops,kernels_scalar,kernels_neon}.o

# The NEON kernels must really be vector code: count fused multiply-adds on vector registers.
objdump=${cxx%g++}objdump
if command -v "$objdump" >/dev/null; then
  n=$("$objdump" -d "$out/kernels_neon.o" | grep -cE 'fmla[[:space:]]+v[0-9]+\.(4s|2d)' || true)
  echo "== kernels_neon.o: $n vector fmla instructions (.4s/.2d)"
  [[ $n -gt 0 ]] || { echo "run_neon_qemu.sh: no NEON vector code in kernels_neon.o" >&2; exit 1; }
fi

echo "== running under $qemu"
"$qemu" "$exe" "$@"
