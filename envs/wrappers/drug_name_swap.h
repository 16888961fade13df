// drug_name_swap: brand and generic drug names swapped in the observations
// (Lipitor <-> atorvastatin), as RABBITS measures: a model that knows the
// drug should answer the same under either name. The table is clinrl's own
// list of common US brand/generic pairs, one brand per generic so that the
// swap is a bijection; whole words only, case preserved.
// Option `direction`: both (default), to_generic, to_brand.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace clinrl::envs {

// (brand, generic), lower case, single words.
const std::vector<std::pair<std::string, std::string>>& DrugNamePairs();

// The word map for a direction: both, to_generic or to_brand.
std::map<std::string, std::string> DrugNameSwaps(const std::string& direction);

}  // namespace clinrl::envs
