// The env part of the shared conformance suite (docs/style.md, 2): every env in
// EnvRegistry::Global(), plus the Python example env (a gymnasium.Env served
// by python/clinrl_env over ZeroMQ), goes through the same checks. An env
// gets them for free by registering.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/zmq_util.h"
#include "envs/child_process.h"
#include "envs/env_client.h"
#include "envs/env_registry.h"
#include "envs/env_server.h"
#include "envs/remote_env.h"
#include "envs/scripted_episode.h"
#include "envs/scripted_policy.h"
#include "envs/tool_calls.h"
#include "envs/wrappers/env_wrapper_registry.h"
#include "tests/python/python_triage_server.h"

namespace clinrl::envs {
namespace {

using Clock = std::chrono::steady_clock;

// The Python example env, clinrl_env.triage_quiz:TriageQuizEnv (a
// gymnasium.Env), runs as its own process under the venv
// (tests/python/python_triage_server.h); the name it is served under.
constexpr const char* kPythonEnv = "python_triage_quiz";
constexpr const char* kPythonEnvName = "triage_quiz";

// Starts the Python env server on first use; it is killed at exit.
class PythonServer {
 public:
  static PythonServer& Get() {
    static PythonServer server;
    return server;
  }
  const std::string& endpoint() const { return server_.endpoint; }

 private:
  // Constructed outside any test, so a server that never answers is an
  // exception (IoError), not a gtest failure.
  PythonServer() {
    EnvClient client({server_.endpoint, 500});
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (true) {
      try {
        client.Health();
        return;
      } catch (const Timeout&) {
        if (Clock::now() > deadline || !server_.process->running()) {
          throw IoError("the Python env server did not start at " +
                        server_.endpoint);
        }
      }
    }
  }
  clinrl::testing::PythonTriageServer server_;
};

// Wrapped envs are named as their spec names them, "<env>+<wrapper>...":
// every registered robustness wrapper over echo and dx_dialogue, and all of
// them at once over dx_dialogue (envs/wrappers/).
std::vector<std::string> WrappedEnvsUnderTest() {
  std::vector<std::string> names;
  const auto wrappers = EnvWrapperRegistry::Global().Names();
  for (const char* env : {"echo", "dx_dialogue"}) {
    if (!EnvRegistry::Global().Has(env)) continue;
    std::string chain = env;
    for (const auto& w : wrappers) {
      names.push_back(std::string(env) + "+" + w);
      chain += "+" + w;
    }
    if (wrappers.size() > 1) names.push_back(chain);
  }
  return names;
}

// Envs with a tool-call mode, tested also as "<env>@tools" (the env option
// action_mode "tools"; docs/envs.md, "Tool calls").
constexpr const char* kToolsSuffix = "@tools";
std::vector<std::string> ToolModeEnvsUnderTest() {
  std::vector<std::string> names;
  for (const char* env : {"dx_dialogue", "ehr_fhir", "ehr_workflow"}) {
    if (EnvRegistry::Global().Has(env)) {
      names.push_back(std::string(env) + kToolsSuffix);
    }
  }
  return names;
}

// The registered env a test name stands for: "ehr_fhir@tools" -> ehr_fhir.
std::string BaseEnv(const std::string& name) {
  return name.substr(0, name.find_first_of("+@"));
}

// "dx_dialogue+distractor" made as the run makes it: the env, then each
// wrapper in order; "dx_dialogue@tools" with action_mode "tools".
std::unique_ptr<Env> CreateMaybeWrapped(std::string name, json options,
                                        const std::string& path) {
  const size_t at = name.find(kToolsSuffix);
  if (at != std::string::npos) {
    name = name.substr(0, at);
    options["action_mode"] = "tools";
  }
  std::vector<std::string> parts;
  std::stringstream in(name);
  std::string part;
  while (std::getline(in, part, '+')) parts.push_back(part);
  std::vector<EnvEntry::Wrapper> wrappers(parts.size() - 1);
  for (size_t i = 1; i < parts.size(); ++i) wrappers[i - 1].name = parts[i];
  return WrapEnv(EnvRegistry::Global().Create(parts[0], options, path),
                 wrappers, "wrappers");
}

std::vector<std::string> EnvsUnderTest() {
  std::vector<std::string> names = EnvRegistry::Global().Names();
  for (const auto& wrapped : WrappedEnvsUnderTest()) names.push_back(wrapped);
  for (const auto& tools : ToolModeEnvsUnderTest()) names.push_back(tools);
  names.push_back(kPythonEnv);
  return names;
}

// Task 0 of the env's first split: a task every conforming env has.
ResetRequest FirstTask(const EnvSpec& spec) {
  ResetRequest req;
  req.split = spec.splits.begin()->first;
  req.task_index = 0;
  return req;
}

class EnvConformance : public ::testing::TestWithParam<std::string> {
 protected:
  bool python() const { return GetParam() == kPythonEnv; }
  std::string served_name() const {
    if (python()) return kPythonEnvName;
    // A tools-mode env keeps its name; a wrapped one is named by its chain.
    const size_t at = GetParam().find(kToolsSuffix);
    return at == std::string::npos ? GetParam() : GetParam().substr(0, at);
  }

