"""What a sweep measures and how it ranks: the validation metrics of the dual callback, and the best configuration.

Every dual update of a trial reports :func:`validation_metrics` of the dual callback's
validation pass (the deterministic policy on held-out queries at each τ-bin's target, the
measurement the dual itself acts on). A trial's standing is its last report (the end of training).

Ranking (:data:`RANKING`), per configuration (one assignment of the varied keys), over its trials
(split seeds × benchmarks), lexicographically:

1. ``floor_compliance``, higher first: the mean over trials of the share of τ-bins whose
   validation accuracy meets the bin's τ;
2. ``violation``, lower first: the mean shortfall ``max(τ − accuracy, 0)`` over bins;
3. ``usd_per_1k``, lower first: the mean USD per 1,000 queries over bins.

So a cheaper configuration wins only among those meeting as many floors. A configuration with a
failed or unfinished trial is listed but never chosen as the best.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: The ranking: (metric, "max" or "min"), most important first.
RANKING: tuple[tuple[str, str], ...] = (("floor_compliance", "max"), ("violation", "min"), ("usd_per_1k", "min"))
#: Metrics of every report (besides ``timesteps``).
METRICS: tuple[str, ...] = ("floor_compliance", "violation", "usd_per_1k", "accuracy", "tau_span")


def validation_metrics(timesteps: int, validation: Mapping[str, Any]) -> dict[str, float]:
    """The report of one validation pass of :class:`~callbacks.lagrangian.LagrangianDualCallback`.

    Args:
        timesteps: Transitions trained so far.
        validation: The callback's ``last_validation`` (``tau``, ``accuracy``, ``usd_per_1k`` per bin, ``tau_span``).

    Returns:
        ``timesteps`` and :data:`METRICS` as floats (NaN where undefined).
    """
    tau = np.asarray(validation["tau"], dtype=np.float64)
    accuracy = np.asarray(validation["accuracy"], dtype=np.float64)
    usd = np.asarray(validation["usd_per_1k"], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        shortfall = np.maximum(tau - accuracy, 0.0)
    return {
        "timesteps": int(timesteps),
        "floor_compliance": float(np.mean(accuracy >= tau)) if tau.size else math.nan,  # a bin without data does not count as met
        "violation": _nanmean(shortfall),
        "usd_per_1k": _nanmean(usd),
        "accuracy": _nanmean(accuracy),
        "tau_span": float(validation.get("tau_span", math.nan)),
    }


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def configurations(trials: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """One row per configuration (assignment of ``keys``), its trials' metrics averaged, ranked by :data:`RANKING`.

    Args:
        trials: The trials table (:func:`agents.sweep.runner.trials_table`): columns ``status``,
            the varied keys, and :data:`METRICS`.
        keys: The varied config keys.

    Returns:
        Columns: ``rank`` (1 = best; NaN for a configuration with a failed or unfinished trial),
        the keys, ``n_trials``, ``n_complete``, the mean of each metric, and ``floor_compliance_min``.
    """
    columns = ["rank", *keys, "n_trials", "n_complete", *METRICS, "floor_compliance_min"]
    if trials.empty:
        return pd.DataFrame(columns=columns)
    work = trials.copy()
    key_columns = [f"__key{i}" for i in range(len(keys))]
    for column, key in zip(key_columns, keys, strict=True):  # values may be lists (net_arch): group on their JSON text
        work[column] = work[key].map(_hashable)
    groups = work.groupby(key_columns, sort=False, dropna=False) if key_columns else [((), work)]
    rows = []
    for _, part in groups:
        complete = part["status"] == "TERMINATED"
        row: dict[str, Any] = {key: part[key].iloc[0] for key in keys}
        row.update(n_trials=int(len(part)), n_complete=int(complete.sum()))
        for metric in METRICS:
            values = pd.to_numeric(part[metric], errors="coerce").to_numpy(dtype=np.float64)
            row[metric] = _nanmean(values)
        row["floor_compliance_min"] = float(np.nanmin(pd.to_numeric(part["floor_compliance"], errors="coerce"))) \
            if part["floor_compliance"].notna().any() else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    eligible = (table["n_complete"] == table["n_trials"]) & table["floor_compliance"].notna()
    order = table[eligible].sort_values([m for m, _ in RANKING], ascending=[mode == "min" for _, mode in RANKING], kind="stable")
    table["rank"] = math.nan
    table.loc[order.index, "rank"] = np.arange(1, len(order) + 1)
    table = pd.concat([table.loc[order.index], table[~eligible]])
    return table[columns].reset_index(drop=True)


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value
