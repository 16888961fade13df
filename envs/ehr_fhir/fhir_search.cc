#include "envs/ehr_fhir/fhir_search.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace clinrl::envs::ehr {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string Lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Known(const std::map<std::string, ParamKind>& params) {
  std::string out;
  for (const auto& [name, kind] : params) out += name + ", ";
  return out + "_id, _count, _sort, _format, _elements";
}

}  // namespace

const std::vector<std::string>& SupportedResourceTypes() {
  static const std::vector<std::string> kTypes = {
      "Patient",        "Observation", "Condition", "MedicationRequest",
      "ServiceRequest", "Procedure",   "Encounter", "AllergyIntolerance"};
  return kTypes;
}

bool IsSupportedResourceType(const std::string& type) {
  const auto& t = SupportedResourceTypes();
  return std::find(t.begin(), t.end(), type) != t.end();
}

const std::map<std::string, ParamKind>& SearchParams(const std::string& type) {
  using K = ParamKind;
  static const std::map<std::string, std::map<std::string, ParamKind>> kParams =
      {{"Patient",
        {{"identifier", K::kToken},
         {"name", K::kString},
         {"family", K::kString},
         {"given", K::kString},
         {"birthdate", K::kDate},
         {"gender", K::kToken}}},
       {"Observation",
        {{"patient", K::kReference},
         {"subject", K::kReference},
         {"code", K::kToken},
         {"category", K::kToken},
         {"status", K::kToken},
         {"date", K::kDate}}},
       {"Condition",
        {{"patient", K::kReference},
         {"subject", K::kReference},
         {"code", K::kToken},
         {"category", K::kToken}}},
       {"MedicationRequest",
        {{"patient", K::kReference},
         {"subject", K::kReference},
         {"code", K::kToken},
         {"status", K::kToken},
         {"intent", K::kToken},
         {"authoredon", K::kDate}}},
       {"ServiceRequest",
        {{"patient", K::kReference},
         {"subject", K::kReference},
         {"code", K::kToken},
         {"status", K::kToken},
         {"authored", K::kDate}}},
       {"Procedure",
        {{"patient", K::kReference},
         {"subject", K::kReference},
         {"code", K::kToken},
         {"status", K::kToken},
         {"date", K::kDate}}},
       {"Encounter",
        {{"patient", K::kReference},
         {"subject", K::kReference},
         {"status", K::kToken},
         {"date", K::kDate}}},
       {"AllergyIntolerance",
        {{"patient", K::kReference}, {"code", K::kToken}}}};
  static const std::map<std::string, ParamKind> kNone;
  auto it = kParams.find(type);
  return it == kParams.end() ? kNone : it->second;
}

