#include "trainer/policy_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <initializer_list>

#include "core/error.h"
#include "core/log.h"
#include "core/monotonic_clock.h"
#include "policy/head_log_probs.h"
#include "policy/safetensors.h"
#include "trainer/checkpoint.h"
#include "trainer/data_parallel.h"

namespace clinrl::trainer {

namespace {
// Accumulates token-weighted means of loss statistics over micro-batches.
struct WeightedMeans {
  std::map<std::string, double> sum;
  double weight = 0.0;
  void Add(const std::map<std::string, double>& values, double w) {
    for (const auto& [k, v] : values) sum[k] += v * w;
    weight += w;
  }
  void Into(std::map<std::string, double>* out) const {
    for (const auto& [k, v] : sum) (*out)[k] = weight > 0 ? v / weight : 0.0;
  }
};

// Sampling-time against learner log-probs of the same tokens, over policy
// tokens (verl's training/rollout_probs_diff_* and rollout_corr/kl).
struct Mismatch {
  double abs_sum = 0, prob_abs_sum = 0, kl_sum = 0, max = 0, count = 0;
  void Add(const torch::Tensor& learner, const torch::Tensor& rollout,
           const torch::Tensor& mask) {
    const torch::Tensor diff = ((learner - rollout) * mask).abs();
    abs_sum += diff.sum().item<double>();
    max = std::max(max, diff.max().item<double>());
    prob_abs_sum +=
        ((learner.exp() - rollout.exp()).abs() * mask).sum().item<double>();
    // k3 estimate of KL(sampler || learner) from the sampled tokens.
    const torch::Tensor log_ratio = learner - rollout;
    kl_sum += ((log_ratio.exp() - 1.0 - log_ratio) * mask).sum().item<double>();
    count += mask.sum().item<double>();
  }
  void Into(std::map<std::string, double>* out) const {
    const double n = std::max(1.0, count);
    (*out)["mismatch/logprob_abs_diff_mean"] = abs_sum / n;
    (*out)["mismatch/logprob_abs_diff_max"] = max;
    (*out)["mismatch/prob_abs_diff_mean"] = prob_abs_sum / n;
    (*out)["mismatch/kl_k3"] = kl_sum / n;
  }
};

// "NaN", "inf" or "-inf": printf's "-nan" would only confuse a reader.
std::string NonFiniteName(double v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "inf" : "-inf";
}
}  // namespace

PolicyTrainer::PolicyTrainer(policy::Transformer model,
                             PolicyTrainerOptions options,
                             policy::Transformer reference)
    : model_(std::move(model)),
      reference_(std::move(reference)),
      options_(options) {
  CLINRL_CHECK(options_.micro_batch >= 1, "micro_batch must be >= 1, got {}",
               options_.micro_batch);
  const bool zero3 = options_.sharding == Sharding::kZero3;
  CLINRL_CHECK(!zero3 || options_.communicator != nullptr,
               "trainer.sharding zero3 needs a communicator (data-parallel "
               "learner ranks, or one rank of its own)");
  // ZeRO-3 recomputes every layer in backward anyway; the head then runs in
  // chunks as under checkpointing.
  if (zero3) options_.activation_checkpointing = true;
  if (zero3 && options_.keep_full_model && options_.communicator->rank() == 0) {
    // Rank 0 samples and checkpoints with the model it was given: the trainer
    // shards a copy of it.
    full_ = model_;
    model_ = policy::Transformer(full_->options());
    model_->to(full_->device());
    torch::NoGradGuard no_grad;
    const auto src = full_->named_parameters();
    for (auto& item : model_->named_parameters()) {
      item.value().copy_(src[item.key()]);
    }
    // The float32 masters are the shards; the whole model only samples,
    // evaluates and exports, so under bf16 it is kept in bfloat16: half the
    // bytes (a 7B policy's 14 GiB, not 28).
    if (options_.precision == policy::Precision::kBf16) {
      full_->to(torch::kBFloat16);
    }
  }
  // Only forwards with autograd on are checkpointed: rollouts, evaluation
  // and the reference model run as before.
  model_->set_activation_checkpointing(options_.activation_checkpointing);
  model_->set_precision(options_.precision);
  if (reference_) reference_->set_precision(options_.precision);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (const auto& item : model_->named_parameters()) {
    if (item.value().requires_grad())
      params.emplace_back(item.key(), item.value());
  }
  if (zero3) {
    zero3_ =
        std::make_unique<Zero3>(model_, options_.adamw, *options_.communicator,
                                options_.bucket_bytes, options_.reduce_dtype);
  } else if (options_.communicator) {
    sharded_ = std::make_unique<ShardedAdamW>(std::move(params), options_.adamw,
                                              *options_.communicator);
  } else {
    optimizer_ = std::make_unique<AdamW>(std::move(params), options_.adamw);
  }
  if (reference_) {
    reference_->eval();
    for (auto& p : reference_->parameters()) p.set_requires_grad(false);
  }
}

AdamW& PolicyTrainer::optimizer() {
  CLINRL_CHECK(optimizer_ != nullptr,
               "a data-parallel PolicyTrainer has a sharded optimizer: use "
               "sharded_optimizer()");
  return *optimizer_;
}

std::vector<torch::Tensor> PolicyTrainer::Parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& p : model_->parameters()) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

