#include "trainer/non_finite.h"

namespace clinrl::trainer {

NonFinitePolicy ParseNonFinitePolicy(const std::string& name) {
  if (name == "stop") return NonFinitePolicy::kStop;
  if (name == "skip") return NonFinitePolicy::kSkip;
  throw ConfigError(fmt::format(
      "trainer.non_finite: got '{}', expected one of: stop, skip", name));
}

std::string FirstNonFiniteTensor(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  if (tensors.empty()) return "";
  torch::NoGradGuard no_grad;
  // One flag per tensor, gathered before a single copy to the host, so a
  // model on a GPU costs one sync rather than one per parameter.
  std::vector<torch::Tensor> finite;
  finite.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    finite.push_back(t.defined() ? torch::isfinite(t).all()
                                 : torch::ones({}, torch::kBool));
    if (finite.back().device() != finite.front().device()) {
      finite.back() = finite.back().to(finite.front().device());
    }
  }
  const torch::Tensor flags = torch::stack(finite).to(torch::kCPU);
  const auto acc = flags.accessor<bool, 1>();
  for (int64_t i = 0; i < flags.size(0); ++i) {
    if (!acc[i]) return tensors[static_cast<size_t>(i)].first;
  }
  return "";
}

}  // namespace clinrl::trainer
