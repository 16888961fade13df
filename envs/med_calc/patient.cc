#include "envs/med_calc/patient.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "envs/med_calc/calculators.h"

namespace clinrl::envs::med_calc {

namespace {

using F = Finding;

// History items are noun phrases ("Past medical history: A, B."); the rest
// are whole sentences, present and absent, so a pertinent negative is as
// plain as a positive.
constexpr std::array<FindingText, kNumFindings> kFindingTexts = {{
    {"heart_failure", true, "congestive heart failure",
     "congestive heart failure"},
    {"hypertension", true, "hypertension", "hypertension"},
    {"diabetes", true, "type 2 diabetes mellitus", "diabetes mellitus"},
    {"stroke_or_tia", true, "a prior ischemic stroke",
     "stroke or transient ischemic attack"},
    {"vascular_disease", true,
     "vascular disease (prior myocardial infarction and peripheral arterial "
     "disease)",
     "vascular disease (myocardial infarction, peripheral arterial disease "
     "or aortic plaque)"},
    {"dialysis", true,
     "end-stage renal disease on hemodialysis three times a week, most "
     "recently twice in the past week",
     "dialysis or kidney transplantation"},
    {"cirrhosis", true, "cirrhosis of the liver", "liver disease"},
    {"prior_major_bleeding", true,
     "a prior major bleeding episode requiring transfusion",
     "major bleeding or a bleeding disorder"},
    {"labile_inr", true,
     "labile INRs on warfarin (time in therapeutic range below 60%)",
     "labile INRs"},
    {"antiplatelet_or_nsaid", false,
     "The patient takes aspirin 81 mg daily and ibuprofen most days.",
     "The patient takes no antiplatelet agents or NSAIDs."},
    {"alcohol_excess", false,
     "The patient drinks about 12 alcoholic drinks per week.",
     "The patient drinks alcohol rarely, fewer than 2 drinks per week."},
    {"prior_dvt_or_pe", true, "a previous deep vein thrombosis",
     "previous deep vein thrombosis or pulmonary embolism"},
    {"active_cancer", true,
     "colon cancer treated with chemotherapy within the past 6 months",
     "malignancy"},
    {"recent_surgery", true,
     "a hip replacement 3 weeks ago with 5 days of bed rest afterwards",
     "recent surgery or immobilization"},
    {"dvt_signs", false,
     "The left calf is swollen and tender along the deep veins.",
     "There is no leg swelling and no calf tenderness."},
    {"pe_most_likely", false,
     "The team judges pulmonary embolism to be the most likely diagnosis.",
     "The team judges an alternative diagnosis more likely than pulmonary "
     "embolism."},
    {"hemoptysis", false, "The patient has coughed up blood.",
     "There has been no hemoptysis."},
    {"cough", false, "The patient has a cough.", "The patient has no cough."},
    {"tonsillar_exudate", false, "The tonsils are swollen with exudate.",
     "The tonsils are neither swollen nor exudative."},
    {"tender_cervical_nodes", false,
     "The anterior cervical lymph nodes are swollen and tender.",
     "There is no anterior cervical lymphadenopathy."},
    {"melena", false, "The patient reports black, tarry stools (melena).",
     "The patient reports no melena."},
    {"syncope", false, "The patient fainted at home this morning (syncope).",
     "There has been no syncope."},
}};

// A value in [lo, hi]: `rng() % n` rather than a std distribution, whose
// output the standard leaves to the library, so a task is the same patient
// on every platform.
int64_t Draw(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
}

// A value in [lo, hi] on a grid of 1 / scale (tenths, hundredths).
double DrawFixed(std::mt19937_64& rng, double lo, double hi, int scale) {
  const auto a = static_cast<int64_t>(lo * scale + 0.5);
  const auto b = static_cast<int64_t>(hi * scale + 0.5);
  return static_cast<double>(Draw(rng, a, b)) / scale;
}

bool Chance(std::mt19937_64& rng, int percent) {
  return Draw(rng, 1, 100) <= percent;
}

// A QT interval (msec) that is physiological at `heart_rate`: the one whose
// Bazett correction is `qtc_ms` (a fast heart has a short QT).
int64_t QtFor(int64_t heart_rate, int64_t qtc_ms) {
  const double rr_s = 60.0 / static_cast<double>(heart_rate);
  return static_cast<int64_t>(
      std::lround(static_cast<double>(qtc_ms) * std::sqrt(rr_s)));
}

// The everyday patient: adult, mostly normal vitals and labs.
Patient BasePatient(std::mt19937_64& rng) {
  Patient p;
  p.age = Draw(rng, 18, 90);
  p.female = Chance(rng, 50);
  p.height_cm = p.female ? Draw(rng, 150, 178) : Draw(rng, 160, 195);
  p.weight_kg = DrawFixed(rng, 45, 130, 10);
  p.temperature_c = DrawFixed(rng, 36.2, 37.6, 10);
  p.heart_rate = Draw(rng, 58, 98);
  p.resp_rate = Draw(rng, 12, 20);
  p.systolic = Draw(rng, 105, 150);
  p.diastolic = Draw(rng, 62, 92);
  p.qt_ms = Draw(rng, 360, 440);
  p.sodium = Draw(rng, 135, 144);
  p.potassium = DrawFixed(rng, 3.5, 5.0, 10);
  p.bicarbonate = Draw(rng, 22, 28);
  p.chloride = p.sodium - p.bicarbonate - Draw(rng, 7, 14);
  p.bun = Draw(rng, 8, 19);
  p.creatinine = DrawFixed(rng, 0.6, 1.2, 100);
  p.glucose = Draw(rng, 75, 140);
  p.albumin = DrawFixed(rng, 3.6, 4.8, 10);
  p.calcium = DrawFixed(rng, 8.8, 10.2, 10);
  p.hemoglobin = p.female ? DrawFixed(rng, 12.0, 15.0, 10)
                          : DrawFixed(rng, 13.2, 16.5, 10);
  p.bilirubin = DrawFixed(rng, 0.3, 1.1, 10);
  p.inr = DrawFixed(rng, 0.9, 1.1, 10);
  for (size_t f = 0; f < kNumFindings; ++f) {
    p.findings[f] = Chance(rng, 15);
  }
  // Rare in the everyday patient; the calculators that read them set them.
  p.Set(F::kDialysis, false);
  p.Set(F::kCirrhosis, false);
  return p;
}

// A GCS below 15 on `percent` of patients, otherwise alert and oriented.
void DrawMentalStatus(std::mt19937_64& rng, Patient& p, int percent) {
  if (!Chance(rng, percent)) return;
  p.gcs_verbal = Draw(rng, 3, 4);
  p.gcs_eye = Draw(rng, 3, 4);
  p.gcs_motor = Draw(rng, 5, 6);
}

// Components that go together (a patient who obeys commands opens the eyes):
// one depth of coma, each component near its share of it.
void ShapeForHeadInjury(std::mt19937_64& rng, Patient& p) {
  const int64_t depth = Draw(rng, 0, 10);  // 0 deep coma .. 10 alert
  const auto component = [&](int64_t best) {
    const int64_t centre = 1 + (depth * (best - 1) + 5) / 10;
    return std::clamp<int64_t>(centre + Draw(rng, -1, 1), 1, best);
  };
  p.gcs_eye = component(4);
  p.gcs_verbal = component(5);
  p.gcs_motor = component(6);
}

void ShapeForRespiratory(std::mt19937_64& rng, Patient& p) {
  p.age = Draw(rng, 30, 92);
  p.temperature_c = DrawFixed(rng, 37.0, 39.8, 10);
  p.resp_rate = Draw(rng, 14, 36);
  p.systolic = Draw(rng, 78, 150);
  p.diastolic = Draw(rng, 42, 90);
  p.bun = Draw(rng, 8, 48);
  p.heart_rate = Draw(rng, 70, 130);
  DrawMentalStatus(rng, p, 40);
}

void ShapeForLiver(std::mt19937_64& rng, Patient& p) {
  p.Set(F::kCirrhosis);
  p.Set(F::kDialysis, Chance(rng, 10));
  p.Set(F::kLabileInr, false);  // no warfarin: the INR is the liver's
  p.creatinine = DrawFixed(rng, 0.5, 4.5, 100);
  p.bilirubin = DrawFixed(rng, 0.4, 8.0, 10);
  p.inr = DrawFixed(rng, 0.9, 2.8, 10);
  p.sodium = Draw(rng, 120, 142);
  p.chloride = p.sodium - p.bicarbonate - Draw(rng, 7, 14);
  p.albumin = DrawFixed(rng, 2.0, 3.8, 10);
}

void ShapeForBleeding(std::mt19937_64& rng, Patient& p) {
  p.bun = Draw(rng, 10, 85);
  p.hemoglobin = DrawFixed(rng, 6.0, 15.5, 10);
  p.systolic = Draw(rng, 80, 140);
  p.diastolic = Draw(rng, 45, 85);
  p.heart_rate = Draw(rng, 70, 130);
  p.Set(F::kCirrhosis, Chance(rng, 20));
  for (Finding f : {F::kMelena, F::kSyncope, F::kHeartFailure}) {
    p.Set(f, Chance(rng, 35));
  }
}

void ShapeForAnticoagulation(std::mt19937_64& rng, Patient& p) {
  p.age = Draw(rng, 40, 92);
  p.systolic = Draw(rng, 115, 185);
  p.creatinine = DrawFixed(rng, 0.6, 3.0, 100);
  for (Finding f :
       {F::kHeartFailure, F::kHypertension, F::kDiabetes, F::kStrokeOrTia,
        F::kVascularDisease, F::kPriorMajorBleeding, F::kLabileInr,
        F::kAntiplateletOrNsaid, F::kAlcoholExcess}) {
    p.Set(f, Chance(rng, 35));
  }
  p.Set(F::kDialysis, Chance(rng, 8));
  p.Set(F::kCirrhosis, Chance(rng, 12));
}

void ShapeForPe(std::mt19937_64& rng, Patient& p) {
  p.heart_rate = Draw(rng, 70, 130);
  for (Finding f : {F::kDvtSigns, F::kPeMostLikely, F::kRecentSurgery,
                    F::kPriorDvtOrPe, F::kHemoptysis, F::kActiveCancer}) {
    p.Set(f, Chance(rng, 35));
  }
}

void ShapeForPharyngitis(std::mt19937_64& rng, Patient& p) {
  p.age = Draw(rng, 18, 70);
  p.temperature_c = DrawFixed(rng, 36.8, 39.6, 10);
  for (Finding f : {F::kCough, F::kTonsillarExudate, F::kTenderCervicalNodes}) {
    p.Set(f, Chance(rng, 50));
  }
}

void ShapeForCalculator(Calculator c, std::mt19937_64& rng, Patient& p) {
  switch (c) {
    case Calculator::kCha2ds2Vasc:
    case Calculator::kHasBled:
      return ShapeForAnticoagulation(rng, p);
    case Calculator::kCkdEpi2021:
    case Calculator::kCockcroftGault:
      p.creatinine = DrawFixed(rng, 0.5, 3.0, 100);
      return;
    case Calculator::kMeldNa:
      return ShapeForLiver(rng, p);
    case Calculator::kWellsPe:
      return ShapeForPe(rng, p);
    case Calculator::kCurb65:
    case Calculator::kQsofa:
      return ShapeForRespiratory(rng, p);
    case Calculator::kAnionGap:
      p.bicarbonate = Draw(rng, 10, 28);
      p.chloride = p.sodium - p.bicarbonate - Draw(rng, 5, 26);
      return;
    case Calculator::kCorrectedCalcium:
      p.albumin = DrawFixed(rng, 1.8, 4.6, 10);
      p.calcium = DrawFixed(rng, 7.0, 11.5, 10);
      return;
    case Calculator::kQtcBazett:
      p.heart_rate = Draw(rng, 48, 125);
      p.qt_ms = QtFor(p.heart_rate, Draw(rng, 360, 520));
      return;
    case Calculator::kMeanArterialPressure:
      p.systolic = Draw(rng, 80, 200);
      p.diastolic = Draw(rng, 40, 120);
      if (p.diastolic >= p.systolic - 20) p.diastolic = p.systolic - 25;
      return;
    case Calculator::kGlasgowBlatchford:
      return ShapeForBleeding(rng, p);
    case Calculator::kCentorMcIsaac:
      return ShapeForPharyngitis(rng, p);
    case Calculator::kGlasgowComaScale:
      return ShapeForHeadInjury(rng, p);
    case Calculator::kFreeWaterDeficit:
      p.sodium = Draw(rng, 147, 168);
      p.chloride = p.sodium - p.bicarbonate - Draw(rng, 7, 14);
      return;
    default:
      return;
  }
}

uint64_t SplitSalt(const std::string& split) {
  if (split == "train") return 1;
  if (split == "validation") return 2;
  if (split == "test") return 3;
  return 4;
}

}  // namespace

const FindingText& TextOf(Finding f) {
  return kFindingTexts[static_cast<size_t>(f)];
}

Patient GeneratePatient(const std::string& split, int64_t index,
                        Calculator calculator) {
  // Each split draws from its own stream, so test patients are not train's.
  std::mt19937_64 rng(SplitSalt(split) * 0x9E3779B97F4A7C15ULL +
                      static_cast<uint64_t>(index) * 7919u + 17u);
  Patient p = BasePatient(rng);
  ShapeForCalculator(calculator, rng, p);
  return p;
}

}  // namespace clinrl::envs::med_calc
