// The C++ client drives the Python example env (python/clinrl_env) served by
// its own process: every answer to every training case, pipelined, and the
// server killed mid-episode.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>

#include "core/error.h"
#include "envs/child_process.h"
#include "envs/env_client.h"
#include "envs/remote_env.h"
#include "envs/scripted_episode.h"
#include "tests/python/python_triage_server.h"

namespace clinrl::envs {
namespace {

using clinrl::testing::AwaitServer;
using clinrl::testing::PythonTriageServer;

using Clock = std::chrono::steady_clock;

TEST(PythonTriageQuiz, EveryAnswerToEveryCaseExactlyOneIsRight) {
  PythonTriageServer server;
  EnvClient client({server.endpoint, 1000});
  AwaitServer(client);
  const EnvSpec spec = client.Spec("triage_quiz");
  EXPECT_EQ(spec.splits.at("train"), 6);
  // 6 cases x 5 levels = 30 concurrent sessions.
  std::map<uint64_t, std::pair<int, int>> reset_of;
  for (int task = 0; task < 6; ++task) {
    for (int level = 1; level <= 5; ++level) {
      ResetRequest req;
      req.task_index = task;
      reset_of[client.SubmitReset("triage_quiz", req)] = {task, level};
    }
  }
  std::map<std::string, std::pair<int, int>> session_of;
  std::map<int, double> reward_sum;
  std::map<int, int> right_level;
  while (client.in_flight() > 0) {
    for (const EnvReply& r : client.Collect(1, 5000)) {
      ASSERT_TRUE(r.ok) << r.error_message;
      if (r.op == EnvOp::kReset) {
        const auto [task, level] = reset_of.at(r.request_id);
        session_of[r.session] = {task, level};
        EXPECT_EQ(r.info["reward_spec"]["success"], "triage");
        client.SubmitStep(r.session, "ANSWER: ESI " + std::to_string(level));
      } else if (r.op == EnvOp::kStep) {
        EXPECT_TRUE(r.terminated);
        const auto [task, level] = session_of.at(r.session);
        reward_sum[task] += r.reward;
        if (r.reward == 1.0) right_level[task] = level;
        EXPECT_EQ(r.info["metrics"]["correct"].get<double>(), r.reward);
        client.SubmitClose(r.session);
      }
    }
  }
  for (int task = 0; task < 6; ++task) {
    EXPECT_EQ(reward_sum[task], 1.0) << "task " << task;
  }
  // Levels from the case list in python/clinrl_env/triage_quiz.py.
  EXPECT_EQ(right_level, (std::map<int, int>{
                             {0, 2}, {1, 4}, {2, 1}, {3, 5}, {4, 3}, {5, 4}}));
  EXPECT_EQ(client.Health()["sessions"], 0);
}

TEST(PythonTriageQuiz, KilledServerLosesItsSessionsAtOnceNotAtTheTimeout) {
  PythonTriageServer server;
  EnvClient client({server.endpoint, 30000});
  AwaitServer(client);
  const std::string s = client.Reset("triage_quiz", {}, nullptr);
  server.process->Stop(SIGKILL);
  const auto start = Clock::now();
  client.SubmitStep(s, "ASK vitals");
  auto replies = client.Collect(1, 5000);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "disconnected");
  EXPECT_NE(replies[0].error_message.find(server.endpoint), std::string::npos)
      << replies[0].error_message;
  EXPECT_TRUE(replies[0].session_lost);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(2000));
}

// The env's own scripted policies, played on its server (the act op): what
// `clinrl env eval --endpoint`, SFT demonstrations and the baseline rows use.
TEST(PythonTriageQuiz, TheServersOraclePlaysEveryTestCaseRight) {
  PythonTriageServer server;
  {
    EnvClient client({server.endpoint, 5000});
    AwaitServer(client);
  }
  RemoteEnv env(server.endpoint, "triage_quiz", 5000);
  EXPECT_EQ(env.Spec().policies,
            (std::vector<std::string>{"oracle", "random"}));
  for (int64_t task = 0; task < env.Spec().splits.at("test"); ++task) {
    auto oracle = env.Policy("oracle", 7, {{"ask_vitals", true}});
    ScriptedEpisodeStats stats;
    const Trajectory t = PlayScriptedEpisode(
        env, *oracle, {"triage_quiz", "test", task, 7, {}}, &stats);
    EXPECT_EQ(t.termination, Termination::kFinished) << t.info.dump();
    ASSERT_TRUE(stats.correct.has_value());
    EXPECT_EQ(*stats.correct, 1.0) << "task " << task;
    EXPECT_EQ(stats.actions, 2);  // ASK vitals, then the answer
  }
  // The same seed replays the same random episode.
  std::vector<std::string> actions[2];
  for (auto& played : actions) {
    auto random = env.Policy("random", 3, json::object());
    for (const Turn& turn :
         PlayScriptedEpisode(env, *random, {"triage_quiz", "train", 1, 3, {}})
             .turns) {
      if (turn.role == "assistant") played.push_back(turn.content);
    }
  }
  EXPECT_FALSE(actions[0].empty());
  EXPECT_EQ(actions[0], actions[1]);
  // Errors name what is wrong.
  try {
    env.Policy("cheat", 0, json::object());
    ADD_FAILURE() << "an unknown policy was accepted";
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("oracle, random"), std::string::npos)
        << e.what();
  }
  // A misspelt option fails the episode naming it, as an env error does.
  auto misspelt = env.Policy("oracle", 0, {{"ask_vitalz", true}});
  const Trajectory failed =
      PlayScriptedEpisode(env, *misspelt, {"triage_quiz", "test", 0, 0, {}});
  EXPECT_EQ(failed.termination, Termination::kEnvError);
  const std::string error = failed.info.value("error", std::string());
  EXPECT_NE(error.find("request.options"), std::string::npos) << error;
  EXPECT_NE(error.find("ask_vitalz"), std::string::npos) << error;
}

}  // namespace
}  // namespace clinrl::envs
