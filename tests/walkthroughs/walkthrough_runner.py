"""Replays one walkthrough of docs/first_env.md from the page itself.

The page is the test: its fenced blocks are read in order and each kind of
block is handled by its info string, so that what a researcher copies is
what runs here and the two cannot drift apart.

    <!-- walkthrough: NAME run=RUN_DIR -->   starts walkthrough NAME; its run
                                             dir (relative to the work dir)
                                             must end with summary.json and
                                             report.html
    ```bash setup          not run: the variables it exports are provided
                           here (the names must match exactly)
    ```bash build          not run: each `--target T` must have been built
                           (its file passed as --built T=FILE), and each
                           `ctest ... -R PATTERN` must select > 0 tests
    ```LANG file=PATH      written to PATH in the work dir
    ```LANG excerpt=PATH   must appear verbatim in the source file PATH
    ```bash                run by `bash -e -u -o pipefail` in the work dir:
                           every command must exit 0
    ```bash rc=N           the same, and the block must exit with N
    ```text expect         every non-blank line must occur in the output of
                           the previous run block
    any other block        an illustration, not read

Blocks before the first marker belong to every walkthrough. Each walkthrough
runs in a fresh temporary folder (kept, and named, when it fails). Every
block runs in a process group of its own; groups still alive at the end
(servers started with `&`) are terminated, then killed. Every wait is
bounded: --block-timeout per block, and --timeout for the whole walkthrough,
which is below ctest's TIMEOUT so that the runner, not ctest, stops a
walkthrough that hangs and can still kill its background servers.

Run by ctest (walkthrough_NAME) under the venv interpreter; by hand:
    .venv/bin/python tests/walkthroughs/walkthrough_runner.py \
        --doc docs/first_env.md --source . --build build \
        --clinrl build/cli/clinrl --python .venv/bin/python \
        --built clinrl_example_reward_plugin=build/examples/reward_plugin/libclinrl_example_reward_plugin.so \
        --walkthrough reward_plugin
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MARKER = re.compile(r"^<!--\s*walkthrough:\s*(\S+)\s+run=(\S+)\s*-->\s*$")
FENCE = re.compile(r"^(`{3,})\s*(.*)$")
EXPORT = re.compile(r"^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=")
# The variables the page's `bash setup` block exports and the runner sets.
PROVIDED = ("CLINRL_ROOT", "CLINRL_BUILD", "PATH", "PYTHON", "PYTHONPATH")


class WalkthroughError(Exception):
    """A block of the page failed, or the page is malformed."""


class Block:
    def __init__(self, info, body, line):
        words = info.split()
        self.lang = words[0] if words else ""
        self.flags = set()
        self.attrs = {}
        for w in words[1:]:
            key, sep, value = w.partition("=")
            if sep:
                self.attrs[key] = value
            else:
                self.flags.add(w)
        self.body = body
        self.line = line

    def where(self, doc):
        info = [self.lang] + sorted(self.flags) + [
            "%s=%s" % kv for kv in self.attrs.items()]
        return "%s:%d (```%s)" % (doc, self.line, " ".join(info))


def parse_page(text, doc):
    """Returns (common blocks, {name: (run dir, blocks)}) in page order."""
    common = []
    walkthroughs = {}
    current = common
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        if marker:
            name, run_dir = marker.groups()
            if name in walkthroughs:
                raise WalkthroughError("%s:%d: walkthrough '%s' started twice"
                                       % (doc, i + 1, name))
            current = []
            walkthroughs[name] = (run_dir, current)
            i += 1
            continue
        fence = FENCE.match(lines[i])
        if fence:
            ticks, info = fence.groups()
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != ticks:
                j += 1
            if j == len(lines):
                raise WalkthroughError("%s:%d: fenced block never closed"
                                       % (doc, i + 1))
            current.append(Block(info, "\n".join(lines[start:j]) + "\n",
                                 i + 1))
            i = j + 1
            continue
        i += 1
    return common, walkthroughs


class Runner:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.logdir = os.path.join(os.path.dirname(workdir), "logs")
        os.makedirs(self.logdir)
        self.groups = []  # process groups of the blocks run so far
        self.last_output = None
        self.count = 0
        self.deadline = time.monotonic() + args.timeout
        self.built = {}
        for entry in args.built:
            target, sep, path = entry.partition("=")
            if not sep:
                raise WalkthroughError("--built %r: expected TARGET=FILE"
                                       % entry)
            self.built[target] = path
        self.env = dict(os.environ)
        self.env.update({
            "CLINRL_ROOT": args.source,
            "CLINRL_BUILD": args.build,
            "PATH": os.path.dirname(args.clinrl) + os.pathsep +
            os.environ.get("PATH", ""),
            "PYTHON": args.python,
            "PYTHONPATH": os.path.join(args.source, "python") + os.pathsep +
            workdir,
        })

    # -- blocks ------------------------------------------------------------

    def setup(self, block):
        exported = {m.group(1) for m in map(EXPORT.match,
                                            block.body.splitlines()) if m}
        if exported != set(PROVIDED):
            raise WalkthroughError(
                "%s exports %s; the runner provides %s: change the page or "
                "PROVIDED in %s together"
                % (block.where(self.args.doc), sorted(exported),
                   sorted(PROVIDED), os.path.basename(__file__)))
        # The page puts the binary at $CLINRL_BUILD/cli/clinrl.
        expected = os.path.join(self.args.build, "cli", "clinrl")
        if os.path.realpath(expected) != os.path.realpath(self.args.clinrl):
            raise WalkthroughError(
                "the page runs $CLINRL_BUILD/cli/clinrl (%s) but the test was "
                "given --clinrl %s" % (expected, self.args.clinrl))

    def build(self, block):
        for line in block.body.splitlines():
            line = line.split("#", 1)[0]
            if not line.strip():
                continue
            words = shlex.split(line)
            if "--target" in words:
                for target in words[words.index("--target") + 1:]:
                    if target.startswith("-") or target in ("&&", ";"):
                        break
                    self.check_built(block, target)
            if "ctest" in words:
                self.check_ctest(block, words[words.index("ctest") + 1:])

    def check_built(self, block, target):
        path = self.built.get(target)
        if path is None:
            raise WalkthroughError(
                "%s builds target '%s', which the test does not know: pass "
                "--built %s=$<TARGET_FILE:%s> in tests/walkthroughs/"
                "CMakeLists.txt" % (block.where(self.args.doc), target,
                                    target, target))
        if not os.path.isfile(path):
            raise WalkthroughError(
                "%s: target '%s' is not built (%s missing); build it with "
                "`cmake --build %s --target %s`"
                % (block.where(self.args.doc), target, path, self.args.build,
                   target))
        print("built: %s (%s)" % (target, path))

    def check_ctest(self, block, words):
        if "-R" not in words or words.index("-R") + 1 >= len(words):
            raise WalkthroughError("%s: a ctest line without -R PATTERN"
                                   % block.where(self.args.doc))
        pattern = words[words.index("-R") + 1]
        ctest = shutil.which("ctest")
        if ctest is None:
            raise WalkthroughError("ctest not found on PATH (CMake installs "
                                   "it; launch/setup)")
        # Lists the tests (-N), without running them inside this test.
        listed = subprocess.run(
            [ctest, "--test-dir", self.args.build, "-N", "-R", pattern],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=self.args.block_timeout)
        found = re.search(r"Total Tests:\s*(\d+)", listed.stdout)
        if listed.returncode != 0 or not found or int(found.group(1)) == 0:
            raise WalkthroughError(
                "%s: `ctest -R '%s'` selects no tests in %s:\n%s"
                % (block.where(self.args.doc), pattern, self.args.build,
                   listed.stdout))
        print("ctest -R '%s': %s tests" % (pattern, found.group(1)))

    def write_file(self, block):
        path = os.path.join(self.workdir, block.attrs["file"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(block.body)
        print("wrote %s (%d lines)" % (block.attrs["file"],
                                       block.body.count("\n")))

    def excerpt(self, block):
        rel = block.attrs["excerpt"]
        path = os.path.join(self.args.source, rel)
        try:
            with open(path) as f:
                source = f.read()
        except OSError as e:
            raise WalkthroughError("%s: cannot read %s: %s"
                                   % (block.where(self.args.doc), path, e))
        if block.body.rstrip("\n") not in source:
            first = next((l for l in block.body.splitlines()
                          if l not in source.splitlines()), None)
            raise WalkthroughError(
                "%s: the excerpt is not verbatim in %s (first line not "
                "there: %r); copy it from the file again"
                % (block.where(self.args.doc), rel, first))
        print("excerpt of %s: verbatim (%d lines)"
              % (rel, block.body.count("\n")))

    def run(self, block):
        self.count += 1
        script = os.path.join(self.logdir, "block_%02d.sh" % self.count)
        log = os.path.join(self.logdir, "block_%02d.log" % self.count)
        with open(script, "w") as f:
            f.write(block.body)
        expected_rc = int(block.attrs.get("rc", "0"))
        print("$ " + block.body.rstrip("\n").replace("\n", "\n$ "))
        sys.stdout.flush()
        start = time.monotonic()
        # A file, not a pipe: a server started with `&` keeps its copy of
        # the block's stdout, and a pipe would never reach end-of-file.
        with open(log, "w") as out:
            proc = subprocess.Popen(
                ["bash", "-e", "-u", "-o", "pipefail", script],
                cwd=self.workdir, env=self.env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
            self.groups.append(proc.pid)
            limit = max(1.0, min(self.args.block_timeout,
                                 self.deadline - time.monotonic()))
            try:
                rc = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid, proc)
                rc = None
        with open(log, errors="replace") as f:
            self.last_output = f.read()
        sys.stdout.write(self.last_output)
        print("[rc %s, %.1f s]" % (rc, time.monotonic() - start))
        if rc is None:
            raise WalkthroughError(
                "%s: still running after %.0f s (killed; --block-timeout %d, "
                "--timeout %d for the walkthrough)"
                % (block.where(self.args.doc), limit, self.args.block_timeout,
                   self.args.timeout))
        if rc != expected_rc:
            raise WalkthroughError("%s: exit status %d, expected %d"
                                   % (block.where(self.args.doc), rc,
                                      expected_rc))

    def expect(self, block):
        if self.last_output is None:
            raise WalkthroughError("%s: no command ran before it"
                                   % block.where(self.args.doc))
        for line in block.body.splitlines():
            if line.strip() and line.strip() not in self.last_output:
                raise WalkthroughError(
                    "%s: %r is not in the output of the command before it"
                    % (block.where(self.args.doc), line.strip()))
        print("output has: " + "; ".join(
            l.strip() for l in block.body.splitlines() if l.strip()))

    def play(self, blocks):
        for block in blocks:
            if block.lang == "bash" and "setup" in block.flags:
                self.setup(block)
            elif block.lang == "bash" and "build" in block.flags:
                self.build(block)
            elif "file" in block.attrs:
                self.write_file(block)
            elif "excerpt" in block.attrs:
                self.excerpt(block)
            elif block.lang == "bash":
                self.run(block)
            elif block.lang == "text" and "expect" in block.flags:
                self.expect(block)

    def check_run_dir(self, run_dir):
        root = os.path.join(self.workdir, run_dir)
        summary = os.path.join(root, "summary.json")
        report = os.path.join(root, "report.html")
        for path in (summary, report):
            if not os.path.isfile(path) or os.path.getsize(path) == 0:
                raise WalkthroughError("%s: missing or empty at the end of "
                                       "the walkthrough" % path)
        with open(summary) as f:
            rows = json.load(f)
        if not isinstance(rows, list) or not rows:
            raise WalkthroughError("%s: expected a non-empty list of rows, "
                                   "got %r" % (summary, rows))
        print("run dir %s: summary.json (%s), report.html (%d bytes)"
              % (run_dir, ", ".join(r.get("policy", "?") for r in rows),
                 os.path.getsize(report)))

    def stop_background(self):
        for pgid in self.groups:
            kill_group(pgid)


def kill_group(pgid, leader=None, grace_s=5.0):
    """SIGTERM to the group, SIGKILL to what is left after grace_s. `leader`
    (our child, the group's first process) is reaped as it ends: a zombie
    still counts as a member of its group."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if leader is not None:
            leader.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if leader is not None:
        leader.wait()


def check_tools(args):
    """A missing tool fails the test, naming what provides it."""
    missing = []
    if not (os.path.isfile(args.clinrl) and os.access(args.clinrl, os.X_OK)):
        missing.append("the clinrl binary %s (cmake --build %s --target "
                       "clinrl)" % (args.clinrl, args.build))
    if not (os.path.isfile(args.python) and os.access(args.python, os.X_OK)):
        missing.append("the venv interpreter %s (launch/setup)" % args.python)
    if shutil.which("bash") is None:
        missing.append("bash (apt-get install bash)")
    if missing:
        raise WalkthroughError("missing: " + "; ".join(missing))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--doc", required=True)
    parser.add_argument("--walkthrough", required=True)
    parser.add_argument("--source", required=True, help="repository root")
    parser.add_argument("--build", required=True, help="build folder")
    parser.add_argument("--clinrl", required=True, help="the clinrl binary")
    parser.add_argument("--python", required=True, help="venv interpreter")
    parser.add_argument("--built", action="append", default=[],
                        help="TARGET=FILE of a target the page builds")
    parser.add_argument("--block-timeout", type=int, default=120,
                        help="seconds one block may run")
    parser.add_argument("--timeout", type=int, default=240,
                        help="seconds the whole walkthrough may run")
    args = parser.parse_args(argv)
    for name in ("doc", "source", "build", "clinrl", "python"):
        setattr(args, name, os.path.abspath(getattr(args, name)))

    # ctest stops a test with SIGTERM on its timeout: clean up then, too.
    def stop(signum, frame):
        raise SystemExit("walkthrough stopped by signal %d" % signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    start = time.monotonic()
    top = tempfile.mkdtemp(prefix="clinrl-walkthrough-%s-" % args.walkthrough)
    workdir = os.path.join(top, "work")
    os.makedirs(workdir)
    runner = None
    ok = False
    try:
        check_tools(args)
        with open(args.doc) as f:
            common, walkthroughs = parse_page(f.read(), args.doc)
        if args.walkthrough not in walkthroughs:
            raise WalkthroughError(
                "%s has no walkthrough '%s' (has: %s)"
                % (args.doc, args.walkthrough,
                   ", ".join(walkthroughs) or "none"))
        run_dir, blocks = walkthroughs[args.walkthrough]
        runner = Runner(args, workdir)
        runner.play(common + blocks)
        runner.check_run_dir(run_dir)
        ok = True
    except (WalkthroughError, subprocess.TimeoutExpired) as e:
        print("FAIL: %s" % e, file=sys.stderr)
    finally:
        if runner is not None:
            runner.stop_background()
        if ok:
            shutil.rmtree(top, ignore_errors=True)
        else:
            print("work dir kept: %s" % top, file=sys.stderr)
    print("walkthrough %s: %s in %.1f s"
          % (args.walkthrough, "passed" if ok else "FAILED",
             time.monotonic() - start))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
