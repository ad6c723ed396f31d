"""Any agent on the yardstick of ``proteus eval``: :func:`evaluate_policy`.

    from proteus_env import evaluate_policy          # torch-free import
    result = evaluate_policy(model, env)              # an SB3 model of any algorithm, on the env it was trained on
    result = evaluate_policy("sac.zip", env, algo="SAC")
    result = evaluate_policy(lambda obs: np.ones((len(obs["tau"]), 1)), seeds=3)   # a callable: μ = 1 always
    result.summary                                    # one row per router: the policy and the baselines

The protocol is :func:`agents.evaluation.protocol.run_protocol`, the one ``proteus eval`` runs:
the same τ grid, split seeds, realized test accuracy, per-τ and per-session compliance, USD per
1K queries and baselines. Importing this module does not import torch; a policy that needs torch
brings it (an SB3 model), or loads it (a zip).

Unlike ``stable_baselines3.common.evaluation.evaluate_policy`` (mean episode reward on one
environment), this scores a router: realized accuracy against each target τ on held-out test
queries, and what it cost. The environment argument only says what the policy was trained on
(benchmark, models, observation keys, action mode, λ table); the test split is replayed in batches.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.evaluation.fanout import score_seeds_on_ray
from agents.evaluation.policy_zip import load_policy, read_zip
from agents.evaluation.protocol import Contender, EvalSettings, resolve_seeds, router_contenders, run_protocol, torch_threads
from agents.evaluation.result import EvalResult, RouteFn
from proteus_env._validation import check_bin_edges, check_lambda_values
from proteus_env.benchmark import Benchmark
from proteus_env.env import ProteusRoutingEnv, lambda_at
from proteus_env.loading import recorded_loader_kwargs
from proteus_env.policy_eval import batch_observations, route_actions
from proteus_env.routing_head import HeadConfig, HeadFit
from proteus_env.session import SESSION_KEYS

__all__ = ["DUAL_STATE_ATTRIBUTE", "PolicyAdapter", "evaluate_policy", "load_callable"]

#: Attribute in which :class:`callbacks.LagrangianDualCallback` keeps the λ table on an SB3 model
#: (``callbacks.lagrangian.MODEL_STATE_ATTRIBUTE``; SB3 saves it as plain JSON in the zip).
DUAL_STATE_ATTRIBUTE = "proteus_dual_state"
#: Observation keys a batched evaluation can build (the session-state keys need sessions served step by step).
BATCH_KEYS = frozenset({"p_hat", "cost_hat", "tau", "lambda", "query", "lambda_budget"})
#: Rows per call of the policy.
CHUNK = 8192


# ---------------------------------------------------------------------------- the environment
@dataclasses.dataclass(frozen=True)
class _EnvView:
    """What evaluation needs from the environment a policy was trained on."""

    env: ProteusRoutingEnv
    kwargs: dict[str, Any]

    @property
    def action_mode(self) -> str:
        return self.env.action_mode

    @property
    def split_seed(self) -> int:
        return int(self.kwargs.get("split_seed") or 0)


def _env_view(env: Any, *, router: Any = None) -> _EnvView:
    """The base ``ProteusRoutingEnv`` of ``env`` (an env, wrapper, vector env, id, kwargs or ``None``)."""
    if env is None and router is not None:
        env = _router_env_kwargs(router)
    if env is None or isinstance(env, Mapping):
        kwargs = dict(env or {})
        kwargs.pop("render_mode", None)
        try:
            return _EnvView(ProteusRoutingEnv(**kwargs), kwargs)
        except TypeError as exc:
            raise ValueError(f"`env` keyword arguments are not ProteusRoutingEnv's: {exc}.") from None
    if isinstance(env, str):
        try:
            spec = gym.spec(env)
        except gym.error.Error as exc:
            raise ValueError(f"`env` {env!r} is not a registered environment id ({exc}).") from None
        return _env_view({**dict(spec.kwargs or {})})
    base = getattr(env, "template", None) or getattr(env, "unwrapped", None)
    if isinstance(base, ProteusRoutingEnv):
        return _EnvView(base, base.constructor_kwargs())
    if hasattr(env, "env_method"):  # an SB3 VecEnv: rebuild one env with its arguments and λ table
        kwargs = env.env_method("constructor_kwargs", indices=[0])[0]
        view = _env_view(kwargs)
        values, edges = env.env_method("get_lambda_table", indices=[0])[0]
        view.env.set_lambda_table(values, edges if len(values) > 1 else None)
        return view
    raise ValueError(f"`env` must be a ProteusRoutingEnv (or a wrapper or vector env of one), an environment id, a dict of "
                     f"ProteusRoutingEnv arguments or None, got {type(env).__name__}.")


def _router_env_kwargs(router: Any) -> dict[str, Any]:
    """The environment a ProteusRouter was trained on, from its recorded identity (data paths are never taken from it)."""
    identity = dict(getattr(router, "identity", None) or {})
    env_kwargs = dict(identity.get("env_kwargs") or {})
    kwargs, _ = recorded_loader_kwargs(env_kwargs.get("benchmark_kwargs") or {}, source="the router's identity")
    out: dict[str, Any] = {"benchmark": env_kwargs.get("benchmark", identity.get("name", "synthetic")), "benchmark_kwargs": kwargs,
                           "split_seed": int(identity.get("split_seed", env_kwargs.get("split_seed", 0)) or 0)}
    for key in ("models", "exclude_models", "include_query", "learn_gamma", "head_config", "budget_usd_per_1k"):
        if env_kwargs.get(key) is not None:
            out[key] = env_kwargs[key]
    return out


def _loader_settings(view: _EnvView) -> tuple[str, str | None, dict[str, Any]]:
    """Benchmark name, data path and loader arguments (with the model subset) of the environment."""
    kwargs = view.kwargs
    benchmark = kwargs.get("benchmark", "synthetic")
    if isinstance(benchmark, Benchmark):
        raise ValueError("evaluate_policy needs the benchmark by name (it reloads it for every split seed): build the "
                         "environment with benchmark='synthetic' / 'routerbench' / 'sprout' (and data_path), not a Benchmark object.")
    loader = dict(kwargs.get("benchmark_kwargs") or {})
    for key in ("models", "exclude_models"):
        if kwargs.get(key) is not None:
            loader[key] = list(kwargs[key])
    return str(benchmark).lower(), kwargs.get("data_path"), loader


# ---------------------------------------------------------------------------- λ
def _lambda_source(policy: Any, view: _EnvView, lam: Any, contents_state: Any = None) -> tuple[Callable[[float], float], str]:
    """``λ(τ)`` shown to a generic policy, and where it came from.

    In order: ``lam`` (a number, or ``(values, edges)``); the policy's own table (the dual state
    ``LagrangianDualCallback`` keeps on an SB3 model and its zip); the environment's table (the
    one the training env had, when that env is passed; else its ``lambda_init``, 0 by default).
    """
    env = view.env
    if lam is not None:
        if isinstance(lam, (int, float, np.integer, np.floating)) and not isinstance(lam, bool):
            value = float(lam)
            if not (math.isfinite(value) and 0.0 <= value <= env.lambda_max):
                raise ValueError(f"`lambda_value` must be a number in [0, {env.lambda_max}], got {lam!r}.")
            return (lambda tau: value), f"lambda_value={value:g}"
        try:
            values, edges = lam
        except (TypeError, ValueError):
            raise ValueError(f"`lambda_value` must be a number or a (values, edges) table, got {lam!r}.") from None
        return _table(values, edges, env, "lambda_value")
    state = getattr(policy, DUAL_STATE_ATTRIBUTE, None) or contents_state
    if isinstance(state, Mapping) and state.get("lambdas") is not None:
        return _table(state["lambdas"], state.get("edges"), env, f"the policy's {DUAL_STATE_ATTRIBUTE}")
    values, edges = env.get_lambda_table()
    return (lambda tau: float(env.lambda_for(tau))), f"the environment's λ table {np.round(values, 4).tolist()}"


def _table(values: Any, edges: Any, env: ProteusRoutingEnv, source: str) -> tuple[Callable[[float], float], str]:
    """``λ(τ)`` of a per-bin table (one value: a global λ), checked like the environment's setter."""
    try:
        table = check_lambda_values(values, env.lambda_max, source=source, field="lambdas")
        table_edges = np.array([0.0, 1.0]) if table.size == 1 else check_bin_edges(edges, table.size, source=source, field="edges")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: not a usable λ table ({exc}).") from None
    return (lambda tau: float(lambda_at(tau, table, table_edges))), f"{source} {np.round(table, 4).tolist()}"


