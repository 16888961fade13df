"""The official `openai` client against a running `clinrl serve`.

Usage: openai_client_test.py BASE_URL MODEL_NAME

Run by tests/serve/serve_cli_test.cc on a tiny random model; exits non-zero
(with the failing check) on any mismatch, and prints one JSON line of figures
(the 32-client wall time, the largest batch the engine ran) at the end.
Every call has a timeout and no retries, so a hung server fails the test.
"""
import concurrent.futures
import json
import sys
import time
import urllib.error
import urllib.request

import openai  # a missing package fails the test: it is in launch/requirements.txt

TIMEOUT_S = 120
BASE, MODEL = sys.argv[1], sys.argv[2]
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
