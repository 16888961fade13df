#include "envs/dx_dialogue/oracle_policy.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/wire.h"
#include "envs/dx_dialogue/clinical_case.h"
#include "envs/dx_dialogue/dx_tools.h"
#include "envs/env_options.h"

namespace clinrl::envs::dx {

namespace {

double Uniform(std::mt19937_64& rng) { return UnitInterval(rng()); }

size_t Below(std::mt19937_64& rng, size_t n) {
  return static_cast<size_t>(Uniform(rng) * static_cast<double>(n));
}

int64_t InfoInt(const json& info, const char* key) {
  const wire::Fields f(info, "info");
  return f.Int(key);
}

}  // namespace

OraclePolicyOptions OraclePolicyOptions::FromJson(
    const json& j, const std::string& path, const OraclePolicyOptions& base) {
  const OraclePolicyOptions o = ReadOptions<OraclePolicyOptions>(j, path, base);
  auto check = [&](const char* key, double value, bool ok,
                   const char* expected) {
    if (!ok) {
      throw ConfigError(fmt::format("{}.{}: expected {}, got {}", path, key,
                                    expected, value));
    }
  };
  check("epsilon", o.epsilon, o.epsilon >= 0 && o.epsilon <= 1,
        "a value in [0, 1]");
  check("anchor", o.anchor, o.anchor >= 0 && o.anchor <= 1,
        "a value in [0, 1]");
  check("confidence", o.confidence, o.confidence > 0 && o.confidence <= 1,
        "a value in (0, 1]");
  return o;
}

OraclePolicy::OraclePolicy(uint64_t seed, OraclePolicyOptions options)
    : options_(std::move(options)),
      kb_(KnowledgeBase::Shared(options_.knowledge_base)),
      posterior_(kb_),
      rng_(MixSeed(seed)),
      seen_present_(kb_->findings.size(), false),
      seen_results_(kb_->tests.size(), -1) {}

void OraclePolicy::Observe(const json& info) {
  if (!started_) {
    const wire::Fields c(wire::Fields(info, "info").Object("case"),
                         "info.case");
    const std::string complaint = c.String("chief_complaint");
    const int cc = kb_->FindingIndex(complaint);
    if (cc < 0) {
      throw BadRequest(fmt::format(
          "info.case.chief_complaint: unknown finding \"{}\"", complaint));
    }
    posterior_male_ = c.String("sex") == "male";
    posterior_.Start(static_cast<int>(c.Int("age")), posterior_male_, cc);
    first_impression_ = posterior_.Mode();
    // Drawn only when anchoring is on, so other options keep their streams.
    anchored_ = options_.anchor > 0 && Uniform(rng_) < options_.anchor;
    if (info.value("diagnosis_format", "single") == "ranked") {
      max_differential_ = wire::Fields(info, "info").Int("max_differential", 1);
    }
    tools_ = info.value("action_mode", "text") == "tools";
    seen_present_[cc] = true;
    done_.insert("ASK: " + complaint);
    started_ = true;
    return;
  }
  if (!info.contains("revealed") || !info["revealed"].is_array()) return;
  const std::string type = info.contains("action") && info["action"].is_object()
                               ? info["action"].value("type", "")
                               : "";
  for (const auto& r : info["revealed"]) {
    if (r.contains("finding")) {
      const int f = kb_->FindingIndex(r["finding"].get<std::string>());
      if (f < 0) continue;
      const std::string answer = r.value("answer", "");
      if (type == "exam") {
        posterior_.ObserveSign(f, answer == "yes");
        seen_present_[f] = answer == "yes";
      } else if (kb_->findings[f].askable()) {
        posterior_.ObserveAnswer(f, answer);
        if (answer == "yes") seen_present_[f] = true;
      }
    } else if (r.contains("test")) {
      const int t = kb_->TestIndex(r["test"].get<std::string>());
      if (t < 0) continue;
      const auto& results = kb_->tests[t].results;
      const auto it =
          std::find(results.begin(), results.end(), r.value("result", ""));
      if (it == results.end()) continue;
      const int result = static_cast<int>(it - results.begin());
      posterior_.ObserveTest(t, result);
      seen_results_[t] = result;
    }
  }
}

std::string OraclePolicy::InformationAction() {
  const double h = posterior_.Entropy();
  double best = -1e300;
  std::string action;
  auto consider = [&](const std::string& a, double expected_h, double price) {
    if (done_.count(a)) return;
    const double score = (h - expected_h) - options_.cost_weight * price;
    if (score > best) {
      best = score;
      action = a;
    }
  };
  for (int f : kb_->AskableFindings()) {
    consider("ASK: " + kb_->findings[f].name,
             posterior_.ExpectedEntropyAfterAsk(f), 0.0);
  }
  for (size_t s = 0; s < kb_->systems.size(); ++s) {
    consider("EXAM: " + kb_->systems[s].name,
             posterior_.ExpectedEntropyAfterExam(static_cast<int>(s)),
             kb_->systems[s].cost);
  }
  for (size_t t = 0; t < kb_->tests.size(); ++t) {
    consider("TEST: " + kb_->tests[t].name,
             posterior_.ExpectedEntropyAfterTest(static_cast<int>(t)),
             kb_->tests[t].cost);
  }
  return best > 1e-3 ? action : "";
}

std::string OraclePolicy::RandomInformationAction() {
  const double u = Uniform(rng_);
  if (u < 0.6) {
    const auto askable = kb_->AskableFindings();
    return "ASK: " + kb_->findings[askable[Below(rng_, askable.size())]].name;
  }
  if (u < 0.8) {
    return "EXAM: " + kb_->systems[Below(rng_, kb_->systems.size())].name;
  }
  return "TEST: " + kb_->tests[Below(rng_, kb_->tests.size())].name;
}

std::string OraclePolicy::SafetyCheck() {
  // Before sending a patient home or to clinic, rule out the red flags the
  // belief still allows: vital signs first, then the likeliest red-flag
  // symptom not yet asked.
  std::string action;
  if (!done_.count("EXAM: vitals")) {
    action = "EXAM: vitals";
  } else {
    const auto p = posterior_.Probabilities();
    double best = 0.15;
    for (const RedFlagRule& rule : kb_->red_flags) {
      for (const auto* list : {&rule.all_findings, &rule.any_findings}) {
        for (int f : *list) {
          const std::string ask = "ASK: " + kb_->findings[f].name;
          if (!kb_->findings[f].askable() || done_.count(ask)) continue;
          double chance = 0.0;
          for (size_t c = 0; c < p.size(); ++c) {
            chance += p[c] * kb_->FindingProbability(static_cast<int>(c), f,
                                                     posterior_male_);
          }
          if (chance > best) {
            best = chance;
            action = ask;
          }
        }
      }
    }
  }
  if (!action.empty()) done_.insert(action);
  return action;
}

std::string OraclePolicy::ChooseDisposition() const {
  if (!FiredRedFlags(*kb_, seen_present_, seen_results_).empty()) {
    return "emergency";
  }
  const auto p = posterior_.Probabilities();
  double urgent = 0.0;
  for (size_t c = 0; c < p.size(); ++c) {
    if (kb_->conditions[c].disposition == "emergency") urgent += p[c];
  }
  if (urgent >= 0.3) return "emergency";
  return kb_->conditions[posterior_.Mode()].disposition;
}

std::string OraclePolicy::DiagnosisAction() const {
  const int first = anchored_ ? first_impression_ : posterior_.Mode();
  auto named = [&](int c) {
    const Condition& condition = kb_->conditions[c];
    return options_.diagnose_with == "code" ? condition.icd10 : condition.name;
  };
  if (max_differential_ <= 0) return "DIAGNOSIS: " + named(first);
  // The rest by posterior probability; ties keep the knowledge base's order.
  const auto p = posterior_.Probabilities();
  std::vector<int> order(p.size());
  for (size_t c = 0; c < p.size(); ++c) order[c] = static_cast<int>(c);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return p[a] > p[b]; });
  std::string line = "DIAGNOSIS: 1. " + named(first);
  int64_t listed = 1;
  for (int c : order) {
    if (listed >= max_differential_) break;
    if (c == first) continue;
    line += fmt::format("; {}. {}", ++listed, named(c));
  }
  return line;
}

