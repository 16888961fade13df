#include "envs/ehr_fhir/synthetic_record.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "core/error.h"
#include "envs/ehr_fhir/fhir_time.h"
#include "envs/ehr_fhir/splitmix.h"

namespace clinrl::envs::ehr {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kYear = 365 * kDay;

// The record's stream: identical everywhere (envs/ehr_fhir/splitmix.h).
class Rng : public SplitMix64 {
 public:
  explicit Rng(uint64_t seed) : SplitMix64(seed, 1) {}
};

double Round(double v, int decimals) {
  const double scale = decimals == 0 ? 1 : decimals == 1 ? 10 : 100;
  return std::round(v * scale) / scale;
}

json Coding(const std::string& system, const std::string& code,
            const std::string& display) {
  return {{"system", system}, {"code", code}, {"display", display}};
}

json Concept(const std::string& system, const std::string& code,
             const std::string& display) {
  return {{"coding", json::array({Coding(system, code, display)})},
          {"text", display}};
}

const char* kLoinc = "http://loinc.org";
const char* kSnomed = "http://snomed.info/sct";
const char* kUcum = "http://unitsofmeasure.org";
const char* kObsCategory =
    "http://terminology.hl7.org/CodeSystem/observation-category";

struct LabDef {
  const char* loinc;
  const char* display;
  const char* unit;
  double mean, sd, low, high;
  int decimals;
  double floor, ceiling;  // physiologically possible values
};

const LabDef kMg{loinc::kMagnesium,
                 "Magnesium [Mass/volume] in Serum or Plasma",
                 "mg/dL",
                 2.0,
                 0.15,
                 1.7,
                 2.2,
                 1,
                 0.6,
                 3.5};
const LabDef kK{loinc::kPotassium,
                "Potassium [Moles/volume] in Serum or Plasma",
                "mmol/L",
                4.2,
                0.3,
                3.5,
                5.1,
                1,
                2.2,
                6.5};
const LabDef kNa{loinc::kSodium,
                 "Sodium [Moles/volume] in Serum or Plasma",
                 "mmol/L",
                 139,
                 2.5,
                 135,
                 145,
                 0,
                 120,
                 160};
const LabDef kGlu{loinc::kGlucose,
                  "Glucose [Mass/volume] in Serum or Plasma",
                  "mg/dL",
                  98,
                  12,
                  70,
                  140,
                  0,
                  40,
                  450};
const LabDef kCbg{loinc::kCapillaryGlucose,
                  "Glucose [Mass/volume] in Blood",
                  "mg/dL",
                  120,
                  25,
                  70,
                  180,
                  0,
                  40,
                  450};
const LabDef kCr{loinc::kCreatinine,
                 "Creatinine [Mass/volume] in Serum or Plasma",
                 "mg/dL",
                 0.9,
                 0.12,
                 0.6,
                 1.3,
                 2,
                 0.3,
                 6};
const LabDef kA1c{loinc::kHbA1c, "Hemoglobin A1c/Hemoglobin.total in Blood",
                  "%",           5.4,
                  0.3,           4.0,
                  5.6,           1,
                  4.0,           13};

struct ConditionDef {
  const char* snomed;
  const char* display;
  double prevalence;
  const char* rxnorm;  // "" = no standing medication
  const char* ndc;
  const char* drug;
};

const std::vector<ConditionDef> kConditions = {
    {"38341003", "Hypertensive disorder", 0.35, "314076", "68180-0513-01",
     "lisinopril 10 MG Oral Tablet"},
    {"44054006", "Diabetes mellitus type 2", 0.22, "860975", "65862-0008-01",
     "metformin hydrochloride 500 MG Oral Tablet"},
    {"55822004", "Hyperlipidemia", 0.3, "617312", "0071-0155-23",
     "atorvastatin 20 MG Oral Tablet"},
    {"709044004", "Chronic kidney disease", 0.1, "", "", ""},
    {"195967001", "Asthma", 0.08, "745679", "0173-0682-20",
     "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"},
    {"40930008", "Hypothyroidism", 0.07, "966221", "0378-1805-01",
     "levothyroxine sodium 0.05 MG Oral Tablet"},
    {"49436004", "Atrial fibrillation", 0.05, "1364445", "0003-0894-21",
     "apixaban 5 MG Oral Tablet"}};

const std::vector<std::string> kGivenFemale = {
    "Mary",     "Patricia", "Jennifer", "Linda",   "Elizabeth", "Barbara",
    "Susan",    "Jessica",  "Sarah",    "Karen",   "Nancy",     "Lisa",
    "Betty",    "Margaret", "Sandra",   "Ashley",  "Emily",     "Donna",
    "Michelle", "Carol",    "Amanda",   "Melissa", "Deborah",   "Stephanie",
    "Rebecca",  "Laura",    "Helen",    "Maria",   "Anna",      "Grace"};
const std::vector<std::string> kGivenMale = {
    "James",   "Robert",  "John",    "Michael", "David",       "William",
    "Richard", "Joseph",  "Thomas",  "Charles", "Christopher", "Daniel",
    "Matthew", "Anthony", "Mark",    "Donald",  "Steven",      "Paul",
    "Andrew",  "Joshua",  "Kenneth", "Kevin",   "Brian",       "George",
    "Timothy", "Ronald",  "Edward",  "Jason",   "Jeffrey",     "Ryan"};
const std::vector<std::string> kFamily = {
    "Smith",    "Johnson", "Williams",  "Brown",    "Jones",     "Garcia",
    "Miller",   "Davis",   "Rodriguez", "Martinez", "Hernandez", "Lopez",
    "Gonzalez", "Wilson",  "Anderson",  "Thomas",   "Taylor",    "Moore",
    "Jackson",  "Martin",  "Lee",       "Perez",    "Thompson",  "White",
    "Harris",   "Sanchez", "Clark",     "Ramirez",  "Lewis",     "Robinson",
    "Walker",   "Young",   "Allen",     "King",     "Wright",    "Scott",
    "Torres",   "Nguyen",  "Hill",      "Flores",   "Green",     "Adams",
    "Nelson",   "Baker",   "Hall",      "Rivera",   "Campbell",  "Mitchell",
    "Carter",   "Roberts", "Okafor",    "Patel",    "Kim",       "Chen",
    "Novak",    "Larsen"};

class PatientBuilder {
 public:
  PatientBuilder(Rng* rng, std::string id, int64_t now, std::vector<json>* out)
      : rng_(*rng), id_(std::move(id)), now_(now), out_(*out) {}

