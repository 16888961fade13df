#include "envs/wrappers/drug_name_swap.h"

#include "envs/env_options.h"
#include "envs/wrappers/env_wrapper_registry.h"
#include "envs/wrappers/observation_wrapper.h"
#include "envs/wrappers/word_swap.h"

namespace clinrl::envs {

const std::vector<std::pair<std::string, std::string>>& DrugNamePairs() {
  static const std::vector<std::pair<std::string, std::string>> pairs = {
      {"lipitor", "atorvastatin"},
      {"zocor", "simvastatin"},
      {"crestor", "rosuvastatin"},
      {"pravachol", "pravastatin"},
      {"norvasc", "amlodipine"},
      {"zestril", "lisinopril"},
      {"vasotec", "enalapril"},
      {"cozaar", "losartan"},
      {"diovan", "valsartan"},
      {"lopressor", "metoprolol"},
      {"tenormin", "atenolol"},
      {"coreg", "carvedilol"},
      {"lasix", "furosemide"},
      {"aldactone", "spironolactone"},
      {"microzide", "hydrochlorothiazide"},
      {"coumadin", "warfarin"},
      {"eliquis", "apixaban"},
      {"xarelto", "rivaroxaban"},
      {"plavix", "clopidogrel"},
      {"lanoxin", "digoxin"},
      {"glucophage", "metformin"},
      {"amaryl", "glimepiride"},
      {"januvia", "sitagliptin"},
      {"jardiance", "empagliflozin"},
      {"synthroid", "levothyroxine"},
      {"prilosec", "omeprazole"},
      {"nexium", "esomeprazole"},
      {"protonix", "pantoprazole"},
      {"pepcid", "famotidine"},
      {"zofran", "ondansetron"},
      {"reglan", "metoclopramide"},
      {"tylenol", "acetaminophen"},
      {"advil", "ibuprofen"},
      {"aleve", "naproxen"},
      {"celebrex", "celecoxib"},
      {"ultram", "tramadol"},
      {"neurontin", "gabapentin"},
      {"lyrica", "pregabalin"},
      {"zoloft", "sertraline"},
      {"prozac", "fluoxetine"},
      {"lexapro", "escitalopram"},
      {"celexa", "citalopram"},
      {"paxil", "paroxetine"},
      {"wellbutrin", "bupropion"},
      {"effexor", "venlafaxine"},
      {"xanax", "alprazolam"},
      {"ativan", "lorazepam"},
      {"valium", "diazepam"},
      {"ambien", "zolpidem"},
      {"seroquel", "quetiapine"},
      {"risperdal", "risperidone"},
      {"zyprexa", "olanzapine"},
      {"keppra", "levetiracetam"},
      {"lamictal", "lamotrigine"},
      {"tegretol", "carbamazepine"},
      {"dilantin", "phenytoin"},
      {"imitrex", "sumatriptan"},
      {"singulair", "montelukast"},
      {"ventolin", "albuterol"},
      {"flonase", "fluticasone"},
      {"zyrtec", "cetirizine"},
      {"claritin", "loratadine"},
      {"allegra", "fexofenadine"},
      {"amoxil", "amoxicillin"},
      {"zithromax", "azithromycin"},
      {"cipro", "ciprofloxacin"},
      {"levaquin", "levofloxacin"},
      {"keflex", "cephalexin"},
      {"flagyl", "metronidazole"},
      {"valtrex", "valacyclovir"},
      {"tamiflu", "oseltamivir"},
      {"deltasone", "prednisone"},
      {"medrol", "methylprednisolone"},
      {"flomax", "tamsulosin"},
      {"proscar", "finasteride"},
      {"viagra", "sildenafil"},
      {"zyloprim", "allopurinol"},
      {"colcrys", "colchicine"},
      {"fosamax", "alendronate"},
      {"plaquenil", "hydroxychloroquine"},
      {"trexall", "methotrexate"},
  };
  return pairs;
}

std::map<std::string, std::string> DrugNameSwaps(const std::string& direction) {
  std::map<std::string, std::string> swaps;
  for (const auto& [brand, generic] : DrugNamePairs()) {
    if (direction != "to_brand") swaps[brand] = generic;
    if (direction != "to_generic") swaps[generic] = brand;
  }
  return swaps;
}

namespace {

struct DrugNameSwapOptions {
  std::string direction = "both";
  template <class V>
  void Visit(V& v) {
    v.Enum("direction", direction, {"both", "to_generic", "to_brand"},
           "which names are replaced");
  }
};

class DrugNameSwapEnv : public ObservationWrapper {
 public:
  DrugNameSwapEnv(std::unique_ptr<Env> inner, const std::string& direction)
      : ObservationWrapper(std::move(inner), "drug_name_swap", 0),
        swaps_(DrugNameSwaps(direction)) {}

 protected:
  std::string Rewrite(const std::string& text, const EpisodeKey&, bool,
                      size_t) const override {
    return SwapWords(text, swaps_);
  }

 private:
  std::map<std::string, std::string> swaps_;
};

}  // namespace
}  // namespace clinrl::envs

CLINRL_REGISTER_ENV_WRAPPER(
    drug_name_swap, [](std::unique_ptr<::clinrl::envs::Env> inner,
                       const nlohmann::json& options, const std::string& path) {
      const auto o =
          ::clinrl::envs::ReadOptions<::clinrl::envs::DrugNameSwapOptions>(
              options, path);
      return std::unique_ptr<::clinrl::envs::Env>(
          std::make_unique<::clinrl::envs::DrugNameSwapEnv>(std::move(inner),
                                                            o.direction));
    });
