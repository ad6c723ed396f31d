"""Peak memory of building a RouterBench-format table, with and without one 2-million-character prompt.

Issue 16 ("memory stays bounded by the data, not by its worst row"): prompt-disjoint splitting used a
fixed-width numpy string array (``N x`` the longest prompt), so one 2-million-character prompt turned a
405K-row benchmark into terabytes. This script generates a 405K-row CSV in the RouterBench wide schema
(ordinary prompts of 20-60 words, 61 tasks, 11 models with a score and a cost column each), and a copy
whose first prompt is 2,000,000 characters long; then, in a fresh subprocess for each file, reads it
with :func:`proteus_env.loaders.read_routerbench` and makes the prompt-disjoint splits with
:func:`proteus_env.splits.make_splits` (the table a benchmark is built from, before embeddings), and
reports the process's peak resident memory (``resource.getrusage``: ``ru_maxrss``). The files are
generated in subprocesses too: a child inherits its parent's ``ru_maxrss`` across ``fork``, so the
parent stays small.

Target: peak with the long prompt <= 1.2 x peak without.

    python benchmarks/memory_prompt.py [--rows 405000] [--long-chars 2000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_RATIO = 1.2
MODELS = (
    "WizardLM/WizardLM-13B-V1.2", "claude-instant-v1", "claude-v1", "claude-v2", "gpt-3.5-turbo-1106", "gpt-4-1106-preview",
    "meta/code-llama-instruct-34b-chat", "meta/llama-2-70b-chat", "mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
)
WORDS = ("the of and to in is that for it as with was on be by this are or from at which an have not but what all were when "
         "we there can been has more if will one would so no out up about into than them some could only other then its over "
         "algebra integral proof chemistry biology history poem summary translate python function list sort graph physics "
         "energy market price contract law court patient symptom recipe travel essay question answer choose option explain").split()


def write_table(path: Path, rows: int, *, seed: int, long_chars: int = 0) -> None:
    """Write a RouterBench wide-schema CSV of ``rows`` ordinary prompts (the first one ``long_chars`` long, if > 0)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    vocabulary = np.array(WORDS, dtype=object)
    lengths = rng.integers(20, 61, size=rows)
    words = vocabulary[rng.integers(0, vocabulary.size, size=int(lengths.sum()))]
    cuts = np.cumsum(lengths)[:-1]
    prompts = [repr([f"Question {i}: " + " ".join(chunk.tolist())]) for i, chunk in enumerate(np.split(words, cuts))]
    if long_chars > 0:
        unit = "lorem ipsum dolor sit amet "
        prompts[0] = repr([(unit * (long_chars // len(unit) + 1))[:long_chars]])
    tasks = np.array([f"task-{t:02d}" for t in range(61)], dtype=object)
    columns: dict[str, object] = {"sample_id": [f"s{i}" for i in range(rows)], "prompt": prompts,
                                  "eval_name": tasks[rng.integers(0, tasks.size, size=rows)]}
    for k, model in enumerate(MODELS):
        columns[model] = (rng.random(rows) < 0.35 + 0.04 * k).astype(np.float64)
    for k, model in enumerate(MODELS):
        columns[f"{model}|total_cost"] = np.round(1e-5 * (1 + k) * lengths * rng.uniform(0.5, 1.5, size=rows), 8)
    pd.DataFrame(columns).to_csv(path, index=False)


def child(path: str) -> None:
    """Build the table and its splits from ``path``; print one JSON line of measurements."""
    from proteus_env.loaders import read_routerbench
    from proteus_env.splits import make_splits

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    table = read_routerbench(path)
    splits = make_splits(table.task, seed=0, groups=table.prompts)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": table.n_queries, "longest_prompt": max(len(p) for p in table.prompts.tolist()),
                      "baseline_bytes": baseline, "peak_bytes": peak, "seconds": seconds,
                      "split_sizes": {k: int(v.size) for k, v in splits.items()}}))


def _run(*arguments: str) -> str:
    """Run this script with ``arguments`` in a fresh interpreter; return its output."""
    done = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def measure(path: Path) -> dict:
    """Run :func:`child` on ``path`` in a fresh interpreter (so each peak is its own)."""
    return json.loads(_run("--child", str(path)).strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=405_000, help="rows of the generated table")
    parser.add_argument("--long-chars", type=int, default=2_000_000, help="characters of the one long prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="where to write the two CSV files (default: a temporary folder, removed)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--generate", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.generate:
        write_table(Path(args.generate), args.rows, seed=args.seed, long_chars=args.long_chars)
        return
    with tempfile.TemporaryDirectory(prefix="proteus_memory_", dir=args.dir) as folder:
        plain, long = Path(folder) / "ordinary.csv", Path(folder) / "one_long_prompt.csv"
        start = time.perf_counter()
        common = ("--rows", str(args.rows), "--seed", str(args.seed))
        _run("--generate", str(plain), *common, "--long-chars", "0")
        _run("--generate", str(long), *common, "--long-chars", str(args.long_chars))
        print(f"generated {args.rows:,} rows twice in {time.perf_counter() - start:.0f} s: {plain.stat().st_size / 1e6:.0f} MB and "
              f"{long.stat().st_size / 1e6:.0f} MB (first prompt {args.long_chars:,} characters)")
        without, with_long = measure(plain), measure(long)
    mb = 1024 * 1024
    ratio = with_long["peak_bytes"] / without["peak_bytes"]
    grown = (with_long["peak_bytes"] - with_long["baseline_bytes"]) / max(1, without["peak_bytes"] - without["baseline_bytes"])
    print(f"{'':<32} {'peak RSS':>10} {'after imports':>14} {'build':>8} {'rows':>8} {'longest prompt':>15}")
    for label, run in (("ordinary prompts", without), (f"one {args.long_chars:,}-character prompt", with_long)):
        print(f"{label:<32} {run['peak_bytes'] / mb:>7.0f} MB {run['baseline_bytes'] / mb:>11.0f} MB {run['seconds']:>6.1f} s "
              f"{run['rows']:>8,} {run['longest_prompt']:>15,}")
    verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"peak ratio (with / without): {ratio:.3f}x  (target <= {TARGET_RATIO}x: {verdict}); "
          f"growth above the imports: {grown:.3f}x")


if __name__ == "__main__":
    main()
