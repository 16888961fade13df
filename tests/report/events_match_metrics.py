"""Checks that the TensorBoard events of a real run hold every metric of its
metrics.jsonl, under the documented tag names, with the same values.

  events_match_metrics.py RUN_DIR

Reads the run directory with the `tensorboard` package itself: its record
reader checks every record's framing and CRCs in each events file
(tests/trainer/reference/tensorboard_read.py), then one EventAccumulator
over RUN_DIR (keeping everything) gives the scalars and the config text
summary, as TensorBoard would show them. Prints a JSON summary; exits
non-zero on any missing or different metric.
"""
import glob
import json
import math
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "trainer", "reference"))
import tensorboard_read  # noqa: E402  (exits naming launch/setup if absent)
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

RENAMED = {"reward/mean": "reward/total", "reward/std": "reward/total_std"}


def as_float32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def read_run(run):
    """{(step, tag): [values]} and {tag: [(step, text)]} of the run's events."""
    files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))
    if not files:
        raise SystemExit(f"no events.out.tfevents.* in {run}")
    # The accumulator stops quietly at a corrupt record; this pass does not.
    for path in files:
        tensorboard_read.check_framing(path)
    acc = event_accumulator.EventAccumulator(
        run, size_guidance={k: 0 for k in event_accumulator.DEFAULT_SIZE_GUIDANCE})
    acc.Reload()
    scalars = {}
    for tag in acc.Tags()[event_accumulator.SCALARS]:
        for e in acc.Scalars(tag):
            scalars.setdefault((e.step, tag), []).append(e.value)
    texts = {}
    try:
        text_tags = acc.PluginTagToContent("text")
    except KeyError:  # no text summaries at all
        text_tags = {}
    for tag in text_tags:
        for e in acc.Tensors(tag):
            text = tensor_util.make_ndarray(e.tensor_proto).item().decode("utf-8")
            texts.setdefault(tag, []).append((e.step, text))
    return files, scalars, texts


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: events_match_metrics.py RUN_DIR")
    run = sys.argv[1]
    files, found, texts = read_run(run)
    # {(step, tag): [values in metrics.jsonl order]}: a step may log a metric
    # twice (e.g. a validation at the end of one stage and at the start of
    # the next), and TensorBoard then holds both points, in the same order.
    expected = {}
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            prefix = "eval/%s/" % rec["eval"] if "eval" in rec else ""
            for key, value in rec.items():
                if key in ("step", "stage", "eval", "time_s") or value is None:
                    continue
                tag = prefix + RENAMED.get(key, key)
                expected.setdefault((rec["step"], tag), []).append(value)
    problems = []
    for (step, tag), values in sorted(expected.items()):
        got = found.get((step, tag))
        if got is None:
            problems.append(f"step {step} {tag}: not in the events")
        elif len(got) != len(values):
            problems.append(f"step {step} {tag}: {len(got)} events for "
                            f"{len(values)} metrics.jsonl values")
        else:
            for g, v in zip(got, values):
                if not math.isclose(g, as_float32(v), rel_tol=1e-6, abs_tol=1e-30):
                    problems.append(f"step {step} {tag}: {g} != {v}")
    # Every scalar in the events comes from metrics.jsonl: nothing extra.
    for step, tag in sorted(set(found) - set(expected)):
        problems.append(f"step {step} {tag}: in the events, not in metrics.jsonl")
    config = texts.get("config", [])
    with open(os.path.join(run, "config.json")) as f:
        name = json.load(f)["run"]["name"]
    if len(config) != 1 or json.loads(config[0][1])["run"]["name"] != name:
        problems.append("the config text summary: expected one whose run.name "
                        "is %r, got %d" % (name, len(config)))
    print(json.dumps({
        "event_files": len(files),
        "metrics_checked": sum(len(v) for v in expected.values()),
        "scalars_read": sum(len(v) for v in found.values()),
        "steps_logging_a_tag_twice": sum(len(v) > 1 for v in expected.values()),
        "problems": problems[:20]}))
    if problems:
        raise SystemExit(f"{len(problems)} problems comparing the events with "
                         "metrics.jsonl")


if __name__ == "__main__":
    main()
