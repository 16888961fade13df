#!/usr/bin/env python3
"""Reference for clinrl's AdamW, gradient clipping and LR schedule: runs
torch.optim.AdamW and torch.nn.utils.clip_grad_norm_ on the steps in the JSON
file argv[1] and prints the final parameters and the pre-clip norms."""
import json
import sys

import torch


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in spec["params"]]
    opt = torch.optim.AdamW(params, lr=1.0, betas=(spec["beta1"], spec["beta2"]),
                            eps=spec["eps"], weight_decay=spec["weight_decay"])
    norms = []
    for step in spec["steps"]:
        for p, g in zip(params, step["grads"]):
            p.grad = torch.tensor(g, dtype=torch.float64)
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, spec["max_norm"])))
        for group in opt.param_groups:
            group["lr"] = step["lr"]
        opt.step()
    print(json.dumps({"params": [p.detach().tolist() for p in params], "norms": norms}))


if __name__ == "__main__":
    main()
