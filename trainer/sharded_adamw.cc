#include "trainer/sharded_adamw.h"

#include <cmath>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "policy/safetensors.h"

namespace clinrl::trainer {

namespace {

constexpr const char* kLayoutFile = "optimizer_layout.json";
constexpr const char* kLayoutFormat = "clinrl-zero1-1";

std::string ShardFileName(int rank, int ranks) {
  return fmt::format("optimizer.shard-{:05d}-of-{:05d}.safetensors", rank,
                     ranks);
}

// The part of parameter i that falls into the flat range [begin, end), as
// [first, last) flat indices; empty when they do not overlap.
std::pair<int64_t, int64_t> Overlap(const FlatParameterLayout& layout, size_t i,
                                    int64_t begin, int64_t end) {
  const int64_t off = layout.offsets[i];
  const int64_t first = std::max(begin, off);
  const int64_t last = std::min(end, off + layout.params[i].numel());
  return {first, std::max(first, last)};
}

}  // namespace

FlatParameterLayout::FlatParameterLayout(
    std::vector<std::pair<std::string, torch::Tensor>> named, int ranks_in)
    : ranks(ranks_in) {
  CLINRL_CHECK(ranks >= 1, "ranks must be >= 1, got {}", ranks);
  for (auto& [name, p] : named) {
    CLINRL_CHECK(p.is_contiguous(),
                 "parameter {} is not contiguous (ZeRO-1 updates it in place "
                 "through a flat view)",
                 name);
    if (!params.empty()) {
      CLINRL_CHECK(p.scalar_type() == params.front().scalar_type(),
                   "parameter {} is {}, the first one {}: ZeRO-1 needs one "
                   "dtype",
                   name, c10::toString(p.scalar_type()),
                   c10::toString(params.front().scalar_type()));
    }
    names.push_back(name);
    offsets.push_back(numel);
    numel += p.numel();
    params.push_back(p);
  }
  shard_size = std::max<int64_t>(1, (numel + ranks - 1) / ranks);
}

ShardedAdamW::ShardedAdamW(
    std::vector<std::pair<std::string, torch::Tensor>> params,
    AdamWOptions options, distributed::Communicator& comm)
    : layout_(std::move(params), comm.size()), options_(options), comm_(comm) {
  begin_ = layout_.ShardBegin(comm_.rank());
  end_ = layout_.ShardEnd(comm_.rank());
  // The moments live with the parameters (a GPU rank's on its GPU).
  const auto like = layout_.params.empty()
                        ? torch::TensorOptions().dtype(torch::kFloat32)
                        : layout_.params[0].options();
  exp_avg_ = torch::zeros({end_ - begin_}, like);
  exp_avg_sq_ = torch::zeros({end_ - begin_}, like);
}

void ShardedAdamW::Step(double lr, const torch::Tensor& grad_shard,
                        const std::vector<bool>& has_grad) {
  CLINRL_CHECK(grad_shard.numel() == layout_.shard_size,
               "gradient shard has {} elements, expected {}",
               grad_shard.numel(), layout_.shard_size);
  CLINRL_CHECK(has_grad.size() == layout_.params.size(),
               "has_grad has {} entries for {} parameters", has_grad.size(),
               layout_.params.size());
  torch::NoGradGuard no_grad;
  ++step_;
  // AdamW's update on the owned piece of each parameter.
  for (size_t i = 0; i < layout_.params.size(); ++i) {
    const auto [first, last] = Overlap(layout_, i, begin_, end_);
    if (last <= first || !has_grad[i]) continue;
    const int64_t n = last - first;
    torch::Tensor p =
        layout_.params[i].view(-1).narrow(0, first - layout_.offsets[i], n);
    const torch::Tensor g = grad_shard.narrow(0, first - begin_, n);
    torch::Tensor m = exp_avg_.narrow(0, first - begin_, n);
    torch::Tensor v = exp_avg_sq_.narrow(0, first - begin_, n);
    AdamWUpdate(p, g, m, v, lr, step_, options_);
  }
  if (comm_.size() == 1 || layout_.params.empty()) return;
  // Every rank sends its updated shard and receives everyone else's.
  const auto like = layout_.params[0].options();
  torch::Tensor mine = torch::zeros({layout_.shard_size}, like);
  for (size_t i = 0; i < layout_.params.size(); ++i) {
    const auto [first, last] = Overlap(layout_, i, begin_, end_);
    if (last <= first) continue;
    mine.narrow(0, first - begin_, last - first)
        .copy_(layout_.params[i].view(-1).narrow(0, first - layout_.offsets[i],
                                                 last - first));
  }
  torch::Tensor all = torch::empty({layout_.padded()}, like);
  comm_.AllGather(mine, all);
  for (size_t i = 0; i < layout_.params.size(); ++i) {
    layout_.params[i].view(-1).copy_(
        all.narrow(0, layout_.offsets[i], layout_.params[i].numel()));
  }
}

int64_t ShardedAdamW::StateBytes() const {
  return exp_avg_.numel() * exp_avg_.element_size() +
         exp_avg_sq_.numel() * exp_avg_sq_.element_size();
}

void ShardedAdamW::SaveShard(const std::string& dir) const {
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"begin", std::to_string(begin_)},
      {"end", std::to_string(end_)},
      {"rank", std::to_string(comm_.rank())},
      {"ranks", std::to_string(comm_.size())}};
  policy::SaveSafetensors(dir + "/" + ShardFileName(comm_.rank(), comm_.size()),
                          {{"exp_avg", exp_avg_}, {"exp_avg_sq", exp_avg_sq_}},
                          metadata);
  if (comm_.rank() != 0) return;
  nlohmann::json params = nlohmann::json::array();
  for (size_t i = 0; i < layout_.names.size(); ++i) {
    params.push_back(
        {{"name", layout_.names[i]}, {"numel", layout_.params[i].numel()}});
  }
  const nlohmann::json layout = {
      {"format", kLayoutFormat}, {"ranks", comm_.size()},
      {"numel", layout_.numel},  {"shard_size", layout_.shard_size},
      {"step", step_},           {"params", params}};
  WriteFileAtomic(dir + "/" + kLayoutFile, layout.dump(2) + "\n");
}