  // An env server playing this env (the shared Python one for the Python
  // env, else a fresh one in `server`); returns its endpoint.
  std::string Serve(std::unique_ptr<EnvServer>* server) const {
    if (python()) return PythonServer::Get().endpoint();
    EnvServerOptions o;
    o.service.envs = {served_name()};
    if (GetParam().find_first_of("+@") != std::string::npos) {
      served_registry_ = std::make_unique<EnvRegistry>();
      served_registry_->Add(
          served_name(),
          [name = GetParam()](const json& options, const std::string& path) {
            return CreateMaybeWrapped(name, options, path);
          });
      o.service.registry = served_registry_.get();
    }
    o.endpoint = UniqueInprocEndpoint("conformance");
    o.workers = 1;
    *server = std::make_unique<EnvServer>(o);
    (*server)->Start();
    return (*server)->bound_endpoint();
  }

  std::unique_ptr<Env> MakeEnv() const {
    if (python()) {
      return std::make_unique<RemoteEnv>(PythonServer::Get().endpoint(),
                                         kPythonEnvName, 10000);
    }
    return CreateMaybeWrapped(GetParam(), json::object(), "options");
  }

  // A seeded stream of actions an agent might send: words of the action
  // format, numbers, empty and junk text; with tools, also calls of a
  // declared tool with arguments of the declared types (or enum values).
  static std::string RandomAction(std::mt19937_64& rng, const EnvSpec& spec) {
    if (!spec.tools.empty() && rng() % 2 == 0) {
      return RandomToolCall(rng, spec.tools);
    }
    return RandomTextAction(rng, spec.action_format);
  }

  static std::string RandomToolCall(std::mt19937_64& rng, const json& tools) {
    const json& function = tools[rng() % tools.size()]["function"];
    ToolCall call{function["name"].get<std::string>(), json::object()};
    const json properties =
        function["parameters"].value("properties", json::object());
    for (const auto& [name, schema] : properties.items()) {
      if (schema.contains("enum")) {
        call.arguments[name] = schema["enum"][rng() % schema["enum"].size()];
        continue;
      }
      const std::string type = schema.value("type", "string");
      if (type == "integer" || type == "number") {
        call.arguments[name] = static_cast<int64_t>(rng() % 10);
      } else if (type == "boolean") {
        call.arguments[name] = rng() % 2 == 0;
      } else if (type == "array") {
        call.arguments[name] = json::array({"pneumonia"});
      } else if (type == "object") {
        call.arguments[name] = json::object();
      } else {
        call.arguments[name] = rng() % 2 ? "chest pain" : "Patient/1";
      }
    }
    return FormatToolCall(call);
  }

  static std::string RandomTextAction(std::mt19937_64& rng,
                                      const std::string& action_format) {
    std::vector<std::string> words;
    std::string word;
    for (char c : action_format + " ") {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '_') {
        word += c;
      } else if (!word.empty()) {
        words.push_back(word);
        word.clear();
      }
    }
    switch (rng() % 5) {
      case 0:
        return "";
      case 1:
        return "}{\x01 not an action \xff";
      default: {
        std::string a;
        const int n = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < n && !words.empty(); ++i) {
          a += (i ? " " : "") + words[rng() % words.size()];
        }
        if (rng() % 2) a += " " + std::to_string(rng() % 10);
        return a;
      }
    }
  }

  // Serves a wrapped env under its wrapped name; outlives the test's server.
  mutable std::unique_ptr<EnvRegistry> served_registry_;

  static void CheckObservation(const Observation& o, const std::string& what) {
    for (size_t i = 0; i < o.size(); ++i) {
      EXPECT_FALSE(o[i].role.empty()) << what << "[" << i << "] has no role";
    }
  }
};

