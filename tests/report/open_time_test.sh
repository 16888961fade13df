#!/usr/bin/env bash
# Scale test: a synthetic run of 10,000 steps and 50,000 trajectories
# (tools/make_synthetic_run.py), its report built by the real
# `clinrl report`, opened in headless chromium (report_browser_test.py,
# Python playwright); fails when it takes 3 s or
# more to become interactive, and prints the figure.
#   open_time_test.sh CLINRL PYTHON OUT_DIR
set -euo pipefail
CLINRL=$1
PYTHON=$2
OUT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
# Fail before the 200 MB run is made when the browser or playwright is missing.
"$PYTHON" "$HERE/report_browser_test.py" --check-chromium
RUN="$OUT/synthetic_10k_50k"
rm -rf "$OUT"
mkdir -p "$OUT"
"$PYTHON" "$HERE/../../tools/make_synthetic_run.py" "$RUN" \
  --steps 10000 --trajectories 50000
TIMEFORMAT='clinrl report built it in %R s'
time "$CLINRL" report "$RUN"
ls -l "$RUN/report.html"
"$PYTHON" "$HERE/report_browser_test.py" "$RUN/report.html" "$OUT/screenshots" \
  --max-open-ms 3000
# The 200 MB trajectories file is only needed to build the report.
rm -f "$RUN/trajectories.jsonl"
