"""Hugging Face transformers as the reference for clinrl's transformer.

Run with the venv interpreter (CLINRL_PYTHON), as tests/policy/model_test.cc
does. Two steps, either or both in one call (importing transformers costs a
few seconds, so the tests ask for both at once):

  --create FAMILY --model DIR [--seed N] [--bf16 DIR2]
      Builds a tiny random qwen2, qwen3 or llama model from transformers' own
      config class and initialisation, spreads the weights (see spread_weights)
      and writes it with save_pretrained(safe_serialization=True) in float32;
      --bf16 also writes the same model cast to bfloat16 by torch.

  --model DIR --input IN.json --reference OUT.safetensors [--max-new-tokens N]
      Loads DIR with from_pretrained and writes to OUT.safetensors
        logits             [B, T, V] float32, forward over IN.json's
                           input_ids and attention_mask (any padding side)
        greedy_tokens      [B, N] int64, model.generate(do_sample=False) from
                           each row's real tokens alone (no padding)
        greedy_min_margin  [B] float32, the smallest top-1 minus top-2 logit
                           over those N steps: a test comparing tokens needs
                           it well above its logit tolerance, or a legitimate
                           rounding difference could flip a near tie.
"""
import argparse
import json
import os
import sys

# Tests touch no network: every model here is made locally, never fetched.
os.environ["HF_HUB_OFFLINE"] = "1"

try:
    import torch
    import transformers
    from safetensors.torch import save_file
except ImportError as e:
    sys.exit(f"hf_models.py: {e}; launch/setup installs torch, transformers and "
             f"safetensors into the venv (launch/requirements.txt)")

# Shapes differ between families so that each config field has to be read,
# not assumed: qwen3's head_dim is not hidden/heads (as in the real Qwen3),
# qwen2 ties its embeddings and the others do not, llama uses Llama 3.1 rope
# scaling with a short original context so that its 8 frequencies fall in all
# three bands (kept, smoothed, divided by the factor).
COMMON = dict(hidden_size=64, intermediate_size=160, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512,
              bos_token_id=None, eos_token_id=None, pad_token_id=None)
FAMILIES = {
    "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM,
              dict(COMMON, num_hidden_layers=2, vocab_size=300,
                   rms_norm_eps=1e-6, tie_word_embeddings=True,
                   rope_parameters={"rope_type": "default",
                                    "rope_theta": 10000.0})),
    "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM,
              dict(COMMON, num_hidden_layers=3, vocab_size=512, head_dim=32,
                   rms_norm_eps=1e-6, tie_word_embeddings=False,
                   rope_parameters={"rope_type": "default",
                                    "rope_theta": 1000000.0})),
    "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM,
              dict(COMMON, num_hidden_layers=2, vocab_size=1000,
                   rms_norm_eps=1e-5, tie_word_embeddings=False,
                   rope_parameters={"rope_type": "llama3",
                                    "rope_theta": 500000.0, "factor": 8.0,
                                    "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 64})),
}


def spread_weights(model, seed):
    """Matrices x10, so the logits spread out and a wrong mask or rotary
    position moves them far beyond the tolerance; norms and biases drawn
    away from transformers' 1 and 0, so a norm or bias that is not loaded
    (left at its initial value) shows up too."""
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied weights appear once
            if p.dim() == 2:
                p.mul_(10.0)
            elif name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))


def create(family, out_dir, seed, bf16_dir):
    if family not in FAMILIES:
        sys.exit(f"hf_models.py: --create {family!r} is not one of "
                 f"{', '.join(FAMILIES)}")
    config_class, model_class, fields = FAMILIES[family]
    torch.manual_seed(seed)
    model = model_class(config_class(**fields)).to(torch.float32).eval()
    spread_weights(model, seed)
    model.save_pretrained(out_dir, safe_serialization=True)
    if bf16_dir:
        model.to(torch.bfloat16).save_pretrained(bf16_dir,
                                                 safe_serialization=True)


def reference(model_dir, input_path, out_path, max_new_tokens):
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager",
        output_loading_info=True)
    model.eval()
    # transformers only warns about these and fills missing weights with
    # random values; for a parity reference that is an error.
    problems = {k: v for k, v in info.items() if v}
    if problems:
        sys.exit(f"hf_models.py: {model_dir} did not load cleanly in "
                 f"transformers: {problems}")
    with open(input_path) as f:
        inputs = json.load(f)
    ids = torch.tensor(inputs["input_ids"], dtype=torch.long)
    mask = torch.tensor(inputs["attention_mask"], dtype=torch.long)
    # forward() numbers slots 0..T-1 whatever the mask; generate() and clinrl
    # count real tokens, so a left-padded row starts at 0. (Rotary attention
    # depends only on position differences, so the constant shift would
    # change little; the inputs are kept the same all the same.)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    # No end-of-sequence token: every row generates exactly N tokens, as the
    # test asks of clinrl.
    greedy = dict(do_sample=False, max_new_tokens=max_new_tokens,
                  min_new_tokens=max_new_tokens, eos_token_id=None,
                  pad_token_id=0, return_dict_in_generate=True,
                  output_logits=True)
    tokens, margins = [], []
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask,
                       position_ids=positions).logits
        for row, row_mask in zip(ids, mask):
            prompt = row[row_mask.bool()].unsqueeze(0)
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                 **greedy)
            tokens.append(out.sequences[0, prompt.shape[1]:])
            top2 = torch.stack(out.logits).float().topk(2, dim=-1).values
            margins.append((top2[..., 0] - top2[..., 1]).min())
    save_file({"logits": logits.float().contiguous(),
               "greedy_tokens": torch.stack(tokens).contiguous(),
               "greedy_min_margin": torch.stack(margins).contiguous()},
              out_path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--create", metavar="FAMILY")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", metavar="DIR")
    parser.add_argument("--input")
    parser.add_argument("--reference")
    parser.add_argument("--max-new-tokens", type=int, default=10)
    args = parser.parse_args()
    if bool(args.input) != bool(args.reference):
        parser.error("--input and --reference go together")
    torch.set_num_threads(1)  # the tiny models gain nothing from threads
    transformers.utils.logging.disable_progress_bar()
    if args.create:
        create(args.create, args.model, args.seed, args.bf16)
    if args.input:
        reference(args.model, args.input, args.reference, args.max_new_tokens)


if __name__ == "__main__":
    main()
