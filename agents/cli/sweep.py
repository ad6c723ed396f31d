"""``proteus sweep``: parse the options and print the ranking; the work is :mod:`agents.sweep`."""

from __future__ import annotations

import argparse
import math
import sys

from agents.sweep import SearchSpace, SweepSpec, resume_sweep, run_sweep
from agents.sweep.metrics import RANKING
from agents.sweep.space import resolve_benchmarks


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``proteus sweep``."""
    parser = subparsers.add_parser(
        "sweep", help="grid or random search over config overrides x seeds x benchmarks on Ray Tune",
        description="Train one `proteus train` run per trial on Ray Tune (a local Ray instance sized to this machine's cores, or "
                    "a cluster with --address), each reporting its validation metrics at every dual update; writes trials.csv, "
                    "configs.csv (ranked: " + ", then ".join(f"{m} {'high' if d == 'max' else 'low'}" for m, d in RANKING)
                    + ") and best.json to --out. Needs the [ray] extra.")
    space = parser.add_argument_group("search space (the keys of `proteus train --set`)")
    space.add_argument("--grid", action="append", default=[], metavar="KEY=[V1,V2,...]",
                       help="try every value, e.g. --grid ppo.learning_rate=[0.001,0.0003] (repeatable; every combination)")
    space.add_argument("--random", action="append", default=[], metavar="KEY=DIST(ARGS)",
                       help="draw --num-samples values from uniform(a,b), loguniform(a,b), randint(a,b) or choice([..]), "
                            "e.g. --random dual.eta=loguniform(0.1,1) (repeatable)")
    space.add_argument("--num-samples", type=int, default=1, help="draws of the --random keys (default 1)")
    space.add_argument("--seeds", type=int, nargs="+", default=[0], help="split seeds, each configuration on each (default 0)")
    space.add_argument("--benchmark", nargs="+", default=["synthetic"],
                       help="benchmarks (synthetic, routerbench, sprout) or environment ids (default synthetic)")
    train = parser.add_argument_group("every trial (as proteus train)")
    train.add_argument("--config", default=None, help="YAML config (rl-zoo style); default: the packaged one")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config entry in every trial (repeatable)")
    train.add_argument("--timesteps", type=int, default=None, help="training transitions per trial (default: the config's)")
    train.add_argument("--n-envs", type=int, default=None)
    train.add_argument("--data", default=None, help="data file for the RouterBench / SPROUT benchmarks")
    ray = parser.add_argument_group("Ray")
    ray.add_argument("--address", default=None,
                     help="a Ray cluster: HOST:PORT printed by `ray start --head` (or ray://HOST:PORT, or auto); default: a new "
                          "local instance on this machine")
    ray.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local instance (default: this machine's cores)")
    ray.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs reserved per trial (default 1)")
    ray.add_argument("--max-concurrent", type=int, default=None, help="at most this many trials at once")
    parser.add_argument("--out", required=True, help="sweep directory (tables, Tune's state, one artifact per trial)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted sweep in --out (its own settings; finished trials are kept)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's and Tune's own output")
    parser.set_defaults(handler=_run)


#: Options that define a sweep, refused with --resume (the sweep keeps its own).
_SPEC_OPTIONS = ("grid", "random", "overrides", "timesteps", "n_envs", "data", "config", "max_concurrent")


def _run(args: argparse.Namespace) -> int:
    def emit(line: str) -> None:
        print(line, flush=True)

    if args.resume:
        given = [name for name in _SPEC_OPTIONS if getattr(args, name)]
        if given:
            raise ValueError(f"--resume continues the sweep with its own settings; leave out {', '.join('--' + g.replace('_', '-') for g in given)}.")
        print(f"resuming the sweep in {args.out}", flush=True)
        result = resume_sweep(args.out, address=args.address, num_cpus=args.num_cpus, verbose=args.verbose, on_trial=emit)
    else:
        space = SearchSpace.parse(grid=args.grid, random=args.random, seeds=args.seeds, benchmarks=args.benchmark,
                                  num_samples=args.num_samples)
        data_paths = {}
        if args.data is not None:
            real = [env_id for env_id in space.env_ids if env_id != resolve_benchmarks(["synthetic"])[0]]
            if not real:
                raise ValueError("--data goes with --benchmark routerbench or sprout (the synthetic benchmark needs no file).")
            data_paths = {env_id: args.data for env_id in real}
        spec = SweepSpec(space, out_dir=args.out, base_overrides=tuple(args.overrides), config_path=args.config, timesteps=args.timesteps,
                         n_envs=args.n_envs, data_paths=data_paths, cpus_per_trial=args.cpus_per_trial, max_concurrent=args.max_concurrent)
        where = f"the Ray cluster at {args.address}" if args.address else "a local Ray instance"
        print(f"sweep: {space.n_trials} trials ({_shape(space)}) on {where}; results in {args.out}", flush=True)
        result = run_sweep(spec, address=args.address, num_cpus=args.num_cpus, verbose=args.verbose, on_trial=emit)
    _print_ranking(result)
    return 0 if result.best is not None else 1


def _shape(space: SearchSpace) -> str:
    parts = [f"{key}: {len(values)}" for key, values in space.grid.items()]
    parts += [f"{key}: {dist.describe()}" for key, dist in space.random.items()]
    parts += [f"seeds: {len(space.seeds)}", f"benchmarks: {len(space.env_ids)}"]
    if space.num_samples > 1:
        parts.append(f"samples: {space.num_samples}")
    return " x ".join(parts)


def _print_ranking(result) -> None:
    configs = result.configs
    keys = [c for c in configs.columns if c not in ("rank", "n_trials", "n_complete", "floor_compliance", "violation", "usd_per_1k",
                                                     "accuracy", "tau_span", "floor_compliance_min")]
    print(f"{'rank':>4} {'compliance':>10} {'violation':>9} {'USD/1K':>8} {'trials':>6}  configuration")
    for _, row in configs.head(10).iterrows():
        rank = "-" if isinstance(row["rank"], float) and math.isnan(row["rank"]) else str(int(row["rank"]))
        described = " ".join(f"{k}={row[k]}" for k in keys) or "(base config)"
        print(f"{rank:>4} {row['floor_compliance']:>10.3f} {row['violation']:>9.4f} {row['usd_per_1k']:>8.3f} "
              f"{int(row['n_complete'])}/{int(row['n_trials']):<4}  {described}")
    failed = result.trials[result.trials["status"] == "ERROR"]
    for _, row in failed.iterrows():
        print(f"proteus sweep: warning: trial {row['trial_id']} failed: {row['error']}", file=sys.stderr)
    best = result.best
    print(f"tables: {result.out_dir / 'trials.csv'}, {result.out_dir / 'configs.csv'}; best: {result.out_dir / 'best.json'}")
    if best is not None:
        print(f"train the best: {best['command']}")
    else:
        print("proteus sweep: error: no configuration finished all its trials (see trials.csv)", file=sys.stderr)
