"""``BenchmarkTable``: a parsed, validated benchmark file before any embedding or split is made."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class BenchmarkTable:
    """Scores, costs and prompts of ``K`` models on ``N`` queries, as read from a file.

    Attributes:
        name: Benchmark name (``"routerbench"`` or ``"sprout"``).
        models: The ``K`` model names, in file order.
        task: ``(N,)`` task (eval or source data set) name per query.
        prompts: ``(N,)`` prompt texts (multi-turn prompts flattened).
        scores: ``(N, K)`` float64 realized scores in [0, 1].
        costs: ``(N, K)`` float64 USD per query, finite and >= 0.
        prompt_tokens: ``(N,)`` int64 prompt lengths in tokens (counted or estimated).
        splits: Official ``{"train", "val", "test"}`` row indices, or ``None`` (make them later).
        metadata: Small JSON-able facts about the source.
    """

    name: str
    models: tuple[str, ...]
    task: np.ndarray
    prompts: np.ndarray
    scores: np.ndarray
    costs: np.ndarray
    prompt_tokens: np.ndarray
    splits: Mapping[str, np.ndarray] | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_queries(self) -> int:
        """Number of queries ``N``."""
        return int(self.scores.shape[0])

    def summary(self) -> dict[str, Any]:
        """Return counts, per-model means and the oracle's accuracy and cost (see :func:`summarize_outcomes`)."""
        return {
            "name": self.name,
            "n_queries": self.n_queries,
            "n_models": len(self.models),
            "n_tasks": len(set(self.task.tolist())),
            **summarize_outcomes(self.models, self.scores, self.costs),
        }


def summarize_outcomes(models: tuple[str, ...] | list[str], scores: np.ndarray, costs: np.ndarray) -> dict[str, Any]:
    """Per-model mean score and USD per query, and the oracle router's figures.

    The oracle sends each query to the cheapest model among those reaching the query's best score
    (RouterBench's ``oracle_model_to_route_to``); when no model is correct that is the cheapest
    model overall.

    Returns:
        ``mean_score`` and ``mean_usd`` (model -> float), ``oracle_accuracy``, ``oracle_usd``
        (mean USD per query), ``oracle_share`` (model -> fraction of queries the oracle sends
        there) and ``no_model_correct`` (fraction of queries whose best score is 0).
    """
    scores = np.asarray(scores, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    best = scores.max(axis=1)
    at_best = scores >= best[:, None]
    oracle = np.where(at_best, costs, np.inf).argmin(axis=1)
    rows = np.arange(scores.shape[0])
    counts = np.bincount(oracle, minlength=len(models)) / max(scores.shape[0], 1)
    return {
        "mean_score": dict(zip(models, scores.mean(axis=0).tolist(), strict=True)),
        "mean_usd": dict(zip(models, costs.mean(axis=0).tolist(), strict=True)),
        "oracle_accuracy": float(best.mean()),
        "oracle_usd": float(costs[rows, oracle].mean()),
        "oracle_share": dict(zip(models, counts.tolist(), strict=True)),
        "no_model_correct": float((best <= 0.0).mean()),
    }


#: Options that drop rows, by the key of ``metadata["dropped_rows"]``, as a user names them.
ROW_DROP_OPTIONS: dict[str, str] = {
    "missing": "rows with a missing cell (missing='drop', --missing drop)",
    "drop_tasks": "rows of dropped tasks (drop_tasks, --drop-tasks)",
    "cross_split_duplicates": "rows whose prompt is in an earlier split (drop_cross_split_duplicates)",
}


def describe_dropped(metadata: Mapping[str, Any]) -> list[str]:
    """One line per row count and one for the models that explicit options dropped (empty: nothing dropped).

    Reads ``metadata["dropped_rows"]`` (option -> count) and ``metadata["dropped_models"]``, as the
    loaders and :meth:`~proteus_env.benchmark.Benchmark.select_models` record them.
    """
    lines = []
    rows = metadata.get("dropped_rows") or {}
    for key, count in rows.items():
        if int(count):
            lines.append(f"{int(count)} {ROW_DROP_OPTIONS.get(key, f'rows ({key})')}")
    models = list(metadata.get("dropped_models") or [])
    if models:
        lines.append(f"{len(models)} model(s) (models / exclude_models, --models / --exclude-models): {', '.join(models)}")
    return lines
