#!/usr/bin/env bash
# The AVX2 / AVX-512 object files must define no weak (COMDAT) symbols: the linker may pick any
# copy of a weak symbol, and an AVX-512 copy of a shared inline function picked for generic code
# would crash a CPU without AVX-512. Every helper in those files is always_inline or has internal
# linkage; this test keeps it so.
set -euo pipefail
bad=0
checked=0
for obj in "$@"; do
  case "$obj" in *_avx2.cc.o|*_avx512.cc.o) ;; *) continue ;; esac
  checked=$((checked + 1))
  # DW.ref.__gxx_personality_v0 is data, not code: the address of the C++ unwinder's personality
  # routine, which instrumented builds (-fsanitize) emit as a weak object; every copy is the same.
  weak=$(nm -C "$obj" | awk '$(NF-1) ~ /^[WVu]$/ || $1 ~ /^[WVu]$/' | grep -v ' DW\.ref\.__gxx_personality_v0$' || true)
  if [[ -n "$weak" ]]; then
    echo "FAIL: $obj defines weak symbols:"
    echo "$weak"
    bad=1
  fi
done
if [[ $checked -eq 0 ]]; then
  echo "FAIL: no SIMD object files among the arguments"
  exit 1
fi
echo "checked $checked SIMD object files: $([[ $bad -eq 0 ]] && echo 'no weak symbols' || echo 'weak symbols found')"
exit $bad
