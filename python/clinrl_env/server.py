"""A ZeroMQ ROUTER server for gymnasium envs, speaking the env protocol.

Frames: everything up to the first empty frame is the routing envelope and is
echoed back, so REQ clients and the pipelining C++ DEALER client both work.
One thread: Python envs are served one request at a time, which is what the
GIL would allow anyway; run more server processes for more throughput.

Ops: spec, reset, step, truncate and close drive the env (docs/envs.md);
health reports on the server. ``act`` plays one of the env's scripted
policies (its ``policies`` class attribute, {name: function}; the spec lists
the names) for the C++ side: ``clinrl env eval --endpoint``, SFT
demonstrations, baseline rows:

  {"op": "act", "session": sid, "policy": name, "seed": int (default 0),
   "options": {...} (default {}), "transcript": [{role, content}, ...],
   "info": {...} (default {})}  ->  {"ok": true, "action": "<text>"}

The policy is called as ``fn(env.unwrapped, transcript, info, rng,
**options)``: the transcript is every message so far (the reset observation,
then each action as an ``assistant`` message and the env's reply), info the
last reset/step reply's, and rng a ``numpy.random.Generator`` the session
keeps per episode: cleared at every reset, made as ``default_rng(seed)`` by
the episode's first act (the seed of later acts is ignored). Options the
policy's signature does not accept are a bad_request; a policy may also raise
``BadRequest`` for a bad option value. Anything else it raises, or a non-str
action, is an internal error.
"""

import binascii
import inspect
import json
import logging
import os
import signal
import time

import gymnasium
import numpy
import zmq

from clinrl_env.curve import secure_server
from clinrl_env.protocol import (BadRequest, NotFound, ProtocolError,
                                 env_policies, env_spec, error_reply, ok_reply,
                                 to_messages)

log = logging.getLogger("clinrl_env")

OPS = "spec, reset, step, truncate, act, close, health"


def _float(value, what):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError("%s: expected a number, got %r" % (what, value))


def _jsonable(value):
    # numpy scalars and arrays, as gymnasium envs often return them.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError("%s is not JSON serialisable" % type(value).__name__)


def check_served_env(env, name):
    """Raises TypeError unless ``env`` is a gymnasium env the protocol can
    drive: a ``gymnasium.Env`` (or wrapper) whose actions are text."""
    if not isinstance(env, gymnasium.Env):
        raise TypeError("env '%s': the factory made a %s; expected a "
                        "gymnasium.Env (subclass it, see docs/envs.md)"
                        % (name, type(env).__name__))
    for attr in ("observation_space", "action_space"):
        if not isinstance(getattr(env, attr, None), gymnasium.spaces.Space):
            raise TypeError("env '%s': %s is not set; expected a "
                            "gymnasium.spaces.Space (clinrl_env.spaces has "
                            "the chat ones)" % (name, attr))
    if not isinstance(env.action_space, gymnasium.spaces.Text):
        raise TypeError("env '%s': action_space is %r; expected "
                        "gymnasium.spaces.Text, as every action is the "
                        "agent's text (clinrl_env.spaces.action_text())"
                        % (name, env.action_space))
    env_policies(env, name)  # a malformed ``policies`` fails here


class _Session:
    # last_info: the info of the last reset or step reply, what a truncate
    # answers with when the env has no truncate() of its own. policy_rng: the
    # act op's numpy Generator for this episode, None until its first act.
    __slots__ = ("env", "name", "last_used", "last_info", "policy_rng")

    def __init__(self, env, name):
        self.env = env
        self.name = name
        self.last_used = time.monotonic()
        self.last_info = {}
        self.policy_rng = None


