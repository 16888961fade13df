"""python -m clinrl_env serve --env MODULE:FACTORY [--name NAME] --endpoint E
[--insecure] [--curve-keys DIR]

Serves the gymnasium env that MODULE:FACTORY makes (a ``gymnasium.Env``
subclass, or a function returning one, e.g. ``gymnasium.make(...)``; it gets
the ``--options`` JSON as keyword arguments) over the clinrl env protocol.
Repeat --env (and --name) to serve several envs from one process.
"""

import argparse
import importlib
import json
import logging
import sys

from clinrl_env.curve import read_curve_keys
from clinrl_env.server import EnvServer, install_stop_signals


def load_factory(spec):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit("--env %r: expected MODULE:FACTORY, e.g. "
                         "clinrl_env.triage_quiz:TriageQuizEnv" % spec)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SystemExit("--env %r: cannot import %s: %s" % (spec, module_name, e))
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SystemExit("--env %r: module %s has no %s" % (spec, module_name,
                                                             attr))


def is_loopback(endpoint):
    """Whether binding `endpoint` is reachable from this host alone: ipc://,
    inproc://, or tcp:// on 127.0.0.0/8, localhost or ::1 (the rule of the
    C++ servers, core/zmq_util.h)."""
    if not endpoint.startswith("tcp://"):
        return True
    host = endpoint[len("tcp://"):].rpartition(":")[0]
    if ";" in host:
        return False
    return host in ("localhost", "[::1]", "::1") or host.startswith("127.")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m clinrl_env")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve envs over ZeroMQ")
    serve.add_argument("--env", action="append", required=True,
                       help="MODULE:FACTORY (repeatable)")
    serve.add_argument("--name", action="append", default=[],
                       help="protocol name of each --env (default: the "
                            "factory's name in lower case)")
    serve.add_argument("--endpoint", required=True,
                       help="tcp://127.0.0.1:5555, ipc:///path or "
                            "inproc://name")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback tcp endpoint (no "
                            "authentication: anyone who reaches the port "
                            "is served)")
    serve.add_argument("--curve-keys", default="",
                       help="CURVE key folder (clinrl keys generate): a "
                            "tcp endpoint is encrypted and serves only "
                            "clients with these keys")
    serve.add_argument("--options", default="{}",
                       help="JSON keyword arguments for every factory")
    serve.add_argument("--idle-timeout-s", type=float, default=600.0)
    serve.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="[%(asctime)s] [%(levelname)s] %(message)s")
    curve_keys = None
    if args.curve_keys:
        try:
            curve_keys = read_curve_keys(args.curve_keys)
        except ValueError as e:
            raise SystemExit(str(e))
    if not (args.insecure or curve_keys) and not is_loopback(args.endpoint):
        raise SystemExit(
            "--endpoint: got %r, which binds beyond this host: without "
            "authentication anyone who can reach the port would be served. "
            "Expected a loopback address (tcp://127.0.0.1:PORT), ipc:// or "
            "inproc://, --curve-keys DIR to serve only clients with the "
            "keys, or --insecure to serve the network anyway"
            % args.endpoint)
    if args.name and len(args.name) != len(args.env):
        raise SystemExit("--name: given %d times for %d --env; give one per "
                         "--env or none" % (len(args.name), len(args.env)))
    try:
        options = json.loads(args.options)
    except ValueError as e:
        raise SystemExit("--options: not valid JSON: %s" % e)
    if not isinstance(options, dict):
        raise SystemExit("--options: expected a JSON object, got %r" % options)
    factories = {}
    for i, spec in enumerate(args.env):
        factory = load_factory(spec)
        name = args.name[i] if args.name else spec.partition(":")[2].lower()
        factories[name] = factory
    try:
        server = EnvServer(factories, args.endpoint,
                           env_options={n: options for n in factories},
                           idle_timeout_s=args.idle_timeout_s,
                           curve_keys=curve_keys)
    except (TypeError, ValueError) as e:
        raise SystemExit("serve: %s" % e)
    install_stop_signals(server)
    logging.info("serving %s on %s", ", ".join(sorted(factories)),
                 server.endpoint)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
