#include "trainer/adamw.h"

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace clinrl::trainer {

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> params,
             AdamWOptions options)
    : options_(options) {
  for (auto& [name, p] : params) {
    slots_.push_back({name, p,
                      torch::zeros_like(p, torch::MemoryFormat::Contiguous),
                      torch::zeros_like(p, torch::MemoryFormat::Contiguous)});
  }
}

void AdamW::Step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  for (Slot& s : slots_) {
    const torch::Tensor& g = s.param.grad();
    if (!g.defined()) continue;
    AdamWUpdate(s.param, g, s.exp_avg, s.exp_avg_sq, lr, step_, options_);
  }
}

void AdamWUpdate(torch::Tensor& param, const torch::Tensor& grad,
                 torch::Tensor& exp_avg, torch::Tensor& exp_avg_sq, double lr,
                 int64_t step, const AdamWOptions& options) {
  const double bc1 = 1.0 - std::pow(options.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(options.beta2, static_cast<double>(step));
  const double step_size = lr / bc1;
  const double bc2_sqrt = std::sqrt(bc2);
  if (options.weight_decay != 0) param.mul_(1.0 - lr * options.weight_decay);
  exp_avg.mul_(options.beta1).add_(grad, 1.0 - options.beta1);
  exp_avg_sq.mul_(options.beta2).addcmul_(grad, grad, 1.0 - options.beta2);
  const torch::Tensor denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(options.eps);
  param.addcdiv_(exp_avg, denom, -step_size);
}

void AdamW::ZeroGrad() {
  for (Slot& s : slots_) {
    if (s.param.grad().defined()) s.param.mutable_grad() = torch::Tensor();
  }
}

std::map<std::string, torch::Tensor> AdamW::StateTensors() const {
  std::map<std::string, torch::Tensor> out;
  for (const Slot& s : slots_) {
    out[s.name + ".exp_avg"] = s.exp_avg;
    out[s.name + ".exp_avg_sq"] = s.exp_avg_sq;
  }
  return out;
}

void AdamW::LoadState(const std::map<std::string, torch::Tensor>& state,
                      int64_t step) {
  torch::NoGradGuard no_grad;
  for (Slot& s : slots_) {
    for (auto* pair : {&s.exp_avg, &s.exp_avg_sq}) {
      const std::string key =
          s.name + (pair == &s.exp_avg ? ".exp_avg" : ".exp_avg_sq");
      auto it = state.find(key);
      if (it == state.end()) {
        throw BadRequest(
            fmt::format("optimizer state: missing tensor '{}'", key));
      }
      if (it->second.sizes() != pair->sizes()) {
        std::ostringstream got, want;
        got << it->second.sizes();
        want << pair->sizes();
        throw BadRequest(fmt::format(
            "optimizer state: tensor '{}' has shape {}, expected {}", key,
            got.str(), want.str()));
      }
      pair->copy_(it->second);
    }
  }
  step_ = step;
}

int64_t AdamW::StateBytes() const {
  int64_t bytes = 0;
  for (const Slot& s : slots_) {
    bytes += s.exp_avg.numel() * s.exp_avg.element_size() +
             s.exp_avg_sq.numel() * s.exp_avg_sq.element_size();
  }
  return bytes;
}

double ClipGradNorm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  double sum_sq = 0.0;
  for (const auto& p : params) {
    if (p.grad().defined()) {
      sum_sq += p.grad().to(torch::kFloat64).pow(2).sum().item<double>();
    }
  }
  const double norm = std::sqrt(sum_sq);
  if (max_norm > 0 && norm > max_norm) {
    // Same coefficient as torch.nn.utils.clip_grad_norm_.
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(scale);
    }
  }
  return norm;
}

}  // namespace clinrl::trainer
