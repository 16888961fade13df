// JSON wire helpers shared by every protocol (env, reward, weights): typed
// field access whose errors name the field path, the value and what was
// expected, and the standard reply shapes of docs/design.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::wire {

using nlohmann::json;

// Read-only view of one JSON object at `path` ("request",
// "trajectory.turns[2]"). Every accessor throws BadRequest naming `path.field`
// on a missing or mistyped field; the overloads with a default return it when
// absent.
class Fields {
 public:
  Fields(const json& object, std::string path);

  bool Has(const char* field) const;
  const json& Get(const char* field) const;  // required, any type

  std::string String(const char* field) const;
  std::string String(const char* field, const std::string& fallback) const;
  int64_t Int(const char* field) const;
  int64_t Int(const char* field, int64_t fallback) const;
  double Double(const char* field) const;
  double Double(const char* field, double fallback) const;
  bool Bool(const char* field) const;
  bool Bool(const char* field, bool fallback) const;
  const json& Object(const char* field) const;
  const json& Array(const char* field) const;
  std::vector<int64_t> IntArray(const char* field) const;
  std::vector<float> FloatArray(const char* field) const;
  std::vector<double> DoubleArray(const char* field) const;

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void Fail(const char* field, const char* expected,
                         const json& got) const;
  const json& object_;
  std::string path_;
};

// {"ok": true, ...fields}
json OkReply(json fields = json::object());
// {"ok": false, "error": {"code": code, "message": message}}
json ErrorReply(const std::string& code, const std::string& message);
// Throws the typed clinrl error carried by an error reply; returns `reply`
// unchanged when it is ok. `what` names the call for the message.
const json& CheckReply(const json& reply, const std::string& what);

}  // namespace clinrl::wire
