"""Reward weight schedules ``w_q(τ)`` and ``w_c(τ)`` of the Lagrangian-shaped reward.

``r = w_q(τ)·y − w_c(τ)·ĉ + λ·(y − τ)``. A schedule is given as a number (constant), a name from
:data:`SCHEDULES` (JSON-able, so it can be a registered ``gym.make`` kwarg), or a callable.
"""

from __future__ import annotations

from collections.abc import Callable

WeightSchedule = float | str | Callable[[float], float]

SCHEDULES: dict[str, Callable[[float], float]] = {
    "tau": lambda tau: tau,
    "one_minus_tau": lambda tau: 1.0 - tau,
    "one": lambda tau: 1.0,
    "zero": lambda tau: 0.0,
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
    return lambda tau: value
