"""Unit tests of the Python env adapter (python/clinrl_env), over a real
ZeroMQ socket: malformed requests, env exceptions, idle reclaim, envelopes."""

import json
import os
import shutil
import tempfile
import threading
import time
import unittest

import zmq

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


class ServerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clinrl-py-test-")
        self.server = EnvServer(
            {"echo": EchoEnv, "exploding": ExplodingEnv,
             "triage_quiz": TriageQuizEnv},
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


if __name__ == "__main__":
    unittest.main()
