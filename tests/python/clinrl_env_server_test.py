"""Unit tests of the Python env adapter (python/clinrl_env): its envs pass
gymnasium's own env checker, and the server, over a real ZeroMQ socket,
serves gymnasium envs (plain and gymnasium.make-wrapped) and handles
malformed requests, env exceptions, idle reclaim and envelopes, and plays the
envs' scripted policies (the act op)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

try:
    import gymnasium
    from gymnasium.utils.env_checker import check_env
    import zmq
except ImportError as e:
    raise SystemExit("clinrl_env_server_test: %s; launch/setup installs "
                     "gymnasium and pyzmq into the venv (launch/requirements.txt)"
                     % e)

import clinrl_env  # registers clinrl/TriageQuiz-v0 and clinrl/Echo-v0
from clinrl_env import spaces
from clinrl_env.echo import EchoEnv
from clinrl_env.server import EnvServer
from clinrl_env.triage_quiz import TriageQuizEnv


class ExplodingEnv(EchoEnv):
    def step(self, action):
        if action == "boom":
            raise RuntimeError("the env exploded")
        obs, reward, terminated, truncated, info = super().step(action)
        if action == "unencodable":
            info["thing"] = object()
        return obs, reward, terminated, truncated, info


class WrongTruncateEnv(EchoEnv):
    """A truncate() that does not end the episode: an env bug."""

    def truncate(self):
        return (), 0.0, True, False, {}


class NoTruncateEnv(EchoEnv):
    """The echo game without a truncate(), as most gymnasium envs are."""

    truncate = None


class PlainTextEnv(gymnasium.Env):
    """A Text observation: each str is sent as one user message."""

    observation_space = gymnasium.spaces.Text(64, charset=spaces.TEXT_CHARSET)
    action_space = spaces.action_text()
    action_format = "anything"

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return "hello", {"invalid_actions": 0}

    def step(self, action):
        return "you said " + spaces.fit_text(action), 0.0, True, False, {}


class NotAGymnasiumEnv:
    """gymnasium's method names, but not a gymnasium.Env."""

    def reset(self, seed=None, options=None):
        return "x", {}

    def step(self, action):
        return "x", 0.0, True, False, {}


class DiscreteActionEnv(PlainTextEnv):
    action_space = gymnasium.spaces.Discrete(3)


class PolicyBugsEnv(EchoEnv):
    """Scripted policies with bugs: the server answers, never crashes."""

    def boom(self, transcript, info, rng):
        raise ValueError("the policy exploded")

    def inner_type_error(self, transcript, info, rng, level=1):
        return "x" + level  # a TypeError inside the call, not of its options

    def number(self, transcript, info, rng):
        return 42

    def echo_info(self, transcript, info, rng, **options):
        return json.dumps({"info": info, "options": options,
                           "transcript": transcript}, sort_keys=True)

    policies = {"boom": boom, "inner_type_error": inner_type_error,
                "number": number, "echo_info": echo_info}


class ToolsEnv(EchoEnv):
    tools = [{"type": "function",
              "function": {"name": "say",
                           "description": "Say a word.",
                           "parameters": {
                               "type": "object",
                               "properties": {"word": {"type": "string"}},
                               "required": ["word"]}}}]


class PoliciesNotADictEnv(EchoEnv):
    policies = ["oracle"]


class PolicyNotCallableEnv(EchoEnv):
    policies = {"oracle": "say the word"}


class PolicyNameNotAStrEnv(EchoEnv):
    policies = {1: EchoEnv.oracle}


def made_triage_quiz():
    """The served env as gymnasium.make builds it: wrapped in gymnasium's
    OrderEnforcing and PassiveEnvChecker, which check every call."""
    return gymnasium.make("clinrl/TriageQuiz-v0")


