// `clinrl bench env`: steps per second of the env runtime with a trivial echo
// env and 64 concurrent sessions, in-process (inproc), over ipc and tcp, and
// through the Python adapter; and, in the same run, a bare ZeroMQ
// DEALER/ROUTER loop over ipc that parses and writes the same JSON messages
// with no env, session or pool: the transport's own ceiling. The tcp run
// is repeated with CURVE on (tcp_curve_over_tcp).
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include "bench/bench_registry.h"
#include "core/curve_auth.h"
#include "core/error.h"
#include "core/zmq_util.h"
#include "envs/child_process.h"
#include "envs/env_client.h"
#include "envs/env_pool.h"
#include "envs/env_server.h"

namespace clinrl::bench {
namespace {

using Clock = std::chrono::steady_clock;
using envs::EnvClient;
using envs::EnvOp;
using envs::EnvReply;
using nlohmann::json;

struct LoopFigures {
  double steps_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  int64_t steps = 0;
};

double LatencyPercentile(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return static_cast<double>(v[k]);
}

// Keeps one step in flight per session, as a rollout worker with `sessions`
// episodes does; a finished episode is reset in place. Counts steps only.
LoopFigures DriveSessions(EnvClient& client, const std::string& env,
                          int64_t sessions, int64_t steps) {
  std::vector<std::string> ids;
  for (int64_t i = 0; i < sessions; ++i) {
    ids.push_back(client.Reset(env, {}, nullptr));
  }
  // Warm-up: one round per session, unmeasured.
  for (const auto& s : ids) client.SubmitStep(s, "warm");
  while (client.in_flight() > 0) {
    for (const EnvReply& r : client.Collect(ids.size(), 5000)) {
      CLINRL_CHECK(r.ok, "bench warm-up step failed: {}", r.error_message);
    }
  }
  std::vector<int64_t> latencies;
  latencies.reserve(steps + sessions);
  int64_t submitted = 0, done = 0;
  const std::string action = "bench action";
  const auto start = Clock::now();
  for (const auto& s : ids) {
    client.SubmitStep(s, action);
    ++submitted;
  }
  while (client.in_flight() > 0) {
    for (EnvReply& r : client.Collect(1, 5000)) {
      CLINRL_CHECK(r.ok, "bench {} failed: {} {}", envs::EnvOpName(r.op),
                   r.error_code, r.error_message);
      if (r.op == EnvOp::kStep) {
        ++done;
        latencies.push_back(r.latency_us);
        if (r.terminated || r.truncated) {
          client.SubmitReset(env, {}, r.session);
          continue;
        }
      }
      if (submitted < steps) {
        client.SubmitStep(r.session, action);
        ++submitted;
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  for (const auto& s : ids) client.Close(s);
  LoopFigures f;
  f.steps = done;
  f.steps_per_s = done / seconds;
  f.p50_us = LatencyPercentile(latencies, 0.50);
  f.p99_us = LatencyPercentile(latencies, 0.99);
  return f;
}

envs::EnvServiceOptions EchoService() {
  envs::EnvServiceOptions o;
  o.envs = {"echo"};
  // Long episodes, so the figure is about steps, not resets.
  o.env_options["echo"] = {{"max_turns", 1000}};
  return o;
}

LoopFigures RunServer(const std::string& endpoint, int64_t workers,
                      int64_t sessions, int64_t steps) {
  envs::EnvServerOptions o;
  o.service = EchoService();
  o.endpoint = endpoint;
  o.workers = workers;
  envs::EnvServer server(o);
  server.Start();
  EnvClient client({server.bound_endpoint(), 10000});
  return DriveSessions(client, "echo", sessions, steps);
}

// The bare transport: the same request and reply JSON as an echo step, with
// the server parsing the request and writing the reply, and nothing else.
LoopFigures RawZmqJson(const std::string& endpoint, int64_t in_flight,
                       int64_t messages) {
  zmq::context_t& context = clinrl::SharedZmqContext();
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind(endpoint);
  std::atomic<bool> stop{false};
  std::thread server([&] {
    router.set(zmq::sockopt::rcvtimeo, 100);
    while (!stop.load()) {
      zmq::message_t id, request_id, empty, body;
      if (!router.recv(id)) continue;
      CLINRL_CHECK(
          router.recv(request_id) && router.recv(empty) && router.recv(body),
          "raw loop: short message");
      const json request =
          json::parse(static_cast<const char*>(body.data()),
                      static_cast<const char*>(body.data()) + body.size());
      const json reply = {
          {"ok", true},
          {"observation",
           json::array({{{"role", "user"},
                         {"content", request["action"].get<std::string>()}}})},
          {"reward", 0.0},
          {"terminated", false},
          {"truncated", false},
          {"info", {{"turn", 1}, {"invalid_actions", 0}}}};
      const std::string text = reply.dump();
      router.send(id, zmq::send_flags::sndmore);
      router.send(request_id, zmq::send_flags::sndmore);
      router.send(empty, zmq::send_flags::sndmore);
      router.send(zmq::buffer(text), zmq::send_flags::none);
    }
  });
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(endpoint);
  uint64_t next = 0;
  // Send times by request id, for the same latency figures as the runtime's.
  std::vector<Clock::time_point> sent(messages + 2 * in_flight + 1);
  std::vector<int64_t> latencies;
  latencies.reserve(messages);
  bool measuring = false;
  auto send_one = [&] {
    const json request = {{"op", "step"},
                          {"session", "0123456789ab-17"},
                          {"action", "bench action"}};
    const std::string text = request.dump();
    ++next;
    sent[next] = Clock::now();
    dealer.send(zmq::buffer(&next, sizeof(next)), zmq::send_flags::sndmore);
    dealer.send(zmq::message_t(), zmq::send_flags::sndmore);
    dealer.send(zmq::buffer(text), zmq::send_flags::none);
  };
  auto receive_one = [&] {
    zmq::message_t request_id, empty, body;
    CLINRL_CHECK(
        dealer.recv(request_id) && dealer.recv(empty) && dealer.recv(body),
        "raw loop: no reply");
    const json reply =
        json::parse(static_cast<const char*>(body.data()),
                    static_cast<const char*>(body.data()) + body.size());
    CLINRL_CHECK(reply["ok"].get<bool>(), "raw loop: bad reply");
    uint64_t id = 0;
    CLINRL_CHECK(request_id.size() == sizeof(id), "raw loop: bad request id");
    std::memcpy(&id, request_id.data(), sizeof(id));
    if (measuring) {
      latencies.push_back(std::chrono::duration_cast<std::chrono::microseconds>(
                              Clock::now() - sent[id])
                              .count());
    }
  };
  for (int64_t i = 0; i < in_flight; ++i) send_one();
  for (int64_t i = 0; i < in_flight; ++i) receive_one();  // warm-up
  measuring = true;
  const auto start = Clock::now();
  for (int64_t i = 0; i < in_flight; ++i) send_one();
  for (int64_t done = 0; done < messages; ++done) {
    receive_one();
    if (done + in_flight < messages) send_one();
  }
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  server.join();
  LoopFigures f;
  f.steps = messages;
  f.steps_per_s = messages / seconds;
  f.p50_us = LatencyPercentile(latencies, 0.50);
  f.p99_us = LatencyPercentile(latencies, 0.99);
  return f;
}

// Prints one transport's figures and records them as steps_per_s_<key>,
// p50_us_<key> and p99_us_<key>.
void Report(const std::string& label, const std::string& key,
            const LoopFigures& f, json* out) {
  std::cout << fmt::format("{}: {:.0f} steps/s, p50 {:.0f} us, p99 {:.0f} us",
                           label, f.steps_per_s, f.p50_us, f.p99_us)
            << std::endl;
  (*out)["steps_per_s_" + key] = f.steps_per_s;
  (*out)["p50_us_" + key] = f.p50_us;
  (*out)["p99_us_" + key] = f.p99_us;
}

json RunEnvBench(const BenchOptions& options) {
  const int64_t sessions = IntOption(options, "sessions", 64);
  const int64_t steps =
      IntOption(options, "steps", options.quick ? 4000 : 200000);
  const int64_t python_steps =
      IntOption(options, "python_steps", options.quick ? 2000 : 30000);
  const int64_t workers = IntOption(options, "workers", 2);
  const std::string dir =
      MakeBenchTempDir("env-bench", "making the bench socket folder");
  std::cout << fmt::format(
                   "env bench: {} sessions, {} steps per transport, "
                   "{} server workers",
                   sessions, steps, workers)
            << std::endl;
  json out;

  const LoopFigures raw_loop =
      RawZmqJson("ipc://" + dir + "/raw.sock", sessions, steps);
  const double raw = raw_loop.steps_per_s;
  std::cout << fmt::format(
                   "raw ZeroMQ+JSON loop (ipc): {:.0f} msg/s, p50 "
                   "{:.0f} us, p99 {:.0f} us",
                   raw, raw_loop.p50_us, raw_loop.p99_us)
            << std::endl;
  out["raw_zmq_json_per_s"] = raw;
  out["p50_us_raw"] = raw_loop.p50_us;
  out["p99_us_raw"] = raw_loop.p99_us;

  {
    envs::EnvPoolOptions o;
    o.service = EchoService();
    o.workers = workers;
    envs::EnvPool pool(o);
    const LoopFigures f = DriveSessions(pool.client(), "echo", sessions, steps);
    Report("inproc pool", "inproc", f, &out);
  }
  {
    const LoopFigures f =
        RunServer("ipc://" + dir + "/env.sock", workers, sessions, steps);
    Report("ipc server", "ipc", f, &out);
  }
  {
    const LoopFigures f =
        RunServer("tcp://127.0.0.1:*", workers, sessions, steps);
    Report("tcp server", "tcp", f, &out);
  }
  {
    // The same tcp run with CURVE (fresh keys, this process only): the cost
    // of encryption and authentication per step (docs/distributed.md).
    InstallCurveKeys(GenerateCurveKeys());
    const LoopFigures f =
        RunServer("tcp://127.0.0.1:*", workers, sessions, steps);
    InstallCurveKeys(std::nullopt);
    Report("tcp server (CURVE)", "tcp_curve", f, &out);
    out["tcp_curve_over_tcp"] =
        f.steps_per_s / out["steps_per_s_tcp"].get<double>();
  }
  {
    const std::string endpoint = "ipc://" + dir + "/python.sock";
    envs::ChildProcess python(
        {envs::AdapterPython(), "-m", "clinrl_env", "serve", "--env",
         "clinrl_env.echo:EchoEnv", "--name", "echo", "--endpoint", endpoint,
         "--options", R"({"max_turns": 1000})"},
        {{"PYTHONPATH", envs::PythonPackageDir()}});
    EnvClient client({endpoint, 10000});
    const LoopFigures f = DriveSessions(client, "echo", sessions, python_steps);
    python.Stop(SIGTERM);
    Report("python server (ipc)", "python", f, &out);
  }
  std::filesystem::remove_all(dir);
  out["sessions"] = sessions;
  out["workers"] = workers;
  out["ipc_over_raw"] = out["steps_per_s_ipc"].get<double>() / raw;
  return out;
}

}  // namespace

CLINRL_REGISTER_BENCH(env,
                      "env runtime steps/s (inproc, ipc, tcp, Python) vs a "
                      "bare ZeroMQ+JSON loop",
                      RunEnvBench);

}  // namespace clinrl::bench
