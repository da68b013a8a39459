"""Data-parallel training over MPI: throughput on 1 and 2 ranks here, and scaling on paper.

    python benchmarks/distributed.py            # launches itself with mpiexec -n 1, then -n 2
    python benchmarks/distributed.py --quick    # smaller data, fewer steps
    python benchmarks/distributed.py --ranks 1,2,4 --hidden 2048

For every rank count it prints samples/second of ``blockprop.distributed.fit`` (global: all ranks
together), the bytes each rank sends per step (the packed gradients, once, in one Allreduce), and
the time per step split into compute (forward, loss, backward on the rank's rows), allreduce and
optimizer update (slowest rank). The machine's cores are split over the ranks (cores // ranks
threads each), so every row uses the whole machine. ``model.fit`` in one process (the C++ training
loop) is shown for reference. Last, the expected scaling over k machines at 10 and 25 Gbit/s,
from the measured 1-rank compute time and a ring allreduce moving 2·(k−1)/k · buffer bytes per
step per machine (see docs/distributed.md).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WORKER_ENV = "BLOCKPROP_BENCH_MPI_WORKER"


def build(args):
    import blockprop as bp
    return bp.Sequential(bp.Dense(args.features, args.hidden, "relu", seed=1),
                         bp.Dense(args.hidden, args.hidden, "relu", seed=2),
                         bp.Dense(args.hidden, args.classes, seed=3))


def data(args):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.samples, args.features)).astype(np.float32)
    y = rng.integers(0, args.classes, size=args.samples)
    return X, y


def worker(args) -> None:
    """One rank: time the phases of a step, then whole epochs of distributed.fit."""
    import blockprop as bp
    from blockprop import distributed as dist
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    r, k = comm.Get_rank(), comm.Get_size()
    threads = dist.set_threads_per_rank(None, comm)
    X, y = data(args)
    model = build(args)
    opt = bp.optim.SGD(0.01, momentum=0.9)
    loss = bp.nn.losses.CrossEntropyLoss()
    replica = dist.DataParallel(model, comm)
    Xb, yb = X[r * args.batch:(r + 1) * args.batch], y[r * args.batch:(r + 1) * args.batch]
    params = dict(replica.params)
    phases = np.zeros(3)
    for step in range(args.steps + 2):  # two warm-up steps
        comm.Barrier()
        t0 = time.perf_counter()
        replica.gradients(Xb, yb, loss, 1.0 / k)
        t1 = time.perf_counter()
        replica.allreduce()
        t2 = time.perf_counter()
        opt.step(params, opt.lr)
        t3 = time.perf_counter()
        if step >= 2:
            phases += (t1 - t0, t2 - t1, t3 - t2)
    phases /= args.steps
    comm.Allreduce(MPI.IN_PLACE, phases, op=MPI.MAX)

    model = build(args)
    dist.fit(model, X[:args.batch * k * 4], y[:args.batch * k * 4], epochs=1, batch_size=args.batch,
             optimizer=bp.optim.SGD(0.01, momentum=0.9), seed=0, verbose=0)  # warm-up
    comm.Barrier()
    t0 = time.perf_counter()
    dist.fit(model, X, y, epochs=args.epochs, batch_size=args.batch, seed=0, verbose=0)
    elapsed = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    if r == 0:
        print(json.dumps({"ranks": k, "threads": threads, "bytes": replica.nbytes,
                          "params": replica.count, "compute": phases[0], "allreduce": phases[1],
                          "update": phases[2], "samples_per_s": args.samples * args.epochs / elapsed}))


def single_process(args) -> float:
    """Samples/second of model.fit in one process on all cores, batch = per-rank batch."""
    import blockprop as bp
    bp.set_num_threads(os.cpu_count() or 1)
    X, y = data(args)
    model = build(args)
    model.fit(X[:args.batch * 4], y[:args.batch * 4], batch_size=args.batch, verbose=0, seed=0)
    t0 = time.perf_counter()
    model.fit(X, y, epochs=args.epochs, batch_size=args.batch, verbose=0, seed=0,
              optimizer=bp.optim.SGD(0.01, momentum=0.9))
    return args.samples * args.epochs / (time.perf_counter() - t0)


def mpiexec() -> str:
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else "mpiexec"


def projection(compute: float, update: float, nbytes: int, batch: int, latency: float) -> None:
    """Expected samples/second on k machines: each runs 1 rank on all its cores with `batch` rows;
    a step costs compute + update + ring allreduce (2·(k−1)/k·bytes at the link rate, plus
    2·(k−1) message latencies), with no overlap of communication and compute."""
    print(f"\nOn paper, k machines like this one (1 rank each, {batch} rows per machine per step, "
          f"compute {compute * 1e3:.2f} ms + update {update * 1e3:.2f} ms per step, "
          f"{nbytes / 1e6:.2f} MB gradients, {latency * 1e6:.0f} µs per message):")
    print(f"{'k':>4} {'sent/step MB':>13} | {'10 Gbit/s: comm ms':>18} {'samples/s':>10} {'eff.':>5} | "
          f"{'25 Gbit/s: comm ms':>18} {'samples/s':>10} {'eff.':>5}")
    for k in (1, 2, 4, 8, 16, 32, 64):
        sent = 2 * (k - 1) / k * nbytes
        row = f"{k:>4} {sent / 1e6:>13.2f} |"
        for gbit in (10, 25):
            comm = sent * 8 / (gbit * 1e9) + 2 * (k - 1) * latency
            step = compute + update + comm
            row += f" {comm * 1e3:>18.2f} {k * batch / step:>10.0f} {(compute + update) / step:>5.0%} |"
        print(row.rstrip(" |"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", default="1,2", help="comma-separated rank counts (default 1,2)")
    p.add_argument("--batch", type=int, default=256, help="rows per rank per step")
    p.add_argument("--features", type=int, default=784)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--samples", type=int, default=32768)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=20, help="steps timed per phase")
    p.add_argument("--latency", type=float, default=20e-6, help="assumed seconds per message")
    p.add_argument("--quick", action="store_true", help="8192 samples, 8 timed steps")
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.steps = 8192, 8
    if os.environ.get(WORKER_ENV):
        worker(args)
        return 0

    import blockprop as bp
    print(f"blockprop {bp.__version__}  isa={bp.isa()}  cpus={os.cpu_count()}  model "
          f"{args.features}-{args.hidden}-{args.hidden}-{args.classes} float32  "
          f"batch {args.batch} per rank  {args.samples} samples × {args.epochs} epoch(s)  "
          f"load average {os.getloadavg()[0]:.1f} (other work on the machine skews every number)")
    print(f"model.fit, 1 process, batch {args.batch}: {single_process(args):,.0f} samples/s\n")
    print(f"{'ranks':>5} {'threads':>7} {'samples/s':>10} {'buffer MB':>10} {'sent/step MB':>13} "
          f"{'compute ms':>11} {'allreduce ms':>13} {'update ms':>10}")
    results = []
    env = dict(os.environ, **{WORKER_ENV: "1"})
    env.pop("OMP_NUM_THREADS", None)
    for k in [int(v) for v in args.ranks.split(",")]:
        # -m mpi4py: an uncaught exception on one rank aborts the job instead of hanging it.
        cmd = ([mpiexec(), "-n", str(k), sys.executable, "-m", "mpi4py", os.path.abspath(__file__)]
               + (argv if argv is not None else sys.argv[1:]))
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return 1
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(res)
        sent = 2 * (k - 1) / k * res["bytes"]  # per rank and step, ring allreduce
        print(f"{k:>5} {res['threads']:>7} {res['samples_per_s']:>10,.0f} {res['bytes'] / 1e6:>10.2f} {sent / 1e6:>13.2f} "
              f"{res['compute'] * 1e3:>11.2f} {res['allreduce'] * 1e3:>13.2f} {res['update'] * 1e3:>10.2f}")
    one = next((res for res in results if res["ranks"] == 1), results[0])
    projection(one["compute"], one["update"], one["bytes"], args.batch, args.latency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
