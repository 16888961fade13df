"""Serve gymnasium envs over the clinrl env protocol (docs/envs.md).

Any ``gymnasium.Env`` whose actions are text (``gymnasium.spaces.Text``) can
be served; observations are a ``str`` or chat messages (``clinrl_env.spaces``).
Importing the package registers the examples with gymnasium as
``clinrl/TriageQuiz-v0`` and ``clinrl/Echo-v0``.
"""

import gymnasium

from clinrl_env.protocol import BadRequest, NotFound, env_spec, to_messages
from clinrl_env.server import EnvServer, check_served_env

__all__ = ["BadRequest", "NotFound", "EnvServer", "check_served_env",
           "env_spec", "to_messages"]

for _id, _entry in (("clinrl/TriageQuiz-v0",
                     "clinrl_env.triage_quiz:TriageQuizEnv"),
                    ("clinrl/Echo-v0", "clinrl_env.echo:EchoEnv")):
    if _id not in gymnasium.registry:  # importlib.reload must not warn
        gymnasium.register(id=_id, entry_point=_entry)
