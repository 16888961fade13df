"""An example clinical env in Python: a short emergency-triage quiz.

Each task is a patient arriving at the emergency department. The agent may ask
for the vital signs or the history (each question costs one unit) and must
assign an Emergency Severity Index level, 1 (resuscitation) to 5 (non-urgent).
A plain ``gymnasium.Env``; served with
``python -m clinrl_env serve --env clinrl_env.triage_quiz:TriageQuizEnv``,
or made with ``gymnasium.make("clinrl/TriageQuiz-v0")`` after
``import clinrl_env``.
"""

import re

import gymnasium

from clinrl_env import spaces
from clinrl_env.protocol import BadRequest

# (chief complaint, vital signs, history, ESI level). Levels follow the ESI
# handbook's decision points: immediate life-saving intervention (1), high
# risk or severe pain/distress (2), two or more resources (3), one (4), none (5).
CASES = [
    ("58-year-old man with crushing chest pain for 30 minutes, sweating.",
     "HR 112, BP 94/60, RR 24, SpO2 91%.",
     "Smoker, hypertension, diabetes.", 2),
    ("24-year-old woman with a sprained-looking ankle after a fall.",
     "HR 84, BP 122/76, RR 14, SpO2 99%.",
     "Healthy; can bear weight with pain.", 4),
    ("70-year-old woman found unresponsive, breathing slowly.",
     "HR 44, BP 70/40, RR 6, SpO2 82%.",
     "On opioids for back pain.", 1),
    ("35-year-old man with a sore throat for two days.",
     "HR 78, BP 118/70, RR 14, SpO2 99%, T 37.6 C.",
     "No difficulty swallowing or breathing.", 5),
    ("45-year-old woman with right lower abdominal pain and vomiting.",
     "HR 98, BP 128/80, RR 18, SpO2 98%, T 38.1 C.",
     "Pain started around the umbilicus yesterday.", 3),
    ("8-year-old boy with a cut on his finger, bleeding controlled.",
     "HR 90, BP 104/66, RR 18, SpO2 100%.",
     "Up-to-date vaccinations.", 4),
    ("66-year-old man with sudden left arm weakness and slurred speech.",
     "HR 88, BP 182/100, RR 16, SpO2 97%.",
     "Symptoms began 40 minutes ago.", 2),
    ("29-year-old woman with a rash after starting an antibiotic; throat "
     "tightness and wheeze.",
     "HR 124, BP 80/50, RR 28, SpO2 89%.",
     "Started amoxicillin this morning.", 1),
    ("52-year-old man requesting a prescription refill for blood pressure "
     "tablets.",
     "HR 72, BP 138/86, RR 12, SpO2 99%.",
     "Ran out yesterday; no symptoms.", 5),
]
TRAIN = list(range(6))
TEST = list(range(6, 9))
ACTION = re.compile(r"^\s*(?:ASK\s+(vitals|history)|ANSWER:\s*ESI\s*([1-5]))"
                    r"\s*\.?\s*$", re.IGNORECASE)
# What the random policy picks from, uniformly.
RANDOM_ACTIONS = (["ASK vitals", "ASK history"] +
                  ["ANSWER: ESI %d" % level for level in range(1, 6)])


def _asks_vitals(message):
    """Whether a transcript message is the agent's 'ASK vitals'."""
    if message["role"] != "assistant":
        return False
    match = ACTION.match(message["content"])
    return bool(match and match.group(1) and
                match.group(1).lower() == "vitals")


