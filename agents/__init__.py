"""What acts in the PROTEUS routing gym, and how it is judged.

Sub-packages: :mod:`agents.proteus` (the PROTEUS agent: Beta policy, training, calibration, router,
artifact), :mod:`agents.baselines` (the routers it must beat), :mod:`agents.evaluation` (the
protocol for any router) and :mod:`agents.cli` (the ``proteus`` command line).

The public names below are imported on first use (PEP 562), so ``import agents`` stays free of
torch: ``from agents import ProteusRouter, BetaActorCriticPolicy, train`` loads torch only then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "BetaDistribution": "agents.proteus.distributions",
    "BetaActorCriticPolicy": "agents.proteus.policies",
    "ProteusFeaturesExtractor": "agents.proteus.policies",
    "train": "agents.proteus.train",
    "load_config": "agents.proteus.train",
    "TrainResult": "agents.proteus.train",
    "TauCalibration": "agents.proteus.calibration",
    "fit_tau_calibration": "agents.proteus.calibration",
    "ProteusRouter": "agents.proteus.router",
    "RoutingResult": "agents.proteus.router",
    "UnreachableTargetWarning": "agents.proteus.router",
    "make_baselines": "agents.baselines",
    "CarrotRouter": "agents.baselines",
    "SteeredCarrotRouter": "agents.baselines",
    "RouterSession": "agents.proteus.router",
    "evaluate": "agents.evaluation.run",
    "evaluate_policy": "agents.evaluation.any_agent",
    "EvalSettings": "agents.evaluation.protocol",
    "EvalResult": "agents.evaluation.result",
}

__all__ = [
    "BetaActorCriticPolicy",
    "BetaDistribution",
    "CarrotRouter",
    "EvalResult",
    "EvalSettings",
    "ProteusFeaturesExtractor",
    "ProteusRouter",
    "RouterSession",
    "RoutingResult",
    "SteeredCarrotRouter",
    "TauCalibration",
    "TrainResult",
    "UnreachableTargetWarning",
    "evaluate",
    "evaluate_policy",
    "fit_tau_calibration",
    "load_config",
    "make_baselines",
    "train",
]

if TYPE_CHECKING:  # pragma: no cover
    from agents.baselines import CarrotRouter, SteeredCarrotRouter, make_baselines
    from agents.evaluation.any_agent import evaluate_policy
    from agents.evaluation.protocol import EvalSettings
    from agents.evaluation.result import EvalResult
    from agents.evaluation.run import evaluate
    from agents.proteus.calibration import TauCalibration, fit_tau_calibration
    from agents.proteus.distributions import BetaDistribution
    from agents.proteus.policies import BetaActorCriticPolicy, ProteusFeaturesExtractor
    from agents.proteus.router import ProteusRouter, RouterSession, RoutingResult, UnreachableTargetWarning
    from agents.proteus.train import TrainResult, load_config, train


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
