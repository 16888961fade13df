#include "policy/jinja_parser.h"

#include <set>

#include "core/error.h"

namespace clinrl::policy::jinja {
namespace {

using Json = nlohmann::ordered_json;

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : tokens_(tokens) {}

  Body ParseTemplate() {
    Body body = ParseBody({});
    if (Peek().kind != TokenKind::kEnd) {
      Fail(Peek(), "unexpected '{% " + Peek().text + " %}'");
    }
    return body;
  }

 private:
  // Statements up to (not including) a block whose keyword is in `enders`;
  // the caller consumes that block.
  Body ParseBody(const std::set<std::string>& enders) {
    Body body;
    while (true) {
      const Token& token = Peek();
      if (token.kind == TokenKind::kEnd) {
        if (!enders.empty()) {
          Fail(token, "template ends inside a block: expected '{% " +
                          *enders.rbegin() + " %}'");
        }
        return body;
      }
      if (token.kind == TokenKind::kText) {
        auto text = NewStatement(StatementKind::kText, Next());
        text->text = token.text;
        body.push_back(text);
      } else if (token.kind == TokenKind::kVariableBegin) {
        auto output = NewStatement(StatementKind::kOutput, Next());
        output->expression = ParseExpression();
        Expect(TokenKind::kVariableEnd, "'}}'");
        body.push_back(output);
      } else {
        const Token& keyword = tokens_[index_ + 1];
        if (enders.count(keyword.text) != 0) return body;
        body.push_back(ParseBlock());
      }
    }
  }

  StatementPtr ParseBlock() {
    Next();  // {%
    const Token& keyword = Next();
    if (keyword.kind != TokenKind::kName) {
      Fail(keyword,
           "expected a tag name after '{%', got '" + keyword.text + "'");
    }
    static const std::set<std::string> kClosers = {
        "elif", "else", "endif", "endfor", "endset", "endmacro"};
    if (kClosers.count(keyword.text) != 0) {
      Fail(keyword, "'{% " + keyword.text + " %}' without an open block");
    }
    if (keyword.text == "if") return ParseIf(keyword);
    if (keyword.text == "for") return ParseFor(keyword);
    if (keyword.text == "set") return ParseSet(keyword);
    if (keyword.text == "macro") return ParseMacro(keyword);
    if (keyword.text == "break" || keyword.text == "continue") {
      Expect(TokenKind::kBlockEnd, "'%}'");
      return NewStatement(keyword.text == "break" ? StatementKind::kBreak
                                                  : StatementKind::kContinue,
                          keyword);
    }
    Fail(keyword, "unsupported tag '{% " + keyword.text +
                      " %}' (supported: if, for, set, macro, break, "
                      "continue)");
  }

  StatementPtr ParseIf(const Token& keyword) {
    auto statement = NewStatement(StatementKind::kIf, keyword);
    ExpressionPtr condition = ParseExpression();
    Expect(TokenKind::kBlockEnd, "'%}'");
    while (true) {
      Body body = ParseBody({"elif", "else", "endif"});
      statement->branches.emplace_back(condition, std::move(body));
      Next();  // {%
      std::string ender = Next().text;
      if (ender == "endif") break;
      condition = ender == "elif" ? ParseExpression() : nullptr;
      Expect(TokenKind::kBlockEnd, "'%}'");
      if (ender == "else") {
        statement->branches.emplace_back(nullptr, ParseBody({"endif"}));
        Next();
        Next();
        break;
      }
    }
    Expect(TokenKind::kBlockEnd, "'%}'");
    return statement;
  }