std::vector<std::vector<size_t>> PolicyTrainer::Rows(
    const std::vector<TrainSequence>& batch) const {
  std::vector<size_t> order(batch.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const auto length = [&](size_t i) { return batch[i].ids.size(); };
  std::vector<std::vector<size_t>> rows;
  if (!options_.packing) {
    // Sequences of similar length share a micro-batch, so little of each
    // padded [b, L] block is padding. The loss is normalised over the whole
    // batch, so the order does not change the gradient.
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return length(a) < length(b); });
    for (size_t i : order) rows.push_back({i});
    return rows;
  }
  // Packed: each row is a micro-batch of whole sequences, first fit,
  // longest first, within a token budget of micro_batch x the longest
  // sequence (what a padded micro-batch may hold), so memory stays bounded
  // as before and no sequence is ever split.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return length(a) > length(b); });
  const size_t budget =
      order.empty()
          ? 0
          : length(order.front()) * static_cast<size_t>(options_.micro_batch);
  std::vector<size_t> fill;
  for (size_t i : order) {
    size_t r = 0;
    while (r < rows.size() && fill[r] + length(i) > budget) ++r;
    if (r == rows.size()) {
      rows.emplace_back();
      fill.push_back(0);
    }
    rows[r].push_back(i);
    fill[r] += length(i);
  }
  return rows;
}

std::vector<PolicyTrainer::MicroBatch> PolicyTrainer::Split(
    const std::vector<TrainSequence>& batch) const {
  bool per_token = false;  // some sequence has token advantages
  for (size_t i = 0; i < batch.size(); ++i) {
    const TrainSequence& s = batch[i];
    if (s.loss_mask.size() != s.ids.size() ||
        s.rollout_logprobs.size() != s.ids.size()) {
      throw BadRequest(fmt::format(
          "training sequence {}: {} ids, {} mask values, {} log-probs "
          "(expected one each per position)",
          i, s.ids.size(), s.loss_mask.size(), s.rollout_logprobs.size()));
    }
    if (!s.token_advantages.empty() &&
        s.token_advantages.size() != s.ids.size()) {
      throw BadRequest(fmt::format(
          "training sequence {}: {} token advantages for {} ids (expected "
          "none, or one per position)",
          i, s.token_advantages.size(), s.ids.size()));
    }
    per_token = per_token || !s.token_advantages.empty();
  }
  const bool packed = options_.packing;
  const std::vector<std::vector<size_t>> rows = Rows(batch);
  const torch::Device device = model_->device();
  // Padded: micro_batch rows per pass; packed: one row, already budgeted.
  const size_t rows_per_pass =
      packed ? 1 : static_cast<size_t>(options_.micro_batch);
  std::vector<MicroBatch> out;
  for (size_t first = 0; first < rows.size(); first += rows_per_pass) {
    const size_t last = std::min(rows.size(), first + rows_per_pass);
    const int64_t b = static_cast<int64_t>(last - first);
    int64_t length = 2;
    for (size_t r = first; r < last; ++r) {
      int64_t row_length = 0;
      for (size_t i : rows[r]) {
        row_length += static_cast<int64_t>(batch[i].ids.size());
      }
      length = std::max(length, row_length);
    }
    // Built on the CPU through accessors, moved to the device once.
    MicroBatch mb;
    torch::Tensor ids = torch::full({b, length}, options_.pad_id, torch::kLong);
    torch::Tensor attention = torch::zeros({b, length}, torch::kLong);
    torch::Tensor segments = torch::zeros({b, length}, torch::kLong);
    // Per target: slot t of the model's output predicts token t + 1.
    torch::Tensor mask = torch::zeros({b, length - 1}, torch::kFloat32);
    torch::Tensor rollout = torch::zeros({b, length - 1}, torch::kFloat32);
    torch::Tensor token_adv = torch::zeros({b, length - 1}, torch::kFloat32);
    torch::Tensor seq_tokens = torch::zeros({b, length - 1}, torch::kFloat32);
    torch::Tensor advantages = torch::zeros({b}, torch::kFloat32);
    auto ids_a = ids.accessor<int64_t, 2>();
    auto att_a = attention.accessor<int64_t, 2>();
    auto seg_a = segments.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<float, 2>();
    auto roll_a = rollout.accessor<float, 2>();
    auto tadv_a = token_adv.accessor<float, 2>();
    auto stok_a = seq_tokens.accessor<float, 2>();
    for (int64_t r = 0; r < b; ++r) {
      int64_t offset = 0;
      int64_t segment = 0;
      for (size_t i : rows[first + static_cast<size_t>(r)]) {
        const TrainSequence& s = batch[i];
        const int64_t n = static_cast<int64_t>(s.ids.size());
        float policy_tokens = 0;
        for (int64_t t = 1; t < n; ++t) policy_tokens += s.loss_mask[t] ? 1 : 0;
        ++segment;
        for (int64_t t = 0; t < n; ++t) {
          ids_a[r][offset + t] = s.ids[t];
          att_a[r][offset + t] = 1;
          seg_a[r][offset + t] = segment;
          // A sequence's first token is nobody's target: in a packed row
          // the slot before it belongs to another sequence.
          if (t == 0) continue;
          const int64_t j = offset + t - 1;
          mask_a[r][j] = s.loss_mask[t] ? 1.0f : 0.0f;
          roll_a[r][j] = s.rollout_logprobs[t];
          tadv_a[r][j] = s.token_advantages.empty()
                             ? static_cast<float>(s.advantage)
                             : s.token_advantages[t];
          stok_a[r][j] = policy_tokens;
        }
        if (!packed) advantages[r] = s.advantage;
        offset += n;
        mb.tokens += n;
      }
    }
    mb.slots = b * length;
    mb.ids = ids.to(device);
    mb.attention = attention.to(device);
    mb.mask = mask.to(device);
    mb.rollout = rollout.to(device);
    if (packed) {
      mb.segments = segments.to(device);
      // GSPO's sequences: each target belongs to its token's segment; ids
      // unique across the rows.
      mb.sequence_ids =
          (segments.slice(1, 1) +
           torch::arange(b, torch::kLong).unsqueeze(1) * (length + 1))
              .to(device);
      mb.advantages = token_adv.to(device);
      mb.seq_policy_tokens = seq_tokens.to(device);
    } else {
      mb.advantages = (per_token ? token_adv : advantages).to(device);
    }
    out.push_back(std::move(mb));
  }
  return out;
}

