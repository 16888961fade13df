#!/usr/bin/python3
"""Independent float32 reference forward of a clinrl model folder.

Usage: policy_reference.py MODEL_DIR INPUT_JSON OUT_SAFETENSORS

Reads config.json and model.safetensors with its own safetensors parser,
runs the Llama/Qwen2/Qwen3 forward written out longhand in torch (K/V heads
repeated explicitly, masks built from scratch), and writes a safetensors file
with the logits ("logits", [B, T, V] float32) for the ids and attention mask
in INPUT_JSON ({"input_ids": [[...]], "attention_mask": [[...]]}), plus
"bf16.<name>" copies of a few weights rounded to bfloat16 by torch, which the
C++ test loads to check its BF16 reader against an outside writer.
"""
import json
import math
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": (np.float32, torch.float32), "F16": (np.float16, torch.float16)}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype=np.int16).copy()
            t = torch.from_numpy(bits).view(torch.bfloat16).float()
        else:
            t = torch.from_numpy(np.frombuffer(raw, dtype=DTYPES[info["dtype"]][0]).copy()).float()
        out[name] = t.reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype == torch.bfloat16:
            raw = t.contiguous().view(torch.int16).numpy().tobytes()
            dtype = "BF16"
        else:
            raw = t.contiguous().numpy().astype(np.float32).tobytes()
            dtype = "F32"
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def rms_norm(x, w, eps):
    var = (x * x).mean(dim=-1, keepdim=True)
    return w * (x / torch.sqrt(var + eps))


def rotate(x, cos, sin):
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def forward(cfg, w, ids, mask):
    B, T = ids.shape
    H = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", H)
    D = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    qwen2 = cfg["model_type"] == "qwen2"
    qwen3 = cfg["model_type"] == "qwen3"
    bias = qwen2 or cfg.get("attention_bias", False)
    # positions: number of real tokens before each slot
    pos = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        count = 0
        for t in range(T):
            pos[b, t] = count
            count += int(mask[b, t])
    inv = [1.0 / (cfg["rope_theta"] ** (2 * i / D)) for i in range(D // 2)]
    scaling = cfg.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type")) == "llama3":
        # Llama 3.1 frequency bands, per frequency in float64.
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        scaled = []
        for f in inv:
            wavelen = 2 * math.pi / f
            if wavelen < old / high:
                scaled.append(f)
            elif wavelen > old / low:
                scaled.append(f / factor)
            else:
                smooth = (old / wavelen - low) / (high - low)
                scaled.append((1 - smooth) * f / factor + smooth * f)
        inv = scaled
    inv = torch.tensor(inv, dtype=torch.float32)
    ang = pos.float()[:, :, None] * inv[None, None, :]
    cos, sin = torch.cos(ang)[:, None], torch.sin(ang)[:, None]  # [B,1,T,D/2]
    allowed = torch.zeros(B, 1, T, T, dtype=torch.bool)
    for b in range(B):
        for q in range(T):
            for k in range(q + 1):
                allowed[b, 0, q, k] = bool(mask[b, k])
    x = w["model.embed_tokens.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def proj(name, heads):
            y = h @ w[p + "self_attn.%s.weight" % name].t()
            if bias:
                y = y + w[p + "self_attn.%s.bias" % name]
            return y.view(B, T, heads, D).transpose(1, 2)

        q, k, v = proj("q_proj", H), proj("k_proj", Hkv), proj("v_proj", Hkv)
        if qwen3:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        s = s.masked_fill(~allowed, -1e30)
        a = torch.softmax(s, dim=-1) @ v
        a = a.transpose(1, 2).reshape(B, T, H * D)
        x = x + a @ w[p + "self_attn.o_proj.weight"].t()
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].t()
        u = h @ w[p + "mlp.up_proj.weight"].t()
        x = x + (torch.nn.functional.silu(g) * u) @ w[p + "mlp.down_proj.weight"].t()
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.t()


def main():
    model_dir, input_path, out_path = sys.argv[1:4]
    cfg = json.load(open(model_dir + "/config.json"))
    w = read_safetensors(model_dir + "/model.safetensors")
    inp = json.load(open(input_path))
    ids = torch.tensor(inp["input_ids"], dtype=torch.long)
    mask = torch.tensor(inp["attention_mask"], dtype=torch.long)
    with torch.no_grad():
        logits = forward(cfg, w, ids, mask)
    out = {"logits": logits.float()}
    for name in ("model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight"):
        out["bf16." + name] = w[name].to(torch.bfloat16)
    write_safetensors(out_path, out)


if __name__ == "__main__":
    main()
