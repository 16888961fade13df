#include "trainer/learner_group.h"

#include "core/error.h"
#include "core/log.h"
#include "policy/precision.h"
#include "trainer/checkpoint.h"
#include "trainer/data_parallel.h"

namespace clinrl::trainer {

using nlohmann::json;

namespace {

json EncodeBatch(const std::vector<TrainSequence>& batch) {
  json out = json::array();
  for (const TrainSequence& s : batch) {
    json j = {{"ids", s.ids},
              {"mask", s.loss_mask},
              {"logprobs", s.rollout_logprobs},
              {"advantage", s.advantage},
              {"version", s.policy_version}};
    if (!s.token_advantages.empty()) j["token_advantages"] = s.token_advantages;
    out.push_back(std::move(j));
  }
  return out;
}

std::vector<TrainSequence> DecodeBatch(const json& list) {
  std::vector<TrainSequence> out;
  for (const json& j : list) {
    TrainSequence s;
    s.ids = j.at("ids").get<std::vector<int64_t>>();
    s.loss_mask = j.at("mask").get<std::vector<uint8_t>>();
    s.rollout_logprobs = j.at("logprobs").get<std::vector<float>>();
    s.advantage = j.at("advantage").get<double>();
    s.policy_version = j.at("version").get<int64_t>();
    if (j.contains("token_advantages")) {
      s.token_advantages = j["token_advantages"].get<std::vector<float>>();
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<TrainSequence> Share(const std::vector<TrainSequence>& batch,
                                 const distributed::Communicator& comm) {
  const auto [first, last] = BatchShare(batch.size(), comm.rank(), comm.size());
  return {batch.begin() + static_cast<long>(first),
          batch.begin() + static_cast<long>(last)};
}

// Rank 0's tensors overwrite every other rank's, parameter by parameter in
// the (deterministic) registration order.
void BroadcastParameters(policy::Transformer& model,
                         distributed::Communicator& comm) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    // Sent as float32: rank 0's model may be bfloat16 (ZeRO-3's whole copy
    // under bf16) while the other ranks build float32 ones.
    torch::Tensor& param = p.value();
    if (param.scalar_type() == torch::kFloat32) {
      torch::Tensor t = param.detach();
      comm.Broadcast(t, 0);
      continue;
    }
    torch::Tensor t = param.detach().to(torch::kFloat32).contiguous();
    comm.Broadcast(t, 0);
    param.copy_(t);
  }
}

}  // namespace

PolicyTrainerOptions StageTrainerOptions(const ClinrlConfig& config,
                                         const std::string& stage) {
  const TrainerConfig& tc = config.trainer;
  PolicyTrainerOptions po;
  po.micro_batch = tc.micro_batch;
  po.activation_checkpointing = tc.activation_checkpointing;
  po.precision = policy::ParsePrecision(tc.precision, "trainer.precision");
  po.packing = tc.packing;
  po.reduce_dtype =
      tc.reduce_dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  po.sharding = ParseSharding(tc.sharding, "trainer.sharding");
  // Rank 0 samples, evaluates and checkpoints with its model: under ZeRO-3
  // it stays whole, refreshed after every batch.
  po.keep_full_model = po.sharding == Sharding::kZero3;
  po.grad_clip = tc.grad_clip;
  po.non_finite = ParseNonFinitePolicy(tc.non_finite);
  po.adamw.weight_decay = tc.weight_decay;
  if (stage == "sft") {
    const SftConfig& sc = tc.sft;
    po.schedule = {sc.lr, sc.warmup_steps, std::max<int64_t>(1, sc.steps),
                   sc.min_lr_ratio};
    po.compute_entropy = false;
    return po;
  }
  if (stage != "grpo") {
    throw ConfigError(fmt::format(
        "trainer.stages: got '{}', expected one of: sft, grpo", stage));
  }
  po.epochs_per_batch = tc.epochs_per_batch;
  po.schedule = {tc.lr, tc.warmup_steps, std::max<int64_t>(1, tc.steps),
                 tc.min_lr_ratio};
  po.loss.policy_loss = ParsePolicyLoss(tc.policy_loss);
  po.loss.clip_low = tc.clip_low;
  po.loss.clip_high = tc.clip_high;
  po.loss.kl_coef = tc.kl_coef;
  po.loss.kl_estimator = ParseKlEstimator(tc.kl_estimator);
  po.loss.aggregation = ParseLossAggregation(tc.loss_agg);
  po.loss.tis_cap = tc.tis_cap;
  po.loss.entropy_coef = tc.entropy_coef;
  po.temperature = config.rollout.temperature;
  return po;
}

void LearnerGroup::Send(json header) {
  std::string bytes = header.dump();
  comm_.BroadcastBytes(bytes, 0);
}

void LearnerGroup::StartStage(const std::string& stage,
                              policy::Transformer& model,
                              policy::Transformer reference,
                              const std::string& resume_dir) {
  Send({{"op", "stage"},
        {"stage", stage},
        {"model", model->options().config().ToJson()},
        {"reference", static_cast<bool>(reference)},
        {"resume_dir", resume_dir}});
  BroadcastParameters(model, comm_);
  if (reference) BroadcastParameters(reference, comm_);
}

std::vector<TrainSequence> LearnerGroup::SendBatch(
    const std::string& stage, const std::vector<TrainSequence>& batch,
    int64_t policy_version) {
  Send({{"op", stage},
        {"version", policy_version},
        {"batch", EncodeBatch(batch)}});
  return Share(batch, comm_);
}

void LearnerGroup::Checkpoint(const std::string& checkpoints_dir,
                              int64_t step) {
  Send({{"op", "checkpoint"}, {"dir", checkpoints_dir}, {"step", step}});
}

void LearnerGroup::Done() { Send({{"op", "done"}}); }

void RunLearnerFollower(const ClinrlConfig& config,
                        distributed::Communicator& comm) {
  policy::Transformer model{nullptr};
  policy::Transformer reference{nullptr};
  std::unique_ptr<PolicyTrainer> trainer;
  std::string stage;
  while (true) {
    std::string bytes;
    comm.BroadcastBytes(bytes, 0);
    const json cmd = json::parse(bytes);
    const std::string op = cmd.at("op").get<std::string>();
    if (op == "done") return;
    if (op == "stage") {
      stage = cmd.at("stage").get<std::string>();
      const policy::ModelConfig mc =
          policy::ModelConfig::FromJson(cmd.at("model"), "learner stage model");
      // Each rank's tensors live on its own device (plain "cuda": the
      // node-local rank's GPU), as rank 0's do.
      const torch::Device device =
          policy::ParseDevice(config.policy.device, "policy.device");
      // Rank 0's policy has the config's adapters (policy::LoadPolicy); the
      // broadcast below fills them.
      policy::TransformerOptions options(mc);
      options.lora(policy::LoraOptions::FromConfig(
          config.policy.lora, static_cast<uint64_t>(config.run.seed)));
      PolicyTrainerOptions po = StageTrainerOptions(config, stage);
      po.communicator = &comm;
      // A ZeRO-3 trainer leaves its model's weights empty: a new stage
      // starts from a whole one.
      trainer.reset();
      if (!model || po.sharding == Sharding::kZero3) {
        model = policy::Transformer(options);
        model->to(device);
      }
      BroadcastParameters(model, comm);
      reference = nullptr;
      if (cmd.at("reference").get<bool>()) {
        reference = policy::Transformer(options);
        reference->to(device);
        BroadcastParameters(reference, comm);
      }
      trainer = std::make_unique<PolicyTrainer>(model, po, reference);
      const std::string resume = cmd.at("resume_dir").get<std::string>();
      if (!resume.empty()) trainer->RestoreShards(resume);
      CLINRL_LOG_INFO("learner rank {}: {} stage, {} bytes of optimizer state",
                      comm.rank(), stage, trainer->OptimizerStateBytes());
      continue;
    }
    CLINRL_CHECK(trainer != nullptr, "learner command '{}' before a stage", op);
    if (op == "sft" || op == "grpo") {
      const std::vector<TrainSequence> share =
          Share(DecodeBatch(cmd.at("batch")), comm);
      if (op == "sft") {
        trainer->SftStep(share);
      } else {
        trainer->GrpoStep(share, cmd.at("version").get<int64_t>());
      }
      continue;
    }
    if (op == "checkpoint") {
      WriteShardedCheckpoint(
          comm, cmd.at("dir").get<std::string>(), cmd.at("step").get<int64_t>(),
          [](const std::string&) {},
          [&](const std::string& dir) { trainer->SaveShards(dir); },
          json::object());
      continue;
    }
    throw InternalError(
        fmt::format("learner rank {}: unknown command '{}'", comm.rank(), op));
  }
}

}  // namespace clinrl::trainer
