"""``proteus data``: inspect, download and embed the routing benchmarks.

Subcommands::

    proteus data info --benchmark routerbench --path routerbench_0shot.pkl
    proteus data download routerbench [--variant 5shot]
    proteus data embed routerbench --encoder tfidf-svd [--path FILE]

``info`` prints the numbers of prompts, models and tasks; each model's mean score and mean USD
per query, and the share of queries the oracle sends to it; the oracle's accuracy and cost (the
oracle takes the cheapest model among those with the query's best score); the share of prompts
that no model gets right; and every row and model that an explicit option dropped
(``--missing drop``, ``--drop-tasks``, ``--models``, ``--exclude-models``). It reads the file only
(no embeddings are computed).

``--models A,B`` and ``--exclude-models C`` choose a subset of the models (every ``proteus``
subcommand that loads a benchmark takes them: :func:`add_model_arguments`).

The ``proteus`` CLI calls :func:`add_subparser` and dispatches to :func:`run_data`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

BENCHMARKS: tuple[str, ...] = ("routerbench", "sprout", "synthetic")


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``data`` and its subcommands on an ``argparse`` subparsers object.

    Args:
        subparsers: The object returned by ``parser.add_subparsers()``.

    Returns:
        The ``data`` parser (its handler is :func:`run_data`).
    """
    data = subparsers.add_parser("data", help="inspect, download and embed the routing benchmarks",
                                 description="Inspect, download and embed the routing benchmarks (RouterBench, SPROUT).")
    commands = data.add_subparsers(dest="data_command", metavar="{info,download,embed}")
    commands.required = True

    info = commands.add_parser("info", help="prompts, models, tasks, per-model means, oracle and no-model-correct share")
    info.add_argument("--benchmark", required=True, choices=BENCHMARKS, help="benchmark name")
    info.add_argument("--path", default=None, help="data file (RouterBench: CSV, pickle or parquet) or directory (SPROUT)")
    _add_common(info)
    add_model_arguments(info)

    download = commands.add_parser("download", help="fetch the pinned files from the Hugging Face hub into $PROTEUS_HOME/data")
    download.add_argument("name", choices=("routerbench", "sprout"), help="benchmark name")
    download.add_argument("--variant", default=None, help="routerbench: 0shot | 5shot; sprout: SPROUT | SPROUT-o3mini")

    embed = commands.add_parser("embed", help="compute (or reuse) the cached prompt embeddings of a benchmark")
    embed.add_argument("name", choices=("routerbench", "sprout"), help="benchmark name")
    embed.add_argument("--encoder", default="tfidf-svd", help="encoder name (tfidf-svd, sentence-transformers, ...)")
    embed.add_argument("--dim", type=int, default=None, help="output width of encoders that take one (tfidf-svd)")
    embed.add_argument("--path", default=None, help="data file or directory (default: look it up)")
    embed.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split (RouterBench)")
    _add_common(embed)
    add_model_arguments(embed)

    data.set_defaults(handler=run_data)
    return data


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", default=None, help="routerbench: 0shot | 5shot; sprout: SPROUT | SPROUT-o3mini")
    parser.add_argument("--drop-tasks", nargs="*", default=[], metavar="PREFIX", help="drop tasks whose name starts with PREFIX")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="unpickle a RouterBench pickle that matches no pinned release")
    parser.add_argument("--missing", choices=("raise", "drop"), default="raise", help="rows with missing cells: raise or drop")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--models A,B`` and ``--exclude-models C,D`` (a model subset) to ``parser``."""
    parser.add_argument("--models", default=None, metavar="A,B",
                        help="use only these models (comma-separated names, at least 2); unknown names are an error listing "
                             "the available ones")
    parser.add_argument("--exclude-models", default=None, metavar="A,B",
                        help="leave these models out (comma-separated names); a RouterBench file may lack their columns")


def model_subset(args: argparse.Namespace) -> dict[str, list[str]]:
    """The ``--models`` / ``--exclude-models`` of ``args`` as ``load_benchmark`` keywords (only those given).

    Raises:
        ValueError: For an empty or duplicated name, naming the flag.
    """
    from proteus_env.benchmark import parse_model_names

    out: dict[str, list[str]] = {}
    for key, flag in (("models", "--models"), ("exclude_models", "--exclude-models")):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = list(parse_model_names(value, flag) or ())
    return out


def format_dropped(metadata: Any) -> list[str]:
    """The ``dropped`` lines of ``info`` (``nothing`` when no option dropped a row or a model)."""
    from proteus_env.loaders.table import describe_dropped

    lines = describe_dropped(metadata)
    return [f"{'dropped':<10} {line}" for line in lines] or [f"{'dropped':<10} nothing"]


def run_data(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Run a ``data`` subcommand; a missing or unreadable file raises (the CLI prints it and exits 2)."""
    handlers = {"info": _info, "download": _download, "embed": _embed}
    return handlers[args.data_command](args, out or sys.stdout)


