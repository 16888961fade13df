"""The peer of `clinrl bench generate`: Hugging Face transformers' generate on
a randomly initialised model of the same shape, with the same prompts, batch
sizes, new tokens, sampling settings, threads, device and dtype, KV cache on.
With --save DIR it first saves its model there (save_pretrained), so that
clinrl times the very same weights. Prints one JSON line.

usage: hf_generate.py --model CONFIG.json [--vocab-size N]
                      [--prompts PROMPTS.json] [--save DIR] [--threads N]
                      [--device cpu|cuda] [--dtype float32|bfloat16]
                      [--batches 1,32] [--new-tokens 128]

CONFIG.json is a Hugging Face config.json or a clinrl run config with
policy.init. PROMPTS.json maps a batch size (as a string) to its prompts
(lists of token ids); without it, prompts of 32..64 random tokens.
"""

import argparse
import json
import sys
import time

import torch
import transformers


def model_config(path, vocab_size):
    with open(path) as f:
        doc = json.load(f)
    init = dict(doc.get("policy", {}).get("init", doc))
    if vocab_size:
        init["vocab_size"] = vocab_size
    if "vocab_size" not in init:
        sys.exit(f"{path}: no vocab_size; pass --vocab-size")
    config_class = transformers.AutoConfig.for_model(
        init.get("model_type", "qwen2")).__class__
    skip = ("architectures", "model_type", "torch_dtype", "dtype")
    return config_class(**{k: v for k, v in init.items() if k not in skip})


def random_prompts(count, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(32, 65, (count,), generator=g)
    return [torch.randint(vocab, (int(n),), generator=g).tolist()
            for n in lengths]


def tokens_per_s(model, rows, new_tokens, device, greedy):
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):  # left padding, as clinrl's Generate
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    ids, mask = ids.to(device), mask.to(device)
    sampling = {} if greedy else {"temperature": 1.0, "top_p": 0.95,
                                  "top_k": 0}
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(input_ids=ids, attention_mask=mask,
                         do_sample=not greedy, max_new_tokens=new_tokens,
                         min_new_tokens=new_tokens, pad_token_id=0,
                         use_cache=True, **sampling)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (out.shape[1] - width) * len(rows) / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--vocab-size", type=int, default=0)
    p.add_argument("--prompts")
    p.add_argument("--save")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batches", default="1,32")
    p.add_argument("--new-tokens", type=int, default=128)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    config = model_config(a.model, a.vocab_size)
    dtype = getattr(torch, a.dtype)
    try:  # transformers >= 4.56 names it dtype; older ones torch_dtype
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    except TypeError:
        model = transformers.AutoModelForCausalLM.from_config(
            config, torch_dtype=dtype)
    if a.save:
        model.save_pretrained(a.save)
    model.to(a.device).eval()
    prompts = {}
    if a.prompts:
        with open(a.prompts) as f:
            prompts = json.load(f)
    figures = {"peer": "transformers", "transformers": transformers.__version__,
               "torch": torch.__version__, "device": a.device, "dtype": a.dtype,
               "threads": torch.get_num_threads(), "new_tokens": a.new_tokens}
    with torch.no_grad():
        tokens_per_s(model, [[1, 2, 3]] * 2, 4, a.device, False)  # warm-up
        for batch in a.batches.split(","):
            rows = prompts.get(batch) or random_prompts(
                int(batch), config.vocab_size, int(batch))
            for greedy in (False, True):
                tps = tokens_per_s(model, rows, a.new_tokens, a.device, greedy)
                kind = "greedy" if greedy else "sampled"
                print(f"transformers generate, batch {batch}, {kind}: "
                      f"{tps:.1f} tokens/s", flush=True)
                suffix = "_greedy" if greedy else ""
                figures[f"hf_tokens_per_s_batch{batch}{suffix}"] = tps
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
