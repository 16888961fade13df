// Splits a Jinja template (the subset Hugging Face chat templates use) into
// tokens: runs of literal text and the names, literals and operators inside
// `{{ }}` and `{% %}` tags; `{# #}` comments are dropped here.
//
// Whitespace is settled in the lexer, as Jinja's own lexer does, so that the
// parser never sees it: `{%-`, `-%}`, `{{-`, `-}}` strip all whitespace on
// their side, and because transformers compiles chat templates with
// trim_blocks=True and lstrip_blocks=True (chat_template_utils.py,
// _cached_compile_jinja_template), a block or comment tag also eats the one
// newline after it and the spaces and tabs before it on its own line
// (`{%+`/`+%}` opt out). One trailing newline of the template is dropped
// (keep_trailing_newline=False) and "\r\n" reads as "\n".
#pragma once

#include <string>
#include <vector>

namespace clinrl::policy::jinja {

enum class TokenKind {
  kText,           // literal template text
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,           // identifiers, keywords included (if, in, not, true...)
  kString,         // a string literal, escapes already decoded
  kInteger,
  kFloat,
  kOperator,  // + - * / // % ** ~ | . , : ( ) [ ] { } = == != < <= > >=
  kEnd,
};

struct Token {
  TokenKind kind;
  std::string text;
  int line = 1;  // 1-based position of the token's first character
  int column = 1;
};

// Throws BadRequest naming line and column for an unterminated tag, comment
// or string, or a character that starts no token.
std::vector<Token> Tokenize(const std::string& source);

}  // namespace clinrl::policy::jinja
