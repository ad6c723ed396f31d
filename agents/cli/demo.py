"""``proteus demo``: train PROTEUS on the synthetic benchmark and serve several τ on held-out queries.

The main job of the package, end to end and with no data files: train the Beta-PPO agent with the
Lagrangian dual callback on ``Proteus-Synthetic-v0`` (the default config, about a minute and a
half on 2 cores), then route the whole test split at each τ with the validation-calibrated router
and with a fixed-μ router calibrated the same way, both certified at the ``--confidence`` level
(default 0.95) for the test split's size, and print realized accuracy, USD per 1K queries and
whether each floor was met (``*``: the router declared that τ uncertifiable). ``--fixed-mu-only`` skips the training.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

import proteus_env  # noqa: F401  (registers the environments)
from agents.cli.data import add_model_arguments, model_subset
from agents.proteus.router import ProteusRouter, UnreachableTargetWarning
from agents.proteus.train import train
from proteus_env._validation import check_int, check_tau, parse_confidence
from proteus_env.guarantees import certify, scores_are_binary
from proteus_env.routing_head import fixed_mu_frontier

DEFAULT_TAUS = (0.35, 0.45, 0.55, 0.65, 0.75)
DEFAULT_CONFIDENCE = 0.95


def calibrate_fixed_mu(env: proteus_env.ProteusRoutingEnv, taus: Sequence[float], *, confidence: float | None = None,
                       grid: int = 101, deploy_queries: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each τ, the smallest μ whose fixed-μ routing meets τ on validation (certified with a ``confidence``).

    With a ``confidence``, μ is certified like every calibrated router's setting
    (:func:`proteus_env.guarantees.certify`: fixed-sequence testing from μ = 1 down, for
    ``deploy_queries`` served queries, default as many as validation).

    Returns:
        ``(mu, reachable)``: a τ that cannot be met (or certified) gets μ = 1 and ``reachable=False``.
    """
    frontier = fixed_mu_frontier(env.benchmark, env.head_fit, np.linspace(0.0, 1.0, grid), split="val")
    val = env.benchmark.split_index("val")
    binary = scores_are_binary(env.benchmark.scores[val])
    mus, reachable = [], []
    for tau in taus:
        if confidence is None:
            meets = np.flatnonzero(frontier["accuracy"] >= float(tau))
            mus.append(float(frontier["mu"][meets[0]]) if meets.size else 1.0)
            reachable.append(bool(meets.size))
            continue
        choice = certify(frontier["accuracy"][::-1], float(tau), val.size, confidence, deploy_queries or val.size, binary=binary)
        mus.append(float(frontier["mu"][::-1][choice.position]) if choice.certified else 1.0)
        reachable.append(choice.certified)
    return np.array(mus), np.array(reachable)


