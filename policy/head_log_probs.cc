#include "policy/head_log_probs.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "policy/transformer.h"

namespace clinrl::policy {
namespace {

constexpr int64_t kChunkLogitBytes = int64_t{64} << 20;
constexpr int64_t kMinChunkTokens = 256;

// One chunk's scaled logits in float32: (hidden @ weight^T) / temperature,
// the product in `dtype`.
torch::Tensor ChunkLogits(const torch::Tensor& hidden,
                          const torch::Tensor& weight, double temperature,
                          c10::ScalarType dtype) {
  torch::Tensor z =
      torch::matmul(hidden.to(dtype), weight.t()).to(torch::kFloat);
  if (temperature != 1.0) z.div_(temperature);
  return z;
}

// Saves hidden, weight, targets and one float per token (log-sum-exp,
// entropy); backward recomputes each chunk's logits. With p = softmax(z),
// log p_t = z_t - lse and H = -sum_j p_j log p_j:
//   d log p_t / dz = onehot(t) - p,   dH / dz = -p (log p + H).
struct ChunkedHeadFunction : torch::autograd::Function<ChunkedHeadFunction> {
  static torch::autograd::variable_list forward(
      torch::autograd::AutogradContext* ctx, const torch::Tensor& hidden,
      const torch::Tensor& weight, const torch::Tensor& targets,
      double temperature, int64_t dtype, int64_t chunk, bool want_entropy) {
    const auto compute = static_cast<c10::ScalarType>(dtype);
    const int64_t n = hidden.size(0);
    const torch::Tensor w = weight.to(compute);
    torch::Tensor logprobs =
        torch::empty({n}, hidden.options().dtype(torch::kFloat));
    torch::Tensor entropy =
        want_entropy ? torch::empty_like(logprobs) : torch::Tensor();
    torch::Tensor lse = torch::empty_like(logprobs);
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t len = std::min(chunk, n - start);
      torch::Tensor z =
          ChunkLogits(hidden.narrow(0, start, len), w, temperature, compute);
      const torch::Tensor chunk_lse = torch::logsumexp(z, -1);
      lse.narrow(0, start, len).copy_(chunk_lse);
      const torch::Tensor t = targets.narrow(0, start, len).unsqueeze(-1);
      torch::Tensor logp = z.sub_(chunk_lse.unsqueeze(-1));  // in place
      logprobs.narrow(0, start, len).copy_(logp.gather(-1, t).squeeze(-1));
      if (want_entropy) {
        entropy.narrow(0, start, len).copy_((logp.exp() * logp).sum(-1).neg());
      }
    }
    ctx->save_for_backward(
        {hidden, weight, targets, lse, want_entropy ? entropy : lse});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["dtype"] = dtype;
    ctx->saved_data["chunk"] = chunk;
    // A loss without the entropy sends no gradient for it.
    ctx->set_materialize_grads(false);
    // Autograd takes defined outputs only: without entropies, one output.
    if (!want_entropy) return {logprobs};
    return {logprobs, entropy};
  }

  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::variable_list grad_output) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& hidden = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& targets = saved[2];
    const torch::Tensor& lse = saved[3];
    const torch::Tensor& entropy = saved[4];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const auto compute =
        static_cast<c10::ScalarType>(ctx->saved_data["dtype"].toInt());
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const torch::Tensor& g_logprob = grad_output[0];
    const torch::Tensor& g_entropy =
        grad_output.size() > 1 ? grad_output[1] : torch::Tensor();
    const bool want_hidden = ctx->needs_input_grad(0);
    const bool want_weight = ctx->needs_input_grad(1);
    torch::Tensor grad_hidden, grad_weight;
    if (!g_logprob.defined() && !g_entropy.defined()) {
      return {grad_hidden, grad_weight, {}, {}, {}, {}, {}};
    }
    if (want_hidden) grad_hidden = torch::zeros_like(hidden);
    // Summed over chunks in float32, whatever the product dtype.
    if (want_weight) {
      grad_weight =
          torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat));
    }
    const torch::Tensor w = weight.to(compute);
    const int64_t n = hidden.size(0);
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t len = std::min(chunk, n - start);
      const torch::Tensor h = hidden.narrow(0, start, len);
      torch::Tensor logp = ChunkLogits(h, w, temperature, compute)
                               .sub_(lse.narrow(0, start, len).unsqueeze(-1));
      const torch::Tensor p = logp.exp();
      torch::Tensor grad_z;
      if (g_entropy.defined()) {
        // -p (log p + H) g_H
        const torch::Tensor g = g_entropy.narrow(0, start, len).unsqueeze(-1);
        grad_z = logp.add_(entropy.narrow(0, start, len).unsqueeze(-1))
                     .mul_(p)
                     .mul_(g.neg());
      }
      if (g_logprob.defined()) {
        // (onehot(t) - p) g_lp
        const torch::Tensor g = g_logprob.narrow(0, start, len).unsqueeze(-1);
        const torch::Tensor term = p * g.neg();
        term.scatter_add_(-1, targets.narrow(0, start, len).unsqueeze(-1), g);
        grad_z = grad_z.defined() ? grad_z.add_(term) : term;
      }
      if (temperature != 1.0) grad_z.div_(temperature);
      const torch::Tensor gz = grad_z.to(compute);
      if (want_hidden) {
        grad_hidden.narrow(0, start, len).copy_(torch::matmul(gz, w));
      }
      if (want_weight) {
        grad_weight.add_(torch::matmul(gz.t(), h.to(compute)));
      }
    }
    if (want_weight) grad_weight = grad_weight.to(weight.scalar_type());
    return {grad_hidden, grad_weight, {}, {}, {}, {}, {}};
  }
};

}  // namespace

