"""The Lagrangian-shaped reward, the step ``info`` and the weight schedules ``w_q(τ)``, ``w_c(τ)``.

``r = w_q(τ)·y − w_c(τ)·ĉ + λ·(y − τ)``, optionally divided by ``1 + λ`` (``normalize``, as
OmniSafe's PPO-Lag does with its advantages): then the objective and the penalty stay on one
scale however large λ grows, and sessions under a large λ do not drown the others' gradient.
:func:`step_outcome` computes it, together with the
step's ``info``, for one query (Python floats) or for a batch of sessions (arrays), so that
:class:`~proteus_env.ProteusRoutingEnv` and :class:`~proteus_env.ProteusVectorEnv` share one
definition; :func:`session_summary` adds the end-of-session aggregates.

A schedule is given as a number (constant), a name from :data:`SCHEDULES` (JSON-able, so it can be
a registered ``gym.make`` kwarg), or a callable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from proteus_env._validation import check_finite
from proteus_env.session import budget_cost

WeightSchedule = float | str | Callable[[float], float]
#: ``reward_normalization`` values: the plain Lagrangian, or divided by ``1 + λ``.
REWARD_NORMALIZATIONS = ("none", "one_plus_lambda")
#: A float for one query, a ``(n,)`` float64 array for a batch of sessions.
Scalars = float | np.ndarray


def step_outcome(score: Scalars, usd: Scalars, cost_norm: Scalars, model_index: Any, models: Sequence[str] | np.ndarray,
                 tau: Scalars, lam: Scalars, w_q: Scalars, w_c: Scalars, mu: Scalars | None = None,
                 gamma: Scalars | None = None, *, normalize: bool = False, budget_usd_per_1k: float | None = None,
                 lam_budget: Scalars = 0.0) -> tuple[Scalars, dict[str, Any]]:
    """The reward and the ``info`` of one routing step, for one query or a batch.

    Args:
        score: Realized score ``y`` of the chosen model(s).
        usd: USD charged by the chosen model(s).
        cost_norm: Normalized realized cost ``ĉ`` of the chosen model(s).
        model_index: Index (or ``(n,)`` indices) of the chosen model(s).
        models: Model names, indexable by ``model_index`` (a tuple for one index, an array for many).
        tau: The target(s) τ.
        lam: The multiplier(s) λ(τ) in force.
        w_q: The quality weight ``w_q(τ)``.
        w_c: The cost weight ``w_c(τ)``.
        mu: The quality preference(s) μ, when the action was one (added to ``info``).
        gamma: The exponent(s) γ, when the action set it (added to ``info``).
        normalize: Divide the reward by ``1 + λ`` (``1 + λ + λ_budget`` with a budget).
        budget_usd_per_1k: The session's spending cap, a second constraint (``None``: none). Its
            per-step signal is ``c_budget = usd / (budget per query) − 1`` (on average ≤ 0 ⇔
            within budget, :func:`proteus_env.session.budget_cost`), and the reward subtracts
            ``λ_budget · c_budget``.
        lam_budget: The budget's multiplier λ_budget in force.

    Returns:
        ``(reward, info)`` with ``info`` keys ``cost`` (the CMDP constraint signal ``τ − y``, the
        accuracy constraint's, with or without a budget), ``score``, ``usd_cost``, ``model``,
        ``model_index``, ``tau``, ``lambda``, when given ``mu`` and ``gamma``, and with a budget
        ``costs`` (``{"accuracy": τ − y, "budget": c_budget}``) and ``lambda_budget``.
    """
    reward = w_q * score - w_c * cost_norm + lam * (score - tau)
    if budget_usd_per_1k is not None:
        over = budget_cost(usd, budget_usd_per_1k)
        reward = reward - lam_budget * over
        if normalize:
            reward = reward / (1.0 + lam + lam_budget)
    elif normalize:
        reward = reward / (1.0 + lam)
    info: dict[str, Any] = {
        "cost": tau - score,
        "score": score,
        "usd_cost": usd,
        "model": models[model_index],
        "model_index": model_index,
        "tau": tau,
        "lambda": lam,
    }
    if mu is not None:
        info["mu"] = mu
    if gamma is not None:
        info["gamma"] = gamma
    if budget_usd_per_1k is not None:
        info["costs"] = {"accuracy": tau - score, "budget": over}
        info["lambda_budget"] = lam_budget
    return reward, info


def session_summary(score_sum: Scalars, usd_sum: Scalars, length: int, tau: Scalars, *, budget_usd_per_1k: float | None = None,
                    report_tau: bool = False) -> dict[str, Any]:
    """The end-of-session ``info`` entries: ``session_accuracy``, ``session_usd_cost``, ``is_success``.

    ``is_success`` is ``session_accuracy >= τ`` (the floor was met); under a τ schedule ``tau`` is
    the session's mean τ, also reported as ``session_tau`` (``report_tau``). With a budget,
    ``budget_met`` is ``session_usd_cost <= budget_usd_per_1k · length / 1000``.
    """
    accuracy = score_sum / length
    out = {"session_accuracy": accuracy, "session_usd_cost": usd_sum, "is_success": accuracy >= tau}
    if report_tau:
        out["session_tau"] = tau
    if budget_usd_per_1k is not None:
        out["budget_met"] = usd_sum <= budget_usd_per_1k * length / 1000.0
    return out



def tau_weight(tau: float) -> float:
    """``w(τ) = τ``: more weight on quality for stricter targets."""
    return tau


def one_minus_tau_weight(tau: float) -> float:
    """``w(τ) = 1 − τ``: more weight on cost for looser targets."""
    return 1.0 - tau


class Constant:
    """A constant schedule ``w(τ) = value`` (picklable, unlike a lambda)."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __call__(self, tau: float) -> float:
        """Return the constant, whatever τ."""
        return self.value

    def __repr__(self) -> str:
        return f"Constant({self.value})"


SCHEDULES: dict[str, Callable[[float], float]] = {
    "tau": tau_weight,
    "one_minus_tau": one_minus_tau_weight,
    "one": Constant(1.0),
    "zero": Constant(0.0),
}


class CheckedSchedule:
    """A user's schedule callable whose every value is checked to be a finite number (picklable)."""

    def __init__(self, function: Callable[[float], float], argument: str) -> None:
        self.function = function
        self.argument = argument

    def __call__(self, tau: float) -> float:
        """The weight at ``tau``; a non-finite or non-numeric value is a ``ValueError``."""
        try:
            value = float(self.function(tau))
        except (TypeError, ValueError):
            raise ValueError(f"`{self.argument}` returned a non-number at τ={tau}.") from None
        if not math.isfinite(value):
            raise ValueError(f"`{self.argument}` returned {value} at τ={tau}; reward weights must be finite.")
        return value

    def __repr__(self) -> str:
        return f"CheckedSchedule({self.function!r})"


def resolve_schedule(schedule: WeightSchedule, *, argument: str) -> Callable[[float], float]:
    """Turn a schedule spec into a function of τ.

    Raises:
        ValueError: For an unknown name or a non-finite constant, naming the argument.
    """
    if callable(schedule):
        return CheckedSchedule(schedule, argument)
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(f"`{argument}` must be a number, a callable or one of {sorted(SCHEDULES)}; got {schedule!r}.")
        return SCHEDULES[schedule]
    return Constant(check_finite(schedule, argument))