  StatementPtr ParseFor(const Token& keyword) {
    auto statement = NewStatement(StatementKind::kFor, keyword);
    statement->targets = ParseTargets();
    ExpectName("in");
    statement->expression = ParseOr();  // a trailing `if` filters the loop
    if (AcceptName("if")) statement->filter = ParseOr();
    if (AcceptName("recursive")) {
      Fail(Peek(), "unsupported 'recursive' for loop");
    }
    Expect(TokenKind::kBlockEnd, "'%}'");
    statement->body = ParseBody({"else", "endfor"});
    Next();
    if (Next().text == "else") {
      Expect(TokenKind::kBlockEnd, "'%}'");
      statement->else_body = ParseBody({"endfor"});
      Next();
      Next();
    }
    Expect(TokenKind::kBlockEnd, "'%}'");
    return statement;
  }

  StatementPtr ParseSet(const Token& keyword) {
    auto statement = NewStatement(StatementKind::kSet, keyword);
    statement->targets = ParseTargets();
    if (statement->targets.size() == 1 && AcceptOperator(".")) {
      statement->attribute = ExpectKind(TokenKind::kName, "an attribute name");
    }
    if (Peek().kind == TokenKind::kBlockEnd) {
      if (statement->targets.size() != 1 || !statement->attribute.empty()) {
        Fail(keyword, "a block set takes exactly one plain name");
      }
      Next();
      statement->body = ParseBody({"endset"});
      Next();
      Next();
      Expect(TokenKind::kBlockEnd, "'%}'");
      return statement;
    }
    ExpectOperator("=");
    statement->expression = ParseTuple();
    Expect(TokenKind::kBlockEnd, "'%}'");
    return statement;
  }

  StatementPtr ParseMacro(const Token& keyword) {
    auto statement = NewStatement(StatementKind::kMacro, keyword);
    statement->name = ExpectKind(TokenKind::kName, "a macro name");
    ExpectOperator("(");
    while (!AcceptOperator(")")) {
      statement->targets.push_back(
          ExpectKind(TokenKind::kName, "a parameter name"));
      statement->parameter_defaults.push_back(
          AcceptOperator("=") ? ParseExpression() : nullptr);
      if (!AcceptOperator(",")) {
        ExpectOperator(")");
        break;
      }
    }
    Expect(TokenKind::kBlockEnd, "'%}'");
    statement->body = ParseBody({"endmacro"});
    Next();
    Next();
    Expect(TokenKind::kBlockEnd, "'%}'");
    return statement;
  }

  std::vector<std::string> ParseTargets() {
    std::vector<std::string> targets;
    bool parenthesised = AcceptOperator("(");
    do {
      targets.push_back(ExpectKind(TokenKind::kName, "a variable name"));
    } while (AcceptOperator(","));
    if (parenthesised) ExpectOperator(")");
    return targets;
  }

  // `set a, b = 1, 2` and `for` iterables may be bare tuples; they become
  // lists, which behave the same for everything a template can do with them.
  ExpressionPtr ParseTuple() {
    ExpressionPtr first = ParseExpression();
    if (!IsOperator(",")) return first;
    auto list = NewExpression(ExpressionKind::kList, Peek());
    list->items.push_back(first);
    while (AcceptOperator(",")) list->items.push_back(ParseExpression());
    return list;
  }

  ExpressionPtr ParseExpression() {
    ExpressionPtr value = ParseOr();
    while (IsName("if")) {
      auto conditional = NewExpression(ExpressionKind::kConditional, Next());
      conditional->items = {value, ParseOr(), nullptr};
      if (AcceptName("else")) conditional->items[2] = ParseExpression();
      value = conditional;
    }
    return value;
  }

  ExpressionPtr ParseOr() {
    ExpressionPtr left = ParseAnd();
    while (IsName("or")) {
      const Token& token = Next();  // consumed before the right operand
      left = Binary("or", token, left, ParseAnd());
    }
    return left;
  }

  ExpressionPtr ParseAnd() {
    ExpressionPtr left = ParseNot();
    while (IsName("and")) {
      const Token& token = Next();
      left = Binary("and", token, left, ParseNot());
    }
    return left;
  }

