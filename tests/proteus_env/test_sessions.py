"""Sessions as sequential problems (issue 12): feedback, session state, τ schedules, task mixes, budgets."""

import math
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from proteus_env import ProteusRoutingEnv, ProteusVectorEnv
from proteus_env.session import SESSION_KEYS, SessionLedger, TaskMix, session_features, tau_path

SMALL = {"benchmark_kwargs": {"n_queries": 3000}, "session_length": 12}
FULL = {"session_state": True, "feedback_delay": 2, "feedback_rate": 0.6}


def _run(env, actions, seed=0, options=None):
    obs, _ = env.reset(seed=seed, options=options)
    observations, infos, rewards = [obs], [], []
    for action in actions:
        obs, reward, terminated, _, info = env.step(action)
        observations.append(obs)
        infos.append(info)
        rewards.append(reward)
        if terminated:
            break
    return observations, rewards, infos


def test_defaults_keep_the_observation_space_and_trajectory():
    plain = ProteusRoutingEnv(**SMALL)
    explicit = ProteusRoutingEnv(**SMALL, session_state=False, feedback_delay=0, feedback_rate=1.0, tau_schedule="constant",
                                 task_mix=None, budget_usd_per_1k=None)
    assert sorted(plain.observation_space.spaces) == ["cost_hat", "lambda", "p_hat", "tau"]
    assert explicit.observation_space == plain.observation_space
    assert explicit.constructor_kwargs() == plain.constructor_kwargs()
    actions = [np.array([m], dtype=np.float32) for m in np.linspace(0, 1, 12)]
    a, b = _run(plain, actions), _run(explicit, actions)
    for obs_a, obs_b in zip(a[0], b[0], strict=True):
        assert all(np.array_equal(obs_a[k], obs_b[k]) for k in obs_a)
    assert a[1] == b[1] and a[2] == b[2]
    assert "costs" not in a[2][0]


def test_session_state_adds_keys_and_the_checkers_pass():
    env = ProteusRoutingEnv(**SMALL, **FULL, tau_schedule="cyclic", task_mix="drift", budget_usd_per_1k=1.0)
    assert set(env.observation_space.spaces) == {"p_hat", "cost_hat", "tau", "lambda", "lambda_budget", *SESSION_KEYS, "spend"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)


def test_running_state_follows_the_delay_by_hand():
    env = ProteusRoutingEnv(**SMALL, session_state=True, feedback_delay=2, action_mode="model")
    obs, _ = env.reset(seed=3, options={"tau": 0.5})
    assert obs["running_accuracy"][0] == np.float32(0.5) and obs["accuracy_slack"][0] == 0.0  # τ before the first reveal
    assert obs["progress"][0] == 0.0 and obs["revealed"][0] == 0.0
    scores = []
    for t in range(12):
        obs, _, terminated, _, info = env.step(t % 11)
        scores.append(info["score"])
        served = t + 1
        shown = scores[: max(served - 2, 0)]
        expected = np.mean(shown) if shown else 0.5
        assert obs["running_accuracy"][0] == np.float32(expected)
        assert obs["accuracy_slack"][0] == np.float32(expected - 0.5)
        assert obs["revealed"][0] == np.float32(len(shown) / served)
        assert obs["progress"][0] == np.float32(served / 12)
    assert terminated


def test_feedback_rate_is_drawn_with_np_random():
    env = ProteusRoutingEnv(**{**SMALL, "session_length": 400}, session_state=True, feedback_rate=0.3)
    env.reset(seed=1)
    first = list(env._revealed)
    env.reset(seed=1)
    assert env._revealed == first
    assert 0.2 < np.mean(first) < 0.4
    none = ProteusRoutingEnv(**SMALL, session_state=True, feedback_rate=0.0, action_mode="model")
    observations, _, _ = _run(none, [0] * 12)
    assert all(o["revealed"][0] == 0.0 and o["accuracy_slack"][0] == 0.0 for o in observations)


def _unrevealed_variant(env, rows, models, revealed, t):
    """A copy of the scores in which every outcome not revealed by step ``t`` is flipped."""
    shown = {(rows[j], models[j]) for j in range(t - 1 - env.feedback_delay + 1) if revealed[j]}
    scores = env._scores.copy()
    changed = 0
    for j in range(len(rows)):
        pair = (rows[j], models[j])
        if pair not in shown and not (j <= t - 1 - env.feedback_delay and revealed[j]):
            scores[pair] = 1.0 - scores[pair]
            changed += 1
    return scores, changed