# ---------------------------------------------------------------------------- policies
@dataclasses.dataclass
class PolicyAdapter:
    """Any policy as a batched function of observations, checked against the environment.

    Attributes:
        name: The router name in the results.
        act: ``act(observations) -> actions``: batched Dict observations (float32, leading
            dimension ``n``) to ``n`` actions.
        keys: The observation keys the policy reads.
        action_space: The environment's action space (μ, μ + γ, or a model index).
        lam: ``λ(τ)`` shown to the policy.
        lambda_source: Where λ came from (recorded in the result).
        kind: ``"sb3"``, ``"zip"`` or ``"callable"``.
    """

    name: str
    act: Callable[[dict[str, np.ndarray]], Any]
    keys: tuple[str, ...]
    action_space: spaces.Space
    lam: Callable[[float], float]
    lambda_source: str
    kind: str

    def actions(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The policy's actions for a batch, checked: ``(n, d)`` floats for a Box, ``(n,)`` model indices for a Discrete.

        Raises:
            ValueError: On a wrong shape, NaN or infinite values, or model indices out of range.
        """
        n = next(iter(obs.values())).shape[0]
        raw = self.act(obs)
        try:
            actions = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"Policy {self.name!r} returned {type(raw).__name__} {str(raw)[:80]!r}, not numbers.") from None
        if isinstance(self.action_space, spaces.Discrete):
            if actions.shape not in ((n,), (n, 1)):
                raise ValueError(f"Policy {self.name!r} returned actions of shape {actions.shape} for {n} observations; the "
                                 f"environment's action space {self.action_space} needs ({n},) model indices.")
            actions = actions.reshape(n)
            if not np.isfinite(actions).all():
                raise ValueError(f"Policy {self.name!r} returned NaN or infinite model indices.")
            k = int(self.action_space.n)
            if (actions != np.round(actions)).any() or actions.min() < 0 or actions.max() >= k:
                bad = actions[(actions != np.round(actions)) | (actions < 0) | (actions >= k)][:3].tolist()
                raise ValueError(f"Policy {self.name!r} returned model indices {bad}: the action space {self.action_space} "
                                 f"needs integers in [0, {k}).")
            return actions.astype(np.int64)
        dim = int(np.prod(self.action_space.shape))
        if actions.shape not in ((n, dim), *(((n,),) if dim == 1 else ())):
            expected = f"({n}, {dim})" + (f" or ({n},)" if dim == 1 else "")
            raise ValueError(f"Policy {self.name!r} returned actions of shape {actions.shape} for {n} observations; the "
                             f"environment's action space {self.action_space} needs {expected}.")
        if not np.isfinite(actions).all():
            raise ValueError(f"Policy {self.name!r} returned NaN or infinite actions (has the network diverged?).")
        return actions.reshape(n, dim)

    def route(self, bench: Benchmark, fit: HeadFit, budget_lambda: Callable[[float], float]) -> RouteFn:
        """``route(rows, tau) -> (model index, μ or None)`` on one seed's benchmark and head."""

        def route(rows: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray | None]:
            rows = np.asarray(rows, dtype=np.int64)
            choices, mus = [], []
            for start in range(0, rows.size, CHUNK):
                part = rows[start:start + CHUNK]
                p_hat, cost_hat = fit.p_hat[part], fit.cost_hat[part]
                obs = batch_observations(p_hat, cost_hat, tau, self.lam(tau), bench.embeddings[part] if "query" in self.keys else None)
                if "lambda_budget" in self.keys:
                    obs["lambda_budget"] = np.full((part.size, 1), budget_lambda(tau), dtype=np.float32)
                actions = self.actions({k: obs[k] for k in self.keys})
                if isinstance(self.action_space, spaces.Discrete):
                    choices.append(actions)
                else:
                    model, mu = route_actions(fit.head, p_hat, cost_hat, actions)
                    choices.append(model)
                    mus.append(mu)
            choice = np.concatenate(choices) if choices else np.zeros(0, dtype=np.int64)
            return choice.astype(np.int64), (np.concatenate(mus) if mus else None)

        return route


def _check_spaces(name: str, policy_obs: Any, policy_action: Any, view: _EnvView) -> tuple[str, ...]:
    """The policy's observation keys, after checking its spaces against the environment's.

    Raises:
        ValueError: Naming missing keys, wrong shapes, session-state keys or another action space.
    """
    env = view.env
    env_spaces = env.observation_space.spaces
    if not isinstance(policy_obs, spaces.Dict):
        raise ValueError(f"Observation-space mismatch: policy {name!r} observes {policy_obs}, not the environment's Dict "
                         f"observation with keys {sorted(env_spaces)}.")
    keys = tuple(policy_obs.spaces)
    missing = sorted(set(keys) - set(env_spaces))
    if missing:
        raise ValueError(f"Observation-space mismatch: policy {name!r} observes {sorted(keys)}, but the environment gives no "
                         f"{missing} (it gives {sorted(env_spaces)}); pass the environment it was trained on.")
    wrong = [f"{k}: policy {tuple(policy_obs[k].shape)} vs environment {tuple(env_spaces[k].shape)}" for k in keys
             if tuple(policy_obs[k].shape) != tuple(env_spaces[k].shape)]
    if wrong:
        raise ValueError(f"Observation-space mismatch between policy {name!r} and the environment ({'; '.join(wrong)}): "
                         f"another benchmark or model list.")
    _check_batch_keys(name, keys)
    if type(policy_action) is not type(env.action_space) or getattr(policy_action, "shape", None) != env.action_space.shape or (
            isinstance(policy_action, spaces.Discrete) and int(policy_action.n) != int(env.action_space.n)):
        hint = " (build the environment with action_mode='model')" if isinstance(policy_action, spaces.Discrete) else ""
        raise ValueError(f"Action-space mismatch: policy {name!r} acts in {policy_action}, the environment in {env.action_space}"
                         f"{hint}.")
    return keys


def _check_batch_keys(name: str, keys: Sequence[str]) -> None:
    unsupported = sorted(set(keys) - BATCH_KEYS)
    if unsupported:
        state = set(unsupported) & {*SESSION_KEYS, "spend"}
        why = ("they describe a session served step by step (session_state=True), which evaluate_policy does not replay for "
               "generic policies; a ProteusRouter with session state is served in sessions") if state else "unknown keys"
        raise ValueError(f"Policy {name!r} observes {unsupported}: {why}.")


def _callable_act(fn: Callable[..., Any], name: str, batched: bool | None, observation_space: spaces.Dict,
                  keys: tuple[str, ...]) -> tuple[Callable[..., Any], bool]:
    """A batched ``act`` for a callable of one observation or of a batch (``batched=None``: probe it)."""
    if batched is None:
        batched = _probe_batched(fn, observation_space, keys)
    elif not isinstance(batched, (bool, np.bool_)):
        raise ValueError(f"`batched` must be True, False or None (probe), got {batched!r}.")

    def single(obs: dict[str, np.ndarray]) -> np.ndarray:
        n = next(iter(obs.values())).shape[0]
        out = []
        for i in range(n):
            value = fn({k: v[i] for k, v in obs.items()})
            try:
                out.append(np.asarray(value, dtype=np.float64))
            except (TypeError, ValueError):
                raise ValueError(f"Policy {name!r} returned {type(value).__name__} {str(value)[:80]!r}, not numbers.") from None
        shapes = {a.shape for a in out}
        if len(shapes) > 1:
            raise ValueError(f"Policy {name!r} returned actions of different shapes {sorted(shapes)} for single observations.")
        stacked = np.stack(out) if out else np.zeros((0,))
        return stacked.reshape(n, -1) if stacked.ndim > 1 or (out and out[0].ndim == 0) else stacked

    return (fn if batched else single), batched


def _probe_batched(fn: Callable[..., Any], observation_space: spaces.Dict, keys: tuple[str, ...]) -> bool:
    """Whether ``fn`` takes a batch (it returns 3 actions for a batch of 3 observations).

    The probe is 3 copies of a mid-range observation of the environment's shapes. A callable
    that raises on the batch, or returns something without a leading dimension of 3, is taken to
    act on one observation at a time. Pass ``batched`` to skip the probe.
    """
    probe = {k: np.full((3, *observation_space[k].shape), 0.5, dtype=np.float32) for k in keys}
    try:
        out = np.asarray(fn(probe), dtype=np.float64)
    except Exception:  # noqa: BLE001 - any failure on a batch means "not batched"; the real call reports its own errors
        return False
    return out.ndim >= 1 and out.shape[0] == 3


def _adapter(policy: Any, view: _EnvView, *, name: str, algo: str | None, trust_pickle: bool, batched: bool | None,
             deterministic: bool, lam: Any) -> PolicyAdapter:
    """Wrap one policy (SB3 model or policy, zip path, callable) as a :class:`PolicyAdapter`."""
    env = view.env
    if isinstance(policy, (str, Path)):
        if algo is None:
            raise ValueError(f"Policy {policy}: a model zip needs the algorithm that trained it (algo='SAC', --algo SAC).")
        loaded = load_policy(policy, algo, env.observation_space, env.action_space, trust_pickle=trust_pickle)
        adapter = _adapter(loaded, view, name=name, algo=None, trust_pickle=False, batched=True, deterministic=deterministic, lam=lam)
        if lam is None and getattr(loaded, DUAL_STATE_ATTRIBUTE, None) is None:
            state = _zip_dual_state(policy)
            if state is not None:
                adapter.lam, adapter.lambda_source = _lambda_source(None, view, None, state)
        adapter.kind = "zip"
        return adapter
    if algo is not None:
        raise ValueError("`algo` is for a model zip path; an SB3 model object, a ProteusRouter or a callable needs none.")
    if hasattr(policy, "predict") and hasattr(policy, "observation_space") and hasattr(policy, "action_space"):
        keys = _check_spaces(name, policy.observation_space, policy.action_space, view)
        lam_fn, source = _lambda_source(policy, view, lam)

        def act(obs: dict[str, np.ndarray]) -> Any:
            return policy.predict(obs, deterministic=deterministic)[0]

        return PolicyAdapter(name, act, keys, env.action_space, lam_fn, source, "sb3")
    if callable(policy):
        keys = tuple(k for k in env.observation_space.spaces if k in BATCH_KEYS)
        _check_batch_keys(name, [k for k in env.observation_space.spaces if k not in keys])
        act, _ = _callable_act(policy, name, batched, env.observation_space, keys)
        lam_fn, source = _lambda_source(policy, view, lam)
        return PolicyAdapter(name, act, keys, env.action_space, lam_fn, source, "callable")
    raise ValueError(f"Cannot evaluate {type(policy).__name__}: give an SB3 model, a model.zip path with `algo`, a callable "
                     f"from observation to action, or a ProteusRouter.")


def _zip_dual_state(path: str | Path) -> Any:
    """The PROTEUS dual state (λ table) an SB3 zip carries as plain JSON, if any."""
    state = read_zip(path).data.get(DUAL_STATE_ATTRIBUTE)
    return state if isinstance(state, Mapping) else None


def _is_router(policy: Any) -> bool:
    return hasattr(policy, "route_observations") and hasattr(policy, "head") and hasattr(policy, "calibration")


# ---------------------------------------------------------------------------- evaluation
@dataclasses.dataclass(frozen=True)
class _Trained:
    """A policy trained on one split seed (for :func:`~agents.evaluation.protocol.resolve_seeds`)."""

    seed: int


def evaluate_policy(policy: Any, env: Any = None, settings: EvalSettings | None = None, *, algo: str | None = None,
                    name: str | None = None, lambda_value: Any = None, batched: bool | None = None, trust_pickle: bool = False,
                    deterministic: bool = True, **options: Any) -> EvalResult:
    """Score any agent with the protocol of ``proteus eval``, beside the built-in baselines.

    Accepted policies:

    * an SB3 model of any algorithm (or an SB3 policy): its observation space must be a Dict
      whose keys the environment produces, with the same shapes, and its action space the
      environment's (``Box`` μ, ``Box(2)`` μ + γ with ``learn_gamma``, ``Discrete(K)`` with
      ``action_mode="model"``); it acts deterministically (``deterministic``);
    * a ``model.zip`` path with ``algo`` (``"PPO"``, ``"SAC"``, ``"DQN"``, ``"A2C"``, ``"TD3"``,
      ``"DDPG"``; sb3_contrib's when installed): only the weights are read, unless
      ``trust_pickle=True`` (:mod:`agents.evaluation.policy_zip` says why and what is refused);
    * a callable from an observation dict to an action: of one observation (arrays of shape
      ``(K,)``, ``(1,)``) or of a batch (``(n, K)``, ``(n, 1)``) returning ``(n, d)`` or ``(n,)``;
      ``batched=None`` probes it with a batch of 3 (see :func:`_probe_batched`);
    * a :class:`~agents.proteus.router.ProteusRouter`: evaluated like ``proteus eval --router``
      (raw, and calibrated at each confidence level, with per-session feedback);
    * a mapping ``{split seed: policy}``: one policy trained per seed, each evaluated on its own seed.

    **τ.** A generic agent is scored as it acts on the raw τ: it is asked for τ itself, without
    the validation calibration the PROTEUS router and the calibrated baselines get (a policy
    that over- or undershoots τ is scored as it is; compare with ``proteus_raw`` and the
    uncalibrated references). A ProteusRouter gets its own calibration.

    **λ.** Agents trained in the environment observe λ(τ). The λ shown is, in order: ``lambda_value``
    (a number or a ``(values, bin edges)`` table); the policy's own table (the dual state
    ``LagrangianDualCallback`` keeps on an SB3 model, also read from a zip's JSON); the
    environment's λ table (pass the training env to reuse the table the callback pushed into it);
    else the environment's ``lambda_init`` (0). The source is recorded in ``result.routers``.

    **Seeds.** A policy trained on data (an SB3 model, a zip, a ProteusRouter) is evaluated on the
    split seed it was trained on only (the environment's ``split_seed``; a router's recorded
    seed): another seed's test split would hold its training rows. Pass ``{seed: policy}`` for
    several seeds. A callable is taken as a fixed rule: any ``seeds`` (default: the env's split seed).

    Args:
        policy: The agent (see above).
        env: The environment the policy was trained on: a ``ProteusRoutingEnv`` (or a wrapper,
            SB3 vector env or ``ProteusVectorEnv`` of one), a registered id, a dict of
            ``ProteusRoutingEnv`` arguments, or ``None`` (the default synthetic environment; for a
            ProteusRouter, the environment it recorded). It gives the benchmark (its name, data
            path, loader arguments and models), observation keys, action mode and λ table.
        settings: The options of ``proteus eval`` (:class:`~agents.evaluation.protocol.EvalSettings`).
        algo: The algorithm of a zip path.
        name: The policy's name in the results (default: the algorithm, the callable's name or
            ``"policy"``; ``"proteus"`` for a router). It must not be a baseline's name.
        lambda_value: The λ shown to a generic policy (see above).
        batched: Whether a callable takes a batch (``None``: probe it).
        trust_pickle: Let a zip be unpickled (runs code from the file; only for files you trust).
        deterministic: Ask SB3 models for their deterministic action.
        **options: Fields of :class:`~agents.evaluation.protocol.EvalSettings` (``seeds``,
            ``taus``, ``confidences``, ``n_boot``, ``sessions``, ``out_dir``, ...).

    Returns:
        The :class:`~agents.evaluation.result.EvalResult` of ``proteus eval``; ``result.summary``
        has one row per router (the policy and the baselines) with ``router``,
        ``floor_compliance``, ``usd_per_1k``, the yardstick ``normalized_cost`` and their
        bootstrap intervals over seeds.

    Raises:
        ValueError: On an unknown algorithm, a zip of another algorithm, an observation- or
            action-space mismatch, a callable returning the wrong shape or NaN, seeds that do
            not fit the policy, or a bad option (each named).
        FileNotFoundError: For a zip path that does not exist.
        TypeError: On an unknown option.
    """
    settings = EvalSettings(**options) if settings is None else dataclasses.replace(settings, **options)
    if name is not None and (not isinstance(name, str) or not name.strip() or any(c in name for c in "[]")):
        raise ValueError(f"`name` must be a non-empty router name without brackets, got {name!r}.")
    per_seed = dict(policy) if isinstance(policy, Mapping) else None
    if per_seed is not None:
        if not per_seed:
            raise ValueError("`policy` is an empty mapping; give {split seed: policy}.")
        bad = [k for k in per_seed if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) < 0]
        if bad:
            raise ValueError(f"A mapping `policy` must be keyed by split seeds (non-negative integers), got keys {bad}.")
        per_seed = {int(k): v for k, v in per_seed.items()}
    first = next(iter(per_seed.values())) if per_seed else policy
    router = _is_router(first)
    view = _env_view(env, router=first if router else None)
    benchmark, data_path, loader = _loader_settings(view)
    if settings.benchmark is not None and settings.benchmark.lower() != benchmark:
        raise ValueError(f"`benchmark` is {settings.benchmark!r} but the environment is built on {benchmark!r}.")
    settings = dataclasses.replace(settings, benchmark=benchmark,
                                   data_path=str(settings.data_path if settings.data_path is not None else data_path)
                                   if (settings.data_path or data_path) else None,
                                   benchmark_kwargs=settings.benchmark_kwargs if settings.benchmark_kwargs is not None else loader)
    seeds = _seeds(per_seed, first, router, view, settings)
    label = name or _default_name(first, algo, router)
    policies = per_seed or {seed: policy for seed in seeds}
    adapters: dict[int, Any] = {}
    for seed in seeds:
        if router:
            adapters[seed] = policies[seed]
        else:
            adapters[seed] = _adapter(policies[seed], view, name=label, algo=algo, trust_pickle=trust_pickle, batched=batched,
                                      deterministic=deterministic, lam=lambda_value)
    env_head = view.env.head_fit.head.config
    budget = view.env.budget_usd_per_1k is not None

    def budget_lambda(tau: float) -> float:
        return float(view.env.lambda_for(tau, constraint="budget")) if budget else 0.0

    def head_config(seed: int, bench: Benchmark) -> HeadConfig | None:
        return adapters[seed].head.config if router else env_head

    def factory(seed: int, bench: Benchmark, fit: HeadFit, served: int) -> dict[str, Contender]:
        agent = adapters[seed]
        if router:
            return router_contenders(agent, bench, fit, settings.confidences, seed=seed, deploy_queries=served, name=label,
                                     label=f"router {label!r}")
        return {label: Contender(label, label, "policy", None, agent.route(bench, fit, budget_lambda), agent, calibrated=False)}

    described = [f"{label} (ProteusRouter, seed {s})" if router else
                 f"{label} ({adapters[s].kind}, seed {s}, λ from {adapters[s].lambda_source}, raw τ)" for s in seeds]
    with torch_threads(settings.torch_threads):
        return run_protocol(seeds, settings, factory=factory, head_config=head_config, routers=described,
                            seed_scorer=score_seeds_on_ray if settings.ray else None)


