#!/usr/bin/env bash
# Packed micro-batches against padded ones, measured as the issue asks: `clinrl
# bench learner --packing compare` times both layouts in one process on the
# ~22M bench model, 16 sequences whose lengths vary 4x (128..512 tokens), one
# micro-batch of 16. The packed/padded tokens/s ratio must be >= 1.3.
set -euo pipefail
clinrl="${1:?usage: packing_speed.sh CLINRL_BINARY}"
line="$("$clinrl" bench learner --threads 2 --packing compare \
  --opt sequences=16 --opt length=512 --opt skew=4 --opt micro_batch=16 \
  --opt steps=2 | tail -n 1)"
speedup="$(printf '%s' "$line" | sed -n 's/.*"packing_speedup":\([0-9.eE+-]*\).*/\1/p')"
if [ -z "$speedup" ]; then
  echo "no packing_speedup in the bench's JSON line: $line" >&2
  exit 1
fi
echo "packing speedup (packed / padded tokens/s): $speedup"
awk -v r="$speedup" 'BEGIN { exit !(r >= 1.3) }' || {
  echo "FAIL: packing speedup $speedup < 1.3" >&2
  exit 1
}
