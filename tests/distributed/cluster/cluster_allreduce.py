"""`clinrl bench allreduce` across two hosts of the namespace cluster
(issue 24; docs/distributed.md, "A cluster on one machine").

One rank on h0 (10.231.0.1) and one on h1 (10.231.0.2), started by
cluster_mpirun (Open MPI's mpirun in the switch, a daemon per host), so
every byte between the ranks crosses the data network: h0's veth, the
bridge, h1's veth. The bench all-reduces the same float32 buffer through
distributed::Communicator and through plain MPI_Allreduce, interleaved
iteration by iteration, in the same run and over the same link, and
prints both bus bandwidths and their ratio.

Checks: the job exits 0 with 2 ranks and the mpi backend; h1's eth0
received at least the bytes the all-reduces must bring it (a 2-rank
all-reduce of B bytes brings each rank B bytes: half in the
reduce-scatter, half in the all-gather), so the figures are of the veth
link and not of shared memory; both bandwidths are positive; and the
ratio Communicator / MPI_Allreduce is at least --min-ratio.

usage: cluster_allreduce.py CLINRL [--quick] [--mib N] [--iters N]
                            [--min-ratio R] [--json PATH]
Exit status: 0 passed, 1 failed, 77 skipped (namespaces cannot be created
here; with CLINRL_REQUIRE_NETNS=1 that fails instead).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from cluster_test import (CLUSTER_MPIRUN, NETNS_CLUSTER, Failure, check,
                          cluster, log, skip)

HOSTS = ["10.231.0.1", "10.231.0.2"]


def rx_bytes(cluster_id, host):
    """Bytes received so far on the data link (eth0) of `host`."""
    out = subprocess.run(
        [NETNS_CLUSTER, "exec", str(cluster_id), host, "cat",
         "/sys/class/net/eth0/statistics/rx_bytes"],
        capture_output=True, text=True, timeout=30, check=True)
    return int(out.stdout.strip())


def run_bench(args, work):
    cluster_id = os.getpid()
    hostfile = os.path.join(work, "hosts")
    with open(hostfile, "w") as f:
        f.write("\n".join(HOSTS) + "\n")
    bench = [args.clinrl, "bench", "allreduce", "--threads", "1"]
    if args.quick:
        bench.append("--quick")
    if args.mib:
        bench += ["--opt", f"mib={args.mib}"]
    if args.iters:
        bench += ["--opt", f"iters={args.iters}"]
    cmd = [CLUSTER_MPIRUN, "-n", "2", "--hostfile", hostfile,
           "--bind-to", "none", "--allow-run-as-root",
           "-x", "OMP_NUM_THREADS=1"] + bench
    env = dict(os.environ, CLINRL_CLUSTER_ID=str(cluster_id),
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    with cluster(cluster_id):
        before = rx_bytes(cluster_id, "h1")
        log("+ " + " ".join(cmd))
        started = time.monotonic()
        try:
            job = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                 timeout=args.timeout)
        except subprocess.TimeoutExpired as e:
            raise Failure(
                f"the bench did not finish in {args.timeout} s") from e
        elapsed = time.monotonic() - started
        received = rx_bytes(cluster_id, "h1") - before
    sys.stdout.write(job.stdout)
    sys.stdout.write(job.stderr)
    check(job.returncode == 0, f"mpirun exited {job.returncode}")
    figures = None
    for line in job.stdout.splitlines():
        if line.startswith("{") and '"bench":"allreduce"' in line:
            figures = json.loads(line)
    check(figures is not None, "no figures line from rank 0")
    return figures, received, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clinrl")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mib", type=int, default=0)
    parser.add_argument("--iters", type=int, default=0)
    parser.add_argument("--min-ratio", type=float, default=0.9)
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    args.clinrl = os.path.abspath(args.clinrl)
    if os.geteuid() != 0:
        skip(f"network namespaces need root (running as uid {os.geteuid()})")
    work = tempfile.mkdtemp(prefix="clinrl-cluster-allreduce-")
    try:
        figures, received, elapsed = run_bench(args, work)
        check(figures["ranks"] == 2, f"ranks {figures['ranks']}, expected 2")
        check(figures["backend"] == "mpi",
              f"backend {figures['backend']}, expected mpi")
        # Correctness pass (2 all-reduces) + warm-up and timed iterations,
        # each a Communicator all-reduce and an MPI_Allreduce.
        warmup = 1 if figures["quick"] else 3
        calls = 2 + 2 * (warmup + figures["iters"])
        expected = calls * figures["bytes"]
        log(f"h1's eth0 received {received} bytes; the all-reduces bring it "
            f"{expected} ({calls} x {figures['bytes']})")
        check(received >= expected,
              f"h1's data link received {received} bytes, less than the "
              f"{expected} its all-reduces need: the ranks did not talk over "
              f"the veth link")
        check(figures["busbw_gbps"] > 0 and figures["mpi_raw_busbw_gbps"] > 0,
              "a bandwidth is not positive")
        ratio = figures["ratio"]
        log(f"{figures['bytes'] >> 20} MiB, median of {figures['iters']}: "
            f"Communicator {figures['busbw_gbps']:.3f} GB/s "
            f"({figures['time_ms']:.1f} ms), MPI_Allreduce "
            f"{figures['mpi_raw_busbw_gbps']:.3f} GB/s "
            f"({figures['mpi_raw_time_ms']:.1f} ms), ratio {ratio:.3f}; "
            f"job {elapsed:.1f} s")
        check(ratio >= args.min_ratio,
              f"ratio {ratio:.3f} below {args.min_ratio}")
        if args.json:
            figures["h1_rx_bytes"] = received
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=1)
    except Failure as e:
        print(f"FAIL: cluster allreduce: {e}\n(files kept in {work})",
              flush=True)
        sys.exit(1)
    log("PASS")
    subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
