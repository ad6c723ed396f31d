"""Every registered environment passes the same checks.

The ids come from the registry (``proteus_env.ENV_IDS``), so a newly registered environment is
tested without touching this file; it only needs small data for its benchmark in
``_small_data_kwargs``, or the test fails and says so.
"""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence
from sprout_fixture import MODELS_13, write_sprout
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

import proteus_env

# Warnings we accept, each for a stated reason; any other warning fails the check.
ALLOWED_WARNINGS = ("We recommend you to use a symmetric and normalized Box action space",)  # μ lives in [0, 1] by design


def _small_data_kwargs(benchmark, request, tmp_path_factory):
    """Keyword arguments that make an environment of ``benchmark`` load small data."""
    if benchmark == "synthetic":
        return {"benchmark_kwargs": {"n_queries": 3000}}
    if benchmark == "routerbench":
        return {"data_path": str(request.getfixturevalue("routerbench_sample"))}  # skips when absent
    if benchmark == "sprout":
        root = tmp_path_factory.getbasetemp() / "sprout13"
        if not root.exists():
            write_sprout(root, MODELS_13, sizes={"train": 120, "val": 40, "test": 40})
        return {"data_path": str(root)}
    pytest.fail(f"No small data for benchmark {benchmark!r}: add it to _small_data_kwargs to test its environment.")


def test_every_registered_id_is_in_the_gymnasium_registry():
    assert proteus_env.ENV_IDS
    for env_id in proteus_env.ENV_IDS:
        assert gym.spec(env_id).kwargs == proteus_env.ENV_IDS[env_id]


@pytest.fixture(params=sorted(proteus_env.ENV_IDS))
def env_spec(request, tmp_path_factory, monkeypatch):
    """(id, kwargs) of one registered environment on small data."""
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path_factory.getbasetemp() / "proteus_home"))
    env_id = request.param
    kwargs = _small_data_kwargs(gym.spec(env_id).kwargs["benchmark"], request, tmp_path_factory)
    return env_id, {**kwargs, "session_length": 8}


def _no_unexpected_warnings(check):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check()
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in ALLOWED_WARNINGS)]
    assert not unexpected, unexpected


def test_gymnasium_and_sb3_checkers_pass_without_unexpected_warnings(env_spec):
    env_id, kwargs = env_spec
    _no_unexpected_warnings(lambda: check_env(gym.make(env_id, **kwargs).unwrapped))
    _no_unexpected_warnings(lambda: sb3_check_env(gym.make(env_id, **kwargs).unwrapped, warn=True))


def _rollout(env, seed):
    out = [env.reset(seed=seed)]
    for mu in np.linspace(0.0, 1.0, 8):
        out.append(env.step(np.array([mu], dtype=np.float32)))
    return out


def test_same_seed_same_trajectory_and_pickle_round_trip(env_spec):
    env_id, kwargs = env_spec
    a, b = gym.make(env_id, **kwargs).unwrapped, gym.make(env_id, **kwargs).unwrapped
    assert data_equivalence(_rollout(a, 3), _rollout(b, 3))
    a.reset(seed=5)
    clone = pickle.loads(pickle.dumps(a))
    for mu in (0.2, 0.8):
        assert data_equivalence(a.step(np.array([mu], np.float32)), clone.step(np.array([mu], np.float32)))


@pytest.mark.parametrize("action", [np.array([np.nan]), np.array([1.5]), np.array([-0.1])])
def test_bad_actions_raise(env_spec, action):
    env_id, kwargs = env_spec
    env = gym.make(env_id, **kwargs).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="μ"):
        env.step(action)


def test_lambda_reaches_the_env_through_sb3_wrappers(env_spec):
    env_id, kwargs = env_spec
    venv = make_vec_env(env_id, n_envs=2, seed=0, env_kwargs={**kwargs, "render_mode": None})
    venv.reset()
    venv.env_method("set_lagrange_multiplier", 1.25)
    obs, *_ = venv.step(np.full((2, 1), 0.5, dtype=np.float32))
    np.testing.assert_allclose(obs["lambda"], 1.25)
    venv.close()
