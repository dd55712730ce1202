#!/usr/bin/env bash
# Checks that the CKernels elementwise kernels give the same bits at every
# instruction-set level target_clones may pick (baseline x86-64, AVX2 + FMA,
# AVX-512): builds scripts/kernel_isa_check.c against Sources/CKernels once per
# -march without the clones, runs each build the CPU can run, and compares the
# hashes of every kernel's outputs. Also builds one copy with floating-point
# contraction forced on, which must differ (else the check proves nothing).
#   bash scripts/check_kernel_isa.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cc="${CC:-clang}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
src="$root/Sources/CKernels/elementwise.c"; inc="$root/Sources/CKernels/include"
flags=(-O2 -I"$inc" "$root/scripts/kernel_isa_check.c" -lm)
hashes=()
for march in x86-64 x86-64-v3 x86-64-v4; do
    "$cc" -DCK_NO_CLONES -march="$march" "$src" "${flags[@]}" -o "$tmp/k-$march"
    if h="$("$tmp/k-$march" 2>/dev/null)"; then
        printf '%-10s %s\n' "$march" "$h"; hashes+=("$h")
    else
        printf '%-10s (this CPU cannot run it)\n' "$march"
    fi
done
"$cc" "$src" "${flags[@]}" -o "$tmp/k-clones"; h="$("$tmp/k-clones")"; printf '%-10s %s\n' clones "$h"; hashes+=("$h")
sed 's/#pragma clang fp contract(off)/#pragma clang fp contract(fast)/' "$src" > "$tmp/contracted.c"
"$cc" -DCK_NO_CLONES -march=x86-64-v3 "$tmp/contracted.c" "${flags[@]}" -o "$tmp/k-fma"
fma="$("$tmp/k-fma")"; printf '%-10s %s (contraction on: expected to differ)\n' fma "$fma"
for h in "${hashes[@]}"; do
    [ "$h" = "${hashes[0]}" ] || { echo "FAIL: the kernels' bits depend on the instruction set"; exit 1; }
done
[ "$fma" != "${hashes[0]}" ] || { echo "FAIL: contraction changed nothing: the harness does not exercise the kernels"; exit 1; }
echo "OK: the same bits at every level"
