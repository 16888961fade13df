#include "envs/env_request_handler.h"

#include <gtest/gtest.h>

#include <thread>

#include "core/error.h"
#include "tests/envs/test_envs.h"

namespace clinrl::envs {
namespace {

EnvServiceOptions TestService() {
  EnvServiceOptions o;
  o.envs = {"echo", "misbehaving"};
  o.registry = &testing::TestRegistry();
  return o;
}

json Call(EnvRequestHandler& h, const std::string& text) {
  return json::parse(h.Handle(text.data(), text.size()));
}

std::string ErrorCode(const json& reply) {
  EXPECT_FALSE(reply.at("ok").get<bool>()) << reply.dump();
  return reply.at("error").at("code").get<std::string>();
}

std::string OpenSession(EnvRequestHandler& h, const std::string& env) {
  json r =
      Call(h, json{{"op", "reset"}, {"env", env}, {"task_index", 0}}.dump());
  EXPECT_TRUE(r.at("ok").get<bool>()) << r.dump();
  return r.at("session").get<std::string>();
}

TEST(EnvRequestHandler, MalformedRequestsGetErrorsNamingTheField) {
  EnvRequestHandler h(TestService());
  json r = Call(h, "{not json");
  EXPECT_EQ(ErrorCode(r), "bad_request");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("not valid JSON"),
            std::string::npos);
  EXPECT_EQ(ErrorCode(Call(h, "[1,2]")), "bad_request");
  r = Call(h, R"({"nop": 1})");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("request.op"),
            std::string::npos);
  r = Call(h, R"({"op": "dance"})");
  EXPECT_EQ(ErrorCode(r), "bad_request");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("'dance'"),
            std::string::npos);
  r = Call(h, R"({"op": "step", "session": 5, "action": "x"})");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("request.session"),
            std::string::npos);
  const std::string s = OpenSession(h, "echo");
  r = Call(h, json{{"op", "step"}, {"session", s}, {"action", 12}}.dump());
  EXPECT_NE(r["error"]["message"].get<std::string>().find("request.action"),
            std::string::npos);
  EXPECT_EQ(ErrorCode(Call(h, R"({"op":"step","session":"nope","action":""})")),
            "not_found");
  EXPECT_EQ(ErrorCode(Call(h, R"({"op":"reset","env":"nosuch"})")),
            "not_found");
  // Two envs served: a reset must say which.
  r = Call(h, R"({"op":"reset"})");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("request.env"),
            std::string::npos);
  r = Call(h, R"({"op":"reset","env":"echo","split":"dev"})");
  EXPECT_EQ(ErrorCode(r), "bad_request");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("'dev'"),
            std::string::npos);
  EXPECT_EQ(
      ErrorCode(Call(h, R"({"op":"reset","env":"echo","task_index":1000})")),
      "bad_request");
  // Still serving, and the request id is echoed for envelope-less clients.
  r = Call(h, R"({"op":"health","id":41})");
  EXPECT_TRUE(r["ok"].get<bool>());
  EXPECT_EQ(r["id"], 41);
  EXPECT_EQ(r["sessions"], 1);
  EXPECT_GE(r["errors"].get<int64_t>(), 10);
}

TEST(EnvRequestHandler, EnvThatThrowsGetsInternalErrorAndServiceGoesOn) {
  EnvRequestHandler h(TestService());
  const std::string s = OpenSession(h, "misbehaving");
  json r =
      Call(h, json{{"op", "step"}, {"session", s}, {"action", "boom"}}.dump());
  EXPECT_EQ(ErrorCode(r), "internal");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("the env exploded"),
            std::string::npos);
  r = Call(
      h,
      R"({"op":"reset","env":"misbehaving","options":{"throw_on_reset":true}})");
  EXPECT_EQ(ErrorCode(r), "internal");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("reset exploded"),
            std::string::npos);
  // The broken session can still be closed; other sessions are unaffected.
  EXPECT_TRUE(Call(h, json{{"op", "close"}, {"session", s}}.dump())["ok"]);
  const std::string t = OpenSession(h, "echo");
  r = Call(h, json{{"op", "step"}, {"session", t}, {"action", "hello"}}.dump());
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["observation"][0]["content"], "hello");
}

TEST(EnvRequestHandler, IdleSessionsAreReclaimedAndActiveOnesKept) {
  EnvServiceOptions o = TestService();
  o.idle_timeout_s = 0.15;
  EnvRequestHandler h(o);
  const std::string idle1 = OpenSession(h, "echo");
  const std::string idle2 = OpenSession(h, "echo");
  const std::string active = OpenSession(h, "echo");
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    ASSERT_TRUE(
        Call(h, json{{"op", "step"}, {"session", active}, {"action", "x"}}
                    .dump())["ok"]
            .get<bool>());
  }
  EXPECT_EQ(h.ReclaimIdle(), 2);
  EXPECT_EQ(h.sessions(), 1);
  EXPECT_EQ(
      ErrorCode(Call(
          h, json{{"op", "step"}, {"session", idle1}, {"action", "x"}}.dump())),
      "not_found");
  EXPECT_EQ(h.stats().reclaimed, 2);
}