def run_demo(taus: Sequence[float] = DEFAULT_TAUS, *, confidence: float | None = DEFAULT_CONFIDENCE, train_agent: bool = True,
             timesteps: int | None = None, seed: int = 0, out_dir: str | Path | None = None,
             progress_bar: bool = False, models: Sequence[str] | str | None = None,
             exclude_models: Sequence[str] | str | None = None) -> list[dict[str, float]]:
    """Train (unless ``train_agent=False``) and measure both routers on the test split of ``seed``.

    ``models`` / ``exclude_models`` restrict the synthetic benchmark to a model subset (both routers
    and the training use it).

    Returns:
        One row per τ with ``tau``, ``fixed_mu``, ``fixed_accuracy``, ``fixed_usd_per_1k`` and, when
        trained, ``proteus_accuracy``, ``proteus_usd_per_1k``, ``proteus_mu`` (realized, on test).
    """
    subset = {key: value for key, value in (("models", models), ("exclude_models", exclude_models)) if value is not None}
    env = gym.make("Proteus-Synthetic-v0", split="test", split_seed=seed, **subset).unwrapped
    bench, fit = env.benchmark, env.head_fit
    test = bench.split_index("test")
    mus, fixed_reachable = calibrate_fixed_mu(env, taus, confidence=confidence, deploy_queries=int(test.size))
    router = None
    if train_agent:
        out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="proteus_demo_"))
        train(out_dir=out, seed=seed, timesteps=timesteps, progress_bar=progress_bar, **subset)
        router = ProteusRouter.load(out)
    rows = []
    for tau, mu, fixed_ok in zip(taus, mus, fixed_reachable, strict=True):
        fixed = fit.head.route(fit.p_hat[test], fit.cost_hat[test], mu)
        row = {"tau": float(tau), "fixed_mu": float(mu), "fixed_accuracy": float(bench.scores[test, fixed].mean()),
               "fixed_usd_per_1k": 1000.0 * float(bench.costs[test, fixed].mean()), "fixed_reachable": float(fixed_ok)}
        if router is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnreachableTargetWarning)
                routed = router.route_observations(fit.p_hat[test], fit.cost_hat[test], float(tau), confidence=confidence,
                                                   deploy_queries=int(test.size))
            row.update({"proteus_accuracy": float(bench.scores[test, routed.indices].mean()),
                        "proteus_usd_per_1k": 1000.0 * float(bench.costs[test, routed.indices].mean()),
                        "proteus_mu": float(routed.mu.mean()), "proteus_reachable": float(routed.reachable)})
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, float]]) -> str:
    """Render the demo rows as an aligned text table."""
    def met(accuracy: float, tau: float, reachable: float = 1.0) -> str:
        """``yes`` / ``NO``, with ``*`` where the router itself declared τ uncertifiable (served at its most accurate setting)."""
        return ("yes" if accuracy >= tau else "NO") + ("" if reachable else "*")

    trained = "proteus_accuracy" in rows[0]
    header = f"{'tau':>5} |"
    if trained:
        header += f" {'PROTEUS acc':>11} {'USD/1K':>7} {'mu':>5} {'met':>4} |"
    header += f" {'fixed-mu acc':>12} {'USD/1K':>7} {'mu':>5} {'met':>4}"
    lines = [header]
    note = any(not r.get(key, 1.0) for r in rows for key in ("proteus_reachable", "fixed_reachable"))
    for r in rows:
        line = f"{r['tau']:>5.2f} |"
        if trained:
            line += (f" {r['proteus_accuracy']:>11.3f} {r['proteus_usd_per_1k']:>7.3f} {r['proteus_mu']:>5.2f} "
                     f"{met(r['proteus_accuracy'], r['tau'], r.get('proteus_reachable', 1.0)):>4} |")
        line += (f" {r['fixed_accuracy']:>12.3f} {r['fixed_usd_per_1k']:>7.3f} {r['fixed_mu']:>5.2f} "
                 f"{met(r['fixed_accuracy'], r['tau'], r.get('fixed_reachable', 1.0)):>4}")
        lines.append(line)
    if note:
        lines.append("* the router declared this τ uncertifiable on validation and served it at its most accurate setting")
    return "\n".join(lines)


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``proteus demo``."""
    parser = subparsers.add_parser("demo", help="train PROTEUS on the synthetic benchmark and serve several targets on test queries")
    parser.add_argument("--taus", type=float, nargs="+", default=list(DEFAULT_TAUS), help="accuracy targets τ in [0, 1]")
    parser.add_argument("--confidence", "--margin", dest="confidence", default=str(DEFAULT_CONFIDENCE), metavar="LEVEL",
                        help="probability with which each floor must hold (certified), or 'none' (default 0.95; --margin is an alias)")
    parser.add_argument("--timesteps", type=int, default=None, help="training budget (default: the config's)")
    parser.add_argument("--fixed-mu-only", action="store_true", help="skip training; show the fixed-μ router only")
    parser.add_argument("--out", default=None, help="keep the trained artifact here (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    add_model_arguments(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    for tau in args.taus:
        check_tau(tau, "--taus")
    check_int(args.seed, "--seed", minimum=0)
    if args.fixed_mu_only:
        given = [flag for flag, value in (("--timesteps", args.timesteps), ("--out", args.out)) if value is not None]
        if given:
            raise ValueError(f"--fixed-mu-only trains nothing, so {' and '.join(given)} would be ignored: drop "
                             f"{'it' if len(given) == 1 else 'them'} or drop --fixed-mu-only.")
    confidence = parse_confidence(args.confidence)
    rows = run_demo(args.taus, confidence=confidence, train_agent=not args.fixed_mu_only, timesteps=args.timesteps, seed=args.seed,
                    out_dir=args.out, progress_bar=True, **model_subset(args))
    level = "point estimates, no guarantee" if confidence is None else f"each floor certified to hold with probability {confidence:.0%}"
    print(f"\nProteus-Synthetic-v0, seed {args.seed}: realized accuracy and cost on the whole test split "
          f"(routers calibrated on validation; {level})")
    print(format_table(rows))
    return 0