class GymnasiumCheckerTest(unittest.TestCase):
    """gymnasium.utils.env_checker.check_env, its warnings made errors (an
    observation outside the space is only a warning in the passive checks)."""

    def check(self, env):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env, skip_render_check=True)

    def test_triage_quiz_passes_check_env(self):
        self.check(TriageQuizEnv())
        self.check(TriageQuizEnv(max_turns=2))

    def test_echo_passes_check_env(self):
        self.check(EchoEnv())

    def test_registered_ids_pass_check_env(self):
        for env_id in ("clinrl/TriageQuiz-v0", "clinrl/Echo-v0"):
            env = gymnasium.make(env_id)
            # The unwrapped env with its registered spec: check_env then also
            # builds and closes envs from that spec.
            self.assertIsNotNone(env.unwrapped.spec)
            self.check(env.unwrapped)
            env.close()

    def test_every_observation_of_a_whole_episode_is_in_the_space(self):
        env = TriageQuizEnv()
        obs, _ = env.reset(options={"split": "test", "task_index": 1})
        self.assertIn(obs, env.observation_space)
        self.assertEqual([m["role"] for m in obs], ["system", "user"])
        for action in ("ASK vitals", "\u2603 \x01 not an action", ""):
            obs, _, terminated, truncated, info = env.step(action)
            self.assertIn(obs, env.observation_space, action)
            self.assertFalse(terminated or truncated)
        self.assertEqual(info["invalid_actions"], 2)
        obs, reward, terminated, _, _ = env.step("ANSWER: ESI 1")  # anaphylaxis
        self.assertIn(obs, env.observation_space)
        self.assertTrue(terminated)
        self.assertEqual(reward, 1.0)

    def test_seed_picks_the_task_through_np_random(self):
        env = TriageQuizEnv()
        first = env.reset(seed=7)[1]["task_index"]
        self.assertEqual(env.reset(seed=7)[1]["task_index"], first)
        seen = {env.reset(seed=s)[1]["task_index"] for s in range(40)}
        self.assertEqual(seen, set(range(6)))

    def test_fit_text_keeps_the_space(self):
        text = "caf\u00e9 \u2603 \x00 \U0001f600 ok"
        fitted = spaces.fit_text(text)
        self.assertIn(fitted, spaces.action_text())
        self.assertEqual(fitted, "caf\u00e9 \\u2603 \\x00 \\U0001f600 ok")
        self.assertNotIn(text, spaces.action_text())


