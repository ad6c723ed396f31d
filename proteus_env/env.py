"""``ProteusRoutingEnv``: the constrained-MDP routing environment."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from proteus_env._validation import check_bin_edges, check_int, check_lambda_values, check_number, check_positive, check_tau, check_tau_range
from proteus_env.benchmark import SPLIT_NAMES, Benchmark, parse_model_names
from proteus_env.loading import cached_benchmark
from proteus_env.policy_eval import session_rows
from proteus_env.rewards import (
    REWARD_NORMALIZATIONS,
    SCHEDULES,
    Constant,
    WeightSchedule,
    resolve_schedule,
    session_summary,
    step_outcome,
)
from proteus_env.routing_head import HeadConfig, HeadFit, fit_routing_head, gamma_from_action
from proteus_env.session import (
    CONSTRAINTS,
    TauSchedule,
    callable_tau_path,
    check_budget,
    check_feedback,
    check_task_mix,
    check_tau_path,
    check_tau_schedule,
    session_budget_usd,
    session_observation_spaces,
    session_values,
    tau_path,
)

ACTION_MODES = ("mu", "model")
#: Reward-weight schedules that accept arrays of τ (evaluated at once by ``reward_weights_batch``).
BUILTIN_SCHEDULES = tuple(SCHEDULES.values())


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

    * ``action_mode="mu"`` (default): ``Box(0, 1, (1,), float32)``, the quality preference,
      mapped to μ by the routing head's action map (``HeadConfig.action_map``; by default the
      predicted accuracy of the routed model rises linearly in the action between plateaus at
      ``a ≤ 0.1`` and ``a ≥ 0.9``; ``"identity"`` makes the action μ itself). ``info["mu"]`` is the
      mapped μ. With ``learn_gamma=True``: ``Box(0, 1, (2,))``, the second entry mapped affinely
      onto γ ∈ [2, 8].
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
    | `lambda_budget` | (1,) | the budget's multiplier λ_budget(τ), only with ``budget_usd_per_1k`` |

    Train rows carry cross-fitted (out-of-fold) predictions, so what the agent sees while training
    is as good as what it will see on new queries.

    With ``session_state=True`` the observation also carries what the session has done so far,
    computed **only from outcomes revealed by this step** (:func:`proteus_env.session.session_features`,
    the same function the routers' streaming sessions use):

    | key                | shape | meaning                                                            |
    |--------------------|-------|--------------------------------------------------------------------|
    | `progress`         | (1,)  | share of the session already served, ``t / session_length``        |
    | `running_accuracy` | (1,)  | mean revealed score so far; τ before the first reveal              |
    | `accuracy_slack`   | (1,)  | ``running_accuracy − τ`` (0 before the first reveal)               |
    | `revealed`         | (1,)  | share of the served queries whose outcome is revealed (0 at t = 0) |
    | `spend`            | (1,)  | USD spent so far / the session's budget, only with a budget        |

    The realized score of the query served at step ``i`` becomes observable ``feedback_delay``
    steps later (in the observation after step ``i + feedback_delay``), and only if it is among the
    ``feedback_rate`` share drawn (with ``self.np_random``) to be revealed at all. USD charges are
    known when a query is served, so ``spend`` counts every served query.

    ## Rewards

    ``r = w_q(τ)·y − w_c(τ)·ĉ + λ(τ)·(y − τ)`` with ``y`` the realized score of the chosen model
    and ``ĉ`` its realized cost on this query, normalized like ``cost_hat``. ``w_q`` and ``w_c``
    are ``quality_weight`` and ``cost_weight`` (defaults ``τ`` and ``1 − τ``). With
    ``reward_normalization="one_plus_lambda"`` the reward is divided by ``1 + λ``.

    With ``budget_usd_per_1k`` (a spending cap per session, a second constraint) the reward also
    subtracts ``λ_budget(τ)·c_budget``, with ``c_budget = usd / (budget per query) − 1`` (its
    session mean is ≤ 0 exactly when the session stays within budget), and the normalization
    divides by ``1 + λ + λ_budget``.

    Each step's ``info`` holds ``cost`` (the accuracy constraint signal ``τ − y``,
    Safety-Gymnasium's key, with or without a budget), ``score``, ``usd_cost``, ``model``,
    ``model_index``, ``tau`` (the τ in force at this step), ``lambda`` and, for a μ action, ``mu``
    (and ``gamma`` when it is learned). With a budget, ``costs`` gives every constraint by name,
    ``{"accuracy": τ − y, "budget": c_budget}``, and ``lambda_budget`` its multiplier.

    ## Starting State

    On ``reset`` the session's queries are drawn uniformly (with replacement) from the split with
    ``self.np_random`` (or from ``task_mix``), and τ ~ U[``tau_range``] unless
    ``options={"tau": τ}`` fixes it. Under a ``step``/``drift``/``cyclic`` ``tau_schedule`` τ moves
    within the session from that τ towards a second one, ``tau_end`` ~ U[``tau_range``] (or
    ``options={"tau_end": ...}``); the observation's ``tau`` and ``lambda`` and the reward follow
    the τ in force. ``options`` may also fix the whole plan: ``"tau_path"`` (τ per step),
    ``"rows"`` (the benchmark rows, of any split) and ``"revealed"`` (which outcomes are ever
    revealed); :class:`~proteus_env.ProteusVectorEnv` given the same plan produces the same steps.
    Extra draws (``tau_end``, the task mixture, the reveal mask) are made only when those options
    are in use, so the defaults draw exactly what they always did.

    ## Episode End

    The episode terminates (``terminated=True``) after ``session_length`` steps; it is never
    truncated by the environment. The final ``info`` adds ``session_accuracy`` (mean realized
    score), ``session_usd_cost`` (total USD of the session) and ``is_success``
    (``session_accuracy >= τ``; under a τ schedule against the session's mean τ, also given as
    ``session_tau``), and with a budget ``budget_met`` (``session_usd_cost`` within the budget).

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
    * ``session_state``: add the session-state keys above to the observation (off).
    * ``feedback_delay``: steps until a served query's realized score becomes observable (integer
      >= 0; default 0: in the very next observation).
    * ``feedback_rate``: share of queries whose outcome is ever revealed, in [0, 1] (default 1),
      drawn per query with ``self.np_random``.
    * ``tau_schedule``: ``"constant"`` (default), ``"step"``, ``"drift"``, ``"cyclic"`` (shapes of
      :func:`proteus_env.session.tau_path`), or a callable of progress ``t / session_length``
      returning τ (``is_success`` then compares with the mean τ).
    * ``task_mix``: ``None`` (default: rows uniform over the split), a mapping ``{task: weight}``,
      a pair of mappings (start, end: the mixture drifts linearly over the session), ``"uniform"``
      (tasks equally likely) or ``"drift"`` (random start and end mixtures per session); tasks
      are those of ``Benchmark.task`` (:class:`proteus_env.session.TaskMix`).
    * ``budget_usd_per_1k``: a spending cap per session in USD per 1,000 queries (``None``: none),
      a second constraint with its own λ table (``set_lambda_table(..., constraint="budget")``).

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
        session_state: bool = False,
        feedback_delay: int = 0,
        feedback_rate: float = 1.0,
        tau_schedule: TauSchedule = "constant",
        task_mix: Any = None,
        budget_usd_per_1k: float | None = None,
    ) -> None:
        if split not in SPLIT_NAMES:
            raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLIT_NAMES)}.")
        session_length = check_int(session_length, "session_length", minimum=2)
        split_seed = check_int(split_seed, "split_seed", minimum=0)
        if head_config is not None and not isinstance(head_config, (HeadConfig, dict)):
            raise ValueError(f"`head_config` must be a HeadConfig, a dict of its fields or None, got {head_config!r}.")
        if action_mode not in ACTION_MODES:
            raise ValueError(f"`action_mode` must be one of {list(ACTION_MODES)}, got {action_mode!r}.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UnsupportedRenderModeError(f"`render_mode` must be None or one of {self.metadata['render_modes']}, got {render_mode!r}.")
        if action_mode == "model" and learn_gamma:
            raise ValueError("`learn_gamma=True` needs `action_mode='mu'` (a model index has no γ).")
        if not isinstance(session_state, (bool, np.bool_)):
            raise ValueError(f"`session_state` must be true or false, got {session_state!r}.")
        feedback_delay, feedback_rate = check_feedback(feedback_delay, feedback_rate)
        tau_schedule = check_tau_schedule(tau_schedule)
        budget_usd_per_1k = check_budget(budget_usd_per_1k)

        self._constructor_kwargs: dict[str, Any] = {
            "benchmark": benchmark, "data_path": data_path, "benchmark_kwargs": benchmark_kwargs, "split": split,
            "split_seed": split_seed, "session_length": session_length, "tau_range": tau_range, "include_query": include_query,
            "learn_gamma": learn_gamma, "action_mode": action_mode, "quality_weight": quality_weight, "cost_weight": cost_weight,
            "reward_normalization": reward_normalization, "train_holdout": train_holdout,
            "lambda_init": lambda_init, "lambda_max": lambda_max, "head_config": head_config,
        }
        # Session arguments (issue 12): recorded only when set, so default artifacts record what they always did.
        sequential = {"session_state": bool(session_state), "feedback_delay": feedback_delay, "feedback_rate": feedback_rate,
                      "tau_schedule": tau_schedule, "task_mix": task_mix, "budget_usd_per_1k": budget_usd_per_1k}
        defaults = {"session_state": False, "feedback_delay": 0, "feedback_rate": 1.0, "tau_schedule": "constant", "task_mix": None,
                    "budget_usd_per_1k": None}
        self._constructor_kwargs.update({key: value for key, value in sequential.items()
                                         if value is not defaults[key] and value != defaults[key]})
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
        self._normalize = reward_normalization == "one_plus_lambda"
        self.tau_range = feasible_tau_range(self.benchmark, self.head_fit) if tau_range is None else check_tau_range(tau_range)
        self.lambda_max = check_positive(lambda_max, "lambda_max")

        self.train_holdout = check_number(train_holdout, "train_holdout", low=0.0, high=1.0, high_open=True)
        self._rows = session_rows(self.benchmark, split, seed=int(split_seed), train_holdout=self.train_holdout)
        self.session_state = bool(session_state)
        self.feedback_delay = feedback_delay
        self.feedback_rate = feedback_rate
        self.tau_schedule = tau_schedule
        self.task_mix = check_task_mix(task_mix, self.benchmark.task, self._rows)
        self.budget_usd_per_1k = budget_usd_per_1k
        self._session_budget = session_budget_usd(budget_usd_per_1k, session_length)
        self._scores = self.benchmark.scores
        self._costs = self.benchmark.costs
        self._cost_norm = self.head_fit.cost_norm
        self._p_hat = self.head_fit.p_hat
        self._cost_hat = self.head_fit.cost_hat
        self._score_matrix = self.head_fit.score_matrix
        self._gamma = float(self.head_fit.head.config.gamma)
        self._plain_mu = action_mode == "mu" and not self.learn_gamma
        # The head's action map (action → μ) as a plain list: the step's scalar interpolation stays in Python floats.
        self._action_knots: list[float] = self.head_fit.head.action_mu.tolist()
        self._identity_map = self._action_knots == [0.0, 1.0]
        self._weights = np.ones(3)
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
        if self.budget_usd_per_1k is not None:
            obs_spaces["lambda_budget"] = spaces.Box(0.0, self.lambda_max, (1,), np.float32)
        if self.session_state:
            obs_spaces.update(session_observation_spaces(self.budget_usd_per_1k is not None))
        self.observation_space = spaces.Dict(obs_spaces)
        if action_mode == "model":
            self.action_space = spaces.Discrete(k)
        else:
            self.action_space = spaces.Box(0.0, 1.0, (2 if self.learn_gamma else 1,), np.float32)

        self._lambda_edges = np.array([0.0, 1.0])
        self._lambda_values = np.zeros(1)
        self._budget_edges = np.array([0.0, 1.0])
        self._budget_values = np.zeros(1)
        self.set_lagrange_multiplier(lambda_init)
        self._session: list[int] | None = None
        self._t = 0
        self._tau = float(np.mean(self.tau_range))
        self._tau_obs = np.array([self._tau], dtype=np.float32)
        self._tau_path: np.ndarray | None = None
        self._session_tau = self._tau
        self._lambda = 0.0
        self._lambda_obs = np.zeros(1, dtype=np.float32)
        self._lambda_budget = 0.0
        self._lambda_budget_obs = np.zeros(1, dtype=np.float32)
        self._score_sum = 0.0
        self._usd_sum = 0.0
        self._revealed: list[bool] | None = None
        self._y_hist: list[float] = []
        self._n_revealed = 0
        self._revealed_sum = 0.0
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
    def set_lagrange_multiplier(self, value: float, *, constraint: str = "accuracy") -> None:
        """Set one global λ for every τ (the paper's variant), for the accuracy floor or the budget.

        Raises:
            ValueError: If ``value`` is negative or not finite, or on an unknown ``constraint``.
        """
        self.set_lambda_table([value], constraint=constraint)

    def set_lambda_table(self, values: Sequence[float] | np.ndarray, bin_edges: Sequence[float] | np.ndarray | None = None, *,
                         constraint: str = "accuracy") -> None:
        """Set one λ per τ-bin; the next observation carries the new λ(τ).

        λ(τ) interpolates linearly between the bin centres (:func:`lambda_at`).

        Args:
            values: ``(B,)`` multipliers in [0, ``lambda_max``].
            bin_edges: ``(B + 1,)`` finite, strictly increasing edges over τ; by default ``B`` equal
                bins over ``tau_range``. τ below the first or above the last edge uses the end bins.
            constraint: ``"accuracy"`` (the floor's λ, observation ``lambda``) or ``"budget"`` (the
                spending cap's λ_budget, observation ``lambda_budget``; needs ``budget_usd_per_1k``).

        Raises:
            ValueError: On values outside [0, ``lambda_max``] or non-finite, or edges that are not
                finite, of the wrong length or not strictly increasing (naming the bad entry), or an
                unknown ``constraint`` (or ``"budget"`` without a budget).
        """
        self._check_constraint(constraint)
        values = check_lambda_values(values, self.lambda_max)
        if bin_edges is None:
            edges = np.linspace(self.tau_range[0], self.tau_range[1], values.size + 1)
        else:
            edges = check_bin_edges(bin_edges, values.size)
        if constraint == "budget":
            self._budget_values, self._budget_edges = values, edges
        else:
            self._lambda_values = values
            self._lambda_edges = edges
        if hasattr(self, "_lambda_obs"):
            self._refresh_lambda()

    def _check_constraint(self, constraint: Any) -> None:
        if constraint not in CONSTRAINTS:
            raise ValueError(f"`constraint` must be one of {list(CONSTRAINTS)}, got {constraint!r}.")
        if constraint == "budget" and getattr(self, "budget_usd_per_1k", None) is None:
            raise ValueError("`constraint`='budget' needs an environment with `budget_usd_per_1k`.")

    def get_lambda_table(self, *, constraint: str = "accuracy") -> tuple[np.ndarray, np.ndarray]:
        """Return copies of ``(values, bin_edges)`` of ``constraint``'s table."""
        self._check_constraint(constraint)
        if constraint == "budget":
            return self._budget_values.copy(), self._budget_edges.copy()
        return self._lambda_values.copy(), self._lambda_edges.copy()

    def lambda_for(self, tau: float | np.ndarray, *, constraint: str = "accuracy") -> float | np.ndarray:
        """λ in force for target ``tau`` (see :func:`lambda_at`): a float, or an array for an array of τ."""
        if constraint == "accuracy":
            lam = lambda_at(tau, self._lambda_values, self._lambda_edges)
        else:
            self._check_constraint(constraint)
            lam = lambda_at(tau, self._budget_values, self._budget_edges)
        return float(lam) if np.ndim(tau) == 0 else lam

    def reward_weights(self, tau: float) -> tuple[float, float]:
        """The reward weights ``(w_q(τ), w_c(τ))`` at target ``tau``."""
        return float(self._w_q(tau)), float(self._w_c(tau))

    def reward_weights_batch(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The reward weights at every τ of an array, each equal to :meth:`reward_weights` of that τ.

        The built-in schedules are evaluated on the whole array at once; a user's callable is
        called once per τ (it need not accept arrays).
        """
        tau = np.asarray(tau, dtype=np.float64)
        out = []
        for schedule in (self._w_q, self._w_c):
            if schedule in BUILTIN_SCHEDULES or isinstance(schedule, Constant):
                out.append(np.broadcast_to(np.asarray(schedule(tau), dtype=np.float64), tau.shape).copy())
            else:
                out.append(np.array([float(schedule(float(x))) for x in tau.reshape(-1)]).reshape(tau.shape))
        return out[0], out[1]

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
        if self.budget_usd_per_1k is not None:
            self._lambda_budget = self.lambda_for(self._tau, constraint="budget")
            self._lambda_budget_obs = np.array([self._lambda_budget], dtype=np.float32)
            self._lambda_budget_obs.flags.writeable = False

    def _set_tau(self, tau: float) -> None:
        """Make ``tau`` the target in force: observation, reward weights and λ follow it."""
        self._tau = tau
        self._tau_obs = np.array([tau], dtype=np.float32)
        self._tau_obs.flags.writeable = False
        self._wq, self._wc = self.reward_weights(tau)
        self._refresh_lambda()

    # ------------------------------------------------------------------ Gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a new session.

        ``options`` (all optional): ``"tau"`` fixes the session's target (the start of a τ
        schedule); ``"tau_end"`` the end of a ``step``/``drift``/``cyclic`` schedule; ``"tau_path"``
        an explicit ``(session_length,)`` τ per step (overrides ``tau_schedule``); ``"rows"`` the
        session's ``(session_length,)`` benchmark rows (any split); ``"revealed"`` a
        ``(session_length,)`` bool mask of the queries whose outcome is ever revealed.
        """
        super().reset(seed=seed)
        options = {} if options is None else options
        if not isinstance(options, Mapping):
            raise ValueError(f"`options` must be a dict (e.g. {{'tau': 0.7}}) or None, got {options!r}.")
        if "tau" in options and options["tau"] is not None:
            tau = self.check_tau(options["tau"], "options['tau']")
        else:
            tau = float(self.np_random.uniform(*self.tau_range))
        path = self._draw_tau_path(tau, options)
        self._tau_path = path
        if path is not None:
            tau = float(path[0])
            self._session_tau = float(np.mean(path))
        else:
            self._session_tau = tau
        self._set_tau(tau)
        if options.get("rows") is not None:
            self._session = check_session_rows(options["rows"], (self.session_length,), self.benchmark.n_queries).tolist()
        elif self.session_length > self._rows.size:  # session_length check (issue 16)
            raise ValueError(f"`session_length`={self.session_length} is larger than the {self.split!r} split it draws sessions "
                             f"from ({self._rows.size} queries); use at most {self._rows.size}.")
        elif self.task_mix is not None:
            self._session = self.task_mix.draw(self.np_random, 1, self.session_length)[0].tolist()
        else:
            self._session = self._rows[self.np_random.integers(0, self._rows.size, size=self.session_length)].tolist()
        if options.get("revealed") is not None:
            self._revealed = check_revealed(options["revealed"], (self.session_length,)).tolist()
        elif self.feedback_rate < 1.0:
            self._revealed = (self.np_random.random(self.session_length) < self.feedback_rate).tolist()
        else:
            self._revealed = None  # every outcome is revealed (after the delay)
        self._t = 0
        self._score_sum = 0.0
        self._usd_sum = 0.0
        self._y_hist = []
        self._n_revealed = 0
        self._revealed_sum = 0.0
        self._last_info = {}
        return self._observation(self._session[0]), {"tau": tau, "lambda": self._lambda}

    def _draw_tau_path(self, tau: float, options: dict[str, Any]) -> np.ndarray | None:
        """The session's τ per step, or ``None`` for a constant τ (the fast path)."""
        if options.get("tau_path") is not None:
            return check_tau_path(options["tau_path"], (self.session_length,), "options['tau_path']")
        if callable(self.tau_schedule):
            return callable_tau_path(self.tau_schedule, self.session_length)
        if self.tau_schedule == "constant":
            return None
        if options.get("tau_end") is not None:
            end = self.check_tau(options["tau_end"], "options['tau_end']")
        else:
            end = float(self.np_random.uniform(*self.tau_range))
        return tau_path(self.tau_schedule, tau, end, self.session_length)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Route the current query with the action; see the class docstring for the reward."""
        if self._session is None or self._t >= self.session_length:
            raise RuntimeError("Call reset() before step(): the session has ended or not started.")
        row = self._session[self._t]
        mu = gamma = None
        if self.action_mode == "model":
            model = self._check_model(action)
        else:
            if self._plain_mu and type(action) is np.ndarray and action.shape == (1,) and action.dtype.kind == "f" and 0.0 <= action[0] <= 1.0:
                mu, gamma = float(action[0]), self._gamma  # the common case, inline (no NaN passes the test)
            else:
                mu, gamma = self._check_mu(action)
            if not self._identity_map:
                mu = self._mu_from_action(mu)
            weights = self._weights  # [1, μ, (1 − μ)^γ], reused: one array less per step
            weights[1] = mu
            weights[2] = (1.0 - mu) ** gamma
            model = int(weights.dot(self._score_matrix[row]).argmax())
        score = self._scores.item(row, model)  # .item: a Python float, faster than float(array[i, j])
        usd = self._costs.item(row, model)
        if self.budget_usd_per_1k is None:
            reward, info = step_outcome(score, usd, self._cost_norm.item(row, model), model, self.models, self._tau, self._lambda,
                                        self._wq, self._wc, mu, gamma if self.learn_gamma else None,
                                        normalize=self._normalize)
        else:
            reward, info = step_outcome(score, usd, self._cost_norm.item(row, model), model, self.models, self._tau, self._lambda,
                                        self._wq, self._wc, mu, gamma if self.learn_gamma else None,
                                        normalize=self._normalize, budget_usd_per_1k=self.budget_usd_per_1k,
                                        lam_budget=self._lambda_budget)
        self._score_sum += score
        self._usd_sum += usd
        self._t += 1
        if self.session_state:  # the outcome of query t - 1 - delay becomes observable now (if it is ever revealed)
            self._y_hist.append(score)
            j = self._t - 1 - self.feedback_delay
            if j >= 0 and (self._revealed is None or self._revealed[j]):
                self._n_revealed += 1
                self._revealed_sum += self._y_hist[j]
        terminated = self._t >= self.session_length
        if terminated:
            info.update(session_summary(self._score_sum, self._usd_sum, self.session_length, self._session_tau,
                                        budget_usd_per_1k=self.budget_usd_per_1k, report_tau=self._tau_path is not None))
            observation = self._observation(row)
        else:
            if self._tau_path is not None:  # the target in force for the next query
                self._set_tau(float(self._tau_path[self._t]))
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
        if self.session_state:  # τ, λ and the session state share one fresh float32 buffer, one view per key (issue 12's hot path)
            values = np.array((self._tau, self._lambda) + session_values(self._t, self.session_length, self._n_revealed,
                                                                         self._revealed_sum, self._tau, self._usd_sum, self._session_budget),
                              dtype=np.float32)
            obs = {
                "p_hat": self._p_hat[row].copy(),
                "cost_hat": self._cost_hat[row].copy(),
                "tau": values[0:1],
                "lambda": values[1:2],
                "progress": values[2:3],
                "running_accuracy": values[3:4],
                "accuracy_slack": values[4:5],
                "revealed": values[5:6],
            }
            if self._session_budget is not None:
                obs["spend"] = values[6:7]
        else:
            obs = {
                "p_hat": self._p_hat[row].copy(),
                "cost_hat": self._cost_hat[row].copy(),
                "tau": self._tau_obs.copy(),
                "lambda": self._lambda_obs.copy(),
            }
        if self.include_query:
            obs["query"] = self.benchmark.embeddings[row].copy()
        if self.budget_usd_per_1k is not None:
            obs["lambda_budget"] = self._lambda_budget_obs.copy()
        return obs

    def _mu_from_action(self, action: float) -> float:
        """μ for an action in [0, 1] through the head's action map (:meth:`RoutingHead.mu_from_action`)."""
        knots = self._action_knots
        position = action * (len(knots) - 1)
        index = min(int(position), len(knots) - 2)
        return knots[index] + (position - index) * (knots[index + 1] - knots[index])

    def _check_mu(self, action: Any) -> tuple[float, float]:
        if not self.learn_gamma and type(action) is np.ndarray and action.shape == (1,) and action.dtype.kind == "f":
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


def check_session_rows(rows: Any, shape: tuple[int, ...], n_queries: int, name: str = "options['rows']") -> np.ndarray:
    """Session rows given in ``options`` as an int64 array of ``shape``, each a benchmark row index.

    Raises:
        ValueError: Naming ``name``, on a wrong shape, non-integers or rows outside [0, n_queries).
    """
    array = np.asarray(rows)
    if array.shape != shape or array.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must be integer benchmark rows of shape {shape}, got {array.dtype} of shape {array.shape}.")
    if array.size and (array.min() < 0 or array.max() >= n_queries):
        raise ValueError(f"`{name}` must hold benchmark rows in [0, {n_queries}), got {int(array.min())}..{int(array.max())}.")
    return array.astype(np.int64)


def check_revealed(mask: Any, shape: tuple[int, ...], name: str = "options['revealed']") -> np.ndarray:
    """A reveal mask given in ``options`` as a bool array of ``shape``.

    Raises:
        ValueError: Naming ``name``, on a wrong shape or values other than booleans (or 0/1).
    """
    array = np.asarray(mask)
    if array.shape != shape or not (array.dtype == bool or (array.dtype.kind in "iu" and np.isin(array, (0, 1)).all())):
        raise ValueError(f"`{name}` must be booleans of shape {shape}, got {array.dtype} of shape {array.shape}.")
    return array.astype(bool)


def feasible_tau_range(benchmark: Benchmark, fit: HeadFit) -> tuple[float, float]:
    """The head's fixed-μ accuracy at μ = 0 and μ = 1 on the train split, rounded outwards to 0.01."""
    rows = benchmark.split_index("train")
    head = fit.head
    low = float(benchmark.scores[rows, head.route(fit.p_hat[rows], fit.cost_hat[rows], 0.0)].mean())
    high = float(benchmark.scores[rows, head.route(fit.p_hat[rows], fit.cost_hat[rows], 1.0)].mean())
    low, high = min(low, high), max(low, high)
    return max(0.0, math.floor(low * 100) / 100), min(1.0, math.ceil(high * 100) / 100)
