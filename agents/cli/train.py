"""``proteus train``: parse the options and print the summary; the work is :func:`agents.proteus.train.train`."""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from agents.cli.data import add_model_arguments, model_subset
from agents.proteus.collapse import CollapsedPolicyWarning, describe_collapse
from agents.proteus.config import DEFAULT_ENV_ID, load_train_config
from agents.proteus.train import train

#: Exit status of ``--on-collapse fail`` when the trained policy ignores τ.
EXIT_COLLAPSED = 3


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``proteus train``."""
    parser = subparsers.add_parser("train", help="train the Beta-PPO router with the Lagrangian dual callback")
    parser.add_argument("--env", default=DEFAULT_ENV_ID, help="registered environment id")
    parser.add_argument("--data", default=None, help="data file for the RouterBench / SPROUT environments")
    add_model_arguments(parser)  # --models / --exclude-models: train on a model subset (recorded in the artifact)
    parser.add_argument("--config", default=None, help="YAML config (rl-zoo style); default: the packaged one")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry, e.g. --set ppo.learning_rate=0.001 (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-envs", type=int, default=None)
    parser.add_argument("--vec-env", choices=("dummy", "subproc"), default=None)
    parser.add_argument("--timesteps", type=int, default=None)
    parser.add_argument("--tensorboard", default=None, help="TensorBoard log directory")
    parser.add_argument("--out", default="artifacts/proteus", help="artifact directory (an artifact already there is replaced)")
    parser.add_argument("--resume", default=None, help="artifact directory or checkpoint .zip to continue from")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace whatever --out holds (default: only an artifact of the same data and split is replaced)")
    parser.add_argument("--on-collapse", choices=("warn", "fail"), default="warn",
                        help="when the trained policy ignores τ (final τ-span below 0.8): print a warning and exit 0 "
                             f"(warn), or exit {EXIT_COLLAPSED} (fail), for automated pipelines")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}.")
    config = load_train_config(args.env, args.config).with_overrides(args.overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapsedPolicyWarning)  # reported below, once
        result = train(args.env, config=config, out_dir=args.out, seed=args.seed, timesteps=args.timesteps, n_envs=args.n_envs,
                       vec_env=args.vec_env, data_path=args.data, tensorboard=args.tensorboard, resume=args.resume,
                       progress_bar=not args.no_progress, overwrite=args.overwrite, **model_subset(args))
    s = result.summary
    print(f"trained {s['timesteps']} steps in {s['wall_time_s']:.0f} s; artifact: {result.out_dir}")
    print(f"{'tau':>6} {'val acc':>8} {'USD/1K':>8} {'lambda':>7}")
    lambdas = np.resize(np.asarray(s["lambda"]), len(s["val_tau"]))
    for tau, acc, usd, lam in zip(s["val_tau"], s["val_accuracy"], s["val_usd_per_1k"], lambdas, strict=True):
        print(f"{tau:>6.3f} {acc:>8.3f} {usd:>8.3f} {lam:>7.2f}")
    if s.get("tau_span") is not None:
        low, high = s["reachable_accuracy"]
        print(f"tau-span {s['tau_span']:.2f} (validation accuracy reachable from {low:.3f} to {high:.3f})")
    collapse = describe_collapse(s)
    if collapse is None:
        return 0
    if args.on_collapse == "fail":
        print(f"proteus train: error: {collapse} (artifact kept at {result.out_dir})", file=sys.stderr)
        return EXIT_COLLAPSED
    print(f"proteus train: warning: {collapse}", file=sys.stderr)
    return 0
