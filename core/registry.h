// Things made by name: envs (CLINRL_REGISTER_ENV), reward plug-ins
// (CLINRL_REGISTER_REWARD), scripted policies, benchmarks and command groups
// each keep one Registry of their factory type. Entries register from static
// initialisers next to their code, so nothing else has to list them
// (docs/style.md, 2), and are looked up by name afterwards.
//
// The registry owns what every one of them needs, once: a name registered
// twice is a bug (InternalError, at start-up), and an unknown name is a
// NotFound listing the registered names, worded by the owner so the message
// says what was looked up (`env 'x' is not registered; registered envs: ...`).
//
// Entries are never removed, so a factory found by name stays valid for the
// life of the process and may be called without holding the lock; the lock
// only makes late registration (reward plug-ins registering inside dlopen)
// safe while other threads look names up. The members are defined outside
// the class so that a registry whose instantiation lives in the executable
// (`extern template`, see rewards/reward_registry.h) is not instantiated
// again in a plug-in.
#pragma once

#include <fmt/format.h>

#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace clinrl {

template <class Factory>
class Registry {
 public:
  // `kind` names one entry in errors ("env", "reward plug-in"). `not_found`
  // is the NotFound message, a fmt pattern with {name} (what was looked up)
  // and {known} (the registered names, comma-separated, or "(none)").
  Registry(std::string kind, std::string not_found);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Throws InternalError when `name` is registered already.
  void Add(const std::string& name, Factory factory);
  // The factory registered as `name`, or nullptr.
  const Factory* Find(const std::string& name) const;
  // The factory registered as `name`; throws NotFound listing the names.
  const Factory& Get(const std::string& name) const;
  bool Has(const std::string& name) const;
  std::vector<std::string> Names() const;  // sorted

 private:
  std::string kind_;
  std::string not_found_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, Factory> entries_;
};

// Runs one registration from a static initialiser: the CLINRL_REGISTER_*
// macros declare one of these per entry, constructed with a lambda that adds
// it to its registry.
struct StaticRegistration {
  template <class AddEntry>
  explicit StaticRegistration(AddEntry&& add_entry) {
    add_entry();
  }
};

template <class Factory>
Registry<Factory>::Registry(std::string kind, std::string not_found)
    : kind_(std::move(kind)), not_found_(std::move(not_found)) {}

template <class Factory>
void Registry<Factory>::Add(const std::string& name, Factory factory) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  const bool added = entries_.emplace(name, std::move(factory)).second;
  CLINRL_CHECK(added, "{} '{}' registered twice", kind_, name);
}

template <class Factory>
const Factory* Registry<Factory>::Find(const std::string& name) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

template <class Factory>
const Factory& Registry<Factory>::Get(const std::string& name) const {
  if (const Factory* factory = Find(name)) return *factory;
  std::string known;
  for (const auto& n : Names()) known += (known.empty() ? "" : ", ") + n;
  throw NotFound(
      fmt::format(fmt::runtime(not_found_), fmt::arg("name", name),
                  fmt::arg("known", known.empty() ? "(none)" : known)));
}

template <class Factory>
bool Registry<Factory>::Has(const std::string& name) const {
  return Find(name) != nullptr;
}

template <class Factory>
std::vector<std::string> Registry<Factory>::Names() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& entry : entries_) names.push_back(entry.first);
  return names;
}

}  // namespace clinrl
