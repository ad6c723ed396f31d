"""``LagrangianDualCallback``: projected dual ascent on λ, measured on validation sessions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from proteus_env.env import ProteusRoutingEnv, lambda_at
from proteus_env.policy_eval import accuracy_at_taus, validation_halves

#: Attribute of the SB3 model that carries the dual state; SB3 saves it in the model zip.
MODEL_STATE_ATTRIBUTE = "proteus_dual_state"


class LagrangianDualCallback(BaseCallback):
    """Update the Lagrange multipliers after rollouts and push them into every environment.

    Every ``update_every`` rollouts it measures, for each τ-bin ``b``, the accuracy ``acc_b`` of the
    *deterministic* policy on validation queries served at the bin's centre τ_b (one batched pass,
    see :func:`proteus_env.policy_eval.accuracy_at_taus`), then applies projected dual ascent

        λ_b ← clip(λ_b + η·(τ_b − acc_b), 0, λ_max)

    (``controller="pid"``: a PID-Lagrangian on the same error, after Stooke et al., 2020), and calls
    ``training_env.env_method("set_lambda_table", λ, edges)``; never ``set_attr``, which stops at the
    ``Monitor`` wrapper. The next observation carries the new λ.

    The training rollouts' own sessions (from ``self.locals["infos"]``, with per-env accumulators
    that survive rollout boundaries) are logged, never used for the update: measured on real
    prompts, training sessions looked compliant while test compliance was 11–22 %.

    The state (λ, edges, PID memory) is stored on the model as ``model.proteus_dual_state``, so
    ``model.save`` keeps it and a resumed run (same callback, model loaded with ``PPO.load``)
    continues from it.

    Args:
        n_bins: Number of τ-bins (``per_bin``), equal-width over the env's ``tau_range``.
        mode: ``"per_bin"`` (default) or ``"global"`` (one λ, the paper's variant; its error is the
            mean over bins).
        eta: Dual step size η (the paper's 0.4).
        lambda_max: Upper bound of λ (at most the env's ``lambda_max``).
        lambda_init: Initial λ of every bin.
        update_every: Rollouts between updates.
        controller: ``"gradient"`` (projected dual ascent) or ``"pid"``.
        pid_gains: ``(k_p, k_i, k_d)`` of the PID variant.
        val_env: A :class:`~proteus_env.ProteusRoutingEnv` on the validation split; by default one
            is built from the training env's ``constructor_kwargs(split="val")``.
        max_val_queries: Validation queries per pass (a fixed random subset when fewer than all) of
            the dual half of the validation split (:func:`proteus_env.policy_eval.validation_halves`;
            the router calibrates on the other half).
        seed: Seed of that subset.
        verbose: SB3 verbosity.
    """

    def __init__(
        self,
        n_bins: int = 9,
        *,
        mode: str = "per_bin",
        eta: float = 0.4,
        lambda_max: float = 10.0,
        lambda_init: float = 0.0,
        update_every: int = 1,
        controller: str = "gradient",
        pid_gains: Sequence[float] = (0.4, 0.05, 0.1),
        val_env: ProteusRoutingEnv | None = None,
        max_val_queries: int | None = 4000,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if mode not in ("per_bin", "global"):
            raise ValueError(f"`mode` must be 'per_bin' or 'global', got {mode!r}.")
        if controller not in ("gradient", "pid"):
            raise ValueError(f"`controller` must be 'gradient' or 'pid', got {controller!r}.")
        if int(n_bins) != n_bins or n_bins < 1:
            raise ValueError(f"`n_bins` must be a positive integer, got {n_bins!r}.")
        if not (eta > 0 and np.isfinite(eta)):
            raise ValueError(f"`eta` must be a finite number > 0, got {eta!r}.")
        if not (lambda_max > 0 and np.isfinite(lambda_max)) or not (0 <= lambda_init <= lambda_max):
            raise ValueError(f"Need 0 <= lambda_init <= lambda_max < inf, got {lambda_init!r} and {lambda_max!r}.")
        if int(update_every) != update_every or update_every < 1:
            raise ValueError(f"`update_every` must be a positive integer, got {update_every!r}.")
        self.n_taus = int(n_bins)  # validation targets per pass (bin centres, or the global mode's grid)
        self.n_bins = int(n_bins) if mode == "per_bin" else 1
        self.mode = mode
        self.eta = float(eta)
        self.lambda_max = float(lambda_max)
        self.lambda_init = float(lambda_init)
        self.update_every = int(update_every)
        self.controller = controller
        self.pid_gains = tuple(float(g) for g in pid_gains)
        self.val_env = val_env
        self.max_val_queries = max_val_queries
        self.seed = seed
        self.lambdas = np.full(self.n_bins, self.lambda_init)
        self.edges = np.array([])
        self.taus = np.array([])
        self._integral = np.zeros(self.n_bins)
        self._previous_error = np.zeros(self.n_bins)
        self._rollouts = 0
        self.last_validation: dict[str, Any] = {}
        self._train_sessions: list[dict[str, float]] = []
        self._mu_sum: np.ndarray = np.zeros(0)
        self._mu_count: np.ndarray = np.zeros(0)
        self._steps: np.ndarray = np.zeros(0)

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
        rows, _ = validation_halves(self.val_env.benchmark, seed=self.val_env.constructor_kwargs()["split_seed"])
        if self.max_val_queries is not None and rows.size > self.max_val_queries:
            rows = np.sort(np.random.default_rng(self.seed).choice(rows, self.max_val_queries, replace=False))
        self._val_rows = rows
        saved = getattr(self.model, MODEL_STATE_ATTRIBUTE, None)
        if saved:
            self.load_state(saved)
        n_envs = self.training_env.num_envs
        self._mu_sum = np.zeros(n_envs)
        self._mu_count = np.zeros(n_envs)
        self._steps = np.zeros(n_envs)
        self._push()

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """JSON-able dual state: λ per bin, bin edges, PID memory and update count."""
        return {
            "lambdas": self.lambdas.tolist(),
            "edges": self.edges.tolist(),
            "mode": self.mode,
            "controller": self.controller,
            "integral": self._integral.tolist(),
            "previous_error": self._previous_error.tolist(),
            "rollouts": self._rollouts,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state` (same number of bins).

        Raises:
            ValueError: If the saved table has another number of bins or mode.
        """
        lambdas = np.asarray(state["lambdas"], dtype=np.float64)
        if lambdas.shape != (self.n_bins,) or state.get("mode", self.mode) != self.mode:
            raise ValueError(
                f"Saved dual state has {lambdas.size} λ in mode {state.get('mode')!r}; "
                f"this callback has {self.n_bins} in mode {self.mode!r}."
            )
        edges = np.asarray(state.get("edges") or self.edges, dtype=np.float64)
        if edges.shape != (self.n_bins + 1,):
            raise ValueError(f"Saved dual state has {edges.size} bin edges; expected {self.n_bins + 1}.")
        memory = {}
        for key in ("integral", "previous_error"):
            memory[key] = np.asarray(state.get(key, np.zeros(self.n_bins)), dtype=np.float64)
            if memory[key].shape != (self.n_bins,):
                raise ValueError(f"Saved dual state's {key!r} has shape {memory[key].shape}; expected ({self.n_bins},).")
        self.lambdas = np.clip(lambdas, 0.0, self.lambda_max)
        self.edges = edges
        if self.mode == "per_bin":  # evaluate where the saved bins are
            self.taus = 0.5 * (edges[:-1] + edges[1:])
        self._integral, self._previous_error = memory["integral"], memory["previous_error"]
        self._rollouts = int(state.get("rollouts", 0))

    def _push(self) -> None:
        """Send the table to every env (through all wrappers) and keep it on the model."""
        self.training_env.env_method("set_lambda_table", self.lambdas.copy(), self.edges.copy())
        self.val_env.set_lambda_table(self.lambdas.copy(), self.edges.copy())
        setattr(self.model, MODEL_STATE_ATTRIBUTE, self.state())
        # The observation SB3 kept from the last step (the next rollout's first) was built before
        # this update: give it the λ its reward will use.
        last = getattr(self.model, "_last_obs", None)
        if isinstance(last, dict) and "lambda" in last and "tau" in last:
            fresh = lambda_at(np.asarray(last["tau"]).reshape(-1), self.lambdas, self.edges)
            last["lambda"][:] = fresh.reshape(np.shape(last["lambda"])).astype(last["lambda"].dtype)

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
                    "tau": float(info["tau"]),
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
        """Deterministic-policy accuracy on validation queries at each bin's τ (λ as in force)."""
        lambdas = np.array([self.val_env.lambda_for(t) for t in self.taus])

        def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
            return self.model.predict(obs, deterministic=True)[0]

        result = accuracy_at_taus(policy, self.val_env.benchmark, self.val_env.head_fit, self._val_rows, self.taus, lambdas,
                                  include_query=self.val_env.include_query)
        result["tau"] = self.taus.copy()
        return result

    def update(self) -> np.ndarray:
        """One dual step from a validation pass; returns the new λ table."""
        result = self.validate()
        error_per_tau = result["tau"] - result["accuracy"]  # NaN where a bin has no validation data
        if self.mode == "global":
            finite = error_per_tau[np.isfinite(error_per_tau)]
            error = np.array([finite.mean() if finite.size else np.nan])
        else:
            error = error_per_tau
        measured = np.isfinite(error)  # a bin without a measurement keeps its λ
        error = np.where(measured, error, 0.0)
        if self.controller == "gradient":
            updated = np.clip(self.lambdas + self.eta * error, 0.0, self.lambda_max)
        else:
            k_p, k_i, k_d = self.pid_gains
            self._integral = np.where(measured, np.clip(self._integral + error, 0.0, self.lambda_max / max(k_i, 1e-12)), self._integral)
            derivative = error - self._previous_error
            self._previous_error = np.where(measured, error, self._previous_error)
            updated = np.clip(k_p * error + k_i * self._integral + k_d * derivative, 0.0, self.lambda_max)
        self.lambdas = np.where(measured, updated, self.lambdas)
        self._push()
        self.last_validation = result
        self._log_validation(result)
        return self.lambdas.copy()

    # ------------------------------------------------------------------ logging
    def _log_validation(self, result: dict[str, np.ndarray]) -> None:
        for b, value in enumerate(self.lambdas):
            self.logger.record(f"constraint/lambda_bin{b}", float(value))
        self.logger.record("constraint/lambda_mean", float(self.lambdas.mean()))
        self.logger.record("constraint/violation", float(np.nanmean(np.maximum(result["tau"] - result["accuracy"], 0.0))))
        self.logger.record("sla/accuracy/val", float(np.nanmean(result["accuracy"])))
        self.logger.record("sla/usd_per_1k/val", float(np.nanmean(result["usd_per_1k"])))
        self.logger.record("sla/floor_compliance/val", float(np.nanmean(result["accuracy"] >= result["tau"])))
        self.logger.record("sla/mu_mean/val", float(np.nanmean(result["mu_mean"])))
        if self.verbose:
            lambdas = np.resize(self.lambdas, result["tau"].size)
            table = " ".join(f"{t:.2f}:{a:.3f}/{lam:.2f}" for t, a, lam in zip(result["tau"], result["accuracy"], lambdas, strict=True))
            print(f"[dual] tau:val_acc/lambda {table}")

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
