"""The echo env in Python: the same game as the C++ echo env (envs/echo/), a
``gymnasium.Env``, used to measure the Python adapter's own cost
(``clinrl bench env``)."""

import gymnasium

from clinrl_env import spaces

WORDS = ["fever", "cough", "rash", "syncope", "dyspnea", "angina", "edema",
         "jaundice", "vertigo"]


class EchoEnv(gymnasium.Env):
    """The echo game; its scripted policy ``oracle`` says the word."""

    metadata = {"render_modes": []}
    version = "1.0"
    action_format = ("Reply with exactly the word you are asked for. Other "
                     "text is echoed back; an empty reply is an invalid action.")
    splits = {"train": 1000, "test": 100}

    def __init__(self, max_turns=8):
        self.max_turns = int(max_turns)
        self.observation_space = spaces.chat_messages()
        self.action_space = spaces.action_text()
        self.word = None
        self.turns = 0
        self.invalid = 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        split = options.get("split", "train")
        if split not in self.splits:
            raise ValueError("reset.split: got %r, expected one of: train, test"
                             % split)
        index = options.get("task_index")
        if index is None:
            # Neither index nor seed: task 0, as in the C++ echo env.
            index = (seed or 0) % self.splits[split]
        if not 0 <= index < self.splits[split]:
            raise ValueError("reset.task_index: got %d, expected 0..%d"
                             % (index, self.splits[split] - 1))
        shift = 4 if split == "test" else 0
        self.word = "%s-%d" % (WORDS[(index + shift) % len(WORDS)], index)
        self.turns = 0
        self.invalid = 0
        return ({"role": "system", "content": self.action_format},
                {"role": "user", "content": "Say the word: " + self.word}), \
            {"task_index": index, "invalid_actions": 0}

    def step(self, action):
        self.turns += 1
        reward, terminated = 0.0, False
        if not action.strip():
            self.invalid += 1
            obs = "Invalid action: the reply is empty; expected a word."
        elif action == self.word:
            reward, terminated, obs = 1.0, True, "Correct."
        else:
            obs = spaces.fit_text(action)
        truncated = not terminated and self.turns >= self.max_turns
        info = {"turn": self.turns, "invalid_actions": self.invalid}
        if terminated or truncated:
            info["metrics"] = {"correct": 1.0 if terminated else 0.0,
                               "cost": 0.0}
        return ({"role": "user", "content": obs},), reward, terminated, \
            truncated, info

    def truncate(self):
        """The runtime cut the episode: it ends as at the turn limit, the
        word not said (docs/envs.md)."""
        info = {"turn": self.turns, "invalid_actions": self.invalid,
                "metrics": {"correct": 0.0, "cost": 0.0}}
        return (), 0.0, False, True, info

    # Scripted policy (the server's act op): fn(env, transcript, info, rng).
    def oracle(self, transcript, info, rng):
        """Says the word asked for."""
        if self.word is None:
            raise RuntimeError("oracle before reset")
        return self.word

    policies = {"oracle": oracle}
