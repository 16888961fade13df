#include "envs/dx_dialogue/patient.h"

#include "core/error.h"

namespace clinrl::envs::dx {

Persona ParsePersona(const std::string& name, const std::string& path) {
  if (name == "terse") return Persona::kTerse;
  if (name == "plain") return Persona::kPlain;
  if (name == "talkative") return Persona::kTalkative;
  if (name == "anxious") return Persona::kAnxious;
  throw ConfigError(fmt::format(
      "{}: expected one of terse, plain, talkative, anxious, got \"{}\"", path,
      name));
}

const char* PersonaName(Persona p) {
  switch (p) {
    case Persona::kTerse:
      return "terse";
    case Persona::kPlain:
      return "plain";
    case Persona::kTalkative:
      return "talkative";
    case Persona::kAnxious:
      return "anxious";
  }
  return "?";
}

const std::vector<std::string>& IrrelevantRemarks() {
  static const std::vector<std::string> remarks = {
      "My neighbour's dog barks all night.", "I missed my bus this morning.",
      "My reading glasses need replacing.",  "I have an ingrown toenail too.",
      "The waiting room was very crowded.",  "My car is due for a service.",
  };
  return remarks;
}

namespace {

std::string Capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z')
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

// Deterministic per (case, finding, purpose): asking twice gives the same
// answer, and the noise of one finding does not depend on question order.
double CaseUniform(uint64_t case_seed, uint64_t a, uint64_t b) {
  return UnitInterval(MixSeed(MixSeed(case_seed ^ (a * 0x9e37ULL)) + b));
}

}  // namespace

RulePatient::RulePatient(std::shared_ptr<const KnowledgeBase> kb,
                         const ClinicalCase& c, PatientOptions options)
    : kb_(std::move(kb)), case_(c), options_(options) {
  if (options_.noise.deny_one) {
    std::vector<int> candidates;
    for (int f : kb_->AskableFindings()) {
      if (case_.Has(f) && f != case_.chief_complaint) candidates.push_back(f);
    }
    if (!candidates.empty()) {
      const double u = CaseUniform(case_.seed, 0xde11, 1);
      denied_ = candidates[static_cast<size_t>(
          u * static_cast<double>(candidates.size()))];
    }
  }
}

std::string RulePatient::Term(int finding) const {
  const Finding& f = kb_->findings[finding];
  return options_.noise.lay_terms ? f.lay : f.name;
}

std::string RulePatient::AnswerFor(int finding) const {
  if (!kb_->findings[finding].askable()) return "unsure";
  switch (case_.findings[finding]) {
    case FindingState::kPresent:
      if (finding == denied_) return "no";
      if (options_.noise.vague > 0 &&
          CaseUniform(case_.seed, static_cast<uint64_t>(finding) + 1, 2) <
              options_.noise.vague) {
        return "vague";
      }
      return "yes";
    case FindingState::kAbsent:
      return "no";
    case FindingState::kUnknown:
      return "unsure";
  }
  return "unsure";
}

std::string RulePatient::Presentation() const {
  return fmt::format("{}. Chief complaint: {}.",
                     Capitalized(Demographics(case_)),
                     Term(case_.chief_complaint));
}

PatientReply RulePatient::Answer(const std::string& question) {
  PatientReply reply;
  std::vector<int> asked = kb_->finding_matcher.Match(question);
  if (asked.size() > 3) asked.resize(3);  // one short answer per turn
  const Persona persona = options_.persona;
  if (asked.empty()) {
    if (!kb_->condition_matcher.Match(question).empty()) {
      reply.text = "I don't know, you're the doctor.";
    } else if (!kb_->test_matcher.Match(question).empty()) {
      reply.text = "I'm not sure.";
    } else {
      reply.text = "Sorry, I don't understand.";
    }
  } else if (asked.size() == 1) {
    const int f = asked[0];
    const std::string answer = AnswerFor(f);
    reply.revealed.push_back(
        {{"finding", kb_->findings[f].name}, {"answer", answer}});
    const std::string term = Term(f);
    if (answer == "yes") {
      switch (persona) {
        case Persona::kTerse:
          reply.text = "Yes.";
          break;
        case Persona::kPlain:
          reply.text = fmt::format("Yes, {}.", term);
          break;
        case Persona::kTalkative:
          reply.text = fmt::format(
              "Yes, {}. It has been bothering me for a few days.", term);
          break;
        case Persona::kAnxious:
          reply.text = fmt::format("Yes, {}... is that serious?", term);
          break;
      }
    } else if (answer == "no") {
      switch (persona) {
        case Persona::kTerse:
        case Persona::kPlain:
          reply.text = "No.";
          break;
        case Persona::kTalkative:
          reply.text = "No, nothing like that.";
          break;
        case Persona::kAnxious:
          reply.text = "No. Should I be worried?";
          break;
      }
    } else if (answer == "vague") {
      switch (persona) {
        case Persona::kTerse:
          reply.text = "Maybe.";
          break;
        case Persona::kPlain:
          reply.text = "Maybe, a little.";
          break;
        case Persona::kTalkative:
          reply.text = "Maybe a little, it's hard to say.";
          break;
        case Persona::kAnxious:
          reply.text = "Maybe? I don't know, I'm worried.";
          break;
      }
    } else {
      switch (persona) {
        case Persona::kTerse:
          reply.text = "Not sure.";
          break;
        case Persona::kPlain:
          reply.text = "I'm not sure.";
          break;
        case Persona::kTalkative:
          reply.text = "Hmm, I'm not sure about that.";
          break;
        case Persona::kAnxious:
          reply.text = "I'm not sure. Is that bad?";
          break;
      }
    }
  } else {
    // Several findings in one question: name each, so the answers cannot be
    // confused.
    for (int f : asked) {
      const std::string answer = AnswerFor(f);
      reply.revealed.push_back(
          {{"finding", kb_->findings[f].name}, {"answer", answer}});
      const char* word = answer == "yes"     ? "yes"
                         : answer == "no"    ? "no"
                         : answer == "vague" ? "maybe"
                                             : "not sure";
      if (!reply.text.empty()) reply.text += " ";
      reply.text += fmt::format("{}: {}.", Capitalized(Term(f)), word);
    }
  }
  ++answers_given_;
  if (options_.noise.irrelevant > 0 &&
      CaseUniform(case_.seed, 0x1e1e, answers_given_) <
          options_.noise.irrelevant) {
    const auto& remarks = IrrelevantRemarks();
    const double u = CaseUniform(case_.seed, 0x1e1f, answers_given_);
    reply.text +=
        " " +
        remarks[static_cast<size_t>(u * static_cast<double>(remarks.size()))];
  }
  return reply;
}

}  // namespace clinrl::envs::dx
