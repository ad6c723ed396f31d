"""Hostile-input probes at scale: the generators of ``tests/robustness`` run many more times.

Every entry point (the env's reset, step and constructor; the vector env; the RouterBench loaders on
mutated copies of the real sample; the router's ``route`` and ``route_observations``; a trained
artifact with each file removed, truncated, malformed or out of range; the ``proteus`` CLI as a
subprocess) is fed generated inputs from the same hypothesis strategies the tests use, with
``derandomize=True`` (the same inputs every run), and every outcome is judged as correct, clear
error, traceback, silent wrong result or out of memory (see ``tests/robustness/probe_generators.py``).
The known findings of ``FINDINGS`` (in files the suite does not fix) run once each and are counted
like every other probe.

Prints one row per entry point and lists every probe that ended in the last three columns.
Exits 1 if any did.

    python benchmarks/probes.py                 # about 1,000 probes, a few minutes on 2 cores
    python benchmarks/probes.py --scale 0.2     # a quick look
    python benchmarks/probes.py --only loaders cli --scale 2
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "robustness"))

import probe_generators as gen  # noqa: E402

#: Generated inputs per entry point at --scale 1 (the CLI's are subprocesses, a few seconds each).
COUNTS = {"env.reset": 120, "env.step": 150, "env constructor": 120, "vector env": 120, "loaders": 140, "router.route": 150,
          "router.route_observations": 100, "artifact": 150, "cli": 70,
          "evaluate_policy": 60, "sweep search space": 200}


def collect(entry: gen.EntryPoint, context: object, n: int, *, cli_workers: int = 2) -> list[gen.Outcome]:
    """Run ``n`` generated inputs of ``entry`` (fewer if its strategy has fewer distinct values)."""
    specs = gen.draw(entry.strategy(), n)
    if entry.name != "cli":
        return [entry.runner(context, spec) for spec in specs]
    with concurrent.futures.ThreadPoolExecutor(cli_workers) as pool:  # subprocesses: two at a time
        return list(pool.map(lambda spec: entry.runner(context, spec), specs))


def table(outcomes: list[gen.Outcome]) -> str:
    """The probes table in Markdown: inputs tried and outcomes per entry point."""
    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for outcome in outcomes:
        rows[outcome.entry][outcome.outcome] += 1
    header = "| entry point | inputs tried | " + " | ".join(gen.OUTCOMES) + " |"
    lines = [header, "|" + "---|" * (len(gen.OUTCOMES) + 2)]
    total: collections.Counter = collections.Counter()
    for entry in sorted(rows):
        counts = rows[entry]
        total.update(counts)
        lines.append(f"| {entry} | {sum(counts.values())} | " + " | ".join(str(counts[o]) for o in gen.OUTCOMES) + " |")
    lines.append(f"| **all** | **{sum(total.values())}** | " + " | ".join(f"**{total[o]}**" for o in gen.OUTCOMES) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every entry point's count")
    parser.add_argument("--only", nargs="+", default=None, help="entry points to run (names or prefixes: env, loaders, router, ...)")
    parser.add_argument("--no-findings", action="store_true", help="skip the known findings")
    parser.add_argument("--router", default=None, help="use this trained artifact instead of training a tiny one")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    workdir = gen.scratch_dir()
    contexts = gen.make_contexts(workdir, Path(args.router) if args.router else None)
    outcomes: list[gen.Outcome] = []
    for entry in gen.ENTRY_POINTS:
        if args.only and not any(entry.name.startswith(o) for o in args.only):
            continue
        n = max(1, round(COUNTS[entry.name] * args.scale))
        t0 = time.perf_counter()
        got = collect(entry, contexts[entry.context], n)
        outcomes += got
        print(f"{entry.name}: {len(got)} probes in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not args.no_findings:
        for finding in gen.FINDINGS:
            if args.only and not any(finding.entry.startswith(o) for o in args.only):
                continue
            outcomes.append(finding.run(contexts))
    print(table(outcomes))
    bad = [o for o in outcomes if not o.ok]
    print(f"\n{len(outcomes)} probes in {time.perf_counter() - start:.0f} s; {len(bad)} ended as traceback, silent wrong result or "
          f"out of memory.")
    for outcome in bad:
        print(f"  - {outcome}")
    print(f"(scratch files: {workdir})", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
