"""launch/slurm.sbatch on a real Slurm (issue 24; docs/distributed.md,
"From one node to many").

Starts Debian's Slurm on this machine, privately: a munge key and munged
on its own socket, a slurm.conf describing this machine as the one node of
the one partition, slurmctld and slurmd in the foreground, all under a
temporary folder and on free ports, nothing under /etc or /run. Then it
submits `sbatch --wait launch/slurm.sbatch tiny.json` (1 learner, 1 env
server, 1 reward server, 1 rollout worker: 4 Slurm tasks; 2 SFT steps then
2 GRPO steps, the distributed tests' tiny model) and checks:

  - sbatch exits 0 and Slurm records the job COMPLETED, exit code 0:0;
  - the job's output file (clinrl-JOBID.out) shows the srun line, a role map
    of 4 ranks (so srun's PMIx gave every rank the job's size), every
    role's start and the workers and servers ending with the run;
  - clinrl-JOBID-roles.json says world_size 4;
  - the run dir has metrics.jsonl with the 2 GRPO steps, the newest
    checkpoint step_00000004 with its manifest, and summary.json;
  - a second job, `launch/slurm.sbatch tiny.json --resume --set
    trainer.steps=4 --allow-config-change trainer.steps` (how a job stopped
    by its time limit is continued), passes the same checks, says it
    resumed from step_00000004 and ends with 4 GRPO steps and
    step_00000006.

The daemons are stopped and the folder removed whatever happens (an
exception, a failed check, SIGTERM from ctest); `slurm_test.py stale`
(the ctest FIXTURES_CLEANUP) stops those of a test that was killed.

usage: slurm_test.py CLINRL_BINARY SOURCE_DIR | slurm_test.py stale
Exit status: 0 passed, 1 failed, 77 skipped (only when not root: munged
and slurmd run as root here). Slurm or munge missing is a failure that says
to run launch/setup, which installs them.
"""

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/distributed
from failure import Failure, check  # noqa: E402
from tiny_run_config import tiny_run_config, write_run_config  # noqa: E402

SKIP = 77
PREFIX = "clinrl-slurm-"
DAEMONS = ["munged", "slurmctld", "slurmd"]
TASKS = 4  # learner + env server + reward server + rollout worker
SFT_STEPS, GRPO_STEPS = 2, 2


def log(message):
    print(f"slurm_test: {message}", flush=True)


