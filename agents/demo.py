"""``proteus demo``: a fixed-μ router on ``Proteus-Synthetic-v0``, measured on test sessions."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import gymnasium as gym
import numpy as np

import proteus_env  # noqa: F401  (registers the environments)
from proteus_env.routing_head import fixed_mu_frontier

DEFAULT_TAUS = (0.4, 0.5, 0.6, 0.7, 0.75)


def calibrate_fixed_mu(env: proteus_env.ProteusRoutingEnv, taus: Sequence[float], *, grid: int = 101) -> np.ndarray:
    """For each τ, the smallest μ whose fixed-μ routing meets τ on the validation split.

    τ above what fixed-μ routing reaches on validation gets μ = 1 (the accurate end).
    """
    frontier = fixed_mu_frontier(env.benchmark, env.head_fit, np.linspace(0.0, 1.0, grid), split="val")
    mus = []
    for tau in taus:
        meets = np.flatnonzero(frontier["accuracy"] >= tau)
        mus.append(float(frontier["mu"][meets[0]]) if meets.size else 1.0)
    return np.array(mus)


def run_demo(taus: Sequence[float] = DEFAULT_TAUS, *, sessions: int = 20, session_length: int = 100, seed: int = 0) -> list[dict[str, float]]:
    """Roll out the validation-calibrated fixed-μ policy on test sessions, one τ at a time.

    Returns:
        One row per τ: ``tau``, ``mu``, ``accuracy`` (realized, over all test sessions),
        ``usd_per_1k`` and ``floor_met``.
    """
    env = gym.make("Proteus-Synthetic-v0", split="test", session_length=session_length, tau_range=(0.0, 1.0))
    unwrapped = env.unwrapped
    mus = calibrate_fixed_mu(unwrapped, taus)
    rows = []
    for i, (tau, mu) in enumerate(zip(taus, mus, strict=True)):
        scores, usd = [], []
        for s in range(sessions):
            env.reset(seed=seed + 1000 * i + s, options={"tau": float(tau)})
            done = False
            while not done:
                _, _, terminated, truncated, info = env.step(np.array([mu], dtype=np.float32))
                scores.append(info["score"])
                usd.append(info["usd_cost"])
                done = terminated or truncated
        accuracy = float(np.mean(scores))
        rows.append({"tau": float(tau), "mu": float(mu), "accuracy": accuracy, "usd_per_1k": 1000.0 * float(np.mean(usd)),
                     "floor_met": float(accuracy >= tau)})
    env.close()
    return rows


def format_table(rows: list[dict[str, float]]) -> str:
    """Render the demo rows as an aligned text table."""
    lines = [f"{'tau':>6} {'mu':>6} {'accuracy':>9} {'USD/1K':>9} {'floor met':>10}"]
    for r in rows:
        lines.append(f"{r['tau']:>6.2f} {r['mu']:>6.2f} {r['accuracy']:>9.3f} {r['usd_per_1k']:>9.3f} {('yes' if r['floor_met'] else 'NO'):>10}")
    return "\n".join(lines)


def add_demo_subparser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``proteus demo``."""
    parser = subparsers.add_parser("demo", help="route test sessions of the synthetic benchmark at a few targets")
    parser.add_argument("--taus", type=float, nargs="+", default=list(DEFAULT_TAUS), help="accuracy targets τ in [0, 1]")
    parser.add_argument("--sessions", type=int, default=20, help="test sessions per τ")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    for tau in args.taus:
        if not 0.0 <= tau <= 1.0:
            raise SystemExit(f"proteus demo: τ must lie in [0, 1], got {tau}")
    if args.sessions < 1:
        raise SystemExit(f"proteus demo: --sessions must be >= 1, got {args.sessions}")
    print("Fixed-μ router on Proteus-Synthetic-v0: μ(τ) calibrated on validation, measured on test sessions")
    print(format_table(run_demo(args.taus, sessions=args.sessions, seed=args.seed)))
    return 0
