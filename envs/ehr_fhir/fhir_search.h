// FHIR search: which parameters each resource type supports, and the parsing
// of a query string into a SearchQuery the store can run. Errors are
// BadRequest messages that name the parameter, the value and what was
// expected; the service turns them into a 400 OperationOutcome.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "envs/ehr_fhir/fhir_time.h"

namespace clinrl::envs::ehr {

enum class ParamKind { kReference, kToken, kString, kDate };

// The resource types the server stores, in CapabilityStatement order.
const std::vector<std::string>& SupportedResourceTypes();
bool IsSupportedResourceType(const std::string& type);
// Search parameters of a type (without the common _count, _sort, ...).
const std::map<std::string, ParamKind>& SearchParams(const std::string& type);

struct TokenValue {
  std::optional<std::string> system;  // "system|code"; "|code" = no system
  std::string code;
};

enum class DatePrefix { kEq, kNe, kGt, kLt, kGe, kLe };

struct DateCondition {
  DatePrefix prefix = DatePrefix::kEq;
  TimeRange range;
};

// One parameter occurrence; several values (comma) are ORed, several
// occurrences of a parameter are ANDed.
struct SearchClause {
  std::string param;
  ParamKind kind = ParamKind::kToken;
  std::vector<std::string> references;  // patient ids (kReference)
  std::vector<TokenValue> tokens;       // kToken
  std::vector<std::string> prefixes;    // kString: lower-case prefixes
  std::vector<DateCondition> dates;     // kDate
};

struct SearchQuery {
  std::string type;
  std::vector<SearchClause> clauses;
  std::vector<std::string> ids;  // _id
  int64_t count = 50;            // _count (page size)
  int64_t offset = 0;            // _offset (paging)
  std::string sort;              // "", "date", "-date", "_id", "-_id"
  // _elements: the top-level elements each entry keeps (besides
  // resourceType, id and meta); empty = whole resources.
  std::vector<std::string> elements;
};

constexpr int64_t kDefaultPageSize = 50;
constexpr int64_t kMaxPageSize = 5000;

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Throws BadRequest for an unknown parameter, a bad prefix or date, a bad
// _count/_sort/_format/_elements.
SearchQuery ParseSearch(const std::string& type, const QueryParams& params);

// Percent-decodes a query string ("a=1&b=x%7Cy") into ordered pairs.
QueryParams ParseQueryString(const std::string& query);
std::string PercentDecode(const std::string& text);
std::string PercentEncode(const std::string& text);

}  // namespace clinrl::envs::ehr
