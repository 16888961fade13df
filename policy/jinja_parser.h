// The syntax tree of a Jinja chat template and the parser that builds it
// from jinja_lexer's tokens. Expressions follow Jinja's precedence (ternary
// `if`/`else`, `or`, `and`, `not`, comparisons and `in`/`is`, `~`, `+ -`,
// `* / // %`, unary minus, `**`, filters `|`, then postfix `.name`, `[...]`
// and calls). Statements are those real chat templates use: if/elif/else,
// for/else (with a trailing `if` filter), set (a name, several names, or
// `ns.attr`), block set, macro, break/continue; anything else is refused
// at parse time with its line and column, so an unsupported template fails
// when it is loaded rather than when it is rendered.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "policy/jinja_lexer.h"

namespace clinrl::policy::jinja {

struct Expression;
using ExpressionPtr = std::shared_ptr<const Expression>;

enum class ExpressionKind {
  kLiteral,      // literal
  kName,         // name
  kList,         // items
  kDict,         // keyword_arguments hold the (key expression) pairs: items
                 // alternate key, value
  kUnary,        // op ("not", "-", "+"), items[0]
  kBinary,       // op, items[0], items[1] (and/or short-circuit)
  kAttribute,    // items[0].name
  kSubscript,    // items[0][items[1]]
  kSlice,        // items[0][items[1]:items[2]:items[3]], null parts absent
  kCall,         // items[0](items[1..], keyword_arguments)
  kFilter,       // items[0] | name(items[1..], keyword_arguments)
  kTest,         // items[0] is [not: op == "not"] name(items[1..])
  kConditional,  // items[0] if items[1] else items[2] (items[2] may be null)
};

struct Expression {
  ExpressionKind kind;
  int line = 0;
  int column = 0;
  std::string op;
  std::string name;
  nlohmann::ordered_json literal;
  std::vector<ExpressionPtr> items;
  std::vector<std::pair<std::string, ExpressionPtr>> keyword_arguments;
};

struct Statement;
using StatementPtr = std::shared_ptr<const Statement>;
using Body = std::vector<StatementPtr>;

enum class StatementKind {
  kText,    // text
  kOutput,  // {{ expression }}
  kIf,      // branches: (condition or null for else, body)
  kFor,     // targets in expression [if filter]: body, else_body
  kSet,     // targets = expression; or targets[0].attribute = expression;
            // or a block set when expression is null (body)
  kMacro,   // name(targets with defaults in parameter_defaults): body
  kBreak,
  kContinue,
};

struct Statement {
  StatementKind kind;
  int line = 0;
  int column = 0;
  std::string text;
  std::string name;       // macro name
  std::string attribute;  // set ns.attribute
  std::vector<std::string> targets;
  std::vector<ExpressionPtr> parameter_defaults;  // macro, null = required
  ExpressionPtr expression;
  ExpressionPtr filter;
  std::vector<std::pair<ExpressionPtr, Body>> branches;
  Body body;
  Body else_body;
};

// Throws BadRequest "chat template line L column C: ..." naming the
// construct it does not support or the token it did not expect.
Body Parse(const std::vector<Token>& tokens);

}  // namespace clinrl::policy::jinja
