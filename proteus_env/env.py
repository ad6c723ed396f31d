"""``ProteusRoutingEnv``: the constrained-MDP routing environment."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from proteus_env._validation import check_bin_edges, check_int, check_lambda_values, check_number, check_positive, check_tau, check_tau_range
from proteus_env.benchmark import SPLIT_NAMES, Benchmark, parse_model_names
from proteus_env.loading import cached_benchmark
from proteus_env.policy_eval import session_rows
from proteus_env.rewards import REWARD_NORMALIZATIONS, WeightSchedule, resolve_schedule, session_summary, step_outcome
from proteus_env.routing_head import HeadConfig, HeadFit, fit_routing_head, gamma_from_action

ACTION_MODES = ("mu", "model")


def lambda_at(tau: float | np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """λ(τ) of a per-bin table: linear between bin centres, constant beyond the outer ones.

    At a bin's centre it is that bin's λ (where the dual update measures it); in between it is
    linear, so that the policy's input, and with it the routing, changes continuously with τ.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 1:
        return np.full(np.shape(tau), values[0])
    centres = 0.5 * (edges[:-1] + edges[1:])
    return np.interp(tau, centres, values)


class UnsupportedRenderModeError(ValueError, TypeError):
    """An unsupported ``render_mode``.

    Also a ``TypeError`` because SB3's ``make_vec_env`` asks for ``render_mode="rgb_array"`` by
    default and retries without it on ``TypeError``; pass ``env_kwargs={"render_mode": None}`` to
    skip that round trip.
    """


