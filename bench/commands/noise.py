"""`python -m bench noise`: how steady is this machine? A fixed loop timed in windows.

Runs the same pure-Python busy loop (bench.engine.inject.busy_work) pinned to one CPU for a while
and reports its speed per window: the spread (CV) and the slowest-to-fastest ratio. On a
quiet dedicated machine it stays within a few percent; on a shared VM whose host is busy it
swings, and no benchmark on that machine can be more reproducible than this. Nothing else
(no TensorFlow) runs, so the number is the machine's, not the suite's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench import options
from bench.errors import UsageError

CHUNK = 20_000  # busy-loop iterations per timed chunk (about a millisecond)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("noise", help="measure how steady this machine's CPU speed is",
                       description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=options.seconds, default=20.0, help="how long (default 20)")
    p.add_argument("--window", type=options.seconds,
                   default=1.0, help="window length in s (default 1)")
    p.add_argument("--cpu", type=options.cpu, help="CPU to pin to (default: the last one)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from bench.engine.inject import busy_work
    from bench.engine.placement import available_cpus, pin

    cpus = available_cpus()
    cpu = cpus[-1] if args.cpu is None else args.cpu
    if cpu not in cpus:
        raise UsageError(f"--cpu {cpu}: this process may use CPUs {cpus}")
    if not 0 < args.window <= args.seconds / 3 or args.seconds > 3600:
        raise UsageError("need 0 < --window <= --seconds / 3 and --seconds <= 3600")
    pin([cpu])
    rates = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        start, chunks = time.perf_counter(), 0
        while time.perf_counter() - start < args.window:
            busy_work(CHUNK)
            chunks += 1
        rates.append(chunks * CHUNK / (time.perf_counter() - start))
    arr = np.asarray(rates)
    print(f"CPU {cpu}: {len(arr)} windows of {args.window:g} s; loop speed per window: "
          f"CV {arr.std(ddof=1) / arr.mean():.1%}, slowest/fastest {arr.min() / arr.max():.2f}")
    print("relative speed per window: " + " ".join(f"{v:.2f}" for v in arr / np.median(arr)))
    return 0
