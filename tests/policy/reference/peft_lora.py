"""PEFT as the reference for clinrl's LoRA adapters.

Run with the venv interpreter (CLINRL_PYTHON), as tests/policy/lora_test.cc
does:

  --model BASE --adapter DIR --input IN.json --reference OUT.safetensors
      Loads the base model folder with transformers, applies the adapter
      folder with peft.PeftModel.from_pretrained (what clinrl saved), and
      writes `logits` [B, T, V] float32 of a forward over IN.json's input_ids
      and attention_mask.

  --model BASE --create-adapter DIR --rank R --alpha A --targets a,b,...
        --seed N --input IN.json --reference OUT.safetensors
      Wraps the base with peft.get_peft_model(LoraConfig(...)), draws A and B
      at random (B is zero at PEFT's default start, which would make any
      adapter look right), saves the adapter with save_pretrained for clinrl
      to load, and writes the wrapped model's logits as above.
"""
import argparse
import json
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"

try:
    import peft
    import torch
    import transformers
    from safetensors.torch import save_file
except ImportError as e:
    sys.exit(f"peft_lora.py: {e}; launch/setup installs peft, torch and "
             f"transformers into the venv (launch/requirements.txt)")


def load_base(model_dir):
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager",
        output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        sys.exit(f"peft_lora.py: {model_dir} did not load cleanly: {problems}")
    return model


def write_logits(model, input_path, out_path):
    with open(input_path) as f:
        inputs = json.load(f)
    ids = torch.tensor(inputs["input_ids"], dtype=torch.long)
    mask = torch.tensor(inputs["attention_mask"], dtype=torch.long)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask,
                       position_ids=positions).logits
    save_file({"logits": logits.float().contiguous()}, out_path)


def create_adapter(model, out_dir, rank, alpha, targets, seed):
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0,
                             target_modules=targets, task_type="CAUSAL_LM")
    wrapped = peft.get_peft_model(model, config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    wrapped.save_pretrained(out_dir)
    return wrapped


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--adapter")
    parser.add_argument("--create-adapter", metavar="DIR")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=8.0)
    parser.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input", required=True)
    parser.add_argument("--reference", required=True)
    args = parser.parse_args()
    if bool(args.adapter) == bool(args.create_adapter):
        parser.error("give exactly one of --adapter and --create-adapter")
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    base = load_base(args.model)
    if args.adapter:
        model = peft.PeftModel.from_pretrained(base, args.adapter)
    else:
        model = create_adapter(base, args.create_adapter, args.rank,
                               args.alpha, args.targets.split(","), args.seed)
    write_logits(model, args.input, args.reference)


if __name__ == "__main__":
    main()
