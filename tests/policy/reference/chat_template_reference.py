"""Renders chat templates with transformers' own apply_chat_template.

The reference for tests/policy/chat_template_test.cc (docs/style.md, 5):
for each template in tests/policy/chat_templates/ and each conversation in
conversations.json, prints one JSON line {"template", "conversation",
"output"} or {"template", "conversation", "error"} when the template raises.
A tokenizer with a three-word vocabulary is built offline so that the
template goes through PreTrainedTokenizerBase.apply_chat_template exactly as
a real model's tokenizer would (message normalisation, reasoning aliases,
special tokens as variables, the sandboxed Jinja environment).

With --snippets, renders each {"name", "template", "context"} of a JSON
list with the environment apply_chat_template compiles templates in
(transformers.utils.chat_template_utils._compile_jinja_template) and prints
{"snippet", "output"} or {"snippet", "error"} lines: the interpreter's
corners (whitespace control, loop variables, Python printing) one at a time.

With --episodes, for each template named in EPISODES_JSON and each episode
(a conversation whose assistant turns stand for a policy's sampled turns),
prints {"template", "episode", "prompts"}: apply_chat_template of the
messages before each assistant turn with the generation prompt, which is
what the policy must read before that turn (tests/policy/chat_format_test.cc);
or {"template", "episode", "error"} when the template raises.

Usage: chat_template_reference.py TEMPLATE_DIR CONVERSATIONS_JSON
       chat_template_reference.py --snippets SNIPPETS_JSON
       chat_template_reference.py --episodes TEMPLATE_DIR EPISODES_JSON
"""

import json
import sys
from pathlib import Path

import jinja2
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast
from transformers.utils.chat_template_utils import _compile_jinja_template


def make_tokenizer(chat_template, special_tokens):
    vocab = {"<unk>": 0, special_tokens["bos_token"]: 1, special_tokens["eos_token"]: 2}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=special_tokens["bos_token"],
        eos_token=special_tokens["eos_token"],
        chat_template=chat_template,
    )


def render_snippets(path):
    for snippet in json.loads(Path(path).read_text(encoding="utf-8")):
        record = {"snippet": snippet["name"]}
        try:
            template = _compile_jinja_template(snippet["template"])
            record["output"] = template.render(**snippet["context"])
        except jinja2.exceptions.TemplateError as error:
            record["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(record, ensure_ascii=False))


def render_episodes(template_dir, path):
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    for template_name, tokens in spec["templates"].items():
        chat_template = (Path(template_dir) / f"{template_name}.jinja").read_text(encoding="utf-8")
        tokenizer = make_tokenizer(chat_template, tokens)
        for episode in spec["episodes"]:
            record = {"template": template_name, "episode": episode["name"]}
            messages = episode["messages"]
            try:
                record["prompts"] = [
                    tokenizer.apply_chat_template(
                        messages[:i],
                        tools=episode.get("tools"),
                        add_generation_prompt=True,
                        tokenize=False,
                        date_string=spec["date_string"],
                    )
                    for i, message in enumerate(messages)
                    if message["role"] == "assistant"
                ]
            except jinja2.exceptions.TemplateError as error:
                record["error"] = f"{type(error).__name__}: {error}"
            print(json.dumps(record, ensure_ascii=False))


def main():
    if sys.argv[1] == "--snippets":
        render_snippets(sys.argv[2])
        return
    if sys.argv[1] == "--episodes":
        render_episodes(sys.argv[2], sys.argv[3])
        return
    template_dir = Path(sys.argv[1])
    spec = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
    for template_name, special_tokens in spec["templates"].items():
        chat_template = (template_dir / f"{template_name}.jinja").read_text(encoding="utf-8")
        tokenizer = make_tokenizer(chat_template, special_tokens)
        for conversation in spec["conversations"]:
            record = {"template": template_name, "conversation": conversation["name"]}
            try:
                record["output"] = tokenizer.apply_chat_template(
                    conversation["messages"],
                    tools=conversation.get("tools"),
                    add_generation_prompt=conversation["add_generation_prompt"],
                    tokenize=False,
                    **conversation.get("kwargs", {}),
                )
            except jinja2.exceptions.TemplateError as error:
                record["error"] = f"{type(error).__name__}: {error}"
            print(json.dumps(record, ensure_ascii=False))


if __name__ == "__main__":
    main()
