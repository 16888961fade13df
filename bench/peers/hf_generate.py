"""The peer of `clinrl bench generate`: Hugging Face transformers' generate on
a randomly initialised model of the same shape, same batch sizes, prompt
lengths, new tokens and sampling settings, on the same device and dtype.
Prints one JSON line (launch/device-check puts it next to clinrl's figures).

usage: hf_generate.py --model CONFIG.json [--vocab-size N] [--device cuda]
                      [--dtype bfloat16] [--batches 1,64] [--new-tokens 128]
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
    init = doc.get("policy", {}).get("init", doc)
    init = dict(init)
    if vocab_size:
        init["vocab_size"] = vocab_size
    if "vocab_size" not in init:
        sys.exit(f"{path}: no vocab_size; pass --vocab-size")
    model_type = init.get("model_type", "qwen2")
    config_class = transformers.AutoConfig.for_model(model_type).__class__
    keys = {k: v for k, v in init.items() if k not in ("architectures", "model_type")}
    return config_class(**keys)


def prompts(count, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(32, 65, (count,), generator=g)
    return [torch.randint(vocab, (int(n),), generator=g) for n in lengths]


def run(model, batch, new_tokens, vocab, device, pad_id):
    rows = prompts(batch, vocab, batch)
    width = max(len(r) for r in rows)
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for i, r in enumerate(rows):  # left padding, as clinrl's Generate
        ids[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    ids, mask = ids.to(device), mask.to(device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True,
                         temperature=1.0, top_p=0.95, top_k=0,
                         max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                         pad_token_id=pad_id)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    generated = (out.shape[1] - width) * batch
    return generated / seconds


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--vocab-size", type=int, default=0)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--batches", default="1,64")
    p.add_argument("--new-tokens", type=int, default=128)
    a = p.parse_args()
    torch.manual_seed(0)
    config = model_config(a.model, a.vocab_size)
    dtype = getattr(torch, a.dtype)
    try:  # transformers >= 4.56 names it dtype; older ones torch_dtype
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    except TypeError:
        model = transformers.AutoModelForCausalLM.from_config(
            config, torch_dtype=dtype)
    model.to(a.device).eval()
    figures = {"peer": "transformers", "transformers": transformers.__version__,
               "torch": torch.__version__, "device": a.device, "dtype": a.dtype,
               "new_tokens": a.new_tokens}
    with torch.no_grad():
        run(model, 2, 8, config.vocab_size, a.device, 0)  # warm-up
        for batch in (int(b) for b in a.batches.split(",")):
            tps = run(model, batch, a.new_tokens, config.vocab_size, a.device, 0)
            print(f"transformers generate, batch {batch}: {tps:.1f} tokens/s",
                  flush=True)
            figures[f"hf_tokens_per_s_batch{batch}"] = tps
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
