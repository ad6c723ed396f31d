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
import numbers
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
from proteus_env.session import SESSION_KEYS, SessionDecision, SessionLedger, check_budget, session_budget_usd, session_features


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

    #: The warning of a target above what validation reached (the evaluation ignores it and reports a missed floor).
    unreachable_warning = UnreachableTargetWarning

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
        observed = set(getattr(policy.observation_space, "spaces", {}))
        #: Whether the policy observes the session state (issue 12): then serve it with :meth:`session`.
        self.session_state = bool(observed & set(SESSION_KEYS))
        #: Whether the policy observes a budget multiplier ``lambda_budget``.
        self.observes_budget = "lambda_budget" in observed
        env_kwargs = dict(self.identity.get("env_kwargs") or {})
        #: Session length and budget the policy was trained with (defaults of :meth:`session`).
        self.session_length = int(env_kwargs.get("session_length") or 100)
        self.budget_usd_per_1k = env_kwargs.get("budget_usd_per_1k")
        budget_state = lambda_state.get("budget") if isinstance(lambda_state, dict) else None
        self.budget_lambdas = np.asarray(budget_state["lambdas"], dtype=np.float64) if budget_state else np.zeros(1)
        if self.budget_lambdas.ndim != 1 or self.budget_lambdas.size not in (1, self.lambdas.size) or not np.isfinite(self.budget_lambdas).all():
            raise ValueError(f"The budget's λ table must hold 1 or {self.lambdas.size} finite values (one per τ-bin), "
                             f"got {self.budget_lambdas.tolist()}.")
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
        obs.update(self._extra_observation(tau_input, p_hat.shape[0]))
        actions = self.policy_actions(obs, deterministic=deterministic)
        if not np.isfinite(actions).all():
            raise ValueError("The policy returned NaN actions: its network has diverged; retrain or load another artifact.")
        indices, mu = route_actions(self.head, p_hat, cost_hat, actions)
        return RoutingResult(models=self.models[indices], indices=indices, mu=mu,
                             expected_accuracy=p_hat[np.arange(indices.size), indices].astype(np.float64),
                             expected_cost=cost_hat[np.arange(indices.size), indices].astype(np.float64),
                             tau=tau, tau_input=tau_input, reachable=ok)

    def _extra_observation(self, tau_input: float, n: int, state: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        """The observation keys beyond p̂, ĉ, τ, λ (and z): ``lambda_budget`` and the session state.

        ``state`` is a session's :func:`~proteus_env.session.session_features`; without one (a batch
        :meth:`route`), a fresh session's (nothing served, nothing revealed).
        """
        extra: dict[str, np.ndarray] = {}
        if self.observes_budget:
            extra["lambda_budget"] = np.full((n, 1), self.budget_lambda_for(tau_input), dtype=np.float32)
        if self.session_state:
            if state is None:
                budget = session_budget_usd(self.budget_usd_per_1k, self.session_length)
                state = session_features(0, self.session_length, 0, 0.0, tau_input, 0.0, budget)
            keys = self.policy.observation_space.spaces
            extra.update({key: np.full((n, 1), value, dtype=np.float32) for key, value in state.items() if key in keys})
        return extra

    def budget_lambda_for(self, tau: float) -> float:
        """λ_budget of the trained budget table at τ input ``tau`` (0 without one; the table shares the accuracy table's bins)."""
        return float(lambda_at(float(tau), self.budget_lambdas, self.lambda_edges))

    def session(self, tau: float, *, length: int | None = None, confidence: float | None = None, deploy_queries: int | None = None,
                calibrated: bool = True, budget_usd_per_1k: float | None = None, deterministic: bool = True) -> RouterSession:
        """A streaming session: route query by query, feed outcomes back as they arrive.

        The session keeps the running state exactly as the environment computes it
        (:class:`proteus_env.session.SessionLedger`, :func:`proteus_env.session.session_features`),
        so a session-state policy sees in deployment what it saw in training. Any router can open
        one; for a policy without session state it only keeps the books.

            session = router.session(0.7, length=500)
            decision = session.route(embedding, prompt_tokens=312)
            ...
            session.observe(decision.query_id, 1.0)   # whenever the grade arrives

        Args:
            tau: The session's accuracy target (``set_tau`` changes it later).
            length: Planned queries (``progress`` = served / length); default: the training sessions'.
            confidence: Calibrate τ at this one-sided confidence level (see :meth:`route`).
            deploy_queries: Served queries the confidence covers (default: ``length``).
            calibrated: Map τ through the validation calibration.
            budget_usd_per_1k: The session's spending cap (default: the training env's, if any).
            deterministic: Use the Beta mean.

        Raises:
            ValueError: On a bad τ, confidence, length or budget.
        """
        return RouterSession(self, tau, length=self.session_length if length is None else length, confidence=confidence,
                             deploy_queries=deploy_queries, calibrated=calibrated,
                             budget_usd_per_1k=self.budget_usd_per_1k if budget_usd_per_1k is None else budget_usd_per_1k,
                             deterministic=deterministic)

    def route_sessions(self, sessions: list[RouterSession], p_hat: np.ndarray, cost_hat: np.ndarray, *, usd: np.ndarray | None = None,
                       query: np.ndarray | None = None) -> list[SessionDecision]:
        """Route the next query of each of several sessions of this router with one policy call.

        Args:
            sessions: ``S`` open sessions of this router.
            p_hat: ``(S, K)`` predictions of each session's query.
            cost_hat: ``(S, K)`` normalized predicted costs.
            usd: ``(S, K)`` USD each model would charge (charged to the session for the chosen one;
                predicted or known); default 0 (charge later with ``charge``).
            query: ``(S, d)`` embeddings, for a policy that observes them.

        Returns:
            One :class:`SessionDecision` per session, in order.
        """
        if not sessions or any(session.router is not self for session in sessions):
            raise ValueError("`sessions` must be a non-empty list of sessions opened by this router.")
        p_hat = np.asarray(p_hat, dtype=np.float32).reshape(len(sessions), -1)
        cost_hat = np.asarray(cost_hat, dtype=np.float32).reshape(len(sessions), -1)
        rows = [session.observation(p_hat[i : i + 1], cost_hat[i : i + 1], None if query is None else query[i : i + 1])
                for i, session in enumerate(sessions)]
        obs = {key: np.concatenate([row[key] for row in rows]) for key in rows[0]}
        actions = self.policy_actions(obs, deterministic=sessions[0].deterministic)
        indices, mu = route_actions(self.head, p_hat, cost_hat, actions)
        out = []
        for i, session in enumerate(sessions):
            charge = 0.0 if usd is None else float(np.asarray(usd)[i, indices[i]])
            out.append(session._record(int(indices[i]), float(mu[i]), float(p_hat[i, indices[i]]), charge))
        return out

    def unreachable_reason(self, tau: float, confidence: float | None = None, deploy_queries: int | None = None) -> str:
        """Why τ is not reachable: the validation accuracy it needs and the best one the policy reached."""
        best = self.calibration.max_reachable
        if confidence is None:
            return f"τ={tau:.3f} is above the best validation accuracy this router reached ({best:.3f})"
        certificate = self.calibration.certificate(tau, confidence, deploy_queries)
        top = self.calibration.val_accuracy[-1]
        where = (f"at {confidence:.0%} confidence for {certificate.n_deploy} served queries "
                 f"({self.calibration.n_val} validation queries)")
        if not certificate.certifiable:
            return (f"τ={tau:.3f} cannot be certified {where} whatever the validation accuracy: even 100% would not be enough; "
                    f"the best any input reached {best:.3f}")
        return (f"τ={tau:.3f} cannot be certified {where}: that needs validation accuracy ≥ {certificate.threshold:.3f} from the most "
                f"accurate τ input down; the highest input reached {top:.3f} and the best any input reached {best:.3f}")

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
    if array.dtype.kind == "O":  # Python numbers in an object array (pandas' .values, lists of mixed types)
        if not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in array.flat):
            raise ValueError(f"`{name}` must be an array of real numbers, got Python objects that are not (shape {array.shape}): "
                             f"{next(v for v in array.flat if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)))!r}.")
        array = array.astype(np.float64)
    if array.dtype.kind not in "iuf":
        kind = {"b": "booleans", "c": "complex numbers", "U": "text", "S": "bytes"}.get(array.dtype.kind, str(array.dtype))
        raise ValueError(f"`{name}` must be an array of real numbers, got {kind} (dtype {array.dtype}, shape {array.shape}).")
    return array.astype(np.float64, copy=False)



