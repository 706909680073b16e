#!/usr/bin/env bash
# Build fastact with AddressSanitizer + UndefinedBehaviorSanitizer and run the test suite under them.
#
#   1. a fresh venv under $WORK with numpy, pytest and hypothesis
#   2. `pip install <repo> -Ccmake.define.FASTACT_SANITIZE=ON -Ccmake.build-type=RelWithDebInfo
#      -Cbuild-dir=$WORK/build` into it (CMakeLists.txt adds -fsanitize=address,undefined; the source tree's
#      own build/ is not touched)
#   3. tests/ and pyproject.toml copied to $WORK/src and run from an empty directory (the source folder
#      fastact/ cannot shadow the instrumented install), with
#        LD_PRELOAD=$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libstdc++.so)
#                                                        ASan's runtime first, libstdc++ before _core loads
#        ASAN_OPTIONS=detect_leaks=0:...                 CPython's own allocations look like leaks at exit
#        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
#      Any sanitizer report fails the run: ASan aborts the process; UBSan halts on its first error.
#   4. the sanitizer reports (if any) are collected from the log and shown.
#
# usage: tools/run_sanitizers.sh [extra pytest arguments, e.g. -x or tests/test_hostile.py]
# environment:
#   PYTHON=python3       interpreter the venv is made from
#   CXX=g++              C++ compiler (its own libasan is preloaded; default g++)
#   WORK=/tmp/dir        scratch directory (default: a new /tmp/fastact-asan.XXXXXX, kept for the logs)
#   REUSE=1              keep an existing $WORK/venv with an instrumented build (skip steps 1-2)
#   PYTEST_ARGS="..."    extra pytest arguments (word-split), e.g. "-m 'not slow'"
#   FASTACT_SIMD=...     passed through: run the whole suite on one kernel set (the target fixture
#                        already runs each test on every supported set)
# Exits non-zero if the build fails, a test fails, or a sanitizer reports anything.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
export CXX="${CXX:-g++}"
WORK="${WORK:-$(mktemp -d /tmp/fastact-asan.XXXXXX)}"
VENV="$WORK/venv" SRC="$WORK/src" RUN="$WORK/run" LOGS="$WORK/logs"
mkdir -p "$WORK" "$LOGS"
T0=$SECONDS
say() { printf '%s\n' "$*"; }
die() { say "== RESULT: FAIL ($*)"; exit 1; }
pip_in() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP

ASAN_LIB="$("$CXX" -print-file-name=libasan.so)"
[[ -f "$ASAN_LIB" ]] || die "no ASan runtime for $CXX ($ASAN_LIB)"
# libstdc++ is preloaded too: python itself does not link it, and when it is loaded later (with _core) ASan's
# __cxa_throw interceptor finds no real __cxa_throw and aborts on the first C++ exception
# ("CHECK failed: asan_interceptors.cpp ... real___cxa_throw").
STDCXX_LIB="$("$CXX" -print-file-name=libstdc++.so)"
[[ -f "$STDCXX_LIB" ]] || die "no libstdc++.so for $CXX ($STDCXX_LIB)"
say "== fastact sanitizer run: $("$PYTHON" -c 'import platform; print("CPython", platform.python_version())'), $("$CXX" --version | head -n 1), work dir $WORK"

# ---- 1-2. venv and instrumented build -------------------------------------------------------------------
if [[ "${REUSE:-0}" == 1 && -x "$VENV/bin/python" ]]; then
  say "ok    reuse   $VENV"
else
  rm -rf "$VENV"
  t=$SECONDS
  "$PYTHON" -m venv "$VENV" || die "venv"
  pip_in install numpy pytest hypothesis >"$LOGS/deps.log" 2>&1 || { tail -n 20 "$LOGS/deps.log"; die "pip install numpy pytest hypothesis"; }
  if ! pip_in install -v "$ROOT" \
        -Ccmake.define.FASTACT_SANITIZE=ON -Ccmake.build-type=RelWithDebInfo \
        -Cbuild-dir="$WORK/build" >"$LOGS/build.log" 2>&1; then
    grep -v "^WARNING: Location 'file:" "$LOGS/build.log" | tail -n 30
    die "instrumented build (log $LOGS/build.log)"
  fi
  say "ok    build   FASTACT_SANITIZE=ON, RelWithDebInfo, into $VENV ($((SECONDS - t)) s)"
fi

