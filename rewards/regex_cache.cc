#include "rewards/regex_cache.h"

#include <unordered_map>

#include "core/error.h"

namespace clinrl::rewards {

const std::regex& CachedRegex(const std::string& pattern,
                              const std::string& path) {
  constexpr size_t kMaxPatterns = 4096;
  thread_local std::unordered_map<std::string, std::regex> cache;
  auto it = cache.find(pattern);
  if (it != cache.end()) return it->second;
  if (cache.size() >= kMaxPatterns) cache.clear();
  try {
    return cache
        .emplace(pattern, std::regex(pattern, std::regex::ECMAScript |
                                                  std::regex::icase))
        .first->second;
  } catch (const std::regex_error& e) {
    throw BadRequest(fmt::format(
        "{}: \"{}\" is not a valid ECMAScript regular expression ({})", path,
        pattern, e.what()));
  }
}

}  // namespace clinrl::rewards