TEST(EnvRequestHandler, CloseReleasesAndResetInPlaceKeepsTheSession) {
  EnvRequestHandler h(TestService());
  const std::string s = OpenSession(h, "echo");
  json r =
      Call(h, json{{"op", "reset"}, {"session", s}, {"task_index", 3}}.dump());
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["session"], s);
  EXPECT_EQ(r["observation"][1]["content"],
            "Say the word: " + EchoEnv::WordFor("train", 3));
  EXPECT_EQ(h.sessions(), 1);
  EXPECT_TRUE(Call(h, json{{"op", "close"}, {"session", s}}.dump())["ok"]);
  EXPECT_EQ(h.sessions(), 0);
  EXPECT_EQ(ErrorCode(Call(h, json{{"op", "close"}, {"session", s}}.dump())),
            "not_found");
}

TEST(EnvRequestHandler, BadConstructionNamesTheEnvOrOption) {
  EnvServiceOptions o = TestService();
  o.envs = {"echo", "nosuch"};
  EXPECT_THROW({ EnvRequestHandler h(o); }, NotFound);
  o = TestService();
  o.env_options["echo"] = {{"max_turn", 3}};
  try {
    EnvRequestHandler h(o);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("max_turn"), std::string::npos);
  }
}

TEST(EnvRequestHandler, BadEnvOptionNamesItsRunConfigKey) {
  // The trainer passes the run config's envs in order: echo is envs[1].
  EnvServiceOptions o = TestService();
  o.envs = {"misbehaving", "echo"};
  o.env_options["echo"] = {{"max_turn", 3}};
  try {
    EnvRequestHandler h(o);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("envs.1.options.max_turn: unknown "
                                          "key (did you mean 'max_turns'?)",
                                          0),
              0u)
        << e.what();
  }
  o.env_options_paths["echo"] = "--options.echo";
  try {
    EnvRequestHandler h(o);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--options.echo.max_turn: ", 0), 0u)
        << e.what();
  }
  o = TestService();
  o.envs = {"nosuch"};
  try {
    EnvRequestHandler h(o);
    FAIL() << "expected NotFound";
  } catch (const NotFound& e) {
    EXPECT_STREQ(e.what(),
                 "env 'nosuch' is not registered; registered envs: echo, "
                 "misbehaving");
  }
}

TEST(EnvRequestHandler, UnknownResetOptionIsABadRequestNamingIt) {
  EnvRequestHandler h(TestService());
  json r = Call(h, R"({"op":"reset","env":"echo","options":{"max_turns":2}})");
  EXPECT_EQ(ErrorCode(r), "bad_request");
  EXPECT_EQ(r["error"]["message"],
            "options.max_turns: unknown key; no options are accepted here");
  EXPECT_EQ(h.sessions(), 0);
  // Resetting a session in place with a bad option leaves its episode on.
  const std::string s = OpenSession(h, "echo");
  r = Call(
      h,
      json{{"op", "reset"}, {"session", s}, {"options", {{"task", 2}}}}.dump());
  EXPECT_EQ(ErrorCode(r), "bad_request");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("options.task"),
            std::string::npos);
  r = Call(h, json{{"op", "step"}, {"session", s}, {"action", "x"}}.dump());
  EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
}

TEST(EnvRequestHandler, TruncateEndsTheEpisodeOrNamesTheEnvsBug) {
  EnvRequestHandler h(TestService());
  auto truncate = [&](const std::string& session) {
    return Call(h, json{{"op", "truncate"}, {"session", session}}.dump());
  };
  auto step = [&](const std::string& session, const std::string& action) {
    return Call(
        h,
        json{{"op", "step"}, {"session", session}, {"action", action}}.dump());
  };
  const std::string s = OpenSession(h, "echo");
  json r = truncate(s);
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_TRUE(r["truncated"].get<bool>());
  EXPECT_FALSE(r["terminated"].get<bool>());
  EXPECT_EQ(r["info"]["metrics"]["correct"], 0.0);
  EXPECT_EQ(ErrorCode(truncate(s)), "bad_request") << "the episode ended";
  EXPECT_EQ(ErrorCode(truncate("nope")), "not_found");
  r = Call(h, R"({"op":"truncate"})");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("request.session"),
            std::string::npos);

  const std::string goes_on = OpenSession(h, "misbehaving");
  step(goes_on, "truncate:continue");
  r = truncate(goes_on);
  EXPECT_EQ(ErrorCode(r), "internal");
  EXPECT_NE(r["error"]["message"].get<std::string>().find(
                "returned terminated=false, truncated=false; expected "
                "terminated=false, truncated=true"),
            std::string::npos)
      << r.dump();
  const std::string throws = OpenSession(h, "misbehaving");
  step(throws, "truncate:throw");
  r = truncate(throws);
  EXPECT_EQ(ErrorCode(r), "internal");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("truncate exploded"),
            std::string::npos);
}

}  // namespace
}  // namespace clinrl::envs
