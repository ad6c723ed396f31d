"""The PROTEUS environments for RLlib: :func:`register_rllib_envs` and :func:`rllib_policy`.

    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from proteus_env.rllib import register_rllib_envs, rllib_policy
    from proteus_env import evaluate_policy

    ray.init(num_cpus=2, include_dashboard=False)
    register_rllib_envs()                              # every id of proteus_env.ENV_IDS, for RLlib's env="..."
    config = PPOConfig().environment("Proteus-Synthetic-v0", env_config={"benchmark_kwargs": {"n_queries": 3000}})
    algo = config.build_algo()
    algo.train()
    result = evaluate_policy(rllib_policy(algo), {"benchmark_kwargs": {"n_queries": 3000}})

Observations. The environments observe a ``Dict`` (``p_hat``, ``cost_hat``, ``tau``, ``lambda``,
...). RLlib's default models (its new API stack's default RLModules) take flat ``Box``
observations, so the registered creator wraps each env in Gymnasium's ``FlattenObservation``
(the keys concatenated in the Dict space's order). :func:`rllib_policy` flattens the ``Dict``
observations that :func:`~agents.evaluation.any_agent.evaluate_policy` hands it the same way
(``gymnasium.spaces.flatten``), so the policy sees at evaluation what it saw in training. Pass
``env_config={"flatten_observations": False}`` to keep the ``Dict`` (with RLlib's
``FlattenObservations`` connector, or a model of your own).

Ray is optional (the ``[ray]`` extra) and is imported only when a function here is called;
``import proteus_env`` never imports it, nor torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FlattenObservation

from proteus_env.ray_support import require_ray
from proteus_env.registration import ENV_IDS, register_envs

__all__ = ["make_rllib_env", "register_rllib_envs", "rllib_policy"]

#: ``env_config`` key of the registered creators: wrap the env in ``FlattenObservation`` (default true).
FLATTEN_KEY = "flatten_observations"


def make_rllib_env(env_id: str, env_config: Mapping[str, Any] | None = None) -> gym.Env:
    """The environment RLlib builds for ``env_id`` from its ``env_config``.

    Args:
        env_id: A registered PROTEUS id (a key of :data:`proteus_env.ENV_IDS`).
        env_config: RLlib's ``env_config`` (an ``EnvContext``, a dict): the environment's keyword
            arguments, plus :data:`FLATTEN_KEY` (default ``True``).

    Returns:
        ``gym.make(env_id, **env_config)``, wrapped in ``FlattenObservation`` unless told not to.

    Raises:
        ValueError: If ``env_id`` is not a PROTEUS id, or ``env_config`` holds a key the environment
            does not take (naming the keys).
    """
    if env_id not in ENV_IDS:
        raise ValueError(f"Unknown environment id {env_id!r}; the PROTEUS ids are {sorted(ENV_IDS)}.")
    kwargs = dict(env_config or {})
    flatten = bool(kwargs.pop(FLATTEN_KEY, True))
    register_envs()
    try:
        env = gym.make(env_id, **kwargs)
    except TypeError as exc:  # an unknown keyword: name it rather than leave a raw TypeError inside an RLlib worker
        raise ValueError(f"env_config for {env_id} holds a key the environment does not take ({exc}); "
                         f"keys given: {sorted(kwargs)}.") from None
    return FlattenObservation(env) if flatten else env


def _creator(env_id: str) -> Callable[[Mapping[str, Any]], gym.Env]:
    def create(env_config: Mapping[str, Any]) -> gym.Env:
        return make_rllib_env(env_id, env_config)

    return create


def register_rllib_envs(env_ids: Iterable[str] | None = None) -> list[str]:
    """Register the PROTEUS environments with Ray Tune's registry (``ray.tune.register_env``), for RLlib.

    After it, ``PPOConfig().environment("Proteus-Synthetic-v0", env_config={...})`` builds the
    environment through :func:`make_rllib_env` (observations flattened). Idempotent; call it in the
    driver before building the algorithm (Ray ships the registry to the env runners).

    Args:
        env_ids: The ids to register (default: every id of :data:`proteus_env.ENV_IDS`).

    Returns:
        The registered ids.

    Raises:
        ImportError: If Ray is not installed (the message says ``pip install 'proteus-routing-gym[ray]'``).
        ValueError: On an id that is not a PROTEUS id.
    """
    registry = require_ray("register_rllib_envs()", "ray.tune.registry")
    ids = list(ENV_IDS) if env_ids is None else list(env_ids)
    unknown = [env_id for env_id in ids if env_id not in ENV_IDS]
    if unknown:
        raise ValueError(f"Unknown environment id(s) {unknown}; the PROTEUS ids are {sorted(ENV_IDS)}.")
    for env_id in ids:
        registry.register_env(env_id, _creator(env_id))
    return ids


def rllib_policy(algorithm: Any, observation_space: gym.spaces.Space | None = None,
                 action_space: gym.spaces.Space | None = None) -> Callable[[Any], np.ndarray]:
    """A deterministic callable from (a batch of) PROTEUS observations to actions, from a trained RLlib algorithm.

    It takes the algorithm's RLModule (``algorithm.get_module()``), flattens ``Dict`` observations
    in the space's key order (as ``FlattenObservation`` did in training), runs
    ``forward_inference``, takes the deterministic action of the module's action distribution and,
    for a ``Box`` action with RLlib's ``normalize_actions`` (its default), maps it from [-1, 1] back
    onto the space's bounds and clips it, as RLlib's env runners do. The result is what
    :func:`~agents.evaluation.any_agent.evaluate_policy` accepts as a policy.

    Args:
        algorithm: A built RLlib ``Algorithm`` (new API stack).
        observation_space: The environment's ``Dict`` observation space (default: built from the
            algorithm's ``env`` and ``env_config`` without flattening).
        action_space: The action space (default: the same environment's).

    Returns:
        ``policy(obs) -> action``; ``obs`` one observation (a dict of arrays) or a batch (leading
        axis), the action ``(action_dim,)`` / ``(n, action_dim)`` (or integers for ``Discrete``).

    Raises:
        ImportError: If Ray or torch is not installed.
    """
    require_ray("rllib_policy()", "ray.rllib")
    import torch  # the RLModule is a torch module; only this function needs it

    if observation_space is None or action_space is None:
        env = make_rllib_env(str(algorithm.config.env), {**dict(algorithm.config.env_config or {}), FLATTEN_KEY: False})
        observation_space = observation_space or env.observation_space
        action_space = action_space or env.action_space
        env.close()
    module = algorithm.get_module()
    dist_cls = module.get_inference_action_dist_cls()
    normalize = bool(getattr(algorithm.config, "normalize_actions", True))
    clip = bool(getattr(algorithm.config, "clip_actions", False)) or isinstance(action_space, gym.spaces.Box)

    def flat(obs: Any) -> tuple[np.ndarray, bool]:
        if isinstance(observation_space, gym.spaces.Dict):
            first = np.asarray(obs[next(iter(observation_space.spaces))])
            single = first.ndim == len(observation_space[next(iter(observation_space.spaces))].shape)
            if single:
                return gym.spaces.flatten(observation_space, obs)[None, :].astype(np.float32), True
            n = first.shape[0]
            return np.concatenate([np.asarray(obs[key], dtype=np.float32).reshape(n, -1) for key in observation_space.spaces], axis=1), False
        array = np.asarray(obs, dtype=np.float32)
        single = array.ndim == len(observation_space.shape)
        return (array[None] if single else array).reshape((1 if single else array.shape[0], -1)), single

    def policy(obs: Any) -> np.ndarray:
        batch, single = flat(obs)
        with torch.no_grad():
            out = module.forward_inference({"obs": torch.from_numpy(batch)})
            dist = dist_cls.from_logits(out["action_dist_inputs"])
            action = dist.to_deterministic().sample().cpu().numpy()
        if isinstance(action_space, gym.spaces.Box):
            action = action.reshape((batch.shape[0], *action_space.shape)).astype(np.float32)
            low, high = action_space.low, action_space.high
            if normalize:
                action = low + (action + 1.0) * (high - low) / 2.0
            if clip:
                action = np.clip(action, low, high)
        else:
            action = action.astype(np.int64).reshape(batch.shape[0])
        return action[0] if single else action

    return policy
