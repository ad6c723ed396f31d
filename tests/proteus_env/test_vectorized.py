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


@pytest.mark.parametrize(
    ("extra", "actions"),
    [
        ({}, lambda t: np.linspace(0, 1, 4)[:, None]),
        ({"learn_gamma": True}, lambda t: np.stack([np.linspace(0, 1, 4), np.linspace(1, 0, 4) * (t % 3) / 2], axis=1)),
        ({"action_mode": "model"}, lambda t: (np.arange(4) * 3 + t) % 11),
        ({"reward_normalization": "one_plus_lambda", "quality_weight": "zero", "cost_weight": "one", "train_holdout": 0.1},
         lambda t: np.linspace(0, 1, 4)[:, None]),
    ],
)
def test_batched_vector_env_matches_the_single_env_exactly(extra, actions):
    from proteus_env import ProteusRoutingEnv, ProteusVectorEnv

    kwargs = {**SMALL, **extra}
    venv = gym.make_vec("Proteus-Synthetic-v0", num_envs=4, vectorization_mode="vector_entry_point", **kwargs)
    assert isinstance(venv, ProteusVectorEnv)
    obs, info = venv.reset(seed=0, options={"tau": 0.6})
    single = ProteusRoutingEnv(**kwargs)
    single.reset(seed=0, options={"tau": 0.6})
    venv.set_lambda_table([0.5, 1.5], [0.2, 0.5, 0.9])
    single.set_lambda_table([0.5, 1.5], [0.2, 0.5, 0.9])
    score_sum, usd_sum = np.zeros(4), np.zeros(4)
    for t in range(10):
        action = actions(t) if extra.get("action_mode") == "model" else actions(t).astype(np.float32)
        rows = venv._session[:, t].copy()
        obs, reward, terminated, truncated, info = venv.step(action)
        step_info = info["final_info"] if terminated[0] else info
        for i in range(4):
            # Replay the same query through the single env, in the same place of its session.
            single._session, single._t = [int(rows[i])] * 10, t
            single._score_sum, single._usd_sum = float(score_sum[i]), float(usd_sum[i])
            _, r, single_terminated, _, single_info = single.step(action[i])
            score_sum[i], usd_sum[i] = single._score_sum, single._usd_sum
            assert reward[i] == r  # bit-identical: one definition of the reward
            assert single_terminated == terminated[i]
            assert set(single_info) | {"_" + k for k in single_info} == set(step_info)
            for key, value in single_info.items():
                assert step_info[key][i] == value, key
    assert terminated.all() and "session_accuracy" in info["final_info"]
    assert obs["p_hat"].shape == (4, 11) and venv.observation_space.contains(obs)


def test_batched_vector_env_uses_the_templates_lambda_table():
    from proteus_env import ProteusVectorEnv

    venv = ProteusVectorEnv(2, **SMALL)
    venv.reset(seed=0, options={"tau": 0.5})
    venv.set_lambda_table([1.0, 3.0], [0.0, 0.5, 1.0])
    values, edges = venv.get_lambda_table()
    assert values.tolist() == [1.0, 3.0] and edges.tolist() == [0.0, 0.5, 1.0]
    _, _, _, _, info = venv.step(np.full((2, 1), 0.5))
    np.testing.assert_array_equal(info["lambda"], [2.0, 2.0])  # halfway between the centres 0.25 and 0.75
    with pytest.raises(ValueError, match="bin_edges"):
        venv.set_lambda_table([0.1, 0.2], [-np.inf, 0.5, np.inf])
    with pytest.raises(ValueError, match="options\\['tau'\\]"):
        venv.reset(options={"tau": [0.5, float("nan")]})


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
