"""The official `openai` client against a running `clinrl serve`.

Usage: openai_client_test.py BASE_URL MODEL_NAME MODEL_DIR

Run by tests/serve/serve_cli_test.cc on a tiny random model (MODEL_DIR, the
served folder, for the reference log-probs transformers computes from the
same files); exits non-zero
(with the failing check) on any mismatch, and prints one JSON line of figures
(the 32-client wall time, the largest batch the engine ran) at the end.
Every call has a timeout and no retries, so a hung server fails the test.
"""
import concurrent.futures
import json
import math
import sys
import time
import urllib.error
import urllib.request

import openai  # a missing package fails the test: it is in launch/requirements.txt

TIMEOUT_S = 120
BASE, MODEL, MODEL_DIR = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=BASE + "/v1", api_key="unused",
                       timeout=TIMEOUT_S, max_retries=0)
MESSAGES = [{"role": "system", "content": "You are a clinician."},
            {"role": "user", "content": "BP 120/80, HR 72. Next step?"}]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def greedy_chat(**extra):
    return client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0, max_tokens=12, **extra)


def test_models():
    ids = [m.id for m in client.models.list().data]
    check(ids == [MODEL], f"models.list: {ids}, expected [{MODEL!r}]")


def test_chat_is_deterministic_when_greedy():
    a, b = greedy_chat(), greedy_chat()
    check(a.choices[0].message.content == b.choices[0].message.content,
          f"greedy twice differs: {a.choices[0].message.content!r} vs "
          f"{b.choices[0].message.content!r}")
    check(a.object == "chat.completion", f"object {a.object}")
    check(a.choices[0].finish_reason in ("stop", "length"),
          f"finish_reason {a.choices[0].finish_reason}")
    u = a.usage
    check(u.prompt_tokens > 0 and 0 < u.completion_tokens <= 12 and
          u.total_tokens == u.prompt_tokens + u.completion_tokens,
          f"usage {u}")
    return a.choices[0].message.content


def streamed_text(stream):
    parts, reasons = [], []
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    check(len(reasons) == 1, f"finish reasons in stream: {reasons}")
    return "".join(parts)


def test_stream_matches(greedy_text):
    text = streamed_text(greedy_chat(stream=True))
    check(text == greedy_text, f"streamed {text!r} != greedy {greedy_text!r}")
    # Sampled with a seed: varied bytes (characters split across tokens)
    # must stream to the same text as the whole answer.
    sampled = dict(model=MODEL, messages=MESSAGES, temperature=1.0, seed=11,
                   max_tokens=40)
    whole = client.chat.completions.create(**sampled).choices[0].message.content
    text = streamed_text(client.chat.completions.create(stream=True, **sampled))
    check(text == whole, f"streamed {text!r} != whole {whole!r}")
    check(len(set(whole)) > 3, f"sampled text too uniform to test: {whole!r}")


def test_logprobs():
    r = greedy_chat(logprobs=True)
    lp = r.choices[0].logprobs.content
    check(len(lp) == r.usage.completion_tokens,
          f"{len(lp)} logprobs for {r.usage.completion_tokens} tokens")
    check(all(t.logprob <= 0 for t in lp), "a logprob > 0")


def check_top_entries(tokens, k, what):
    """Each token's top list: k entries, descending, total probability at
    most 1, and the sampled token's logprob equal to its entry whenever it
    must be in the list (it is likelier than the last entry)."""
    for j, t in enumerate(tokens):
        top = t.top_logprobs
        values = [e.logprob for e in top]
        check(len(top) == k, f"{what} token {j}: {len(top)} entries, not {k}")
        check(values == sorted(values, reverse=True),
              f"{what} token {j}: not descending: {values}")
        check(sum(math.exp(v) for v in values) <= 1 + 1e-5,
              f"{what} token {j}: probabilities sum above 1: {values}")
        # A token that holds part of a character decodes to U+FFFD; its
        # bytes are its own.
        check(all(bytes(e.bytes).decode("utf-8") == e.token
                  for e in top if "\ufffd" not in e.token),
              f"{what} token {j}: bytes differ from token: {top}")
        if t.logprob > values[-1]:
            check(any(e.token == t.token and e.logprob == t.logprob
                      for e in top),
                  f"{what} token {j}: {t.token!r} {t.logprob} is likelier "
                  f"than the last entry but not in {top}")


def logprob_entries(tokens):
    return [(t.token, t.logprob, [(e.token, e.logprob) for e in t.top_logprobs])
            for t in tokens]


def same_entries(a, b, tol=1e-5):
    """Equal tokens and log-probs within `tol`: a later request adopts the
    earlier one's cached prompt blocks, which can move the last bits."""
    def flat(entries):
        for token, logprob, top in entries:
            yield token, logprob
            yield from top
    fa, fb = list(flat(a)), list(flat(b))
    return len(fa) == len(fb) and all(
        x[0] == y[0] and abs(x[1] - y[1]) <= tol for x, y in zip(fa, fb))