class RouterSession:
    """One served session of a :class:`ProteusRouter` (open it with :meth:`ProteusRouter.session`).

    Routes query by query, takes realized outcomes whenever they arrive (``observe(query_id,
    score)``: late, out of order, or never) and keeps the running state the policy observes with
    :class:`~proteus_env.session.SessionLedger`, the same computation as the environment's
    ``session_state`` observation (:func:`~proteus_env.session.session_features`), evaluated at the
    τ input fed to the policy. ``set_tau`` changes the target mid-session (a τ schedule).
    """

    def __init__(self, router: ProteusRouter, tau: float, *, length: int, confidence: float | None, deploy_queries: int | None,
                 calibrated: bool, budget_usd_per_1k: float | None, deterministic: bool) -> None:
        self.router = router
        self.length = check_int(length, "length", minimum=1)
        self.confidence = check_confidence(confidence)
        self.deploy_queries = self.length if deploy_queries is None else check_int(deploy_queries, "deploy_queries", minimum=1)
        self.calibrated = bool(calibrated)
        self.deterministic = bool(deterministic)
        self.budget_usd_per_1k = check_budget(budget_usd_per_1k)
        self.ledger = SessionLedger(self.length, session_budget_usd(self.budget_usd_per_1k, self.length))
        self.decisions: list[SessionDecision] = []
        self.set_tau(tau)

    def set_tau(self, tau: float) -> None:
        """Change the session's target from the next query on (the τ input is recalibrated)."""
        self.tau = check_tau(tau)
        if self.calibrated:
            inputs, reachable = self.router.calibration.input_for(self.tau, self.confidence, self.deploy_queries)
            self.tau_input, self.reachable = float(inputs[0]), bool(reachable[0])
        else:
            self.tau_input, self.reachable = self.tau, self.tau <= self.router.calibration.max_reachable

    @property
    def features(self) -> dict[str, float]:
        """The running state the policy sees for the next query (at the τ input)."""
        return self.ledger.features(self.tau_input)

    def observation(self, p_hat: np.ndarray, cost_hat: np.ndarray, query: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The policy's observation of the next query, ``(1, ...)`` arrays (p̂ and ĉ of shape ``(1, K)``)."""
        router = self.router
        obs = batch_observations(np.asarray(p_hat, dtype=np.float32).reshape(1, -1), np.asarray(cost_hat, dtype=np.float32).reshape(1, -1),
                                 self.tau_input, float(router.lambda_for(self.tau_input)), query)
        obs.update(router._extra_observation(self.tau_input, 1, self.features if router.session_state else None))
        return obs

    def route(self, query: Any, *, prompt_tokens: Any = None) -> SessionDecision:
        """Route one query (an embedding ``(d,)`` with ``prompt_tokens``, or a prompt) and charge its predicted USD."""
        router = self.router
        embeddings, tokens = router._as_features(query, prompt_tokens)
        if embeddings.shape[0] != 1:
            raise ValueError(f"A session routes one query at a time, got {embeddings.shape[0]}.")
        p_hat, cost_hat, usd = router.head.predict_with_usd(embeddings, tokens)
        return self.route_observation(p_hat[0], cost_hat[0], usd=usd[0], query=embeddings if router.include_query else None)

    def route_observation(self, p_hat: np.ndarray, cost_hat: np.ndarray, *, usd: np.ndarray | None = None,
                          query: np.ndarray | None = None) -> SessionDecision:
        """Route one query whose head predictions are known (``(K,)`` each); ``usd`` ``(K,)`` what each model would charge."""
        p = _real_array(p_hat, "p_hat").reshape(1, -1)
        c = _real_array(cost_hat, "cost_hat").reshape(1, -1)
        check_unit_interval_array(p, "p_hat")
        check_unit_interval_array(c, "cost_hat")
        return self.router.route_sessions([self], p, c, usd=None if usd is None else np.asarray(usd, dtype=np.float64).reshape(1, -1),
                                          query=None if query is None else np.asarray(query).reshape(1, -1))[0]

    def _record(self, index: int, mu: float, expected_accuracy: float, usd: float) -> SessionDecision:
        query_id = self.ledger.serve(usd)
        decision = SessionDecision(query_id, str(self.router.models[index]), index, mu, expected_accuracy, usd, self.tau, self.tau_input)
        self.decisions.append(decision)
        return decision

    def observe(self, query_id: int, score: float) -> None:
        """Record the realized score of a served query (each at most once)."""
        self.ledger.observe(query_id, score)

    def charge(self, query_id: int, usd: float) -> None:
        """Replace the USD charged for a served query (e.g. by the invoiced amount)."""
        self.ledger.charge(query_id, usd)
