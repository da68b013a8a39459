"""blockprop benchmarks: blockprop, NumPy (OpenBLAS) and PyTorch side by side, in one run.

    python benchmarks/run.py                 # every suite
    python benchmarks/run.py --suite gemm    # one suite (peak, gemm, layer, train, predict, memory, serve, bf16, many, grid)
    python benchmarks/run.py --quick         # fewer sizes, shorter timings
    python benchmarks/run.py --plot gemm.png # also plot GFLOP/s against size (needs matplotlib)
    python benchmarks/run.py --suite memory  # peak RSS of fit against params + activations + data set
    python benchmarks/run.py --suite many --plot-many many.png  # fit_many: 16 models at once
    python benchmarks/run.py --suite serve   # requests/s of one model predicting from 1, 2, 4 threads
    python benchmarks/run.py --suite bf16    # precision="bfloat16": GEMM, epoch, MNIST accuracy
    python benchmarks/run.py --suite grid    # MLPGridSearchCV vs GridSearchCV (blockprop's, sklearn's MLP)

GFLOP/s are quoted against the machine's FMA peak, measured here by a register-only FMA loop.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np

import blockprop as bp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import torch  # noqa: E402
import suites  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="peak,gemm,layer,train,predict,memory,serve,bf16,many,grid",
                   help="comma-separated suites to run (default: all)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every library")
    p.add_argument("--quick", action="store_true", help="fewer sizes and shorter timings")
    p.add_argument("--plot", metavar="PNG", help="write a plot of GEMM GFLOP/s against size")
    p.add_argument("--plot-many", metavar="PNG", help="many: write a plot of model-samples/s against K")
    args = p.parse_args(argv)

    print(f"blockprop {bp.__version__}  isa={bp.isa()} (supported: {', '.join(bp.supported_isas())})  "
          f"threads={args.threads}  numpy {np.__version__}  "
          f"torch {torch.__version__ if torch else 'not installed'}  "
          f"python {platform.python_version()}  cpus={os.cpu_count()}")
    bp.set_num_threads(args.threads)
    ctx = suites.Context(threads=args.threads, quick=args.quick, plot_many=args.plot_many)
    for name in [s.strip() for s in args.suite.split(",") if s.strip()]:
        fn = getattr(suites, f"suite_{name}", None)
        if fn is None:
            p.error(f"unknown suite {name!r}")
        fn(ctx)
    if args.plot:
        suites.plot_gemm(ctx, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
