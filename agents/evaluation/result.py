"""What ``proteus eval`` measured: :class:`EvalResult`, its columns and the constants shared by its writers.

A leaf of :mod:`agents.evaluation`: it imports no sibling module, so the protocol
(:mod:`~agents.evaluation.run`), the writers (:mod:`~agents.evaluation.report`,
:mod:`~agents.evaluation.plots`) and the contenders can all import it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from proteus_env.metrics import DEFAULT_BANDS

#: ``route(rows, tau) -> (choice, mu)``: model index per benchmark row and μ per row (or ``None``).
RouteFn = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray | None]]

#: Router families shown in the dynamic-target scenarios.
DYNAMIC_FAMILIES: tuple[str, ...] = ("proteus", "carrot", "zero_router")
#: Router families whose decision does not depend on τ (drawn as reference lines in the figures).
TAU_INDEPENDENT: frozenset[str] = frozenset({"oracle", "best_fixed", "cheapest", "random"})
#: Aggregates pooled over (τ, seed) pairs rather than averaged over per-seed values.
POOLED_RATES: tuple[str, ...] = ("floor_compliance", *(f"band_{round(b * 100):d}pp" for b in DEFAULT_BANDS))
#: Default number of τ points of the automatic grid.
DEFAULT_N_TAUS = 11

#: Columns of :attr:`EvalResult.results` (further per-τ metrics follow them). ``calibration_confidence``
#: is the confidence level a router was calibrated with (``"none"``, ``"0.95"``, or ``"n/a"`` for a
#: router without calibration); ``slack`` is ``accuracy − tau`` (negative when the floor is missed).
RESULT_COLUMNS: tuple[str, ...] = (
    "router", "family", "kind", "calibration_confidence", "seed", "tau", "feasible", "accuracy", "accuracy_ci_low",
    "accuracy_ci_high", "usd_per_1k", "floor_met", "violation", "slack", "mean_mu", "n_queries",
)
#: Columns of :attr:`EvalResult.summary`, one row per router: the yardstick of
#: :func:`proteus_env.metrics.normalized_cost` (mean over feasible (τ, seed) pairs, unmet floors
#: counted as failures) and the floor compliance (share of those pairs met), each with its 95 %
#: bootstrap interval over seeds (NaN with one seed); ``usd_per_1k`` and ``accuracy`` are means over
#: the same pairs; ``session_compliance`` is the share of test sessions meeting their floor (NaN
#: when sessions were not run).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "router", "family", "kind", "calibration_confidence", "n_seeds", "floor_compliance", "floor_compliance_ci_low",
    "floor_compliance_ci_high", "meets_standard", "normalized_cost", "normalized_cost_ci_low", "normalized_cost_ci_high", "usd_per_1k",
    "accuracy", "session_compliance",
)
#: Columns of :attr:`EvalResult.dynamic`.
DYNAMIC_COLUMNS: tuple[str, ...] = (
    "seed", "router", "scenario", "window", "start", "stop", "tau_mean", "accuracy", "usd_per_1k", "mean_mu", "met",
)
#: Columns of :attr:`EvalResult.calibration`: the routing head's p̂ against realized scores per seed,
#: split (``val``, ``test``), model and equal-width p̂ bin (:func:`proteus_env.metrics.reliability_curve`).
CALIBRATION_COLUMNS: tuple[str, ...] = ("seed", "split", "model", "bin", "lower", "upper", "count", "mean_probability", "mean_score")
#: Columns of :attr:`EvalResult.dynamic_summary`.
DYNAMIC_SUMMARY_COLUMNS: tuple[str, ...] = (
    "router", "scenario", "share_met", "share_met_sd", "n_seeds", "n_windows", "mean_accuracy", "mean_tau", "mean_usd_per_1k",
)


@dataclasses.dataclass
class EvalResult:
    """Everything ``proteus eval`` measured.

    Attributes:
        results: Tidy per-τ table, one row per router × τ × seed (see :data:`RESULT_COLUMNS`).
        aggregates: One row per router: pooled compliance / band rates over (τ, seed) pairs and,
            for every :func:`~proteus_env.metrics.summarize` key, its mean and sd over seeds
            (``<key>`` and ``<key>_sd``).
        dynamic: Per window of every dynamic scenario: router, scenario, seed, window figures
            (see :data:`DYNAMIC_COLUMNS`).
        dynamic_summary: One row per router × scenario: share of windows met (mean ± sd over seeds).
        fixed_models: Each model's test accuracy and USD per 1K per seed (the zero-router hull).
        ranges: Per seed: the achievable range ``low`` / ``high`` and the test size.
        taus: The evaluated τ grid.
        seeds: The evaluated seeds.
        confidences: The confidence levels the calibrated routers were calibrated with
            (``None``: no margin).
        benchmark: Name, data path and loader arguments of the benchmark.
        routers: The router artifact directories (empty for baselines only).
        schedules: The dynamic scenarios' τ per query.
        wall_time_s: Wall time of :func:`~agents.evaluation.run.evaluate`.
        command: The command line, when run from the CLI.
        calibration: The routing head's reliability-diagram bins (see :data:`CALIBRATION_COLUMNS`).
        sessions: Per-session compliance (issue 12): one row per router × seed × τ × test session
            (``agents.evaluation.sessions.SESSION_COLUMNS``); empty when not run.
        session_summary: One row per router: share of sessions meeting their floor and mean cost.
        session_protocol: How the sessions were served (length, feedback delay and rate, τ
            schedule, task drift); empty when not run.
        summary: One row per router (:data:`SUMMARY_COLUMNS`): the number to cite (normalized
            cost) and the floor compliance, with bootstrap intervals over seeds.
    """

    results: pd.DataFrame
    aggregates: pd.DataFrame
    dynamic: pd.DataFrame
    dynamic_summary: pd.DataFrame
    fixed_models: pd.DataFrame
    ranges: pd.DataFrame
    taus: np.ndarray
    seeds: list[int]
    confidences: tuple[float | None, ...]
    benchmark: dict[str, Any]
    routers: list[str]
    schedules: dict[str, np.ndarray]
    wall_time_s: float = 0.0
    command: str | None = None
    calibration: pd.DataFrame = dataclasses.field(default_factory=lambda: pd.DataFrame(columns=list(CALIBRATION_COLUMNS)))
    sessions: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    session_summary: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    session_protocol: dict[str, Any] = dataclasses.field(default_factory=dict)
    summary: pd.DataFrame = dataclasses.field(default_factory=lambda: pd.DataFrame(columns=list(SUMMARY_COLUMNS)))

    @property
    def router_names(self) -> list[str]:
        """Router names in evaluation order."""
        return list(dict.fromkeys(self.results["router"]))

    def families(self) -> dict[str, str]:
        """``{router name: family}`` in evaluation order."""
        first = self.results.drop_duplicates("router")
        return dict(zip(first["router"], first["family"], strict=True))
