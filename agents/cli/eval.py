"""``proteus eval``: parse the options, run :func:`agents.evaluation.run.evaluate`, print the tables."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path
from typing import Any

import yaml

from agents.cli.data import add_model_arguments, model_subset
from agents.evaluation.any_agent import evaluate_policy, load_callable
from agents.evaluation.contenders import find_artifacts
from agents.evaluation.report import print_tables
from agents.evaluation.result import DEFAULT_N_TAUS
from agents.evaluation.run import EvalSettings, evaluate
from agents.proteus.artifact import check_model_subset
from proteus_env._validation import parse_confidence


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``proteus eval``."""
    parser = subparsers.add_parser(
        "eval", help="evaluate trained routers against the baselines on the test split",
        description="Evaluate trained PROTEUS routers (one artifact per split seed) against every baseline on realized "
                    "test outcomes; writes report.md, results.csv and figures to --out.")
    parser.add_argument("--router", nargs="+", default=None, metavar="DIR",
                        help="artifact directories of `proteus train` (one per seed), or a parent directory of them")
    parser.add_argument("--baselines-only", action="store_true", help="evaluate the baselines without a trained router")
    agent = parser.add_argument_group("any agent (instead of --router): scored like the routers, beside the baselines")
    agent.add_argument("--policy", default=None, metavar="PATH.zip|MODULE:FUNCTION",
                       help="a Stable-Baselines3 model zip (with --algo) or a callable from observation to action")
    agent.add_argument("--algo", default=None, help="the algorithm that trained the zip: PPO, SAC, DQN, A2C, TD3, DDPG (sb3_contrib's "
                                                    "when installed)")
    agent.add_argument("--trust-pickle", action="store_true",
                       help="let the zip be unpickled (runs code from the file; only for files you trust). Without it only "
                            "weights are read and zips with custom classes in policy_kwargs are refused")
    agent.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="argument of the environment the policy was trained on, VALUE parsed as YAML, e.g. action_mode=model, "
                            "learn_gamma=true, split_seed=1 (repeatable)")
    agent.add_argument("--lambda", dest="lambda_value", type=float, default=None, metavar="VALUE",
                       help="the λ shown to the policy (default: the table saved with the model, else 0)")
    agent.add_argument("--policy-name", default=None, help="the policy's name in the tables (default: the algorithm or function)")
    agent.add_argument("--batched", choices=["auto", "yes", "no"], default="auto",
                       help="whether a callable takes a batch of observations (default: probe it)")
    parser.add_argument("--benchmark", default=None, help="benchmark name (synthetic, routerbench, sprout); default: the routers' "
                                                          "or synthetic")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="data file (RouterBench) or directory (SPROUT); implies the benchmark when --benchmark is not given")
    add_model_arguments(parser)  # with --router: may only restate the routers' own subset, which is used anyway
    parser.add_argument("--benchmark-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="loader argument, VALUE parsed as YAML, e.g. n_queries=3000 (repeatable)")
    parser.add_argument("--taus", nargs="+", type=float, default=None, help="τ grid (default: spans the achievable range)")
    parser.add_argument("--n-taus", type=int, default=DEFAULT_N_TAUS, help="points of the default τ grid")
    parser.add_argument("--seeds", type=int, default=None, help="number of split seeds 0..N-1 (baselines only; with routers it "
                                                                "must agree with their seeds)")
    parser.add_argument("--confidence", "--margin", dest="confidence", nargs="+", default=["none"], metavar="LEVEL",
                        help="confidence level(s) of the calibrated routers: none (calibrate to τ itself) and/or one-sided "
                             "levels in (0, 1), e.g. --confidence none 0.95 (--margin is an alias)")
    parser.add_argument("--no-predictive", action="store_true", help="skip the KNN and MLP baselines")
    parser.add_argument("--no-dynamic", action="store_true", help="skip the dynamic-target scenarios")
    parser.add_argument("--stream-length", type=int, default=1000, help="queries per dynamic-target stream")
    parser.add_argument("--window", type=int, default=100, help="queries per window of the dynamic scenarios")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the accuracy intervals")
    sessions = parser.add_argument_group("per-session compliance (test sessions served with realized feedback)")
    sessions.add_argument("--no-sessions", action="store_true", help="skip the per-session compliance")
    sessions.add_argument("--session-length", type=int, default=500, help="queries per test session (default 500)")
    sessions.add_argument("--feedback-delay", type=int, default=0, help="queries until an outcome reaches the routers (default 0)")
    sessions.add_argument("--feedback-rate", type=float, default=1.0, help="share of outcomes ever revealed, in [0, 1] (default 1)")
    sessions.add_argument("--tau-schedule", default="constant", choices=["constant", "step", "drift", "cyclic"],
                          help="τ within a session: constant (every τ of the grid) or a schedule between two targets")
    sessions.add_argument("--task-drift", action="store_true", help="draw each session from a drifting mixture of the tasks")
    parallel = parser.add_argument_group("Ray (the [ray] extra)")
    parallel.add_argument("--ray", action="store_true", help="evaluate the seeds in parallel on Ray, one worker per seed / artifact "
                                                             "(the same tables as without it)")
    parallel.add_argument("--address", default=None, help="with --ray: a Ray cluster (HOST:PORT of `ray start --head`); default: a "
                                                          "local instance sized to this machine's cores")
    parser.add_argument("--out", required=True, metavar="REPORT_DIR", help="report directory")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=_run)


