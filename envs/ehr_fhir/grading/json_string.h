// Reading FHIR JSON that the model wrote: a field that should be a string may
// hold anything, and nlohmann's value(key, default) throws type_error when
// the key is there with another type. A model's bad body must grade as not
// matching, never end the step as an internal error.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace clinrl::envs::ehr {

// object[key] when `object` is an object holding a string there, else
// `fallback`.
inline std::string StringField(const nlohmann::json& object, const char* key,
                               const std::string& fallback = "") {
  if (!object.is_object()) return fallback;
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>()
                                               : fallback;
}

}  // namespace clinrl::envs::ehr
