#!/usr/bin/env bash
# Browser test on a short real run: two tiny `clinrl train` runs on
# dx_dialogue (different learning rates; the first refreshes its report
# every 2 steps), `clinrl report --compare`, then report_browser_test.py
# (Python playwright) in headless chromium. Screenshots land in
# OUT_DIR/screenshots.
# The run's TensorBoard events are checked against its metrics.jsonl.
#   browser_real_run_test.sh CLINRL PYTHON OUT_DIR
set -euo pipefail
CLINRL=$1
PYTHON=$2
OUT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
# Fail before training when the browser or playwright is missing.
"$PYTHON" "$HERE/report_browser_test.py" --check-chromium
rm -rf "$OUT"
mkdir -p "$OUT"
"$CLINRL" train "$HERE/tiny_dx_run.json" --set run.out_dir="$OUT" \
  --no-baselines --report-every 2 > "$OUT/train_a.log" 2>&1 &
TRAIN_PID=$!
for _ in $(seq 1 1200); do
  [ -s "$OUT/tiny_dx/report.html" ] && break
  kill -0 "$TRAIN_PID" 2>/dev/null || break
  sleep 0.05
done
# --report-every 2 writes the report after step 2, well before the final
# test evaluation of the GRPO stage.
if grep -q "eval grpo test" "$OUT/train_a.log"; then
  echo "FAIL: report.html appeared only at the end of training" >&2
  exit 1
fi
wait "$TRAIN_PID"
cat "$OUT/train_a.log"
"$PYTHON" "$HERE/events_match_metrics.py" "$OUT/tiny_dx"
grep -q "report:       $OUT/tiny_dx/report.html" "$OUT/train_a.log"
grep -q "events:       $OUT/tiny_dx/events.out.tfevents." "$OUT/train_a.log"
test -s "$OUT/tiny_dx/report.html"
"$CLINRL" train "$HERE/tiny_dx_run.json" --set run.out_dir="$OUT" \
  --set run.name=tiny_dx_lr3e-4 --set trainer.lr=3e-4 --set trainer.steps=2 \
  --no-baselines \
  > "$OUT/train_b.log"
"$CLINRL" report "$OUT/tiny_dx" --compare "$OUT/tiny_dx_lr3e-4" \
  --out "$OUT/report.html"
"$PYTHON" "$HERE/report_browser_test.py" "$OUT/report.html" "$OUT/screenshots"