  ExpressionPtr ParseNot() {
    if (IsName("not")) {
      auto unary = NewExpression(ExpressionKind::kUnary, Next());
      unary->op = "not";
      unary->items = {ParseNot()};
      return unary;
    }
    return ParseComparison();
  }

  ExpressionPtr ParseComparison() {
    static const std::set<std::string> kComparisons = {"==", "!=", "<",
                                                       "<=", ">",  ">="};
    ExpressionPtr left = ParseAdditive();
    while (true) {
      const Token& token = Peek();
      if (token.kind == TokenKind::kOperator &&
          kComparisons.count(token.text)) {
        Next();
        left = Binary(token.text, token, left, ParseAdditive());
      } else if (IsName("in")) {
        Next();
        left = Binary("in", token, left, ParseAdditive());
      } else if (IsName("not") && tokens_[index_ + 1].text == "in" &&
                 tokens_[index_ + 1].kind == TokenKind::kName) {
        Next();
        Next();
        left = Binary("not in", token, left, ParseAdditive());
      } else {
        return left;
      }
    }
  }

  ExpressionPtr ParseTest(ExpressionPtr subject) {
    auto test = NewExpression(ExpressionKind::kTest, Next());
    if (AcceptName("not")) test->op = "not";
    test->name = ExpectKind(TokenKind::kName, "a test name after 'is'");
    test->items.push_back(subject);
    if (IsOperator("(")) {
      ParseArguments(test.get());
    } else if (IsArgumentStart()) {
      // `is divisibleby 3`, `is equalto 'x'`: one bare argument.
      test->items.push_back(ParsePostfix(ParsePrimary()));
    }
    return test;
  }

  bool IsArgumentStart() const {
    const Token& token = Peek();
    if (token.kind == TokenKind::kString || token.kind == TokenKind::kInteger ||
        token.kind == TokenKind::kFloat) {
      return true;
    }
    if (token.kind == TokenKind::kOperator) {
      return token.text == "[" || token.text == "{";
    }
    static const std::set<std::string> kNotArguments = {
        "and", "or", "else", "if", "in", "is", "not"};
    return token.kind == TokenKind::kName && !kNotArguments.count(token.text);
  }

  // Jinja's precedence, loosest first: + -, then ~, then * / // %, then **,
  // then unary minus; filters and `is` tests bind to the operand itself.
  ExpressionPtr ParseAdditive() {
    ExpressionPtr left = ParseConcat();
    while (IsOperator("+") || IsOperator("-")) {
      const Token& token = Next();
      left = Binary(token.text, token, left, ParseConcat());
    }
    return left;
  }

  ExpressionPtr ParseConcat() {
    ExpressionPtr left = ParseMultiplicative();
    while (IsOperator("~")) {
      const Token& token = Next();
      left = Binary("~", token, left, ParseMultiplicative());
    }
    return left;
  }

  ExpressionPtr ParseMultiplicative() {
    ExpressionPtr left = ParsePower();
    while (IsOperator("*") || IsOperator("/") || IsOperator("//") ||
           IsOperator("%")) {
      const Token& token = Next();
      left = Binary(token.text, token, left, ParsePower());
    }
    return left;
  }

  ExpressionPtr ParsePower() {
    ExpressionPtr left = ParseUnary(true);
    while (IsOperator("**")) {
      const Token& token = Next();
      left = Binary("**", token, left, ParseUnary(true));
    }
    return left;
  }

  ExpressionPtr ParseUnary(bool with_filters) {
    ExpressionPtr value;
    if (IsOperator("-") || IsOperator("+")) {
      auto unary = NewExpression(ExpressionKind::kUnary, Peek());
      unary->op = Next().text;
      unary->items = {ParseUnary(false)};
      value = unary;
    } else {
      value = ParsePrimary();
    }
    value = ParsePostfix(value);
    return with_filters ? ParseFiltersAndTests(value) : value;
  }

