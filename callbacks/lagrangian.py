"""``LagrangianDualCallback``: measures the policy on validation sessions, updates λ, pushes it to the envs."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from callbacks.dual import DualController, make_controller, tau_span
from proteus_env.benchmark import Benchmark
from proteus_env.env import ProteusRoutingEnv, lambda_at
from proteus_env.policy_eval import accuracy_at_taus, dual_and_calibration_rows
from proteus_env.routing_head import HeadFit, fixed_mu_frontier
from proteus_env.session_eval import needs_sessions, session_accuracy_at_taus

#: Attribute of the SB3 model that carries the dual state; SB3 saves it in the model zip.
MODEL_STATE_ATTRIBUTE = "proteus_dual_state"

#: Keyword defaults of the built-in controllers (``None`` in the signature: "not given").
_CONTROLLER_DEFAULTS: dict[str, Any] = {
    "eta": 0.4, "lambda_max": 10.0, "lambda_init": 0.0, "pid_gains": (0.4, 0.05, 0.1), "pid_ema_alphas": (0.0, 0.0),
}
#: Fields of the callback's saved state that are not the controller's.
_CALLBACK_STATE_KEYS = ("edges", "mode", "rollouts", "budget")
#: Memory fields every state had before controllers were split out (zeros for the gradient rule).
_LEGACY_MEMORY_KEYS = ("integral", "previous_error")


def achievable_accuracy_range(benchmark: Benchmark, fit: HeadFit, rows: np.ndarray, *, n_mu: int = 101) -> tuple[float, float]:
    """The accuracy range that fixed-μ routing through the head reaches on ``rows``.

    ``low`` is the realized accuracy at μ = 0, the cheapest end of the head's frontier (with the
    default head, the cheapest model's level); ``high`` is the best realized accuracy over ``n_mu``
    evenly spaced μ in [0, 1] (the best fixed-μ accuracy, which need not be at μ = 1). The policy
    acts through the same head, so this, rather than the single models' accuracies, is the range
    it can be asked to span. It is :func:`proteus_env.routing_head.fixed_mu_frontier` on ``rows``.

    Args:
        benchmark: The data (realized scores).
        fit: The routing head fit (its predictions and head).
        rows: Row indices, for example the dual callback's validation rows.
        n_mu: Number of μ values of the grid (>= 2).

    Returns:
        ``(low, high)``.

    Raises:
        ValueError: If ``rows`` is empty or ``n_mu < 2``.
    """
    rows = np.asarray(rows)
    if rows.size == 0:
        raise ValueError("`rows` is empty: no validation rows to measure the achievable accuracy range on.")
    if int(n_mu) != n_mu or n_mu < 2:
        raise ValueError(f"`n_mu` must be an integer >= 2, got {n_mu!r}.")
    accuracy = fixed_mu_frontier(benchmark, fit, np.linspace(0.0, 1.0, int(n_mu)), rows=rows)["accuracy"]
    return float(accuracy[0]), float(accuracy.max())


def frontier_lambdas(benchmark: Benchmark, fit: HeadFit, rows: np.ndarray, taus: np.ndarray, w_q: np.ndarray, w_c: np.ndarray, *,
                     n_mu: int = 201) -> np.ndarray:
    """The multiplier at which fixed-μ routing would stop at each τ: a warm start for the dual.

    On ``rows``, fixed-μ routing through the head traces realized accuracy ``A(μ)`` against the
    reward's normalized cost ``C(μ)``. On the lower convex hull of those points, a target τ sits on
    a segment of slope ``s(τ) = ΔC/ΔA``; a router maximizing ``w_q·y − w_c·c + λ·(y − τ)`` stops
    there when ``(w_q + λ)·ΔA = w_c·ΔC``, that is at ``λ(τ) = w_c·s(τ) − w_q`` (0 when negative, and
    0 below the cheapest end where the floor does not bind). Above the hull's top, the last slope.

    The dual ascent corrects these values; starting from them spares the dozens of updates it
    takes to climb from 0 where the fleet's cost per point of accuracy is high (on the synthetic
    pair {gpt-4, Yi-34B} the slope is 1.5–7 normalized cost per unit of accuracy, and η = 0.4
    climbs 0.04 per update at a 10-point error: the run ended before the floors bound).

    Args:
        benchmark: The data (realized scores).
        fit: The routing head fit (predictions, the head and the normalized realized cost).
        rows: The rows the dual measures on.
        taus: ``(B,)`` the bins' targets.
        w_q: ``(B,)`` the reward's quality weight at those targets.
        w_c: ``(B,)`` the reward's cost weight at those targets.
        n_mu: Points of the μ grid.

    Returns:
        ``(B,)`` non-negative multipliers (not yet clipped to any λ_max).

    Raises:
        ValueError: If ``rows`` is empty.
    """
    rows = np.asarray(rows)
    if rows.size == 0:
        raise ValueError("`rows` is empty: no rows to trace the fixed-μ frontier on.")
    return hull_lambdas(fixed_mu_frontier(benchmark, fit, np.linspace(0.0, 1.0, int(n_mu)), rows=rows), taus, w_q, w_c)


def hull_lambdas(frontier: Mapping[str, np.ndarray], taus: np.ndarray, w_q: np.ndarray, w_c: np.ndarray) -> np.ndarray:
    """:func:`frontier_lambdas` from a traced fixed-μ frontier (``accuracy`` and ``cost_norm`` arrays)."""
    cheapest_cost: dict[float, float] = {}  # accuracy -> the lowest cost reaching it
    for accuracy, cost in zip(frontier["accuracy"].tolist(), frontier["cost_norm"].tolist(), strict=True):
        cheapest_cost[accuracy] = min(cost, cheapest_cost.get(accuracy, np.inf))
    hull: list[tuple[float, float]] = []  # lower convex hull, from the cheapest point rightwards (Andrew's monotone chain)
    for point in sorted(cheapest_cost.items()):
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) <= 0:
            hull.pop()
        hull.append(point)
    cheapest = min(range(len(hull)), key=lambda i: (hull[i][1], -hull[i][0]))
    hull = hull[cheapest:]  # the efficient part: more accuracy costs more
    accuracy = np.array([a for a, _ in hull])
    slopes = np.array([(c1 - c0) / (a1 - a0) for (a0, c0), (a1, c1) in zip(hull[:-1], hull[1:], strict=True)])
    taus = np.asarray(taus, dtype=np.float64)
    if slopes.size == 0:
        return np.zeros_like(taus)
    segment = np.clip(np.searchsorted(accuracy, taus, side="right") - 1, 0, slopes.size - 1)
    lambdas = np.asarray(w_c, dtype=np.float64) * slopes[segment] - np.asarray(w_q, dtype=np.float64)
    return np.where(taus <= accuracy[0], 0.0, np.maximum(lambdas, 0.0))


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


class LagrangianDualCallback(BaseCallback):
    """Update the Lagrange multipliers after rollouts and push them into every environment.

    Every ``update_every`` rollouts it measures, for each τ-bin ``b``, the accuracy ``acc_b`` of the
    *deterministic* policy on validation queries served at the bin's centre τ_b (one batched pass,
    see :func:`proteus_env.policy_eval.accuracy_at_taus`), hands the errors ``τ_b − acc_b`` to its
    controller (:mod:`callbacks.dual`; by default projected dual ascent
    ``λ_b ← clip(λ_b + η·(τ_b − acc_b), 0, λ_max)``, or a PID-Lagrangian), and calls
    ``training_env.env_method("set_lambda_table", λ, edges)``; never ``set_attr``, which stops at the
    ``Monitor`` wrapper. The next observation carries the new λ.

    Each validation pass also measures the *τ-span*: the spread of the per-bin accuracies relative to
    the achievable range of fixed-μ routing on the same rows (:func:`achievable_accuracy_range`,
    :func:`callbacks.dual.tau_span`). A policy that ignores τ has a span near 0. It is logged as
    ``train/tau_span`` and kept as :attr:`last_tau_span`.

    The training rollouts' own sessions (from ``self.locals["infos"]``, with per-env accumulators
    that survive rollout boundaries) are logged, never used for the update: measured on real
    prompts, training sessions looked compliant while test compliance was 11–22 %.

    The state (λ, edges, controller memory) is stored on the model as ``model.proteus_dual_state``,
    so ``model.save`` keeps it and a resumed run (same callback, model loaded with ``PPO.load``)
    continues from it.

    Args:
        n_bins: Number of τ-bins (``per_bin``), equal-width over the env's ``tau_range``.
        mode: ``"per_bin"`` (default) or ``"global"`` (one λ, the paper's variant; its error is the
            mean over bins).
        eta: Dual step size η of ``"gradient"`` (default 0.4, the paper's).
        lambda_max: Upper bound of λ (default 10; at most the env's ``lambda_max``).
        lambda_init: Initial λ of every bin (default 0), or ``"frontier"``: each bin starts at
            :func:`frontier_lambdas` on the dual's rows (the multiplier at which fixed-μ routing
            stops at its τ), clipped to ``lambda_max``.
        update_every: Rollouts between updates.
        controller: ``"gradient"`` (projected dual ascent, default), ``"pid"``, or a
            :class:`~callbacks.dual.DualController` with one multiplier per bin (1 in ``global``
            mode). An instance carries its own settings: do not pass ``eta``, ``lambda_max``,
            ``lambda_init``, ``pid_gains`` or ``pid_ema_alphas`` with it.
        pid_gains: ``(k_p, k_i, k_d)`` of ``"pid"`` (default ``(0.4, 0.05, 0.1)``).
        pid_ema_alphas: ``(α_p, α_d)`` moving-average weights of ``"pid"`` (default ``(0, 0)``: no
            smoothing; see :class:`~callbacks.dual.PIDController`).
        val_env: A :class:`~proteus_env.ProteusRoutingEnv` on the validation split; by default one
            is built from the training env's ``constructor_kwargs(split="val")``.
        max_val_queries: Validation queries per pass (a fixed random subset when fewer than all) of
            the dual's rows (:func:`proteus_env.policy_eval.dual_and_calibration_rows`: the env's
            ``train_holdout`` share of train, or the first half of validation;
            the router calibrates on the other half).
        seed: Seed of that subset.
        verbose: SB3 verbosity.

    Attributes:
        controller: The :class:`~callbacks.dual.DualController`.
        edges: ``(n_bins + 1,)`` τ-bin edges (set when the callback is initialised).
        taus: The validation targets (bin centres; ``n_bins`` grid points in ``global`` mode).
        achievable_range: ``(low, high)`` of :func:`achievable_accuracy_range` on the validation rows.
        last_validation: The last pass: ``tau``, ``accuracy``, ``usd_per_1k``, ``mu_mean`` arrays (one
            entry per bin), ``end_accuracy`` (accuracy at the two ends of ``tau_range``) and the
            floats ``tau_span`` (over the bins and the two ends), ``achievable_low`` and ``achievable_high``.
        last_tau_span: The last pass's τ-span (``None`` before the first; NaN when undefined).
    """

    def __init__(
        self,
        n_bins: int = 9,
        *,
        mode: str = "per_bin",
        eta: float | None = None,
        lambda_max: float | None = None,
        lambda_init: float | str | None = None,
        update_every: int = 1,
        controller: str | DualController = "gradient",
        pid_gains: Sequence[float] | None = None,
        pid_ema_alphas: Sequence[float] | None = None,
        val_env: ProteusRoutingEnv | None = None,
        max_val_queries: int | None = 4000,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if mode not in ("per_bin", "global"):
            raise ValueError(f"`mode` must be 'per_bin' or 'global', got {mode!r}.")
        if int(n_bins) != n_bins or n_bins < 1:
            raise ValueError(f"`n_bins` must be a positive integer, got {n_bins!r}.")
        if int(update_every) != update_every or update_every < 1:
            raise ValueError(f"`update_every` must be a positive integer, got {update_every!r}.")
        self.n_taus = int(n_bins)  # validation targets per pass (bin centres, or the global mode's grid)
        self.n_bins = int(n_bins) if mode == "per_bin" else 1
        self.mode = mode
        if isinstance(lambda_init, str) and lambda_init != "frontier":
            raise ValueError(f"`lambda_init` must be a number or 'frontier', got {lambda_init!r}.")
        self.frontier_init = lambda_init == "frontier"
        settings = {"eta": eta, "lambda_max": lambda_max, "lambda_init": None if self.frontier_init else lambda_init,
                    "pid_gains": pid_gains, "pid_ema_alphas": pid_ema_alphas}
        if isinstance(controller, DualController):
            given = sorted(name for name, value in settings.items() if value is not None)
            if given:
                raise ValueError(f"{given} cannot be combined with a controller instance ({controller!r}): set them on the controller.")
            if controller.n_bins != self.n_bins:
                raise ValueError(f"The controller has {controller.n_bins} multipliers; mode {mode!r} with n_bins={n_bins} needs {self.n_bins}.")
            self.controller = controller
        elif isinstance(controller, str):
            resolved = {name: _CONTROLLER_DEFAULTS[name] if value is None else value for name, value in settings.items()}
            self.controller = make_controller(controller, self.n_bins, **resolved)
        else:
            raise ValueError(f"`controller` must be 'gradient', 'pid' or a DualController, got {controller!r}.")
        self.lambda_max = self.controller.lambda_max
        self.lambda_init: float | str = "frontier" if self.frontier_init else self.controller.lambda_init
        self.update_every = int(update_every)
        self.val_env = val_env
        self.max_val_queries = max_val_queries
        self.seed = seed
        self.edges = np.array([])
        self.taus = np.array([])
        self.achievable_range: tuple[float, float] = (float("nan"), float("nan"))
        self._rollouts = 0
        self.last_validation: dict[str, Any] = {}
        self.last_tau_span: float | None = None
        self._train_sessions: list[dict[str, float]] = []
        self._mu_sum: np.ndarray = np.zeros(0)
        self._mu_count: np.ndarray = np.zeros(0)
        self._steps: np.ndarray = np.zeros(0)
        #: The budget constraint's controller (issue 12), made when the env has ``budget_usd_per_1k``:
        #: a fresh copy of ``controller``, driven by the per-bin budget signal ``usd / budget − 1``.
        self.budget_controller: DualController | None = None

    @property
    def lambdas(self) -> np.ndarray:
        """``(n_bins,)`` the controller's current λ (one entry in ``global`` mode)."""
        return self.controller.lambdas

    @property
    def budget_lambdas(self) -> np.ndarray | None:
        """``(n_bins,)`` the budget constraint's λ_budget, or ``None`` without a budget."""
        return None if self.budget_controller is None else self.budget_controller.lambdas

    # ------------------------------------------------------------------ set-up
    def _init_callback(self) -> None:
        if self.val_env is None:
            kwargs = self.training_env.env_method("constructor_kwargs", indices=[0], split="val")[0]
            self.val_env = ProteusRoutingEnv(**kwargs)
        low, high = self.val_env.tau_range
        if not high > low and self.n_bins > 1:
            raise ValueError(f"The environment's tau_range [{low}, {high}] is a single point: use n_bins=1 or mode='global'.")
        edges = np.linspace(low, high, self.n_bins + 1) if high > low else np.array([low, low + 1e-6])
        self.edges = edges
        self.taus = 0.5 * (edges[:-1] + edges[1:]) if self.mode == "per_bin" else np.linspace(low, high, self.n_taus)
        if self.lambda_max > self.val_env.lambda_max:
            raise ValueError(f"`lambda_max`={self.lambda_max} exceeds the environment's lambda_max={self.val_env.lambda_max}.")
        kwargs = self.val_env.constructor_kwargs()
        rows, _ = dual_and_calibration_rows(self.val_env.benchmark, seed=kwargs["split_seed"], train_holdout=kwargs.get("train_holdout", 0.0))
        if self.max_val_queries is not None and rows.size > self.max_val_queries:
            rows = np.sort(np.random.default_rng(self.seed).choice(rows, self.max_val_queries, replace=False))
        self._val_rows = rows
        if getattr(self.val_env, "budget_usd_per_1k", None) is not None and self.budget_controller is None:
            self.budget_controller = copy.deepcopy(self.controller)  # one controller per constraint, same rule and settings
            self.budget_controller.reset()
        saved = getattr(self.model, MODEL_STATE_ATTRIBUTE, None)
        warm = self.frontier_init and not saved
        # One fixed-μ trace for both uses: the warm start's 201-point grid holds the achievable range's 101 points
        # exactly (every second one), so the range is the same as achievable_accuracy_range's.
        frontier = fixed_mu_frontier(self.val_env.benchmark, self.val_env.head_fit, np.linspace(0.0, 1.0, 201 if warm else 101),
                                     rows=rows)
        accuracy = frontier["accuracy"][::2] if warm else frontier["accuracy"]
        self.achievable_range = (float(accuracy[0]), float(accuracy.max()))
        if saved:
            self.load_state(saved)
        elif warm:
            w_q, w_c = self.val_env.reward_weights_batch(self.taus)
            start = hull_lambdas(frontier, self.taus, w_q, w_c)
            self.controller.warm_start(start if self.mode == "per_bin" else [float(np.mean(start))])
        n_envs = self.training_env.num_envs
        self._mu_sum = np.zeros(n_envs)
        self._mu_count = np.zeros(n_envs)
        self._steps = np.zeros(n_envs)
        self._push()

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """JSON-able dual state: λ per bin, bin edges, mode, controller name and memory, update count."""
        memory = self.controller.state()
        lambdas, name = memory.pop("lambdas"), memory.pop("controller")
        state = {"lambdas": lambdas, "edges": self.edges.tolist(), "mode": self.mode, "controller": name, **memory,
                 "rollouts": self._rollouts}
        if self.budget_controller is not None:
            state["budget"] = self.budget_controller.state()
        return state

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state`, including those of earlier releases (same bins, mode and controller).

        Raises:
            ValueError: If the saved table has another number of bins, mode or controller, or a
                field is malformed (λ outside [0, ``lambda_max``], non-finite or non-increasing
                edges, a negative update count); the message names the field. Nothing changes
                when it raises.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"A dual state must be a dict, got {type(state).__name__}.")
        lambdas = np.asarray(state.get("lambdas", []), dtype=np.float64)
        if lambdas.shape != (self.n_bins,) or state.get("mode", self.mode) != self.mode:
            raise ValueError(
                f"Saved dual state has {lambdas.size} λ in mode {state.get('mode')!r}; "
                f"this callback has {self.n_bins} in mode {self.mode!r}."
            )
        saved_by = state.get("controller", self.controller.name)
        if saved_by != self.controller.name:
            raise ValueError(f"Saved dual state was written by controller {saved_by!r}; this callback uses {self.controller.name!r}.")
        saved_edges = state.get("edges")
        edges = np.asarray(self.edges if saved_edges is None or len(saved_edges) == 0 else saved_edges, dtype=np.float64)
        if edges.shape != (self.n_bins + 1,):
            raise ValueError(f"Saved dual state has {edges.size} bin edges; expected {self.n_bins + 1}.")
        if not (np.isfinite(edges).all() and np.all(np.diff(edges) > 0)):
            raise ValueError(f"Dual state field 'edges' must be finite and increasing, got {edges.tolist()}.")
        rollouts = state.get("rollouts", 0)
        if isinstance(rollouts, bool) or not isinstance(rollouts, (int, np.integer)) or rollouts < 0:
            raise ValueError(f"Dual state field 'rollouts' must be an integer >= 0, got {rollouts!r}.")
        memory = {key: value for key, value in state.items() if key not in _CALLBACK_STATE_KEYS}
        for key in _LEGACY_MEMORY_KEYS:  # every earlier state had them, zeros for the gradient rule
            if key not in self.controller.memory_keys:
                memory.pop(key, None)
        budget = state.get("budget")
        if budget is not None and self.budget_controller is not None:
            candidate = copy.deepcopy(self.budget_controller)
            candidate.load_state(budget)  # raises before anything changes
        self.controller.load_state(memory)
        if budget is not None and self.budget_controller is not None:
            self.budget_controller = candidate
        self.edges = edges
        if self.mode == "per_bin":  # evaluate where the saved bins are
            self.taus = 0.5 * (edges[:-1] + edges[1:])
        self._rollouts = int(rollouts)

    def _push(self) -> None:
        """Send the table to every env (through all wrappers) and keep it on the model."""
        self.training_env.env_method("set_lambda_table", self.lambdas.copy(), self.edges.copy())
        self.val_env.set_lambda_table(self.lambdas.copy(), self.edges.copy())
        if self.budget_controller is not None:
            budget = self.budget_controller.lambdas.copy()
            self.training_env.env_method("set_lambda_table", budget, self.edges.copy(), constraint="budget")
            self.val_env.set_lambda_table(budget, self.edges.copy(), constraint="budget")
        setattr(self.model, MODEL_STATE_ATTRIBUTE, self.state())
        # The observation SB3 kept from the last step (the next rollout's first) was built before
        # this update: give it the λ its reward will use.
        last = getattr(self.model, "_last_obs", None)
        if isinstance(last, dict) and "lambda" in last and "tau" in last:
            fresh = lambda_at(np.asarray(last["tau"]).reshape(-1), self.lambdas, self.edges)
            last["lambda"][:] = fresh.reshape(np.shape(last["lambda"])).astype(last["lambda"].dtype)
            if self.budget_controller is not None and "lambda_budget" in last:
                fresh = lambda_at(np.asarray(last["tau"]).reshape(-1), self.budget_controller.lambdas, self.edges)
                last["lambda_budget"][:] = fresh.reshape(np.shape(last["lambda_budget"])).astype(last["lambda_budget"].dtype)

    # ------------------------------------------------------------------ SB3 hooks
    def _on_step(self) -> bool:
        infos = self.locals.get("infos", [])
        for i, info in enumerate(infos):
            self._steps[i] += 1
            if "mu" in info:
                self._mu_sum[i] += info["mu"]
                self._mu_count[i] += 1
            if "session_accuracy" in info:
                # A session seen from its start spans session_length steps; one the callback joined
                # half-way (a resumed run) is scored on the steps it saw.
                steps = self._steps[i]
                self._train_sessions.append({
                    "tau": float(info.get("session_tau", info["tau"])),  # the mean τ under a τ schedule
                    "accuracy": float(info["session_accuracy"]),
                    "usd_per_1k": 1000.0 * float(info["session_usd_cost"]) / max(steps, 1),
                    "success": float(info["is_success"]),
                    "mu_mean": float(self._mu_sum[i] / self._mu_count[i]) if self._mu_count[i] else float("nan"),
                })
                self._mu_sum[i] = 0.0
                self._mu_count[i] = 0
                self._steps[i] = 0
        return True

    def _on_rollout_end(self) -> None:
        self._rollouts += 1
        self._log_training_sessions()
        if self._rollouts % self.update_every:
            return
        self.update()

    def validate(self) -> dict[str, np.ndarray]:
        """Deterministic-policy accuracy on validation queries at each bin's τ (λ as in force).

        The same pass also measures the two ends of the env's ``tau_range`` (``end_accuracy``), so
        that the τ-span covers the whole range of τ inputs the router will calibrate over.
        """
        low, high = self.val_env.tau_range
        taus = np.concatenate([self.taus, [low, high]])
        lambdas = np.asarray(self.val_env.lambda_for(taus), dtype=np.float64)

        def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
            return self.model.predict(obs, deterministic=True)[0]

        if needs_sessions(self.val_env):  # the observation depends on the session so far: serve whole sessions (issue 12)
            measured = session_accuracy_at_taus(policy, self.val_env, self._val_rows, taus, seed=self.seed)
        else:
            measured = accuracy_at_taus(policy, self.val_env.benchmark, self.val_env.head_fit, self._val_rows, taus, lambdas,
                                        include_query=self.val_env.include_query)
        n = self.taus.size
        result: dict[str, Any] = {key: value[:n] for key, value in measured.items()}
        result["tau"] = self.taus.copy()
        result["end_accuracy"] = measured["accuracy"][n:]
        return result

    def update(self) -> np.ndarray:
        """One validation pass, one controller step, one push; returns the new λ table."""
        result = self.validate()
        error_per_tau = result["tau"] - result["accuracy"]  # NaN where a bin has no validation data
        if self.mode == "global":
            finite = error_per_tau[np.isfinite(error_per_tau)]
            error = np.array([finite.mean() if finite.size else np.nan])
        else:
            error = error_per_tau
        self.controller.update(error, np.isfinite(error))  # a bin without a measurement keeps its λ
        if self.budget_controller is not None:  # the second constraint: usd per query / budget per query − 1, per bin
            over = np.asarray(result["budget_cost"], dtype=np.float64)
            if self.mode == "global":
                finite = over[np.isfinite(over)]
                over = np.array([finite.mean() if finite.size else np.nan])
            self.budget_controller.update(over, np.isfinite(over))
        low, high = self.achievable_range
        span = tau_span(np.concatenate([result["accuracy"], result.get("end_accuracy", [])]), low, high)
        result["tau_span"] = span
        result["achievable_low"], result["achievable_high"] = low, high
        self.last_tau_span = span
        self._push()
        self.last_validation = result
        self._log_validation(result)
        return self.lambdas.copy()

    # ------------------------------------------------------------------ logging
    def _log_validation(self, result: dict[str, Any]) -> None:
        for b, value in enumerate(self.lambdas):
            self.logger.record(f"constraint/lambda_bin{b}", float(value))
        self.logger.record("constraint/lambda_mean", float(self.lambdas.mean()))
        if self.budget_controller is not None:
            self.logger.record("constraint/lambda_budget_mean", float(self.budget_controller.lambdas.mean()))
            self.logger.record("constraint/budget_violation", float(np.nanmean(np.maximum(result["budget_cost"], 0.0))))
        self.logger.record("constraint/violation", float(np.nanmean(np.maximum(result["tau"] - result["accuracy"], 0.0))))
        self.logger.record("sla/accuracy/val", float(np.nanmean(result["accuracy"])))
        self.logger.record("sla/usd_per_1k/val", float(np.nanmean(result["usd_per_1k"])))
        self.logger.record("sla/floor_compliance/val", float(np.nanmean(result["accuracy"] >= result["tau"])))
        self.logger.record("sla/mu_mean/val", float(np.nanmean(result["mu_mean"])))
        self.logger.record("train/tau_span", float(result["tau_span"]))
        if self.verbose:
            lambdas = np.resize(self.lambdas, result["tau"].size)
            table = " ".join(f"{t:.2f}:{a:.3f}/{lam:.2f}" for t, a, lam in zip(result["tau"], result["accuracy"], lambdas, strict=True))
            print(f"[dual] tau:val_acc/lambda {table} tau_span {result['tau_span']:.3f}")

    def _log_training_sessions(self) -> None:
        if not self._train_sessions:
            return
        sessions = self._train_sessions
        self._train_sessions = []
        for key, tag in (("accuracy", "accuracy"), ("usd_per_1k", "usd_per_1k"), ("success", "floor_compliance"), ("mu_mean", "mu_mean")):
            values = np.array([s[key] for s in sessions], dtype=np.float64)
            if np.isfinite(values).any():
                self.logger.record(f"sla/{tag}/train", float(np.nanmean(values)))
        self.logger.record("sla/sessions/train", float(len(sessions)))
