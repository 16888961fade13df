// AdamW with explicit, named state (first and second moments per parameter,
// one step counter), so that checkpoints store exactly what resumes the run
// and the data-parallel learner can keep the moments of its shard only.
// Matches torch.optim.AdamW (decoupled weight decay, bias correction).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace clinrl::trainer {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  // `params` are (name, tensor) pairs; tensors are updated in place.
  AdamW(std::vector<std::pair<std::string, torch::Tensor>> params,
        AdamWOptions options);

  // One update with learning rate `lr` from the parameters' .grad(); a
  // parameter without a gradient is left alone (its moments too).
  void Step(double lr);
  void ZeroGrad();
  int64_t step() const { return step_; }

  // Named state for checkpoints: "<param>.exp_avg", "<param>.exp_avg_sq".
  std::map<std::string, torch::Tensor> StateTensors() const;
  // Restores state written by StateTensors; throws BadRequest naming a
  // missing or mis-shaped tensor.
  void LoadState(const std::map<std::string, torch::Tensor>& state,
                 int64_t step);
  // Bytes held by the moments (for the ZeRO-1 per-rank memory check).
  int64_t StateBytes() const;

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, exp_avg, exp_avg_sq;
  };
  std::vector<Slot> slots_;
  AdamWOptions options_;
  int64_t step_ = 0;
};

// One AdamW update, in place, of `param` and its moments from `grad` at
// optimizer step `step` (1-based): AdamW::Step applies it to whole
// parameters, ShardedAdamW to the pieces a rank owns (elementwise, so the
// pieces come out bit-for-bit as the whole would).
void AdamWUpdate(torch::Tensor& param, const torch::Tensor& grad,
                 torch::Tensor& exp_avg, torch::Tensor& exp_avg_sq, double lr,
                 int64_t step, const AdamWOptions& options);

// Scales all gradients so that their global L2 norm is at most `max_norm`
// (no-op when max_norm <= 0). Returns the norm before clipping.
double ClipGradNorm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace clinrl::trainer
