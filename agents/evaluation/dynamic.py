"""Dynamic accuracy targets: a stream of queries whose τ changes over time (PROTEUS Figure 2c).

A scenario is a τ schedule over a stream of test queries: a step change, a linear drift or a
cyclic pattern between two targets. The router routes every query at the τ in force; queries that
share a τ are routed as one batch (schedules are quantized to :data:`TAU_QUANTUM` so that drifts
and cycles have a few dozen distinct targets, not one per query). The stream is then cut into
windows, and each window's realized accuracy is compared with the mean τ in force during it:
the scenario's figure is the share of windows that met their target.

Nothing here knows about router classes: callers pass ``route(rows, tau) -> (choice, mu)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.evaluation.result import RouteFn
from proteus_env._validation import check_tau
from proteus_env.session import CYCLIC_PERIODS, tau_path  # noqa: F401  (CYCLIC_PERIODS: re-exported, it used to live here)

#: Names of the built-in scenarios, in report order.
SCENARIOS: tuple[str, ...] = ("step", "drift", "cyclic")
#: τ values of a schedule are rounded to multiples of this (batches of equal τ stay large).
TAU_QUANTUM = 0.005


def make_schedules(tau_low: float, tau_high: float, length: int, *, quantum: float = TAU_QUANTUM) -> dict[str, np.ndarray]:
    """τ over a stream of ``length`` queries for every scenario of :data:`SCENARIOS`.

    * ``step``: ``tau_low`` for the first half, ``tau_high`` for the second;
    * ``drift``: linear from ``tau_low`` to ``tau_high``;
    * ``cyclic``: a sine between the two with :data:`CYCLIC_PERIODS` periods, starting mid-way.

    Args:
        tau_low: Lower target, in [0, 1].
        tau_high: Upper target, in [tau_low, 1].
        length: Queries in the stream (>= 2).
        quantum: Rounding step of τ (> 0).

    Returns:
        ``{scenario: (length,) float64 τ per query}``.

    Raises:
        ValueError: On bounds outside [0, 1], ``tau_low > tau_high``, ``length < 2`` or ``quantum <= 0``.
    """
    low, high = check_tau(tau_low, "tau_low"), check_tau(tau_high, "tau_high")
    if low > high:
        raise ValueError(f"`tau_low` ({low}) must not exceed `tau_high` ({high}).")
    if int(length) != length or int(length) < 2:
        raise ValueError(f"`length` must be an integer >= 2, got {length!r}.")
    if not (math.isfinite(float(quantum)) and float(quantum) > 0):
        raise ValueError(f"`quantum` must be a positive number, got {quantum!r}.")
    n = int(length)
    raw = {name: tau_path(name, low, high, n) for name in SCENARIOS}  # the shapes the env's tau_schedule uses too
    return {name: np.clip(np.round(np.round(values / quantum) * quantum, 10), low, high) for name, values in raw.items()}


@dataclasses.dataclass(frozen=True)
class ScenarioRun:
    """One router on one scenario's stream.

    Attributes:
        scenario: Scenario name.
        schedule: ``(T,)`` τ in force per query.
        choice: ``(T,)`` model routed per query.
        windows: One dict per window: ``window``, ``start``, ``stop``, ``tau_mean``, ``accuracy``,
            ``usd_per_1k``, ``mean_mu`` (NaN without μ), ``met``.
    """

    scenario: str
    schedule: np.ndarray
    choice: np.ndarray
    windows: list[dict[str, Any]]

    @property
    def share_met(self) -> float:
        """Share of windows whose realized accuracy met their mean τ."""
        return float(np.mean([w["met"] for w in self.windows]))


def run_scenario(
    route: RouteFn,
    rows: np.ndarray,
    schedule: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    *,
    window: int = 100,
    scenario: str = "custom",
) -> ScenarioRun:
    """Route a stream at a changing τ and score it window by window.

    Args:
        route: ``route(rows, tau) -> (choice, mu)`` for a batch of benchmark rows at one τ.
        rows: ``(T,)`` benchmark row of each query of the stream, in arrival order.
        schedule: ``(T,)`` τ in force for each query.
        scores: ``(N, K)`` realized scores of the benchmark.
        costs: ``(N, K)`` USD costs of the benchmark.
        window: Queries per window (the stream must hold at least one full window; a trailing
            partial window is dropped).
        scenario: Name recorded in the result.

    Returns:
        A :class:`ScenarioRun`.

    Raises:
        ValueError: On mismatched lengths, a bad window or a router returning the wrong shape.
    """
    rows = np.asarray(rows, dtype=np.int64)
    schedule = np.asarray(schedule, dtype=np.float64)
    if rows.ndim != 1 or schedule.shape != rows.shape:
        raise ValueError(f"`rows` and `schedule` must be 1-D of one length, got {rows.shape} and {schedule.shape}.")
    if int(window) != window or int(window) < 1 or int(window) > rows.size:
        raise ValueError(f"`window` must be an integer in [1, {rows.size}] (the stream length), got {window!r}.")
    window = int(window)
    choice = np.empty(rows.size, dtype=np.int64)
    mu = np.full(rows.size, np.nan)
    for tau in np.unique(schedule):
        where = np.flatnonzero(schedule == tau)
        picked, picked_mu = route(rows[where], float(tau))
        picked = np.asarray(picked)
        if picked.shape != where.shape:
            raise ValueError(f"The router returned {picked.shape} choices for {where.size} queries.")
        choice[where] = picked
        if picked_mu is not None:
            mu[where] = np.asarray(picked_mu, dtype=np.float64)
    realized = np.asarray(scores, dtype=np.float64)[rows, choice]
    usd = np.asarray(costs, dtype=np.float64)[rows, choice]
    windows = []
    for w in range(rows.size // window):
        part = slice(w * window, (w + 1) * window)
        tau_mean = float(schedule[part].mean())
        accuracy = float(realized[part].mean())
        window_mu = mu[part]
        windows.append({
            "window": w, "start": w * window, "stop": (w + 1) * window, "tau_mean": tau_mean, "accuracy": accuracy,
            "usd_per_1k": float(usd[part].mean() * 1000.0),
            "mean_mu": float(window_mu.mean()) if np.isfinite(window_mu).all() else float("nan"),
            "met": bool(accuracy >= tau_mean - 1e-12),
        })
    return ScenarioRun(scenario=scenario, schedule=schedule, choice=choice, windows=windows)


def stream_rows(test_rows: np.ndarray, length: int, seed: int) -> np.ndarray:
    """``length`` test rows in a seeded random order (without replacement when the split is large enough)."""
    test_rows = np.asarray(test_rows, dtype=np.int64)
    if test_rows.size == 0:
        raise ValueError("`test_rows` is empty.")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2601]))
    return rng.choice(test_rows, size=int(length), replace=bool(test_rows.size < int(length)))


def run_scenarios(
    routers: Mapping[str, RouteFn],
    test_rows: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    tau_low: float,
    tau_high: float,
    *,
    seed: int,
    length: int = 1000,
    window: int = 100,
) -> list[dict[str, Any]]:
    """Every scenario for every router on one seeded stream of test queries.

    Returns:
        Tidy rows (one per router × scenario × window) with ``router`` and ``scenario`` added to
        the window fields of :class:`ScenarioRun`.
    """
    rows = stream_rows(test_rows, length, seed)
    schedules = make_schedules(tau_low, tau_high, length)
    out: list[dict[str, Any]] = []
    for name, route in routers.items():
        for scenario in SCENARIOS:
            run = run_scenario(route, rows, schedules[scenario], scores, costs, window=window, scenario=scenario)
            out += [{"router": name, "scenario": scenario, **w} for w in run.windows]
    return out
