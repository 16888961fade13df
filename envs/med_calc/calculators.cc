#include "envs/med_calc/calculators.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace clinrl::envs::med_calc {

namespace {

using F = Finding;

constexpr std::array<CalculatorInfo, kNumCalculators> kCalculators = {{
    {Calculator::kCha2ds2Vasc, "cha2ds2_vasc",
     "What is the patient's CHA2DS2-VASc score for stroke risk in atrial "
     "fibrillation? Answer with the integer score (points).",
     true, 0, 9},
    {Calculator::kHasBled, "has_bled",
     "What is the patient's HAS-BLED score for major bleeding risk? Count "
     "hypertension only if the systolic pressure measured today is above "
     "160 mmHg. Answer with the integer score (points).",
     true, 0, 9},
    {Calculator::kCkdEpi2021, "ckd_epi_2021",
     "Using the 2021 race-free CKD-EPI creatinine equation, what is the "
     "patient's estimated GFR? Answer in mL/min/1.73 m^2.",
     false, 5, 130},
    {Calculator::kCockcroftGault, "cockcroft_gault",
     "Using the Cockcroft-Gault equation with the patient's actual body "
     "weight, what is the creatinine clearance? Answer in mL/min.",
     false, 5, 200},
    {Calculator::kMeldNa, "meld_na",
     "What is the patient's MELD-Na score (UNOS/OPTN 2016 version, with its "
     "bounds on creatinine, bilirubin, INR and sodium)? Answer with the "
     "score as a whole number (points).",
     false, 6, 40},
    {Calculator::kWellsPe, "wells_pe",
     "What is the patient's Wells score for pulmonary embolism? Answer with "
     "the total points (a multiple of 0.5).",
     true, 0, 12.5},
    {Calculator::kCurb65, "curb65",
     "What is the patient's CURB-65 score for community-acquired pneumonia "
     "severity? Answer with the integer score (points).",
     true, 0, 5},
    {Calculator::kQsofa, "qsofa",
     "What is the patient's qSOFA (quick SOFA) score? Answer with the "
     "integer score (points).",
     true, 0, 3},
    {Calculator::kAnionGap, "anion_gap",
     "What is the patient's serum anion gap, calculated as Na - (Cl + "
     "HCO3) without potassium? Answer in mEq/L.",
     false, 2, 30},
    {Calculator::kCorrectedCalcium, "corrected_calcium",
     "What is the patient's calcium corrected for albumin (normal albumin "
     "4.0 g/dL)? Answer in mg/dL.",
     false, 6, 13},
    {Calculator::kQtcBazett, "qtc_bazett",
     "What is the patient's corrected QT interval by Bazett's formula? "
     "Answer in msec.",
     false, 330, 560},
    {Calculator::kBmi, "bmi",
     "What is the patient's body mass index? Answer in kg/m^2.", false, 15, 50},
    {Calculator::kBsaMosteller, "bsa_mosteller",
     "What is the patient's body surface area by the Mosteller formula? "
     "Answer in m^2.",
     false, 1.3, 2.6},
    {Calculator::kMeanArterialPressure, "mean_arterial_pressure",
     "What is the patient's mean arterial pressure, estimated from the "
     "blood pressure as (2 x diastolic + systolic) / 3? Answer in mmHg.",
     false, 50, 140},
    {Calculator::kGlasgowBlatchford, "glasgow_blatchford",
     "What is the patient's Glasgow-Blatchford bleeding score? Answer with "
     "the integer score (points).",
     true, 0, 23},
    {Calculator::kCentorMcIsaac, "centor_mcisaac",
     "What is the patient's Centor score modified by McIsaac (including "
     "the age adjustment)? Answer with the integer score (points; it may "
     "be negative).",
     true, -1, 5},
    {Calculator::kGlasgowComaScale, "glasgow_coma_scale",
     "What is the patient's Glasgow Coma Scale score? Answer with the "
     "integer total (3-15).",
     true, 3, 15},
    {Calculator::kFreeWaterDeficit, "free_water_deficit",
     "What is the patient's free water deficit, using total body water of "
     "0.6 x weight (men under 65), 0.5 (women under 65 and men 65 or "
     "older) or 0.45 (women 65 or older) and a target sodium of 140 "
     "mEq/L? Answer in liters.",
     false, 0.5, 12},
}};

int Points(bool criterion, int points = 1) { return criterion ? points : 0; }

}  // namespace