void ShardedAdamW::LoadShards(const std::string& dir) {
  const std::string layout_path = dir + "/" + kLayoutFile;
  if (!std::filesystem::exists(layout_path)) {
    throw BadRequest(fmt::format(
        "sharded optimizer state: {} is missing (not a ZeRO-1 checkpoint?)",
        layout_path));
  }
  const nlohmann::json saved =
      nlohmann::json::parse(ReadFile(layout_path), nullptr, false);
  if (saved.is_discarded() || saved.value("format", "") != kLayoutFormat ||
      !saved.contains("params") || !saved.contains("ranks") ||
      !saved.contains("shard_size") || !saved.contains("step")) {
    throw BadRequest(
        fmt::format("sharded optimizer state: {} is not a '{}' layout",
                    layout_path, kLayoutFormat));
  }
  const auto& params = saved.at("params");
  if (params.size() != layout_.names.size()) {
    throw BadRequest(fmt::format(
        "sharded optimizer state {}: {} parameters, the model has {}",
        layout_path, params.size(), layout_.names.size()));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string name = params[i].value("name", "");
    const int64_t numel = params[i].value("numel", int64_t{-1});
    if (name != layout_.names[i] || numel != layout_.params[i].numel()) {
      throw BadRequest(fmt::format(
          "sharded optimizer state {}: parameter {} is '{}' with {} elements, "
          "the model's is '{}' with {}",
          layout_path, i, name, numel, layout_.names[i],
          layout_.params[i].numel()));
    }
  }
  const int old_ranks = saved.at("ranks").get<int>();
  const int64_t old_shard = saved.at("shard_size").get<int64_t>();
  torch::NoGradGuard no_grad;
  for (int k = 0; k < old_ranks; ++k) {
    const int64_t old_begin = std::min(layout_.numel, old_shard * k);
    const int64_t old_end = std::min(layout_.numel, old_shard * (k + 1));
    const int64_t first = std::max(begin_, old_begin);
    const int64_t last = std::min(end_, old_end);
    if (last <= first) continue;  // this rank needs nothing from shard k
    const std::string path = dir + "/" + ShardFileName(k, old_ranks);
    if (!std::filesystem::exists(path)) {
      throw BadRequest(fmt::format(
          "sharded optimizer state: shard file {} is missing", path));
    }
    policy::SafetensorsFile file(path);
    for (const char* name : {"exp_avg", "exp_avg_sq"}) {
      const torch::Tensor src = file.Get(name);
      if (src.numel() != old_end - old_begin) {
        throw BadRequest(fmt::format(
            "sharded optimizer state {}: '{}' has {} elements, expected {}",
            path, name, src.numel(), old_end - old_begin));
      }
      torch::Tensor& dst =
          std::string(name) == "exp_avg" ? exp_avg_ : exp_avg_sq_;
      dst.narrow(0, first - begin_, last - first)
          .copy_(src.narrow(0, first - old_begin, last - first));
    }
  }
  step_ = saved.at("step").get<int64_t>();
}

void ShardedAdamW::LoadFullState(
    const std::map<std::string, torch::Tensor>& state, int64_t step) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < layout_.params.size(); ++i) {
    const auto [first, last] = Overlap(layout_, i, begin_, end_);
    for (const char* suffix : {".exp_avg", ".exp_avg_sq"}) {
      const std::string key = layout_.names[i] + suffix;
      auto it = state.find(key);
      if (it == state.end()) {
        throw BadRequest(
            fmt::format("optimizer state: missing tensor '{}'", key));
      }
      if (it->second.numel() != layout_.params[i].numel()) {
        throw BadRequest(fmt::format(
            "optimizer state: tensor '{}' has {} elements, expected {}", key,
            it->second.numel(), layout_.params[i].numel()));
      }
      if (last <= first) continue;
      torch::Tensor& dst =
          std::string(suffix) == ".exp_avg" ? exp_avg_ : exp_avg_sq_;
      dst.narrow(0, first - begin_, last - first)
          .copy_(it->second.reshape(-1).narrow(0, first - layout_.offsets[i],
                                               last - first));
    }
  }
  step_ = step;
}

}  // namespace clinrl::trainer
