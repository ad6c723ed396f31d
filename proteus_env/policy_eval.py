"""Batched evaluation of any policy on benchmark rows, without stepping sessions.

The observation of a query does not depend on the session's history (only on the query, τ and
λ), so the deterministic policy's accuracy at a target τ over a split is one batched forward pass:
build the observations of all rows at that τ, ask the policy for μ, route, average the realized
scores. The dual callback and the router's calibration use this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from proteus_env.benchmark import Benchmark
from proteus_env.routing_head import HeadFit, RoutingHead, gamma_from_action

#: ``policy(observations) -> actions (n, action_dim)``, for example
#: ``lambda obs: model.predict(obs, deterministic=True)[0]``.
BatchPolicy = Callable[[dict[str, np.ndarray]], np.ndarray]


def validation_halves(benchmark: Benchmark, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split the validation rows into two disjoint, seeded halves: ``(dual_rows, calibration_rows)``.

    The dual callback tunes λ on the first half; the router's τ calibration is measured on the
    second. Tuning and calibrating on the same rows would calibrate on rows the training already
    adapted to, and make the calibration optimistic.
    """
    rows = benchmark.split_index("val")
    shuffled = rows[np.random.default_rng([seed, 7919]).permutation(rows.size)]
    half = rows.size // 2
    return np.sort(shuffled[:half]), np.sort(shuffled[half:])


def train_holdout_rows(benchmark: Benchmark, *, seed: int, fraction: float) -> np.ndarray:
    """A seeded share ``fraction`` of the train rows, kept out of training sessions for the dual updates.

    Train rows carry cross-fitted (out-of-fold) predictions, so the deterministic policy's accuracy
    on rows it never trained on is an honest estimate, and the whole validation split stays free
    for the τ calibration (the same validation data the calibrated baselines get).
    """
    rows = benchmark.split_index("train")
    count = int(round(float(fraction) * rows.size))
    if not 0.0 < float(fraction) < 1.0 or count < 1 or count >= rows.size:
        raise ValueError(f"`train_holdout` must leave rows on both sides: {fraction!r} of {rows.size} train rows.")
    chosen = np.random.default_rng([seed, 104729]).choice(rows.size, count, replace=False)
    return np.sort(rows[chosen])


def session_rows(benchmark: Benchmark, split: str, *, seed: int, train_holdout: float = 0.0) -> np.ndarray:
    """The rows an environment on ``split`` draws its sessions from (train minus the dual's holdout)."""
    rows = benchmark.split_index(split)
    if split != "train" or not train_holdout:
        return rows
    return np.setdiff1d(rows, train_holdout_rows(benchmark, seed=seed, fraction=train_holdout), assume_unique=True)


def dual_and_calibration_rows(benchmark: Benchmark, *, seed: int, train_holdout: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The disjoint rows the dual callback measures λ on, and the rows the τ calibration is fitted on.

    With a ``train_holdout`` share: the held-out train rows, and the whole validation split. Without
    one: the two halves of the validation split (:func:`validation_halves`).
    """
    if train_holdout:
        return train_holdout_rows(benchmark, seed=seed, fraction=train_holdout), benchmark.split_index("val")
    return validation_halves(benchmark, seed=seed)


def batch_observations(p_hat: np.ndarray, cost_hat: np.ndarray, tau: float | np.ndarray, lam: float | np.ndarray,
                       query: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Observations of ``n`` queries in the environment's Dict format (float32 arrays)."""
    n = p_hat.shape[0]
    obs = {
        "p_hat": np.asarray(p_hat, dtype=np.float32),
        "cost_hat": np.asarray(cost_hat, dtype=np.float32),
        "tau": np.broadcast_to(np.asarray(tau, dtype=np.float32).reshape(-1, 1), (n, 1)).copy(),
        "lambda": np.broadcast_to(np.asarray(lam, dtype=np.float32).reshape(-1, 1), (n, 1)).copy(),
    }
    if query is not None:
        obs["query"] = np.asarray(query, dtype=np.float32)
    return obs


def route_actions(head: RoutingHead, p_hat: np.ndarray, cost_hat: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn policy actions ``(n, 1)`` (μ) or ``(n, 2)`` (μ, γ-entry) into model indices.

    The μ entry goes through the head's action map (:meth:`RoutingHead.mu_from_action`), as in the
    environment's step.

    Returns:
        ``(model_index (n,), mu (n,))``, μ after the action map.
    """
    n = p_hat.shape[0]
    actions = np.asarray(actions, dtype=np.float64)
    if n == 0 or actions.size == 0 or actions.size % n:
        raise ValueError(f"Need one action row per query: {n} queries, actions of shape {actions.shape}.")
    actions = actions.reshape(n, -1)
    if not np.isfinite(actions).all():
        raise ValueError("The policy returned NaN or infinite actions (has the network diverged?).")
    actions = np.clip(actions, 0.0, 1.0)  # SB3 clips Box actions the same way
    mu = head.mu_from_action(actions[:, 0])
    gamma = gamma_from_action(actions[:, 1]) if actions.shape[1] > 1 else None
    return head.route(p_hat, cost_hat, mu, gamma), mu


def accuracy_at_taus(policy: BatchPolicy, benchmark: Benchmark, fit: HeadFit, rows: np.ndarray, taus: np.ndarray,
                     lambdas: np.ndarray, *, include_query: bool = False) -> dict[str, Any]:
    """Realized accuracy, USD per 1K and mean μ of ``policy`` on ``rows`` at every τ.

    Args:
        policy: Batched deterministic policy.
        benchmark: The data (realized scores and costs).
        fit: The routing head fit whose predictions the environment observes.
        rows: Row indices (for example the validation split).
        taus: ``(B,)`` targets.
        lambdas: ``(B,)`` the λ shown at each target.
        include_query: Add the raw embeddings to the observations.

    Returns:
        ``{"accuracy", "usd_per_1k", "mu_mean"}``, each ``(B,)``.
    """
    p_hat, cost_hat = fit.p_hat[rows], fit.cost_hat[rows]
    query = benchmark.embeddings[rows] if include_query else None
    accuracy, usd, mu_mean = [], [], []
    for tau, lam in zip(np.asarray(taus, dtype=float), np.asarray(lambdas, dtype=float), strict=True):
        actions = policy(batch_observations(p_hat, cost_hat, tau, lam, query))
        model, mu = route_actions(fit.head, p_hat, cost_hat, actions)
        accuracy.append(float(benchmark.scores[rows, model].mean()))
        usd.append(1000.0 * float(benchmark.costs[rows, model].mean()))
        mu_mean.append(float(mu.mean()))
    return {"accuracy": np.array(accuracy), "usd_per_1k": np.array(usd), "mu_mean": np.array(mu_mean)}
