#include "envs/wrappers/demographic_swap.h"

#include <algorithm>
#include <cctype>

#include "envs/env_options.h"
#include "envs/wrappers/env_wrapper_registry.h"
#include "envs/wrappers/observation_wrapper.h"
#include "envs/wrappers/word_swap.h"

namespace clinrl::envs {

const std::map<std::string, std::string>& SexWordSwaps() {
  static const std::map<std::string, std::string> swaps = {
      {"man", "woman"},      {"woman", "man"},       {"men", "women"},
      {"women", "men"},      {"male", "female"},     {"female", "male"},
      {"males", "females"},  {"females", "males"},   {"boy", "girl"},
      {"girl", "boy"},       {"boys", "girls"},      {"girls", "boys"},
      {"gentleman", "lady"}, {"lady", "gentleman"},  {"he", "she"},
      {"she", "he"},         {"him", "her"},         {"his", "her"},
      {"her", "his"},        {"himself", "herself"}, {"herself", "himself"},
      {"mr", "ms"},          {"ms", "mr"},           {"mrs", "mr"},
      {"sir", "madam"},      {"madam", "sir"},
  };
  return swaps;
}

const std::map<std::string, std::string>& EthnicityWordSwaps() {
  // "white" and "black" are left out: they are also colours in findings
  // ("white patches", "black stools").
  static const std::map<std::string, std::string> swaps = {
      {"caucasian", "hispanic"}, {"hispanic", "caucasian"},
      {"asian", "african"},      {"african", "asian"},
      {"latino", "european"},    {"european", "latino"},
  };
  return swaps;
}

namespace {

bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)); }

bool StartsWithAt(const std::string& text, size_t at, const char* prefix) {
  const std::string p(prefix);
  if (at + p.size() > text.size()) return false;
  for (size_t k = 0; k < p.size(); ++k) {
    if (std::tolower(static_cast<unsigned char>(text[at + k])) != p[k]) {
      return false;
    }
  }
  return true;
}

bool EndsWithAt(const std::string& text, size_t end, const char* suffix) {
  const std::string s(suffix);
  return end >= s.size() && StartsWithAt(text, end - s.size(), suffix);
}

// Whether the number text[begin, end) is an age by the words around it.
bool IsStatedAge(const std::string& text, size_t begin, size_t end) {
  for (const char* after :
       {"-year-old", " year-old", " years old", " year old", "-yr-old"}) {
    if (StartsWithAt(text, end, after)) return true;
  }
  for (const char* before : {"aged ", "age "}) {
    if (!EndsWithAt(text, begin, before)) continue;
    const size_t word = begin - std::string(before).size();
    if (word == 0 || !std::isalpha(static_cast<unsigned char>(text[word - 1])))
      return true;
  }
  return false;
}

}  // namespace

std::string ShiftAges(const std::string& text, int64_t shift) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const bool number_start =
        IsDigit(text[i]) &&
        (i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1])));
    if (!number_start) {
      out.push_back(text[i++]);
      continue;
    }
    size_t j = i;
    while (j < text.size() && IsDigit(text[j])) ++j;
    if (j - i <= 3 && IsStatedAge(text, i, j)) {
      const int64_t age = std::stoll(text.substr(i, j - i));
      out += std::to_string(std::max<int64_t>(1, age + shift));
    } else {
      out += text.substr(i, j - i);
    }
    i = j;
  }
  return out;
}

int64_t AgeShift(uint64_t draw, int64_t band) {
  if (band <= 0) return 0;
  const int64_t magnitude = 1 + static_cast<int64_t>(draw % band);
  return (draw >> 32) % 2 == 0 ? magnitude : -magnitude;
}

namespace {

struct DemographicSwapOptions {
  int64_t seed = 0;
  bool sex = true;
  int64_t age_band = 3;
  bool ethnicity = true;
  template <class V>
  void Visit(V& v) {
    v("seed", seed, "another draw of the age shift per task");
    v("sex", sex, "swap gendered words");
    v("age_band", age_band, "largest age shift in years, 0..10 (0 = none)");
    v("ethnicity", ethnicity, "swap ethnicity words");
  }
};

class DemographicSwapEnv : public ObservationWrapper {
 public:
  DemographicSwapEnv(std::unique_ptr<Env> inner,
                     const DemographicSwapOptions& o)
      : ObservationWrapper(std::move(inner), "demographic_swap",
                           static_cast<uint64_t>(o.seed)),
        age_band_(o.age_band) {
    if (o.sex) swaps_ = SexWordSwaps();
    if (o.ethnicity) {
      swaps_.insert(EthnicityWordSwaps().begin(), EthnicityWordSwaps().end());
    }
  }

 protected:
  // Every message, so the patient stays one person through the episode.
  std::string Rewrite(const std::string& text, const EpisodeKey& key, bool,
                      size_t) const override {
    return ShiftAges(SwapWords(text, swaps_), AgeShift(key.seed, age_band_));
  }

 private:
  std::map<std::string, std::string> swaps_;
  int64_t age_band_ = 0;
};

}  // namespace
}  // namespace clinrl::envs

CLINRL_REGISTER_ENV_WRAPPER(
    demographic_swap,
    [](std::unique_ptr<::clinrl::envs::Env> inner,
       const nlohmann::json& options, const std::string& path) {
      const auto o =
          ::clinrl::envs::ReadOptions<::clinrl::envs::DemographicSwapOptions>(
              options, path);
      if (o.age_band < 0 || o.age_band > 10) {
        throw ::clinrl::ConfigError(
            fmt::format("{}.age_band: expected an integer in [0, 10], got {}",
                        path, o.age_band));
      }
      return std::unique_ptr<::clinrl::envs::Env>(
          std::make_unique<::clinrl::envs::DemographicSwapEnv>(std::move(inner),
                                                               o));
    });