const CalculatorInfo& InfoOf(Calculator c) {
  return kCalculators[static_cast<size_t>(c)];
}

std::vector<std::string> CalculatorNames() {
  std::vector<std::string> names;
  for (const CalculatorInfo& info : kCalculators) names.push_back(info.name);
  return names;
}

bool CalculatorNamed(const std::string& name, Calculator* out) {
  for (const CalculatorInfo& info : kCalculators) {
    if (name == info.name) {
      *out = info.id;
      return true;
    }
  }
  return false;
}

std::vector<Finding> FindingsReadBy(Calculator c) {
  switch (c) {
    case Calculator::kCha2ds2Vasc:
      return {F::kHeartFailure, F::kHypertension, F::kDiabetes, F::kStrokeOrTia,
              F::kVascularDisease};
    case Calculator::kHasBled:
      return {F::kDialysis,           F::kCirrhosis, F::kStrokeOrTia,
              F::kPriorMajorBleeding, F::kLabileInr, F::kAntiplateletOrNsaid,
              F::kAlcoholExcess};
    case Calculator::kMeldNa:
      return {F::kDialysis};
    case Calculator::kWellsPe:
      return {F::kDvtSigns,     F::kPeMostLikely, F::kRecentSurgery,
              F::kPriorDvtOrPe, F::kHemoptysis,   F::kActiveCancer};
    case Calculator::kGlasgowBlatchford:
      return {F::kMelena, F::kSyncope, F::kCirrhosis, F::kHeartFailure};
    case Calculator::kCentorMcIsaac:
      return {F::kCough, F::kTonsillarExudate, F::kTenderCervicalNodes};
    default:
      return {};
  }
}

// Lip et al., Chest 2010;137:263-272.
int Cha2ds2Vasc(const Patient& p) {
  return Points(p.Has(F::kHeartFailure)) + Points(p.Has(F::kHypertension)) +
         Points(p.age >= 75, 2) + Points(p.Has(F::kDiabetes)) +
         Points(p.Has(F::kStrokeOrTia), 2) +
         Points(p.Has(F::kVascularDisease)) +
         Points(p.age >= 65 && p.age < 75) + Points(p.female);
}

// Pisters et al., Chest 2010;138:1093-1100: H is uncontrolled hypertension
// (systolic > 160 mmHg); abnormal renal function is chronic dialysis or a
// creatinine >= 200 umol/L (2.26 mg/dL); abnormal liver function is
// cirrhosis; elderly is age > 65.
int HasBled(const Patient& p) {
  const bool renal = p.Has(F::kDialysis) || p.creatinine >= 2.26;
  return Points(p.systolic > 160) + Points(renal) +
         Points(p.Has(F::kCirrhosis)) + Points(p.Has(F::kStrokeOrTia)) +
         Points(p.Has(F::kPriorMajorBleeding)) + Points(p.Has(F::kLabileInr)) +
         Points(p.age > 65) + Points(p.Has(F::kAntiplateletOrNsaid)) +
         Points(p.Has(F::kAlcoholExcess));
}

// Inker et al., NEJM 2021;385:1737-1749 (race-free creatinine equation).
double CkdEpi2021(const Patient& p) {
  const double kappa = p.female ? 0.7 : 0.9;
  const double alpha = p.female ? -0.241 : -0.302;
  const double ratio = p.creatinine / kappa;
  return 142.0 * std::pow(std::min(ratio, 1.0), alpha) *
         std::pow(std::max(ratio, 1.0), -1.200) *
         std::pow(0.9938, static_cast<double>(p.age)) *
         (p.female ? 1.012 : 1.0);
}

// Cockcroft & Gault, Nephron 1976;16:31-41.
double CockcroftGault(const Patient& p) {
  const double male = (140.0 - static_cast<double>(p.age)) * p.weight_kg /
                      (72.0 * p.creatinine);
  return p.female ? 0.85 * male : male;
}

