"""Stable-Baselines3 callbacks of the PROTEUS routing gym: Lagrangian dual updates and SLA metrics.

:mod:`callbacks.dual` holds the dual-update rules and :func:`~callbacks.dual.tau_span` (NumPy
only); :mod:`callbacks.lagrangian` the SB3 callback that measures, updates and pushes λ. The
callback's names are imported on first use (PEP 562), so ``from callbacks.dual import tau_span``
does not import Stable-Baselines3 or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from callbacks.dual import CONTROLLERS, DualController, GradientAscentController, PIDController, make_controller, tau_span

_LAZY = {"MODEL_STATE_ATTRIBUTE": "callbacks.lagrangian", "LagrangianDualCallback": "callbacks.lagrangian",
         "achievable_accuracy_range": "callbacks.lagrangian"}

__all__ = [
    "CONTROLLERS",
    "MODEL_STATE_ATTRIBUTE",
    "DualController",
    "GradientAscentController",
    "LagrangianDualCallback",
    "PIDController",
    "achievable_accuracy_range",
    "make_controller",
    "tau_span",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