  ExpressionPtr ParseFiltersAndTests(ExpressionPtr value) {
    while (true) {
      if (IsOperator("|")) {
        auto filter = NewExpression(ExpressionKind::kFilter, Next());
        filter->name = ExpectKind(TokenKind::kName, "a filter name after '|'");
        filter->items.push_back(value);
        if (IsOperator("(")) ParseArguments(filter.get());
        value = ParsePostfix(filter);
      } else if (IsName("is")) {
        value = ParseTest(value);
      } else {
        return value;
      }
    }
  }

  ExpressionPtr ParsePostfix(ExpressionPtr value) {
    while (true) {
      if (IsOperator(".")) {
        auto attribute = NewExpression(ExpressionKind::kAttribute, Next());
        const Token& name = Next();
        if (name.kind != TokenKind::kName && name.kind != TokenKind::kInteger) {
          Fail(name, "expected an attribute name after '.'");
        }
        attribute->name = name.text;
        attribute->items = {value};
        value = attribute;
      } else if (IsOperator("[")) {
        value = ParseSubscript(value);
      } else if (IsOperator("(")) {
        auto call = NewExpression(ExpressionKind::kCall, Peek());
        call->line = value->line;  // errors point at the callee's name
        call->column = value->column;
        call->items.push_back(value);
        ParseArguments(call.get());
        value = call;
      } else {
        return value;
      }
    }
  }

  ExpressionPtr ParseSubscript(ExpressionPtr value) {
    const Token& open = Next();
    ExpressionPtr parts[3] = {nullptr, nullptr, nullptr};
    int part = 0;
    bool is_slice = false;
    while (!IsOperator("]")) {
      if (AcceptOperator(":")) {
        is_slice = true;
        if (++part > 2) Fail(open, "a slice takes at most start:stop:step");
        continue;
      }
      parts[part] = ParseExpression();
    }
    Next();
    auto subscript = NewExpression(
        is_slice ? ExpressionKind::kSlice : ExpressionKind::kSubscript, open);
    subscript->items = {value, parts[0]};
    if (is_slice) {
      subscript->items.push_back(parts[1]);
      subscript->items.push_back(parts[2]);
    } else if (parts[0] == nullptr) {
      Fail(open, "empty subscript '[]'");
    }
    return subscript;
  }

  // Fills items (after those already there) and keyword_arguments.
  void ParseArguments(Expression* call) {
    ExpectOperator("(");
    while (!AcceptOperator(")")) {
      if (Peek().kind == TokenKind::kName && tokens_[index_ + 1].text == "=" &&
          tokens_[index_ + 1].kind == TokenKind::kOperator) {
        std::string name = Next().text;
        Next();
        call->keyword_arguments.emplace_back(name, ParseExpression());
      } else {
        call->items.push_back(ParseExpression());
      }
      if (!AcceptOperator(",")) {
        ExpectOperator(")");
        break;
      }
    }
  }

  ExpressionPtr ParsePrimary() {
    const Token& token = Next();
    auto literal = NewExpression(ExpressionKind::kLiteral, token);
    switch (token.kind) {
      case TokenKind::kString: {
        std::string text = token.text;
        // Adjacent string literals concatenate, as in Python.
        while (Peek().kind == TokenKind::kString) text += Next().text;
        literal->literal = text;
        return literal;
      }
      case TokenKind::kInteger:
        literal->literal = std::stoll(token.text);
        return literal;
      case TokenKind::kFloat:
        literal->literal = std::stod(token.text);
        return literal;
      case TokenKind::kName:
        return ParseNameOrConstant(token);
      case TokenKind::kOperator:
        if (token.text == "(") {
          ExpressionPtr inner = ParseTuple();
          ExpectOperator(")");
          return inner;
        }
        if (token.text == "[") return ParseList(token);
        if (token.text == "{") return ParseDict(token);
        break;
      default:
        break;
    }
    Fail(token, "expected an expression, got '" + token.text + "'");
  }

