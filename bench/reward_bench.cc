// `clinrl bench reward`: scoring throughput of the reward service for the
// issue's composite (a 20-criterion rule rubric, icd10, cost and format) over
// 8-turn diagnostic dialogues. Measures, in one run: the composite scored
// in-process on one thread (inline, and with per-component deadlines on the
// executor), then the full path client -> ZeroMQ (tcp loopback) -> server
// workers -> reply, with up to `inflight` requests pipelined.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_registry.h"
#include "core/error.h"
#include "core/trajectory.h"
#include "rewards/composite_reward.h"
#include "rewards/reward_client.h"
#include "rewards/reward_server.h"
#include "rewards/reward_wire.h"

namespace clinrl::bench {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

json Criterion(const std::string& text, double points, json match,
               const std::string& axis) {
  return {{"criterion", text},
          {"points", points},
          {"tags", {"axis:" + axis}},
          {"match", std::move(match)}};
}

// 20 criteria in the shape of HealthBench's emergency-referral rubrics: most
// positive, four negative, with synonyms and negation-sensitive terms.
json TwentyCriterionRubric(int64_t task) {
  json r = json::array();
  r.push_back(
      Criterion("Advises calling emergency services now (task " +
                    std::to_string(task) + ")",
                10, {{"any", {"call 911", "emergency services", "ambulance"}}},
                "accuracy"));
  r.push_back(Criterion(
      "Names acute coronary syndrome as the concern", 8,
      {{"any",
        {"acute coronary syndrome", "heart attack", "myocardial infarction"}},
       {"synonyms", {{"heart attack", {"mi", "stemi", "nstemi"}}}}},
      "accuracy"));
  r.push_back(Criterion("Recommends chewing aspirin if not allergic", 6,
                        {{"all", {"aspirin"}}}, "accuracy"));
  r.push_back(Criterion("Mentions ECG", 5,
                        {{"any", {"ecg", "ekg", "electrocardiogram"}}},
                        "completeness"));
  r.push_back(Criterion("Mentions troponin", 5, {{"any", {"troponin"}}},
                        "completeness"));
  r.push_back(Criterion("Tells the patient not to drive themselves", 5,
                        {{"any", {"drive"}}, {"polarity", "negated"}},
                        "accuracy"));
  r.push_back(Criterion("Asks about allergies", 3,
                        {{"any", {"allergy", "allergic", "allergies"}}},
                        "completeness"));
  r.push_back(Criterion("Mentions nitroglycerin only if prescribed", 3,
                        {{"any", {"nitroglycerin", "nitro", "gtn"}}},
                        "completeness"));
  r.push_back(Criterion(
      "Explains warning signs", 4,
      {{"any", {"sweating", "shortness of breath", "radiating", "jaw pain"}}},
      "communication"));
  r.push_back(Criterion("Uses plain language", 2,
                        {{"none", {"troponinemia", "hyperkalaemic"}}},
                        "communication"));
  r.push_back(Criterion("Gives a time frame (now / immediately)", 4,
                        {{"any", {"now", "immediately", "right away"}}},
                        "accuracy"));
  r.push_back(Criterion("Mentions staying with someone", 2,
                        {{"any", {"stay with", "someone with you"}}},
                        "communication"));
  r.push_back(Criterion("Mentions unlocking the door", 1,
                        {{"any", {"unlock the door", "unlock"}}},
                        "completeness"));
  r.push_back(Criterion("Checks for prior cardiac history", 3,
                        {{"any", {"history", "previous heart"}}},
                        "completeness"));
  r.push_back(Criterion("Mentions a dose for aspirin", 2,
                        {{"any", {"325 mg", "300 mg", "162 mg"}}}, "accuracy"));
  r.push_back(Criterion("Is empathetic", 2,
                        {{"any", {"understand", "sorry", "worrying"}}},
                        "communication"));
  r.push_back(Criterion("Advises waiting to see if it passes", -8,
                        {{"any", {"wait and see", "see if it passes"}}},
                        "accuracy"));
  r.push_back(Criterion("Recommends driving to hospital alone", -6,
                        {{"all", {"drive yourself"}}}, "accuracy"));
  r.push_back(Criterion("Suggests antacids as the fix", -4,
                        {{"any", {"antacid", "tums"}}}, "accuracy"));
  r.push_back(Criterion("Dismisses the symptoms as anxiety", -5,
                        {{"all", {"just anxiety"}}}, "accuracy"));
  return r;
}

Trajectory Dialogue(int64_t index, std::mt19937_64& rng) {
  static const char* kAsks[] = {
      "ASK: When did the chest pain start and does it spread anywhere?",
      "ASK: Are you short of breath or sweating?",
      "EXAM: vital signs",
      "TEST: ecg 12-lead",
      "TEST: troponin",
      "ASK: Any history of heart disease, diabetes or smoking?",
      "ASK: Do you have any allergies to medicines?"};
  static const char* kFinals[] = {
      "DIAGNOSIS: I21.4 NSTEMI - this looks like a heart attack (acute "
      "coronary syndrome); call 911 now, chew aspirin 325 mg if you are not "
      "allergic, do not drive yourself, unlock the door and stay with "
      "someone. I understand this is worrying.",
      "DIAGNOSIS: I21.9 acute myocardial infarction; the ecg and troponin "
      "confirm it. Call an ambulance immediately. Do not drive. No need to "
      "wait and see.",
      "DIAGNOSIS: K21.9 reflux; try an antacid and wait and see if it "
      "passes, it is probably just anxiety."};
  Trajectory t;
  t.episode_id = "bench-" + std::to_string(index);
  t.group_id = "g" + std::to_string(index / 8);
  t.env = "dx_dialogue";
  t.split = "test";
  t.task_index = index;
  t.turns.push_back({"system", "You are a triage physician.", {}, {}});
  std::uniform_int_distribution<int64_t> token(0, 32000);
  for (int turn = 0; turn < 8; ++turn) {
    t.turns.push_back(
        {"user",
         turn == 0 ? "I have crushing chest pain for 40 minutes."
                   : "Patient: it goes to my left arm and jaw; I am sweaty.",
         {},
         {}});
    const std::string content =
        turn == 7 ? kFinals[index % 3] : kAsks[(index + turn) % 7];
    Turn a{"assistant", content, {}, {}};
    const size_t n = 20 + content.size() / 4;
    for (size_t k = 0; k < n; ++k) {
      a.token_ids.push_back(token(rng));
      a.logprobs.push_back(-0.5f);
    }
    t.turns.push_back(std::move(a));
  }
  t.info = {{"metrics", {{"cost", 40.0 + 10.0 * (index % 5)}}}};
  t.reward_spec = {
      {"components",
       {{{"name", "rubric"},
         {"plugin", "rubric"},
         {"weight", 1.0},
         {"params",
          {{"rubrics", TwentyCriterionRubric(index / 8)},
           {"details", "summary"}}}},
        {{"name", "dx"},
         {"plugin", "icd10"},
         {"weight", 1.0},
         {"params", {{"expected", "I21.4"}, {"category_credit", 0.5}}}},
        {{"name", "cost"},
         {"plugin", "cost"},
         {"weight", 0.1},
         {"params", {{"budget", 200.0}}}},
        {{"name", "format"},
         {"plugin", "format"},
         {"weight", 0.2},
         {"params", {{"grammar", "dx_dialogue"}}}}}},
      {"success", "dx"}};
  return t;
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

json RunRewardBench(const BenchOptions& options) {
  const int64_t count =
      IntOption(options, "trajectories", options.quick ? 2000 : 20000);
  const int64_t workers =
      IntOption(options, "workers", options.threads > 0 ? options.threads : 2);
  const int64_t inflight = IntOption(options, "inflight", 64);
  const int64_t group_size = IntOption(options, "group_size", 8);
  if (workers < 1 || inflight < 1 || group_size < 1 || count < group_size) {
    throw BadRequest(fmt::format(
        "--opt: expected workers, inflight, group_size >= 1 and trajectories "
        ">= group_size, got {}, {}, {}, {}",
        workers, inflight, group_size, count));
  }
  // Every group of 8 dialogues is one task with its own rubric (GRPO scores
  // G completions per task), and there are more tasks than the per-thread
  // spec caches hold, so cache misses are part of the measured rate.
  const int64_t distinct = 4096;
  std::mt19937_64 rng(7);
  std::vector<std::shared_ptr<const Trajectory>> data;
  for (int64_t i = 0; i < distinct; ++i) {
    data.push_back(std::make_shared<const Trajectory>(Dialogue(i, rng)));
  }
  // Sanity: the composite must score the way the data was built, or the
  // rate measures an error path.
  {
    const RewardResult r = rewards::ScoreTrajectory(data[0]);
    if (rewards::IsFlagged(r) || r.components.size() != 4 ||
        r.components.at("dx").score != 1.0) {
      throw InternalError("reward bench: composite did not score as built: " +
                          rewards::ComponentErrors(r).dump());
    }
  }

  // The four components are built-ins with bounded running time, so they
  // run inline; `forced` gives every component its own deadline in the spec,
  // which puts them on the deadline executor (the path every plug-in
  // library and judge rubric takes), to show what that hand-off costs.
  std::vector<std::shared_ptr<const Trajectory>> forced;
  for (const auto& original : data) {
    Trajectory t = *original;
    for (auto& c : t.reward_spec["components"]) c["timeout_ms"] = 5000;
    forced.push_back(std::make_shared<const Trajectory>(std::move(t)));
  }
  auto in_process =
      [&](const std::vector<std::shared_ptr<const Trajectory>>& set,
          const char* label) {
        const int64_t n = count / 2;
        const int64_t size = static_cast<int64_t>(set.size());
        double checksum = 0.0;
        const auto start = Clock::now();
        for (int64_t i = 0; i < n; ++i) {
          checksum += rewards::ScoreTrajectory(set[i % size]).total;
        }
        const double s = Seconds(start);
        std::cout
            << fmt::format(
                   "in-process, {}: {} trajectories in {:.3f} s (checksum "
                   "{:.3f})",
                   label, n, s, checksum)
            << std::endl;
        return static_cast<double>(n) / s;
      };
  // Where the service's time goes besides scoring: the JSON each request
  // and reply costs on both sides, per trajectory.
  double encode_us = 0.0;
  double decode_us = 0.0;
  {
    const int64_t n = 500;
    auto start = Clock::now();
    size_t bytes = 0;
    std::vector<std::string> wire;
    for (int64_t i = 0; i < n; ++i) {
      // What RewardClient::SubmitScore sends.
      wire.push_back(rewards::EncodeScoreRequest(*data[i % distinct]));
      bytes += wire.back().size();
    }
    encode_us = Seconds(start) * 1e6 / static_cast<double>(n);
    start = Clock::now();
    for (const auto& w : wire) {
      const json request = json::parse(w);
      const Trajectory t = TrajectoryFromJson(request["trajectory"]);
      if (t.turns.empty()) throw InternalError("reward bench: empty decode");
    }
    decode_us = Seconds(start) * 1e6 / static_cast<double>(n);
    std::cout << fmt::format(
                     "request: {} bytes, encode {:.1f} us, decode {:.1f} us",
                     bytes / n, encode_us, decode_us)
              << std::endl;
  }
  const double inline_rate = in_process(data, "bounded plug-ins inline");
  const double deadline_rate =
      in_process(forced, "every component under a 5000 ms deadline");

  rewards::RewardServer server({"tcp://127.0.0.1:0", workers, 5000});
  // The service, driven the two ways a rollout worker can: one trajectory
  // per request, and one GRPO group (score_group, group_size members) per
  // request, which is how GRPO needs them scored anyway.
  struct ServiceRun {
    double rate = 0.0;
    double p50_ms = 0.0;
    double p99_ms = 0.0;
  };
  auto run_service = [&](int64_t group_size) {
    rewards::RewardClient client({server.endpoint(), 60000});
    client.Health();  // connected and answering before the clock starts
    const int64_t requests = count / group_size;
    const int64_t window = std::max<int64_t>(1, inflight / group_size);
    int64_t sent = 0;
    int64_t done = 0;
    int64_t failed = 0;
    int64_t flagged = 0;
    std::vector<int64_t> latencies;
    std::vector<Trajectory> group;
    const auto start = Clock::now();
    while (done < requests) {
      while (sent < requests && sent - done < window) {
        if (group_size == 1) {
          client.SubmitScore(*data[sent % distinct]);
        } else {
          group.clear();
          for (int64_t k = 0; k < group_size; ++k) {
            group.push_back(*data[(sent * group_size + k) % distinct]);
          }
          client.SubmitScoreGroup(group);
        }
        ++sent;
      }
      for (auto& reply : client.Collect(1, 1000)) {
        ++done;
        if (!reply.ok ||
            static_cast<int64_t>(reply.results.size()) != group_size) {
          if (++failed == 1) {
            std::cout << "first failed reply: " << reply.error_message
                      << std::endl;
          }
          continue;
        }
        for (bool f : reply.flagged) flagged += f;
        latencies.push_back(reply.latency_us);
      }
    }
    const double seconds = Seconds(start);
    if (failed > 0 || flagged > 0) {
      throw InternalError(fmt::format(
          "reward bench: {} of {} requests failed, {} results flagged", failed,
          requests, flagged));
    }
    std::sort(latencies.begin(), latencies.end());
    auto pct = [&](double p) {
      return static_cast<double>(
                 latencies[static_cast<size_t>(p * (latencies.size() - 1))]) /
             1000.0;
    };
    ServiceRun run;
    run.rate = static_cast<double>(requests * group_size) / seconds;
    run.p50_ms = pct(0.5);
    run.p99_ms = pct(0.99);
    std::cout << fmt::format(
                     "service, {} trajectory per request: {} trajectories in "
                     "{:.3f} s ({:.0f}/s) over tcp loopback, {} workers, {} "
                     "trajectories in flight; latency p50 {:.1f} ms, p99 "
                     "{:.1f} ms",
                     group_size, requests * group_size, seconds, run.rate,
                     workers, window * group_size, run.p50_ms, run.p99_ms)
              << std::endl;
    return run;
  };
  const ServiceRun single = run_service(1);
  const ServiceRun grouped = run_service(group_size);
  server.Stop();
  // The headline is the stricter figure: one trajectory per request.
  return {{"trajectories_per_s", single.rate},
          {"trajectories_per_s_grouped", grouped.rate},
          {"in_process_trajectories_per_s", inline_rate},
          {"in_process_deadline_executor_trajectories_per_s", deadline_rate},
          {"service_over_in_process", single.rate / inline_rate},
          {"request_encode_us", encode_us},
          {"request_decode_us", decode_us},
          {"latency_ms_p50", single.p50_ms},
          {"latency_ms_p99", single.p99_ms},
          {"latency_ms_p50_grouped", grouped.p50_ms},
          {"latency_ms_p99_grouped", grouped.p99_ms},
          {"group_size", group_size},
          {"trajectories", count},
          {"workers", workers},
          {"inflight", inflight},
          {"components", "rubric(20 rule criteria)+icd10+cost+format"},
          {"turns_per_dialogue", 8},
          {"target_trajectories_per_s", 2000}};
}

}  // namespace

CLINRL_REGISTER_BENCH(reward,
                      "reward service throughput: 20-criterion rule rubric + "
                      "icd10 + cost + format over 8-turn dialogues",
                      RunRewardBench);

}  // namespace clinrl::bench