// Kim et al., NEJM 2008;359:1018-1026, as adopted by UNOS/OPTN (2016):
// creatinine, bilirubin and INR below 1 are set to 1, creatinine above 4
// (or dialysis twice in the past week) to 4, sodium bounded to 125-137;
// MELD(i) is rounded to the tenth and multiplied by 10; the sodium term
// applies only when MELD > 11; the result is capped at 40.
int MeldNa(const Patient& p) {
  const double creatinine =
      p.Has(F::kDialysis) ? 4.0 : std::clamp(p.creatinine, 1.0, 4.0);
  const double bilirubin = std::max(p.bilirubin, 1.0);
  const double inr = std::max(p.inr, 1.0);
  const double sodium = std::clamp(static_cast<double>(p.sodium), 125.0, 137.0);
  const double meld_i = 0.957 * std::log(creatinine) +
                        0.378 * std::log(bilirubin) + 1.120 * std::log(inr) +
                        0.643;
  double meld = std::round(meld_i * 10.0);
  if (meld > 11.0) {
    meld += 1.32 * (137.0 - sodium) - 0.033 * meld * (137.0 - sodium);
  }
  return static_cast<int>(std::min(std::round(meld), 40.0));
}

// Wells et al., Thromb Haemost 2000;83:416-420.
double WellsPe(const Patient& p) {
  double score = 0;
  if (p.Has(F::kDvtSigns)) score += 3.0;
  if (p.Has(F::kPeMostLikely)) score += 3.0;
  if (p.heart_rate > 100) score += 1.5;
  if (p.Has(F::kRecentSurgery)) score += 1.5;
  if (p.Has(F::kPriorDvtOrPe)) score += 1.5;
  if (p.Has(F::kHemoptysis)) score += 1.0;
  if (p.Has(F::kActiveCancer)) score += 1.0;
  return score;
}

// Lim et al., Thorax 2003;58:377-382: urea > 7 mmol/L is BUN > 19 mg/dL.
int Curb65(const Patient& p) {
  return Points(p.Confused()) + Points(p.bun > 19) + Points(p.resp_rate >= 30) +
         Points(p.systolic < 90 || p.diastolic <= 60) + Points(p.age >= 65);
}

// Seymour et al., JAMA 2016;315:762-774.
int Qsofa(const Patient& p) {
  return Points(p.resp_rate >= 22) + Points(p.Confused()) +
         Points(p.systolic <= 100);
}

double AnionGap(const Patient& p) {
  return static_cast<double>(p.sodium - (p.chloride + p.bicarbonate));
}

// Payne et al., BMJ 1973;4:643-646: 0.02 mmol/L per g/L of albumin below
// 40 g/L, i.e. 0.8 mg/dL per g/dL below 4.0 g/dL.
double CorrectedCalcium(const Patient& p) {
  return p.calcium + 0.8 * (4.0 - p.albumin);
}

// Bazett, Heart 1920;7:353-370: QT / sqrt(RR in seconds).
double QtcBazett(const Patient& p) {
  const double rr_s = 60.0 / static_cast<double>(p.heart_rate);
  return static_cast<double>(p.qt_ms) / std::sqrt(rr_s);
}

double Bmi(const Patient& p) {
  const double height_m = static_cast<double>(p.height_cm) / 100.0;
  return p.weight_kg / (height_m * height_m);
}

// Mosteller, NEJM 1987;317:1098.
double BsaMosteller(const Patient& p) {
  return std::sqrt(static_cast<double>(p.height_cm) * p.weight_kg / 3600.0);
}

double MeanArterialPressure(const Patient& p) {
  return (2.0 * static_cast<double>(p.diastolic) +
          static_cast<double>(p.systolic)) /
         3.0;
}