  ExpressionPtr ParseNameOrConstant(const Token& token) {
    auto literal = NewExpression(ExpressionKind::kLiteral, token);
    if (token.text == "true" || token.text == "True") {
      literal->literal = true;
    } else if (token.text == "false" || token.text == "False") {
      literal->literal = false;
    } else if (token.text == "none" || token.text == "None") {
      literal->literal = nullptr;
    } else {
      auto name = NewExpression(ExpressionKind::kName, token);
      name->name = token.text;
      return name;
    }
    return literal;
  }

  ExpressionPtr ParseList(const Token& open) {
    auto list = NewExpression(ExpressionKind::kList, open);
    while (!AcceptOperator("]")) {
      list->items.push_back(ParseExpression());
      if (!AcceptOperator(",")) {
        ExpectOperator("]");
        break;
      }
    }
    return list;
  }

  ExpressionPtr ParseDict(const Token& open) {
    auto dict = NewExpression(ExpressionKind::kDict, open);
    while (!AcceptOperator("}")) {
      dict->items.push_back(ParseExpression());
      ExpectOperator(":");
      dict->items.push_back(ParseExpression());
      if (!AcceptOperator(",")) {
        ExpectOperator("}");
        break;
      }
    }
    return dict;
  }

  ExpressionPtr Binary(const std::string& op, const Token& token,
                       ExpressionPtr left, ExpressionPtr right) {
    auto binary = NewExpression(ExpressionKind::kBinary, token);
    binary->op = op;
    binary->items = {std::move(left), std::move(right)};
    return binary;
  }

  std::shared_ptr<Expression> NewExpression(ExpressionKind kind,
                                            const Token& token) {
    auto expression = std::make_shared<Expression>();
    expression->kind = kind;
    expression->line = token.line;
    expression->column = token.column;
    return expression;
  }

  std::shared_ptr<Statement> NewStatement(StatementKind kind,
                                          const Token& token) {
    auto statement = std::make_shared<Statement>();
    statement->kind = kind;
    statement->line = token.line;
    statement->column = token.column;
    return statement;
  }

  const Token& Peek() const { return tokens_[index_]; }
  const Token& Next() {
    const Token& token = tokens_[index_];
    if (token.kind != TokenKind::kEnd) ++index_;
    return token;
  }
  bool IsOperator(const char* op) const {
    return Peek().kind == TokenKind::kOperator && Peek().text == op;
  }
  bool IsName(const char* name) const {
    return Peek().kind == TokenKind::kName && Peek().text == name;
  }
  bool AcceptOperator(const char* op) {
    if (!IsOperator(op)) return false;
    Next();
    return true;
  }
  bool AcceptName(const char* name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }
  void ExpectOperator(const char* op) {
    if (!AcceptOperator(op)) {
      Fail(Peek(),
           std::string("expected '") + op + "', got '" + Peek().text + "'");
    }
  }
  void ExpectName(const char* name) {
    if (!AcceptName(name)) {
      Fail(Peek(),
           std::string("expected '") + name + "', got '" + Peek().text + "'");
    }
  }
  std::string ExpectKind(TokenKind kind, const std::string& what) {
    if (Peek().kind != kind) {
      Fail(Peek(), "expected " + what + ", got '" + Peek().text + "'");
    }
    return Next().text;
  }
  void Expect(TokenKind kind, const std::string& what) {
    ExpectKind(kind, what);
  }
  [[noreturn]] void Fail(const Token& token, const std::string& message) const {
    throw BadRequest("chat template line " + std::to_string(token.line) +
                     " column " + std::to_string(token.column) + ": " +
                     message);
  }

  const std::vector<Token>& tokens_;
  size_t index_ = 0;
};

}  // namespace

Body Parse(const std::vector<Token>& tokens) {
  return Parser(tokens).ParseTemplate();
}

}  // namespace clinrl::policy::jinja
