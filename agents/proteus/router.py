"""``ProteusRouter``: a trained PROTEUS policy as a router.

    router = ProteusRouter.load("artifacts/proteus")
    result = router.route(embeddings, tau=0.7, prompt_tokens=tokens, confidence=0.95)
    result.models, result.mu, result.expected_accuracy, result.reachable

The request τ goes through the validation calibration (a monotone map onto the policy's τ input,
optionally raised to hold at a one-sided ``confidence`` level), then the deterministic policy
picks μ per query from what the routing head predicts, and the head turns μ into a model. Targets
above what the router reached on validation are flagged (``reachable=False``) and warned about.

:meth:`ProteusRouter.load` reads a verified artifact (:func:`agents.proteus.artifact.read_artifact`)
and rebuilds the policy from its JSON description and weights; it never unpickles anything.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy

from agents.proteus.artifact import Artifact, read_artifact
from agents.proteus.calibration import TauCalibration
from agents.proteus.collapse import CollapsedPolicyWarning, describe_collapse
from proteus_env._validation import check_confidence, check_int, check_tau, check_unit_interval_array
from proteus_env.encoders import Encoder
from proteus_env.env import lambda_at
from proteus_env.loaders.text import estimate_tokens_many
from proteus_env.policy_eval import batch_observations, route_actions
from proteus_env.routing_head import RoutingHead


class UnreachableTargetWarning(UserWarning):
    """A requested τ is above the accuracy the router reached on validation."""


@dataclasses.dataclass(frozen=True)
class RoutingResult:
    """The routing decisions for a batch of queries.

    Attributes:
        models: ``(n,)`` chosen model names.
        indices: ``(n,)`` chosen model indices.
        mu: ``(n,)`` the policy's quality preference μ.
        expected_accuracy: ``(n,)`` predicted correctness p̂ of the chosen model.
        expected_cost: ``(n,)`` predicted USD cost of the chosen model.
        tau: The requested target.
        tau_input: The τ fed to the policy after calibration.
        reachable: Whether validation accuracy reached the target (raised for the ``confidence`` level, if any).
    """

    models: np.ndarray
    indices: np.ndarray
    mu: np.ndarray
    expected_accuracy: np.ndarray
    expected_cost: np.ndarray
    tau: float
    tau_input: float
    reachable: bool


class ProteusRouter:
    """A trained PROTEUS router: policy, routing head, τ calibration and λ table.

    Args:
        policy: The trained policy (a :class:`~agents.proteus.policies.BetaActorCriticPolicy`; an
            SB3 algorithm is accepted too, and its ``.policy`` used). Used deterministically by default.
        head: The routing head the policy was trained with.
        calibration: The validation τ map.
        lambda_state: The dual state (λ per τ-bin and the bin edges).
        identity: The benchmark identity written by ``proteus train`` (``benchmark.json``).
        encoder: The benchmark's fitted text encoder, when it has one (to route prompts).
    """

    def __init__(self, policy: BasePolicy | Any, head: RoutingHead, calibration: TauCalibration, lambda_state: dict[str, Any],
                 identity: dict[str, Any] | None = None, encoder: Encoder | None = None) -> None:
        if not isinstance(policy, BasePolicy) and isinstance(getattr(policy, "policy", None), BasePolicy):
            policy = policy.policy  # an SB3 algorithm
        if not isinstance(policy, BasePolicy):
            raise ValueError(f"`policy` must be an SB3 policy or algorithm, got {type(policy).__name__}.")
        self.policy = policy
        self.head = head
        self.calibration = calibration
        self.lambdas = np.asarray(lambda_state["lambdas"], dtype=np.float64)
        self.lambda_edges = np.asarray(lambda_state["edges"], dtype=np.float64)
        self.identity = identity or {}
        self.encoder = encoder
        self.models = np.array(head.models, dtype=object)
        self.include_query = "query" in getattr(policy.observation_space, "spaces", {})
        self.chunk_size = 8_192  # rows per forward pass: small enough to stay in cache
        self._calibrated_inputs: dict[tuple[float, float | None, int | None], tuple[float, bool]] = {}
        policy.set_training_mode(False)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> ProteusRouter:
        """Load an artifact directory written by ``proteus train`` (verified; nothing unpickled).

        Raises:
            FileNotFoundError: If the directory, its manifest or a listed file is missing, naming it.
            ValueError: If a file was modified, does not parse or holds a bad value, naming it.
        """
        return cls.from_artifact(read_artifact(path), device=device)

    @classmethod
    def from_artifact(cls, artifact: Artifact, *, device: str = "cpu") -> ProteusRouter:
        """The router of an already verified :class:`~agents.proteus.artifact.Artifact`.

        Warns (:class:`~agents.proteus.collapse.CollapsedPolicyWarning`) when training recorded a
        τ-blind policy.
        """
        collapse = describe_collapse(artifact.summary)
        if collapse is not None:
            warnings.warn(f"{artifact.path}: {collapse}", CollapsedPolicyWarning, stacklevel=3)
        return cls(artifact.load_policy(device), artifact.head, artifact.calibration, artifact.lambda_state, artifact.identity,
                   artifact.load_encoder())

    # ------------------------------------------------------------------ routing
    def lambda_for(self, tau: np.ndarray | float) -> np.ndarray:
        """λ of the trained table at τ input(s)."""
        return lambda_at(np.asarray(tau, dtype=np.float64), self.lambdas, self.lambda_edges)

    def route(self, queries: Any, tau: float, *, prompt_tokens: Any = None, calibrated: bool = True,
              confidence: float | None = None, deploy_queries: int | None = None, deterministic: bool = True) -> RoutingResult:
        """Route a batch of queries at target ``tau``.

        Args:
            queries: ``(n, d)`` embeddings (with ``prompt_tokens``), or prompts (a string or a
                list of strings) when the artifact holds the benchmark's text encoder (RouterBench,
                SPROUT; not the synthetic benchmark, which has no prompts). Prompt lengths are then
                estimated like the RouterBench loader does unless ``prompt_tokens`` is given.
            tau: Accuracy target in [0, 1].
            prompt_tokens: ``(n,)`` prompt lengths in tokens (needed with embeddings).
            calibrated: Map τ through the validation calibration (``False``: feed τ as is).
            confidence: One-sided confidence level (e.g. 0.95) at which τ should hold, or ``None``
                to calibrate to τ itself.
            deploy_queries: Size of the deployment sample the confidence level should cover
                (default: as many as the validation split).
            deterministic: Use the Beta mean (default) instead of sampling μ.

        Raises:
            ValueError: On τ outside [0, 1], a ``confidence`` outside (0, 1), a wrong embedding
                width, NaN, complex or non-numeric values, mismatched lengths, or a predicted cost
                that is not finite (naming the model and the query).
        """
        embeddings, prompt_tokens = self._as_features(queries, prompt_tokens)
        p_hat, cost_hat, usd = self.head.predict_with_usd(embeddings, prompt_tokens)
        result = self.route_observations(p_hat, cost_hat, tau, calibrated=calibrated, confidence=confidence,
                                         deploy_queries=deploy_queries, deterministic=deterministic,
                                         query=embeddings if self.include_query else None)
        expected_cost = usd[np.arange(usd.shape[0]), result.indices]
        bad = ~np.isfinite(expected_cost)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"The predicted USD cost of model {self.models[result.indices[row]]!r} for query {row} is "
                             f"{float(expected_cost[row])} ({int(bad.sum())} such queries): its embedding or prompt_tokens "
                             f"({float(prompt_tokens[row]):g}) lie far outside what the routing head was fitted on.")
        return dataclasses.replace(result, expected_cost=expected_cost)

    def route_observations(self, p_hat: np.ndarray, cost_hat: np.ndarray, tau: float, *, calibrated: bool = True,
                           confidence: float | None = None, deploy_queries: int | None = None, deterministic: bool = True,
                           query: np.ndarray | None = None) -> RoutingResult:
        """Route queries whose head predictions ``(p̂, ĉ)`` are already known (the fast path).

        ``expected_cost`` is then the normalized ĉ of the chosen model (no USD model involved).
        """
        tau = check_tau(tau)
        confidence = check_confidence(confidence)
        if deploy_queries is not None:
            deploy_queries = check_int(deploy_queries, "deploy_queries", minimum=1)
        p_hat = _real_array(p_hat, "p_hat").astype(np.float32)
        cost_hat = _real_array(cost_hat, "cost_hat").astype(np.float32)
        k = self.head.n_models
        if p_hat.ndim != 2 or p_hat.shape[1] != k or cost_hat.shape != p_hat.shape or p_hat.shape[0] == 0:
            raise ValueError(f"`p_hat` and `cost_hat` must both have shape (n >= 1, {k}), got {p_hat.shape} and {cost_hat.shape}.")
        check_unit_interval_array(p_hat, "p_hat")  # the policy observes them in Box(0, 1)
        check_unit_interval_array(cost_hat, "cost_hat")
        if self.include_query:
            width = self.policy.observation_space["query"].shape[0]
            if query is None or np.shape(query) != (p_hat.shape[0], width):
                raise ValueError(f"This policy observes the raw embedding: pass `query` of shape ({p_hat.shape[0]}, {width}).")
        if calibrated:
            key = (tau, confidence, deploy_queries)
            if key not in self._calibrated_inputs:  # same τ, same answer: look it up once
                inputs, reachable = self.calibration.input_for(tau, confidence, deploy_queries)
                self._calibrated_inputs[key] = (float(inputs[0]), bool(reachable[0]))
            tau_input, ok = self._calibrated_inputs[key]
            if not ok:
                warnings.warn(self.unreachable_reason(tau, confidence, deploy_queries) + "; routing at its most accurate setting.",
                              UnreachableTargetWarning, stacklevel=2)
        else:
            tau_input, ok = tau, tau <= self.calibration.max_reachable
        obs = batch_observations(p_hat, cost_hat, tau_input, float(self.lambda_for(tau_input)), query)
        actions = self.policy_actions(obs, deterministic=deterministic)
        if not np.isfinite(actions).all():
            raise ValueError("The policy returned NaN actions: its network has diverged; retrain or load another artifact.")
        indices, mu = route_actions(self.head, p_hat, cost_hat, actions)
        return RoutingResult(models=self.models[indices], indices=indices, mu=mu,
                             expected_accuracy=p_hat[np.arange(indices.size), indices].astype(np.float64),
                             expected_cost=cost_hat[np.arange(indices.size), indices].astype(np.float64),
                             tau=tau, tau_input=tau_input, reachable=ok)

    def unreachable_reason(self, tau: float, confidence: float | None = None, deploy_queries: int | None = None) -> str:
        """Why τ is not reachable: the validation accuracy it needs and the best one the policy reached."""
        best = self.calibration.max_reachable
        if confidence is None:
            return f"τ={tau:.3f} is above the best validation accuracy this router reached ({best:.3f})"
        certificate = self.calibration.certificate(tau, confidence, deploy_queries)
        need = "no validation accuracy" if not certificate.certifiable else f"validation accuracy ≥ {certificate.threshold:.3f}"
        top = self.calibration.val_accuracy[-1]
        return (f"τ={tau:.3f} cannot be certified at {confidence:.0%} confidence for {certificate.n_deploy} served queries: that needs "
                f"{need} from the most accurate τ input down ({self.calibration.n_val} validation queries); the highest input "
                f"reached {top:.3f} and the best any input reached {best:.3f}")

    def policy_actions(self, observations: dict[str, np.ndarray], *, deterministic: bool = True) -> np.ndarray:
        """The policy's actions for a batch of observations, ``(n, action_dim)`` in [0, 1].

        Same result as ``policy.predict`` (the Beta mean when deterministic), without its per-call
        checks and copies, in chunks of :attr:`chunk_size` rows under ``torch.inference_mode``.
        """
        policy = self.policy
        n = next(iter(observations.values())).shape[0]
        out = np.empty((n, policy.action_space.shape[0]), dtype=np.float32)
        with th.inference_mode():
            for start in range(0, n, self.chunk_size):
                chunk = {key: th.from_numpy(np.ascontiguousarray(value[start : start + self.chunk_size])) for key, value in observations.items()}
                if deterministic and hasattr(policy, "mean_action"):
                    actions = policy.mean_action(chunk)  # the Beta mean, without building the distribution
                else:
                    distribution = policy.get_distribution(chunk)
                    actions = distribution.mode() if deterministic else distribution.sample()
                out[start : start + self.chunk_size] = actions.numpy()
        return np.clip(out, 0.0, 1.0)

    def _as_features(self, queries: Any, prompt_tokens: Any) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(queries, str):
            queries = [queries]
        if isinstance(queries, (list, tuple, np.ndarray)) and len(queries) and isinstance(queries[0], str):
            if self.encoder is None:
                raise ValueError(
                    "This router has no text encoder for prompts (benchmark "
                    f"{self.identity.get('name', 'unknown')!r}); pass embeddings (n, {self.head.embedding_dim}) with prompt_tokens=.")
            texts = [str(q) for q in queries]
            tokens = estimate_tokens_many(texts) if prompt_tokens is None else np.atleast_1d(_real_array(prompt_tokens, "prompt_tokens"))
            return self.encoder.transform(texts).astype(np.float64), tokens
        embeddings = _real_array(queries, "queries")
        if embeddings.ndim == 1:
            embeddings = embeddings[None, :]
        if prompt_tokens is None:
            raise ValueError("`prompt_tokens` (n,) is required with embeddings: prompt length drives the cost estimate.")
        prompt_tokens = np.atleast_1d(_real_array(prompt_tokens, "prompt_tokens"))
        return embeddings, prompt_tokens


def _real_array(values: Any, name: str) -> np.ndarray:
    """``values`` as a float64 array, refusing what is not real numbers (text, objects, complex, booleans) with a ``ValueError`` naming ``name``."""
    array = values if isinstance(values, np.ndarray) else None
    if array is None:
        try:
            array = np.asarray(values)
        except (TypeError, ValueError):
            raise ValueError(f"`{name}` must be an array of numbers, got {type(values).__name__}.") from None
    if array.dtype.kind not in "iuf" and not (array.dtype.kind == "O" and array.size == 0):
        kind = {"b": "booleans", "c": "complex numbers", "U": "text", "S": "bytes", "O": "Python objects"}.get(array.dtype.kind, str(array.dtype))
        raise ValueError(f"`{name}` must be an array of real numbers, got {kind} (dtype {array.dtype}, shape {array.shape}).")
    return array.astype(np.float64, copy=False)

