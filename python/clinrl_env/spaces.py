"""gymnasium spaces for chat envs: what the env protocol carries, declared
with gymnasium's own ``Text``, ``Dict`` and ``Sequence``.

- ``action_text()``: the agent's reply. The server passes the agent's text to
  ``step`` as is, which may hold characters outside the space's charset: the
  space says what a sampler (``check_env``, a random baseline) draws, and an
  env treats any text it cannot parse as an invalid action.
- ``chat_messages()``: an observation that is a tuple of ``{"role",
  "content"}`` dicts, e.g. a system prompt and the first user turn at reset.
  An env may also declare ``Text`` and return a plain ``str``; the server
  sends it as one ``user`` message (see ``protocol.to_messages``).

gymnasium's ``Text`` needs a finite charset: ``TEXT_CHARSET`` is printable
ASCII, its whitespace, the printable Latin-1 range and common typographic
marks. ``fit_text`` escapes anything else (``\\u2603``) so that an env that
echoes the agent's text still returns an observation inside its space.
"""

import string

from gymnasium import spaces

TEXT_CHARSET = frozenset(
    string.printable + "".join(chr(c) for c in range(0xA0, 0x100)) +
    "\u2010\u2011\u2012\u2013\u2014\u2018\u2019\u201c\u201d\u2022\u2026"
    "\u2030\u2032\u2033\u2190\u2191\u2192\u2193\u2212\u2248\u2260\u2264"
    "\u2265")
ROLE_CHARSET = frozenset(string.ascii_lowercase + "_")
MAX_TEXT = 8192


def fit_text(text):
    """``text`` with every character outside TEXT_CHARSET escaped
    (``\\xNN``/``\\uNNNN``), cut to MAX_TEXT characters."""
    if all(c in TEXT_CHARSET for c in text):
        return text[:MAX_TEXT]
    return "".join(c if c in TEXT_CHARSET else ascii(c)[1:-1]
                   for c in text)[:MAX_TEXT]


def action_text(max_length=MAX_TEXT):
    """The agent's reply; empty is allowed (and is an invalid action)."""
    return spaces.Text(max_length, min_length=0, charset=TEXT_CHARSET)


def message():
    """One chat message: ``{"role": "system"|"user"|..., "content": str}``."""
    return spaces.Dict({
        "role": spaces.Text(32, min_length=1, charset=ROLE_CHARSET),
        "content": spaces.Text(MAX_TEXT, min_length=0, charset=TEXT_CHARSET),
    })


def chat_messages():
    """A tuple of chat messages (gymnasium's ``Sequence`` holds tuples)."""
    return spaces.Sequence(message(), stack=False)