TEST_P(EnvConformance, SpecIsWellFormed) {
  auto env = MakeEnv();
  const EnvSpec s = env->Spec();
  EXPECT_EQ(s.name, served_name());
  EXPECT_FALSE(s.version.empty());
  EXPECT_FALSE(s.action_format.empty());
  EXPECT_GE(s.max_turns, 1);
  ASSERT_FALSE(s.splits.empty());
  for (const auto& [split, count] : s.splits) {
    EXPECT_FALSE(split.empty());
    EXPECT_GE(count, 1) << "split " << split;
  }
  EXPECT_EQ(EnvSpecFromJson(json::parse(ToJson(s).dump())).max_turns,
            s.max_turns);
}

TEST_P(EnvConformance, RandomActionsReachTheEndOfEveryEpisode) {
  auto env = MakeEnv();
  const EnvSpec spec = env->Spec();
  std::mt19937_64 rng(std::hash<std::string>()(GetParam()));
  for (const auto& [split, count] : spec.splits) {
    for (int episode = 0; episode < 2; ++episode) {
      ResetRequest req;
      req.split = split;
      if (episode == 0) {
        req.task_index = count - 1;
      } else {
        req.seed = static_cast<int64_t>(rng() % 1000);
      }
      ResetResult reset = env->Reset(req);
      ASSERT_FALSE(reset.observation.empty()) << split;
      CheckObservation(reset.observation, "reset.observation");
      EXPECT_TRUE(reset.info.is_object());
      bool done = false;
      int64_t turns = 0;
      while (!done && turns < spec.max_turns) {
        StepResult s = env->Step(RandomAction(rng, spec));
        ++turns;
        CheckObservation(s.observation, "step.observation");
        EXPECT_TRUE(std::isfinite(s.reward));
        EXPECT_TRUE(s.info.is_object());
        EXPECT_FALSE(s.terminated && s.truncated) << "an episode ends one way";
        done = s.terminated || s.truncated;
      }
      EXPECT_TRUE(done) << "split " << split << ": no end within max_turns "
                        << spec.max_turns;
    }
  }
}

TEST_P(EnvConformance, InvalidActionsAreCountedNotFatal) {
  auto env = MakeEnv();
  const EnvSpec spec = env->Spec();
  const ResetRequest req = FirstTask(spec);
  env->Reset(req);
  StepResult s = env->Step("");
  ASSERT_TRUE(s.info.contains("invalid_actions"))
      << "an empty action must be counted in info.invalid_actions: "
      << s.info.dump();
  EXPECT_GE(s.info["invalid_actions"].get<int64_t>(), 1);
  EXPECT_FALSE(s.observation.empty()) << "the env says what was wrong";
  if (!s.terminated && !s.truncated) {
    StepResult junk = env->Step(std::string("\xff\xfe{{{\x01", 6));
    EXPECT_TRUE(junk.info.is_object());
  }
}

TEST_P(EnvConformance, SameSeedGivesTheSameEpisode) {
  const EnvSpec spec = MakeEnv()->Spec();
  auto play = [&](const ResetRequest& req) {
    auto env = MakeEnv();
    std::mt19937_64 rng(42);
    json record = json::array();
    ResetResult r = env->Reset(req);
    record.push_back({ToJson(r.observation), r.info});
    for (int64_t t = 0; t < spec.max_turns; ++t) {
      StepResult s = env->Step(RandomAction(rng, spec));
      record.push_back(
          {ToJson(s.observation), s.reward, s.terminated, s.truncated, s.info});
      if (s.terminated || s.truncated) break;
    }
    return record;
  };
  ResetRequest by_seed;
  by_seed.split = spec.splits.begin()->first;
  by_seed.seed = 1234;
  EXPECT_EQ(play(by_seed), play(by_seed));
  ResetRequest by_index = by_seed;
  by_index.seed.reset();
  by_index.task_index = 0;
  EXPECT_EQ(play(by_index), play(by_index));
}

TEST_P(EnvConformance, ObservationsAndInfoRoundTripThroughJson) {
  auto env = MakeEnv();
  const EnvSpec spec = env->Spec();
  const ResetRequest req = FirstTask(spec);
  ResetResult r = env->Reset(req);
  const std::string text = ToJson(r.observation).dump();
  EXPECT_EQ(ObservationFromJson(json::parse(text), "observation"),
            r.observation);
  EXPECT_EQ(json::parse(r.info.dump()), r.info);
  StepResult s = env->Step("hello");
  EXPECT_EQ(ObservationFromJson(json::parse(ToJson(s.observation).dump()),
                                "observation"),
            s.observation);
  EXPECT_EQ(json::parse(s.info.dump()), s.info);
}