def tool(name):
    for d in ["", "/usr/sbin", "/usr/bin"]:
        path = shutil.which(name) if not d else os.path.join(d, name)
        if path and os.access(path, os.X_OK):
            return path
    raise Failure(f"'{name}' not found: install slurm-wlm and munge "
                  f"(launch/setup does)")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_slurm_conf(tmp, munge_socket):
    host = socket.gethostname().split(".")[0]
    with open("/proc/meminfo") as f:
        line = next(x for x in f if x.startswith("MemTotal"))
    mem_kib = int(line.split()[1])
    ctld_port, slurmd_port = free_ports(2)
    os.makedirs(os.path.join(tmp, "state"))
    os.makedirs(os.path.join(tmp, "spool"))
    # No cgroups (a container may have none to give): processes tracked by
    # their parent pids, tasks not bound. MpiDefault stays Slurm's default,
    # none, so the template has to ask for PMIx itself.
    conf = f"""\
ClusterName=clinrltest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={tmp}/state
SlurmdSpoolDir={tmp}/spool
SlurmctldPidFile={tmp}/slurmctld.pid
SlurmdPidFile={tmp}/slurmd.pid
SlurmctldLogFile={tmp}/slurmctld.log
SlurmdLogFile={tmp}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
InactiveLimit=0
KillWait=10
MinJobAge=600
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={mem_kib * 9 // 10240} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
"""
    path = os.path.join(tmp, "slurm.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def start(tmp, name, args, env):
    out = open(os.path.join(tmp, f"{name}.out"), "w")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    with open(os.path.join(tmp, f"{name}.pidx"), "w") as f:
        f.write(str(proc.pid))
    return proc


def processes_using(tmp):
    """Pids of the processes whose environment points SLURM_CONF into `tmp`:
    sbatch, the job's steps and ranks (sbatch passes the environment on)."""
    needle = f"SLURM_CONF={tmp}/".encode()
    pids = []
    for entry in glob.glob("/proc/[0-9]*/environ"):
        pid = int(entry.split("/")[2])
        if pid == os.getpid():
            continue
        with contextlib.suppress(OSError):
            with open(entry, "rb") as f:
                if needle in f.read():
                    pids.append(pid)
    return pids


def stop_daemons(tmp):
    """SIGTERM each daemon's process group (started in its own session) and
    every process of the cluster (processes_using), then SIGKILL what is
    left after 10 s."""
    pids = processes_using(tmp)
    for name in reversed(DAEMONS):
        path = os.path.join(tmp, f"{name}.pidx")
        if os.path.exists(path):
            with open(path) as f:
                pids.append(int(f.read().strip()))
    # munged forks into the background: its pid file names the daemon.
    with contextlib.suppress(OSError, ValueError):
        with open(os.path.join(tmp, "munge", "munged.pid")) as f:
            pids.append(int(f.read().strip()))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for pid in pids:
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def alive(pid):
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    return False


@contextlib.contextmanager
def slurm(tmp):
    """munged, slurmctld and slurmd of a one-node cluster; stopped on the
    way out, however it is taken."""

    def on_term(signum, _frame):
        raise Failure(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        munge_dir = os.path.join(tmp, "munge")
        os.makedirs(munge_dir, mode=0o700)
        key = os.path.join(munge_dir, "munge.key")
        subprocess.run([tool("mungekey"), "--create", "--keyfile", key],
                       check=True, timeout=30)
        munge_socket = os.path.join(munge_dir, "munge.socket")
        # --force: the temporary folder's parents (/tmp) are writable by
        # all, which munged otherwise refuses for its socket.
        subprocess.run(
            [tool("munged"), "--force", f"--socket={munge_socket}",
             f"--key-file={key}", f"--log-file={munge_dir}/munged.log",
             f"--pid-file={munge_dir}/munged.pid",
             f"--seed-file={munge_dir}/munged.seed"], check=True, timeout=30)
        conf = write_slurm_conf(tmp, munge_socket)
        env = dict(os.environ, SLURM_CONF=conf)
        start(tmp, "slurmctld", [tool("slurmctld"), "-D"], env)
        start(tmp, "slurmd", [tool("slurmd"), "-D"], env)
        wait_idle(tmp, env)
        yield env
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_daemons(tmp)


def wait_idle(tmp, env, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    state = ""
    while time.monotonic() < deadline:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, text=True,
                             capture_output=True, timeout=10)
        state = out.stdout.strip() or out.stderr.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    logs = ""
    for name in ["slurmctld.out", "slurmd.out"]:
        with contextlib.suppress(OSError), open(os.path.join(tmp, name)) as f:
            logs += f"--- {name}\n{f.read()[-3000:]}"
    raise Failure(f"the node is not idle after {timeout_s} s (sinfo: "
                  f"{state!r})\n{logs}")


def write_config(path):
    """The distributed tests' tiny run, one rank of each role: TASKS."""
    write_run_config(path, tiny_run_config(
        "runs", learner_ranks=1, rollout_ranks=1, grpo_steps=GRPO_STEPS,
        sft_steps=SFT_STEPS, tasks_per_step=4, demo_episodes=8,
        checkpoint_every=1))


def submit(env, clinrl, source_dir, job_dir, extra=(), timeout_s=60):
    env = dict(env, CLINRL_BIN=clinrl, OMP_NUM_THREADS="1")
    # The template's #SBATCH lines ask for 2 nodes of 6 tasks; the command
    # line overrides them for this one-node cluster (more tasks than cores:
    # --overcommit, as launch/mpirun's --oversubscribe).
    cmd = ["sbatch", "--wait", "--parsable", "--nodes=1",
           f"--ntasks={TASKS}", "--cpus-per-task=1", "--overcommit",
           "--time=5", os.path.join(source_dir, "launch", "slurm.sbatch"),
           "tiny.json", *extra]
    log("+ " + " ".join(cmd))
    try:
        out = subprocess.run(cmd, cwd=job_dir, env=env, capture_output=True,
                             text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        subprocess.run(["scancel", "--user=root"], env=env, timeout=10)
        raise Failure(f"sbatch --wait did not return within {timeout_s} s "
                      f"(job output: {glob.glob(job_dir + '/clinrl-*.out')})"
                      ) from e
    sys.stdout.write(out.stderr)
    job_id = out.stdout.strip().split(";")[0]
    check(job_id.isdigit(), f"sbatch printed no job id: {out.stdout!r}")
    return job_id, out.returncode


def read(path):
    with open(path) as f:
        return f.read()


def check_job(env, job_id, rc, job_dir, grpo_steps=GRPO_STEPS):
    out_path = os.path.join(job_dir, f"clinrl-{job_id}.out")
    check(os.path.exists(out_path), f"no job output file {out_path}")
    output = read(out_path)
    tail = "\n".join(output.splitlines()[-40:])
    check(rc == 0,
          f"sbatch --wait exited {rc}; the job's output ends:\n{tail}")
    info = subprocess.run(["scontrol", "show", "job", job_id], env=env,
                          capture_output=True, text=True, timeout=10).stdout
    check("JobState=COMPLETED" in info and "ExitCode=0:0" in info,
          f"Slurm's record of job {job_id}:\n{info}")
    check("+ srun --mpi=" in output, "no srun line in the job's output")
    roles_line = next((l for l in output.splitlines()
                       if l.startswith("role map: ")), None)
    check(roles_line, f"no 'role map:' line in the job's output:\n{tail}")
    roles = json.loads(roles_line[len("role map: "):])
    check(roles["world_size"] == TASKS,
          f"role map world_size {roles['world_size']}, expected {TASKS}")
    for role in ["learner 0", "env_server 0", "reward_server 0", "rollout 0"]:
        check(role in output, f"no rank started as {role}")
    for end in ["rollout worker rollout-0: the learner ended the run",
                "env_server-0: the learner ended the run",
                "reward_server-0: the learner ended the run"]:
        check(end in output, f"the job's output lacks '{end}':\n{tail}")
    roles_file = json.loads(read(os.path.join(job_dir,
                                              f"clinrl-{job_id}-roles.json")))
    check(roles_file["world_size"] == TASKS,
          f"clinrl-{job_id}-roles.json: world_size {roles_file['world_size']}")

    run_dir = os.path.join(job_dir, "runs", "run")
    grpo = []
    for line in read(os.path.join(run_dir, "metrics.jsonl")).splitlines():
        with contextlib.suppress(ValueError):
            j = json.loads(line)
            if isinstance(j, dict) and j.get("stage") == "grpo":
                grpo.append(j)
    check(len(grpo) == grpo_steps,
          f"{len(grpo)} GRPO steps in metrics.jsonl, expected {grpo_steps}")
    last = f"step_{SFT_STEPS + grpo_steps:08d}"
    ckpt = os.path.join(run_dir, "checkpoints", last)
    check(os.path.isdir(ckpt), f"no checkpoint {ckpt}")
    check(glob.glob(os.path.join(ckpt, "manifest*")),
          f"checkpoint {ckpt} has no manifest")
    check(os.path.exists(os.path.join(run_dir, "summary.json")),
          "no summary.json in the run dir")
    log(f"job {job_id} COMPLETED: {TASKS} ranks, {len(grpo)} GRPO steps, "
        f"checkpoint {last}")
    return output


def stale():
    """Stops the daemons of test runs whose process has exited."""
    for tmp in glob.glob(os.path.join(tempfile.gettempdir(), PREFIX + "*")):
        owner = os.path.basename(tmp)[len(PREFIX):].split("-")[0]
        if not owner.isdigit() or alive(int(owner)):
            continue
        log(f"removing {tmp} (its test, pid {owner}, has exited)")
        stop_daemons(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if sys.argv[1:] == ["stale"]:
        stale()
        return
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    clinrl, source_dir = map(os.path.abspath, sys.argv[1:])
    if os.geteuid() != 0:
        print(f"slurm_test: SKIP: munged and slurmd run as root here "
              f"(running as uid {os.geteuid()})", flush=True)
        sys.exit(SKIP)
    stale()
    tmp = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    started = time.monotonic()
    ok = False
    try:
        with slurm(tmp) as env:
            job_dir = os.path.join(tmp, "job")
            os.makedirs(job_dir)
            write_config(os.path.join(job_dir, "tiny.json"))
            job_id, rc = submit(env, clinrl, source_dir, job_dir)
            check_job(env, job_id, rc, job_dir)
            # The template's continuation: the same script with --resume
            # (and 2 more GRPO steps) goes on from the newest checkpoint.
            job_id, rc = submit(
                env, clinrl, source_dir, job_dir,
                ["--resume", "--set", f"trainer.steps={2 * GRPO_STEPS}",
                 "--allow-config-change", "trainer.steps"])
            output = check_job(env, job_id, rc, job_dir, 2 * GRPO_STEPS)
            resumed = ("resumed from runs/run/checkpoints/"
                       f"step_{SFT_STEPS + GRPO_STEPS:08d}")
            check(resumed in output,
                  f"the second job's output lacks '{resumed}'")
        ok = True
    except (Failure, subprocess.SubprocessError, OSError) as e:
        print(f"FAIL: slurm: {e}\n(files kept in {tmp}; daemons stopped)",
              flush=True)
    if not ok:
        sys.exit(1)
    log(f"PASS in {time.monotonic() - started:.1f} s")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
