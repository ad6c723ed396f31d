"""RLlib on the PROTEUS environments: registered for Tune, trained briefly with PPO, scored on the yardstick of ``proteus eval``."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import proteus_env
from proteus_env.rllib import make_rllib_env, register_rllib_envs, rllib_policy

ENV_CONFIG = {"benchmark_kwargs": {"n_queries": 2000}, "session_length": 16}


def test_importing_the_package_and_the_helpers_imports_no_ray():
    code = ("import sys, proteus_env, proteus_env.rllib, agents.sweep, agents.ray_cluster, agents.cli.sweep, agents.evaluation.run; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_ray_every_ray_feature_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from proteus_env.rllib import register_rllib_envs\n"
            "try:\n    register_rllib_envs()\nexcept ImportError as exc:\n    print(exc)\n"
            "from agents.cli import main\n"
            f"sys.exit(main(['sweep', '--out', {str(tmp_path / 's')!r}, '--timesteps', '10']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    hint = "pip install 'proteus-routing-gym[ray]'"
    assert done.returncode == 2
    assert "register_rllib_envs() needs Ray" in done.stdout and hint in done.stdout
    assert done.stderr.startswith("proteus sweep: error: proteus sweep needs Ray") and hint in done.stderr


def test_the_rllib_env_is_the_gym_env_with_flat_observations():
    env = make_rllib_env("Proteus-Synthetic-v0", {**ENV_CONFIG, "split": "val"})
    dict_env = make_rllib_env("Proteus-Synthetic-v0", {**ENV_CONFIG, "split": "val", "flatten_observations": False})
    assert isinstance(env.observation_space, gym.spaces.Box) and isinstance(dict_env.observation_space, gym.spaces.Dict)
    flat, _ = env.reset(seed=3, options={"tau": 0.6})
    obs, _ = dict_env.reset(seed=3, options={"tau": 0.6})
    np.testing.assert_array_equal(flat, gym.spaces.flatten(dict_env.observation_space, obs))
    with pytest.raises(ValueError, match="Unknown environment id 'CartPole-v1'"):
        make_rllib_env("CartPole-v1")
    with pytest.raises(ValueError, match=r"does not take .*'sesion_length'"):  # a misspelt key is named, not a raw TypeError
        make_rllib_env("Proteus-Synthetic-v0", {**ENV_CONFIG, "sesion_length": 8})


def test_rllib_ppo_trains_on_the_synthetic_env_and_is_scored_by_evaluate_policy(ray_instance):
    from ray.rllib.algorithms.ppo import PPOConfig

    assert register_rllib_envs() == list(proteus_env.ENV_IDS)
    config = (PPOConfig()
              .environment("Proteus-Synthetic-v0", env_config=ENV_CONFIG)
              .env_runners(num_env_runners=0, rollout_fragment_length=64)
              .training(train_batch_size_per_learner=128, minibatch_size=64, num_epochs=1, gamma=0.0)
              .learners(num_learners=0)
              .debugging(seed=0))
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 256
        policy = rllib_policy(algo)
        evaluated = proteus_env.evaluate_policy(policy, ENV_CONFIG, seeds=1, n_taus=4, predictive=False, dynamic=False, sessions=False,
                                                n_boot=20, progress=False, name="rllib_ppo")
    finally:
        algo.stop()
    row = evaluated.summary.set_index("router").loc["rllib_ppo"]
    assert 0.0 <= row["floor_compliance"] <= 1.0 and row["usd_per_1k"] > 0
    mu = evaluated.results.loc[evaluated.results["router"] == "rllib_ppo", "mean_mu"]
    assert mu.between(0, 1).all()  # actions mapped back from RLlib's normalized [-1, 1] onto the Box