@pytest.mark.parametrize("vector", [False, True])
def test_no_leakage_observation_ignores_unrevealed_outcomes(vector):
    kwargs = {**SMALL, "session_length": 30, "session_state": True, "feedback_delay": 3, "feedback_rate": 0.5, "action_mode": "model"}
    models = [(3 * j) % 11 for j in range(30)]
    t_check = 20

    def run(scores=None):
        env = ProteusVectorEnv(1, **kwargs) if vector else ProteusRoutingEnv(**kwargs)
        base = env.template if vector else env
        if scores is not None:
            base._scores = scores
        obs, _ = env.reset(seed=7, options={"tau": 0.5})
        out = [obs]
        for j in range(t_check):
            obs, *_ = env.step(np.array([models[j]]) if vector else models[j])
            out.append(obs)
        rows = (env._session[0] if vector else np.asarray(env._session)).tolist()
        revealed = (env._revealed[0] if vector else np.asarray(env._revealed)).tolist()
        return base, out, rows, revealed

    base, reference, rows, revealed = run()
    altered, changed = _unrevealed_variant(base, rows, models, revealed, t_check)
    assert changed > 10
    _, again, rows_again, _ = run(altered)
    assert rows_again == rows
    for before, after in zip(reference, again, strict=True):
        for key in before:
            np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    # The test has power: flipping one revealed outcome does change the observation at t.
    j = next(j for j in range(t_check - 1 - 3) if revealed[j])
    flipped = base._scores.copy()
    flipped[rows[j], models[j]] = 1.0 - flipped[rows[j], models[j]]
    _, changed_run, _, _ = run(flipped)
    assert changed_run[t_check]["running_accuracy"] != reference[t_check]["running_accuracy"]


CONFIGS = [
    {**FULL},
    {**FULL, "feedback_delay": 0, "feedback_rate": 1.0, "tau_schedule": "step"},
    {**FULL, "tau_schedule": "drift", "task_mix": "drift"},
    {**FULL, "tau_schedule": "cyclic", "budget_usd_per_1k": 0.8, "reward_normalization": "one_plus_lambda"},
    {"tau_schedule": "drift", "quality_weight": "zero", "cost_weight": "one", "budget_usd_per_1k": 2.0},
    {**FULL, "tau_schedule": "constant", "budget_usd_per_1k": 1.5, "learn_gamma": True},
]


@pytest.mark.parametrize("extra", CONFIGS)
def test_vector_env_matches_the_single_env_exactly_with_sessions(extra):
    kwargs = {**SMALL, **extra}
    n, length = 4, SMALL["session_length"]
    venv = ProteusVectorEnv(n, **kwargs)
    width = 2 if extra.get("learn_gamma") else 1
    actions = [np.stack([np.linspace(0, 1, n) * ((t % 5) / 4)] * width, axis=1).astype(np.float32) for t in range(length)]
    venv.set_lambda_table([0.5, 1.5], [0.2, 0.5, 0.9])
    if extra.get("budget_usd_per_1k"):
        venv.set_lambda_table([0.3, 2.0], [0.2, 0.5, 0.9], constraint="budget")
    obs, _ = venv.reset(seed=5)
    plan_rows = venv._session.copy()
    plan_tau = None if venv._tau_path is None else venv._tau_path.copy()
    plan_start = venv._tau.copy()
    plan_revealed = None if venv._revealed is None else venv._revealed.copy()
    vec_obs, vec_rewards, vec_infos, vec_terminated = [obs], [], [], []
    for action in actions:
        obs, reward, terminated, _, info = venv.step(action)
        vec_obs.append(info["final_obs"] if terminated[0] else obs)
        vec_infos.append(info["final_info"] if terminated[0] else info)
        vec_rewards.append(reward)
        vec_terminated.append(terminated)
    assert vec_terminated[-1].all()
    single = ProteusRoutingEnv(**kwargs)
    single.set_lambda_table([0.5, 1.5], [0.2, 0.5, 0.9])
    if extra.get("budget_usd_per_1k"):
        single.set_lambda_table([0.3, 2.0], [0.2, 0.5, 0.9], constraint="budget")
    for i in range(n):
        options = {"tau": float(plan_start[i]), "rows": plan_rows[i]}
        if plan_tau is not None:
            options["tau_path"] = plan_tau[i]
        if plan_revealed is not None:
            options["revealed"] = plan_revealed[i]
        obs, _ = single.reset(seed=0, options=options)
        for key in obs:
            assert np.array_equal(obs[key], vec_obs[0][key][i]), key
        for t in range(length):
            obs, reward, terminated, _, info = single.step(actions[t][i])
            assert reward == vec_rewards[t][i]
            assert terminated == vec_terminated[t][i]
            assert set(obs) == set(vec_obs[t + 1])
            for key in obs:
                assert np.array_equal(obs[key], vec_obs[t + 1][key][i]), (t, key)
            assert set(info) | {"_" + k for k in info} == set(vec_infos[t])
            for key, value in info.items():
                if isinstance(value, dict):
                    assert all(vec_infos[t][key][name][i] == v for name, v in value.items()), key
                else:
                    assert vec_infos[t][key][i] == value, (t, key)


