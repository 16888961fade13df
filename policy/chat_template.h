// A model's own chat template (the `chat_template` string of its
// tokenizer_config.json, or chat_template.jinja), rendered the way
// transformers' apply_chat_template renders it, so that clinrl formats a
// conversation exactly as the model was trained to read it instead of
// assuming ChatML for every model.
//
// The template is lexed (jinja_lexer.h) and parsed (jinja_parser.h) once, in
// the constructor, so a template using something this interpreter does not
// implement is refused when the model is loaded, naming the line, column and
// construct. Render evaluates the tree over JSON values (jinja_value.h) with
// transformers' environment: trim_blocks and lstrip_blocks, default
// Undefined (missing names render as "" and are false; using one further is
// an error), the loopcontrols extension, and the globals raise_exception,
// strftime_now, namespace and dict, plus Jinja's range. tojson is
// transformers' override (json.dumps with ensure_ascii=False, keys in the
// caller's order), not Jinja's HTML-escaping one.
//
// The context is what apply_chat_template passes: "messages", "tools"
// (null when there are none), "documents", "add_generation_prompt", the
// tokenizer's special tokens ("bos_token", "eos_token", ...) and any extra
// keyword arguments ("enable_thinking", "date_string"); ChatTemplateContext
// builds it, with the message clean-up apply_chat_template does first.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::policy {

namespace jinja {
struct Statement;
}

// The context apply_chat_template renders with: messages without their
// null-valued keys (OpenAI's "content": null next to tool calls) and with
// reasoning given as "reasoning_content", "thinking" or "reasoning" copied
// under the first two names (transformers' _alias_reasoning_fields);
// "tools" as given or null, "documents" null, "add_generation_prompt", then
// every entry of `variables` (special tokens such as "bos_token", and extra
// arguments such as "enable_thinking"). Throws BadRequest naming the
// message that is not a JSON object.
nlohmann::ordered_json ChatTemplateContext(
    const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
    bool add_generation_prompt, const nlohmann::ordered_json& variables);

class ChatTemplate {
 public:
  // Throws BadRequest "chat template line L column C: ..." for syntax this
  // interpreter does not support or cannot parse.
  explicit ChatTemplate(const std::string& source);

  // Throws BadRequest when the template calls raise_exception (with its
  // message), uses an undefined value in an operation, or applies a filter,
  // test or method to a value it does not take; each names line and column.
  std::string Render(const nlohmann::ordered_json& context) const;

 private:
  std::vector<std::shared_ptr<const jinja::Statement>> body_;
};

}  // namespace clinrl::policy
