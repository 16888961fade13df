#!/usr/bin/env python3
"""Independent reference for clinrl's GRPO math (advantages, KL estimators,
clipped surrogate, truncated importance weights, loss aggregations).

Reads a JSON file of cases (argv[1]) and prints one JSON object with the
expected loss, d loss / d logprobs and the statistics for each case. Written
from the formulas in the GRPO / DAPO / Dr. GRPO papers and verl's core_algos,
not from clinrl's C++ code.
"""
import json
import sys

import numpy as np
import torch


def advantages(rewards, groups, mode, eps=1e-6):
    rewards = np.asarray(rewards, dtype=np.float64)
    out = np.zeros_like(rewards)
    for g in set(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        if len(idx) < 2:
            continue
        r = rewards[idx]
        centred = r - r.mean()
        if mode in ("dr_grpo", "reinforce_pp"):
            out[idx] = centred
        elif mode == "rloo":
            # Each sample against the mean of the others (RLOO).
            out[idx] = [r[k] - np.delete(r, k).mean() for k in range(len(r))]
        else:
            out[idx] = centred / (r.std(ddof=1) + eps)
    if mode == "reinforce_pp":
        # REINFORCE++ (group baseline): whitened over the batch's compared
        # samples (groups of two or more).
        compared = [i for i, g in enumerate(groups) if groups.count(g) > 1]
        x = out[compared]
        out[compared] = (x - x.mean()) / (x.std(ddof=1) + eps)
    return out.tolist()


def kl(logp, ref, est):
    x = logp - ref
    if est == "k1":
        return x
    if est == "k2":
        return 0.5 * x ** 2
    # k3 = r - log r - 1 with r = ref / pi (Schulman, "Approximating KL").
    log_r = ref - logp
    return torch.clamp(log_r.exp() - log_r - 1, -10, 10)


def agg(values, mask, mode, global_count, norm_length):
    m = mask
    if mode == "token_mean":
        denom = global_count if global_count > 0 else max(m.sum().item(), 1.0)
        return (values * m).sum() / denom
    if mode == "seq_mean_token_mean":
        per_seq = (values * m).sum(-1) / torch.clamp(m.sum(-1), min=1.0)
    else:
        length = norm_length if norm_length > 0 else values.shape[-1]
        per_seq = (values * m).sum(-1) / length
    if global_count > 0:
        return per_seq.sum() / global_count
    return per_seq.mean()


def loss_case(c):
    logp = torch.tensor(c["logprobs"], dtype=torch.float64, requires_grad=True)
    old = torch.tensor(c["old_logprobs"], dtype=torch.float64)
    mask = torch.tensor(c["mask"], dtype=torch.float64)
    adv = torch.tensor(c["advantages"], dtype=torch.float64)[:, None].expand_as(old)
    o = c["options"]
    policy_loss = o.get("policy_loss", "ppo_clip")
    log_ratio = logp - old
    if policy_loss == "gspo":
        # GSPO: one ratio per sequence, exp(mean log-ratio over its policy
        # tokens); sequences are rows unless sequence_ids names them.
        ids = c.get("sequence_ids") or [[r] * len(row) for r, row in enumerate(c["mask"])]
        seq_log = []
        for r, row in enumerate(ids):
            seq_log.append([])
            for t, sid in enumerate(row):
                num = sum(log_ratio[a][b] * mask[a][b]
                          for a in range(len(ids)) for b in range(len(ids[a])) if ids[a][b] == sid)
                den = sum(mask[a][b] for a in range(len(ids)) for b in range(len(ids[a]))
                          if ids[a][b] == sid)
                seq_log[r].append(num / max(den, 1.0))
        log_ratio = torch.stack([torch.stack(row) for row in seq_log])
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1 - o["clip_low"], 1 + o["clip_high"])
    if policy_loss == "cispo":
        # CISPO: clipped importance weight, stop-gradient, times log pi.
        surrogate = -adv * clipped.detach() * logp
    else:
        surrogate = torch.maximum(-adv * ratio, -adv * clipped)
    result = {}
    if "rollout_logprobs" in c and o["tis_cap"] > 0:
        raw = torch.exp(old - torch.tensor(c["rollout_logprobs"], dtype=torch.float64))
        w = torch.clamp(raw, max=o["tis_cap"])
        surrogate = surrogate * w
        result["tis_weight_mean"] = ((w * mask).sum() / mask.sum()).item()
    total = agg(surrogate, mask, o["agg"], c.get("global_count", 0.0), o.get("norm_length", 0))
    result["pg_loss"] = total.item()
    if "ref_logprobs" in c:
        ref = torch.tensor(c["ref_logprobs"], dtype=torch.float64)
        k = kl(logp, ref, o["kl_estimator"])
        result["kl"] = ((k.detach() * mask).sum() / mask.sum()).item()
        total = total + o["kl_coef"] * agg(k, mask, o["agg"], c.get("global_count", 0.0),
                                           o.get("norm_length", 0))
    if "entropy" in c:
        ent = torch.tensor(c["entropy"], dtype=torch.float64)
        total = total - o["entropy_coef"] * agg(ent, mask, o["agg"], c.get("global_count", 0.0),
                                                o.get("norm_length", 0))
    total.backward()
    low = ((ratio.detach() < 1 - o["clip_low"]) & (adv < 0)).double()
    high = ((ratio.detach() > 1 + o["clip_high"]) & (adv > 0)).double()
    result["clip_frac_low"] = ((low * mask).sum() / mask.sum()).item()
    result["clip_frac_high"] = ((high * mask).sum() / mask.sum()).item()
    result["loss"] = total.item()
    result["grad"] = logp.grad.tolist()
    return result


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    out = {
        "advantages": [advantages(a["rewards"], a["groups"], a["mode"]) for a in spec["advantages"]],
        "losses": [loss_case(c) for c in spec["losses"]],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