TEST_P(EnvConformance, BadResetArgumentsAreBadRequests) {
  auto env = MakeEnv();
  const EnvSpec spec = env->Spec();
  ResetRequest req;
  req.split = "no-such-split";
  EXPECT_THROW(env->Reset(req), BadRequest);
  req.split = spec.splits.begin()->first;
  req.task_index = spec.splits.begin()->second;
  EXPECT_THROW(env->Reset(req), BadRequest);
}

TEST_P(EnvConformance, CloseReleasesTheSession) {
  std::unique_ptr<EnvServer> server;
  const std::string endpoint = Serve(&server);
  EnvClient client({endpoint, 10000});
  const int64_t before = client.Health()["sessions"].get<int64_t>();
  ResetRequest req;
  req.split = client.Spec(served_name()).splits.begin()->first;
  const std::string session = client.Reset(served_name(), req, nullptr);
  EXPECT_EQ(client.Health()["sessions"].get<int64_t>(), before + 1);
  client.Close(session);
  EXPECT_EQ(client.Health()["sessions"].get<int64_t>(), before);
  client.SubmitStep(session, "anything");
  auto replies = client.Collect(1, 10000);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "not_found");
  EXPECT_TRUE(replies[0].session_lost);
}

// The runtime cuts an episode (its token budget) with the truncate op: the
// env ends it as its own turn budget would, so the final info that scoring
// reads (metrics, reward_spec) is there exactly where the env's own end has
// it. Empty actions are invalid everywhere and never end an episode early.
TEST_P(EnvConformance, TruncateMidEpisodeGivesTheFinalInfo) {
  auto env = MakeEnv();
  const EnvSpec spec = env->Spec();
  const ResetRequest req = FirstTask(spec);
  env->Reset(req);
  StepResult own_end;
  for (int64_t t = 0; t < spec.max_turns; ++t) {
    own_end = env->Step("");
    if (own_end.terminated || own_end.truncated) break;
  }
  ASSERT_TRUE(own_end.truncated)
      << "empty actions must run out the turn budget: " << own_end.info.dump();

  env->Reset(req);
  if (spec.max_turns > 1) env->Step("");
  const StepResult cut = env->Truncate();
  EXPECT_TRUE(cut.truncated);
  EXPECT_FALSE(cut.terminated);
  EXPECT_TRUE(std::isfinite(cut.reward));
  CheckObservation(cut.observation, "truncate.observation");
  ASSERT_TRUE(cut.info.is_object());
  for (const char* key : {"metrics", "reward_spec"}) {
    if (!own_end.info.contains(key)) continue;
    ASSERT_TRUE(cut.info.contains(key))
        << "the env's own end has info." << key
        << ", its truncate does not: " << cut.info.dump();
    EXPECT_EQ(cut.info[key].type(), own_end.info[key].type()) << key;
  }
  if (own_end.info.contains("metrics")) {
    for (const auto& [name, value] : own_end.info["metrics"].items()) {
      EXPECT_TRUE(cut.info["metrics"].contains(name))
          << "info.metrics." << name << " is missing from the truncate reply";
    }
    if (cut.info["metrics"].contains("correct")) {
      EXPECT_EQ(cut.info["metrics"]["correct"].get<double>(), 0.0)
          << "no answer was given, so nothing is correct";
    }
  }
  EXPECT_EQ(json::parse(cut.info.dump()), cut.info);
  // The episode is over: truncating it again is refused, and the env plays
  // the next episode as usual.
  EXPECT_THROW(env->Truncate(), Error);
  env->Reset(req);
  const StepResult after = env->Step("");
  EXPECT_TRUE(after.info.is_object());
}

// The truncate op over the wire, as the rollout worker sends it: the reply
// is shaped like a step's, and an unknown session is not_found.
TEST_P(EnvConformance, TruncateOpRepliesLikeAFinalStep) {
  std::unique_ptr<EnvServer> server;
  const std::string endpoint = Serve(&server);
  EnvClient client({endpoint, 10000});
  const ResetRequest req = FirstTask(client.Spec(served_name()));
  const std::string session = client.Reset(served_name(), req, nullptr);
  client.SubmitTruncate(session);
  auto replies = client.Collect(1, 10000);
  ASSERT_EQ(replies.size(), 1u);
  const EnvReply& reply = replies[0];
  ASSERT_TRUE(reply.ok) << reply.error_code << ": " << reply.error_message;
  EXPECT_EQ(reply.op, EnvOp::kTruncate);
  EXPECT_TRUE(reply.truncated);
  EXPECT_FALSE(reply.terminated);
  EXPECT_TRUE(reply.info.is_object());
  // The session stays open, as after a final step, until it is closed.
  client.Close(session);
  client.SubmitTruncate(session);
  replies = client.Collect(1, 10000);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "not_found");
  EXPECT_TRUE(replies[0].session_lost);
}