def _seeds(per_seed: dict[int, Any] | None, first: Any, router: bool, view: _EnvView, settings: EvalSettings) -> list[int]:
    """The evaluated seeds (see :func:`evaluate_policy`)."""
    if per_seed is not None:
        return resolve_seeds([_Trained(s) for s in per_seed], settings.seeds)
    if router:
        seed = (getattr(first, "identity", None) or {}).get("split_seed", view.split_seed)
        return resolve_seeds([_Trained(int(seed))], settings.seeds)
    if callable(first) and not hasattr(first, "predict") and not isinstance(first, (str, Path)):
        return resolve_seeds(None, settings.seeds if settings.seeds is not None else [view.split_seed])
    return resolve_seeds([_Trained(view.split_seed)], settings.seeds)


def _default_name(policy: Any, algo: str | None, router: bool) -> str:
    if router:
        return "proteus"
    if isinstance(policy, (str, Path)):
        return str(algo or "policy").strip().lower() or "policy"
    if hasattr(policy, "predict"):
        return type(policy).__name__.lower()
    fn_name = getattr(policy, "__name__", "")
    return fn_name if fn_name.isidentifier() and fn_name != "<lambda>" else "policy"


def load_callable(spec: str) -> Callable[..., Any]:
    """The callable named by ``module:function`` (or ``path/to/file.py:function``; ``function`` may be dotted).

    The module is imported (it runs, as ``python -c "import module"`` would); the current directory
    is searched first, as ``python -m`` does.

    Raises:
        ValueError: If ``spec`` is not ``module:function``, the module does not import (its error
            quoted), it has no such attribute, or the attribute is not callable.
    """
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(part.strip() for part in spec.split(":")):
        raise ValueError(f"--policy {spec!r}: a callable is named module:function (or file.py:function); a model is a .zip path.")
    module_name, attribute = (part.strip() for part in spec.split(":"))
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise FileNotFoundError(f"no such file {path}")
            loader_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
        else:
            sys.path.insert(0, str(Path.cwd()))
            try:
                module = importlib.import_module(module_name)
            finally:
                sys.path.remove(str(Path.cwd()))
    except Exception as exc:  # noqa: BLE001 - the user's module may fail in any way; say so without a traceback
        raise ValueError(f"--policy {spec}: cannot import {module_name!r} ({type(exc).__name__}: {exc}).") from None
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise ValueError(f"--policy {spec}: {module_name!r} has no attribute {attribute!r}.")
        value = getattr(value, part)
    if not callable(value):
        raise ValueError(f"--policy {spec}: {module_name}.{attribute} is a {type(value).__name__}, not a callable.")
    return value