def _infer_benchmark(data: str | None, benchmark: str | None) -> str | None:
    if benchmark is not None or data is None:
        return benchmark
    return "sprout" if Path(data).is_dir() else "routerbench"


def _command_line(args: argparse.Namespace) -> str:
    parts = ["proteus", "eval"]
    if args.router:
        parts += ["--router", *args.router]
    if args.policy:
        parts += ["--policy", args.policy] + (["--algo", args.algo] if args.algo else [])
        parts += ["--trust-pickle"] if args.trust_pickle else []
        for assignment in args.env_arg:
            parts += ["--env-arg", assignment]
        if args.lambda_value is not None:
            parts += ["--lambda", f"{args.lambda_value:g}"]
    if args.baselines_only:
        parts.append("--baselines-only")
    for flag, value in (("--benchmark", args.benchmark), ("--data", args.data), ("--seeds", args.seeds)):
        if value is not None:
            parts += [flag, str(value)]
    for assignment in args.benchmark_arg:
        parts += ["--benchmark-arg", assignment]
    for flag, value in (("--models", args.models), ("--exclude-models", args.exclude_models)):
        if value is not None:
            parts += [flag, value]
    if args.taus:
        parts += ["--taus", *(f"{t:g}" for t in args.taus)]
    parts += ["--confidence", *args.confidence]
    for flag in ("no_predictive", "no_dynamic", "no_sessions", "task_drift"):
        if getattr(args, flag):
            parts.append("--" + flag.replace("_", "-"))
    for flag, default in (("session_length", 500), ("feedback_delay", 0), ("feedback_rate", 1.0), ("tau_schedule", "constant")):
        if getattr(args, flag) != default:
            parts += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    parts += ["--out", args.out]
    return shlex.join(parts)


def _with_model_subset(args: argparse.Namespace, kwargs: dict[str, Any] | None) -> dict[str, Any] | None:
    """The loader arguments with the model subset: the routers' own (a conflicting --models is refused), or --models."""
    subset = model_subset(args)
    if not args.router:
        return {**(kwargs or {}), **subset} if subset else kwargs
    requested = {**{k: v for k, v in (kwargs or {}).items() if k in ("models", "exclude_models")}, **subset}
    artifacts = find_artifacts(args.router)
    for artifact in artifacts:
        check_model_subset(artifact.verified.models, requested.get("models"), requested.get("exclude_models"), router=artifact.path)
    recorded = artifacts[0].benchmark_kwargs.get("models")
    if kwargs is not None and recorded is not None:  # --benchmark-arg replaces the artifacts' arguments: keep their subset
        kwargs = {**{k: v for k, v in kwargs.items() if k != "exclude_models"}, "models": recorded}
    return kwargs


