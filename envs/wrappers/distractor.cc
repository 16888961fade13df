#include "envs/wrappers/distractor.h"

#include "envs/env_options.h"
#include "envs/wrappers/env_wrapper_registry.h"
#include "envs/wrappers/observation_wrapper.h"

namespace clinrl::envs {

const std::vector<std::string>& DistractorSentences() {
  // Small talk and setting: nothing here bears on a diagnosis, a dose or a
  // disposition, and no sentence holds a digit (a numeric answer must not
  // pick one up).
  static const std::vector<std::string> bank = {
      "The patient mentions that the parking garage was nearly full today.",
      "The patient's cousin recently started a job at a bakery.",
      "The waiting room television is showing a cooking programme.",
      "The patient would prefer an appointment in the morning next time.",
      "The patient's neighbour has been repainting their fence.",
      "The patient is wearing a sweater knitted by a friend.",
      "The patient asks whether the clinic has free wireless internet.",
      "The patient's favourite football team lost at the weekend.",
      "The patient came by bus because the car is at the garage.",
      "The patient has recently taken up watercolour painting.",
      "The patient mentions a planned visit to a museum with a niece.",
      "The patient's dog had its annual grooming appointment this week.",
      "The patient is reading a long historical novel.",
      "The patient remarks that the hallway has been freshly painted.",
      "The patient recently switched to a different mobile phone carrier.",
      "The patient's garden tomatoes are ripening slowly this year.",
      "The patient asks where the nearest post office is.",
      "The patient is learning to play the guitar from online videos.",
      "The patient's building is having its windows cleaned.",
      "The patient mentions that the local library extended its hours.",
  };
  return bank;
}

std::vector<std::string> SplitSentences(const std::string& text) {
  std::vector<std::string> sentences;
  size_t start = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    const char c = text[i];
    if ((c == '.' || c == '?' || c == '!') && text[i + 1] == ' ') {
      sentences.push_back(text.substr(start, i + 1 - start));
      start = i + 2;
    }
  }
  if (start < text.size()) sentences.push_back(text.substr(start));
  return sentences;
}

std::string InsertDistractor(const std::string& text, uint64_t draw) {
  const auto& bank = DistractorSentences();
  const std::string& remark = bank[draw % bank.size()];
  std::vector<std::string> sentences = SplitSentences(text);
  const size_t at = (draw >> 32) % (sentences.size() + 1);
  sentences.insert(sentences.begin() + static_cast<std::ptrdiff_t>(at), remark);
  std::string out;
  for (size_t i = 0; i < sentences.size(); ++i) {
    out += (i ? " " : "") + sentences[i];
  }
  return out;
}

namespace {

struct DistractorOptions {
  int64_t seed = 0;
  template <class V>
  void Visit(V& v) {
    v("seed", seed, "another draw of sentence and position per task");
  }
};

class DistractorEnv : public ObservationWrapper {
 public:
  DistractorEnv(std::unique_ptr<Env> inner, int64_t seed)
      : ObservationWrapper(std::move(inner), "distractor",
                           static_cast<uint64_t>(seed)) {}

 protected:
  // The reset's messages only: the case as first told gets the remark, the
  // answers to the agent's questions stay as they are.
  std::string Rewrite(const std::string& text, const EpisodeKey& key,
                      bool reset, size_t index) const override {
    if (!reset) return text;
    return InsertDistractor(text, key.seed + index);
  }
};

}  // namespace
}  // namespace clinrl::envs

CLINRL_REGISTER_ENV_WRAPPER(
    distractor, [](std::unique_ptr<::clinrl::envs::Env> inner,
                   const nlohmann::json& options, const std::string& path) {
      const auto o =
          ::clinrl::envs::ReadOptions<::clinrl::envs::DistractorOptions>(
              options, path);
      return std::unique_ptr<::clinrl::envs::Env>(
          std::make_unique<::clinrl::envs::DistractorEnv>(std::move(inner),
                                                          o.seed));
    });
