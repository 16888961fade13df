"""The memory planner against a measured peak (issue 22).

`clinrl plan` predicts the learner's peak resident memory for
tests/trainer/memory_plan_bench.json, the bench model's shape with the
settings of one `clinrl bench learner` step (16 sequences x 256 tokens in
one micro-batch of 16, float32, padded); the bench measures the peak RSS of
that step (getrusage max RSS, one process per setting since it only grows).
Both with and without activation checkpointing; the prediction must be
within 20% of the measurement.

usage: memory_plan_rss.py CLINRL_BINARY BENCH_PLAN_CONFIG
"""

import json
import subprocess
import sys

TOLERANCE = 0.20
SEQUENCES, LENGTH, MICRO_BATCH = 16, 256, 16


def run(args):
    done = subprocess.run(args, capture_output=True, text=True, timeout=240)
    if done.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)} exited {done.returncode}:\n"
                 f"{done.stdout}{done.stderr}")
    return done.stdout


def predicted(clinrl, config, checkpointing):
    plan = json.loads(run([
        clinrl, "plan", config, "--json", "--set",
        f"trainer.activation_checkpointing={str(checkpointing).lower()}"
    ]))
    learner = plan["roles"][0]
    expected = (SEQUENCES, LENGTH, MICRO_BATCH)
    got = (plan["run"]["micro_batch_sequences"] * plan["run"]["learner_ranks"],
           plan["run"]["sequence_tokens"], plan["run"]["micro_batch_sequences"])
    if learner["role"] != "learner" or got != expected:
        sys.exit(f"FAIL: {config} plans (sequences, length, micro-batch) "
                 f"{got}, expected the bench's {expected}")
    return plan["model"]["parameters"], learner["peak_bytes"]


def measured(clinrl, checkpointing):
    out = run([
        clinrl, "bench", "learner", "--threads", "2", "--opt",
        f"sequences={SEQUENCES}", "--opt", f"length={LENGTH}", "--opt",
        f"micro_batch={MICRO_BATCH}", "--opt", "steps=1", "--checkpointing",
        "on" if checkpointing else "off"
    ])
    line = json.loads(out.strip().splitlines()[-1])
    return line["parameters"], line["peak_rss_bytes"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    clinrl, config = sys.argv[1], sys.argv[2]
    failed = False
    for checkpointing in (False, True):
        plan_params, plan_bytes = predicted(clinrl, config, checkpointing)
        bench_params, rss = measured(clinrl, checkpointing)
        if plan_params != bench_params:
            sys.exit(f"FAIL: {config} has {plan_params} parameters, the bench "
                     f"model {bench_params}: the config no longer matches "
                     "bench/bench_model.cc")
        error = plan_bytes / rss - 1
        print(f"checkpointing {'on' if checkpointing else 'off'}: predicted "
              f"{plan_bytes >> 20} MiB, measured peak RSS {rss >> 20} MiB "
              f"({error:+.1%})")
        failed |= abs(error) > TOLERANCE
    if failed:
        sys.exit(f"FAIL: a prediction is off by more than {TOLERANCE:.0%}")


if __name__ == "__main__":
    main()