double PolicyTrainer::PadFraction(const std::vector<MicroBatch>& micro) {
  double tokens = 0, slots = 0;
  for (const MicroBatch& mb : micro) {
    tokens += static_cast<double>(mb.tokens);
    slots += static_cast<double>(mb.slots);
  }
  return slots > 0 ? 1.0 - tokens / slots : 0.0;
}

torch::Tensor PolicyTrainer::TargetLogProbs(policy::Transformer& model,
                                            const MicroBatch& mb,
                                            torch::Tensor* entropy) {
  // Under checkpointing, and wherever no gradient is kept, the logits (the
  // largest activation: tokens x vocab floats) are never held whole: a chunk
  // at a time, recomputed in backward (policy/head_log_probs.h).
  if (options_.activation_checkpointing || !torch::GradMode::is_enabled()) {
    const torch::Tensor hidden =
        model->Hidden(mb.ids, {}, mb.attention, nullptr, mb.segments)
            .slice(1, 0, -1);
    policy::HeadLogProbsOptions o;
    o.temperature = options_.temperature;
    o.precision = model->precision();
    o.entropy = entropy != nullptr;
    policy::HeadLogProbs out = policy::ChunkedHeadLogProbs(
        hidden, policy::HeadWeight(*model), mb.ids.slice(1, 1), o);
    if (entropy) *entropy = out.entropy;
    return out.logprobs;
  }
  torch::Tensor logits =
      model->forward(mb.ids, {}, mb.attention, nullptr, mb.segments)
          .slice(1, 0, -1);
  if (options_.temperature > 0 && options_.temperature != 1.0) {
    logits = logits / options_.temperature;
  }
  const torch::Tensor targets = mb.ids.slice(1, 1);
  if (entropy) {
    const torch::Tensor log_p =
        torch::log_softmax(logits.to(torch::kFloat32), -1);
    *entropy = -(log_p.exp() * log_p).sum(-1);
    return log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  }
  return policy::GatherLogProbs(logits, targets);
}

void PolicyTrainer::DropGradients() {
  for (auto& p : Parameters()) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
  if (zero3_) zero3_->DropGradients();
}

void PolicyTrainer::SaveShards(const std::string& dir) const {
  CLINRL_CHECK(sharded(), "SaveShards on a one-process trainer");
  if (zero3_) {
    zero3_->SaveShards(dir);
  } else {
    sharded_->SaveShard(dir);
  }
}

