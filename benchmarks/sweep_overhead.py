"""Sweep overhead: 4 trials of one small config through `proteus sweep` (Ray Tune) against 4 `proteus train` runs one after another.

Both sides are the commands a user types, each in its own process: one `proteus sweep
--num-samples 4 --num-cpus N` (a local Ray instance of N CPUs, one CPU per trial), and four
`proteus train` runs in a row with the same config, seed and budget. Ray's start-up (``ray.init``
+ ``ray.shutdown`` of a local instance with the same settings, in its own process) is measured
separately, so the ratio is reported with and without it. Target: the sweep is no slower than the
sequential runs on 2 cores (ratio <= 1).

    python benchmarks/sweep_overhead.py [--timesteps 20000] [--n-queries 5000] [--trials 4] [--num-cpus 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def ray_startup(num_cpus: int) -> float:
    code = ("import time, ray; start = time.perf_counter(); "
            f"ray.init(address='local', num_cpus={num_cpus}, include_dashboard=False, log_to_driver=False, logging_level='warning'); "
            "ray.shutdown(); print(time.perf_counter() - start)")
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--n-queries", type=int, default=5000)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    sets = [f"env_kwargs.benchmark_kwargs.n_queries={args.n_queries}", "checkpoint_every=0"]
    set_args = [part for assignment in sets for part in ("--set", assignment)]
    work = Path(tempfile.mkdtemp(prefix="sweep_overhead_"))
    try:
        sequential = sum(run([str(BIN / "proteus"), "train", "--timesteps", str(args.timesteps), "--seed", "0", "--no-progress",
                              "--out", str(work / f"train{i}"), *set_args]) for i in range(args.trials))
        sweep = run([str(BIN / "proteus"), "sweep", "--num-samples", str(args.trials), "--seeds", "0", "--timesteps", str(args.timesteps),
                     "--num-cpus", str(args.num_cpus), "--out", str(work / "sweep"), *set_args])
        startup = ray_startup(args.num_cpus)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.trials} trials x {args.timesteps} steps on {args.n_queries} synthetic queries, {args.num_cpus} Ray CPUs")
    print(f"sequential `proteus train` x {args.trials}: {sequential:7.1f} s")
    print(f"`proteus sweep`:                {sweep:7.1f} s   (Ray start-up alone: {startup:.1f} s)")
    print(f"ratio sweep / sequential:       {sweep / sequential:7.2f}   (without Ray's start-up: {(sweep - startup) / sequential:.2f}; target <= 1)")


if __name__ == "__main__":
    main()