SearchQuery ParseSearch(const std::string& type, const QueryParams& params) {
  const auto& known = SearchParams(type);
  SearchQuery q;
  q.type = type;
  q.count = kDefaultPageSize;
  for (const auto& [raw_name, value] : params) {
    // Modifiers (":exact", ":missing", ...) are not supported; say so rather
    // than silently matching something else.
    const std::string& name = raw_name;
    if (name == "_count" || name == "_offset") {
      int64_t n = -1;
      try {
        size_t used = 0;
        n = std::stoll(value, &used);
        if (used != value.size()) n = -1;
      } catch (const std::exception&) {
      }
      const int64_t min = name == "_count" ? 1 : 0;
      if (n < min) {
        throw BadRequest(fmt::format(
            "search parameter {}: expected an integer >= {}, got '{}'", name,
            min, value));
      }
      if (name == "_count") q.count = std::min(n, kMaxPageSize);
      if (name == "_offset") q.offset = n;
      continue;
    }
    if (name == "_format") {
      if (value != "json" && value != "application/fhir+json" &&
          value != "application/json") {
        throw BadRequest(fmt::format(
            "search parameter _format: only json is served, got '{}' "
            "(expected json, application/json or application/fhir+json)",
            value));
      }
      continue;
    }
    if (name == "_sort") {
      const bool has_date = known.count("date") || known.count("authoredon") ||
                            known.count("birthdate") || known.count("authored");
      const std::string bare =
          value.rfind('-', 0) == 0 ? value.substr(1) : value;
      const bool ok =
          bare == "_id" || (has_date &&
                            (bare == "date" || bare == "authoredon" ||
                             bare == "birthdate" || bare == "authored") &&
                            known.count(bare));
      if (!ok) {
        throw BadRequest(fmt::format(
            "search parameter _sort: cannot sort {} by '{}' (expected _id{}, "
            "optionally prefixed with '-')",
            type, value, has_date ? " or its date parameter" : ""));
      }
      q.sort = value.rfind('-', 0) == 0
                   ? "-" + std::string(bare == "_id" ? "_id" : "date")
                   : std::string(bare == "_id" ? "_id" : "date");
      continue;
    }
    if (name == "_id") {
      for (const auto& v : Split(value, ',')) q.ids.push_back(v);
      continue;
    }
    if (name == "_elements") {
      // R4 3.1.1.5.9: top-level element names; paths into elements are not
      // part of R4's _elements.
      for (const auto& v : Split(value, ',')) {
        const bool ok =
            !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
            });
        if (!ok) {
          throw BadRequest(fmt::format(
              "search parameter _elements: expected top-level element names "
              "separated by commas (e.g. effectiveDateTime,valueQuantity), "
              "got '{}'",
              value));
        }
        q.elements.push_back(v);
      }
      continue;
    }
    auto it = known.find(name);
    if (it == known.end()) {
      throw BadRequest(fmt::format(
          "unknown search parameter '{}' for resource type {} (supported: {})",
          name, type, Known(known)));
    }
    SearchClause c;
    c.param = name == "subject" ? "patient" : name;
    c.kind = it->second;
    for (const auto& v : Split(value, ',')) {
      switch (c.kind) {
        case ParamKind::kReference: {
          std::string id = v;
          if (id.rfind("Patient/", 0) == 0) id = id.substr(8);
          const size_t slash = id.rfind('/');
          if (slash != std::string::npos) {
            throw BadRequest(fmt::format(
                "search parameter {}: expected a Patient id or Patient/[id], "
                "got '{}'",
                name, v));
          }
          c.references.push_back(id);
          break;
        }
        case ParamKind::kToken: {
          TokenValue t;
          const size_t bar = v.find('|');
          if (bar == std::string::npos) {
            t.code = v;
          } else {
            t.system = v.substr(0, bar);
            t.code = v.substr(bar + 1);
          }
          c.tokens.push_back(t);
          break;
        }
        case ParamKind::kString:
          c.prefixes.push_back(Lower(v));
          break;
        case ParamKind::kDate: {
          static const std::vector<std::pair<std::string, DatePrefix>>
              kPrefixes = {{"eq", DatePrefix::kEq}, {"ne", DatePrefix::kNe},
                           {"gt", DatePrefix::kGt}, {"lt", DatePrefix::kLt},
                           {"ge", DatePrefix::kGe}, {"le", DatePrefix::kLe}};
          DateCondition d;
          std::string text = v;
          if (text.size() >= 2 &&
              std::isalpha(static_cast<unsigned char>(text[0]))) {
            const std::string p = text.substr(0, 2);
            auto pit =
                std::find_if(kPrefixes.begin(), kPrefixes.end(),
                             [&](const auto& e) { return e.first == p; });
            if (pit == kPrefixes.end()) {
              throw BadRequest(fmt::format(
                  "search parameter {}: unknown prefix '{}' in '{}' (expected "
                  "one of eq, ne, gt, lt, ge, le)",
                  name, p, v));
            }
            d.prefix = pit->second;
            text = text.substr(2);
          }
          auto range = ParseFhirTime(text);
          if (!range) {
            throw BadRequest(fmt::format(
                "search parameter {}: '{}' is not a FHIR date or dateTime "
                "(expected YYYY, YYYY-MM, YYYY-MM-DD or "
                "YYYY-MM-DDThh:mm[:ss][Z|+hh:mm], optionally after a prefix)",
                name, v));
          }
          d.range = *range;
          c.dates.push_back(d);
          break;
        }
      }
    }
    q.clauses.push_back(std::move(c));
  }
  return q;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() &&
        std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(
          static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string PercentEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        c == ':' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

QueryParams ParseQueryString(const std::string& query) {
  QueryParams out;
  if (query.empty()) return out;
  for (const auto& part : Split(query, '&')) {
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    if (eq == std::string::npos) {
      out.emplace_back(PercentDecode(part), "");
    } else {
      out.emplace_back(PercentDecode(part.substr(0, eq)),
                       PercentDecode(part.substr(eq + 1)));
    }
  }
  return out;
}

}  // namespace clinrl::envs::ehr
