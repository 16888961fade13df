"""Streamed tool calls through the official `openai` client.

Usage: openai_tool_stream_test.py BASE_URL MODEL_NAME

Run by tests/serve/serve_cli_test.cc against a served model whose greedy
reply is fixed: "Let me check." and two Hermes `<tool_call>` blocks, the
first tag split over three tokens. The streamed deltas, joined the way
clients join them (content concatenated, tool_calls merged by index with
their arguments concatenated), must equal the non-streamed message, no
content delta may show any part of a tag, and the stream must end with
finish_reason "tool_calls". Exits non-zero with the failing check.
"""
import json
import sys

import openai  # a missing package fails the test: it is in launch/requirements.txt

TIMEOUT_S = 120
BASE, MODEL = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=BASE + "/v1", api_key="unused",
                       timeout=TIMEOUT_S, max_retries=0)
TOOLS = [{"type": "function", "function": {
    "name": "get_vitals", "description": "The patient's vitals",
    "parameters": {"type": "object",
                   "properties": {"patient": {"type": "string"}}}}},
         {"type": "function", "function": {
             "name": "get_labs", "parameters": {"type": "object"}}}]
REQUEST = dict(model=MODEL, tools=TOOLS, temperature=0, max_tokens=64,
               messages=[{"role": "user", "content": "How is p7?"}])
EXPECTED_CALLS = [("get_vitals", {"patient": "p7"}), ("get_labs", {})]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def whole_answer():
    r = client.chat.completions.create(**REQUEST)
    choice = r.choices[0]
    check(choice.finish_reason == "tool_calls",
          f"finish_reason {choice.finish_reason}: {r}")
    check(choice.message.content == "Let me check.",
          f"content {choice.message.content!r}")
    calls = [(c.id, c.function.name, c.function.arguments)
             for c in choice.message.tool_calls]
    got = [(name, json.loads(arguments)) for _, name, arguments in calls]
    check(got == EXPECTED_CALLS, f"tool calls {calls}")
    return choice.message.content, calls


def streamed_answer(**extra):
    content, calls, reasons, chunks = [], {}, [], 0
    for chunk in client.chat.completions.create(stream=True, **REQUEST,
                                                **extra):
        chunks += 1
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                check("<" not in delta.content,
                      f"a tag leaked into content: {delta.content!r}")
                content.append(delta.content)
            for call in delta.tool_calls or []:
                entry = calls.setdefault(call.index,
                                         {"id": None, "name": "", "args": ""})
                if call.id:
                    entry["id"] = call.id
                check(call.type in (None, "function"), f"type {call.type}")
                if call.function and call.function.name:
                    entry["name"] += call.function.name
                if call.function and call.function.arguments:
                    entry["args"] += call.function.arguments
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    check(reasons == ["tool_calls"], f"finish reasons {reasons}")
    check(sorted(calls) == list(range(len(calls))),
          f"tool call indices {sorted(calls)}")
    return ("".join(content) or None,
            [(calls[k]["id"], calls[k]["name"], calls[k]["args"])
             for k in sorted(calls)], chunks)


def main():
    content, calls = whole_answer()
    s_content, s_calls, chunks = streamed_answer()
    check(s_content == content, f"streamed content {s_content!r} != {content!r}")
    check([c[1:] for c in s_calls] == [c[1:] for c in calls],
          f"streamed calls {s_calls} != {calls}")
    check(all(c[0] for c in s_calls) and
          len({c[0] for c in s_calls}) == len(s_calls),
          f"streamed call ids {[c[0] for c in s_calls]}")
    # With log-probs asked for, every token's entry still arrives once,
    # riding on the content and tool_calls chunks.
    entries = 0
    for chunk in client.chat.completions.create(
            stream=True, logprobs=True, top_logprobs=2, **REQUEST,
            stream_options={"include_usage": True}):
        for choice in chunk.choices:
            if choice.logprobs and choice.logprobs.content:
                entries += len(choice.logprobs.content)
                for t in choice.logprobs.content:
                    check(len(t.top_logprobs) == 2 and
                          t.top_logprobs[0].token == t.token,
                          f"greedy token not first in its top list: {t}")
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    check(entries == tokens, f"{entries} logprob entries for {tokens} tokens")
    print(json.dumps({"ok": True, "chunks": chunks,
                      "tool_calls": [c[1] for c in s_calls]}))


if __name__ == "__main__":
    main()