void PolicyTrainer::RestoreShards(const std::string& dir) {
  CLINRL_CHECK(sharded(), "RestoreShards on a one-process trainer");
  const bool zero3_files = std::filesystem::exists(dir + "/zero3_layout.json");
  const bool zero1_files =
      std::filesystem::exists(dir + "/optimizer_layout.json");
  if (zero3_ && zero3_files) {
    zero3_->LoadShards(dir);
    RefreshFullModel();
    return;
  }
  if (sharded_ && zero1_files) {
    sharded_->LoadShards(dir);
    return;
  }
  if (zero3_files || zero1_files) {
    throw BadRequest(fmt::format(
        "checkpoint {}: written with trainer.sharding {}, this run has {}; "
        "expected the same (each lays out its shards its own way)",
        dir, zero3_files ? "zero3" : "zero1", ShardingName(options_.sharding)));
  }
  if (!std::filesystem::exists(dir + "/optimizer.safetensors")) return;
  // A one-process checkpoint: every rank takes its slice of the moments.
  policy::SafetensorsFile file(dir + "/optimizer.safetensors");
  std::map<std::string, torch::Tensor> moments;
  for (const auto& name : file.Names()) moments[name] = file.Get(name).clone();
  const int64_t step =
      OpenCheckpoint(dir).state.at("optimizer_step").get<int64_t>();
  if (zero3_) {
    zero3_->LoadFullState(moments, step);
  } else {
    sharded_->LoadFullState(moments, step);
  }
}

size_t PolicyTrainer::EqualiseMicroBatches(
    std::vector<MicroBatch>* micro) const {
  const size_t real = micro->size();
  if (!zero3_) return real;
  torch::Tensor most =
      torch::tensor({static_cast<double>(real)}, torch::kFloat64);
  options_.communicator->AllReduce(most, distributed::ReduceOp::kMax);
  const auto target = static_cast<size_t>(most.item<double>());
  if (target > real) {
    // Two padding tokens, nothing trained.
    TrainSequence empty;
    empty.ids = {options_.pad_id, options_.pad_id};
    empty.loss_mask = {0, 0};
    empty.rollout_logprobs = {0.0f, 0.0f};
    MicroBatch mb = Split({empty}).front();
    mb.tokens = 0;
    mb.slots = 0;
    micro->resize(target, mb);
  }
  return real;
}

void PolicyTrainer::EmptyPass(const MicroBatch& mb) {
  // The gradient of zero times the log-probs: zeros, through every layer,
  // so this rank joins each layer's gathers and reduce-scatters.
  (TargetLogProbs(model_, mb, nullptr).sum() * 0.0).backward();
}

void PolicyTrainer::RefreshFullModel() {
  if (!zero3_ || !options_.keep_full_model) return;
  torch::NoGradGuard no_grad;
  auto dst = full_ ? full_->named_parameters()
                   : torch::OrderedDict<std::string, torch::Tensor>();
  zero3_->ForEachGatheredUnit([&](const std::vector<std::string>& names,
                                  const std::vector<torch::Tensor>& params) {
    if (!full_) return;  // another rank keeps the whole model
    for (size_t i = 0; i < names.size(); ++i) dst[names[i]].copy_(params[i]);
  });
}

std::vector<std::pair<std::string, torch::Tensor>> PolicyTrainer::GatherWeights(
    torch::ScalarType dtype, int root) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  const bool mine =
      !options_.communicator || options_.communicator->rank() == root;
  const auto take = [&](const std::string& name, const torch::Tensor& p) {
    if (mine) out.emplace_back(name, p.to(torch::kCPU, dtype, false, true));
  };
  if (!zero3_) {
    for (const auto& item : model_->named_parameters()) {
      take(item.key(), item.value());
    }
    return out;
  }
  // Unit by unit: decoder layers in order, then the root.
  zero3_->ForEachGatheredUnit([&](const std::vector<std::string>& names,
                                  const std::vector<torch::Tensor>& params) {
    for (size_t i = 0; i < names.size(); ++i) take(names[i], params[i]);
  });
  return out;
}

