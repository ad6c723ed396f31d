"""BetaActorCriticPolicy and ProteusFeaturesExtractor with SB3 PPO / A2C."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.envs import IdentityEnvBox
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.utils import obs_as_tensor

import proteus_env  # noqa: F401  (registers the ids)
from agents.proteus.distributions import BetaDistribution
from agents.proteus.policies import BetaActorCriticPolicy, ProteusFeaturesExtractor

ENV_KWARGS: dict[str, Any] = {"benchmark_kwargs": {"n_queries": 3000}, "session_length": 16}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    th.set_num_threads(1)


@pytest.fixture(scope="module")
def make_env() -> Callable[..., gym.Env]:
    def factory(**kwargs: Any) -> gym.Env:
        return gym.make("Proteus-Synthetic-v0", **{**ENV_KWARGS, **kwargs})

    return factory


def _observations(env: gym.Env, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` real observations of ``env`` stacked into a batch, with varied τ and λ."""
    rng = np.random.default_rng(seed)
    rows = []
    obs, _ = env.reset(seed=seed)
    for _ in range(n):
        obs, _, terminated, _, _ = env.step(env.action_space.sample())
        if terminated:
            obs, _ = env.reset()
        rows.append(obs)
    batch = {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    batch["lambda"] = rng.uniform(0, 5, size=(n, 1)).astype(np.float32)
    return batch


# ---------------------------------------------------------------- construction


def test_build_creates_a_beta_head_and_no_gaussian_parameters(make_env: Callable[..., gym.Env]) -> None:
    model = PPO(BetaActorCriticPolicy, make_env(learn_gamma=True), n_steps=64, seed=0, device="cpu")
    policy = model.policy
    assert isinstance(policy.action_dist, BetaDistribution)
    assert policy.action_dist.action_dim == 2
    assert isinstance(policy.action_net, th.nn.Linear) and policy.action_net.out_features == 4
    names = [name for name, _ in policy.named_parameters()]
    assert not hasattr(policy, "log_std")
    assert not any("log_std" in name for name in names)
    assert isinstance(policy.features_extractor, ProteusFeaturesExtractor)


def test_optimizer_covers_every_parameter_exactly_once(make_env: Callable[..., gym.Env]) -> None:
    for share in (True, False):
        model = PPO(
            BetaActorCriticPolicy, make_env(), n_steps=64, seed=0, device="cpu",
            policy_kwargs={"share_features_extractor": share},
        )
        policy = model.policy
        in_optimizer = [id(p) for group in policy.optimizer.param_groups for p in group["params"]]
        assert len(in_optimizer) == len(set(in_optimizer))
        assert set(in_optimizer) == {id(p) for p in policy.parameters()}
        assert set(in_optimizer) >= {id(p) for p in policy.action_net.parameters()}
        assert set(in_optimizer) >= {id(p) for p in policy.features_extractor.parameters()}


def test_orthogonal_init_keeps_the_beta_head_small_and_initial_actions_centered(make_env: Callable[..., gym.Env]) -> None:
    env = make_env()
    policy = PPO(BetaActorCriticPolicy, env, n_steps=64, seed=0, device="cpu").policy
    assert th.all(policy.action_net.bias == 0)
    assert policy.action_net.weight.abs().max() < 0.05  # gain 0.01, as SB3 does for the action layer
    obs = obs_as_tensor(_observations(env, 32), policy.device)
    with th.no_grad():
        mean = policy.get_distribution(obs).mode()
    assert th.allclose(mean, th.full_like(mean, 0.5), atol=0.05)


def test_use_sde_is_rejected(make_env: Callable[..., gym.Env]) -> None:
    with pytest.raises(ValueError, match="gSDE"):
        PPO(BetaActorCriticPolicy, make_env(), n_steps=64, use_sde=True, device="cpu")


@pytest.mark.parametrize(
    "action_space",
    [
        spaces.Box(-1.0, 1.0, (1,), np.float32),
        spaces.Box(0.0, 2.0, (2,), np.float32),
        spaces.Box(np.array([0.0, -1.0], np.float32), np.array([1.0, 1.0], np.float32)),
        spaces.Box(0, 1, (1,), np.int64),
        spaces.Discrete(3),
    ],
)
def test_action_spaces_other_than_the_unit_box_are_rejected(action_space: spaces.Space) -> None:
    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    with pytest.raises(ValueError, match="BetaActorCriticPolicy needs"):
        BetaActorCriticPolicy(observation_space, action_space, lambda _: 1e-3)


def test_non_unit_box_env_is_rejected_by_ppo() -> None:
    with pytest.raises(ValueError, match="low=0, high=1"):
        PPO(BetaActorCriticPolicy, IdentityEnvBox(low=-1.0, high=1.0), n_steps=64, device="cpu")


def test_flat_box_observations_use_the_flatten_extractor() -> None:
    policy = PPO(BetaActorCriticPolicy, IdentityEnvBox(low=0.0, high=1.0), n_steps=64, device="cpu").policy
    assert isinstance(policy.features_extractor, FlattenExtractor)
    assert policy.features_extractor_class is FlattenExtractor


def test_dict_observations_without_the_proteus_keys_are_rejected_with_a_hint() -> None:
    observation_space = spaces.Dict({"a": spaces.Box(0, 1, (2,), np.float32)})
    with pytest.raises(ValueError, match="features_extractor_class"):
        BetaActorCriticPolicy(observation_space, spaces.Box(0, 1, (1,), np.float32), lambda _: 1e-3)


# ---------------------------------------------------------------- features extractor


def test_extractor_features_dim_and_query_input(make_env: Callable[..., gym.Env]) -> None:
    env = make_env(include_query=True)
    space = env.observation_space
    extractor = ProteusFeaturesExtractor(space, hidden_dim=16, n_layers=2)
    assert extractor.features_dim == 18
    k, d = space["p_hat"].shape[0], space["query"].shape[0]
    assert extractor.query_net[0].in_features == 2 * k + d
    features = extractor(obs_as_tensor(_observations(env, 5), th.device("cpu")))
    assert features.shape == (5, 18)


def test_extractor_output_ends_with_tau_and_scaled_lambda(make_env: Callable[..., gym.Env]) -> None:
    env = make_env()
    extractor = ProteusFeaturesExtractor(env.observation_space, hidden_dim=8)
    obs = obs_as_tensor(_observations(env, 6), th.device("cpu"))
    features = extractor(obs)
    lambda_max = float(env.observation_space["lambda"].high[0])
    assert th.allclose(features[:, 8], obs["tau"][:, 0])
    assert th.allclose(features[:, 9], obs["lambda"][:, 0] / lambda_max)


def test_lambda_gates_the_query_features(make_env: Callable[..., gym.Env]) -> None:
    env = make_env()
    th.manual_seed(0)
    extractor = ProteusFeaturesExtractor(env.observation_space, hidden_dim=16)
    obs = obs_as_tensor(_observations(env, 8), th.device("cpu"))
    other = dict(obs)
    other["lambda"] = obs["lambda"] + 3.0
    with th.no_grad():
        h_before = extractor(obs)[:, :16]
        h_after = extractor(other)[:, :16]
        # same gated query features when only τ changes: τ is not in the gate
        other_tau = dict(obs)
        other_tau["tau"] = obs["tau"] * 0.5
        h_tau = extractor(other_tau)[:, :16]
    assert (h_before - h_after).abs().max() > 1e-3
    assert th.allclose(h_before, h_tau)
    # with a zero gate weight λ has no effect on h: the difference above came from the gate
    with th.no_grad():
        extractor.gate.weight.zero_()
        assert th.allclose(extractor(obs)[:, :16], extractor(other)[:, :16])


def test_extractor_looks_keys_up_by_name(make_env: Callable[..., gym.Env]) -> None:
    env = make_env()
    extractor = ProteusFeaturesExtractor(env.observation_space, hidden_dim=8)
    obs = obs_as_tensor(_observations(env, 4), th.device("cpu"))
    reordered = {key: obs[key] for key in reversed(list(obs))}
    assert list(reordered) != list(obs)
    assert th.equal(extractor(obs), extractor(reordered))


# ---------------------------------------------------------------- actions


def test_deterministic_action_is_the_beta_mean(make_env: Callable[..., gym.Env]) -> None:
    env = make_env(learn_gamma=True)
    model = PPO(BetaActorCriticPolicy, env, n_steps=64, seed=0, device="cpu")
    with th.no_grad():
        model.policy.action_net.weight.normal_(0, 1.0)  # away from the symmetric start
    obs = _observations(env, 10)
    actions, _ = model.predict(obs, deterministic=True)
    with th.no_grad():
        dist = model.policy.get_distribution(obs_as_tensor(obs, model.device))
    expected = (dist.alpha / (dist.alpha + dist.beta)).numpy()
    assert actions.shape == (10, 2)
    np.testing.assert_allclose(actions, expected, rtol=1e-6)
    sampled, _ = model.predict(obs, deterministic=False)
    assert not np.allclose(sampled, actions)


def test_rollout_log_prob_equals_the_update_log_prob_for_the_stored_actions(make_env: Callable[..., gym.Env]) -> None:
    env = make_env()
    policy = PPO(BetaActorCriticPolicy, env, n_steps=64, seed=0, device="cpu").policy
    eps = policy.action_dist.epsilon
    with th.no_grad():
        policy.action_net.bias.copy_(th.tensor([1e6, -1e6]))  # α ≈ 1e6, β = 1: samples within ε of 1
        obs = obs_as_tensor(_observations(env, 64), policy.device)
        actions, _, rollout_log_prob = policy(obs)
        stored = th.as_tensor(actions.numpy().astype(np.float32))  # what the rollout buffer keeps
        _, update_log_prob, entropy = policy.evaluate_actions(obs, stored)
        # actions exactly on the bounds (e.g. from a replayed or clipped action) stay finite too
        _, bound_log_prob, _ = policy.evaluate_actions(obs, th.cat([th.zeros(32, 1), th.ones(32, 1)]))
    assert (stored > 1 - eps).any()  # the clamp is in play
    assert th.isfinite(rollout_log_prob).all() and th.isfinite(entropy).all()
    assert th.equal(rollout_log_prob, update_log_prob)
    assert th.isfinite(bound_log_prob).all()


def test_saturated_heads_still_give_valid_actions(make_env: Callable[..., gym.Env]) -> None:
    env = make_env()
    model = PPO(BetaActorCriticPolicy, env, n_steps=64, seed=0, device="cpu")
    obs = _observations(env, 8)
    for bias in ([1e4, -1e4], [-1e4, 1e4], [1e4, 1e4]):
        with th.no_grad():
            model.policy.action_net.bias.copy_(th.tensor(bias))
        for deterministic in (True, False):
            actions, _ = model.predict(obs, deterministic=deterministic)
            assert np.isfinite(actions).all() and (actions >= 0).all() and (actions <= 1).all()


# ---------------------------------------------------------------- algorithms


def test_ppo_learns_the_identity_box_env() -> None:
    env = IdentityEnvBox(low=0.0, high=1.0, eps=0.05, ep_length=100)
    model = PPO(
        BetaActorCriticPolicy, env, n_steps=256, batch_size=64, learning_rate=3e-3, gamma=0.0, gae_lambda=1.0,
        seed=0, device="cpu",
    )
    states = np.linspace(0.0, 1.0, 101, dtype=np.float32)[:, None]

    def mean_error() -> float:
        actions, _ = model.predict(states, deterministic=True)
        return float(np.abs(actions - states).mean())

    before = mean_error()
    model.learn(total_timesteps=4096)
    after = mean_error()
    assert before > 0.2  # the untrained policy answers ~0.5 whatever the state
    assert after < 0.05


def test_a2c_runs_with_the_policy(make_env: Callable[..., gym.Env]) -> None:
    model = A2C(BetaActorCriticPolicy, make_env(), n_steps=16, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=320)
    assert model.num_timesteps == 320
    after = list(model.policy.parameters())
    assert all(th.isfinite(p).all() for p in after)
    assert any(not th.equal(b, a) for b, a in zip(before, after, strict=True))


def test_ppo_trains_on_the_two_dimensional_learn_gamma_env(make_env: Callable[..., gym.Env]) -> None:
    env = make_env(learn_gamma=True)
    assert env.action_space.shape == (2,)
    model = PPO(BetaActorCriticPolicy, env, n_steps=128, batch_size=64, n_epochs=2, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps == 256
    actions, _ = model.predict(_observations(env, 5), deterministic=False)
    assert actions.shape == (5, 2) and (actions >= 0).all() and (actions <= 1).all()
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


# ---------------------------------------------------------------- save / load


def test_save_load_round_trip_keeps_actions_and_constructor_parameters(make_env: Callable[..., gym.Env], tmp_path: Path) -> None:
    env = make_env()
    policy_kwargs = {"beta_epsilon": 1e-5, "features_extractor_kwargs": {"hidden_dim": 32}, "net_arch": {"pi": [32], "vf": [32]}}
    model = PPO(
        BetaActorCriticPolicy, env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu", policy_kwargs=policy_kwargs
    )
    model.learn(total_timesteps=64)
    obs = _observations(env, 20)
    expected, _ = model.predict(obs, deterministic=True)

    model.save(tmp_path / "model")
    loaded = PPO.load(tmp_path / "model", device="cpu")
    assert type(loaded.policy) is BetaActorCriticPolicy
    actions, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(actions, expected)
    assert loaded.policy.beta_epsilon == 1e-5
    assert loaded.policy.action_dist.epsilon == 1e-5
    assert loaded.policy.features_extractor.features_dim == 34
    original, restored = model.policy._get_constructor_parameters(), loaded.policy._get_constructor_parameters()
    for key in ("beta_epsilon", "features_extractor_class", "features_extractor_kwargs", "net_arch"):
        assert restored[key] == original[key]

    # the policy alone (BasePolicy.save / load goes through _get_constructor_parameters)
    model.policy.save(tmp_path / "policy.pt")
    alone = BetaActorCriticPolicy.load(tmp_path / "policy.pt", device="cpu")
    assert alone.beta_epsilon == 1e-5
    actions, _ = alone.predict(obs, deterministic=True)
    np.testing.assert_array_equal(actions, expected)


@pytest.mark.parametrize("keep", [None, ("progress", "accuracy_slack"), ("spend", "revealed", "lambda_budget")])
def test_extractor_is_built_from_any_subset_of_the_session_keys(make_env: Callable[..., gym.Env], keep: tuple[str, ...] | None) -> None:
    env = make_env(session_state=True, feedback_delay=2, feedback_rate=0.5, budget_usd_per_1k=1.0)
    base = {"p_hat", "cost_hat", "tau", "lambda"}
    names = set(env.observation_space.spaces) if keep is None else base | set(keep)
    space = spaces.Dict({key: env.observation_space[key] for key in names})
    extractor = ProteusFeaturesExtractor(space, hidden_dim=8)
    lambdas = [key for key in names if key.startswith("lambda")]
    context = [key for key in names if key not in base and not key.startswith("lambda")]
    assert extractor.features_dim == 8 + 1 + len(lambdas) + len(context)
    assert extractor.context_keys == ("tau", *sorted(context)) and extractor.lambda_keys == ("lambda", *sorted(set(lambdas) - {"lambda"}))
    batch = {key: value for key, value in _observations(env.unwrapped, 6).items() if key in names}
    with th.no_grad():
        features = extractor(obs_as_tensor(batch, th.device("cpu")))
    assert features.shape == (6, extractor.features_dim) and th.isfinite(features).all()
    np.testing.assert_allclose(features[:, 8].numpy(), batch["tau"][:, 0])  # then τ, λ̃ ..., the context keys in sorted order
    if context:
        np.testing.assert_allclose(features[:, -1].numpy(), batch[sorted(context)[-1]][:, 0], rtol=1e-6)


def test_ppo_trains_with_session_state_and_a_budget(make_env: Callable[..., gym.Env]) -> None:
    env = make_env(session_state=True, feedback_delay=3, feedback_rate=0.3, budget_usd_per_1k=1.0, tau_schedule="drift")
    model = PPO(BetaActorCriticPolicy, env, n_steps=32, batch_size=32, n_epochs=1, seed=0,
                policy_kwargs={"features_extractor_kwargs": {"hidden_dim": 8}})
    model.learn(64)
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