namespace {

// Blatchford et al., Lancet 2000;356:1318-1321, with urea in mmol/L
// converted to BUN in mg/dL (x 2.8): 6.5, 8, 10 and 25 mmol/L are 18.2,
// 22.4, 28 and 70 mg/dL.
int BlatchfordUrea(int64_t bun) {
  const double b = static_cast<double>(bun);
  if (b >= 70.0) return 6;
  if (b >= 28.0) return 4;
  if (b >= 22.4) return 3;
  if (b >= 18.2) return 2;
  return 0;
}

int BlatchfordHemoglobin(double hb, bool female) {
  if (hb < 10.0) return 6;
  if (female) return hb < 12.0 ? 1 : 0;
  if (hb < 12.0) return 3;
  return hb < 13.0 ? 1 : 0;
}

int BlatchfordSystolic(int64_t sbp) {
  if (sbp < 90) return 3;
  if (sbp < 100) return 2;
  if (sbp < 110) return 1;
  return 0;
}

}  // namespace

int GlasgowBlatchford(const Patient& p) {
  return BlatchfordUrea(p.bun) + BlatchfordHemoglobin(p.hemoglobin, p.female) +
         BlatchfordSystolic(p.systolic) + Points(p.heart_rate >= 100) +
         Points(p.Has(F::kMelena)) + Points(p.Has(F::kSyncope), 2) +
         Points(p.Has(F::kCirrhosis), 2) + Points(p.Has(F::kHeartFailure), 2);
}

// McIsaac et al., CMAJ 1998;158:75-83 (the Centor criteria of Centor et
// al., Med Decis Making 1981, plus age).
int CentorMcIsaac(const Patient& p) {
  const int age = p.age < 15 ? 1 : p.age < 45 ? 0 : -1;
  return Points(p.temperature_c > 38.0) + Points(!p.Has(F::kCough)) +
         Points(p.Has(F::kTenderCervicalNodes)) +
         Points(p.Has(F::kTonsillarExudate)) + age;
}

// Teasdale & Jennett, Lancet 1974;2:81-84.
int GlasgowComaScale(const Patient& p) { return static_cast<int>(p.Gcs()); }

// Adrogue & Madias, NEJM 2000;342:1493-1499: TBW x (Na / 140 - 1).
double FreeWaterDeficit(const Patient& p) {
  const bool older = p.age >= 65;
  const double fraction = p.female ? (older ? 0.45 : 0.5) : (older ? 0.5 : 0.6);
  return fraction * p.weight_kg * (static_cast<double>(p.sodium) / 140.0 - 1.0);
}

double Compute(Calculator c, const Patient& p) {
  switch (c) {
    case Calculator::kCha2ds2Vasc:
      return Cha2ds2Vasc(p);
    case Calculator::kHasBled:
      return HasBled(p);
    case Calculator::kCkdEpi2021:
      return CkdEpi2021(p);
    case Calculator::kCockcroftGault:
      return CockcroftGault(p);
    case Calculator::kMeldNa:
      return MeldNa(p);
    case Calculator::kWellsPe:
      return WellsPe(p);
    case Calculator::kCurb65:
      return Curb65(p);
    case Calculator::kQsofa:
      return Qsofa(p);
    case Calculator::kAnionGap:
      return AnionGap(p);
    case Calculator::kCorrectedCalcium:
      return CorrectedCalcium(p);
    case Calculator::kQtcBazett:
      return QtcBazett(p);
    case Calculator::kBmi:
      return Bmi(p);
    case Calculator::kBsaMosteller:
      return BsaMosteller(p);
    case Calculator::kMeanArterialPressure:
      return MeanArterialPressure(p);
    case Calculator::kGlasgowBlatchford:
      return GlasgowBlatchford(p);
    case Calculator::kCentorMcIsaac:
      return CentorMcIsaac(p);
    case Calculator::kGlasgowComaScale:
      return GlasgowComaScale(p);
    case Calculator::kFreeWaterDeficit:
      return FreeWaterDeficit(p);
    case Calculator::kCount:
      break;
  }
  return 0.0;
}

double GroundTruth(Calculator c, const Patient& p) {
  const double value = Compute(c, p);
  if (InfoOf(c).score) return value;
  return std::round(value * 100.0) / 100.0;
}

}  // namespace clinrl::envs::med_calc