bool PolicyTrainer::StepIsFinite(bool loss_finite, double loss,
                                 double grad_norm) {
  if (loss_finite && std::isfinite(grad_norm)) return true;
  DropGradients();
  // Data-parallel ranks see the same global norm and the all-reduced loss
  // flag, so they all skip or all stop: none is left waiting in a collective.
  std::string what;
  if (!loss_finite) {
    what = std::isfinite(loss)
               ? "the loss is non-finite on another learner rank"
               : "the loss is " + NonFiniteName(loss);
  }
  if (!std::isfinite(grad_norm)) {
    if (!what.empty()) what += " and ";
    what += "the gradient norm (grad_norm) is " + NonFiniteName(grad_norm);
  }
  const int64_t step = optimizer_step() + 1;
  if (options_.non_finite == NonFinitePolicy::kStop) {
    throw NonFiniteError(fmt::format(
        "optimizer step {}: {}; the update was not applied and training "
        "stops (trainer.non_finite=stop). Lower the learning rate "
        "(trainer.lr; trainer.sft.lr for SFT), check the data, or set "
        "trainer.non_finite=skip to skip such batches",
        step, what));
  }
  ++non_finite_skipped_;
  if (!options_.communicator || options_.communicator->rank() == 0) {
    CLINRL_LOG_WARN(
        "optimizer step {}: {}; skipped the batch, weights and optimizer "
        "state unchanged (trainer.non_finite=skip; {} skipped so far)",
        step, what, non_finite_skipped_);
  }
  return false;
}

namespace {

[[noreturn]] void ThrowNonFiniteUpdate(int64_t step, const std::string& bad,
                                       double norm) {
  throw NonFiniteError(fmt::format(
      "optimizer step {}: the update made parameter {} non-finite, from "
      "a finite loss and gradient norm ({}): the learning rate (trainer.lr; "
      "trainer.sft.lr for SFT) is far too large. An applied update cannot "
      "be skipped, so training stops whatever trainer.non_finite says",
      step, bad, norm));
}

}  // namespace

double PolicyTrainer::ApplyGradients(double loss) {
  const std::vector<torch::Tensor> params = Parameters();
  if (reduce_) reduce_(params);
  const int64_t step = optimizer_step() + 1;
  double norm = 0;
  if (zero3_) {
    // The layers' gradients were reduce-scattered as the backward went.
    const Zero3Gradients reduced = zero3_->FinishGradients(std::isfinite(loss));
    norm = reduced.norm;
    if (!StepIsFinite(reduced.loss_finite, loss, norm)) return norm;
    // Same coefficient as ClipGradNorm (torch.nn.utils.clip_grad_norm_).
    const double scale = options_.grad_clip > 0 && norm > options_.grad_clip
                             ? options_.grad_clip / (norm + 1e-6)
                             : 1.0;
    zero3_->Step(options_.schedule.At(zero3_->step()), scale);
    DropGradients();
    const std::string bad = zero3_->FirstNonFiniteParameter();
    if (!bad.empty()) ThrowNonFiniteUpdate(step, bad, norm);
    return norm;
  }
  if (!sharded_) {
    norm = ClipGradNorm(params, options_.grad_clip);
    if (!StepIsFinite(std::isfinite(loss), loss, norm)) return norm;
    optimizer_->Step(options_.schedule.At(optimizer_->step()));
    optimizer_->ZeroGrad();
  } else {
    // Each rank's loss is already divided by the global normaliser, so the
    // global gradient is the sum of the ranks' gradients.
    ReducedGradients reduced = ReduceScatterGradients(
        sharded_->layout(), *options_.communicator, options_.bucket_bytes,
        std::isfinite(loss), options_.reduce_dtype);
    norm = reduced.norm;
    if (!StepIsFinite(reduced.loss_finite, loss, norm)) return norm;
    if (options_.grad_clip > 0 && reduced.norm > options_.grad_clip) {
      // Same coefficient as ClipGradNorm (torch.nn.utils.clip_grad_norm_).
      reduced.shard.mul_(options_.grad_clip / (reduced.norm + 1e-6));
    }
    sharded_->Step(options_.schedule.At(sharded_->step()), reduced.shard,
                   reduced.has_grad);
    DropGradients();
  }
  // Finite gradients can still overflow a weight (a huge learning rate).
  // Every rank holds the same gathered weights, so all throw together.
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : model_->named_parameters()) {
    if (item.value().requires_grad())
      named.emplace_back(item.key(), item.value());
  }
  const std::string bad = FirstNonFiniteTensor(named);
  if (!bad.empty()) ThrowNonFiniteUpdate(step, bad, norm);
  return norm;
}