def streamed_logprobs(**request):
    entries = []
    for chunk in client.chat.completions.create(stream=True, **request):
        for choice in chunk.choices:
            if choice.logprobs and choice.logprobs.content:
                entries += logprob_entries(choice.logprobs.content)
    return entries


def test_top_logprobs():
    greedy = dict(model=MODEL, messages=MESSAGES, temperature=0, max_tokens=12,
                  logprobs=True, top_logprobs=5)
    sampled = dict(greedy, temperature=1.3, seed=7, max_tokens=24)
    results = {}
    for name, request in (("greedy", greedy), ("sampled", sampled)):
        r = client.chat.completions.create(**request)
        tokens = r.choices[0].logprobs.content
        check(len(tokens) == r.usage.completion_tokens,
              f"{name}: {len(tokens)} entries for "
              f"{r.usage.completion_tokens} tokens")
        check_top_entries(tokens, 5, name)
        results[name] = tokens
        streamed = streamed_logprobs(**request)
        check(same_entries(streamed, logprob_entries(tokens)),
              f"{name}: streamed logprobs differ from the whole answer's:\n"
              f"{streamed}\n{logprob_entries(tokens)}")
    # Greedy picks the most likely token of the reported distribution.
    check(all(t.top_logprobs[0].logprob == t.logprob
              for t in results["greedy"]), "greedy token not the top entry")
    # The reported distribution is the raw logits' (temperature 1), as
    # vLLM's and OpenAI's: the first token's list, computed from the same
    # prompt, does not depend on the temperature it was sampled at.
    first = [logprob_entries(results[name][:1])[0][2]
             for name in ("greedy", "sampled")]
    check(same_entries([("", 0, first[0])], [("", 0, first[1])]),
          f"the first token's top list depends on the temperature: {first}")
    sampled_varied = len({t.token for t in results["sampled"]}) > 3
    check(sampled_varied, "sampled reply too uniform to test")


def test_completion_top_logprobs():
    request = dict(model=MODEL, prompt="BP 120/80", max_tokens=8,
                   temperature=0, logprobs=3)
    r = client.completions.create(**request)
    lp = r.choices[0].logprobs
    n = r.usage.completion_tokens
    check(len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) ==
          len(lp.text_offset) == n, f"completions logprobs lengths: {lp}")
    offset = 0
    for j in range(n):
        top = lp.top_logprobs[j]
        check(1 <= len(top) <= 3, f"token {j}: {top}")
        check(max(top.values()) == lp.token_logprobs[j],
              f"token {j}: greedy token {lp.token_logprobs[j]} is not the "
              f"most likely in {top}")
        check(lp.text_offset[j] == offset, f"text_offset {lp.text_offset}")
        offset += len(lp.tokens[j].encode("utf-8"))
    parts = {"tokens": [], "token_logprobs": [], "top_logprobs": [],
             "text_offset": []}
    for chunk in client.completions.create(stream=True, **request):
        for choice in chunk.choices:
            if choice.logprobs:
                for key in parts:
                    parts[key] += getattr(choice.logprobs, key)
    whole = {key: getattr(lp, key) for key in parts}
    check(parts["tokens"] == whole["tokens"] and
          parts["text_offset"] == whole["text_offset"] and
          all(abs(x - y) <= 1e-5 for x, y in
              zip(parts["token_logprobs"], whole["token_logprobs"])) and
          [list(d) for d in parts["top_logprobs"]] ==
          [list(d) for d in whole["top_logprobs"]] and
          all(abs(d[k] - e[k]) <= 1e-5 for d, e in
              zip(parts["top_logprobs"], whole["top_logprobs"]) for k in d),
          f"streamed completion logprobs {parts} != {whole}")


def test_logprobs_match_transformers():
    """The first generated token's top-5 against torch.log_softmax of the
    logits transformers computes for the same prompt from the same folder
    (tokenized by `tokenizers` from the folder's tokenizer.json)."""
    import tokenizers
    import torch
    import transformers
    prompt = "BP 120/80, HR 72."
    r = client.completions.create(model=MODEL, prompt=prompt, max_tokens=1,
                                  temperature=0, logprobs=5)
    served = sorted(r.choices[0].logprobs.top_logprobs[0].values(),
                    reverse=True)
    ids = tokenizers.Tokenizer.from_file(MODEL_DIR + "/tokenizer.json").encode(
        prompt, add_special_tokens=False).ids
    model = transformers.AutoModelForCausalLM.from_pretrained(
        MODEL_DIR, dtype=torch.float32)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    reference = torch.log_softmax(logits.double(), -1).topk(5)
    expected = reference.values.tolist()
    # Tokens that decode to the same text share one key of the dict.
    check(len(served) <= 5 and all(
        any(abs(s - e) < 1e-4 for e in expected) for s in served) and
          abs(served[0] - expected[0]) < 1e-4,
          f"served top-5 {served} != transformers' {expected}")
    check(r.choices[0].logprobs.token_logprobs[0] == served[0],
          "greedy token's logprob is not the top entry")
    # Chat lists all five (no dict to merge equal texts): the model folder
    # has no template, so the server formats the chat as ChatML.
    chat = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}],
        max_tokens=1, temperature=0, logprobs=True, top_logprobs=5)
    served = [e.logprob for e in chat.choices[0].logprobs.content[0].top_logprobs]
    chatml = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizers.Tokenizer.from_file(MODEL_DIR + "/tokenizer.json").encode(
        chatml, add_special_tokens=False).ids
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    expected = torch.log_softmax(logits.double(), -1).topk(5).values.tolist()
    check(len(served) == 5 and
          all(abs(s - e) < 1e-4 for s, e in zip(served, expected)),
          f"served chat top-5 {served} != transformers' {expected}")


