#!/usr/bin/env python3
"""Writes a synthetic run directory shaped like `clinrl train` writes one.

For the report's scale test: N steps of metrics.jsonl (SFT then GRPO lines
with ~60 metric keys, validation evaluations every `--eval-every` steps and
a final test evaluation), M trajectories.jsonl lines of 2-6 KB each
(dx_dialogue-like transcripts with token ids, log-probs, reward components
with rubric verdicts, final env info), config.json and summary.json.

  make_synthetic_run.py OUT_DIR --steps 10000 --trajectories 50000
"""
import argparse
import json
import math
import os
import random

COMPONENTS = ["diagnosis", "cost", "safety", "format", "rubric"]
TESTS = ["d-dimer", "troponin", "ecg", "chest x-ray", "lipase", "glucose",
         "cbc", "urinalysis", "ct head", "ultrasound abdomen"]
SYMPTOMS = ["heartburn", "fever", "shortness of breath", "cough", "nausea",
            "radiating pain", "headache", "dizziness", "palpitations"]
DIAGNOSES = ["acute pancreatitis", "pulmonary embolism", "gastroesophageal reflux disease",
             "ischemic stroke", "community-acquired pneumonia", "myocardial infarction"]
RUBRIC = ["asks about onset and duration", "asks about red-flag symptoms",
          "orders an ECG for chest pain", "avoids unnecessary imaging",
          "gives a safe disposition", "states the working diagnosis clearly"]


def metric_line(step, sft_steps, rng, t):
    frac = step / 10000.0
    if step <= sft_steps:
        return {"step": step, "stage": "sft", "time_s": t,
                "loss": 6.0 * math.exp(-3 * step / sft_steps) + rng.random() * 0.1,
                "grad_norm": 3 + rng.random(), "lr": 1e-3,
                "throughput/train_tokens_per_s": 4000 + rng.random() * 300}
    m = {"step": step, "stage": "grpo", "time_s": t}
    m["reward/mean"] = 0.1 + 0.4 * frac + rng.gauss(0, 0.05)
    m["reward/std"] = 0.2 + rng.random() * 0.1
    for c in COMPONENTS:
        m["reward/" + c] = rng.random()
        m["reward_std/" + c] = rng.random()
    for k in ["accuracy", "advantage/abs_mean", "advantage/mean", "clip_frac/high",
              "clip_frac/low", "cost/mean", "entropy", "episodes", "flagged", "grad_norm",
              "groups/dropped_frac", "invalid_action_rate", "kl", "length/max",
              "length/mean", "loss", "lr", "pg_loss", "ratio/mean",
              "termination/finished", "termination/max_turns",
              "throughput/rollout_tokens_per_s", "throughput/train_tokens_per_s",
              "time/learn_s", "time/reward_s", "time/rollout_s", "time/step_s",
              "tis/clip_frac", "tis/weight_mean", "train/policy_tokens",
              "train/recomputed_old_logprobs", "turns/mean", "length/min", "length/std",
              "kl/k3", "entropy/first_token", "ratio/max", "ratio/min",
              "advantage/std", "groups/kept", "tools/tests_per_episode",
              "tools/exams_per_episode", "cost/max", "reward/max", "reward/min"]:
        m[k] = rng.random() * (100 if "length" in k or "throughput" in k else 1)
    return m


def trajectory_line(index, step, rng):
    turns = [{"role": "system", "content": "You are a doctor. Find the diagnosis in few turns "
              "at low cost. One action per turn: ASK: <symptom> | EXAM: <system> | TEST: <test> "
              "| DISPOSITION: <home|clinic|emergency> | DIAGNOSIS: <condition>"},
             {"role": "user", "content": "%d-year-old patient. Chief complaint: chest pain." %
              rng.randint(18, 90)}]
    n = rng.randint(2, 9)
    for k in range(n):
        if k == n - 1:
            action = "DIAGNOSIS: " + rng.choice(DIAGNOSES)
            reply = "Diagnosis recorded."
        elif rng.random() < 0.5:
            test = rng.choice(TESTS)
            action, reply = "TEST: " + test, test + ": " + rng.choice(["normal.", "elevated.", "abnormal."])
        else:
            s = rng.choice(SYMPTOMS)
            action, reply = "ASK: " + s, "Patient: " + rng.choice(["yes", "no", "a little"]) + "."
        ntok = rng.randint(4, 12)
        turns.append({"role": "assistant", "content": action,
                      "token_ids": [rng.randint(0, 1023) for _ in range(ntok)],
                      "logprobs": [round(-rng.random() * 3, 6) for _ in range(ntok)]})
        turns.append({"role": "user", "content": reply})
    comps = {}
    total = 0.0
    weights = {"diagnosis": 1.0, "cost": 0.1, "safety": 0.5, "format": 0.1, "rubric": 0.5}
    for c in COMPONENTS:
        score = round(rng.random(), 4)
        details = {"note": c}
        if c == "rubric":
            details = {"criteria": [{"criterion": r, "points": 5, "met": rng.random() < 0.5,
                                     "why": "rule match"} for r in RUBRIC]}
        comps[c] = {"score": score, "weight": weights[c], "details": details}
        total += score * weights[c]
    spec = {"components": [{"name": c, "plugin": c, "weight": weights[c], "params": {}}
                           for c in COMPONENTS]}
    return {"env": "dx_dialogue", "episode_id": "syn-%d" % index, "group_id": "g-%d" % (index // 8),
            "split": "train" if index % 10 else "validation", "task_index": index % 2000,
            "seed": index * 7919, "policy_version": step, "step": step,
            "termination": "finished" if rng.random() < 0.85 else "max_turns",
            "step_rewards": [0.0] * n, "timings": {"episode_s": rng.random()},
            "turns": turns, "reward": {"total": round(total, 4), "components": comps},
            "reward_spec": spec,
            "info": {"cost": rng.randint(0, 300) * 5.0, "metrics": {"correct": rng.random() < 0.3},
                     "reward_spec": spec}}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out_dir")
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--trajectories", type=int, default=50000)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    name = os.path.basename(os.path.normpath(a.out_dir))
    with open(os.path.join(a.out_dir, "config.json"), "w") as f:
        json.dump({"run": {"name": name, "seed": a.seed},
                   "trainer": {"stages": ["sft", "grpo"], "steps": a.steps}}, f)
    sft_steps = max(1, a.steps // 10)
    t = 0.0
    with open(os.path.join(a.out_dir, "metrics.jsonl"), "w") as f:
        for step in range(1, a.steps + 1):
            t += 1.0 + rng.random()
            f.write(json.dumps(metric_line(step, sft_steps, rng, t)) + "\n")
            if step % a.eval_every == 0 or step == a.steps:
                split = "test" if step == a.steps else "validation"
                f.write(json.dumps({"step": step, "eval": split, "time_s": t,
                                    "accuracy": rng.random(), "reward/mean": rng.random(),
                                    "turns/mean": 3 + rng.random()}) + "\n")
    grpo_steps = a.steps - sft_steps
    with open(os.path.join(a.out_dir, "trajectories.jsonl"), "w") as f:
        for i in range(a.trajectories):
            step = sft_steps + 1 + i * grpo_steps // max(1, a.trajectories)
            f.write(json.dumps(trajectory_line(i, step, rng)) + "\n")
    with open(os.path.join(a.out_dir, "summary.json"), "w") as f:
        json.dump([{"policy": "grpo", "split": "test",
                    "metrics": {"accuracy": 0.3, "reward/mean": 0.4}}], f)


if __name__ == "__main__":
    main()