// Every declared tool is an OpenAI function whose parameters are a valid JSON
// Schema: checked structurally here (envs/tool_calls.h) and by the
// `jsonschema` package's Draft 2020-12 meta-schema under the venv.
TEST_P(EnvConformance, DeclaredToolsAreValidJsonSchemas) {
  const EnvSpec spec = MakeEnv()->Spec();
  ASSERT_TRUE(spec.tools.is_array()) << spec.tools.dump();
  EXPECT_EQ(EnvSpecFromJson(json::parse(ToJson(spec).dump())).tools,
            spec.tools);
  if (GetParam().find(kToolsSuffix) != std::string::npos) {
    EXPECT_FALSE(spec.tools.empty()) << "action_mode tools declares no tools";
  }
  if (spec.tools.empty()) return;  // text actions only: nothing to check
  EXPECT_EQ(ValidateToolSchemas(spec.tools), "");
  const std::string dir = std::filesystem::temp_directory_path() /
                          ("clinrl-tools-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tools.json") << spec.tools.dump();
  const std::string command = fmt::format(
      "'{}' -c 'import json, sys, jsonschema\n"
      "for t in json.load(open(sys.argv[1])):\n"
      "    jsonschema.Draft202012Validator.check_schema("
      "t[\"function\"][\"parameters\"])\n"
      "print(\"ok\")' '{}/tools.json' > '{}/out' 2>&1",
      CLINRL_PYTHON, dir, dir);
  const int status = std::system(command.c_str());
  std::ifstream out(dir + "/out");
  const std::string output((std::istreambuf_iterator<char>(out)),
                           std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(status, 0) << command << "\n"
                       << output
                       << "(jsonschema comes with the venv of launch/setup, "
                          "launch/requirements.txt)";
}

// The oracle, calling the tools, solves the env as well as it does through
// text: accuracy at least 0.95 on the first test tasks, or the text mode's.
TEST_P(EnvConformance, TheOracleSolvesTheEnvThroughItsTools) {
  if (GetParam().find(kToolsSuffix) == std::string::npos) return;
  const std::string env_name = BaseEnv(GetParam());
  const auto policies = ScriptedPolicyRegistry::Global().PoliciesFor(env_name);
  ASSERT_NE(std::find(policies.begin(), policies.end(), "oracle"),
            policies.end())
      << env_name << " has tools but no oracle to solve it through them";
  const EnvSpec spec = MakeEnv()->Spec();
  const std::string split = spec.splits.count("test") ? "test" : "train";
  const int64_t tasks = std::min<int64_t>(20, spec.splits.at(split));
  auto accuracy = [&](Env& env, bool tools) {
    double correct = 0;
    for (int64_t task = 0; task < tasks; ++task) {
      auto oracle = ScriptedPolicyRegistry::Global().Create(
          env_name, "oracle", static_cast<uint64_t>(task));
      ScriptedEpisodeStats stats;
      const Trajectory t = PlayScriptedEpisode(
          env, *oracle, {env_name, split, task, task, json::object()}, &stats);
      EXPECT_TRUE(stats.correct.has_value()) << t.info.dump();
      correct += stats.correct.value_or(0.0);
      if (tools) {
        EXPECT_EQ(stats.invalid_actions, 0) << "task " << task;
        for (const Turn& turn : t.turns) {
          if (turn.role == "assistant") {
            EXPECT_EQ(ParseToolCalls(turn.content).calls.size(), 1u)
                << turn.content;
          }
        }
      }
    }
    return correct / static_cast<double>(tasks);
  };
  auto tools_env = MakeEnv();
  auto text_env = EnvRegistry::Global().Create(env_name);
  const double with_tools = accuracy(*tools_env, true);
  const double with_text = accuracy(*text_env, false);
  std::cout << env_name << " oracle accuracy on " << tasks << " " << split
            << " tasks: tools " << with_tools << ", text " << with_text << "\n";
  EXPECT_TRUE(with_tools >= 0.95 || with_tools == with_text)
      << "tools " << with_tools << ", text " << with_text;
}

INSTANTIATE_TEST_SUITE_P(Envs, EnvConformance,
                         ::testing::ValuesIn(EnvsUnderTest()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c)))
                               c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace clinrl::envs