class ServedEnvTypeTest(unittest.TestCase):
    def test_a_non_gymnasium_env_is_refused_by_name(self):
        with self.assertRaisesRegex(TypeError, "env 'duck'.*gymnasium.Env"):
            EnvServer({"duck": NotAGymnasiumEnv}, "inproc://refused-duck")

    def test_a_non_text_action_space_is_refused(self):
        with self.assertRaisesRegex(TypeError,
                                    "env 'discrete': action_space.*Text"):
            EnvServer({"discrete": DiscreteActionEnv}, "inproc://refused-d")

    def test_the_command_line_names_what_is_wrong(self):
        r = subprocess.run(
            [sys.executable, "-m", "clinrl_env", "serve", "--env",
             "clinrl_env_server_test:NotAGymnasiumEnv", "--name", "duck",
             "--endpoint", "inproc://cli-refused"],
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("serve: env 'duck'", r.stderr)
        self.assertIn("gymnasium.Env", r.stderr)

    def test_a_non_loopback_endpoint_needs_insecure(self):
        r = subprocess.run(
            [sys.executable, "-m", "clinrl_env", "serve", "--env",
             "clinrl_env.echo:EchoEnv", "--endpoint", "tcp://*:0"],
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--endpoint: got 'tcp://*:0'", r.stderr)
        self.assertIn("--insecure", r.stderr)

    def test_malformed_policies_are_refused_at_start(self):
        with self.assertRaisesRegex(TypeError,
                                    "env 'bad': policies is a list; "
                                    "expected a dict"):
            EnvServer({"bad": PoliciesNotADictEnv}, "inproc://refused-p1")
        with self.assertRaisesRegex(TypeError,
                                    r"env 'bad': policies\['oracle'\] is "
                                    "'say the word'; expected a function"):
            EnvServer({"bad": PolicyNotCallableEnv}, "inproc://refused-p2")
        with self.assertRaisesRegex(TypeError,
                                    "env 'bad': policies has the key 1"):
            EnvServer({"bad": PolicyNameNotAStrEnv}, "inproc://refused-p3")


class ServerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clinrl-py-test-")
        self.server = EnvServer(
            {"echo": EchoEnv, "exploding": ExplodingEnv,
             "triage_quiz": TriageQuizEnv, "made_triage_quiz": made_triage_quiz,
             "plain_text": PlainTextEnv, "wrong_truncate": WrongTruncateEnv,
             "no_truncate": NoTruncateEnv, "policy_bugs": PolicyBugsEnv,
             "tools": ToolsEnv},
            "ipc://%s/s.sock" % self.dir, idle_timeout_s=0.3)
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()
        self.req = zmq.Context.instance().socket(zmq.REQ)
        self.req.setsockopt(zmq.LINGER, 0)
        self.req.setsockopt(zmq.RCVTIMEO, 5000)
        self.req.connect(self.server.endpoint)

    def tearDown(self):
        self.req.close(0)
        self.server.stop()
        self.thread.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def call(self, request):
        body = request if isinstance(request, bytes) else \
            json.dumps(request).encode()
        self.req.send(body)
        return json.loads(self.req.recv())

    def test_malformed_requests_get_errors_naming_the_field(self):
        r = self.call(b"{not json")
        self.assertEqual(r["error"]["code"], "bad_request")
        self.assertIn("not valid JSON", r["error"]["message"])
        self.assertIn("request.op", self.call({})["error"]["message"])
        self.assertIn("'fly'", self.call({"op": "fly"})["error"]["message"])
        r = self.call({"op": "reset"})
        self.assertIn("request.env", r["error"]["message"])
        r = self.call({"op": "reset", "env": "echo", "split": "dev"})
        self.assertEqual(r["error"]["code"], "bad_request")
        self.assertIn("'dev'", r["error"]["message"])
        r = self.call({"op": "reset", "env": "echo", "task_index": "3"})
        self.assertIn("request.task_index", r["error"]["message"])
        r = self.call({"op": "step", "session": "nope", "action": "x"})
        self.assertEqual(r["error"]["code"], "not_found")
        sid = self.call({"op": "reset", "env": "echo"})["session"]
        r = self.call({"op": "step", "session": sid, "action": 5})
        self.assertIn("request.action", r["error"]["message"])
        self.assertTrue(self.call({"op": "health"})["ok"])

    def test_env_exception_is_an_internal_error_and_serving_goes_on(self):
        sid = self.call({"op": "reset", "env": "exploding"})["session"]
        r = self.call({"op": "step", "session": sid, "action": "boom"})
        self.assertEqual(r["error"]["code"], "internal")
        self.assertIn("the env exploded", r["error"]["message"])
        r = self.call({"op": "step", "session": sid, "action": "unencodable"})
        self.assertEqual(r["error"]["code"], "internal")
        self.assertIn("not JSON", r["error"]["message"])
        r = self.call({"op": "step", "session": sid, "action": "fine"})
        self.assertEqual(r["observation"][0]["content"], "fine")
        r = self.call(b'{"op": "step", "session": "x", "action": "\xff"}')
        self.assertEqual(r["error"]["code"], "bad_request")

    def test_idle_sessions_are_reclaimed(self):
        sid = self.call({"op": "reset", "env": "echo"})["session"]
        self.assertEqual(self.call({"op": "health"})["sessions"], 1)
        deadline = time.monotonic() + 3
        while (self.call({"op": "health"})["sessions"] and
               time.monotonic() < deadline):
            time.sleep(0.05)
        self.assertEqual(self.call({"op": "health"})["sessions"], 0)
        r = self.call({"op": "step", "session": sid, "action": "x"})
        self.assertEqual(r["error"]["code"], "not_found")

    def test_dealer_envelopes_are_echoed(self):
        dealer = zmq.Context.instance().socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.RCVTIMEO, 5000)
        dealer.connect(self.server.endpoint)
        try:
            for i in range(5):
                dealer.send_multipart([b"id%d" % i, b"",
                                       b'{"op": "spec", "env": "echo"}'])
            seen = set()
            for _ in range(5):
                frames = dealer.recv_multipart()
                self.assertEqual(len(frames), 3)
                self.assertEqual(json.loads(frames[2])["name"], "echo")
                seen.add(frames[0])
            self.assertEqual(seen, {b"id%d" % i for i in range(5)})
        finally:
            dealer.close(0)

    def test_triage_quiz_plays_to_the_end(self):
        r = self.call({"op": "reset", "env": "triage_quiz", "task_index": 2})
        sid = r["session"]
        self.assertEqual(r["info"]["reward_spec"]["success"], "triage")
        r = self.call({"op": "step", "session": sid, "action": "ASK vitals"})
        self.assertIn("SpO2", r["observation"][0]["content"])
        r = self.call({"op": "step", "session": sid, "action": "ANSWER: ESI 1"})
        self.assertTrue(r["terminated"])
        self.assertEqual(r["reward"], 1.0)
        self.assertEqual(r["info"]["metrics"], {"correct": 1.0, "cost": 1.0})
        self.assertTrue(self.call({"op": "close", "session": sid})["ok"])

    def test_chat_message_tuples_become_protocol_messages(self):
        r = self.call({"op": "reset", "env": "triage_quiz", "split": "test",
                       "task_index": 0})
        self.assertEqual([m["role"] for m in r["observation"]],
                         ["system", "user"])
        self.assertIn("ANSWER: ESI", r["observation"][0]["content"])
        self.assertIn("arm weakness", r["observation"][1]["content"])
        r = self.call({"op": "step", "session": r["session"],
                       "action": "ASK history"})
        self.assertEqual(r["observation"],
                         [{"role": "user",
                           "content": "Symptoms began 40 minutes ago."}])

    def test_a_str_observation_is_one_user_message(self):
        r = self.call({"op": "reset", "env": "plain_text"})
        self.assertEqual(r["observation"], [{"role": "user", "content": "hello"}])
        r = self.call({"op": "step", "session": r["session"], "action": "hi"})
        self.assertEqual(r["observation"],
                         [{"role": "user", "content": "you said hi"}])

    def test_a_gymnasium_make_env_is_served_through_its_wrappers(self):
        spec = self.call({"op": "spec", "env": "made_triage_quiz"})
        # Read from env.unwrapped: gymnasium's wrappers hide the attributes.
        self.assertEqual(spec["splits"], {"train": 6, "test": 3})
        self.assertEqual(spec["max_turns"], 4)
        self.assertIn("ESI", spec["action_format"])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the PassiveEnvChecker's findings
            r = self.call({"op": "reset", "env": "made_triage_quiz",
                           "task_index": 3, "seed": 5})
            sid = r["session"]
            self.assertIn("sore throat", r["observation"][1]["content"])
            r = self.call({"op": "step", "session": sid,
                           "action": "ANSWER: ESI 5"})
        self.assertTrue(r["terminated"])
        self.assertEqual(r["reward"], 1.0)
        # OrderEnforcing's and the env's own guard: a step after the end is
        # the env's error, answered, not a crash.
        r = self.call({"op": "step", "session": sid, "action": "ASK vitals"})
        self.assertEqual(r["error"]["code"], "internal")
        self.assertIn("after the episode ended", r["error"]["message"])

    def test_truncate_ends_the_episode_with_the_envs_final_info(self):
        sid = self.call({"op": "reset", "env": "triage_quiz",
                         "task_index": 2})["session"]
        self.call({"op": "step", "session": sid, "action": "ASK vitals"})
        r = self.call({"op": "truncate", "session": sid})
        self.assertTrue(r["ok"], r)
        self.assertTrue(r["truncated"])
        self.assertFalse(r["terminated"])
        self.assertEqual(r["observation"], [])
        self.assertEqual(r["info"]["metrics"], {"correct": 0.0, "cost": 1.0})
        r = self.call({"op": "truncate", "session": sid})
        self.assertEqual(r["error"]["code"], "internal")
        self.assertIn("after the episode ended", r["error"]["message"])

    def test_truncate_reaches_the_env_inside_gymnasium_wrappers(self):
        sid = self.call({"op": "reset", "env": "made_triage_quiz",
                         "task_index": 0})["session"]
        r = self.call({"op": "truncate", "session": sid})
        self.assertTrue(r["truncated"])
        self.assertEqual(r["info"]["metrics"], {"correct": 0.0, "cost": 0.0})

    def test_truncate_without_an_env_truncate_replies_with_the_last_info(self):
        sid = self.call({"op": "reset", "env": "plain_text"})["session"]
        r = self.call({"op": "truncate", "session": sid})
        self.assertTrue(r["ok"], r)
        self.assertTrue(r["truncated"])
        self.assertFalse(r["terminated"])
        self.assertEqual(r["reward"], 0.0)
        self.assertEqual(r["info"], {"invalid_actions": 0})
        # The last step's info, which lacks the final metrics the env's own
        # end would carry: such an env's cut episodes are flagged.
        sid = self.call({"op": "reset", "env": "no_truncate"})["session"]
        self.call({"op": "step", "session": sid, "action": "hi"})
        r = self.call({"op": "truncate", "session": sid})
        self.assertTrue(r["truncated"])
        self.assertEqual(r["info"], {"turn": 1, "invalid_actions": 0})

    def test_a_truncate_that_does_not_end_the_episode_is_an_error(self):
        sid = self.call({"op": "reset", "env": "wrong_truncate"})["session"]
        r = self.call({"op": "truncate", "session": sid})
        self.assertEqual(r["error"]["code"], "internal")
        self.assertIn("truncated=False", r["error"]["message"])
        r = self.call({"op": "truncate", "session": "nope"})
        self.assertEqual(r["error"]["code"], "not_found")
        r = self.call({"op": "truncate"})
        self.assertIn("request.session", r["error"]["message"])

    # -- scripted policies (the act op) ------------------------------------

    def act(self, sid, policy, transcript, **fields):
        r = self.call(dict(fields, op="act", session=sid, policy=policy,
                           transcript=transcript))
        self.assertTrue(r["ok"], r)
        return r["action"]

    def play(self, env, policy, seed=0, options=None, sid=None, **reset):
        """Plays one episode with the scripted policy, as the C++ side does:
        the transcript grows by each action (assistant) and reply. Returns
        the actions and the last reply."""
        request = dict(reset, op="reset")
        if sid is None:
            request["env"] = env
        else:
            request["session"] = sid
        r = self.call(request)
        self.assertTrue(r["ok"], r)
        sid = r["session"] if sid is None else sid
        transcript, info, actions = list(r["observation"]), r["info"], []
        while True:
            fields = {"seed": seed, "info": info}
            if options is not None:
                fields["options"] = options
            action = self.act(sid, policy, transcript, **fields)
            actions.append(action)
            r = self.call({"op": "step", "session": sid, "action": action})
            self.assertTrue(r["ok"], r)
            transcript += [{"role": "assistant", "content": action}]
            transcript += r["observation"]
            info = r["info"]
            if r["terminated"] or r["truncated"]:
                return actions, r

    def test_spec_lists_the_scripted_policies(self):
        for env, policies in (("triage_quiz", ["oracle", "random"]),
                              ("made_triage_quiz", ["oracle", "random"]),
                              ("echo", ["oracle"]), ("plain_text", [])):
            self.assertEqual(self.call({"op": "spec", "env": env})["policies"],
                             policies, env)

    def test_spec_carries_the_tools_class_attribute(self):
        self.assertEqual(self.call({"op": "spec", "env": "tools"})["tools"],
                         ToolsEnv.tools)
        # An env without tools declares none: text actions only.
        self.assertEqual(self.call({"op": "spec", "env": "echo"})["tools"], [])

    def test_the_oracle_is_correct_on_every_test_task(self):
        for env in ("triage_quiz", "made_triage_quiz"):
            for task in range(3):
                actions, r = self.play(env, "oracle", split="test",
                                       task_index=task)
                self.assertEqual(len(actions), 1)
                self.assertEqual(r["info"]["metrics"],
                                 {"correct": 1.0, "cost": 0.0}, (env, task))
                actions, r = self.play(env, "oracle", split="test",
                                       task_index=task,
                                       options={"ask_vitals": True})
                self.assertEqual(actions[0], "ASK vitals")
                self.assertEqual(len(actions), 2)
                self.assertEqual(r["info"]["metrics"],
                                 {"correct": 1.0, "cost": 1.0}, (env, task))
        actions, r = self.play("echo", "oracle", split="test", task_index=3)
        self.assertEqual(actions, ["jaundice-3"])
        self.assertEqual(r["info"]["metrics"]["correct"], 1.0)

    def test_random_is_deterministic_per_seed(self):
        def episodes(seed):
            return [self.play("triage_quiz", "random", seed=seed,
                              task_index=i)[0] for i in range(4)]
        seven = episodes(7)
        self.assertEqual(len(set(map(tuple, seven))), 1)  # same seed, same play
        self.assertEqual(episodes(7), seven)
        for actions in seven:
            for action in actions:
                self.assertRegex(action, r"^(ASK (vitals|history)|"
                                         r"ANSWER: ESI [1-5])$")
        others = [episodes(seed)[0] for seed in (1, 2, 3)]
        self.assertNotEqual(set(map(tuple, others)), {tuple(seven[0])})

    def test_the_policy_rng_is_made_at_the_first_act_after_each_reset(self):
        sid = self.call({"op": "reset", "env": "triage_quiz"})["session"]
        # Acts need no step between them: random ignores the transcript.
        first = [self.act(sid, "random", [], seed=7) for _ in range(6)]
        # The seed of the episode's later acts is ignored.
        self.call({"op": "reset", "session": sid})
        again = [self.act(sid, "random", [], seed=7)]
        again += [self.act(sid, "random", [], seed=s) for s in range(1, 6)]
        self.assertEqual(again, first)
        self.call({"op": "reset", "session": sid})
        other = [self.act(sid, "random", [], seed=8) for _ in range(6)]
        self.assertNotEqual(other, first)
        # No seed is seed 0, in a new session as in a reset one.
        self.call({"op": "reset", "session": sid})
        zero = [self.act(sid, "random", []) for _ in range(6)]
        sid2 = self.call({"op": "reset", "env": "triage_quiz"})["session"]
        self.assertEqual([self.act(sid2, "random", [], seed=0)
                          for _ in range(6)], zero)

    def test_act_passes_transcript_info_and_options(self):
        sid = self.call({"op": "reset", "env": "policy_bugs"})["session"]
        transcript = [{"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "yo"}]
        r = self.call({"op": "act", "session": sid, "policy": "echo_info",
                       "transcript": transcript, "info": {"turn": 1},
                       "options": {"k": [1, 2]}, "id": 17})
        self.assertEqual(r["id"], 17)
        self.assertEqual(json.loads(r["action"]),
                         {"info": {"turn": 1}, "options": {"k": [1, 2]},
                          "transcript": transcript})
        r = self.call({"op": "act", "session": sid, "policy": "echo_info",
                       "transcript": []})
        self.assertEqual(json.loads(r["action"]),
                         {"info": {}, "options": {}, "transcript": []})

    def test_act_errors_name_the_field_and_serving_goes_on(self):
        sid = self.call({"op": "reset", "env": "triage_quiz",
                         "task_index": 1})["session"]  # the ankle: ESI 4
        ok = {"op": "act", "session": sid, "policy": "oracle",
              "transcript": []}
        cases = [
            ({"session": None}, "bad_request", "request.session"),
            ({"session": 5}, "bad_request", "request.session"),
            ({"session": "nope"}, "not_found", "request.session: no session "
                                               "'nope'"),
            ({"policy": None}, "bad_request", "request.policy: expected a "
                                              "string"),
            ({"policy": ["oracle"]}, "bad_request", "request.policy"),
            ({"policy": "cheat"}, "not_found",
             "request.policy: env 'triage_quiz' has no scripted policy "
             "'cheat'; policies: oracle, random"),
            ({"transcript": None}, "bad_request", "request.transcript: "
                                                  "expected a list"),
            ({"transcript": {"role": "user"}}, "bad_request",
             "request.transcript"),
            ({"transcript": [{"role": "user", "content": "a"},
                             {"role": "assistant", "content": "b"},
                             {"role": "user", "content": 3}]},
             "bad_request", "request.transcript[2]: expected {role: str, "
                            "content: str}"),
            ({"transcript": ["hi"]}, "bad_request", "request.transcript[0]"),
            ({"info": [1]}, "bad_request", "request.info: expected an object"),
            ({"options": "ask_vitals"}, "bad_request",
             "request.options: expected an object"),
            ({"seed": "7"}, "bad_request", "request.seed: expected a "
                                           "non-negative integer, got '7'"),
            ({"seed": True}, "bad_request", "request.seed"),
            ({"seed": 1.5}, "bad_request", "request.seed"),
            ({"seed": -1}, "bad_request", "request.seed"),
            ({"options": {"ask_vitalz": True}}, "bad_request",
             "request.options: policy 'oracle' of env 'triage_quiz' rejected "
             "the options {\"ask_vitalz\": true}: "),
            ({"policy": "random", "options": {"ask_vitals": True}},
             "bad_request", "request.options: policy 'random' of env "
                            "'triage_quiz' rejected the options"),
            ({"options": {"info": {}}}, "bad_request",
             "request.options: policy 'oracle'"),
            ({"options": {"ask_vitals": "yes"}}, "bad_request",
             "request.options.ask_vitals: got 'yes'"),
        ]
        for change, code, message in cases:
            request = dict(ok, **change)
            request = {k: v for k, v in request.items() if v is not None}
            r = self.call(request)
            self.assertFalse(r["ok"], change)
            self.assertEqual(r["error"]["code"], code, (change, r))
            self.assertIn(message, r["error"]["message"], change)
            # Serving goes on, and the session with it.
            self.assertEqual(self.call(ok)["action"], "ANSWER: ESI 4")
        r = self.call({"op": "act", "session": self.call(
            {"op": "reset", "env": "echo"})["session"], "policy": "random",
            "transcript": []})
        self.assertEqual(r["error"]["code"], "not_found")
        self.assertIn("no scripted policy 'random'; policies: oracle",
                      r["error"]["message"])
        r = self.call({"op": "act", "session": self.call(
            {"op": "reset", "env": "plain_text"})["session"],
            "policy": "oracle", "transcript": []})
        self.assertIn("policies: (none)", r["error"]["message"])
        self.assertIn("act", self.call({"op": "fly"})["error"]["message"])

    def test_policy_bugs_are_internal_errors(self):
        sid = self.call({"op": "reset", "env": "policy_bugs"})["session"]
        for policy, message in (
                ("boom", "env 'policy_bugs' policy 'boom' raised ValueError: "
                         "the policy exploded"),
                ("inner_type_error", "env 'policy_bugs' policy "
                                     "'inner_type_error' raised TypeError"),
                ("number", "env 'policy_bugs' policy 'number' returned a int; "
                           "expected the action text (str)")):
            r = self.call({"op": "act", "session": sid, "policy": policy,
                           "transcript": []})
            self.assertEqual(r["error"]["code"], "internal", r)
            self.assertIn(message, r["error"]["message"])
            self.assertTrue(self.call({"op": "health"})["ok"])
        # A sound policy of the same session still plays.
        r = self.call({"op": "act", "session": sid, "policy": "echo_info",
                       "transcript": []})
        self.assertTrue(r["ok"], r)



def write_curve_keys(folder):
    """A key folder as `clinrl keys generate` writes it (0700, files 0600)."""
    os.mkdir(folder, 0o700)
    keys = {}
    for side in ("server", "client"):
        public, secret = zmq.curve_keypair()
        for name, key in (("public", public), ("secret", secret)):
            path = os.path.join(folder, "%s.%s" % (side, name))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key + b"\n")
            keys["%s.%s" % (side, name)] = key
    return keys


class CurveServerTest(unittest.TestCase):
    """--curve-keys: clients with the keys are served; clients without them,
    or with another key pair, get no reply and the refusal is logged."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clinrl-py-curve-")
        self.keys = write_curve_keys(os.path.join(self.dir, "curve"))
        from clinrl_env.curve import read_curve_keys
        self.server = EnvServer(
            {"echo": EchoEnv}, "tcp://127.0.0.1:*",
            curve_keys=read_curve_keys(os.path.join(self.dir, "curve")))
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()

    def tearDown(self):
        self.server.stop()
        self.thread.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def health(self, server_key=None, client=None):
        """The health reply, or None when none came within 500 ms."""
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, 500)
        if server_key:
            s.curve_serverkey = server_key
            s.curve_publickey, s.curve_secretkey = client
        s.connect(self.server.endpoint)
        s.send_multipart([b"", b'{"op": "health"}'])
        try:
            return json.loads(s.recv_multipart()[-1])
        except zmq.Again:
            return None
        finally:
            s.close(0)

    def test_clients_without_the_keys_are_refused_and_logged(self):
        run_client = (self.keys["client.public"], self.keys["client.secret"])
        self.assertTrue(self.health(self.keys["server.public"],
                                    run_client)["ok"])
        with self.assertLogs("clinrl_env.curve", "WARNING") as logs:
            self.assertIsNone(self.health())
            self.assertIsNone(self.health(self.keys["server.public"],
                                          zmq.curve_keypair()))
            time.sleep(0.2)
        text = "\n".join(logs.output)
        self.assertIn("refused a client", text)
        self.assertIn("is not this run's client key", text)
        # Still serving the run's clients.
        self.assertTrue(self.health(self.keys["server.public"],
                                    run_client)["ok"])

    def test_a_readable_secret_is_refused_naming_the_file(self):
        from clinrl_env.curve import read_curve_keys
        folder = os.path.join(self.dir, "curve")
        os.chmod(os.path.join(folder, "server.secret"), 0o644)
        with self.assertRaisesRegex(ValueError, "server.secret has mode 644"):
            read_curve_keys(folder)

    def test_a_key_outside_z85_is_refused_naming_the_file(self):
        from clinrl_env.curve import read_curve_keys
        folder = os.path.join(self.dir, "curve")
        with open(os.path.join(folder, "client.public"), "wb") as f:
            f.write(b'"' * 40 + b"\n")  # 40 characters, none of them Z85
        with self.assertRaisesRegex(ValueError,
                                    "client.public is not a Z85 CURVE key"):
            read_curve_keys(folder)


if __name__ == "__main__":
    unittest.main()
