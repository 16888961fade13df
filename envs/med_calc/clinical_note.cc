#include "envs/med_calc/clinical_note.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace clinrl::envs::med_calc {

namespace {

const char* Complaint(Calculator c) {
  switch (c) {
    case Calculator::kCha2ds2Vasc:
    case Calculator::kHasBled:
      return "with palpitations; the ECG shows atrial fibrillation";
    case Calculator::kCkdEpi2021:
    case Calculator::kCockcroftGault:
      return "for a review of kidney function before starting a renally "
             "cleared "
             "medication";
    case Calculator::kMeldNa:
      return "with increasing abdominal distension from ascites";
    case Calculator::kWellsPe:
      return "with sudden shortness of breath and pleuritic chest pain";
    case Calculator::kCurb65:
    case Calculator::kQsofa:
      return "with fever, productive cough and shortness of breath; the chest "
             "X-ray shows a right lower lobe pneumonia";
    case Calculator::kCorrectedCalcium:
      return "with fatigue and constipation";
    case Calculator::kQtcBazett:
      return "with palpitations before starting a QT-prolonging antibiotic";
    case Calculator::kBsaMosteller:
      return "for an assessment before chemotherapy dosing";
    case Calculator::kMeanArterialPressure:
      return "with a headache";
    case Calculator::kGlasgowBlatchford:
      return "with vomiting blood since last night";
    case Calculator::kCentorMcIsaac:
      return "with a sore throat for two days";
    case Calculator::kGlasgowComaScale:
      return "after being found on the floor at home following a fall";
    case Calculator::kFreeWaterDeficit:
      return "with poor oral intake and lethargy over several days";
    default:
      return "with nausea and malaise";
  }
}

// "An 80-year-old", "an 11-year-old", "an 18-year-old": by the sound.
const char* Article(int64_t age) {
  const bool vowel =
      age == 8 || age == 11 || age == 18 || (age >= 80 && age <= 89);
  return vowel ? "An" : "A";
}

// "a", "a and b", "a, b and c" (`last` joins the final pair).
std::string JoinList(const std::vector<std::string>& items, const char* last) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? fmt::format(" {} ", last) : ", ";
    out += items[i];
  }
  return out;
}

bool Reads(const std::vector<Finding>& read, Finding f) {
  return std::find(read.begin(), read.end(), f) != read.end();
}

std::string History(const Patient& p, const std::vector<Finding>& read) {
  std::vector<std::string> present, absent;
  for (size_t i = 0; i < kNumFindings; ++i) {
    const auto f = static_cast<Finding>(i);
    if (!TextOf(f).history) continue;
    if (p.Has(f)) {
      present.push_back(TextOf(f).present);
    } else if (Reads(read, f)) {
      absent.push_back(TextOf(f).absent);
    }
  }
  std::string out = present.empty() ? "No significant past medical history."
                                    : fmt::format("Past medical history: {}.",
                                                  JoinList(present, "and"));
  if (!absent.empty()) {
    out += " Pertinent negatives: no history of ";
    for (size_t i = 0; i < absent.size(); ++i) {
      out += (i == 0 ? "" : "; no history of ") + absent[i];
    }
    out += ".";
  }
  return out;
}

// The sentences of the non-history findings the calculator reads.
std::string Findings(const Patient& p, const std::vector<Finding>& read) {
  std::string out;
  for (Finding f : read) {
    if (TextOf(f).history) continue;
    out += " ";
    out += p.Has(f) ? TextOf(f).present : TextOf(f).absent;
  }
  return out;
}

std::string MentalStatus(const Patient& p) {
  static const char* kEye[] = {
      "", "does not open the eyes even to pain", "opens the eyes only to pain",
      "opens the eyes to voice", "opens the eyes spontaneously"};
  static const char* kVerbal[] = {"",
                                  "makes no verbal response",
                                  "makes only incomprehensible sounds",
                                  "says only inappropriate words",
                                  "talks but is confused and disoriented",
                                  "is fully oriented in conversation"};
  static const char* kMotor[] = {
      "",
      "has no motor response",
      "extends the limbs to pain (decerebrate posturing)",
      "flexes the limbs abnormally to pain (decorticate posturing)",
      "withdraws from pain",
      "localizes a painful stimulus",
      "obeys commands"};
  std::string out =
      fmt::format(" On examination the patient {}, {} and {}.", kEye[p.gcs_eye],
                  kVerbal[p.gcs_verbal], kMotor[p.gcs_motor]);
  if (p.Confused()) {
    out +=
        " This altered mental status is new, a change from the patient's "
        "baseline.";
  }
  return out;
}

std::string Measurements(const Patient& p) {
  return fmt::format(
      " Vital signs: temperature {:.1f} °C, heart rate {} beats/min, blood "
      "pressure {}/{} mmHg, respiratory rate {} breaths/min. Weight {:.1f} "
      "kg, height {} cm. The ECG shows a QT interval of {} msec at a heart "
      "rate of {} beats/min.",
      p.temperature_c, p.heart_rate, p.systolic, p.diastolic, p.resp_rate,
      p.weight_kg, p.height_cm, p.qt_ms, p.heart_rate);
}

std::string Labs(const Patient& p) {
  return fmt::format(
      " Laboratory results: sodium {} mEq/L, potassium {:.1f} mEq/L, "
      "chloride {} mEq/L, bicarbonate {} mEq/L, BUN {} mg/dL, creatinine "
      "{:.2f} mg/dL, glucose {} mg/dL, albumin {:.1f} g/dL, calcium {:.1f} "
      "mg/dL, hemoglobin {:.1f} g/dL, total bilirubin {:.1f} mg/dL, INR "
      "{:.1f}.",
      p.sodium, p.potassium, p.chloride, p.bicarbonate, p.bun, p.creatinine,
      p.glucose, p.albumin, p.calcium, p.hemoglobin, p.bilirubin, p.inr);
}

}  // namespace

std::string WriteNote(const Patient& p, Calculator c) {
  const std::vector<Finding> read = FindingsReadBy(c);
  return fmt::format("{} {}-year-old {} presents {}. ", Article(p.age), p.age,
                     p.female ? "woman" : "man", Complaint(c)) +
         History(p, read) + Findings(p, read) + MentalStatus(p) +
         Measurements(p) + Labs(p);
}

}  // namespace clinrl::envs::med_calc
