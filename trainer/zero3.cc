#include "trainer/zero3.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "policy/safetensors.h"
#include "trainer/data_parallel.h"

namespace clinrl::trainer {

namespace {

constexpr const char* kLayoutFile = "zero3_layout.json";
constexpr const char* kLayoutFormat = "clinrl-zero3-1";
constexpr const char* kSlices[] = {"param", "exp_avg", "exp_avg_sq"};

std::string ShardFileName(int rank, int ranks) {
  return fmt::format("zero3.shard-{:05d}-of-{:05d}.safetensors", rank, ranks);
}

std::string SliceName(size_t unit, const char* what) {
  return fmt::format("units.{}.{}", unit, what);
}

constexpr const char* kLayerPrefix = "model.layers.";

// Which unit a parameter belongs to: its decoder layer, or the root.
size_t UnitOf(const std::string& name, size_t layers) {
  const std::string prefix = kLayerPrefix;
  if (name.compare(0, prefix.size(), prefix) != 0) return layers;
  return static_cast<size_t>(std::stoll(name.substr(prefix.size())));
}

}  // namespace

Zero3::Zero3(policy::Transformer model, AdamWOptions options,
             distributed::Communicator& comm, int64_t bucket_bytes,
             torch::ScalarType reduce_dtype)
    : model_(std::move(model)),
      options_(options),
      comm_(comm),
      bucket_bytes_(bucket_bytes),
      reduce_dtype_(reduce_dtype) {
  torch::NoGradGuard no_grad;
  const size_t layers = model_->model->layers->size();
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> named(layers +
                                                                        1);
  for (const auto& item : model_->named_parameters()) {
    if (!item.value().requires_grad()) {
      throw BadRequest(fmt::format(
          "trainer.sharding zero3 shards every parameter, and {} is frozen "
          "(a LoRA policy: its adapters are small, use zero1)",
          item.key()));
    }
    named[UnitOf(item.key(), layers)].emplace_back(item.key(), item.value());
  }
  for (auto& unit_params : named) {
    Unit unit(FlatParameterLayout(std::move(unit_params), comm_.size()));
    const auto like = unit.layout.params.front().options();
    const int64_t size = unit.layout.shard_size;
    unit.param = torch::zeros({size}, like);
    unit.grad = torch::zeros({size}, like);
    unit.exp_avg = torch::zeros({size}, like);
    unit.exp_avg_sq = torch::zeros({size}, like);
    unit.has_grad.assign(unit.layout.params.size(), false);
    const int64_t begin = unit.layout.ShardBegin(comm_.rank());
    for (size_t i = 0; i < unit.layout.params.size(); ++i) {
      const torch::Tensor& p = unit.layout.params[i];
      unit.shapes.push_back(p.sizes().vec());
      unit.numels.push_back(p.numel());
      const auto [first, last] = Owned(unit, i);
      if (last <= first) continue;
      unit.param.narrow(0, first - begin, last - first)
          .copy_(p.view(-1).narrow(0, first - unit.layout.offsets[i],
                                   last - first));
    }
    unit.gathered = true;
    gathered_ += unit.layout.padded();
    units_.push_back(std::move(unit));
  }
  // The full parameters go: from here on they exist only while gathered.
  for (Unit& unit : units_) ReleaseUnit(unit);
  model_->set_layer_weight_hooks(this);
}

Zero3::~Zero3() {
  // The model outlives its hooks; its released parameters stay empty.
  if (model_->layer_weight_hooks() == this) {
    model_->set_layer_weight_hooks(nullptr);
  }
}

std::pair<int64_t, int64_t> Zero3::Owned(const Unit& unit, size_t i) const {
  const int64_t begin = unit.layout.ShardBegin(comm_.rank());
  const int64_t end = unit.layout.ShardEnd(comm_.rank());
  const int64_t off = unit.layout.offsets[i];
  const int64_t first = std::max(begin, off);
  const int64_t last = std::min(end, off + unit.numels[i]);
  return {first, std::max(first, last)};
}

void Zero3::GatherUnit(Unit& unit) {
  if (unit.gathered) return;
  torch::NoGradGuard no_grad;
  torch::Tensor full;
  if (comm_.size() == 1) {
    full = unit.param.clone();
  } else {
    full = torch::empty({unit.layout.padded()}, unit.param.options());
    comm_.AllGather(unit.param, full);
    communicated_bytes_ += full.numel() * full.element_size();
  }
  for (size_t i = 0; i < unit.layout.params.size(); ++i) {
    torch::Tensor& p = unit.layout.params[i];
    p.set_data(full.narrow(0, unit.layout.offsets[i], unit.numels[i])
                   .view(unit.shapes[i]));
  }
  unit.gathered = true;
  ++gathers_;
  gathered_ += unit.layout.padded();
  peak_gathered_ = std::max(peak_gathered_, gathered_);
}

void Zero3::ReleaseUnit(Unit& unit) {
  if (!unit.gathered) return;
  for (torch::Tensor& p : unit.layout.params) {
    p.set_data(torch::empty({0}, p.options()));
  }
  unit.gathered = false;
  gathered_ -= unit.layout.padded();
}

void Zero3::Gather(int64_t layer) {
  GatherUnit(units_.at(static_cast<size_t>(layer)));
}

void Zero3::Release(int64_t layer) {
  ReleaseUnit(units_.at(static_cast<size_t>(layer)));
}

void Zero3::GradientsReady(int64_t layer) {
  Unit& unit = units_.at(static_cast<size_t>(layer));
  ReduceUnitGradients(unit);
  ReleaseUnit(unit);
}

void Zero3::GatherRoot() { GatherUnit(root()); }

void Zero3::ReleaseRoot() { ReleaseUnit(root()); }

void Zero3::ReduceUnitGradients(Unit& unit) {
  torch::NoGradGuard no_grad;
  const auto wire = unit.param.options().dtype(reduce_dtype_);
  torch::Tensor flat = torch::zeros({unit.layout.padded()}, wire);
  for (size_t i = 0; i < unit.layout.params.size(); ++i) {
    torch::Tensor& p = unit.layout.params[i];
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    unit.has_grad[i] = true;
    flat.narrow(0, unit.layout.offsets[i], g.numel()).copy_(g.reshape(-1));
    p.mutable_grad() = torch::Tensor();
  }
  torch::Tensor mine = torch::empty({unit.layout.shard_size}, wire);
  ReduceScatterFlat(flat, mine, comm_, bucket_bytes_);
  if (comm_.size() > 1) {
    communicated_bytes_ += flat.numel() * flat.element_size();
  }
  unit.grad.add_(mine.to(unit.grad.scalar_type()));
}

Zero3Gradients Zero3::FinishGradients(bool local_loss_finite) {
  ReduceUnitGradients(root());
  int64_t count = 0;
  for (const Unit& unit : units_) {
    count += static_cast<int64_t>(unit.layout.params.size());
  }
  // [sum of squares of this rank's slices, ranks with a non-finite loss,
  // gradient flags...], summed over ranks: one collective for all three.
  torch::Tensor control = torch::zeros({count + 2}, torch::kFloat64);
  double squares = 0;
  for (const Unit& unit : units_) {
    squares += unit.grad.to(torch::kFloat64).pow(2).sum().item<double>();
  }
  auto acc = control.accessor<double, 1>();
  acc[0] = squares;
  acc[1] = local_loss_finite ? 0.0 : 1.0;
  int64_t k = 2;
  for (const Unit& unit : units_) {
    for (const bool has : unit.has_grad) acc[k++] = has ? 1.0 : 0.0;
  }
  comm_.AllReduce(control, distributed::ReduceOp::kSum);  // in place
  k = 2;
  for (Unit& unit : units_) {
    for (size_t i = 0; i < unit.has_grad.size(); ++i) {
      unit.has_grad[i] = acc[k++] > 0;
    }
  }
  return {std::sqrt(acc[0]), acc[1] == 0.0};
}

void Zero3::Step(double lr, double grad_scale) {
  torch::NoGradGuard no_grad;
  ++step_;
  for (Unit& unit : units_) {
    const int64_t begin = unit.layout.ShardBegin(comm_.rank());
    for (size_t i = 0; i < unit.layout.params.size(); ++i) {
      const auto [first, last] = Owned(unit, i);
      if (last <= first || !unit.has_grad[i]) continue;
      const int64_t n = last - first;
      torch::Tensor p = unit.param.narrow(0, first - begin, n);
      torch::Tensor g = unit.grad.narrow(0, first - begin, n);
      // Same coefficient and order as ClipGradNorm: scale, then update.
      if (grad_scale != 1.0) g = g * grad_scale;
      torch::Tensor m = unit.exp_avg.narrow(0, first - begin, n);
      torch::Tensor v = unit.exp_avg_sq.narrow(0, first - begin, n);
      AdamWUpdate(p, g, m, v, lr, step_, options_);
    }
  }
  // The gathered root now holds the old weights. Gathering it again here
  // would be wasted after a batch's last update (the step ends and releases
  // it, and RefreshFullModel gathers what it copies itself): the next pass
  // of the batch gathers it instead (GatherRoot).
  ReleaseUnit(root());
}

void Zero3::DropGradients() {
  for (Unit& unit : units_) {
    unit.grad.zero_();
    unit.has_grad.assign(unit.has_grad.size(), false);
    for (torch::Tensor& p : unit.layout.params) {
      if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
    }
  }
}

std::string Zero3::FirstNonFiniteParameter() {
  torch::NoGradGuard no_grad;
  int64_t count = 0, bad = -1;
  for (const Unit& unit : units_) {
    const int64_t begin = unit.layout.ShardBegin(comm_.rank());
    for (size_t i = 0; i < unit.layout.params.size(); ++i, ++count) {
      const auto [first, last] = Owned(unit, i);
      if (bad >= 0 || last <= first) continue;
      if (!unit.param.narrow(0, first - begin, last - first)
               .isfinite()
               .all()
               .item<bool>()) {
        bad = count;
      }
    }
  }
  // The lowest index found on any rank, as the largest count - index.
  torch::Tensor found = torch::tensor(
      {bad < 0 ? 0.0 : static_cast<double>(count - bad)}, torch::kFloat64);
  comm_.AllReduce(found, distributed::ReduceOp::kMax);
  const auto top = static_cast<int64_t>(found.item<double>());
  if (top == 0) return "";
  int64_t index = count - top;
  for (const Unit& unit : units_) {
    const auto n = static_cast<int64_t>(unit.layout.names.size());
    if (index < n) return unit.layout.names[static_cast<size_t>(index)];
    index -= n;
  }
  return "";
}

void Zero3::ForEachGatheredUnit(
    const std::function<void(const std::vector<std::string>&,
                             const std::vector<torch::Tensor>&)>& fn) {
  for (Unit& unit : units_) {
    const bool was_gathered = unit.gathered;
    GatherUnit(unit);
    fn(unit.layout.names, unit.layout.params);
    if (!was_gathered) ReleaseUnit(unit);
  }
}

int64_t Zero3::ShardBytes() const {
  int64_t bytes = 0;
  for (const Unit& unit : units_) {
    for (const auto* t :
         {&unit.param, &unit.grad, &unit.exp_avg, &unit.exp_avg_sq}) {
      bytes += t->numel() * t->element_size();
    }
  }
  return bytes;
}

int64_t Zero3::StateBytes() const {
  int64_t bytes = 0;
  for (const Unit& unit : units_) {
    bytes += (unit.exp_avg.numel() + unit.exp_avg_sq.numel()) *
             unit.exp_avg.element_size();
  }
  return bytes;
}

int64_t Zero3::numel() const {
  int64_t n = 0;
  for (const Unit& unit : units_) n += unit.layout.numel;
  return n;
}

int64_t Zero3::root_numel() const {
  int64_t n = 0;
  for (int64_t k : units_.back().numels) n += k;
  return n;
}

void Zero3::SaveShards(const std::string& dir) const {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (size_t u = 0; u < units_.size(); ++u) {
    tensors.emplace_back(SliceName(u, "param"), units_[u].param);
    tensors.emplace_back(SliceName(u, "exp_avg"), units_[u].exp_avg);
    tensors.emplace_back(SliceName(u, "exp_avg_sq"), units_[u].exp_avg_sq);
  }
  policy::SaveSafetensors(dir + "/" + ShardFileName(comm_.rank(), comm_.size()),
                          tensors,
                          {{"format", "pt"},
                           {"rank", std::to_string(comm_.rank())},
                           {"ranks", std::to_string(comm_.size())}});
  if (comm_.rank() != 0) return;
  nlohmann::json units = nlohmann::json::array();
  for (const Unit& unit : units_) {
    nlohmann::json params = nlohmann::json::array();
    for (size_t i = 0; i < unit.layout.names.size(); ++i) {
      params.push_back(
          {{"name", unit.layout.names[i]}, {"numel", unit.numels[i]}});
    }
    units.push_back({{"numel", unit.layout.numel},
                     {"shard_size", unit.layout.shard_size},
                     {"params", params}});
  }
  const nlohmann::json layout = {{"format", kLayoutFormat},
                                 {"ranks", comm_.size()},
                                 {"step", step_},
                                 {"units", units}};
  WriteFileAtomic(dir + "/" + kLayoutFile, layout.dump(2) + "\n");
}

void Zero3::LoadShards(const std::string& dir) {
  const std::string layout_path = dir + "/" + kLayoutFile;
  if (!std::filesystem::exists(layout_path)) {
    throw BadRequest(fmt::format(
        "zero3 state: {} is missing (not a ZeRO-3 checkpoint?)", layout_path));
  }
  const nlohmann::json saved =
      nlohmann::json::parse(ReadFile(layout_path), nullptr, false);
  if (saved.is_discarded() || saved.value("format", "") != kLayoutFormat ||
      !saved.contains("units") || !saved.contains("ranks") ||
      !saved.contains("step")) {
    throw BadRequest(fmt::format("zero3 state: {} is not a '{}' layout",
                                 layout_path, kLayoutFormat));
  }
  const auto& units = saved.at("units");
  if (units.size() != units_.size()) {
    throw BadRequest(fmt::format(
        "zero3 state {}: {} units (decoder layers + 1), the model has {}",
        layout_path, units.size(), units_.size()));
  }
  for (size_t u = 0; u < units_.size(); ++u) {
    CLINRL_CHECK(!units_[u].gathered, "zero3: loading into a gathered unit");
    const auto& params = units[u].at("params");
    const Unit& unit = units_[u];
    for (size_t i = 0; i < std::max(params.size(), unit.layout.names.size());
         ++i) {
      const std::string name =
          i < params.size() ? params[i].value("name", "") : "(none)";
      const int64_t numel =
          i < params.size() ? params[i].value("numel", int64_t{-1}) : -1;
      const std::string want =
          i < unit.layout.names.size() ? unit.layout.names[i] : "(none)";
      const int64_t want_numel =
          i < unit.layout.names.size() ? unit.numels[i] : -1;
      if (name != want || numel != want_numel) {
        throw BadRequest(fmt::format(
            "zero3 state {}: unit {} parameter {} is '{}' with {} elements, "
            "the model's is '{}' with {}",
            layout_path, u, i, name, numel, want, want_numel));
      }
    }
  }
  const int old_ranks = saved.at("ranks").get<int>();
  std::map<int, std::unique_ptr<policy::SafetensorsFile>> files;
  const auto file = [&](int k) -> policy::SafetensorsFile& {
    auto& f = files[k];
    if (!f) {
      const std::string path = dir + "/" + ShardFileName(k, old_ranks);
      if (!std::filesystem::exists(path)) {
        throw BadRequest(
            fmt::format("zero3 state: shard file {} is missing", path));
      }
      f = std::make_unique<policy::SafetensorsFile>(path);
    }
    return *f;
  };
  torch::NoGradGuard no_grad;
  for (size_t u = 0; u < units_.size(); ++u) {
    Unit& unit = units_[u];
    const int64_t numel = unit.layout.numel;
    const int64_t old_shard = units[u].at("shard_size").get<int64_t>();
    const int64_t begin = unit.layout.ShardBegin(comm_.rank());
    const int64_t end = unit.layout.ShardEnd(comm_.rank());
    torch::Tensor* slices[] = {&unit.param, &unit.exp_avg, &unit.exp_avg_sq};
    for (int k = 0; k < old_ranks; ++k) {
      const int64_t old_begin = std::min(numel, old_shard * k);
      const int64_t old_end = std::min(numel, old_shard * (k + 1));
      const int64_t first = std::max(begin, old_begin);
      const int64_t last = std::min(end, old_end);
      if (last <= first) continue;  // nothing of old slice k lands here
      for (size_t s = 0; s < 3; ++s) {
        const torch::Tensor src = file(k).Get(SliceName(u, kSlices[s]));
        if (src.numel() != old_shard) {
          throw BadRequest(
              fmt::format("zero3 state {}: '{}' has {} elements, expected {}",
                          ShardFileName(k, old_ranks), SliceName(u, kSlices[s]),
                          src.numel(), old_shard));
        }
        slices[s]
            ->narrow(0, first - begin, last - first)
            .copy_(src.narrow(0, first - old_begin, last - first));
      }
    }
  }
  step_ = saved.at("step").get<int64_t>();
}

void Zero3::LoadFullState(const std::map<std::string, torch::Tensor>& state,
                          int64_t step) {
  torch::NoGradGuard no_grad;
  for (Unit& unit : units_) {
    const int64_t begin = unit.layout.ShardBegin(comm_.rank());
    for (size_t i = 0; i < unit.layout.names.size(); ++i) {
      const auto [first, last] = Owned(unit, i);
      for (const char* suffix : {".exp_avg", ".exp_avg_sq"}) {
        const std::string key = unit.layout.names[i] + suffix;
        auto it = state.find(key);
        if (it == state.end()) {
          throw BadRequest(
              fmt::format("optimizer state: missing tensor '{}'", key));
        }
        if (it->second.numel() != unit.numels[i]) {
          throw BadRequest(fmt::format(
              "optimizer state: tensor '{}' has {} elements, expected {}", key,
              it->second.numel(), unit.numels[i]));
        }
        if (last <= first) continue;
        torch::Tensor& dst =
            std::string(suffix) == ".exp_avg" ? unit.exp_avg : unit.exp_avg_sq;
        dst.narrow(0, first - begin, last - first)
            .copy_(it->second.reshape(-1).narrow(
                0, first - unit.layout.offsets[i], last - first));
      }
    }
  }
  step_ = step;
}

}  // namespace clinrl::trainer
