"""Reward weight schedules ``w_q(τ)`` and ``w_c(τ)`` of the Lagrangian-shaped reward.

``r = w_q(τ)·y − w_c(τ)·ĉ + λ·(y − τ)``. A schedule is given as a number (constant), a name from
:data:`SCHEDULES` (JSON-able, so it can be a registered ``gym.make`` kwarg), or a callable.
"""

from __future__ import annotations

from collections.abc import Callable

WeightSchedule = float | str | Callable[[float], float]



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


def resolve_schedule(schedule: WeightSchedule, *, argument: str) -> Callable[[float], float]:
    """Turn a schedule spec into a function of τ.

    Raises:
        ValueError: For an unknown name or a non-finite constant, naming the argument.
    """
    if callable(schedule):
        return schedule
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(f"`{argument}` must be a number, a callable or one of {sorted(SCHEDULES)}; got {schedule!r}.")
        return SCHEDULES[schedule]
    value = float(schedule)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"`{argument}` must be finite, got {schedule!r}.")
    return Constant(value)
