// The synthetic patient behind one med_calc task: demographics, vital
// signs, the Glasgow Coma Scale components, a chemistry/haematology panel
// and yes/no findings (history, medications, symptoms, examination). Every
// value is held at the precision the note prints it with (creatinine in
// hundredths, albumin in tenths, ...), so the number a reader sees in the
// note is exactly the number the ground truth is computed from.
//
// A patient is a pure function of (split, task index, calculator): the
// calculator only shifts the ranges drawn from (a MELD-Na task's patient
// has cirrhosis and deranged liver tests, a free water deficit task's is
// hypernatraemic) so that each calculator's answers spread over its range.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace clinrl::envs::med_calc {

enum class Calculator;

// Yes/no findings. The order is that of kFindingTexts in patient.cc.
enum class Finding {
  kHeartFailure,
  kHypertension,
  kDiabetes,
  kStrokeOrTia,
  kVascularDisease,
  kDialysis,
  kCirrhosis,
  kPriorMajorBleeding,
  kLabileInr,
  kAntiplateletOrNsaid,
  kAlcoholExcess,
  kPriorDvtOrPe,
  kActiveCancer,
  kRecentSurgery,
  kDvtSigns,
  kPeMostLikely,
  kHemoptysis,
  kCough,
  kTonsillarExudate,
  kTenderCervicalNodes,
  kMelena,
  kSyncope,
  kCount
};
inline constexpr size_t kNumFindings = static_cast<size_t>(Finding::kCount);

struct Patient {
  int64_t age = 50;
  bool female = false;
  double weight_kg = 70.0;  // tenths
  int64_t height_cm = 170;
  double temperature_c = 37.0;  // tenths
  int64_t heart_rate = 80;      // beats/min
  int64_t resp_rate = 16;       // breaths/min
  int64_t systolic = 120;       // mmHg
  int64_t diastolic = 80;       // mmHg
  int64_t qt_ms = 400;
  // Glasgow Coma Scale components: eye 1-4, verbal 1-5, motor 1-6.
  int64_t gcs_eye = 4;
  int64_t gcs_verbal = 5;
  int64_t gcs_motor = 6;
  int64_t sodium = 140;      // mEq/L
  double potassium = 4.0;    // mEq/L, tenths
  int64_t chloride = 104;    // mEq/L
  int64_t bicarbonate = 24;  // mEq/L
  int64_t bun = 14;          // blood urea nitrogen, mg/dL
  double creatinine = 1.0;   // mg/dL, hundredths
  int64_t glucose = 100;     // mg/dL
  double albumin = 4.0;      // g/dL, tenths
  double calcium = 9.5;      // mg/dL, tenths
  double hemoglobin = 14.0;  // g/dL, tenths
  double bilirubin = 0.8;    // total, mg/dL, tenths
  double inr = 1.0;          // tenths
  std::array<bool, kNumFindings> findings{};

  bool Has(Finding f) const { return findings[static_cast<size_t>(f)]; }
  void Set(Finding f, bool present = true) {
    findings[static_cast<size_t>(f)] = present;
  }
  int64_t Gcs() const { return gcs_eye + gcs_verbal + gcs_motor; }
  // A GCS below 15 is written in the note as a new altered mental status;
  // it is what qSOFA's "altered mentation" and CURB-65's "confusion" read.
  bool Confused() const { return Gcs() < 15; }
};

// What the note says for a finding, present and absent.
struct FindingText {
  const char* name;     // snake_case, for info and tests
  bool history;         // listed under past history (else its own sentence)
  const char* present;  // history: a noun phrase; else a sentence
  const char* absent;   // history: a noun phrase; else a sentence
};
const FindingText& TextOf(Finding f);

// The patient of task `index` of `split` when the task asks for
// `calculator`. Different splits draw from different streams, so the
// splits hold different patients.
Patient GeneratePatient(const std::string& split, int64_t index,
                        Calculator calculator);

}  // namespace clinrl::envs::med_calc
