// The decorator every robustness wrapper is: an Env around an inner Env that
// passes Reset, Step and Truncate through and rewrites the text of the
// observations on the way out. Rewards, termination, info (the answer, the
// reward spec, the metrics) and the scripted policies' view of the episode
// are the inner env's, so a wrapper cannot change what is correct; only
// what the agent reads differs. The spec's name gains "+<wrapper>" so that
// results of the wrapped env are never pooled with the plain one's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "envs/env.h"

namespace clinrl::envs {

// Which task an episode plays and where in it a message stands: what a
// wrapper's deterministic choices derive from.
struct EpisodeKey {
  std::string split;
  int64_t task_index = 0;
  // A seed for (wrapper, split, task, option seed): the same task always
  // gets the same rewrite, whatever reset seed picked it.
  uint64_t seed = 0;
};

class ObservationWrapper : public Env {
 public:
  ObservationWrapper(std::unique_ptr<Env> inner, std::string wrapper_name,
                     uint64_t option_seed);

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;
  StepResult Truncate() override;

 protected:
  // The rewritten text of one message. `reset` is true for the reset's
  // observation; `index` is the message's position in its observation.
  // System messages (the action grammar) are never passed in.
  virtual std::string Rewrite(const std::string& text, const EpisodeKey& key,
                              bool reset, size_t index) const = 0;

 private:
  void RewriteAll(Observation& observation, bool reset) const;
  // Appends this wrapper's name to info.wrappers (innermost first).
  void Declare(json& info) const;

  std::unique_ptr<Env> inner_;
  std::string name_;
  uint64_t option_seed_ = 0;
  EpisodeKey key_;
};

}  // namespace clinrl::envs
