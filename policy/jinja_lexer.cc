#include "policy/jinja_lexer.h"

#include <cctype>
#include <cstring>

#include "core/error.h"

namespace clinrl::policy::jinja {
namespace {

// Jinja normalises line endings and drops one trailing newline before it
// lexes; positions below refer to the normalised text.
std::string NormaliseNewlines(const std::string& source) {
  std::string text;
  text.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      text += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      text += source[i];
    }
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

bool IsSpaceOrTab(char c) { return c == ' ' || c == '\t'; }
bool IsWhitespace(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : source_(std::move(source)) {}

  std::vector<Token> Run() {
    while (position_ < source_.size()) {
      size_t tag = FindTag(position_);
      std::string text = source_.substr(position_, tag - position_);
      size_t text_start = position_;
      if (tag == source_.size()) {
        AddText(text, text_start);
        break;
      }
      char opener = source_[tag + 1];
      char sign = tag + 2 < source_.size() ? source_[tag + 2] : '\0';
      text = StripBeforeTag(text, opener, sign);
      AddText(text, text_start);
      position_ = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (opener == '#') {
        SkipComment(tag);
      } else {
        LexTag(tag, opener);
      }
    }
    tokens_.push_back(
        {TokenKind::kEnd, "", Line(position_), Column(position_)});
    return std::move(tokens_);
  }

 private:
  size_t FindTag(size_t from) const {
    for (size_t i = from; i + 1 < source_.size(); ++i) {
      if (source_[i] == '{' && std::strchr("{%#", source_[i + 1]) != nullptr) {
        return i;
      }
    }
    return source_.size();
  }

  // `-` strips all whitespace before the tag; otherwise lstrip_blocks strips
  // the spaces and tabs of a block or comment tag's own line.
  std::string StripBeforeTag(std::string text, char opener, char sign) const {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0 && IsWhitespace(text[end - 1])) --end;
      return text.substr(0, end);
    }
    if (sign == '+' || opener == '{') return text;
    size_t newline = text.rfind('\n');
    size_t line_start = newline == std::string::npos ? 0 : newline + 1;
    if (line_start == 0 && !line_starting_) return text;
    for (size_t i = line_start; i < text.size(); ++i) {
      if (!IsSpaceOrTab(text[i])) return text;
    }
    return text.substr(0, line_start);
  }

  void AddText(const std::string& text, size_t start) {
    if (!text.empty()) {
      tokens_.push_back({TokenKind::kText, text, Line(start), Column(start)});
    }
  }

  // What follows a tag's end: `-` eats all whitespace, trim_blocks one
  // newline after a block or comment. Records whether the text that follows
  // starts a line, which lstrip_blocks needs.
  void SkipAfterTagEnd(char closer_kind, char sign) {
    size_t start = position_;
    if (sign == '-') {
      while (position_ < source_.size() && IsWhitespace(source_[position_])) {
        ++position_;
      }
    } else if (sign != '+' && closer_kind != '}' &&
               position_ < source_.size() && source_[position_] == '\n') {
      ++position_;
    }
    line_starting_ = position_ > start && source_[position_ - 1] == '\n';
  }

  void SkipComment(size_t tag) {
    size_t end = source_.find("#}", position_);
    if (end == std::string::npos) {
      throw BadRequest(Where(tag) + "comment opened with '{#' is never closed");
    }
    char sign =
        end > position_ && (source_[end - 1] == '-' || source_[end - 1] == '+')
            ? source_[end - 1]
            : '\0';
    position_ = end + 2;
    SkipAfterTagEnd('#', sign);
  }

  void LexTag(size_t tag, char opener) {
    bool is_block = opener == '%';
    tokens_.push_back(
        {is_block ? TokenKind::kBlockBegin : TokenKind::kVariableBegin,
         is_block ? "{%" : "{{", Line(tag), Column(tag)});
    const char closer = is_block ? '%' : '}';
    while (true) {
      while (position_ < source_.size() && IsWhitespace(source_[position_])) {
        ++position_;
      }
      if (position_ >= source_.size()) {
        throw BadRequest(Where(tag) + "tag opened with '{" +
                         std::string(1, opener) + "' is never closed");
      }
      char sign = source_[position_];
      size_t close = position_ + ((sign == '-' || sign == '+') ? 1 : 0);
      if (close + 1 < source_.size() && source_[close] == closer &&
          source_[close + 1] == '}') {
        tokens_.push_back(
            {is_block ? TokenKind::kBlockEnd : TokenKind::kVariableEnd,
             is_block ? "%}" : "}}", Line(position_), Column(position_)});
        char end_sign = close > position_ ? sign : '\0';
        position_ = close + 2;
        SkipAfterTagEnd(is_block ? '%' : '}', end_sign);
        return;
      }
      LexOne();
    }
  }

