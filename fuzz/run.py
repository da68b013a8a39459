"""Run a fuzz target for a bounded time: ``python fuzz/run.py TARGET SECONDS``.

With atheris installed (``pip install atheris``): coverage-guided fuzzing of the Python code of
blockprop (and NumPy's npz reader) from the committed corpus ``fuzz/corpus/TARGET``. Without it,
a seeded random-mutation fuzzer over the same corpus (byte flips, inserts, deletes, truncations,
splices, interesting integers), so the check still runs everywhere. Exits non-zero on a finding.
"""
from __future__ import annotations

import os
import random
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def corpus(target: str):
    d = os.path.join(HERE, "corpus", target)
    return [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))]


def mutate(rng: random.Random, data: bytes, pool) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(7)
        if op == 0 and b:  # flip bits
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # random byte
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 2:  # insert bytes
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 3 and b:  # delete a run
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 64)]
        elif op == 4 and b:  # truncate
            del b[rng.randrange(len(b)):]
        elif op == 5 and len(b) >= 4:  # interesting 32-bit value, either byte order
            i = rng.randrange(len(b) - 3)
            v = rng.choice([0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
            b[i:i + 4] = v.to_bytes(4, rng.choice(["big", "little"]))
        elif op == 6:  # splice with another corpus entry
            other = rng.choice(pool)
            i, j = rng.randrange(len(b) + 1), rng.randrange(len(other) + 1)
            b = b[:i] + other[j:]
    return bytes(b)


def run_fallback(target: str, seconds: float) -> int:
    from targets import TARGETS
    fn = TARGETS[target]
    pool = corpus(target)
    seed = int(os.environ.get("FUZZ_SEED", "0"))
    rng = random.Random(seed)
    end, runs = time.monotonic() + seconds, 0
    for data in pool:  # the seeds themselves first
        fn(data)
        runs += 1
    while time.monotonic() < end:
        data = mutate(rng, rng.choice(pool), pool)
        try:
            fn(data)
        except Exception:
            path = os.path.join(os.getcwd(), f"crash-{target}-{runs}")
            with open(path, "wb") as f:
                f.write(data)
            traceback.print_exc()
            print(f"fuzz {target}: finding after {runs} inputs, input saved to {path}", file=sys.stderr)
            return 1
        runs += 1
    print(f"fuzz {target} (random mutation, seed {seed}): {runs} inputs in {seconds:.0f} s, no findings")
    return 0


def run_atheris(target: str, seconds: float) -> None:
    import atheris
    with atheris.instrument_imports(include=["blockprop", "numpy.lib", "zipfile", "gzip", "json"]):
        import blockprop  # noqa: F401
        import blockprop.data  # noqa: F401
        import numpy.lib._npyio_impl  # noqa: F401
        from targets import TARGETS
    fn = TARGETS[target]
    import tempfile
    d = os.path.join(HERE, "corpus", target)
    # libFuzzer adds new inputs to the first corpus directory: a scratch one, so the committed
    # seeds stay as they are. Findings go to the current directory.
    scratch = tempfile.mkdtemp(prefix=f"bp-fuzz-{target}-")
    argv = [sys.argv[0], f"-max_total_time={int(seconds)}", "-timeout=20", "-rss_limit_mb=4096",
            "-max_len=65536", "-print_final_stats=1", scratch, d]
    atheris.Setup(argv, fn)
    atheris.Fuzz()


def main() -> int:
    target, seconds = sys.argv[1], float(sys.argv[2])
    if os.environ.get("FUZZ_ENGINE", "atheris") == "atheris":
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed: using the random-mutation fuzzer", file=sys.stderr)
        else:
            run_atheris(target, seconds)
            return 0
    return run_fallback(target, seconds)


if __name__ == "__main__":
    sys.exit(main())
