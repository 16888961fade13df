#!/usr/bin/python3
"""Checks that the TensorBoard events of a real run hold every metric of its
metrics.jsonl, under the documented tag names, with the same values.

  events_match_metrics.py RUN_DIR

Decodes with tests/trainer/reference/tfevents_decode.py (protoc and its own
CRC-32C), independent of clinrl's writer. Prints a JSON summary.
"""
import glob
import json
import math
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DECODER = os.path.join(HERE, "..", "trainer", "reference", "tfevents_decode.py")
RENAMED = {"reward/mean": "reward/total", "reward/std": "reward/total_std"}


def as_float32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def main():
    run = sys.argv[1]
    found = {}
    texts = []
    files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))
    if not files:
        raise SystemExit(f"no events.out.tfevents.* in {run}")
    for path in files:
        out = json.loads(subprocess.run([sys.executable, DECODER, path], check=True,
                                        capture_output=True).stdout)
        for step, tag, value in out["scalars"]:
            found[(step, tag)] = value
        texts += out["texts"]
    expected = 0
    missing = []
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            prefix = "eval/%s/" % rec["eval"] if "eval" in rec else ""
            for key, value in rec.items():
                if key in ("step", "stage", "eval", "time_s") or value is None:
                    continue
                tag = prefix + RENAMED.get(key, key)
                expected += 1
                got = found.get((rec["step"], tag))
                if got is None:
                    missing.append(f"step {rec['step']} {tag}")
                elif not math.isclose(got, as_float32(value), rel_tol=1e-6, abs_tol=1e-30):
                    missing.append(f"step {rec['step']} {tag}: {got} != {value}")
    config = [t for t in texts if t[1] == "config"]
    if not config or json.loads(config[0][2])["run"]["name"] != json.load(
            open(os.path.join(run, "config.json")))["run"]["name"]:
        missing.append("the config text summary")
    print(json.dumps({"metrics_checked": expected, "problems": missing[:20]}))
    if missing:
        raise SystemExit(f"{len(missing)} metrics not found in the events")


if __name__ == "__main__":
    main()
