// The clinical calculators of med_calc, each written from its published
// source (cited at the function; docs/envs/med_calc.md has the table).
// A calculator reads a Patient and returns the exact value; the env rounds
// formula results to two decimals for the ground truth. Score calculators
// return whole points (Wells' half points excepted) and are graded exactly;
// formula calculators are graded within 5% of the truth, MedCalc-Bench's
// tolerance.
#pragma once

#include <string>
#include <vector>

#include "envs/med_calc/patient.h"

namespace clinrl::envs::med_calc {

enum class Calculator {
  kCha2ds2Vasc,
  kHasBled,
  kCkdEpi2021,
  kCockcroftGault,
  kMeldNa,
  kWellsPe,
  kCurb65,
  kQsofa,
  kAnionGap,
  kCorrectedCalcium,
  kQtcBazett,
  kBmi,
  kBsaMosteller,
  kMeanArterialPressure,
  kGlasgowBlatchford,
  kCentorMcIsaac,
  kGlasgowComaScale,
  kFreeWaterDeficit,
  kCount
};
inline constexpr size_t kNumCalculators =
    static_cast<size_t>(Calculator::kCount);

struct CalculatorInfo {
  Calculator id;
  const char* name;      // the option value, e.g. "ckd_epi_2021"
  const char* question;  // asks for the value and says the unit/form
  bool score;            // graded by exact match, else within 5%
  double low, high;      // the plausible range (the random policy's)
};

const CalculatorInfo& InfoOf(Calculator c);
// Every calculator name, in enum order.
std::vector<std::string> CalculatorNames();
// The calculator named `name`; false when there is none.
bool CalculatorNamed(const std::string& name, Calculator* out);

// The yes/no findings the calculator reads; the note states each of them,
// present or absent.
std::vector<Finding> FindingsReadBy(Calculator c);

// The calculator's exact value for `p`.
double Compute(Calculator c, const Patient& p);
// The ground truth: scores as computed, formula values rounded to 2 decimals.
double GroundTruth(Calculator c, const Patient& p);

// One function per calculator, for the tests.
int Cha2ds2Vasc(const Patient& p);
int HasBled(const Patient& p);
double CkdEpi2021(const Patient& p);
double CockcroftGault(const Patient& p);
int MeldNa(const Patient& p);
double WellsPe(const Patient& p);
int Curb65(const Patient& p);
int Qsofa(const Patient& p);
double AnionGap(const Patient& p);
double CorrectedCalcium(const Patient& p);
double QtcBazett(const Patient& p);
double Bmi(const Patient& p);
double BsaMosteller(const Patient& p);
double MeanArterialPressure(const Patient& p);
int GlasgowBlatchford(const Patient& p);
int CentorMcIsaac(const Patient& p);
int GlasgowComaScale(const Patient& p);
double FreeWaterDeficit(const Patient& p);

}  // namespace clinrl::envs::med_calc
