// Small trajectories for the reward tests.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/trajectory.h"

namespace clinrl::rewards::testing {

// A dialogue whose policy turns are `policy_turns` (each with `tokens_each`
// token ids), separated by user turns.
inline Trajectory MakeDialogue(const std::vector<std::string>& policy_turns,
                               size_t tokens_each = 4) {
  Trajectory t;
  t.episode_id = "e1";
  t.group_id = "g1";
  t.env = "test";
  t.split = "test";
  t.task_index = 0;
  t.turns.push_back({"system", "You are a careful physician.", {}, {}});
  for (const auto& content : policy_turns) {
    t.turns.push_back({"user", "Patient reply.", {}, {}});
    Turn a{"assistant", content, {}, {}};
    for (size_t i = 0; i < tokens_each; ++i) {
      a.token_ids.push_back(static_cast<int64_t>(i + 1));
      a.logprobs.push_back(-0.25f);
    }
    t.turns.push_back(std::move(a));
  }
  return t;
}

inline nlohmann::json OneComponentSpec(const std::string& plugin,
                                       nlohmann::json params,
                                       double weight = 1.0) {
  return {{"components",
           {{{"name", plugin},
             {"plugin", plugin},
             {"weight", weight},
             {"params", std::move(params)}}}}};
}

// A fresh folder under the system's temporary directory.
inline std::string MakeTempDir(const std::string& stem) {
  std::string dir =
      (std::filesystem::temp_directory_path() / (stem + "-XXXXXX")).string();
  if (mkdtemp(dir.data()) == nullptr) return "";
  return dir;
}

}  // namespace clinrl::rewards::testing