  void LexOne() {
    char c = source_[position_];
    size_t start = position_;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (position_ < source_.size() &&
             (std::isalnum(static_cast<unsigned char>(source_[position_])) ||
              source_[position_] == '_')) {
        ++position_;
      }
      Add(TokenKind::kName, source_.substr(start, position_ - start), start);
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      LexNumber();
    } else if (c == '\'' || c == '"') {
      LexString();
    } else {
      LexOperator();
    }
  }

  void LexNumber() {
    size_t start = position_;
    bool is_float = false;
    while (position_ < source_.size()) {
      char c = source_[position_];
      if (std::isdigit(static_cast<unsigned char>(c)) || c == '_') {
        ++position_;
      } else if (c == '.' && !is_float && position_ + 1 < source_.size() &&
                 std::isdigit(
                     static_cast<unsigned char>(source_[position_ + 1]))) {
        is_float = true;
        ++position_;
      } else {
        break;
      }
    }
    // An exponent (1e-7, 2E+3) makes a float, as in Python.
    size_t exponent = position_;
    if (exponent < source_.size() &&
        (source_[exponent] == 'e' || source_[exponent] == 'E')) {
      ++exponent;
      if (exponent < source_.size() &&
          (source_[exponent] == '+' || source_[exponent] == '-')) {
        ++exponent;
      }
      if (exponent < source_.size() &&
          std::isdigit(static_cast<unsigned char>(source_[exponent]))) {
        while (exponent < source_.size() &&
               std::isdigit(static_cast<unsigned char>(source_[exponent]))) {
          ++exponent;
        }
        position_ = exponent;
        is_float = true;
      }
    }
    std::string digits;
    for (size_t i = start; i < position_; ++i) {
      if (source_[i] != '_') digits += source_[i];
    }
    Add(is_float ? TokenKind::kFloat : TokenKind::kInteger, digits, start);
  }

  void LexString() {
    size_t start = position_;
    char quote = source_[position_++];
    std::string value;
    while (true) {
      if (position_ >= source_.size()) {
        throw BadRequest(Where(start) + "string literal is never closed");
      }
      char c = source_[position_++];
      if (c == quote) break;
      if (c != '\\' || position_ >= source_.size()) {
        value += c;
        continue;
      }
      char escaped = source_[position_++];
      switch (escaped) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case '\n':
          break;
        default:
          // Python keeps an unknown escape as written.
          value += '\\';
          value += escaped;
      }
    }
    Add(TokenKind::kString, value, start);
  }

  void LexOperator() {
    static const char* kTwoCharacter[] = {"==", "!=", "<=", ">=", "//", "**"};
    size_t start = position_;
    for (const char* op : kTwoCharacter) {
      if (source_.compare(position_, 2, op) == 0) {
        position_ += 2;
        Add(TokenKind::kOperator, op, start);
        return;
      }
    }
    char c = source_[position_];
    if (std::strchr("+-*/%~|.,:()[]{}=<>", c) == nullptr) {
      throw BadRequest(Where(start) + "unexpected character '" +
                       std::string(1, c) + "' inside a tag");
    }
    ++position_;
    Add(TokenKind::kOperator, std::string(1, c), start);
  }

  void Add(TokenKind kind, std::string text, size_t start) {
    tokens_.push_back({kind, std::move(text), Line(start), Column(start)});
  }

  int Line(size_t offset) const {
    int line = 1;
    for (size_t i = 0; i < offset && i < source_.size(); ++i) {
      if (source_[i] == '\n') ++line;
    }
    return line;
  }
  int Column(size_t offset) const {
    size_t newline =
        offset == 0 ? std::string::npos : source_.rfind('\n', offset - 1);
    return static_cast<int>(offset -
                            (newline == std::string::npos ? 0 : newline + 1)) +
           1;
  }
  std::string Where(size_t offset) const {
    return "chat template line " + std::to_string(Line(offset)) + " column " +
           std::to_string(Column(offset)) + ": ";
  }

  std::string source_;
  size_t position_ = 0;
  bool line_starting_ = true;  // Jinja starts a template at a line start
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> Tokenize(const std::string& source) {
  return Lexer(NormaliseNewlines(source)).Run();
}

}  // namespace clinrl::policy::jinja