def expect_bad_logprobs():
    expect_bad_request("top_logprobs", messages=MESSAGES, top_logprobs=3)
    expect_bad_request("top_logprobs", messages=MESSAGES, logprobs=True,
                       top_logprobs=21)
    expect_bad_request("top_logprobs", messages=MESSAGES, logprobs=True,
                       top_logprobs=-1)
    try:
        client.completions.create(model=MODEL, prompt="a", logprobs=50)
        raise AssertionError("completions logprobs=50 was accepted")
    except openai.BadRequestError as e:
        check("logprobs: 50 is not allowed" in str(e), f"logprobs=50: {e}")


def test_n_choices():
    r = client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                       n=3, temperature=1.0, seed=5,
                                       max_tokens=8)
    check([c.index for c in r.choices] == [0, 1, 2],
          f"indices {[c.index for c in r.choices]}")


def test_completions():
    r = client.completions.create(model=MODEL, prompt="BP 120/80",
                                  max_tokens=8, temperature=0)
    check(len(r.choices) == 1 and isinstance(r.choices[0].text, str),
          f"completions: {r}")
    r = client.completions.create(model=MODEL, prompt=["HR 72", "T 37.2"],
                                  max_tokens=4, temperature=0)
    check([c.index for c in r.choices] == [0, 1], f"two prompts: {r}")


def one_client(i):
    r = client.chat.completions.create(
        model=MODEL, temperature=0.7, seed=i, max_tokens=16,
        messages=[{"role": "user", "content": f"Patient {i}: fever."}])
    c = r.choices[0]
    check(c.finish_reason in ("stop", "length") and
          r.usage.completion_tokens > 0, f"client {i}: {r}")
    return r.usage.completion_tokens


def test_concurrent_clients():
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        futures = [pool.submit(one_client, i) for i in range(32)]
        done, pending = concurrent.futures.wait(futures, timeout=TIMEOUT_S)
        check(not pending, f"{len(pending)} of 32 clients unanswered")
        tokens = sum(f.result() for f in done)
    return time.monotonic() - start, tokens


def get_json(path):
    with urllib.request.urlopen(BASE + path, timeout=30) as r:
        return json.load(r)


def expect_bad_request(field, **kwargs):
    try:
        client.chat.completions.create(model=MODEL, **kwargs)
    except openai.BadRequestError as e:
        check(field in str(e), f"error does not name {field}: {e}")
        return
    raise AssertionError(f"{kwargs} was accepted; expected a 400 naming {field}")


def test_bad_requests():
    expect_bad_request("temperature", messages=MESSAGES, temperature=-1)
    expect_bad_request("n", messages=MESSAGES, n=0)
    expect_bad_request("messages[0].role",
                       messages=[{"role": "robot", "content": "hi"}])
    expect_bad_request("messages", messages=[
        {"role": "user", "content": "x" * 400}])  # > 256 positions
    expect_bad_logprobs()
    request = urllib.request.Request(
        BASE + "/v1/chat/completions", data=b"{not json",
        headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("bad JSON was accepted")
    except urllib.error.HTTPError as e:
        body = json.load(e)
        check(e.code == 400 and "JSON" in body["error"]["message"],
              f"bad JSON: {e.code} {body}")


def main():
    test_models()
    # First, while every earlier request ran alone (n=1, one at a time): the
    # largest batch can then only come from the concurrent clients.
    check(get_json("/v1/stats")["max_batch"] <= 1, "batched before the test")
    wall_s, tokens = test_concurrent_clients()
    stats = get_json("/v1/stats")
    check(stats["max_batch"] > 1,
          f"the engine never batched: largest batch {stats['max_batch']}")
    greedy_text = test_chat_is_deterministic_when_greedy()
    test_stream_matches(greedy_text)
    test_logprobs()
    test_top_logprobs()
    test_completion_top_logprobs()
    test_logprobs_match_transformers()
    test_n_choices()
    test_completions()
    test_bad_requests()
    test_models()  # still answering after the bad requests
    check(greedy_chat().choices[0].message.content == greedy_text,
          "greedy answer changed after the bad requests")
    print(json.dumps({"ok": True, "clients": 32, "wall_s": round(wall_s, 3),
                      "completion_tokens": tokens,
                      "max_batch": stats["max_batch"],
                      "steps": stats["steps"]}))


if __name__ == "__main__":
    main()
