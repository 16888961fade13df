#include "policy/chat_template.h"

#include <cmath>
#include <ctime>
#include <map>

#include "core/error.h"
#include "policy/jinja_builtins.h"
#include "policy/jinja_lexer.h"
#include "policy/jinja_parser.h"
#include "policy/jinja_value.h"

namespace clinrl::policy {
namespace {

using jinja::Body;
using jinja::CallArguments;
using jinja::Expression;
using jinja::ExpressionKind;
using jinja::Json;
using jinja::Statement;
using jinja::StatementKind;
using jinja::Value;

std::string Where(int line, int column) {
  return "chat template line " + std::to_string(line) + " column " +
         std::to_string(column) + ": ";
}
std::string Where(const Expression& expression) {
  return Where(expression.line, expression.column);
}

// What a statement list tells the loop around it (loopcontrols extension).
enum class Flow { kNormal, kBreak, kContinue };

// Evaluates the tree for one Render call. Each `for` body and macro call
// gets its own frame, as in Jinja, so `set` inside a loop does not leak out
// of it; `if` shares its enclosing frame.
class Renderer {
 public:
  explicit Renderer(const Json& context) : context_(context), frames_(1) {}

  Flow RenderBody(const Body& body, std::string& out) {
    for (const auto& statement : body) {
      Flow flow = RenderStatement(*statement, out);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

 private:
  Flow RenderStatement(const Statement& statement, std::string& out) {
    switch (statement.kind) {
      case StatementKind::kText:
        out += statement.text;
        return Flow::kNormal;
      case StatementKind::kOutput:
        out += jinja::PythonStr(Evaluate(*statement.expression));
        return Flow::kNormal;
      case StatementKind::kIf:
        for (const auto& [condition, body] : statement.branches) {
          if (condition == nullptr || jinja::Truthy(Evaluate(*condition))) {
            return RenderBody(body, out);
          }
        }
        return Flow::kNormal;
      case StatementKind::kFor:
        RenderFor(statement, out);
        return Flow::kNormal;
      case StatementKind::kSet:
        RenderSet(statement);
        return Flow::kNormal;
      case StatementKind::kMacro: {
        Value macro = Value::Callable(statement.name);
        macro.macro = std::shared_ptr<const Statement>(
            std::shared_ptr<const Statement>(), &statement);
        frames_.back()[statement.name] = macro;
        return Flow::kNormal;
      }
      case StatementKind::kBreak:
        return Flow::kBreak;
      case StatementKind::kContinue:
        return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  void RenderFor(const Statement& statement, std::string& out) {
    std::string where = Where(statement.line, statement.column);
    std::vector<Json> items =
        jinja::Iterate(Evaluate(*statement.expression), where);
    frames_.emplace_back();
    if (statement.filter != nullptr) {
      // Jinja filters before counting, so loop.length and loop.last see only
      // the items that pass.
      std::vector<Json> kept;
      for (const Json& item : items) {
        AssignTargets(statement.targets, item, where);
        if (jinja::Truthy(Evaluate(*statement.filter))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    for (size_t i = 0; i < items.size(); ++i) {
      AssignTargets(statement.targets, items[i], where);
      frames_.back()["loop"] = Value::Data(LoopObject(items, i));
      if (RenderBody(statement.body, out) == Flow::kBreak) break;
    }
    frames_.pop_back();
    if (items.empty()) RenderBody(statement.else_body, out);
  }

  static Json LoopObject(const std::vector<Json>& items, size_t i) {
    int64_t length = static_cast<int64_t>(items.size());
    int64_t index0 = static_cast<int64_t>(i);
    Json loop = {{"index", index0 + 1},
                 {"index0", index0},
                 {"revindex", length - index0},
                 {"revindex0", length - index0 - 1},
                 {"first", i == 0},
                 {"last", index0 == length - 1},
                 {"length", length},
                 {"depth", 1},
                 {"depth0", 0}};
    if (i > 0) loop["previtem"] = items[i - 1];
    if (index0 + 1 < length) loop["nextitem"] = items[i + 1];
    return loop;
  }

  void AssignTargets(const std::vector<std::string>& targets, const Json& item,
                     const std::string& where) {
    if (targets.size() == 1) {
      frames_.back()[targets[0]] = Value::Data(item);
      return;
    }
    if (!item.is_array() || item.size() != targets.size()) {
      throw BadRequest(where + "cannot unpack " + jinja::PythonRepr(item) +
                       " into " + std::to_string(targets.size()) + " names");
    }
    for (size_t i = 0; i < targets.size(); ++i) {
      frames_.back()[targets[i]] = Value::Data(item[i]);
    }
  }

  void RenderSet(const Statement& statement) {
    std::string where = Where(statement.line, statement.column);
    if (statement.expression == nullptr) {
      std::string captured;
      RenderBody(statement.body, captured);
      frames_.back()[statement.targets[0]] = Value::Data(captured);
      return;
    }
    Value value = Evaluate(*statement.expression);
    if (!statement.attribute.empty()) {
      Value target = Lookup(statement.targets[0]);
      if (target.kind != Value::Kind::kNamespace) {
        throw BadRequest(where + "cannot set attribute '" +
                         statement.attribute + "' of '" + statement.targets[0] +
                         "': only a namespace() takes attribute assignment");
      }
      (*target.attributes)[statement.attribute] = jinja::ToData(value, where);
      return;
    }
    if (statement.targets.size() == 1) {
      frames_.back()[statement.targets[0]] = value;
      return;
    }
    AssignTargets(statement.targets, jinja::ToData(value, where), where);
  }

  Value Lookup(const std::string& name) const {
    for (auto frame = frames_.rbegin(); frame != frames_.rend(); ++frame) {
      auto found = frame->find(name);
      if (found != frame->end()) return found->second;
    }
    auto found = context_.find(name);
    if (found != context_.end()) return Value::Data(*found);
    static const char* kGlobals[] = {"raise_exception", "strftime_now",
                                     "namespace", "dict", "range"};
    for (const char* global : kGlobals) {
      if (name == global) return Value::Callable(name);
    }
    return Value::Undefined("'" + name + "' is undefined");
  }

  Value Evaluate(const Expression& expression) {
    switch (expression.kind) {
      case ExpressionKind::kLiteral:
        return Value::Data(expression.literal);
      case ExpressionKind::kName:
        return Lookup(expression.name);
      case ExpressionKind::kList: {
        Json list = Json::array();
        for (const auto& item : expression.items) {
          list.push_back(jinja::ToData(Evaluate(*item), Where(expression)));
        }
        return Value::Data(list);
      }
      case ExpressionKind::kDict:
        return EvaluateDict(expression);
      case ExpressionKind::kUnary:
        return EvaluateUnary(expression);
      case ExpressionKind::kBinary:
        return EvaluateBinary(expression);
      case ExpressionKind::kAttribute:
        return jinja::GetAttribute(Evaluate(*expression.items[0]),
                                   expression.name, Where(expression));
      case ExpressionKind::kSubscript:
        return jinja::GetItem(Evaluate(*expression.items[0]),
                              Evaluate(*expression.items[1]),
                              Where(expression));
      case ExpressionKind::kSlice:
        return jinja::GetSlice(Evaluate(*expression.items[0]),
                               EvaluateOptional(expression.items[1]),
                               EvaluateOptional(expression.items[2]),
                               EvaluateOptional(expression.items[3]),
                               Where(expression));
      case ExpressionKind::kCall:
        return EvaluateCall(expression);
      case ExpressionKind::kFilter:
        return jinja::ApplyFilter(
            expression.name, Evaluate(*expression.items[0]),
            EvaluateArguments(expression, 1), Where(expression));
      case ExpressionKind::kTest: {
        bool passed = jinja::ApplyTest(
            expression.name, Evaluate(*expression.items[0]),
            EvaluateArguments(expression, 1), Where(expression));
        return Value::Data(expression.op == "not" ? !passed : passed);
      }
      case ExpressionKind::kConditional:
        if (jinja::Truthy(Evaluate(*expression.items[1]))) {
          return Evaluate(*expression.items[0]);
        }
        if (expression.items[2] == nullptr) {
          return Value::Undefined(
              "the inline if-expression evaluated to false and has no else");
        }
        return Evaluate(*expression.items[2]);
    }
    throw InternalError(Where(expression) + "unknown expression kind");
  }

  Value EvaluateOptional(const jinja::ExpressionPtr& expression) {
    if (expression == nullptr) return Value::Data(nullptr);
    return Evaluate(*expression);
  }

  Value EvaluateDict(const Expression& expression) {
    Json dict = Json::object();
    for (size_t i = 0; i + 1 < expression.items.size(); i += 2) {
      Value key = Evaluate(*expression.items[i]);
      if (!key.is_string()) {
        throw BadRequest(Where(expression) +
                         "dict literal keys must be strings, got " +
                         jinja::PythonStr(key));
      }
      dict[key.data.get<std::string>()] =
          jinja::ToData(Evaluate(*expression.items[i + 1]), Where(expression));
    }
    return Value::Data(dict);
  }

  CallArguments EvaluateArguments(const Expression& expression, size_t first) {
    CallArguments arguments;
    for (size_t i = first; i < expression.items.size(); ++i) {
      arguments.positional.push_back(Evaluate(*expression.items[i]));
    }
    for (const auto& [name, value] : expression.keyword_arguments) {
      arguments.keyword.emplace_back(name, Evaluate(*value));
    }
    return arguments;
  }

  Value EvaluateUnary(const Expression& expression) {
    Value operand = Evaluate(*expression.items[0]);
    if (expression.op == "not") return Value::Data(!jinja::Truthy(operand));
    if (!operand.is_data() || !operand.data.is_number()) {
      throw BadRequest(Where(expression) + "unary '" + expression.op +
                       "' expects a number, got " + jinja::PythonStr(operand));
    }
    if (expression.op == "+") return operand;
    if (operand.data.is_number_float()) {
      return Value::Data(-operand.data.get<double>());
    }
    return Value::Data(-operand.data.get<int64_t>());
  }

  Value EvaluateBinary(const Expression& expression) {
    const std::string& op = expression.op;
    Value left = Evaluate(*expression.items[0]);
    // and/or return an operand, as in Python, and skip the right side when
    // the left decides.
    if (op == "and") {
      return jinja::Truthy(left) ? Evaluate(*expression.items[1]) : left;
    }
    if (op == "or") {
      return jinja::Truthy(left) ? left : Evaluate(*expression.items[1]);
    }
    Value right = Evaluate(*expression.items[1]);
    if (op == "==") return Value::Data(jinja::PythonEquals(left, right));
    if (op == "!=") return Value::Data(!jinja::PythonEquals(left, right));
    if (op == "~") {
      return Value::Data(jinja::PythonStr(left) + jinja::PythonStr(right));
    }
    if (op == "in") return Value::Data(Contains(right, left, expression));
    if (op == "not in") return Value::Data(!Contains(right, left, expression));
    return Arithmetic(op, left, right, expression);
  }

  bool Contains(const Value& container, const Value& item,
                const Expression& expression) {
    if (container.is_string()) {
      if (!item.is_string()) {
        throw BadRequest(Where(expression) +
                         "'in <string>' requires a string on the left, got " +
                         jinja::PythonStr(item));
      }
      return container.data.get_ref<const std::string&>().find(
                 item.data.get_ref<const std::string&>()) != std::string::npos;
    }
    if (container.is_data() && container.data.is_object()) {
      return item.is_string() &&
             container.data.contains(item.data.get<std::string>());
    }
    for (const Json& element : jinja::Iterate(container, Where(expression))) {
      if (jinja::PythonEquals(Value::Data(element), item)) return true;
    }
    return false;
  }

  Value Arithmetic(const std::string& op, const Value& left, const Value& right,
                   const Expression& expression) {
    std::string where = Where(expression);
    for (const Value* operand : {&left, &right}) {
      if (operand->is_undefined()) {
        throw BadRequest(where + operand->name + " (operand of '" + op + "')");
      }
    }
    const Json& a = left.data;
    const Json& b = right.data;
    if (op == "+" && a.is_string() && b.is_string()) {
      return Value::Data(a.get<std::string>() + b.get<std::string>());
    }
    if (op == "+" && a.is_array() && b.is_array()) {
      Json joined = a;
      for (const Json& item : b) joined.push_back(item);
      return Value::Data(joined);
    }
    if (op == "*" && a.is_string() && b.is_number_integer()) {
      std::string repeated;
      for (int64_t i = 0; i < b.get<int64_t>(); ++i)
        repeated += a.get<std::string>();
      return Value::Data(repeated);
    }
    if (a.is_string() && b.is_string() &&
        (op == "<" || op == "<=" || op == ">" || op == ">=")) {
      const std::string& x = a.get_ref<const std::string&>();
      const std::string& y = b.get_ref<const std::string&>();
      bool result = op == "<"    ? x < y
                    : op == "<=" ? x <= y
                    : op == ">"  ? x > y
                                 : x >= y;
      return Value::Data(result);
    }
    if (!a.is_number() || !b.is_number() || a.is_boolean() || b.is_boolean()) {
      throw BadRequest(where + "unsupported operand types for " + op + ": " +
                       jinja::PythonRepr(a) + " and " + jinja::PythonRepr(b));
    }
    return NumberArithmetic(op, a, b, where);
  }

  static Value NumberArithmetic(const std::string& op, const Json& a,
                                const Json& b, const std::string& where) {
    bool integers = a.is_number_integer() && b.is_number_integer();
    double x = a.get<double>();
    double y = b.get<double>();
    if (op == "<") return Value::Data(x < y);
    if (op == "<=") return Value::Data(x <= y);
    if (op == ">") return Value::Data(x > y);
    if (op == ">=") return Value::Data(x >= y);
    if ((op == "/" || op == "//" || op == "%") && y == 0) {
      throw BadRequest(where + "division by zero");
    }
    if (op == "/") return Value::Data(x / y);
    if (integers) {
      int64_t i = a.get<int64_t>();
      int64_t j = b.get<int64_t>();
      if (op == "+") return Value::Data(i + j);
      if (op == "-") return Value::Data(i - j);
      if (op == "*") return Value::Data(i * j);
      if (op == "//" || op == "%") {
        // Python floors integer division and gives % the divisor's sign
        // (j is not zero: checked above).
        int64_t floor_quotient = i / j - ((i % j != 0) && ((i < 0) != (j < 0)));
        return Value::Data(op == "//" ? floor_quotient
                                      : i - floor_quotient * j);
      }
      if (op == "**" && j >= 0) {
        return Value::Data(static_cast<int64_t>(std::llround(std::pow(x, y))));
      }
    }
    if (op == "+") return Value::Data(x + y);
    if (op == "-") return Value::Data(x - y);
    if (op == "*") return Value::Data(x * y);
    if (op == "//") return Value::Data(std::floor(x / y));
    if (op == "%") return Value::Data(x - std::floor(x / y) * y);
    if (op == "**") return Value::Data(std::pow(x, y));
    throw InternalError(where + "unknown operator '" + op + "'");
  }

  Value EvaluateCall(const Expression& expression) {
    const Expression& callee = *expression.items[0];
    CallArguments arguments = EvaluateArguments(expression, 1);
    std::string where = Where(expression);
    if (callee.kind == ExpressionKind::kAttribute) {
      Value subject = Evaluate(*callee.items[0]);
      return jinja::CallMethod(subject, callee.name, arguments, where);
    }
    Value function = Evaluate(callee);
    if (function.kind != Value::Kind::kCallable) {
      if (function.is_undefined()) {
        throw BadRequest(where + function.name);
      }
      throw BadRequest(where + "'" + jinja::PythonStr(function) +
                       "' is not callable");
    }
    if (function.macro != nullptr) return CallMacro(*function.macro, arguments);
    return CallGlobal(function.name, arguments, where);
  }

  Value CallGlobal(const std::string& name, const CallArguments& arguments,
                   const std::string& where) {
    if (name == "raise_exception") {
      std::string message = arguments.positional.empty()
                                ? ""
                                : jinja::PythonStr(arguments.positional[0]);
      throw BadRequest(where + "raise_exception: " + message);
    }
    if (name == "strftime_now") return StrftimeNow(arguments, where);
    if (name == "namespace" || name == "dict") {
      Json attributes = Json::object();
      for (const Value& positional : arguments.positional) {
        if (positional.is_data() && positional.data.is_object()) {
          attributes.update(positional.data);
        }
      }
      for (const auto& [key, value] : arguments.keyword) {
        attributes[key] = jinja::ToData(value, where);
      }
      if (name == "dict") return Value::Data(attributes);
      Value space;
      space.kind = Value::Kind::kNamespace;
      space.attributes = std::make_shared<Json>(std::move(attributes));
      return space;
    }
    return Range(arguments, where);
  }

  static Value StrftimeNow(const CallArguments& arguments,
                           const std::string& where) {
    if (arguments.positional.empty() || !arguments.positional[0].is_string()) {
      throw BadRequest(where + "strftime_now expects a format string");
    }
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buffer[256];
    size_t size = std::strftime(
        buffer, sizeof(buffer),
        arguments.positional[0].data.get<std::string>().c_str(), &local);
    return Value::Data(std::string(buffer, size));
  }

  static Value Range(const CallArguments& arguments, const std::string& where) {
    std::vector<int64_t> bounds;
    for (const Value& value : arguments.positional) {
      if (!value.is_data() || !value.data.is_number_integer()) {
        throw BadRequest(where + "range expects integers");
      }
      bounds.push_back(value.data.get<int64_t>());
    }
    if (bounds.empty() || bounds.size() > 3) {
      throw BadRequest(where + "range expects 1 to 3 integers, got " +
                       std::to_string(bounds.size()));
    }
    int64_t start = bounds.size() == 1 ? 0 : bounds[0];
    int64_t stop = bounds.size() == 1 ? bounds[0] : bounds[1];
    int64_t step = bounds.size() == 3 ? bounds[2] : 1;
    if (step == 0) throw BadRequest(where + "range step cannot be zero");
    Json numbers = Json::array();
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      numbers.push_back(i);
    }
    return Value::Data(numbers);
  }

  Value CallMacro(const Statement& macro, const CallArguments& arguments) {
    std::string where = Where(macro.line, macro.column);
    std::map<std::string, Value> frame;
    for (size_t i = 0; i < macro.targets.size(); ++i) {
      if (i < arguments.positional.size()) {
        frame[macro.targets[i]] = arguments.positional[i];
      } else if (macro.parameter_defaults[i] != nullptr) {
        frame[macro.targets[i]] = Evaluate(*macro.parameter_defaults[i]);
      } else {
        frame[macro.targets[i]] =
            Value::Undefined("'" + macro.targets[i] + "' is undefined");
      }
    }
    for (const auto& [name, value] : arguments.keyword) frame[name] = value;
    frames_.push_back(std::move(frame));
    std::string out;
    RenderBody(macro.body, out);
    frames_.pop_back();
    return Value::Data(out);
  }

  const Json& context_;
  std::vector<std::map<std::string, Value>> frames_;
};

// transformers' _alias_reasoning_fields: {"thinking": r, **message,
// "reasoning_content": r}, so "thinking" comes first and
// "reasoning_content" keeps its place or goes last.
Json AliasReasoning(const Json& message) {
  for (const char* field : {"reasoning_content", "thinking", "reasoning"}) {
    auto found = message.find(field);
    if (found == message.end() || found->is_null()) continue;
    Json reasoning = *found;
    Json aliased = Json::object();
    aliased["thinking"] = reasoning;
    for (const auto& [key, value] : message.items()) aliased[key] = value;
    aliased["thinking"] = reasoning;
    aliased["reasoning_content"] = reasoning;
    return aliased;
  }
  return message;
}

}  // namespace

nlohmann::ordered_json ChatTemplateContext(
    const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
    bool add_generation_prompt, const nlohmann::ordered_json& variables) {
  if (!messages.is_array()) {
    throw BadRequest("chat template messages: expected a JSON array, got " +
                     std::string(messages.type_name()));
  }
  Json cleaned = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].is_object()) {
      throw BadRequest("chat template messages[" + std::to_string(i) +
                       "]: expected a JSON object, got " +
                       std::string(messages[i].type_name()));
    }
    Json message = Json::object();
    for (const auto& [key, value] : messages[i].items()) {
      if (!value.is_null()) message[key] = value;
    }
    cleaned.push_back(AliasReasoning(message));
  }
  Json context = {{"messages", cleaned},
                  {"tools", tools},
                  {"documents", nullptr},
                  {"add_generation_prompt", add_generation_prompt}};
  for (const auto& [key, value] : variables.items()) context[key] = value;
  return context;
}

ChatTemplate::ChatTemplate(const std::string& source)
    : body_(jinja::Parse(jinja::Tokenize(source))) {}

std::string ChatTemplate::Render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) {
    throw BadRequest("chat template context: expected a JSON object, got " +
                     std::string(context.type_name()));
  }
  Renderer renderer(context);
  std::string out;
  try {
    renderer.RenderBody(body_, out);
  } catch (const nlohmann::json::exception& error) {
    // A value of the wrong JSON type reached a builtin (a float where an
    // index is needed, say); say so as the caller's error.
    throw BadRequest(std::string("chat template: ") + error.what());
  }
  return out;
}

}  // namespace clinrl::policy
