#!/usr/bin/env bash
# Checks, by disassembly, that each x86 kernel object holds the instruction set its target names,
# and nothing above it: AVX-512 cannot run on every machine (nor under qemu-user), so this is how
# its build is verified where it cannot execute; it also catches an ISA flag leaking into the
# baseline targets.
#
#   tests/native/check_target_isa.sh scalar=OBJ sse2=OBJ avx2=OBJ avx512=OBJ   (any subset)
#
#   scalar, sse2   no VEX/EVEX code at all (no ymm, no zmm, no v-prefixed instruction)
#   avx2           256-bit FMA (vfmadd...ymm) present, no zmm
#   avx512         512-bit FMA (vfmadd...zmm) present
set -euo pipefail
objdump=${OBJDUMP:-objdump}
status=0
for arg in "$@"; do
  target=${arg%%=*}
  obj=${arg#*=}
  asm=$("$objdump" -d --no-show-raw-insn "$obj" | awk -F'\t' 'NF >= 2 { print $2 }')
  total=$(grep -c . <<<"$asm" || true)
  vex=$(grep -cE '^v' <<<"$asm" || true)
  ymm=$(grep -c '%ymm' <<<"$asm" || true)
  zmm=$(grep -c '%zmm' <<<"$asm" || true)
  fma_ymm=$(grep -cE '^vfn?m(add|sub)[0-9a-z]*[[:space:]].*%ymm' <<<"$asm" || true)
  fma_zmm=$(grep -cE '^vfn?m(add|sub)[0-9a-z]*[[:space:]].*%zmm' <<<"$asm" || true)
  case $target in
    scalar | sse2) ok=$((vex == 0 && ymm == 0 && zmm == 0)) ;;
    avx2) ok=$((fma_ymm > 0 && zmm == 0)) ;;
    avx512) ok=$((fma_zmm > 0)) ;;
    *) echo "check_target_isa.sh: unknown target '$target'" >&2; exit 2 ;;
  esac
  printf '%-7s %6d instructions: %5d VEX/EVEX, %5d on ymm, %5d on zmm, FMA %4d ymm / %4d zmm  %s\n' \
    "$target" "$total" "$vex" "$ymm" "$zmm" "$fma_ymm" "$fma_zmm" "$([[ $ok == 1 ]] && echo ok || echo FAILED)"
  [[ $ok == 1 ]] || status=1
done
exit $status
