"""Registration of the ``Proteus-*-v0`` ids with Gymnasium (idempotent, JSON-able kwargs).

Every id takes the environment's arguments through ``gym.make``, among them a model subset:
``gym.make("Proteus-RouterBench-v0", data_path=..., models=["gpt-4-1106-preview", "zero-one-ai/Yi-34B-Chat"])``
(or ``exclude_models=[...]``); the subset is applied before the routing head is fitted and is part
of the env's ``constructor_kwargs()``.
"""

from __future__ import annotations

import gymnasium as gym

ENTRY_POINT = "proteus_env.env:ProteusRoutingEnv"
VECTOR_ENTRY_POINT = "proteus_env.vector:ProteusVectorEnv"

#: Registered id -> its (small, JSON-able) default kwargs.
ENV_IDS: dict[str, dict[str, object]] = {
    "Proteus-Synthetic-v0": {"benchmark": "synthetic"},
    "Proteus-RouterBench-v0": {"benchmark": "routerbench"},
    "Proteus-SPROUT-v0": {"benchmark": "sprout"},
}


def register_envs() -> None:
    """Register every id once; calling it again changes nothing."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT, kwargs=dict(kwargs))