class EnvServer:
    """Serves the gymnasium envs made by ``factories`` ({name:
    callable(**options)}, e.g. an Env subclass, or a function returning
    ``gymnasium.make(...)``)."""

    def __init__(self, factories, endpoint, env_options=None,
                 idle_timeout_s=600.0, context=None, curve_keys=None):
        if not factories:
            raise ValueError("EnvServer: no envs to serve")
        self.factories = dict(factories)
        self.env_options = dict(env_options or {})
        self.idle_timeout_s = float(idle_timeout_s)
        self.specs = {}
        self.policies = {}
        self.spare = {}
        for name in self.factories:
            env = self._make(name)
            check_served_env(env, name)
            self.specs[name] = env_spec(env, name)
            self.policies[name] = env_policies(env, name)
            self.spare[name] = [env]
        self.sessions = {}
        self.prefix = binascii.hexlify(os.urandom(6)).decode()
        self.counter = 0
        self.started = time.monotonic()
        self.requests = 0
        self.errors = 0
        self.reclaimed = 0
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        # curve_keys: read_curve_keys() of --curve-keys; tcp:// only.
        self.auth = secure_server(self.socket, endpoint, curve_keys,
                                  "env server on %r" % endpoint)
        try:
            self.socket.bind(endpoint)
        except zmq.ZMQError:
            # The authenticator thread holds the context's ZAP endpoint; a
            # server that never bound must not leave it running.
            if self.auth is not None:
                self.auth.stop()
            self.socket.close(0)
            raise
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._stop = False

    def _make(self, name):
        return self.factories[name](**self.env_options.get(name, {}))

    # -- ops ---------------------------------------------------------------

    def _env_name(self, request):
        name = request.get("env")
        if name is None:
            if len(self.factories) == 1:
                return next(iter(self.factories))
            raise BadRequest("request.env: required when the server plays "
                             "several envs; one of %s" %
                             ", ".join(sorted(self.factories)))
        if not isinstance(name, str):
            raise BadRequest("request.env: expected a string, got %r" % name)
        if name not in self.factories:
            raise NotFound("request.env: '%s' is not served here; served "
                           "envs: %s" % (name, ", ".join(sorted(self.factories))))
        return name

    def _session(self, request):
        sid = request.get("session")
        if not isinstance(sid, str):
            raise BadRequest("request.session: expected a string, got %r" % sid)
        session = self.sessions.get(sid)
        if session is None:
            raise NotFound("request.session: no session '%s' (closed, "
                           "reclaimed after idling, or of another server "
                           "instance)" % sid)
        return session

    def _reset(self, request):
        split = request.get("split", "train")
        if not isinstance(split, str):
            raise BadRequest("request.split: expected a string, got %r" % split)
        options = request.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("request.options: expected an object, got %r"
                             % options)
        options = dict(options)
        options["split"] = split
        for field in ("task_index", "seed"):
            value = request.get(field)
            if value is not None and (not isinstance(value, int) or
                                      isinstance(value, bool)):
                raise BadRequest("request.%s: expected an integer, got %r"
                                 % (field, value))
        if request.get("task_index") is not None:
            options["task_index"] = request["task_index"]
        if "session" in request:
            session = self._session(request)
            name, env = session.name, session.env
        else:
            name = self._env_name(request)
            spares = self.spare[name]
            env = spares.pop() if spares else self._make(name)
            session = None
        try:
            obs, info = env.reset(seed=request.get("seed"), options=options)
        except (BadRequest, ValueError, KeyError) as e:
            if session is None:
                self.spare[name].append(env)
            raise BadRequest("env '%s' reset: %s" % (name, e))
        if session is None:
            self.counter += 1
            session = _Session(env, name)
            sid = "%s-%d" % (self.prefix, self.counter)
            self.sessions[sid] = session
        else:
            sid = request["session"]
            session.last_used = time.monotonic()
            session.policy_rng = None  # a new episode: the next act seeds it
        session.last_info = dict(info or {})
        return ok_reply(session=sid, observation=to_messages(obs),
                        info=session.last_info)

    def _step(self, request):
        session = self._session(request)
        action = request.get("action")
        if not isinstance(action, str):
            raise BadRequest("request.action: expected a string, got %r"
                             % (action,))
        session.last_used = time.monotonic()
        try:
            obs, reward, terminated, truncated, info = session.env.step(action)
        except ProtocolError:
            raise
        except Exception as e:  # the env's own bug: an error reply, not a crash
            raise ProtocolError("env '%s' step raised %s: %s"
                                % (session.name, type(e).__name__, e))
        session.last_info = dict(info or {})
        return ok_reply(observation=to_messages(obs),
                        reward=_float(reward, "step reward"),
                        terminated=bool(terminated), truncated=bool(truncated),
                        info=session.last_info)

    def _truncate(self, request):
        """The runtime cut the episode (docs/envs.md): the env's
        ``truncate()``, returning what ``step`` returns, ends it as its turn
        budget would, final info and all. An env without one is answered
        truncated with the last reply's info, which lacks the final metrics
        its own end would carry."""
        session = self._session(request)
        session.last_used = time.monotonic()
        # gymnasium's wrappers do not forward other attributes.
        truncate = getattr(session.env, "truncate", None)
        if not callable(truncate):
            truncate = getattr(getattr(session.env, "unwrapped", None),
                               "truncate", None)
        if not callable(truncate):
            info = dict(session.last_info)
            return ok_reply(observation=[], reward=0.0, terminated=False,
                            truncated=True, info=info)
        try:
            obs, reward, terminated, truncated, info = truncate()
        except ProtocolError:
            raise
        except Exception as e:  # the env's own bug: an error reply, not a crash
            raise ProtocolError("env '%s' truncate raised %s: %s"
                                % (session.name, type(e).__name__, e))
        if terminated or not truncated:
            raise ProtocolError(
                "env '%s' truncate() returned terminated=%r, truncated=%r; "
                "expected terminated=False, truncated=True"
                % (session.name, terminated, truncated))
        session.last_info = dict(info or {})
        return ok_reply(observation=to_messages(obs or []),
                        reward=_float(reward, "truncate reward"),
                        terminated=False, truncated=True,
                        info=session.last_info)

    def _act(self, request):
        """Plays the env's scripted policy ``request.policy`` for one turn:
        the action it would take after ``request.transcript``."""
        session = self._session(request)
        name = session.name
        policy = request.get("policy")
        if not isinstance(policy, str):
            raise BadRequest("request.policy: expected a string (a policy "
                             "name), got %r" % (policy,))
        policies = self.policies[name]
        fn = policies.get(policy)
        if fn is None:
            raise NotFound("request.policy: env '%s' has no scripted policy "
                           "'%s'; policies: %s"
                           % (name, policy, ", ".join(sorted(policies)) or
                              "(none)"))
        seed = request.get("seed")
        if seed is None:
            seed = 0
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise BadRequest("request.seed: expected a non-negative integer, "
                             "got %r" % (seed,))
        options = request.get("options")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise BadRequest("request.options: expected an object (the "
                             "policy's options), got %r" % (options,))
        info = request.get("info")
        if info is None:
            info = {}
        if not isinstance(info, dict):
            raise BadRequest("request.info: expected an object (the last "
                             "reset/step reply's info), got %r" % (info,))
        raw = request.get("transcript")
        if not isinstance(raw, list):
            raise BadRequest("request.transcript: expected a list of {role: "
                             "str, content: str} messages, got %r" % (raw,))
        transcript = []
        for i, m in enumerate(raw):
            if (not isinstance(m, dict) or not isinstance(m.get("role"), str)
                    or not isinstance(m.get("content"), str)):
                raise BadRequest("request.transcript[%d]: expected {role: "
                                 "str, content: str}, got %r" % (i, m))
            transcript.append({"role": m["role"], "content": m["content"]})
        session.last_used = time.monotonic()
        env = getattr(session.env, "unwrapped", session.env)
        rng = session.policy_rng
        if rng is None:
            rng = numpy.random.default_rng(seed)
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # a callable inspect cannot read
            signature = None
        if signature is not None:
            try:
                signature.bind(env, transcript, info, rng, **options)
            except TypeError as e:
                raise BadRequest(
                    "request.options: policy '%s' of env '%s' rejected the "
                    "options %s: %s" % (policy, name,
                                        json.dumps(options, sort_keys=True), e))
        session.policy_rng = rng
        try:
            action = fn(env, transcript, info, rng, **options)
        except ProtocolError:
            raise
        except Exception as e:  # the policy's own bug: an error reply
            raise ProtocolError("env '%s' policy '%s' raised %s: %s"
                                % (name, policy, type(e).__name__, e))
        if not isinstance(action, str):
            raise ProtocolError("env '%s' policy '%s' returned a %s; expected "
                                "the action text (str)"
                                % (name, policy, type(action).__name__))
        return ok_reply(action=action)

    def _close(self, request):
        sid = request.get("session")
        session = self.sessions.pop(sid, None) if isinstance(sid, str) else None
        if session is None:
            raise NotFound("request.session: no session %r to close" % (sid,))
        self._recycle(session)
        return ok_reply()

    def _recycle(self, session):
        spares = self.spare[session.name]
        if len(spares) < 256:
            spares.append(session.env)
        else:
            close = getattr(session.env, "close", None)
            if callable(close):
                close()

    def handle(self, body):
        """One request (bytes) in, one reply (dict) out; never raises."""
        self.requests += 1
        request = None
        try:
            try:
                request = json.loads(body)
            except ValueError as e:
                raise BadRequest("request: not valid JSON (%s); expected an "
                                 "object with an \"op\"" % e)
            if not isinstance(request, dict):
                raise BadRequest("request: expected a JSON object, got %s"
                                 % type(request).__name__)
            op = request.get("op")
            if op == "step":
                reply = self._step(request)
            elif op == "reset":
                reply = self._reset(request)
            elif op == "truncate":
                reply = self._truncate(request)
            elif op == "act":
                reply = self._act(request)
            elif op == "close":
                reply = self._close(request)
            elif op == "spec":
                reply = ok_reply(**self.specs[self._env_name(request)])
            elif op == "health":
                reply = ok_reply(sessions=len(self.sessions),
                                 uptime_s=time.monotonic() - self.started,
                                 envs=sorted(self.factories),
                                 requests=self.requests, errors=self.errors,
                                 reclaimed=self.reclaimed)
            elif op is None:
                raise BadRequest("request.op: required field is missing")
            else:
                raise BadRequest("request.op: unknown op %r; expected one of %s"
                                 % (op, OPS))
        except ProtocolError as e:
            reply = error_reply(e.code, str(e))
        except Exception as e:
            reply = error_reply("internal", "%s: %s" % (type(e).__name__, e))
        if not reply["ok"]:
            self.errors += 1
        if isinstance(request, dict) and "id" in request:
            reply["id"] = request["id"]
        return reply

    def handle_bytes(self, body):
        """Like handle, but returns the encoded reply. Info holding values
        JSON cannot encode becomes an internal error reply, not a crash."""
        reply = self.handle(body)
        try:
            return json.dumps(reply, default=_jsonable).encode()
        except (TypeError, ValueError) as e:
            self.errors += 1
            return json.dumps(error_reply(
                "internal", "the env's reply is not JSON: %s" % e)).encode()

    def reclaim_idle(self):
        if self.idle_timeout_s <= 0:
            return 0
        cutoff = time.monotonic() - self.idle_timeout_s
        idle = [sid for sid, s in self.sessions.items() if s.last_used < cutoff]
        for sid in idle:
            self._recycle(self.sessions.pop(sid))
        self.reclaimed += len(idle)
        return len(idle)

    # -- transport ---------------------------------------------------------

    def stop(self):
        self._stop = True

    def serve_forever(self):
        sweep = min(1.0, self.idle_timeout_s / 4) if self.idle_timeout_s > 0 \
            else 1.0
        next_sweep = time.monotonic() + sweep
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        sock = self.socket
        while not self._stop:
            if poller.poll(100):
                # Drain the burst before polling again.
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(frames) < 2:
                        continue
                    frames[-1] = self.handle_bytes(frames[-1])
                    try:
                        sock.send_multipart(frames, zmq.NOBLOCK)
                    except zmq.ZMQError as e:
                        log.warning("reply dropped: %s", e)
            now = time.monotonic()
            if now >= next_sweep:
                n = self.reclaim_idle()
                if n:
                    log.info("reclaimed %d idle sessions", n)
                next_sweep = now + sweep
        sock.close(0)
        if self.auth is not None:
            self.auth.stop()


def install_stop_signals(server):
    def stop(signum, frame):
        server.stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
