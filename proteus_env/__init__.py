"""PROTEUS routing gym: benchmarks, the routing head and the constrained-MDP environment.

``import proteus_env`` registers ``Proteus-Synthetic-v0``, ``Proteus-RouterBench-v0`` and
``Proteus-SPROUT-v0``; ``gym.make("proteus_env:Proteus-Synthetic-v0")`` imports it on demand (for
subprocess workers). Torch is never imported here.
"""

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
    "feasible_tau_range",
    "fit_routing_head",
    "load_benchmark",
    "make_synthetic_benchmark",
    "register_benchmark",
    "register_envs",
    "session_features",
]
__version__ = "0.1.0"
