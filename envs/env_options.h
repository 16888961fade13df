// How envs and scripted policies read their options: each declares them as a
// struct with a `Visit` listing the keys once (like the sections of
// core/clinrl_config.h), and ReadOptions reads JSON into it with the config
// schema engine (core/config_schema.h). A misspelt option is then refused
// the way a misspelt config key is: the full key path, the type or value
// expected and what was found, and the closest known key
// (`envs.0.options.max_turn: unknown key (did you mean 'max_turns'?)`).
//
// `path` says where the options came from, so the message points at the
// right place: `envs.<i>.options` for the env options of a run config (the
// env service passes it), `options` for a reset request's per-episode
// options, `policy_options` for a scripted policy's.
#pragma once

#include <set>
#include <string>

#include "core/config_schema.h"
#include "core/error.h"
#include "envs/env.h"

namespace clinrl::envs {

// Declares that there are no options: an env whose episodes take no reset
// options, a policy with no knobs. Any key is refused.
struct NoOptions {
  template <class V>
  void Visit(V&) {}
};

// Reads `options` (an object, or null for none) into a copy of `base`: keys
// that are present replace base's values, absent ones keep them. Throws
// ConfigError naming `path.<key>` for an unknown key, a wrong type or a
// value outside an Enum or AtLeast; checks the schema cannot express (an
// upper bound, a URL) are the caller's, after reading.
template <class T>
T ReadOptions(const json& options, const std::string& path, const T& base) {
  T value = base;
  // The schema lists the known keys when it refuses one; with none declared
  // it would list nothing, so say plainly that none are taken.
  if (options.is_object() && !options.empty() &&
      config::WriteConfig(value).empty()) {
    throw ConfigError(
        fmt::format("{}.{}: unknown key; no options are accepted here", path,
                    options.begin().key()));
  }
  config::Overrides no_overrides;
  std::set<std::string> consumed;
  config::Reader reader(&options, path, &no_overrides, &consumed);
  value.Visit(reader);
  reader.RejectUnknownKeys();
  return value;
}

// The same, on top of T's defaults.
template <class T>
T ReadOptions(const json& options, const std::string& path) {
  // Default-initialised on purpose: `T{}` of a struct with a base class
  // (DxDialogueOptions) trips GCC 12's -Wmaybe-uninitialized at -O3.
  const T defaults;
  return ReadOptions(options, path, defaults);
}

}  // namespace clinrl::envs