std::string OraclePolicy::Act(const Observation& transcript, const json& info) {
  Observe(info);
  return ScriptedActionFor(TextAction(info), tools_, max_differential_ > 0);
}

std::string OraclePolicy::TextAction(const json& info) {
  const int64_t turn = InfoInt(info, "turn");
  const int64_t max_turns = InfoInt(info, "max_turns");
  const int64_t left = max_turns - turn;
  const auto p = posterior_.Probabilities();
  const double top = *std::max_element(p.begin(), p.end());
  std::string action;
  if (left > 2 && top < options_.confidence && !stopping_) {
    // An imperfect expert: a random question, exam or test, or (one time in
    // four) a premature diagnosis.
    if (options_.epsilon > 0 && Uniform(rng_) < options_.epsilon) {
      stopping_ = Uniform(rng_) < 0.25;
      if (!stopping_) action = RandomInformationAction();
    } else {
      action = InformationAction();
    }
  }
  if (action.empty() && !disposition_given_ && left > 2 && !stopping_ &&
      ChooseDisposition() != "emergency") {
    action = SafetyCheck();
  }
  if (action.empty() && !disposition_given_ && left >= 2) {
    disposition_given_ = true;
    return "DISPOSITION: " + ChooseDisposition();
  }
  if (action.empty()) return DiagnosisAction();
  done_.insert(action);
  return action;
}

}  // namespace clinrl::envs::dx

CLINRL_REGISTER_SCRIPTED_POLICY(
    dx_dialogue, oracle,
    [](uint64_t seed, const nlohmann::json& options, const std::string& path) {
      return std::make_unique<::clinrl::envs::dx::OraclePolicy>(
          seed, ::clinrl::envs::dx::OraclePolicyOptions::FromJson(
                    options, path, ::clinrl::envs::dx::OraclePolicyOptions{}));
    });

// The oracle with one action in five random: demonstrations from an
// imperfect expert, selectable from the CLI (`--policy noisy_oracle`), which
// passes no policy options. An explicit epsilon still wins.
CLINRL_REGISTER_SCRIPTED_POLICY(
    dx_dialogue, noisy_oracle,
    [](uint64_t seed, const nlohmann::json& options, const std::string& path) {
      ::clinrl::envs::dx::OraclePolicyOptions noisy;
      noisy.epsilon = 0.2;
      return std::make_unique<::clinrl::envs::dx::OraclePolicy>(
          seed, ::clinrl::envs::dx::OraclePolicyOptions::FromJson(options, path,
                                                                  noisy));
    });
