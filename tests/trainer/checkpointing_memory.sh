#!/usr/bin/env bash
# Activation checkpointing's memory saving, measured as the issue asks: peak
# resident memory of `clinrl bench learner` on the ~22M bench model, one
# micro-batch of 16 x 512 tokens, with checkpointing on and off (two
# processes, as max RSS only grows). The ratio on/off must be <= 0.6.
set -euo pipefail
clinrl="${1:?usage: checkpointing_memory.sh CLINRL_BINARY}"
peak() {
  "$clinrl" bench learner --threads 2 --opt sequences=16 --opt length=512 \
    --opt micro_batch=16 --opt steps=1 --checkpointing "$1" |
    tail -n 1 | sed -n 's/.*"peak_rss_bytes":\([0-9][0-9]*\).*/\1/p'
}
off="$(peak off)"
on="$(peak on)"
if [ -z "$off" ] || [ -z "$on" ]; then
  echo "no peak_rss_bytes in the bench's JSON line" >&2
  exit 1
fi
ratio="$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')"
echo "peak RSS: checkpointing off $((off >> 20)) MiB, on $((on >> 20)) MiB, ratio $ratio"
awk -v r="$ratio" 'BEGIN { exit !(r <= 0.6) }' || {
  echo "FAIL: ratio $ratio > 0.6" >&2
  exit 1
}