class TriageQuizEnv(gymnasium.Env):
    """Observations are tuples of chat messages (``spaces.chat_messages``):
    the system prompt and the complaint at reset, one ``user`` message per
    step. Actions are the agent's text. What the env protocol needs beyond
    gymnasium (docs/envs.md): the class attributes ``version``,
    ``action_format``, ``splits`` and ``max_turns``, and the reset options
    ``split`` and ``task_index``.

    Scripted policies (the ``policies`` attribute; the server's ``act`` op
    plays them, e.g. for ``clinrl env eval --endpoint`` and baseline rows):

    * ``oracle``: answers the correct level at once ("ANSWER: ESI <n>");
      with the option ``ask_vitals=True`` it first asks "ASK vitals" (unless
      the transcript shows it already did) and answers on the next turn.
    * ``random``: one of 'ASK vitals', 'ASK history', 'ANSWER: ESI 1'..'5',
      uniformly, drawn with the episode's ``rng``."""

    metadata = {"render_modes": []}
    version = "1.0"
    action_format = ("One action per turn: 'ASK vitals', 'ASK history' (each "
                     "costs 1), or 'ANSWER: ESI <1-5>' to assign the Emergency "
                     "Severity Index and end the episode.")
    splits = {"train": len(TRAIN), "test": len(TEST)}
    max_turns = 4

    def __init__(self, max_turns=4):
        if (not isinstance(max_turns, int) or isinstance(max_turns, bool) or
                max_turns < 1):
            raise ValueError("options.max_turns: got %r, expected an integer "
                             ">= 1" % (max_turns,))
        self.max_turns = max_turns
        self.observation_space = spaces.chat_messages()
        self.action_space = spaces.action_text()
        self.case = None
        self.done = True

    def reset(self, seed=None, options=None):
        # Seeds self.np_random, which picks the task when no index is given.
        super().reset(seed=seed)
        options = options or {}
        split = options.get("split", "train")
        if split not in self.splits:
            raise ValueError("reset.split: got %r, expected one of: %s"
                             % (split, ", ".join(sorted(self.splits))))
        tasks = TRAIN if split == "train" else TEST
        index = options.get("task_index")
        if index is None:
            index = int(self.np_random.integers(len(tasks)))
        if not 0 <= index < len(tasks):
            raise ValueError("reset.task_index: got %d, expected 0..%d for "
                             "split %r" % (index, len(tasks) - 1, split))
        self.case = CASES[tasks[index]]
        self.turns = 0
        self.cost = 0
        self.invalid = 0
        self.done = False
        expected = "ESI %d" % self.case[3]
        info = {
            "task_index": index,
            "invalid_actions": 0,
            "reward_spec": {
                "components": [{"name": "triage", "plugin": "exact_match",
                                "weight": 1.0,
                                "params": {"expected": [expected]}}],
                "success": "triage",
            },
        }
        return ({"role": "system", "content": "You are an emergency triage "
                 "nurse. " + self.action_format},
                {"role": "user", "content": self.case[0]}), info

    def step(self, action):
        if self.case is None or self.done:
            raise RuntimeError("step before reset or after the episode ended")
        self.turns += 1
        reward, terminated, correct = 0.0, False, None
        match = ACTION.match(action)
        if match is None:
            self.invalid += 1
            obs = spaces.fit_text(
                "Invalid action %r: expected 'ASK vitals', 'ASK history' or "
                "'ANSWER: ESI <1-5>'." % action[:80])
        elif match.group(1):
            self.cost += 1
            field = match.group(1).lower()
            obs = self.case[1] if field == "vitals" else self.case[2]
        else:
            level = int(match.group(2))
            correct = level == self.case[3]
            reward = 1.0 if correct else 0.0
            terminated = True
            obs = "Triage recorded: ESI %d." % level
        truncated = not terminated and self.turns >= self.max_turns
        self.done = terminated or truncated
        info = {"turn": self.turns, "invalid_actions": self.invalid,
                "cost": self.cost}
        if self.done:
            info["metrics"] = {"correct": 1.0 if correct else 0.0,
                               "cost": float(self.cost)}
        return (({"role": "user", "content": obs},), reward, terminated,
                truncated, info)

    def truncate(self):
        """The runtime cut the episode (its token budget, say): it ends as at
        the turn limit, with no level assigned, so ``correct`` is 0 and the
        cost is what the questions so far cost (docs/envs.md)."""
        if self.case is None or self.done:
            raise RuntimeError("truncate before reset or after the episode "
                               "ended")
        self.done = True
        info = {"turn": self.turns, "invalid_actions": self.invalid,
                "cost": self.cost,
                "metrics": {"correct": 0.0, "cost": float(self.cost)}}
        return (), 0.0, False, True, info

    # -- scripted policies: fn(env, transcript, info, rng, **options) -------

    def oracle(self, transcript, info, rng, ask_vitals=False):
        if not isinstance(ask_vitals, bool):
            raise BadRequest("request.options.ask_vitals: got %r, expected "
                             "true or false" % (ask_vitals,))
        if self.case is None:
            raise RuntimeError("oracle before reset")
        if ask_vitals and not any(_asks_vitals(m) for m in transcript):
            return "ASK vitals"
        return "ANSWER: ESI %d" % self.case[3]

    def guess(self, transcript, info, rng):
        return RANDOM_ACTIONS[int(rng.integers(len(RANDOM_ACTIONS)))]

    policies = {"oracle": oracle, "random": guess}
