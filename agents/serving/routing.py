"""Routing decisions for the server: a trained router restricted to the models that have upstreams.

:class:`ServingRouter` runs the same pipeline as :meth:`ProteusRouter.route` (text encoder →
routing head → calibrated τ input → deterministic policy → μ → model), with three differences the
server needs:

- models without an upstream are masked out of the head's ``argmax`` (they are never chosen);
- each query of a batch may carry its own target (tenants with different floors and boosts are
  routed in one forward pass);
- the calibrated τ input of a target is cached in a bounded table (a controller moves targets
  continuously, so an unbounded cache would grow without end).

:class:`RouteBatcher` routes the prompts of concurrent requests in batches on one routing thread:
under load the per-request cost of the encoder and the policy is shared; a lone request is routed
at once (no waiting for a batch to fill).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from agents.proteus.router import ProteusRouter
from proteus_env.loaders.text import estimate_tokens_many
from proteus_env.policy_eval import batch_observations
from proteus_env.routing_head import gamma_from_action

T = TypeVar("T")

#: Largest number of distinct (τ, confidence) pairs whose calibrated input is cached.
CALIBRATION_CACHE_SIZE = 4096


@dataclasses.dataclass(frozen=True)
class Decision:
    """The routing decision for one query.

    Attributes:
        model: The chosen benchmark model name.
        index: Its column in the router's model list.
        mu: The policy's quality preference μ.
        expected_accuracy: Predicted correctness p̂ of the chosen model.
        expected_cost_usd: Predicted USD cost of the chosen model for this query.
        tau_served: The target routed at (the requested floor plus the tenant's boost).
        tau_input: The τ fed to the policy after calibration.
        reachable: Whether validation accuracy reached the target.
    """

    model: str
    index: int
    mu: float
    expected_accuracy: float
    expected_cost_usd: float
    tau_served: float
    tau_input: float
    reachable: bool


class ServingRouter:
    """A :class:`ProteusRouter` restricted to a set of models.

    Args:
        router: The loaded router.
        models: The benchmark model names that may be chosen (those with an upstream).

    Raises:
        ValueError: If ``models`` is empty or names models the router does not know.
    """

    def __init__(self, router: ProteusRouter, models: Sequence[str]) -> None:
        self.router = router
        self.head = router.head
        names = [str(m) for m in router.head.models]
        unknown = sorted(set(models) - set(names))
        if unknown or not models:
            raise ValueError(f"Models {unknown or '[]'} cannot be served: the router's models are {names}.")
        self.model_names = names
        self.available = np.array([name in set(models) for name in names], dtype=bool)
        self.allowed = [name for name in names if name in set(models)]
        self.has_encoder = router.encoder is not None
        self.embedding_dim = int(router.head.embedding_dim)
        self._calibration: dict[tuple[float, float | None], tuple[float, bool]] = {}

    @property
    def max_reachable(self) -> float:
        """The highest validation accuracy of the router (over all its models)."""
        return float(self.router.calibration.max_reachable)

    def calibrated(self, tau: float, confidence: float | None) -> tuple[float, bool]:
        """The policy input and reachability of target ``tau`` (cached, bounded)."""
        key = (round(float(tau), 6), confidence)
        hit = self._calibration.get(key)
        if hit is None:
            inputs, reachable = self.router.calibration.input_for(key[0], confidence)
            hit = (float(inputs[0]), bool(reachable[0]))
            if len(self._calibration) >= CALIBRATION_CACHE_SIZE:
                self._calibration.clear()
            self._calibration[key] = hit
        return hit

    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and estimated prompt lengths of ``texts``.

        Raises:
            ValueError: If the router has no text encoder (it was trained on embeddings only).
        """
        if self.router.encoder is None:
            raise ValueError(f"This router has no text encoder (benchmark {self.router.identity.get('name', 'unknown')!r}): "
                             f"it routes embeddings only; send `embeddings` ({self.embedding_dim} numbers each) and `prompt_tokens` to /v1/route.")
        return self.router.encoder.transform(list(texts)).astype(np.float64), estimate_tokens_many(texts)

    def decide(self, embeddings: np.ndarray, prompt_tokens: np.ndarray, taus: Sequence[float],
               confidences: Sequence[float | None]) -> list[Decision]:
        """Route ``n`` queries, each at its own target, among the available models.

        Args:
            embeddings: ``(n, d)`` query embeddings.
            prompt_tokens: ``(n,)`` prompt lengths.
            taus: ``n`` targets in [0, 1] (already including any tenant boost).
            confidences: ``n`` one-sided confidence levels of the calibration (``None``: calibrate to τ itself).

        Raises:
            ValueError: On wrong shapes or non-finite values (from the routing head).
        """
        n = len(taus)
        p_hat, cost_hat, usd = self.head.predict_with_usd(embeddings, prompt_tokens)
        calibrated = [self.calibrated(tau, confidence) for tau, confidence in zip(taus, confidences, strict=True)]
        tau_inputs = np.array([c[0] for c in calibrated], dtype=np.float64)
        lambdas = np.asarray(self.router.lambda_for(tau_inputs), dtype=np.float64).reshape(n)
        query = np.asarray(embeddings, dtype=np.float32) if self.router.include_query else None
        actions = np.asarray(self.router.policy_actions(batch_observations(p_hat, cost_hat, tau_inputs, lambdas, query)), dtype=np.float64)
        if not np.isfinite(actions).all():
            raise ValueError("The policy returned NaN actions: its network has diverged; retrain or load another artifact.")
        actions = np.clip(actions.reshape(n, -1), 0.0, 1.0)
        mu = self.head.mu_from_action(actions[:, 0])
        gamma = gamma_from_action(actions[:, 1]) if actions.shape[1] > 1 else None
        scores = self.head.score(p_hat, cost_hat, mu, gamma)
        scores = np.where(self.available[None, :], scores, -np.inf)  # models without an upstream are never chosen
        indices = np.argmax(scores, axis=1)
        rows = np.arange(n)
        chosen_p = p_hat[rows, indices]
        chosen_usd = usd[rows, indices]
        return [Decision(model=self.model_names[int(indices[i])], index=int(indices[i]), mu=float(mu[i]), expected_accuracy=float(chosen_p[i]),
                         expected_cost_usd=float(chosen_usd[i]), tau_served=float(taus[i]), tau_input=calibrated[i][0], reachable=calibrated[i][1])
                for i in range(n)]

    def decide_texts(self, texts: Sequence[str], taus: Sequence[float], confidences: Sequence[float | None]) -> list[Decision]:
        """:meth:`decide` for prompts (needs the router's text encoder)."""
        embeddings, tokens = self.embed(texts)
        return self.decide(embeddings, tokens, taus, confidences)


class RouteBatcher:
    """Micro-batching of prompt routing across concurrent requests, on one routing thread.

    Requests call :meth:`route`. When no batch is being routed, the pending queries are handed to
    the routing thread at once (a lone request waits for no timer); while a batch is being routed,
    new queries accumulate and go together as the next batch. The batch size thus grows with the
    load by itself, and the encoder's and the policy's per-call costs are shared by the whole batch.
    The event loop keeps reading, forwarding and answering requests meanwhile.

    Args:
        router: The serving router.
        max_batch: Largest batch routed in one call (the rest goes to the next one).
    """

    def __init__(self, router: ServingRouter, *, max_batch: int = 256) -> None:
        self.router = router
        self.max_batch = max_batch
        self._pending: list[tuple[str, float, float | None, asyncio.Future[Decision]]] = []
        self._busy = False
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="proteus-route")
        self.batches = 0
        self.routed = 0

    async def route(self, text: str, tau: float, confidence: float | None) -> Decision:
        """Route one prompt at target ``tau``; returns its decision."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        self._pending.append((text, tau, confidence, future))
        if not self._busy:
            self._start(loop)
        return await future

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run another routing job (a ``/v1/route`` batch) on the routing thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def close(self) -> None:
        """Stop the routing thread (after the batch it is routing, if any)."""
        self._executor.shutdown(wait=True)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = [item for item in self._pending[: self.max_batch] if not item[3].done()]  # a cancelled request needs no decision
        self._pending = self._pending[self.max_batch :]
        if not batch:
            if self._pending:
                self._start(loop)
            return
        self._busy = True
        job = loop.run_in_executor(self._executor, self.router.decide_texts, [t for t, _, _, _ in batch], [tau for _, tau, _, _ in batch],
                                   [m for _, _, m, _ in batch])
        job.add_done_callback(lambda done: self._finish(loop, batch, done))

    def _finish(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[str, float, float | None, asyncio.Future[Decision]]],
                job: asyncio.Future[list[Decision]]) -> None:
        self._busy = False
        error = job.exception()
        if error is None:
            self.batches += 1
            self.routed += len(batch)
        for i, (*_, future) in enumerate(batch):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(job.result()[i])
        if self._pending:
            self._start(loop)
