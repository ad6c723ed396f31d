"""``ProteusVectorEnv``: many routing sessions stepped at once with numpy (the batched path)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from proteus_env.env import ProteusRoutingEnv
from proteus_env.rewards import session_summary, step_outcome
from proteus_env.routing_head import gamma_from_action


class ProteusVectorEnv(VectorEnv):
    """``num_envs`` independent sessions of :class:`~proteus_env.ProteusRoutingEnv`, batched.

    Same observations, actions, rewards and ``info`` keys as the single environment (``info``
    values are arrays over sessions; the reward and ``info`` come from the same
    :func:`~proteus_env.rewards.step_outcome`), computed with one numpy expression per step instead
    of a Python loop over environments. All sessions have the same length, so they end together and
    are reset in the same step (``AutoresetMode.SAME_STEP``; the last observation and info are in
    ``info["final_obs"]`` and ``info["final_info"]``). ``action_mode="model"`` and
    ``include_query`` are supported; learned γ too.

    Args:
        num_envs: Number of parallel sessions.
        **env_kwargs: Arguments of :class:`~proteus_env.ProteusRoutingEnv`.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int, **env_kwargs: Any) -> None:
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"`num_envs` must be a positive integer, got {num_envs!r}.")
        if env_kwargs.pop("render_mode", None) is not None:
            raise ValueError("ProteusVectorEnv does not render; pass render_mode=None.")
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

    # ------------------------------------------------------------------ λ setters
    def set_lambda_table(self, values: Any, bin_edges: Any = None) -> None:
        """Set one λ per τ-bin for every session (see :meth:`ProteusRoutingEnv.set_lambda_table`)."""
        self.template.set_lambda_table(values, bin_edges)

    def set_lagrange_multiplier(self, value: float) -> None:
        """Set one global λ for every session."""
        self.template.set_lagrange_multiplier(value)

    def get_lambda_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Return copies of ``(values, bin_edges)``."""
        return self.template.get_lambda_table()

    def _lambdas(self) -> np.ndarray:
        return self.template.lambda_for(self._tau)

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start ``num_envs`` new sessions; ``options={"tau": τ or (num_envs,) array}`` fixes targets."""
        if seed is not None:
            self._rng = np.random.default_rng(int(seed) if isinstance(seed, numbers.Integral) else [int(s) for s in seed])
        options = options or {}
        low, high = self.template.tau_range
        if options.get("tau") is not None:
            given = np.asarray(options["tau"], dtype=object).reshape(-1)
            if given.size not in (1, self.num_envs):
                raise ValueError(f"options['tau'] must be one τ or {self.num_envs} of them, got {given.size}.")
            checked = np.array([self.template.check_tau(value, "options['tau']") for value in given])
            tau = np.broadcast_to(checked, (self.num_envs,)).copy()
        else:
            tau = self._rng.uniform(low, high, size=self.num_envs)
        self._start(tau)
        return self._observation(), {"tau": self._tau.copy(), "lambda": self._lambdas()}

    def _start(self, tau: np.ndarray) -> None:
        t = self.template
        self._tau = tau
        self._wq, self._wc = np.array([t.reward_weights(float(x)) for x in tau]).reshape(-1, 2).T
        self._session = self._rows_pool[self._rng.integers(0, self._rows_pool.size, size=(self.num_envs, t.session_length))]
        self._t = 0
        self._score_sum[:] = 0.0
        self._usd_sum[:] = 0.0
        self._started = True

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
        y = self._bench.scores[rows, model].astype(np.float64)
        usd = self._bench.costs[rows, model]
        reward, info = step_outcome(y, usd, self._fit.cost_norm[rows, model], model, self._model_names, self._tau.copy(),
                                    self._lambdas(), self._wq, self._wc, mu, gamma if self.template.learn_gamma else None,
                                    normalize=self.template.reward_normalization == "one_plus_lambda")
        self._score_sum += y
        self._usd_sum += usd
        self._t += 1
        terminated = np.full(self.num_envs, self._t >= self.template.session_length)
        if terminated[0]:
            info.update(session_summary(self._score_sum, self._usd_sum.copy(), self.template.session_length, self._tau))
            self._t -= 1
            final_obs = self._observation()
            low, high = self.template.tau_range
            self._start(self._rng.uniform(low, high, size=self.num_envs))
            obs = self._observation()
            info = {"final_obs": final_obs, "final_info": _with_masks(info, self.num_envs), "_final_obs": terminated.copy(),
                    "_final_info": terminated.copy()}
        else:
            obs = self._observation()
            info = _with_masks(info, self.num_envs)
        return obs, reward.astype(np.float64), terminated, np.zeros(self.num_envs, dtype=bool), info

    # ------------------------------------------------------------------ helpers
    def _observation(self) -> dict[str, np.ndarray]:
        rows = self._session[:, self._t]
        obs = {
            "p_hat": self._fit.p_hat[rows],
            "cost_hat": self._fit.cost_hat[rows],
            "tau": self._tau.astype(np.float32)[:, None],
            "lambda": self._lambdas().astype(np.float32)[:, None],
        }
        if self.template.include_query:
            obs["query"] = self.template.benchmark.embeddings[rows]
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
        mu = values[:, 0]
        if width == 2:
            return mu, gamma_from_action(values[:, 1])
        return mu, np.full(self.num_envs, self._fit.head.config.gamma)

    def _check_models(self, actions: Any) -> np.ndarray:
        values = np.asarray(actions).reshape(-1)
        k = self.template.benchmark.n_models
        if values.size != self.num_envs or not np.issubdtype(values.dtype, np.integer) or (values < 0).any() or (values >= k).any():
            raise ValueError(f"Actions must be {self.num_envs} integer model indices in [0, {k - 1}], got {values.tolist()}.")
        return values.astype(np.int64)


def _with_masks(info: dict[str, Any], num_envs: int) -> dict[str, Any]:
    """Add Gymnasium's ``_key`` masks (every session has every key) to a batched info dict."""
    return {**info, **{f"_{key}": np.ones(num_envs, dtype=bool) for key in info}}