class ProteusRoutingEnv(gym.Env):
    """Route a session of LLM queries under an accuracy target τ.

    ## Description

    A constrained MDP built on a routing benchmark (RouterBench, SPROUT or the built-in
    RouterBench-like synthetic one). One episode is a *session*: ``session_length`` queries drawn
    from one split, served under one accuracy target τ, the service-level floor on the session's
    mean realized score. At every step the agent sees what the routing head predicts about the
    current query and picks a quality preference μ ∈ [0, 1]; the head turns μ into a model with
    ``argmax_k p̂_k + μ·s_b·b_k − (1 − μ)^γ·s_c·ĉ_k``. The realized score of that model on that
    query (never a prediction) and the USD it charged are replayed from the benchmark.

    The method is PROTEUS (Bhatti, Vaddina, Birru, arXiv 2601.19402): one policy, conditioned on
    τ and on the Lagrange multiplier λ, serves every target without retraining.

    ## Action Space

    * ``action_mode="mu"`` (default): ``Box(0, 1, (1,), float32)``, the quality preference μ.
      With ``learn_gamma=True``: ``Box(0, 1, (2,))``, the second entry mapped affinely onto
      γ ∈ [2, 8].
    * ``action_mode="model"``: ``Discrete(K)``, the model index itself, for agents that route
      directly.

    ## Observation Space

    ``Dict`` of float32 arrays:

    | key        | shape  | meaning                                                      |
    |------------|--------|--------------------------------------------------------------|
    | `p_hat`    | (K,)   | predicted probability that each model answers well           |
    | `cost_hat` | (K,)   | predicted cost of each model, log-normalized to [0, 1]       |
    | `tau`      | (1,)   | the session's accuracy target τ                              |
    | `lambda`   | (1,)   | the Lagrange multiplier λ(τ) in force for this τ             |
    | `query`    | (d,)   | the raw query embedding z, only with ``include_query=True``  |

    Train rows carry cross-fitted (out-of-fold) predictions, so what the agent sees while training
    is as good as what it will see on new queries.

    ## Rewards

    ``r = w_q(τ)·y − w_c(τ)·ĉ + λ(τ)·(y − τ)`` with ``y`` the realized score of the chosen model
    and ``ĉ`` its realized cost on this query, normalized like ``cost_hat``. ``w_q`` and ``w_c``
    are ``quality_weight`` and ``cost_weight`` (defaults ``τ`` and ``1 − τ``). With
    ``reward_normalization="one_plus_lambda"`` the reward is divided by ``1 + λ``.

    Each step's ``info`` holds ``cost`` (the constraint signal ``τ − y``, Safety-Gymnasium's key),
    ``score``, ``usd_cost``, ``model``, ``model_index``, ``tau``, ``lambda`` and, for a μ action,
    ``mu`` (and ``gamma`` when it is learned).

    ## Starting State

    On ``reset`` the session's queries are drawn uniformly (with replacement) from the split with
    ``self.np_random``, and τ ~ U[``tau_range``] unless ``options={"tau": τ}`` fixes it.

    ## Episode End

    The episode terminates (``terminated=True``) after ``session_length`` steps; it is never
    truncated by the environment. The final ``info`` adds ``session_accuracy`` (mean realized
    score), ``session_usd_cost`` (total USD of the session) and ``is_success``
    (``session_accuracy >= τ``).

    ## Arguments

    * ``benchmark``: a name for :func:`proteus_env.load_benchmark` (``"synthetic"``,
      ``"routerbench"``, ``"sprout"``) or a :class:`~proteus_env.Benchmark` object.
    * ``data_path``: a data file handed to the real-data loaders.
    * ``benchmark_kwargs``: further loader arguments (for the synthetic one ``n_queries``, ``seed``).
    * ``models``, ``exclude_models``: route among a subset of the benchmark's models (names, kept in
      the benchmark's order); applied before the routing head is fitted. Unknown names are refused,
      listing the available ones.
    * ``split``: ``"train"``, ``"val"`` or ``"test"``.
    * ``split_seed``: seed of the benchmark's prompt-disjoint split and the head's cross-fit folds.
    * ``session_length``: queries per session (>= 2).
    * ``tau_range``: ``(low, high)`` of τ; by default the head's feasible range on the train split
      (fixed-μ accuracy at μ = 0 and μ = 1), rounded outwards to 0.01.
    * ``include_query``: add the raw embedding to the observation (memorizes prompts; off).
    * ``learn_gamma``: a second action dimension sets γ.
    * ``action_mode``: ``"mu"`` or ``"model"``.
    * ``quality_weight``, ``cost_weight``: the reward schedules (see :mod:`proteus_env.rewards`).
    * ``reward_normalization``: ``"none"`` or ``"one_plus_lambda"`` (divide the reward by ``1 + λ``).
    * ``train_holdout``: share of the train split kept out of training sessions, on which the dual
      callback measures the policy (then the τ calibration gets the whole validation split;
      :func:`proteus_env.policy_eval.dual_and_calibration_rows`). 0 (default): the dual and the
      calibration share the validation split, half each.
    * ``lambda_init``: the initial global λ.
    * ``lambda_max``: the upper bound of λ (the observation space's bound; default 10).
    * ``head_config``: a :class:`~proteus_env.routing_head.HeadConfig` or a dict of its fields.
    * ``render_mode``: ``None`` or ``"ansi"``.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        benchmark: str | Benchmark = "synthetic",
        *,
        data_path: str | None = None,
        benchmark_kwargs: dict[str, Any] | None = None,
        models: Sequence[str] | None = None,
        exclude_models: Sequence[str] | None = None,
        split: str = "train",
        split_seed: int = 0,
        session_length: int = 100,
        tau_range: Sequence[float] | None = None,
        include_query: bool = False,
        learn_gamma: bool = False,
        action_mode: str = "mu",
        quality_weight: WeightSchedule = "tau",
        cost_weight: WeightSchedule = "one_minus_tau",
        reward_normalization: str = "none",
        train_holdout: float = 0.0,
        lambda_init: float = 0.0,
        lambda_max: float = 10.0,
        head_config: HeadConfig | dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if split not in SPLIT_NAMES:
            raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLIT_NAMES)}.")
        session_length = check_int(session_length, "session_length", minimum=2)
        if action_mode not in ACTION_MODES:
            raise ValueError(f"`action_mode` must be one of {list(ACTION_MODES)}, got {action_mode!r}.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UnsupportedRenderModeError(f"`render_mode` must be None or one of {self.metadata['render_modes']}, got {render_mode!r}.")
        if action_mode == "model" and learn_gamma:
            raise ValueError("`learn_gamma=True` needs `action_mode='mu'` (a model index has no γ).")

        self._constructor_kwargs: dict[str, Any] = {
            "benchmark": benchmark, "data_path": data_path, "benchmark_kwargs": benchmark_kwargs, "split": split,
            "split_seed": split_seed, "session_length": session_length, "tau_range": tau_range, "include_query": include_query,
            "learn_gamma": learn_gamma, "action_mode": action_mode, "quality_weight": quality_weight, "cost_weight": cost_weight,
            "reward_normalization": reward_normalization, "train_holdout": train_holdout,
            "lambda_init": lambda_init, "lambda_max": lambda_max, "head_config": head_config,
        }
        # Model subset (issue 14): JSON-able lists in constructor_kwargs, applied before the head is fitted.
        subset = {"models": parse_model_names(models, "models"), "exclude_models": parse_model_names(exclude_models, "exclude_models")}
        self._constructor_kwargs.update({key: None if value is None else list(value) for key, value in subset.items()})
        subset = {key: list(value) for key, value in subset.items() if value is not None}
        self.benchmark = self._resolve_benchmark(benchmark, data_path, benchmark_kwargs or {}, split_seed, **subset)
        if session_length > self.benchmark.n_queries:  # bounded by the data, never by a typo (issue 16)
            raise ValueError(f"`session_length`={session_length} is larger than the whole benchmark {self.benchmark.name!r} "
                             f"({self.benchmark.n_queries} queries); sessions draw from its {split!r} split "
                             f"({self.benchmark.split_index(split).size} queries).")
        if isinstance(head_config, dict):
            head_config = HeadConfig.from_dict(head_config)
        self.head_fit: HeadFit = fit_routing_head(self.benchmark, seed=split_seed, config=head_config)
        self.split = split
        self.session_length = session_length
        self.include_query = bool(include_query)
        self.learn_gamma = bool(learn_gamma)
        self.action_mode = action_mode
        self.render_mode = render_mode
        self._w_q = resolve_schedule(quality_weight, argument="quality_weight")
        self._w_c = resolve_schedule(cost_weight, argument="cost_weight")
        if reward_normalization not in REWARD_NORMALIZATIONS:
            raise ValueError(f"`reward_normalization` must be one of {list(REWARD_NORMALIZATIONS)}, got {reward_normalization!r}.")
        self.reward_normalization = reward_normalization
        self.tau_range = feasible_tau_range(self.benchmark, self.head_fit) if tau_range is None else check_tau_range(tau_range)
        self.lambda_max = check_positive(lambda_max, "lambda_max")

        self.train_holdout = check_number(train_holdout, "train_holdout", low=0.0, high=1.0, high_open=True)
        self._rows = session_rows(self.benchmark, split, seed=int(split_seed), train_holdout=self.train_holdout)
        self._scores = self.benchmark.scores
        self._costs = self.benchmark.costs
        self._cost_norm = self.head_fit.cost_norm
        self._p_hat = self.head_fit.p_hat
        self._cost_hat = self.head_fit.cost_hat
        self._score_matrix = self.head_fit.score_matrix
        self._gamma = float(self.head_fit.head.config.gamma)
        self.models = self.benchmark.models

        k = self.benchmark.n_models
        obs_spaces: dict[str, spaces.Space] = {
            "p_hat": spaces.Box(0.0, 1.0, (k,), np.float32),
            "cost_hat": spaces.Box(0.0, 1.0, (k,), np.float32),
            "tau": spaces.Box(0.0, 1.0, (1,), np.float32),
            "lambda": spaces.Box(0.0, self.lambda_max, (1,), np.float32),
        }
        if self.include_query:
            obs_spaces["query"] = spaces.Box(-np.inf, np.inf, (self.benchmark.embedding_dim,), np.float32)
        self.observation_space = spaces.Dict(obs_spaces)
        if action_mode == "model":
            self.action_space = spaces.Discrete(k)
        else:
            self.action_space = spaces.Box(0.0, 1.0, (2 if self.learn_gamma else 1,), np.float32)

        self._lambda_edges = np.array([0.0, 1.0])
        self._lambda_values = np.zeros(1)
        self.set_lagrange_multiplier(lambda_init)
        self._session: list[int] | None = None
        self._t = 0
        self._tau = float(np.mean(self.tau_range))
        self._tau_obs = np.array([self._tau], dtype=np.float32)
        self._lambda = 0.0
        self._lambda_obs = np.zeros(1, dtype=np.float32)
        self._score_sum = 0.0
        self._usd_sum = 0.0
        self._last_info: dict[str, Any] = {}

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _resolve_benchmark(benchmark: str | Benchmark, data_path: str | None, kwargs: dict[str, Any], split_seed: int,
                           **subset: list[str]) -> Benchmark:
        if isinstance(benchmark, Benchmark):
            return benchmark.select_models(subset.get("models"), subset.get("exclude_models"))
        if not isinstance(benchmark, str):
            raise ValueError(f"`benchmark` must be a name or a Benchmark, got {type(benchmark).__name__}.")
        kwargs = dict(kwargs)
        if data_path is not None:
            kwargs["data_path"] = str(data_path)
        kwargs.setdefault("split_seed", int(split_seed))
        for key, value in subset.items():
            if key in kwargs and set(parse_model_names(kwargs[key], f"benchmark_kwargs[{key!r}]") or ()) != set(value):
                raise ValueError(f"`{key}`={value} contradicts benchmark_kwargs[{key!r}]={kwargs[key]!r}; give it once.")
            kwargs[key] = value
        return cached_benchmark(benchmark, **kwargs)

    @property
    def session_rows(self) -> np.ndarray:
        """The benchmark rows sessions are drawn from (the split, less the dual's holdout on train)."""
        return self._rows

    def constructor_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """The arguments this env was built with (``render_mode`` aside), with ``overrides`` applied.

        ``ProteusRoutingEnv(**env.constructor_kwargs(split="val"))`` builds the same environment on
        another split; callbacks reach it through ``env_method("constructor_kwargs")``.
        """
        return {**self._constructor_kwargs, **overrides}

    # ------------------------------------------------------------------ λ setters (reach them with env_method)
    def set_lagrange_multiplier(self, value: float) -> None:
        """Set one global λ for every τ (the paper's variant).

        Raises:
            ValueError: If ``value`` is negative or not finite.
        """
        self.set_lambda_table([value])

    def set_lambda_table(self, values: Sequence[float] | np.ndarray, bin_edges: Sequence[float] | np.ndarray | None = None) -> None:
        """Set one λ per τ-bin; the next observation carries the new λ(τ).

        λ(τ) interpolates linearly between the bin centres (:func:`lambda_at`).

        Args:
            values: ``(B,)`` multipliers in [0, ``lambda_max``].
            bin_edges: ``(B + 1,)`` finite, strictly increasing edges over τ; by default ``B`` equal
                bins over ``tau_range``. τ below the first or above the last edge uses the end bins.

        Raises:
            ValueError: On values outside [0, ``lambda_max``] or non-finite, or edges that are not
                finite, of the wrong length or not strictly increasing (naming the bad entry).
        """
        values = check_lambda_values(values, self.lambda_max)
        if bin_edges is None:
            edges = np.linspace(self.tau_range[0], self.tau_range[1], values.size + 1)
        else:
            edges = check_bin_edges(bin_edges, values.size)
        self._lambda_values = values
        self._lambda_edges = edges
        if hasattr(self, "_lambda_obs"):
            self._refresh_lambda()

    def get_lambda_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Return copies of ``(values, bin_edges)``."""
        return self._lambda_values.copy(), self._lambda_edges.copy()

    def lambda_for(self, tau: float | np.ndarray) -> float | np.ndarray:
        """λ in force for target ``tau`` (see :func:`lambda_at`): a float, or an array for an array of τ."""
        lam = lambda_at(tau, self._lambda_values, self._lambda_edges)
        return float(lam) if np.ndim(tau) == 0 else lam

    def reward_weights(self, tau: float) -> tuple[float, float]:
        """The reward weights ``(w_q(τ), w_c(τ))`` at target ``tau``."""
        return float(self._w_q(tau)), float(self._w_c(tau))

    def check_tau(self, tau: Any, name: str = "tau") -> float:
        """Return ``tau`` as a float after checking it is in [0, 1] and in this env's ``tau_range``.

        Raises:
            ValueError: Naming ``name``, the value and the range.
        """
        value = check_tau(tau, name)
        low, high = self.tau_range
        if not (low - 1e-9 <= value <= high + 1e-9):
            raise ValueError(f"`{name}`={value} is outside this environment's tau_range [{low}, {high}]; pass tau_range to widen it.")
        return value

    def _refresh_lambda(self) -> None:
        self._lambda = self.lambda_for(self._tau)
        self._lambda_obs = np.array([self._lambda], dtype=np.float32)
        self._lambda_obs.flags.writeable = False

    # ------------------------------------------------------------------ Gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a new session; ``options={"tau": τ}`` fixes its target."""
        super().reset(seed=seed)
        options = options or {}
        if "tau" in options and options["tau"] is not None:
            tau = self.check_tau(options["tau"], "options['tau']")
        else:
            tau = float(self.np_random.uniform(*self.tau_range))
        self._tau = tau
        self._tau_obs = np.array([tau], dtype=np.float32)
        self._tau_obs.flags.writeable = False
        self._wq, self._wc = self.reward_weights(tau)
        self._refresh_lambda()
        if self.session_length > self._rows.size:  # session_length check (issue 16)
            raise ValueError(f"`session_length`={self.session_length} is larger than the {self.split!r} split it draws sessions "
                             f"from ({self._rows.size} queries); use at most {self._rows.size}.")
        self._session = self._rows[self.np_random.integers(0, self._rows.size, size=self.session_length)].tolist()
        self._t = 0
        self._score_sum = 0.0
        self._usd_sum = 0.0
        self._last_info = {}
        return self._observation(self._session[0]), {"tau": tau, "lambda": self._lambda}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Route the current query with the action; see the class docstring for the reward."""
        if self._session is None or self._t >= self.session_length:
            raise RuntimeError("Call reset() before step(): the session has ended or not started.")
        row = self._session[self._t]
        mu = gamma = None
        if self.action_mode == "model":
            model = self._check_model(action)
        else:
            mu, gamma = self._check_mu(action)
            weights = np.array([1.0, mu, (1.0 - mu) ** gamma])
            model = int(np.dot(weights, self._score_matrix[row]).argmax())
        score = float(self._scores[row, model])
        usd = float(self._costs[row, model])
        reward, info = step_outcome(score, usd, float(self._cost_norm[row, model]), model, self.models, self._tau, self._lambda,
                                    self._wq, self._wc, mu, gamma if self.learn_gamma else None,
                                    normalize=self.reward_normalization == "one_plus_lambda")
        self._score_sum += score
        self._usd_sum += usd
        self._t += 1
        terminated = self._t >= self.session_length
        if terminated:
            info.update(session_summary(self._score_sum, self._usd_sum, self.session_length, self._tau))
            observation = self._observation(row)
        else:
            observation = self._observation(self._session[self._t])
        self._last_info = info
        return observation, float(reward), terminated, False, info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``, describe the last routing decision."""
        if self.render_mode != "ansi":
            return None
        if not self._last_info:
            return f"session start: tau={self._tau:.3f} lambda={self._lambda:.3f}\n"
        i = self._last_info
        mu = f" mu={i['mu']:.3f}" if "mu" in i else ""
        return (f"step {self._t}/{self.session_length} tau={i['tau']:.3f} lambda={i['lambda']:.3f}{mu} -> "
                f"{i['model']} score={i['score']:.2f} usd={i['usd_cost']:.6f} "
                f"running accuracy={self._score_sum / self._t:.3f}\n")

    # ------------------------------------------------------------------ helpers
    def _observation(self, row: int) -> dict[str, np.ndarray]:
        # Fresh arrays every call: users may keep (and modify) what they are given.
        obs = {
            "p_hat": self._p_hat[row].copy(),
            "cost_hat": self._cost_hat[row].copy(),
            "tau": self._tau_obs.copy(),
            "lambda": self._lambda_obs.copy(),
        }
        if self.include_query:
            obs["query"] = self.benchmark.embeddings[row].copy()
        return obs

    def _check_mu(self, action: Any) -> tuple[float, float]:
        if not self.learn_gamma and type(action) is np.ndarray and action.shape == (1,):
            mu = float(action[0])  # fast path of the common case
            if not (0.0 <= mu <= 1.0):  # also catches NaN
                raise ValueError(f"Action μ must be a finite number in [0, 1], got {mu}.")
            return mu, self._gamma
        try:
            values = np.asarray(action, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"Action must be numeric, got {action!r}.") from None
        width = 2 if self.learn_gamma else 1
        if values.size != width:
            raise ValueError(f"Action must have {width} entr{'ies' if width > 1 else 'y'} in [0, 1], got shape {np.shape(action)}.")
        mu = float(values[0])
        if not (0.0 <= mu <= 1.0):  # also catches NaN
            raise ValueError(f"Action μ must be a finite number in [0, 1], got {mu}.")
        if not self.learn_gamma:
            return mu, self._gamma
        g = float(values[1])
        if not (0.0 <= g <= 1.0):
            raise ValueError(f"Action γ-entry must be a finite number in [0, 1], got {g}.")
        return mu, float(gamma_from_action(g))

    def _check_model(self, action: Any) -> int:
        if isinstance(action, (bool, np.bool_)):
            raise ValueError(f"Action must be an integer model index, got the boolean {action!r}.")
        values = np.asarray(action).reshape(-1)
        if values.size != 1:
            raise ValueError(f"Action must be one model index in [0, {self.benchmark.n_models - 1}], got {action!r}.")
        value = values[0]
        if values.dtype == bool or not np.issubdtype(values.dtype, np.number):
            raise ValueError(f"Action must be an integer model index, got {action!r}.")
        if not np.issubdtype(values.dtype, np.integer):
            if not (math.isfinite(float(value)) and float(value).is_integer()):
                raise ValueError(f"Action must be an integer model index, got {value!r}.")
        index = int(value)
        if not (0 <= index < self.benchmark.n_models):
            raise ValueError(f"Action {index} is outside the model indices [0, {self.benchmark.n_models - 1}].")
        return index


def feasible_tau_range(benchmark: Benchmark, fit: HeadFit) -> tuple[float, float]:
    """The head's fixed-μ accuracy at μ = 0 and μ = 1 on the train split, rounded outwards to 0.01."""
    rows = benchmark.split_index("train")
    head = fit.head
    low = float(benchmark.scores[rows, head.route(fit.p_hat[rows], fit.cost_hat[rows], 0.0)].mean())
    high = float(benchmark.scores[rows, head.route(fit.p_hat[rows], fit.cost_hat[rows], 1.0)].mean())
    low, high = min(low, high), max(low, high)
    return max(0.0, math.floor(low * 100) / 100), min(1.0, math.ceil(high * 100) / 100)