def test_tau_schedules_move_tau_lambda_and_info_within_a_session():
    env = ProteusRoutingEnv(**{**SMALL, "session_length": 10}, tau_schedule="step")
    env.set_lambda_table([0.0, 4.0], [0.3, 0.5, 0.7])
    obs, info = env.reset(seed=0, options={"tau": 0.35, "tau_end": 0.65})
    taus, lambdas, obs_taus = [], [], [obs["tau"][0]]
    for _ in range(10):
        obs, _, terminated, _, info = env.step(np.array([0.5], dtype=np.float32))
        taus.append(info["tau"])
        lambdas.append(info["lambda"])
        obs_taus.append(obs["tau"][0])
    assert taus == [0.35] * 5 + [0.65] * 5
    assert lambdas == [env.lambda_for(0.35)] * 5 + [env.lambda_for(0.65)] * 5
    assert obs_taus[:5] == [np.float32(0.35)] * 5 and obs_taus[5] == np.float32(0.65)
    assert info["session_tau"] == pytest.approx(0.5) and info["is_success"] == (info["session_accuracy"] >= info["session_tau"])
    drift = ProteusRoutingEnv(**{**SMALL, "session_length": 10}, tau_schedule=lambda p: 0.3 + 0.4 * p)
    _, _, infos = _run(drift, [np.array([0.5], dtype=np.float32)] * 10)
    assert [i["tau"] for i in infos] == pytest.approx([0.3 + 0.04 * t for t in range(10)])
    np.testing.assert_allclose(tau_path("drift", 0.3, 0.7, 5), [0.3, 0.4, 0.5, 0.6, 0.7])
    np.testing.assert_allclose(tau_path("cyclic", np.array([0.2, 0.4]), np.array([0.6, 0.8]), 4)[:, 0], [0.4, 0.6])


def test_task_mix_draws_rows_from_the_mixture():
    env = ProteusRoutingEnv(**{**SMALL, "session_length": 200}, task_mix={"mmlu": 1.0})
    env.reset(seed=0)
    assert set(env.benchmark.task[env._session]) == {"mmlu"}
    env = ProteusRoutingEnv(**{**SMALL, "session_length": 200}, task_mix=[{"mmlu": 1.0}, {"hellaswag": 1.0}])
    env.reset(seed=0)
    tasks = env.benchmark.task[env._session]
    assert (tasks[:40] == "mmlu").mean() > 0.7 and (tasks[-40:] == "hellaswag").mean() > 0.7
    assert set(tasks) <= {"mmlu", "hellaswag"}
    mix = TaskMix("uniform", env.benchmark.task, env.session_rows)
    rows = mix.draw(np.random.default_rng(0), 3, 800)
    assert rows.shape == (3, 800) and np.isin(rows, env.session_rows).all()
    counts = np.array([(env.benchmark.task[rows] == name).mean() for name in mix.names])
    assert np.all(np.abs(counts - 1.0 / len(mix.names)) < 0.05)


