#include "envs/med_calc/scripted_policies.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "core/wire.h"
#include "envs/env_options.h"

namespace clinrl::envs::med_calc {

namespace {

Calculator CalculatorOf(const std::string& name) {
  Calculator c;
  if (!CalculatorNamed(name, &c)) {
    throw BadRequest(
        fmt::format("info.task.calculator: unknown calculator '{}'", name));
  }
  return c;
}

}  // namespace

std::string OraclePolicy::Act(const Observation&, const json& info) {
  if (info.contains("task")) task_ = info["task"];
  const wire::Fields task(task_, "info.task");
  const Calculator c = CalculatorOf(task.String("calculator"));
  // Task i of a split is the same patient whatever calculators are enabled
  // around it, so rebuilding it with this calculator alone is exact.
  const Patient patient =
      GeneratePatient(task.String("split"), task.Int("task_index"), c);
  const double value = GroundTruth(c, patient);
  return fmt::format(
      "Applying {} to the values in the note gives {}.\n"
      "ANSWER: {}",
      InfoOf(c).name, value, value);
}

RandomPolicy::RandomPolicy(uint64_t seed) : rng_(seed ^ 0x6d656463616cULL) {}

double RandomValue(Calculator c, double u) {
  const CalculatorInfo& info = InfoOf(c);
  const double raw = info.low + u * (info.high - info.low);
  // Scores take whole points (Wells half points); formulas one decimal.
  const double step = c == Calculator::kWellsPe ? 0.5 : info.score ? 1.0 : 0.1;
  const double value = std::round(raw / step) * step;
  return std::round(value * 10.0) / 10.0;
}

std::string RandomPolicy::Act(const Observation&, const json& info) {
  if (info.contains("calculator")) {
    calculator_ = info["calculator"].get<std::string>();
  }
  // 53 random bits as a fraction in [0, 1), the same on every platform.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  return fmt::format("ANSWER: {}", RandomValue(CalculatorOf(calculator_), u));
}

}  // namespace clinrl::envs::med_calc

CLINRL_REGISTER_SCRIPTED_POLICY(
    med_calc, oracle,
    [](uint64_t, const nlohmann::json& options, const std::string& path) {
      ::clinrl::envs::ReadOptions<::clinrl::envs::NoOptions>(options, path);
      return std::make_unique<::clinrl::envs::med_calc::OraclePolicy>();
    });

CLINRL_REGISTER_SCRIPTED_POLICY(
    med_calc, random,
    [](uint64_t seed, const nlohmann::json& options, const std::string& path) {
      ::clinrl::envs::ReadOptions<::clinrl::envs::NoOptions>(options, path);
      return std::make_unique<::clinrl::envs::med_calc::RandomPolicy>(seed);
    });