# ---- 3. the suite from an empty directory ---------------------------------------------------------------
rm -rf "$SRC" "$RUN" && mkdir -p "$SRC" "$RUN"
for item in tests bench examples tools pyproject.toml; do  # never fastact/ nor csrc/
  [[ -e "$ROOT/$item" ]] && cp -r "$ROOT/$item" "$SRC/"
done
find "$SRC" -name __pycache__ -prune -exec rm -rf {} +
cd "$RUN" || die "cd $RUN"

# The installed module must be the instrumented one (read before LD_PRELOAD, which would put libasan in
# any ldd output).
core="$(ls "$VENV"/lib/python*/site-packages/fastact/_core*.so 2>/dev/null | head -n 1)"
[[ -n "$core" ]] || die "no fastact/_core*.so in $VENV"
needed="$(ldd "$core" 2>/dev/null)"
{ grep -q libasan <<<"$needed" && grep -q libubsan <<<"$needed"; } || die "$core is not linked against libasan and libubsan"
say "ok    core    ${core/#$VENV/<venv>} links libasan and libubsan"

export LD_PRELOAD="$ASAN_LIB:$STDCXX_LIB${LD_PRELOAD:+:$LD_PRELOAD}"
# detect_leaks=0: CPython and NumPy keep interned objects and caches until exit by design.
# allocator_may_return_null=1: an impossible allocation (tests ask NumPy for terabytes on purpose)
#   returns NULL -> MemoryError, as without ASan, instead of aborting.
# handle_segv=1 (default) makes a crash in a subprocess print an ASan report too.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

where="$("$VENV/bin/python" -c 'import sys, fastact; print(fastact.__file__, fastact.simd_targets()); sys.exit(not fastact.__file__.startswith(sys.prefix))' 2>&1)" \
  || die "fastact does not import from the venv under ASan: $where"
say "ok    import  ${where//$VENV/<venv>} (LD_PRELOAD=$LD_PRELOAD)"

t=$SECONDS
log="$LOGS/pytest.log"
# shellcheck disable=SC2086
# arguments naming tests/... are run from the copy: tools/run_sanitizers.sh tests/test_hostile.py -x
args=()
for a in "$@"; do [[ "$a" == tests/* ]] && args+=("$SRC/$a") || args+=("$a"); done
paths=("$SRC/tests")
for a in "${args[@]}"; do [[ "$a" == "$SRC"/tests/* ]] && paths=(); done
"$VENV/bin/python" -m pytest "${paths[@]}" -q -p no:cacheprovider -rfEs ${PYTEST_ARGS:-} "${args[@]}" >"$log" 2>&1
rc=$?
summary="$(grep -E '^=* ?[0-9]+ (passed|failed|error|errors|skipped|deselected)|no tests ran' "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//')"

# ---- 4. sanitizer reports -------------------------------------------------------------------------------
# Sanitizer output only (not test source quoted in a traceback): "==123==ERROR: AddressSanitizer: ...",
# "AddressSanitizer: CHECK failed", "SUMMARY: ...Sanitizer", UBSan's "file.cpp:12:3: runtime error: ...".
# Reports from subprocesses that tests start appear too, inside the failing test's output.
REPORT_RE='==[0-9]+==ERROR: (Address|Leak)Sanitizer|AddressSanitizer: ?(CHECK failed|DEADLYSIGNAL)|SUMMARY: (Address|UndefinedBehavior)Sanitizer|[^ ]+:[0-9]+:[0-9]+: runtime error:'
reports="$(grep -n -E "$REPORT_RE" "$log" | head -n 20)"
say "      pytest: ${summary:-exit $rc} ($((SECONDS - t)) s, log $log)"
if [[ -n "$reports" ]]; then
  say "----- sanitizer reports -----"
  say "$reports"
  first="$(grep -n -m1 -E "$REPORT_RE" "$log" | cut -d: -f1)"
  sed -n "${first},$((first + 40))p" "$log"
  say "-----"
fi
if [[ $rc -ne 0 ]]; then
  grep -E '^(FAILED|ERROR) ' "$log" | sed -E 's#[^ ]*/tests/#tests/#' | head -n 30
fi
say "== $((SECONDS - T0)) s in all; logs in $LOGS"
if [[ $rc -ne 0 || -n "$reports" ]]; then
  say "== RESULT: FAIL (pytest exit $rc${reports:+, sanitizer reports})"
  exit 1
fi
say "== RESULT: OK (ASan + UBSan clean)"