def test_budget_is_a_second_constraint_with_its_own_lambda():
    env = ProteusRoutingEnv(**SMALL, session_state=True, budget_usd_per_1k=0.5, reward_normalization="one_plus_lambda")
    env.set_lagrange_multiplier(1.0)
    env.set_lagrange_multiplier(2.0, constraint="budget")
    obs, _ = env.reset(seed=0, options={"tau": 0.6})
    assert obs["lambda_budget"][0] == 2.0 and obs["spend"][0] == 0.0
    spent = 0.0
    for _ in range(12):
        obs, reward, terminated, _, info = env.step(np.array([0.7], dtype=np.float32))
        spent += info["usd_cost"]
        over = info["usd_cost"] * (1000.0 / 0.5) - 1.0
        assert info["costs"] == {"accuracy": info["cost"], "budget": over}
        assert info["cost"] == 0.6 - info["score"]
        c_norm = env.head_fit.cost_norm[env._session[env._t - 1], info["model_index"]]
        w_q, w_c = env.reward_weights(0.6)
        expected = (w_q * info["score"] - w_c * c_norm + 1.0 * (info["score"] - 0.6) - 2.0 * over) / 4.0
        assert reward == pytest.approx(expected)
        assert obs["spend"][0] == np.float32(spent / (0.5 * 12 / 1000))
    assert terminated and info["budget_met"] == (info["session_usd_cost"] <= 0.5 * 12 / 1000)
    assert env.get_lambda_table(constraint="budget")[0].tolist() == [2.0]
    with pytest.raises(ValueError, match="budget"):
        ProteusRoutingEnv(**SMALL).set_lagrange_multiplier(1.0, constraint="budget")


def test_session_ledger_matches_the_env_computation():
    ledger = SessionLedger(10, session_budget=0.01)
    ids = [ledger.serve(usd) for usd in (0.001, 0.002, 0.003)]
    ledger.observe(ids[2], 1.0)
    ledger.observe(ids[0], 0.0)
    assert ledger.features(0.5) == session_features(3, 10, 2, 1.0, 0.5, 0.006, 0.01)
    assert ledger.features(0.5)["revealed"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="already observed"):
        ledger.observe(0, 1.0)
    with pytest.raises(ValueError, match="never served"):
        ledger.observe(5, 1.0)
    with pytest.raises(ValueError, match="score"):
        ledger.observe(1, math.nan)
    batch = session_features(np.array([3.0]), 10, np.array([2.0]), np.array([1.0]), np.array([0.5]), np.array([0.006]), 0.01)
    assert {k: float(v[0]) for k, v in batch.items()} == ledger.features(0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feedback_delay": float("nan")}, "feedback_delay.*nan"),
        ({"feedback_delay": -1}, "feedback_delay.*-1"),
        ({"feedback_delay": 1.5}, "feedback_delay.*1.5"),
        ({"feedback_rate": 1.2}, "feedback_rate.*1.2"),
        ({"feedback_rate": float("nan")}, "feedback_rate.*nan"),
        ({"tau_schedule": "sine"}, "tau_schedule.*sine"),
        ({"budget_usd_per_1k": 0.0}, "budget_usd_per_1k.*0.0"),
        ({"budget_usd_per_1k": float("inf")}, "budget_usd_per_1k.*inf"),
        ({"session_state": "yes"}, "session_state.*yes"),
        ({"task_mix": "shuffle"}, "task_mix.*shuffle"),
        ({"task_mix": {"poetry": 1.0}}, "task_mix.*poetry"),
        ({"task_mix": {"mmlu": -1.0}}, "task_mix.*-1"),
        ({"task_mix": {"mmlu": 0.0}}, "task_mix"),
    ],
)
def test_bad_session_arguments_raise_naming_argument_and_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProteusRoutingEnv(**SMALL, **kwargs)


def test_bad_session_options_raise():
    env = ProteusRoutingEnv(**SMALL, tau_schedule="drift", session_state=True)
    with pytest.raises(ValueError, match="options\\['rows'\\]"):
        env.reset(options={"rows": [1, 2, 3]})
    with pytest.raises(ValueError, match="options\\['tau_path'\\]"):
        env.reset(options={"tau_path": [1.5] * 12})
    with pytest.raises(ValueError, match="options\\['tau_end'\\]"):
        env.reset(options={"tau_end": float("nan")})
    with pytest.raises(ValueError, match="options\\['revealed'\\]"):
        env.reset(options={"revealed": [2] * 12})
    with pytest.raises(ValueError, match="tau_schedule.*progress"):
        ProteusRoutingEnv(**SMALL, tau_schedule=lambda p: 2.0).reset(seed=0)
    with pytest.raises(ValueError, match="constraint"):
        env.set_lambda_table([1.0], constraint="latency")