# ---------------------------------------------------------------------- info
def _info(args: argparse.Namespace, out: TextIO) -> int:
    from proteus_env.loaders import load_table, summarize_outcomes

    if args.benchmark == "synthetic":
        if args.path:
            raise ValueError("the synthetic benchmark is generated, it takes no --path")
        from proteus_env import load_benchmark

        bench = load_benchmark("synthetic", **model_subset(args))
        header = {"benchmark": "synthetic (generated, seed 0)", "source": "proteus_env.synthetic"}
        models, task, scores, costs, metadata = bench.models, bench.task, bench.scores, bench.costs, bench.metadata
    else:
        table = load_table(args.benchmark, args.path, variant=args.variant, drop_tasks=tuple(args.drop_tasks),
                           trust_pickle=args.trust_pickle, missing=args.missing, **model_subset(args))
        variant = table.metadata.get("variant")
        header = {"benchmark": f"{args.benchmark}{f' ({variant})' if variant else ''}",
                  "source": str(table.metadata.get("source"))}
        models, task, scores, costs, metadata = table.models, table.task, table.scores, table.costs, table.metadata
    summary = summarize_outcomes(tuple(models), scores, costs)
    n = int(scores.shape[0])
    lines = [f"{'benchmark':<10} {header['benchmark']}", f"{'source':<10} {header['source']}", f"{'prompts':<10} {n}",
             f"{'models':<10} {len(models)}", f"{'tasks':<10} {len(set(map(str, task)))}", *format_dropped(metadata), ""]
    width = max(28, *(len(m) for m in models))
    lines.append(f"{'model':<{width}}  {'mean score':>10}  {'mean USD/query':>14}  {'oracle share':>12}")
    order = sorted(models, key=lambda m: (-summary["mean_score"][m], m))
    for model in order:
        lines.append(f"{model:<{width}}  {summary['mean_score'][model]:>10.4f}  {summary['mean_usd'][model]:>14.6f}  "
                     f"{summary['oracle_share'][model]:>11.1%}")
    oracle_label = "oracle (cheapest best model)"
    lines.append(f"{oracle_label:<{width}}  {summary['oracle_accuracy']:>10.4f}  {summary['oracle_usd']:>14.6f}")
    none = summary["no_model_correct"]
    lines.append("")
    lines.append(f"prompts with no model correct: {none:.2%} ({round(none * n)} of {n})")
    print("\n".join(lines), file=out)
    return 0


# ---------------------------------------------------------------------- download
def _download(args: argparse.Namespace, out: TextIO) -> int:
    from proteus_env.loaders import download

    for path in download(args.name, variant=args.variant):
        print(f"downloaded {path}", file=out)
    return 0


# ---------------------------------------------------------------------- embed
def _embed(args: argparse.Namespace, out: TextIO) -> int:
    from proteus_env import load_benchmark

    if args.split_seed < 0:
        raise ValueError(f"--split-seed must be a non-negative integer, got {args.split_seed}.")
    kwargs: dict[str, Any] = {"split_seed": args.split_seed, "encoder": args.encoder, "drop_tasks": tuple(args.drop_tasks),
                              "trust_pickle": args.trust_pickle, "missing": args.missing}
    if args.dim is not None:
        kwargs["encoder_kwargs"] = {"dim": args.dim}
    if args.variant is not None:
        kwargs["variant"] = args.variant
    kwargs.update(model_subset(args))
    start = time.perf_counter()
    bench = load_benchmark(args.name, data_path=args.path, **kwargs)
    seconds = time.perf_counter() - start
    meta = bench.metadata
    state = "read from cache" if meta.get("embedding_cache_hit") else "computed"
    print(f"{bench.n_queries} prompts embedded with {meta.get('encoder')} (d={bench.embedding_dim}): {state} in {seconds:.1f} s",
          file=out)
    print(f"cache file: {meta.get('embedding_cache_file')}", file=out)
    print("\n".join(format_dropped(meta)), file=out)
    return 0

