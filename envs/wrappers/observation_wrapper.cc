#include "envs/wrappers/observation_wrapper.h"

#include "core/seeds.h"

namespace clinrl::envs {

ObservationWrapper::ObservationWrapper(std::unique_ptr<Env> inner,
                                       std::string wrapper_name,
                                       uint64_t option_seed)
    : inner_(std::move(inner)),
      name_(std::move(wrapper_name)),
      option_seed_(option_seed) {}

EnvSpec ObservationWrapper::Spec() const {
  EnvSpec spec = inner_->Spec();
  spec.name += "+" + name_;
  return spec;
}

ResetResult ObservationWrapper::Reset(const ResetRequest& request) {
  ResetResult r = inner_->Reset(request);
  key_.split = request.split;
  // The env's own account of the task when it gives one (dx_dialogue draws
  // seeded tasks its own way), else the protocol's rule.
  const json* task = r.info.contains("task") ? &r.info["task"] : nullptr;
  if (task != nullptr && task->is_object() &&
      task->value("task_index", json()).is_number_integer()) {
    key_.task_index = (*task)["task_index"].get<int64_t>();
  } else {
    key_.task_index =
        TaskIndexOf(request, inner_->Spec().splits.at(request.split));
  }
  key_.seed = DeriveSeed(option_seed_, name_ + "/" + key_.split,
                         static_cast<uint64_t>(key_.task_index));
  RewriteAll(r.observation, /*reset=*/true);
  Declare(r.info);
  return r;
}

StepResult ObservationWrapper::Step(const std::string& action) {
  StepResult r = inner_->Step(action);
  RewriteAll(r.observation, /*reset=*/false);
  Declare(r.info);
  return r;
}

StepResult ObservationWrapper::Truncate() {
  StepResult r = inner_->Truncate();
  RewriteAll(r.observation, /*reset=*/false);
  Declare(r.info);
  return r;
}

void ObservationWrapper::RewriteAll(Observation& observation,
                                    bool reset) const {
  for (size_t i = 0; i < observation.size(); ++i) {
    ChatMessage& m = observation[i];
    if (m.role == "system") continue;
    m.content = Rewrite(m.content, key_, reset, i);
  }
}

void ObservationWrapper::Declare(json& info) const {
  if (!info.is_object()) return;
  if (!info.contains("wrappers") || !info["wrappers"].is_array()) {
    info["wrappers"] = json::array();
  }
  info["wrappers"].push_back(name_);
}

}  // namespace clinrl::envs
