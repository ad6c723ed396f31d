"""PROTEUS routing gym: benchmarks, the routing head and the constrained-MDP environment.

``import proteus_env`` registers ``Proteus-Synthetic-v0``, ``Proteus-RouterBench-v0`` and
``Proteus-SPROUT-v0``; ``gym.make("proteus_env:Proteus-Synthetic-v0")`` imports it on demand (for
subprocess workers). Torch is never imported here.

One name is forwarded rather than defined here: ``evaluate_policy`` (any agent on the yardstick
of ``proteus eval``) lives in :mod:`agents.evaluation.any_agent`, because it runs the agents'
evaluation protocol and baselines. ``from proteus_env import evaluate_policy`` loads it on first
use (PEP 562), so ``import proteus_env`` still imports neither ``agents`` nor torch. It is the one
exception to "proteus_env imports neither agents nor callbacks" (tests/proteus_env/test_layout.py
names it).
"""

import importlib
from typing import Any

from proteus_env.benchmark import Benchmark
from proteus_env.env import ProteusRoutingEnv, feasible_tau_range
from proteus_env.loading import available_benchmarks, cached_benchmark, load_benchmark, register_benchmark
from proteus_env.registration import ENV_IDS, register_envs
from proteus_env.routing_head import HeadConfig, HeadFit, RoutingHead, fit_routing_head
from proteus_env.session import SessionLedger, session_features
from proteus_env.synthetic import make_synthetic_benchmark
from proteus_env.vector import ProteusVectorEnv

register_envs()

__all__ = [
    "ENV_IDS",
    "Benchmark",
    "HeadConfig",
    "HeadFit",
    "ProteusRoutingEnv",
    "ProteusVectorEnv",
    "RoutingHead",
    "SessionLedger",
    "available_benchmarks",
    "cached_benchmark",
    "evaluate_policy",
    "feasible_tau_range",
    "fit_routing_head",
    "load_benchmark",
    "make_synthetic_benchmark",
    "register_benchmark",
    "register_envs",
    "session_features",
]
__version__ = "0.1.0"

#: Names forwarded to the agents package on first use: name -> defining module (see the module docstring).
_FORWARDED: dict[str, str] = {"evaluate_policy": "agents.evaluation.any_agent"}


def __getattr__(name: str) -> Any:
    module = _FORWARDED.get(name)
    if module is None:
        raise AttributeError(f"module 'proteus_env' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value