def _assignments(values: list[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict, each VALUE parsed as YAML."""
    out: dict[str, Any] = {}
    for assignment in values:
        if "=" not in assignment:
            raise ValueError(f"{flag} {assignment!r} must look like key=value.")
        key, raw = assignment.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ValueError(f"{flag} {assignment!r}: the value is not valid YAML.") from None
    return out


def _policy(args: argparse.Namespace) -> Any:
    """The --policy argument: a zip path (needs --algo) or module:function."""
    spec = args.policy
    if spec.lower().endswith(".zip") or (Path(spec).is_file() and not spec.lower().endswith(".py")):
        if args.algo is None:
            raise ValueError(f"--policy {spec} is a model zip: give the algorithm that trained it (--algo SAC).")
        if not Path(spec).is_file():
            raise FileNotFoundError(f"--policy {spec}: no such file.")
        return spec
    if args.algo is not None:
        raise ValueError(f"--algo goes with a model zip; --policy {spec} names a callable.")
    return load_callable(spec)


def _run_policy(args: argparse.Namespace, settings: EvalSettings) -> Any:
    """``proteus eval --policy``: any agent on the same yardstick."""
    if args.trust_pickle and not args.policy.lower().endswith(".zip"):
        raise ValueError("--trust-pickle goes with a model zip.")
    env_kwargs = _assignments(args.env_arg, "--env-arg")
    if settings.benchmark is not None:
        env_kwargs.setdefault("benchmark", settings.benchmark)
    if settings.data_path is not None:
        env_kwargs.setdefault("data_path", str(settings.data_path))
    if settings.benchmark_kwargs is not None:
        env_kwargs.setdefault("benchmark_kwargs", settings.benchmark_kwargs)
    policy = _policy(args)
    batched = {"auto": None, "yes": True, "no": False}[args.batched]
    settings = dataclasses.replace(settings, benchmark=None, data_path=None, benchmark_kwargs=None)
    return evaluate_policy(policy, env_kwargs, settings, algo=args.algo, name=args.policy_name, lambda_value=args.lambda_value,
                           batched=batched, trust_pickle=args.trust_pickle)


def _run(args: argparse.Namespace) -> int:
    chosen = [flag for flag, on in (("--router", args.router), ("--policy", args.policy), ("--baselines-only", args.baselines_only))
              if on]
    if len(chosen) > 1:
        raise ValueError(f"{' and '.join(chosen)} exclude each other.")
    if not chosen:
        raise ValueError("give --router DIR [DIR ...], --policy PATH.zip|MODULE:FUNCTION or --baselines-only.")
    for flag, value in (("--algo", args.algo), ("--env-arg", args.env_arg), ("--lambda", args.lambda_value),
                        ("--policy-name", args.policy_name), ("--trust-pickle", args.trust_pickle)):
        given = value is not None and value is not False and not (isinstance(value, list) and not value)  # --lambda 0 is given
        if given and not args.policy:
            raise ValueError(f"{flag} goes with --policy.")
    if args.address is not None and not args.ray:
        raise ValueError("--address goes with --ray.")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} exists and is not a directory: the report needs a directory.")
    confidences = tuple(parse_confidence(c) for c in args.confidence)
    kwargs = _assignments(args.benchmark_arg, "--benchmark-arg") if args.benchmark_arg else None
    kwargs = _with_model_subset(args, kwargs)
    settings = EvalSettings(
        benchmark=_infer_benchmark(args.data, args.benchmark), data_path=args.data, benchmark_kwargs=kwargs, taus=args.taus,
        n_taus=args.n_taus, seeds=args.seeds, confidences=confidences, predictive=not args.no_predictive,
        dynamic=not args.no_dynamic, stream_length=args.stream_length, window=args.window, n_boot=args.n_boot,
        progress=not args.no_progress, out_dir=args.out, command=_command_line(args), sessions=not args.no_sessions,
        session_length=args.session_length, feedback_delay=args.feedback_delay, feedback_rate=args.feedback_rate,
        tau_schedule=args.tau_schedule, task_drift=args.task_drift, ray=args.ray, ray_address=args.address)
    result = _run_policy(args, settings) if args.policy else evaluate(args.router, settings)
    print_tables(result)
    print(f"report: {Path(args.out) / 'report.md'}  ({result.wall_time_s:.0f} s, seeds {result.seeds})")
    return 0