namespace {

// Sums each value over the data-parallel ranks, in float64, in one
// collective; nothing without a communicator.
void SumOverRanks(distributed::Communicator* comm,
                  std::initializer_list<double*> values) {
  if (!comm) return;
  torch::Tensor sums =
      torch::empty({static_cast<int64_t>(values.size())}, torch::kFloat64);
  auto in = sums.accessor<double, 1>();
  int64_t i = 0;
  for (const double* v : values) in[i++] = *v;
  comm->AllReduce(sums, distributed::ReduceOp::kSum);
  i = 0;
  for (double* v : values) *v = in[i++];
}

// ZeRO-3's root unit (embeddings, final norm, head) is whole for a step.
struct RootGathered {
  explicit RootGathered(Zero3* zero3) : zero3(zero3) {
    if (zero3) zero3->GatherRoot();
  }
  ~RootGathered() {
    if (zero3) zero3->ReleaseRoot();
  }
  RootGathered(const RootGathered&) = delete;
  RootGathered& operator=(const RootGathered&) = delete;
  Zero3* zero3;
};

// What the GRPO loss normalises by, measured over the global batch (every
// data-parallel rank's share), so that neither the micro-batch size nor the
// number of ranks changes the gradient.
struct GlobalBatch {
  double policy_tokens = 0;
  double sequences = 0;
  int64_t longest_target = 0;  // Dr. GRPO's default constant
  bool stale = false;          // a sequence sampled by older weights
  double count = 1;            // the loss's normaliser
};

GlobalBatch MeasureGlobalBatch(const std::vector<TrainSequence>& batch,
                               double local_policy_tokens,
                               int64_t policy_version,
                               distributed::Communicator* comm,
                               const GrpoLossOptions& loss) {
  GlobalBatch g;
  g.policy_tokens = local_policy_tokens;
  g.sequences = static_cast<double>(batch.size());
  for (const auto& seq : batch) {
    g.stale |= seq.policy_version < policy_version;
    g.longest_target = std::max<int64_t>(
        g.longest_target, static_cast<int64_t>(seq.ids.size()) - 1);
  }
  if (comm) {
    // Normalisers, Dr. GRPO's length and the decision to recompute
    // log-probs must be the same on every rank.
    SumOverRanks(comm, {&g.policy_tokens, &g.sequences});
    torch::Tensor maxes = torch::tensor(
        {static_cast<double>(g.longest_target), g.stale ? 1.0 : 0.0},
        torch::kFloat64);
    comm->AllReduce(maxes, distributed::ReduceOp::kMax);
    g.longest_target = static_cast<int64_t>(maxes[0].item<double>());
    g.stale = maxes[1].item<double>() > 0;
  }
  g.count = loss.aggregation == LossAggregation::kTokenMean
                ? std::max(1.0, g.policy_tokens)
                : std::max(1.0, g.sequences);
  return g;
}

}  // namespace

void PolicyTrainer::FixedLogProbs(const std::vector<MicroBatch>& micro,
                                  bool recompute,
                                  std::vector<torch::Tensor>* old,
                                  std::vector<torch::Tensor>* ref) {
  torch::NoGradGuard no_grad;
  old->assign(micro.size(), torch::Tensor());
  ref->assign(micro.size(), torch::Tensor());
  const bool from_forward = recompute && options_.epochs_per_batch == 1;
  for (size_t i = 0; i < micro.size(); ++i) {
    if (!from_forward) {
      (*old)[i] = recompute ? TargetLogProbs(model_, micro[i], nullptr)
                            : micro[i].rollout;
    }
    if (reference_ && options_.loss.kl_coef > 0) {
      (*ref)[i] = TargetLogProbs(reference_, micro[i], nullptr);
    }
  }
}

std::vector<double> PolicyTrainer::ReferenceKlSums(
    const std::vector<TrainSequence>& batch) {
  CLINRL_CHECK(static_cast<bool>(reference_),
               "ReferenceKlSums: the trainer has no reference model");
  torch::NoGradGuard no_grad;
  policy::HeadLogProbsOptions o;
  o.temperature = options_.temperature;
  o.precision = reference_->precision();
  o.entropy = false;
  std::vector<double> sums(batch.size(), 0.0);
  // One forward per micro-batch of rows, right-padded: under causal
  // attention a padded tail changes nothing before it, and positions start
  // at 0 in every row as they do alone.
  const auto rows =
      static_cast<size_t>(std::max<int64_t>(1, options_.micro_batch));
  for (size_t first = 0; first < batch.size(); first += rows) {
    const size_t last = std::min(batch.size(), first + rows);
    size_t longest = 0;
    for (size_t i = first; i < last; ++i) {
      longest = std::max(longest, batch[i].ids.size());
    }
    if (longest < 2) continue;
    std::vector<int64_t> padded((last - first) * longest, 0);
    for (size_t i = first; i < last; ++i) {
      std::copy(batch[i].ids.begin(), batch[i].ids.end(),
                padded.begin() + static_cast<long>((i - first) * longest));
    }
    const auto width = static_cast<int64_t>(longest);
    const torch::Tensor ids =
        torch::tensor(padded, torch::kLong)
            .view({static_cast<int64_t>(last - first), width})
            .to(reference_->device());
    const torch::Tensor ref =
        policy::ChunkedHeadLogProbs(reference_->Hidden(ids).slice(1, 0, -1),
                                    policy::HeadWeight(*reference_),
                                    ids.slice(1, 1), o)
            .logprobs.view({static_cast<int64_t>(last - first), width - 1})
            .to(torch::kCPU, torch::kDouble);
    const auto r = ref.accessor<double, 2>();
    for (size_t i = first; i < last; ++i) {
      const TrainSequence& s = batch[i];
      double sum = 0;
      for (size_t t = 1; t < s.ids.size(); ++t) {
        if (s.loss_mask[t]) {
          sum +=
              s.rollout_logprobs[t] -
              r[static_cast<int64_t>(i - first)][static_cast<int64_t>(t) - 1];
        }
      }
      sums[i] = sum;
    }
  }
  return sums;
}

