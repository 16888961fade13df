"""Serve gymnasium-style environments over the clinrl env protocol.

Any object with ``reset(seed=None, options=None) -> (obs, info)`` and
``step(action) -> (obs, reward, terminated, truncated, info)`` can be served;
gymnasium itself is not needed (its API is duck-typed). See docs/envs.md.
"""

from clinrl_env.protocol import BadRequest, NotFound, env_spec, to_messages
from clinrl_env.server import EnvServer

__all__ = ["BadRequest", "NotFound", "EnvServer", "env_spec", "to_messages"]
