"""``ValidationHookCallback``: hand every validation pass of the dual callback to a function.

    dual = LagrangianDualCallback(...)
    hook = ValidationHookCallback(dual, lambda timesteps, validation: print(timesteps, validation["accuracy"]))
    model.learn(..., callback=CallbackList([dual, hook]))   # the hook after the dual

:func:`agents.proteus.train.train` adds one when called with ``on_validation=...``; ``proteus sweep``
uses it to report each dual update's validation metrics to Ray Tune.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

#: ``hook(timesteps, validation)``: the model's transition count and the dual's ``last_validation``.
ValidationHook = Callable[[int, Mapping[str, Any]], None]


class ValidationHookCallback(BaseCallback):
    """Call ``hook(num_timesteps, dual.last_validation)`` once after every update of ``dual``.

    Put it after ``dual`` in the callback list: SB3 runs the callbacks in order, so at the end of a
    rollout the dual has already updated. A pass is reported once (the dual replaces its
    ``last_validation`` dict at every update; the hook fires when that object changes).
    :meth:`report_if_new` also reports a pass made outside a rollout (``train`` measures once
    after a budget shorter than one rollout).

    Args:
        dual: The :class:`~callbacks.lagrangian.LagrangianDualCallback` (anything with a
            ``last_validation`` mapping).
        hook: The function to call.
        verbose: SB3 verbosity.
    """

    def __init__(self, dual: Any, hook: ValidationHook, verbose: int = 0) -> None:
        super().__init__(verbose)
        if not callable(hook):
            raise ValueError(f"`hook` must be callable, got {hook!r}.")
        self.dual = dual
        self.hook = hook
        self._seen: Any = None  # the last reported dict itself (an id could be reused once it is freed)
        self.n_reports = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.report_if_new()

    def report_if_new(self) -> bool:
        """Call the hook if the dual measured since the last call; returns whether it did."""
        validation = getattr(self.dual, "last_validation", None)
        if not validation or validation is self._seen:
            return False
        self._seen = validation
        self.n_reports += 1
        self.hook(int(self.model.num_timesteps), validation)
        return True
