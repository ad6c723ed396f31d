"""The environment inside vector envs and subprocesses."""

import multiprocessing as mp

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

SMALL = {"benchmark_kwargs": {"n_queries": 3000}, "session_length": 10}
SB3_KWARGS = {**SMALL, "render_mode": None}  # SB3's make_vec_env asks for rgb_array otherwise


def _make_in_child(queue):
    env = gym.make("proteus_env:Proteus-Synthetic-v0", **SMALL)
    obs, _ = env.reset(seed=0)
    queue.put(sorted(obs))


def test_spawned_subprocess_can_make_by_prefixed_id():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_make_in_child, args=(queue,))
    process.start()
    keys = queue.get(timeout=120)
    process.join(timeout=60)
    assert process.exitcode == 0
    assert keys == ["cost_hat", "lambda", "p_hat", "tau"]


def test_gymnasium_make_vec_steps_and_autoresets():
    envs = gym.make_vec("Proteus-Synthetic-v0", num_envs=3, vectorization_mode="sync", **SMALL)
    obs, _ = envs.reset(seed=0)
    assert obs["p_hat"].shape == (3, 11)
    for _ in range(10):
        obs, reward, terminated, truncated, info = envs.step(np.full((3, 1), 0.5, dtype=np.float32))
    assert terminated.all() and reward.shape == (3,)
    envs.close()


@pytest.mark.parametrize("vec_env_cls", [DummyVecEnv, SubprocVecEnv])
def test_env_method_reaches_the_unwrapped_env_through_monitor(vec_env_cls):
    kwargs = {"vec_env_cls": vec_env_cls}
    if vec_env_cls is SubprocVecEnv:
        kwargs["vec_env_kwargs"] = {"start_method": "spawn"}
    venv = make_vec_env("proteus_env:Proteus-Synthetic-v0", n_envs=2, seed=0, env_kwargs=SB3_KWARGS, **kwargs)
    try:
        venv.reset()
        venv.env_method("set_lagrange_multiplier", 2.5)
        obs, *_ = venv.step(np.full((2, 1), 0.5, dtype=np.float32))
        np.testing.assert_allclose(obs["lambda"], 2.5)
        values = venv.env_method("get_lambda_table")
        assert all(v[0][0] == 2.5 for v in values)
        # set_attr stops at the Monitor wrapper: this is why the callback must use env_method.
        venv.set_attr("_lambda", 9.0)
        obs, *_ = venv.step(np.full((2, 1), 0.5, dtype=np.float32))
        np.testing.assert_allclose(obs["lambda"], 2.5)
    finally:
        venv.close()


def test_make_vec_env_default_render_mode_falls_back_without_rendering():
    with pytest.warns(UserWarning, match="rgb_array"):  # gymnasium's own warning on the first try
        venv = make_vec_env("Proteus-Synthetic-v0", n_envs=1, env_kwargs=SMALL)
    venv.reset()
    assert venv.env_method("render")[0] is None
    venv.close()


def test_batched_vector_env_matches_the_single_env():
    from proteus_env import ProteusRoutingEnv, ProteusVectorEnv

    venv = gym.make_vec("Proteus-Synthetic-v0", num_envs=4, vectorization_mode="vector_entry_point", **SMALL)
    assert isinstance(venv, ProteusVectorEnv)
    obs, info = venv.reset(seed=0, options={"tau": 0.6})
    single = ProteusRoutingEnv(**SMALL)
    single.reset(seed=0, options={"tau": 0.6})
    venv.set_lagrange_multiplier(1.0)
    single.set_lagrange_multiplier(1.0)
    for t in range(10):
        mu = np.linspace(0, 1, 4)[:, None]
        rows = venv._session[:, t].copy()
        obs, reward, terminated, truncated, info = venv.step(mu)
        for i in range(4):
            single._session = [int(rows[i])] * 10  # replay the same query through the single env
            single._t = 0
            _, r, *_, single_info = single.step(mu[i].astype(np.float32))
            step_info = info["final_info"] if terminated[0] else info
            assert step_info["model_index"][i] == single_info["model_index"]
            assert reward[i] == pytest.approx(r)
    assert terminated.all() and "session_accuracy" in info["final_info"]
    assert obs["p_hat"].shape == (4, 11) and venv.observation_space.contains(obs)


@pytest.mark.parametrize("actions", [np.full((4, 1), np.nan), np.full((4, 1), 1.2), np.zeros((3, 1))])
def test_batched_vector_env_rejects_bad_actions(actions):
    from proteus_env import ProteusVectorEnv

    venv = ProteusVectorEnv(4, **SMALL)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="[Aa]ction"):
        venv.step(actions)


def test_batched_vector_env_rejects_misuse():
    from proteus_env import ProteusVectorEnv

    venv = ProteusVectorEnv(3, **SMALL)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros((3, 1)))
    venv.reset(seed=np.int64(4))  # numpy integer seeds work
    with pytest.raises(ValueError, match="options"):
        venv.reset(options={"tau": [0.5, 0.6]})
    with pytest.raises(ValueError, match="render"):
        ProteusVectorEnv(2, render_mode="ansi", **SMALL)
    _, _, _, _, info = venv.step(np.full((3, 1), 0.5))
    assert info["_score"].all() and info["score"].shape == (3,)
