#include "core/wire.h"

#include "core/error.h"

namespace clinrl::wire {

namespace {
std::string Shorten(const json& value) {
  std::string text = value.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}
}  // namespace

Fields::Fields(const json& object, std::string path)
    : object_(object), path_(std::move(path)) {
  if (!object_.is_object()) {
    throw BadRequest(fmt::format("{}: expected a JSON object, got {} {}", path_,
                                 object_.type_name(), Shorten(object_)));
  }
}

void Fields::Fail(const char* field, const char* expected,
                  const json& got) const {
  throw BadRequest(fmt::format("{}.{}: expected {}, got {} {}", path_, field,
                               expected, got.type_name(), Shorten(got)));
}

bool Fields::Has(const char* field) const {
  auto it = object_.find(field);
  return it != object_.end() && !it->is_null();
}

const json& Fields::Get(const char* field) const {
  auto it = object_.find(field);
  if (it == object_.end() || it->is_null()) {
    throw BadRequest(
        fmt::format("{}.{}: required field is missing", path_, field));
  }
  return *it;
}

std::string Fields::String(const char* field) const {
  const json& v = Get(field);
  if (!v.is_string()) Fail(field, "a string", v);
  return v.get<std::string>();
}
std::string Fields::String(const char* field,
                           const std::string& fallback) const {
  return Has(field) ? String(field) : fallback;
}

int64_t Fields::Int(const char* field) const {
  const json& v = Get(field);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) {
      return static_cast<int64_t>(d);
    }
  }
  Fail(field, "an integer", v);
}
int64_t Fields::Int(const char* field, int64_t fallback) const {
  return Has(field) ? Int(field) : fallback;
}

double Fields::Double(const char* field) const {
  const json& v = Get(field);
  if (!v.is_number()) Fail(field, "a number", v);
  return v.get<double>();
}
double Fields::Double(const char* field, double fallback) const {
  return Has(field) ? Double(field) : fallback;
}

bool Fields::Bool(const char* field) const {
  const json& v = Get(field);
  if (!v.is_boolean()) Fail(field, "a boolean", v);
  return v.get<bool>();
}
bool Fields::Bool(const char* field, bool fallback) const {
  return Has(field) ? Bool(field) : fallback;
}

const json& Fields::Object(const char* field) const {
  const json& v = Get(field);
  if (!v.is_object()) Fail(field, "an object", v);
  return v;
}

const json& Fields::Array(const char* field) const {
  const json& v = Get(field);
  if (!v.is_array()) Fail(field, "an array", v);
  return v;
}

std::vector<int64_t> Fields::IntArray(const char* field) const {
  const json& v = Array(field);
  std::vector<int64_t> out;
  out.reserve(v.size());
  for (const json& x : v) {
    if (!x.is_number_integer()) Fail(field, "an array of integers", v);
    out.push_back(x.get<int64_t>());
  }
  return out;
}

std::vector<float> Fields::FloatArray(const char* field) const {
  const json& v = Array(field);
  std::vector<float> out;
  out.reserve(v.size());
  for (const json& x : v) {
    if (!x.is_number()) Fail(field, "an array of numbers", v);
    out.push_back(x.get<float>());
  }
  return out;
}

std::vector<double> Fields::DoubleArray(const char* field) const {
  const json& v = Array(field);
  std::vector<double> out;
  out.reserve(v.size());
  for (const json& x : v) {
    if (!x.is_number()) Fail(field, "an array of numbers", v);
    out.push_back(x.get<double>());
  }
  return out;
}

json OkReply(json fields) {
  if (!fields.is_object()) fields = json::object();
  fields["ok"] = true;
  return fields;
}

json ErrorReply(const std::string& code, const std::string& message) {
  return {{"ok", false}, {"error", {{"code", code}, {"message", message}}}};
}

const json& CheckReply(const json& reply, const std::string& what) {
  if (!reply.is_object() || !reply.contains("ok") ||
      !reply["ok"].is_boolean()) {
    throw InternalError(
        fmt::format("{}: reply has no boolean 'ok': {}", what, Shorten(reply)));
  }
  if (reply["ok"].get<bool>()) return reply;
  std::string code = "internal";
  std::string message = "(no message)";
  if (reply.contains("error") && reply["error"].is_object()) {
    code = reply["error"].value("code", code);
    message = reply["error"].value("message", message);
  }
  const std::string text = fmt::format("{}: {}", what, message);
  if (code == "bad_request") throw BadRequest(text);
  if (code == "not_found") throw NotFound(text);
  if (code == "timeout") throw Timeout(text);
  throw InternalError(text);
}

}  // namespace clinrl::wire
