// The filters, tests, methods and item access a chat template can apply to
// values, with Python's and Jinja's semantics (jinja_value.h): `|trim`,
// `|tojson(indent=4)`, `is mapping`, `message.content.startswith('<')`,
// `messages[::-1]`, `d.get('k', 0)`. Each function takes `where` ("chat
// template line L column C: ") and throws BadRequest starting with it, so
// an error points at the expression that failed.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "policy/jinja_value.h"

namespace clinrl::policy::jinja {

struct CallArguments {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

Value ApplyFilter(const std::string& name, const Value& subject,
                  const CallArguments& arguments, const std::string& where);
bool ApplyTest(const std::string& name, const Value& subject,
               const CallArguments& arguments, const std::string& where);
// `subject.name(arguments)` for str and dict methods.
Value CallMethod(const Value& subject, const std::string& name,
                 const CallArguments& arguments, const std::string& where);

// `subject.name`: a dict key or namespace attribute, else Undefined.
Value GetAttribute(const Value& subject, const std::string& name,
                   const std::string& where);
// `subject[key]`: list index (negative from the end), dict key, or one
// character of a string; a missing one is Undefined.
Value GetItem(const Value& subject, const Value& key, const std::string& where);
// `subject[start:stop:step]` of a list or string; null parts are absent.
Value GetSlice(const Value& subject, const Value& start, const Value& stop,
               const Value& step, const std::string& where);
// What `for x in subject` visits: list items, dict keys, string characters;
// nothing for Undefined.
std::vector<Json> Iterate(const Value& subject, const std::string& where);
// The UTF-8 characters of a string (Python indexes code points, not bytes).
std::vector<std::string> Utf8Characters(const std::string& text);
// JSON data of a value, for storing in lists and dicts; Undefined is null.
Json ToData(const Value& value, const std::string& where);

}  // namespace clinrl::policy::jinja
