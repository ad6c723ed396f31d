"""``ProteusVectorEnv``: many routing sessions stepped at once with numpy (the batched path)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from proteus_env._validation import check_int
from proteus_env.env import ProteusRoutingEnv, check_revealed, check_session_rows
from proteus_env.rewards import session_summary, step_outcome
from proteus_env.routing_head import gamma_from_action
from proteus_env.session import callable_tau_path, check_tau_path, session_features, tau_path

#: The most sessions one vector env batches (each holds a ``session_length`` row array).
MAX_NUM_ENVS = 65_536


class ProteusVectorEnv(VectorEnv):
    """``num_envs`` independent sessions of :class:`~proteus_env.ProteusRoutingEnv`, batched.

    Same observations, actions, rewards and ``info`` keys as the single environment (``info``
    values are arrays over sessions; the reward and ``info`` come from the same
    :func:`~proteus_env.rewards.step_outcome`), computed with one numpy expression per step instead
    of a Python loop over environments. All sessions have the same length, so they end together and
    are reset in the same step (``AutoresetMode.SAME_STEP``; the last observation and info are in
    ``info["final_obs"]`` and ``info["final_info"]``). ``action_mode="model"`` and
    ``include_query`` are supported; learned γ too; so are the session arguments (``session_state``,
    ``feedback_delay``, ``feedback_rate``, ``tau_schedule``, ``task_mix``, ``budget_usd_per_1k``),
    with the same semantics: given the same session plan (``reset(options={"rows", "tau_path",
    "revealed"})``) the two environments produce bit-identical observations, rewards and ``info``.

    Args:
        num_envs: Number of parallel sessions.
        template: An existing :class:`~proteus_env.ProteusRoutingEnv` to batch (its data, head,
            settings and λ tables are used, nothing is refitted); then no ``env_kwargs``.
        **env_kwargs: Arguments of :class:`~proteus_env.ProteusRoutingEnv`.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int, *, template: ProteusRoutingEnv | None = None, **env_kwargs: Any) -> None:
        num_envs = check_int(num_envs, "num_envs", minimum=1)
        if num_envs > MAX_NUM_ENVS:
            raise ValueError(f"`num_envs` must be at most {MAX_NUM_ENVS:,} (one session array each), got {num_envs:,}.")
        if env_kwargs.pop("render_mode", None) is not None:
            raise ValueError("ProteusVectorEnv does not render; pass render_mode=None.")
        if template is not None:
            if env_kwargs:
                raise ValueError(f"Give either `template` or environment arguments, not both (got {sorted(env_kwargs)}).")
            if not isinstance(template, ProteusRoutingEnv):
                raise ValueError(f"`template` must be a ProteusRoutingEnv, got {type(template).__name__}.")
            self.template = template
        else:
            self.template = ProteusRoutingEnv(**env_kwargs)
        self.num_envs = int(num_envs)
        self.single_observation_space = self.template.observation_space
        self.single_action_space = self.template.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        t = self.template
        # The template's data, head and settings are the single source; nothing is copied.
        self._bench = t.benchmark
        self._fit = t.head_fit
        self._model_names = np.array(t.models)
        self._rows_pool = t.session_rows
        self._started = False
        self._rng = np.random.default_rng()
        self._session = np.zeros((self.num_envs, t.session_length), dtype=np.int64)
        self._tau = np.zeros(self.num_envs)
        self._t = 0
        self._score_sum = np.zeros(self.num_envs)
        self._usd_sum = np.zeros(self.num_envs)
        self._arange = np.arange(self.num_envs)
        self._tau_path: np.ndarray | None = None
        self._session_tau = np.zeros(self.num_envs)
        self._revealed: np.ndarray | None = None
        self._y_hist = np.zeros((self.num_envs, t.session_length))
        self._n_revealed = np.zeros(self.num_envs)
        self._revealed_sum = np.zeros(self.num_envs)

    # ------------------------------------------------------------------ λ setters
    def set_lambda_table(self, values: Any, bin_edges: Any = None, *, constraint: str = "accuracy") -> None:
        """Set one λ per τ-bin for every session (see :meth:`ProteusRoutingEnv.set_lambda_table`)."""
        self.template.set_lambda_table(values, bin_edges, constraint=constraint)

    def set_lagrange_multiplier(self, value: float, *, constraint: str = "accuracy") -> None:
        """Set one global λ for every session."""
        self.template.set_lagrange_multiplier(value, constraint=constraint)

    def get_lambda_table(self, *, constraint: str = "accuracy") -> tuple[np.ndarray, np.ndarray]:
        """Return copies of ``(values, bin_edges)``."""
        return self.template.get_lambda_table(constraint=constraint)

    def _lambdas(self) -> np.ndarray:
        return self.template.lambda_for(self._tau)

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start ``num_envs`` new sessions; ``options={"tau": τ or (num_envs,) array}`` fixes targets."""
        if seed is not None:
            seeds = [seed] if isinstance(seed, numbers.Integral) else seed
            if isinstance(seed, (bool, np.bool_)) or not isinstance(seeds, (list, tuple)) or not all(
                    isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_)) and s >= 0 for s in seeds):
                raise ValueError(f"`seed` must be None, a non-negative integer or a list of them, got {seed!r}.")
            self._rng = np.random.default_rng(int(seed) if isinstance(seed, numbers.Integral) else [int(s) for s in seeds])
        options = {} if options is None else options
        if not isinstance(options, Mapping):
            raise ValueError(f"`options` must be a dict (e.g. {{'tau': 0.7}}) or None, got {options!r}.")
        low, high = self.template.tau_range
        if options.get("tau") is not None:
            given = np.asarray(options["tau"], dtype=object).reshape(-1)
            if given.size not in (1, self.num_envs):
                raise ValueError(f"options['tau'] must be one τ or {self.num_envs} of them, got {given.size}.")
            checked = np.array([self.template.check_tau(value, "options['tau']") for value in given])
            tau = np.broadcast_to(checked, (self.num_envs,)).copy()
        else:
            tau = self._rng.uniform(low, high, size=self.num_envs)
        self._start(tau, options)
        return self._observation(), {"tau": self._tau.copy(), "lambda": self._lambdas()}

    def _start(self, tau: np.ndarray, options: dict[str, Any] | None = None) -> None:
        """Draw the sessions' plan (τ path, rows, reveal mask) in the single env's order, and reset the counters."""
        t = self.template
        options = options or {}
        n, length = self.num_envs, t.session_length
        path = self._draw_tau_path(tau, options)
        self._tau_path = path
        if path is not None:
            self._tau = path[:, 0].copy()
            self._session_tau = np.array([float(np.mean(line)) for line in path])
        else:
            self._tau = tau
            self._session_tau = tau
        self._wq, self._wc = t.reward_weights_batch(self._tau)
        if options.get("rows") is not None:
            self._session = check_session_rows(_broadcast(options["rows"], (n, length)), (n, length), t.benchmark.n_queries)
        elif t.task_mix is not None:
            self._session = t.task_mix.draw(self._rng, n, length)
        else:
            self._session = self._rows_pool[self._rng.integers(0, self._rows_pool.size, size=(n, length))]
        if options.get("revealed") is not None:
            self._revealed = check_revealed(_broadcast(options["revealed"], (n, length)), (n, length))
        elif t.feedback_rate < 1.0:
            self._revealed = self._rng.random((n, length)) < t.feedback_rate
        else:
            self._revealed = None
        self._t = 0
        self._score_sum[:] = 0.0
        self._usd_sum[:] = 0.0
        self._n_revealed[:] = 0.0
        self._revealed_sum[:] = 0.0
        self._started = True

    def _draw_tau_path(self, tau: np.ndarray, options: dict[str, Any]) -> np.ndarray | None:
        t = self.template
        shape = (self.num_envs, t.session_length)
        if options.get("tau_path") is not None:
            return check_tau_path(options["tau_path"], shape, "options['tau_path']")
        if callable(t.tau_schedule):
            return np.broadcast_to(callable_tau_path(t.tau_schedule, t.session_length), shape).copy()
        if t.tau_schedule == "constant":
            return None
        if options.get("tau_end") is not None:
            given = np.asarray(options["tau_end"], dtype=object).reshape(-1)
            if given.size not in (1, self.num_envs):
                raise ValueError(f"options['tau_end'] must be one τ or {self.num_envs} of them, got {given.size}.")
            end = np.broadcast_to(np.array([t.check_tau(value, "options['tau_end']") for value in given]), (self.num_envs,)).copy()
        else:
            low, high = t.tau_range
            end = self._rng.uniform(low, high, size=self.num_envs)
        return tau_path(t.tau_schedule, tau, end, t.session_length)

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Route the current query of every session."""
        if not self._started:
            raise RuntimeError("Call reset() before step().")
        rows = self._session[:, self._t]
        mu = gamma = None
        if self.template.action_mode == "model":
            model = self._check_models(actions)
        else:
            mu, gamma = self._check_mu(actions)
            model = self._fit.head.route(self._fit.p_hat[rows], self._fit.cost_hat[rows], mu, gamma)
        t = self.template
        y = t._scores[rows, model].astype(np.float64)
        usd = t._costs[rows, model]
        budget = {} if t.budget_usd_per_1k is None else {"budget_usd_per_1k": t.budget_usd_per_1k,
                                                         "lam_budget": t.lambda_for(self._tau, constraint="budget")}
        reward, info = step_outcome(y, usd, self._fit.cost_norm[rows, model], model, self._model_names, self._tau.copy(),
                                    self._lambdas(), self._wq, self._wc, mu, gamma if t.learn_gamma else None,
                                    normalize=t.reward_normalization == "one_plus_lambda", **budget)
        self._score_sum += y
        self._usd_sum += usd
        if t.session_state:  # the outcome of query t - delay becomes observable now (if it is ever revealed)
            self._y_hist[:, self._t] = y
            j = self._t - t.feedback_delay
            if j >= 0:
                shown = np.ones(self.num_envs, dtype=bool) if self._revealed is None else self._revealed[:, j]
                self._n_revealed += shown
                self._revealed_sum += np.where(shown, self._y_hist[:, j], 0.0)
        self._t += 1
        terminated = np.full(self.num_envs, self._t >= t.session_length)
        if terminated[0]:
            info.update(session_summary(self._score_sum, self._usd_sum.copy(), t.session_length, self._session_tau.copy(),
                                        budget_usd_per_1k=t.budget_usd_per_1k, report_tau=self._tau_path is not None))
            final_obs = self._observation(t.session_length - 1)
            low, high = self.template.tau_range
            self._start(self._rng.uniform(low, high, size=self.num_envs))
            obs = self._observation()
            info = {"final_obs": final_obs, "final_info": _with_masks(info, self.num_envs), "_final_obs": terminated.copy(),
                    "_final_info": terminated.copy()}
        else:
            if self._tau_path is not None:  # the target in force for the next query
                self._tau = self._tau_path[:, self._t].copy()
                self._wq, self._wc = t.reward_weights_batch(self._tau)
            obs = self._observation()
            info = _with_masks(info, self.num_envs)
        return obs, reward.astype(np.float64), terminated, np.zeros(self.num_envs, dtype=bool), info

    # ------------------------------------------------------------------ helpers
    def _observation(self, index: int | None = None) -> dict[str, np.ndarray]:
        """Observations of the query at ``index`` (default: the current one) with the session state after ``self._t`` queries."""
        t = self.template
        rows = self._session[:, self._t if index is None else index]
        obs = {
            "p_hat": self._fit.p_hat[rows],
            "cost_hat": self._fit.cost_hat[rows],
            "tau": self._tau.astype(np.float32)[:, None],
            "lambda": self._lambdas().astype(np.float32)[:, None],
        }
        if t.include_query:
            obs["query"] = t.benchmark.embeddings[rows]
        if t.budget_usd_per_1k is not None:
            obs["lambda_budget"] = np.asarray(t.lambda_for(self._tau, constraint="budget")).astype(np.float32)[:, None]
        if t.session_state:
            features = session_features(self._t, t.session_length, self._n_revealed, self._revealed_sum, self._tau, self._usd_sum,
                                        t._session_budget)
            for key, value in features.items():
                obs[key] = np.asarray(value, dtype=np.float64).astype(np.float32)[:, None]
        return obs

    def _check_mu(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        width = 2 if self.template.learn_gamma else 1
        try:
            values = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, width)
        except (TypeError, ValueError):
            raise ValueError(f"Actions must be numeric with shape ({self.num_envs}, {width}), got {np.shape(actions)}.") from None
        bad = ~((values >= 0.0) & (values <= 1.0))  # also catches NaN
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            raise ValueError(f"Action of session {i} must be finite and in [0, 1], got {values[i].tolist()}.")
        mu = self._fit.head.mu_from_action(values[:, 0])
        if width == 2:
            return mu, gamma_from_action(values[:, 1])
        return mu, np.full(self.num_envs, self._fit.head.config.gamma)

    def _check_models(self, actions: Any) -> np.ndarray:
        values = np.asarray(actions).reshape(-1)
        k = self.template.benchmark.n_models
        if values.size != self.num_envs or not np.issubdtype(values.dtype, np.integer) or (values < 0).any() or (values >= k).any():
            raise ValueError(f"Actions must be {self.num_envs} integer model indices in [0, {k - 1}], got {values.tolist()}.")
        return values.astype(np.int64)


def _broadcast(values: Any, shape: tuple[int, ...]) -> Any:
    """``values`` broadcast to ``shape`` when it can be (a shared ``(L,)`` plan for every session), else as given."""
    array = np.asarray(values)
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        return array


def _with_masks(info: dict[str, Any], num_envs: int) -> dict[str, Any]:
    """Add Gymnasium's ``_key`` masks (every session has every key) to a batched info dict."""
    return {**info, **{f"_{key}": np.ones(num_envs, dtype=bool) for key in info}}