std::vector<torch::Tensor> PolicyTrainer::PackedLossWeights(
    const std::vector<MicroBatch>& micro, const GrpoLossOptions& loss,
    double global_count) const {
  std::vector<torch::Tensor> weights(micro.size());
  if (!options_.packing) return weights;
  for (size_t i = 0; i < micro.size(); ++i) {
    torch::Tensor w = micro[i].mask / global_count;
    switch (loss.aggregation) {
      case LossAggregation::kTokenMean:
        break;
      case LossAggregation::kSeqMeanTokenMean:
        w = w / micro[i].seq_policy_tokens.clamp_min(1.0);
        break;
      case LossAggregation::kSeqMeanTokenSumNorm:
        w = w / static_cast<double>(std::max<int64_t>(1, loss.norm_length));
        break;
    }
    weights[i] = w;
  }
  return weights;
}

std::map<std::string, double> PolicyTrainer::GrpoStep(
    const std::vector<TrainSequence>& batch, int64_t policy_version) {
  std::map<std::string, double> metrics;
  distributed::Communicator* comm = options_.communicator;
  // A data-parallel rank with an empty share still joins the collectives.
  if (batch.empty() && !comm) return metrics;
  const double start = MonotonicSeconds();
  const RootGathered root(zero3_.get());
  std::vector<MicroBatch> micro = Split(batch);
  const size_t real = EqualiseMicroBatches(&micro);
  double local_policy_tokens = 0;
  for (const auto& mb : micro) {
    local_policy_tokens += mb.mask.sum().item<double>();
  }
  const GlobalBatch global = MeasureGlobalBatch(
      batch, local_policy_tokens, policy_version, comm, options_.loss);
  const int64_t longest_target = global.longest_target;
  const bool stale = global.stale;
  const double global_count = global.count;

  // bf16 sampling and learner forwards round differently (verl's
  // "training/inference mismatch"): the learner's own log-probs are the
  // ratio's denominator and truncated importance weights correct the rest.
  const bool recompute = options_.recompute_old_logprobs ||
                         options_.epochs_per_batch > 1 || stale ||
                         options_.precision != policy::Precision::kFp32;
  std::vector<torch::Tensor> old, ref;
  FixedLogProbs(micro, recompute, &old, &ref);

  // Dr. GRPO's constant must be the same for every micro-batch: by default
  // the longest sequence of the whole batch, not of each micro-batch.
  GrpoLossOptions loss_options = options_.loss;
  if (loss_options.norm_length <= 0) loss_options.norm_length = longest_target;

  const std::vector<torch::Tensor> loss_weights =
      PackedLossWeights(micro, loss_options, global_count);

  WeightedMeans means;
  Mismatch mismatch;
  double grad_norm = 0, loss_sum = 0, pg_sum = 0;
  // Gradient reduction, clipping, the update and (data-parallel) the
  // parameter all-gather: what data parallelism adds to a step.
  double optimizer_s = 0;
  int64_t forward_tokens = 0;
  model_->train();
  const int64_t skipped_before = non_finite_skipped_;
  for (int64_t epoch = 0; epoch < options_.epochs_per_batch; ++epoch) {
    if (zero3_) zero3_->GatherRoot();  // each update releases it (Zero3::Step)
    double epoch_loss = 0;
    for (size_t i = 0; i < micro.size(); ++i) {
      const MicroBatch& mb = micro[i];
      if (i >= real) {
        EmptyPass(mb);
        continue;
      }
      GrpoLossInputs in;
      const bool want_entropy =
          options_.compute_entropy || options_.loss.entropy_coef != 0;
      torch::Tensor entropy;
      in.logprobs =
          TargetLogProbs(model_, mb, want_entropy ? &entropy : nullptr);
      in.old_logprobs = old[i].defined() ? old[i] : in.logprobs.detach();
      in.advantages = mb.advantages;
      in.mask = mb.mask;
      in.ref_logprobs = ref[i];
      // Importance weights only matter when the denominator is not the
      // sampling policy itself.
      if (recompute) in.rollout_logprobs = mb.rollout;
      in.entropy = entropy;
      in.global_count = global_count;
      in.loss_weights = loss_weights[i];
      in.sequence_ids = mb.sequence_ids;
      if (epoch == 0) {
        // The learner's log-probs under the weights the step starts from
        // against the sampler's: pure numerics when the batch is on-policy.
        mismatch.Add(recompute ? in.old_logprobs : in.logprobs.detach(),
                     mb.rollout, mb.mask);
      }
      const GrpoLossOutput out = GrpoLoss(in, loss_options);
      out.loss.backward();
      epoch_loss += out.loss.item<double>();
      forward_tokens += mb.tokens;
      if (epoch == options_.epochs_per_batch - 1) {
        pg_sum += out.pg_loss;  // already normalised by the global count
        means.Add({{"kl", out.kl},
                   {"entropy", out.entropy},
                   {"clip_frac/low", out.clip_frac_low},
                   {"clip_frac/high", out.clip_frac_high},
                   {"ratio/mean", out.ratio_mean},
                   {"tis/weight_mean", out.tis_weight_mean},
                   {"tis/clip_frac", out.tis_clip_frac}},
                  mb.mask.sum().item<double>());
      }
    }
    loss_sum += epoch_loss;
    const double optimizer_start = MonotonicSeconds();
    grad_norm = ApplyGradients(epoch_loss);
    optimizer_s += MonotonicSeconds() - optimizer_start;
  }
  RefreshFullModel();
  means.Into(&metrics);
  mismatch.Into(&metrics);
  // Each rank's loss is its share of the global loss.
  SumOverRanks(comm, {&loss_sum, &pg_sum});
  const double elapsed = MonotonicSeconds() - start;
  metrics["loss"] = loss_sum / static_cast<double>(options_.epochs_per_batch);
  metrics["pg_loss"] = pg_sum;
  metrics["grad_norm"] = grad_norm;
  metrics["lr"] =
      options_.schedule.At(std::max<int64_t>(0, optimizer_step() - 1));
  metrics["train/non_finite_skipped"] =
      static_cast<double>(non_finite_skipped_ - skipped_before);
  metrics["train/policy_tokens"] = global.policy_tokens;
  metrics["train/pad_fraction"] = PadFraction(micro);
  metrics["train/recomputed_old_logprobs"] = recompute ? 1.0 : 0.0;
  metrics["throughput/train_tokens_per_s"] =
      elapsed > 0 ? static_cast<double>(forward_tokens) / elapsed : 0.0;
  metrics["time/learn_s"] = elapsed;
  metrics["time/optimizer_s"] = optimizer_s;
  return metrics;
}