  void Build() {
    const bool female = rng_.Chance(0.5);
    const int64_t age_days = rng_.Int(18 * 365, 95 * 365);
    const std::string birth = FormatDate(now_ - age_days * kDay);
    out_.push_back(
        {{"resourceType", "Patient"},
         {"id", id_},
         {"identifier",
          json::array(
              {{{"use", "usual"},
                {"type",
                 {{"coding",
                   json::array(
                       {Coding("http://terminology.hl7.org/CodeSystem/v2-0203",
                               "MR", "Medical record number")})}}},
                {"system", "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.0"},
                {"value", id_}}})},
         {"active", true},
         {"name", json::array({{{"use", "official"},
                                {"family", rng_.Pick(kFamily)},
                                {"given",
                                 json::array({rng_.Pick(
                                     female ? kGivenFemale : kGivenMale)})}}})},
         {"gender", female ? "female" : "male"},
         {"birthDate", birth}});

    for (const auto& c : kConditions) {
      if (!rng_.Chance(c.prevalence)) continue;
      conditions_.insert(c.snomed);
      const int64_t onset = now_ - rng_.Int(200, 3000) * kDay;
      out_.push_back(
          {{"resourceType", "Condition"},
           {"id", NextId("cond")},
           {"clinicalStatus",
            Concept("http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "active", "Active")},
           {"verificationStatus",
            Concept("http://terminology.hl7.org/CodeSystem/"
                    "condition-ver-status",
                    "confirmed", "Confirmed")},
           {"category",
            json::array({Concept(
                "http://terminology.hl7.org/CodeSystem/condition-category",
                "problem-list-item", "Problem List Item")})},
           {"code", Concept(kSnomed, c.snomed, c.display)},
           {"subject", Subject()},
           {"onsetDateTime", FormatInstant(onset)}});
      if (*c.rxnorm) {
        json med = Concept("http://www.nlm.nih.gov/research/umls/rxnorm",
                           c.rxnorm, c.drug);
        med["coding"].push_back(
            Coding("http://hl7.org/fhir/sid/ndc", c.ndc, c.drug));
        out_.push_back(
            {{"resourceType", "MedicationRequest"},
             {"id", NextId("med")},
             {"status", "active"},
             {"intent", "order"},
             {"medicationCodeableConcept", med},
             {"subject", Subject()},
             {"authoredOn", FormatInstant(onset + rng_.Int(0, 30) * kDay)},
             {"dosageInstruction",
              json::array(
                  {{{"text", "1 dose by mouth daily"},
                    {"route", Concept(kSnomed, "26643006", "Oral route")}}})}});
      }
    }
    if (rng_.Chance(0.1)) {
      Allergy("http://www.nlm.nih.gov/research/umls/rxnorm", "7980",
              "Penicillin G");
    }
    if (rng_.Chance(0.05)) Allergy(kSnomed, "256349002", "Peanut");

    Outpatient();
    Inpatient();
    static const std::vector<std::pair<const char*, const char*>> kProcedures =
        {{"73761001", "Colonoscopy"},
         {"268400002", "12 lead electrocardiogram"},
         {"399208008", "Plain chest X-ray"},
         {"40701008", "Echocardiography"}};
    for (const auto& [code, display] : kProcedures) {
      if (!rng_.Chance(0.25)) continue;
      out_.push_back({{"resourceType", "Procedure"},
                      {"id", NextId("proc")},
                      {"status", "completed"},
                      {"code", Concept(kSnomed, code, display)},
                      {"subject", Subject()},
                      {"performedDateTime",
                       FormatInstant(now_ - rng_.Int(30, 2500) * kDay)}});
    }
  }

 private:
  json Subject() const { return {{"reference", "Patient/" + id_}}; }
  std::string NextId(const char* kind) {
    return fmt::format("{}-{}-{}", id_, kind, ++counter_);
  }
  bool Has(const char* snomed) const { return conditions_.count(snomed) > 0; }

  void Allergy(const std::string& system, const std::string& code,
               const std::string& display) {
    out_.push_back(
        {{"resourceType", "AllergyIntolerance"},
         {"id", NextId("alg")},
         {"clinicalStatus", Concept("http://terminology.hl7.org/CodeSystem/"
                                    "allergyintolerance-clinical",
                                    "active", "Active")},
         {"code", Concept(system, code, display)},
         {"patient", Subject()}});
  }

  void Encounter(const char* cls, const char* display, int64_t start,
                 int64_t end, bool ongoing) {
    json period = {{"start", FormatInstant(start)}};
    if (!ongoing) period["end"] = FormatInstant(end);
    out_.push_back(
        {{"resourceType", "Encounter"},
         {"id", NextId("enc")},
         {"status", ongoing ? "in-progress" : "finished"},
         {"class", Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode",
                          cls, display)},
         {"subject", Subject()},
         {"period", period}});
  }

  void Lab(const LabDef& d, double value, int64_t t) {
    value = Round(std::min(std::max(value, d.floor), d.ceiling), d.decimals);
    json obs = {
        {"resourceType", "Observation"},
        {"id", NextId("lab")},
        {"status", "final"},
        {"category",
         json::array({Concept(kObsCategory, "laboratory", "Laboratory")})},
        {"code", Concept(kLoinc, d.loinc, d.display)},
        {"subject", Subject()},
        {"effectiveDateTime", FormatInstant(t)},
        {"issued", FormatInstant(t + 3600)},
        {"valueQuantity",
         {{"value", value},
          {"unit", d.unit},
          {"system", kUcum},
          {"code", d.unit}}},
        {"referenceRange",
         json::array({{{"low", {{"value", d.low}, {"unit", d.unit}}},
                       {"high", {{"value", d.high}, {"unit", d.unit}}}}})}};
    if (value < d.low || value > d.high) {
      const bool low = value < d.low;
      obs["interpretation"] = json::array({Concept(
          "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
          low ? "L" : "H", low ? "Low" : "High")});
    }
    out_.push_back(std::move(obs));
  }

  void Vitals(int64_t t) {
    const int sys =
        static_cast<int>(rng_.Int(105, 150) + (Has("38341003") ? 12 : 0));
    const int dia = static_cast<int>(rng_.Int(62, 92));
    auto vital = [&](const char* code, const char* display) {
      return json{
          {"resourceType", "Observation"},
          {"id", NextId("vs")},
          {"status", "final"},
          {"category",
           json::array({Concept(kObsCategory, "vital-signs", "Vital Signs")})},
          {"code", Concept(kLoinc, code, display)},
          {"subject", Subject()},
          {"effectiveDateTime", FormatInstant(t)}};
    };
    auto quantity = [](double v, const char* unit) {
      return json{
          {"value", v}, {"unit", unit}, {"system", kUcum}, {"code", unit}};
    };
    json bp = vital(loinc::kBloodPressurePanel,
                    "Blood pressure panel with all children optional");
    bp["component"] = json::array(
        {{{"code",
           Concept(kLoinc, loinc::kSystolic, "Systolic blood pressure")},
          {"valueQuantity", quantity(sys, "mm[Hg]")}},
         {{"code",
           Concept(kLoinc, loinc::kDiastolic, "Diastolic blood pressure")},
          {"valueQuantity", quantity(dia, "mm[Hg]")}}});
    out_.push_back(bp);
    json hr = vital("8867-4", "Heart rate");
    hr["valueQuantity"] =
        quantity(static_cast<double>(rng_.Int(56, 104)), "/min");
    out_.push_back(hr);
    json wt = vital("29463-7", "Body weight");
    wt["valueQuantity"] =
        quantity(Round(weight_ + rng_.Normal() * 1.2, 1), "kg");
    out_.push_back(wt);
  }

  // Outpatient visits over years: a personal baseline, a slow trend and the
  // occasional abnormal episode per analyte.
  void Outpatient() {
    weight_ = rng_.Uniform(52, 110);
    const bool diabetic = Has("44054006");
    const bool ckd = Has("709044004");
    const double k_base = kK.mean + rng_.Normal() * 0.15 + (ckd ? 0.3 : 0);
    const double mg_base = kMg.mean + rng_.Normal() * 0.08;
    const double na_base = kNa.mean + rng_.Normal() * 1.5;
    const double glu_base =
        diabetic ? 150 + rng_.Normal() * 20 : kGlu.mean + rng_.Normal() * 6;
    const double cr_base =
        ckd ? 1.8 + rng_.Uniform(0, 0.8) : kCr.mean + rng_.Normal() * 0.1;
    const double cr_trend = ckd ? rng_.Uniform(0.05, 0.25) : 0.0;  // per year
    const double a1c_base =
        diabetic ? 7.2 + rng_.Normal() * 0.6 : kA1c.mean + rng_.Normal() * 0.2;
    const double a1c_trend = diabetic ? rng_.Uniform(-0.4, 0.3) : 0.0;
    const int64_t history = rng_.Int(1, 7) * kYear + rng_.Int(0, 300) * kDay;
    // The last visit may be months ago or years ago (stale HbA1c values).
    int64_t t = now_ - history;
    const int64_t last = now_ - rng_.Int(3, 500) * kDay;
    while (t < last) {
      const int64_t visit = t - t % kDay + rng_.Int(8 * 60, 16 * 60) * 60;
      const double years_ago = static_cast<double>(now_ - visit) / kYear;
      Encounter("AMB", "ambulatory", visit, visit + 1800, false);
      Vitals(visit);
      auto episode = [&](double sd) {
        return rng_.Chance(0.08) ? (rng_.Chance(0.5) ? -3.0 : 3.0) * sd : 0.0;
      };
      if (rng_.Chance(0.8)) {
        Lab(kNa, na_base + rng_.Normal() * 1.5 + episode(kNa.sd), visit);
        Lab(kK, k_base + rng_.Normal() * 0.2 + episode(kK.sd), visit);
        Lab(kGlu, glu_base + rng_.Normal() * (diabetic ? 30 : 10), visit);
        Lab(kCr, cr_base - cr_trend * years_ago + rng_.Normal() * 0.06, visit);
      }
      if (rng_.Chance(0.35))
        Lab(kMg, mg_base + rng_.Normal() * 0.1 + episode(kMg.sd), visit);
      if (rng_.Chance(diabetic ? 0.6 : 0.12)) {
        Lab(kA1c, a1c_base - a1c_trend * years_ago + rng_.Normal() * 0.25,
            visit);
      }
      t += rng_.Int(90, 260) * kDay;
    }
  }

  // An admission: daily morning labs and capillary glucose every 6 hours.
  // About half are still in progress at the task clock, so "within the last
  // 24 hours" has an answer for some patients and not for others.
  void Inpatient() {
    if (!rng_.Chance(0.55)) return;
    const bool ongoing = rng_.Chance(0.7);
    const int64_t days = rng_.Int(2, 6);
    const int64_t end = ongoing ? now_ : now_ - rng_.Int(2, 400) * kDay;
    const int64_t start = end - days * kDay - rng_.Int(1, 12) * 3600;
    Encounter("IMP", "inpatient encounter", start, end, ongoing);
    const bool low_mg = rng_.Chance(0.45);
    const bool low_k = rng_.Chance(0.45);
    const bool diabetic = Has("44054006");
    double mg = low_mg ? rng_.Uniform(1.3, 1.9) : rng_.Uniform(1.8, 2.3);
    double k = low_k ? rng_.Uniform(3.0, 3.5) : rng_.Uniform(3.6, 4.8);
    const double mg_drop = low_mg && rng_.Chance(0.3) ? 0.4 : 0.0;
    for (int64_t day = start - start % kDay + kDay; day < end; day += kDay) {
      const int64_t draw = day + 5 * 3600 + rng_.Int(0, 60) * 60;
      if (draw >= end) break;
      const bool last_day = draw + kDay >= end;
      Lab(kMg, mg - (last_day ? mg_drop : 0.0), draw);
      Lab(kK, k, draw);
      Lab(kNa, kNa.mean + rng_.Normal() * 2.5, draw);
      Lab(kCr, kCr.mean + rng_.Normal() * 0.15, draw);
      mg += rng_.Normal() * 0.1;
      k += rng_.Normal() * 0.15;
    }
    for (int64_t t = start + 3600; t < end; t += 6 * 3600) {
      const int64_t when = t + rng_.Int(-40, 40) * 60;
      if (when >= end || !rng_.Chance(0.85)) continue;
      Lab(kCbg,
          (diabetic ? 175.0 : 118.0) + rng_.Normal() * (diabetic ? 45 : 18),
          when);
    }
  }

  Rng& rng_;
  std::string id_;
  int64_t now_;
  std::vector<json>& out_;
  std::set<std::string> conditions_;
  int counter_ = 0;
  double weight_ = 70;
};

}  // namespace

std::vector<json> GenerateSyntheticRecord(const SynthOptions& options) {
  if (options.patients < 1) {
    throw BadRequest(
        fmt::format("patients: expected at least 1, got {}", options.patients));
  }
  Rng rng(options.seed);
  const int64_t now = ParseFhirTime(kTaskClock)->lo;
  std::set<std::string> ids;
  std::vector<json> patients, rest;
  for (int64_t i = 0; i < options.patients; ++i) {
    std::string id;
    do {
      id = fmt::format("S{:07d}", rng.Int(1000000, 9999999));
    } while (!ids.insert(id).second);
    // Each patient draws from its own stream so a patient's record does not
    // change when another patient's generation changes.
    Rng patient_rng(rng.Next());
    std::vector<json> resources;
    PatientBuilder(&patient_rng, id, now, &resources).Build();
    patients.push_back(std::move(resources.front()));
    for (size_t j = 1; j < resources.size(); ++j)
      rest.push_back(std::move(resources[j]));
  }
  patients.insert(patients.end(), std::make_move_iterator(rest.begin()),
                  std::make_move_iterator(rest.end()));
  return patients;
}

void WriteNdjsonDir(const std::vector<json>& resources, const std::string& dir,
                    const SynthOptions& options) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    CLINRL_CHECK_ERRNO(false, "mkdir", "creating the output directory '{}'",
                       dir);
  }
  std::map<std::string, std::ofstream> files;
  std::map<std::string, int64_t> counts;
  for (const auto& r : resources) {
    const std::string type = r.at("resourceType").get<std::string>();
    auto it = files.find(type);
    if (it == files.end()) {
      const std::string path = dir + "/" + type + ".ndjson";
      it = files.emplace(type, std::ofstream(path, std::ios::trunc)).first;
      if (!it->second) throw IoError(fmt::format("cannot write '{}'", path));
    }
    it->second << r.dump() << '\n';
    ++counts[type];
  }
  for (auto& [type, f] : files) {
    f.close();
    if (!f)
      throw IoError(fmt::format("writing {}/{}.ndjson failed", dir, type));
  }
  std::ofstream manifest(dir + "/manifest.json", std::ios::trunc);
  manifest << json{{"generator", "clinrl ehr synth"},
                   {"patients", options.patients},
                   {"seed", options.seed},
                   {"task_clock", kTaskClock},
                   {"counts", counts}}
                  .dump(2)
           << '\n';
  if (!manifest)
    throw IoError(fmt::format("writing {}/manifest.json failed", dir));
}

