"""``proteus eval --ray``: the protocol's seeds in parallel on Ray, one actor per seed, merged as the sequential path merges them.

The protocol has two rounds per seed with one global step between them: each seed is prepared
(data, routing head, contenders; :func:`~agents.evaluation.protocol._prepare_seed`), the τ grid is
drawn over the range achievable in *every* seed (:func:`~agents.evaluation.protocol.tau_grid`),
then each seed is scored on that grid (:func:`~agents.evaluation.protocol.score_seed`). Here each
seed lives in its own Ray actor across both rounds (its prepared data stays in the actor), the
driver draws the grid in between, and :func:`~agents.evaluation.protocol.assemble_result` merges
the per-seed scores in seed order: the same functions as the sequential path, so the same tables.

The contender factory (the routers of the artifacts, or the policy of ``evaluate_policy``) is
sent to the actors with Ray's own serialization. Ray is optional: this module is imported only
when ``EvalSettings.ray`` is set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from agents.evaluation.protocol import (
    ContenderFactory,
    EvalSettings,
    HeadConfigFn,
    SeedScores,
    _prepare_seed,
    _Seed,
    score_seed,
    tau_grid,
)
from agents.ray_cluster import ray_session

__all__ = ["score_seeds_on_ray"]


class SeedWorker:
    """One seed of the protocol, kept in a Ray actor between the two rounds."""

    def __init__(self, seed: int, settings: EvalSettings, factory: ContenderFactory | None, head_config: HeadConfigFn | None) -> None:
        self.seed, self.settings, self.factory, self.head_config = int(seed), settings, factory, head_config
        self.prepared: _Seed | None = None

    def prepare(self) -> tuple[float, float]:
        """Load the seed's data, fit its head and contenders; returns its achievable ``(low, high)``."""
        self.prepared = _prepare_seed(self.seed, self.settings, self.factory, self.head_config)
        return self.prepared.low, self.prepared.high

    def score(self, tau_values: Sequence[float], low: float, high: float) -> SeedScores:
        """Score the prepared seed on the grid (:func:`~agents.evaluation.protocol.score_seed`)."""
        if self.prepared is None:
            raise RuntimeError("SeedWorker.score() before prepare().")
        return score_seed(self.prepared, tau_values, low, high, self.settings)


def score_seeds_on_ray(seed_list: Sequence[int], settings: EvalSettings, *, factory: ContenderFactory | None = None,
                       head_config: HeadConfigFn | None = None) -> tuple[list[SeedScores], list[float], float, float]:
    """Prepare and score every seed on Ray (``settings.ray_address``, or a local instance; an existing session is reused).

    Returns:
        The per-seed scores in ``seed_list`` order, the τ grid and the common achievable range,
        as the sequential path computes them.

    Raises:
        ImportError: If Ray is not installed (saying how to install it).
        ValueError: On an unreachable address, or the error a seed raised (a bad data file, a
            router trained on other data), re-raised as itself.
    """
    worker_settings = dataclasses.replace(settings, ray=False, ray_address=None, progress=False, out_dir=None)
    with ray_session(settings.ray_address, feature="proteus eval --ray") as ray:
        actor = ray.remote(num_cpus=1)(SeedWorker)
        shared = [ray.put(value) for value in (worker_settings, factory, head_config)]
        workers = [actor.remote(seed, *shared) for seed in seed_list]
        try:
            ranges = _get(ray, [w.prepare.remote() for w in workers])
            tau_values, low, high = tau_grid(ranges, settings)
            scored = _get(ray, [w.score.remote(tau_values, low, high) for w in workers])
        finally:
            for worker in workers:
                ray.kill(worker)
    return list(scored), tau_values, low, high


def _get(ray: Any, refs: list[Any]) -> list[Any]:
    """``ray.get``, re-raising a task's own exception (a ``ValueError`` stays a ``ValueError``)."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise
