// LoRA adapters on disk, in PEFT's format, so `peft.PeftModel.from_pretrained
// (base, dir)` loads what clinrl trained and the reverse: a folder with
// adapter_config.json and adapter_model.safetensors, tensors named
// `base_model.model.<clinrl name>` (`...q_proj.lora_A.weight`). And the
// merge: a plain model whose weights are W + (alpha / r) B A, for serving
// and Hugging Face checkpoints without PEFT.
#pragma once

#include <string>

#include "policy/transformer.h"

namespace clinrl::policy {

// Writes the adapters of `model` (which must have LoRA) into `dir`; the
// config names `base_model` (a path or hub id; may be empty).
void SaveLoraAdapter(Transformer& model, const std::string& dir,
                     const std::string& base_model = "");

// Reads `dir`'s adapter_config.json and adapter_model.safetensors into
// `model`, adding the adapters first when it has none. Throws NotFound for a
// missing file or tensor and BadRequest for a config clinrl cannot apply, a
// config that differs from the model's adapters, or a shape mismatch; each
// names the file and the field or tensor.
void LoadLoraAdapter(Transformer& model, const std::string& dir);

// A model without adapters whose every target projection holds its merged
// weight; the other parameters are copies. Same device and dtype.
Transformer MergeLora(Transformer& model);

}  // namespace clinrl::policy
