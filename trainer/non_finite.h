// What the learner does when a value it is about to train on or save is NaN
// or infinite (docs/training.md, "Non-finite values"): an optimizer step
// never applies a non-finite loss or gradient, and a checkpoint never holds
// a non-finite weight. `trainer.non_finite` picks whether such a step is
// skipped (counted in train/non_finite_skipped) or stops the run.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace clinrl::trainer {

enum class NonFinitePolicy {
  kStop,  // throw NonFiniteError: the run ends, naming the value
  kSkip,  // drop the batch's gradients, leave weights and optimizer alone
};

// "stop" or "skip" (trainer.non_finite); throws ConfigError naming the key
// and the allowed values otherwise.
NonFinitePolicy ParseNonFinitePolicy(const std::string& name);

// A loss, gradient norm or weight that is NaN or infinite where training
// cannot go on. `clinrl train` exits non-zero with its message.
class NonFiniteError : public Error {
 public:
  explicit NonFiniteError(const std::string& message)
      : Error("internal", message) {}
};

// The name of the first of `tensors` (in order) holding a NaN or an
// infinity, or "" when every element is finite. One host sync for all.
std::string FirstNonFiniteTensor(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

}  // namespace clinrl::trainer