HeadLogProbs ChunkedHeadLogProbs(const torch::Tensor& hidden,
                                 const torch::Tensor& weight,
                                 const torch::Tensor& targets,
                                 const HeadLogProbsOptions& options) {
  if (weight.dim() != 2) {
    throw BadRequest(fmt::format(
        "weight: expected the head's [vocab, hidden], got {} dimensions",
        weight.dim()));
  }
  if (hidden.dim() < 1 || hidden.size(-1) != weight.size(1)) {
    throw BadRequest(fmt::format(
        "hidden: expected [..., {}] to match the head weight, got {} "
        "features",
        weight.size(1), hidden.dim() ? hidden.size(-1) : 0));
  }
  const std::vector<int64_t> token_shape(hidden.sizes().begin(),
                                         hidden.sizes().end() - 1);
  if (targets.sizes() != c10::IntArrayRef(token_shape)) {
    throw BadRequest(
        "targets: expected one id per hidden state (hidden's shape without "
        "its last dimension)");
  }
  if (options.temperature < 0) {
    throw BadRequest(fmt::format(
        "temperature: {} is negative; expected 0 (plain softmax) or more",
        options.temperature));
  }
  if (options.chunk_tokens < 0) {
    throw BadRequest(fmt::format(
        "chunk_tokens: {} is negative; expected 0 (automatic) or more",
        options.chunk_tokens));
  }
  const int64_t vocab = weight.size(0);
  const int64_t chunk =
      options.chunk_tokens > 0
          ? options.chunk_tokens
          : std::max(kMinChunkTokens,
                     kChunkLogitBytes / (vocab * int64_t{sizeof(float)}));
  const auto dtype = options.precision == Precision::kBf16
                         ? torch::kBFloat16
                         : weight.scalar_type();
  const double temperature =
      options.temperature > 0 ? options.temperature : 1.0;
  const int64_t h = hidden.size(-1);
  const auto out = ChunkedHeadFunction::apply(
      hidden.reshape({-1, h}), weight, targets.reshape({-1}), temperature,
      static_cast<int64_t>(dtype), chunk, options.entropy);
  HeadLogProbs result;
  result.logprobs = out[0].view(token_shape);
  if (options.entropy) result.entropy = out[1].view(token_shape);
  return result;
}

const torch::Tensor& HeadWeight(TransformerImpl& model) {
  return model.lm_head ? model.lm_head->weight
                       : model.model->embed_tokens->weight;
}

}  // namespace clinrl::policy
