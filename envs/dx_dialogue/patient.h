// The simulated patient: answers one question at a time about the case's
// findings and reveals nothing it was not asked. The rule patient is the
// default; the LLM patient (llm_patient.h) phrases the same facts through a
// chat-completions endpoint.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "envs/dx_dialogue/clinical_case.h"
#include "envs/dx_dialogue/knowledge_base.h"

namespace clinrl::envs::dx {

// How the patient talks (docs/envs/dx_dialogue.md lists each wording).
enum class Persona { kTerse, kPlain, kTalkative, kAnxious };
Persona ParsePersona(const std::string& name, const std::string& path);
const char* PersonaName(Persona p);

struct PatientNoise {
  double vague = 0.0;       // P(a present finding is answered "maybe")
  bool deny_one = false;    // one present finding (not the complaint) denied
  bool lay_terms = false;   // the patient names findings in lay words
  double irrelevant = 0.0;  // P(an answer carries an unrelated remark)

  // The dx_dialogue option `noise`, for the config schema
  // (envs/env_options.h); DxEpisodeOptions::Check bounds the probabilities.
  template <class V>
  void Visit(V& v) {
    v("vague", vague, "P(a present finding is answered maybe)");
    v("deny_one", deny_one, "one present finding is denied");
    v("lay_terms", lay_terms, "findings named in lay words");
    v("irrelevant", irrelevant, "P(an answer carries an unrelated remark)");
  }
};

struct PatientOptions {
  Persona persona = Persona::kPlain;
  PatientNoise noise;
};

// What one question revealed: {"finding", "answer": yes|no|unsure|vague}.
struct PatientReply {
  std::string text;
  nlohmann::json revealed = nlohmann::json::array();
};

class Patient {
 public:
  virtual ~Patient() = default;
  virtual PatientReply Answer(const std::string& question) = 0;
};

// Remarks the irrelevant-complaint noise adds; none names a finding.
const std::vector<std::string>& IrrelevantRemarks();

class RulePatient : public Patient {
 public:
  RulePatient(std::shared_ptr<const KnowledgeBase> kb, const ClinicalCase& c,
              PatientOptions options);
  PatientReply Answer(const std::string& question) override;

  // The finding the deny_one noise denies, or -1.
  int denied_finding() const { return denied_; }
  // The answer category for one finding, noise included ("yes", "no",
  // "unsure", "vague").
  std::string AnswerFor(int finding) const;
  // How the patient names a finding (canonical or lay words).
  std::string Term(int finding) const;
  // The opening line: "54-year-old man. Chief complaint: chest pain."
  std::string Presentation() const;

 private:
  std::shared_ptr<const KnowledgeBase> kb_;
  ClinicalCase case_;
  PatientOptions options_;
  int denied_ = -1;
  uint64_t answers_given_ = 0;
};

}  // namespace clinrl::envs::dx