std::map<std::string, double> PolicyTrainer::SftStep(
    const std::vector<TrainSequence>& batch) {
  std::map<std::string, double> metrics;
  distributed::Communicator* comm = options_.communicator;
  if (batch.empty() && !comm) return metrics;
  const double start = MonotonicSeconds();
  const RootGathered root(zero3_.get());
  std::vector<MicroBatch> micro = Split(batch);
  const size_t real = EqualiseMicroBatches(&micro);
  double tokens = 0;
  for (const auto& mb : micro) tokens += mb.mask.sum().item<double>();
  SumOverRanks(comm, {&tokens});
  tokens = std::max(tokens, 1.0);
  model_->train();
  double loss_sum = 0;
  int64_t forward_tokens = 0;
  for (size_t i = 0; i < micro.size(); ++i) {
    const MicroBatch& mb = micro[i];
    if (i >= real) {
      EmptyPass(mb);
      continue;
    }
    const torch::Tensor logp = TargetLogProbs(model_, mb, nullptr);
    const torch::Tensor loss = -(logp * mb.mask).sum() / tokens;
    loss.backward();
    loss_sum += loss.item<double>();
    forward_tokens += mb.tokens;
  }
  const int64_t skipped_before = non_finite_skipped_;
  metrics["grad_norm"] = ApplyGradients(loss_sum);
  RefreshFullModel();
  metrics["train/non_finite_skipped"] =
      static_cast<double>(non_finite_skipped_ - skipped_before);
  SumOverRanks(comm, {&loss_sum});
  metrics["loss"] = loss_sum;
  metrics["train/pad_fraction"] = PadFraction(micro);
  metrics["lr"] =
      options_.schedule.At(std::max<int64_t>(0, optimizer_step() - 1));
  const double elapsed = MonotonicSeconds() - start;
  metrics["throughput/train_tokens_per_s"] =
      elapsed > 0 ? static_cast<double>(forward_tokens) / elapsed : 0.0;
  return metrics;
}

}  // namespace clinrl::trainer