std::vector<json> ReadNdjsonDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  CLINRL_CHECK_ERRNO(d != nullptr, "opendir", "reading the data directory '{}'",
                     dir);
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > 7 && name.substr(name.size() - 7) == ".ndjson") {
      names.push_back(name);
    }
  }
  closedir(d);
  if (names.empty()) {
    throw BadRequest(fmt::format(
        "--data '{}': no *.ndjson files (write some with `clinrl ehr synth`)",
        dir));
  }
  // Patients first, so references resolve in load order; then by name.
  std::sort(names.begin(), names.end(), [](const auto& a, const auto& b) {
    const bool pa = a == "Patient.ndjson", pb = b == "Patient.ndjson";
    return pa != pb ? pa : a < b;
  });
  std::vector<json> out;
  for (const auto& name : names) {
    std::ifstream in(dir + "/" + name);
    if (!in) throw IoError(fmt::format("cannot open '{}/{}'", dir, name));
    std::string line;
    int64_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      try {
        out.push_back(json::parse(line));
      } catch (const json::parse_error& e) {
        throw BadRequest(fmt::format("{}/{}:{}: not a JSON resource: {}", dir,
                                     name, lineno, e.what()));
      }
    }
  }
  return out;
}

}  // namespace clinrl::envs::ehr
