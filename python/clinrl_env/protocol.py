"""The env protocol's shapes (docs/envs.md): errors, specs, chat messages."""

import json


class ProtocolError(Exception):
    """An error reply: ``code`` is the wire code of the env protocol."""

    code = "internal"


class BadRequest(ProtocolError):
    """The request (or a reset argument such as the split) is wrong.

    Envs raise it from ``reset`` for an unknown split or task index; the
    message should name the field, the value and what was expected.
    """

    code = "bad_request"


class NotFound(ProtocolError):
    code = "not_found"


def ok_reply(**fields):
    fields["ok"] = True
    return fields


def error_reply(code, message):
    return {"ok": False, "error": {"code": code, "message": message}}


def to_messages(observation, path="observation"):
    """Turns a gymnasium observation into the protocol's chat messages.

    A string (a ``Text`` observation) becomes one ``user`` message, a
    ``{role, content}`` dict one message, and a tuple or list of those
    (``spaces.chat_messages``) is taken in order; a string inside it is a
    ``user`` message.
    """
    if isinstance(observation, str):
        return [{"role": "user", "content": observation}]
    if isinstance(observation, dict):
        observation = [observation]
    if not isinstance(observation, (list, tuple)):
        raise TypeError(
            "%s: expected a string, a {role, content} dict or a list of them, "
            "got %s" % (path, type(observation).__name__))
    messages = []
    for i, m in enumerate(observation):
        if isinstance(m, str):
            messages.append({"role": "user", "content": m})
            continue
        if (not isinstance(m, dict) or not isinstance(m.get("role"), str) or
                not isinstance(m.get("content"), str)):
            raise TypeError("%s[%d]: expected {role: str, content: str}, got %r"
                            % (path, i, m))
        messages.append({"role": m["role"], "content": m["content"]})
    return messages


POLICY_SIGNATURE = "function(env, transcript, info, rng, **options) -> str"


def env_policies(env, name):
    """The scripted policies of a gymnasium env: its ``policies`` class
    attribute, {policy name: function}, read from ``env.unwrapped`` ({} when
    it has none). Each function is called as
    ``fn(env.unwrapped, transcript, info, rng, **options)`` and returns the
    action text. Raises TypeError naming the env when the attribute is not a
    dict of str -> callable."""
    base = getattr(env, "unwrapped", env)
    policies = getattr(base, "policies", None)
    if policies is None:
        return {}
    if not isinstance(policies, dict):
        raise TypeError("env '%s': policies is a %s; expected a dict "
                        "{policy name: %s}"
                        % (name, type(policies).__name__, POLICY_SIGNATURE))
    for key, fn in policies.items():
        if not isinstance(key, str) or not key:
            raise TypeError("env '%s': policies has the key %r; expected "
                            "policy names (non-empty str)" % (name, key))
        if not callable(fn):
            raise TypeError("env '%s': policies[%r] is %r; expected a %s"
                            % (name, key, fn, POLICY_SIGNATURE))
    return dict(policies)


def env_spec(env, name):
    """The protocol's spec of a gymnasium env.

    Taken from ``clinrl_spec`` (a dict, or a method returning one) when the
    env has it, else from the attributes ``version``, ``action_format``,
    ``max_turns``, ``splits`` and ``tools`` (OpenAI function schemas the
    model may call; none by default), falling back to gymnasium's
    ``spec.max_episode_steps`` for the turn budget. Attributes are read from
    ``env.unwrapped``, as gymnasium's wrappers do not forward them.
    ``policies`` is always the sorted names of ``env_policies`` (what the
    server's ``act`` op plays), whatever ``clinrl_spec`` says.
    """
    base = getattr(env, "unwrapped", env)
    spec = getattr(base, "clinrl_spec", None)
    if callable(spec):
        spec = spec()
    spec = dict(spec or {})
    max_turns = getattr(base, "max_turns", None)
    gym_spec = getattr(env, "spec", None)
    if max_turns is None and gym_spec is not None:
        max_turns = getattr(gym_spec, "max_episode_steps", None)
    spec.setdefault("name", name)
    spec.setdefault("version", str(getattr(base, "version", "0")))
    spec.setdefault("action_format", str(getattr(base, "action_format", "")))
    spec.setdefault("max_turns", int(max_turns or 1))
    spec.setdefault("splits", dict(getattr(base, "splits", {"train": 1})))
    if not isinstance(spec["splits"], dict) or not all(
            isinstance(v, int) for v in spec["splits"].values()):
        raise TypeError("spec.splits of env '%s': expected {split: task count}"
                        % name)
    spec.setdefault("tools", list(getattr(base, "tools", None) or []))
    if not isinstance(spec["tools"], list) or not all(
            isinstance(t, dict) for t in spec["tools"]):
        raise TypeError("spec.tools of env '%s': expected a list of OpenAI "
                        "function schemas (dicts)" % name)
    spec["policies"] = sorted(env_policies(env, name))
    json.dumps(spec)  # fail here, not in a reply, if it is not JSON
    return spec
