import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import proteus_env
from proteus_env import ProteusRoutingEnv

SMALL = {"benchmark_kwargs": {"n_queries": 3000}}
# Warnings we accept, each for a stated reason; any other warning fails the checks.
SB3_ALLOWED = ("We recommend you to use a symmetric and normalized Box action space",)  # μ lives in [0, 1] by design
GYM_ALLOWED = ("A Box observation space maximum value is infinity", "A Box observation space minimum value is -infinity")  # raw z


def _check_without_unexpected_warnings(check, env, allowed=()):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(env)
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in allowed)]
    assert not unexpected, unexpected


def make(**kwargs):
    return ProteusRoutingEnv(**{**SMALL, **kwargs})


@pytest.mark.parametrize("kwargs", [{}, {"learn_gamma": True}, {"action_mode": "model"}, {"include_query": True}])
def test_gymnasium_and_sb3_checkers_pass(kwargs):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    allowed = GYM_ALLOWED if kwargs.get("include_query") else ()

    def made():  # through gym.make, so the checker also tests the render modes via the spec
        return gym.make("Proteus-Synthetic-v0", **SMALL, **kwargs).unwrapped

    _check_without_unexpected_warnings(check_env, made(), allowed)
    _check_without_unexpected_warnings(lambda e: sb3_check_env(e, warn=True), made(), SB3_ALLOWED + allowed)


def test_registered_synthetic_id_passes_checkers():
    env = gym.make("Proteus-Synthetic-v0")
    _check_without_unexpected_warnings(check_env, env.unwrapped)
    assert env.unwrapped.benchmark.n_queries == 36_497


def test_registered_ids_and_prefixed_id():
    for env_id in proteus_env.ENV_IDS:
        assert env_id in gym.registry
    proteus_env.register_envs()  # idempotent
    env = gym.make("proteus_env:Proteus-Synthetic-v0", **SMALL)
    assert isinstance(env.unwrapped, ProteusRoutingEnv)
    import json

    for env_id in proteus_env.ENV_IDS:
        json.dumps(gym.spec(env_id).kwargs)


def test_data_is_shared_not_copied_between_makes():
    a = gym.make("Proteus-Synthetic-v0", **SMALL).unwrapped
    b = gym.make("Proteus-Synthetic-v0", **SMALL).unwrapped
    assert a.benchmark is b.benchmark
    assert a.head_fit is b.head_fit


def test_observation_matches_the_head_and_tau_lambda():
    env = make()
    obs, info = env.reset(seed=1, options={"tau": 0.6})
    row = env._session[0]
    np.testing.assert_array_equal(obs["p_hat"], env.head_fit.p_hat[row])
    np.testing.assert_array_equal(obs["cost_hat"], env.head_fit.cost_hat[row])
    assert obs["tau"][0] == np.float32(0.6) and info["tau"] == 0.6
    assert obs["lambda"][0] == 0.0


def _rollout(env, seed, actions):
    out = []
    obs, info = env.reset(seed=seed)
    out.append((obs, info))
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, term, trunc, info))
        if term:
            break
    return out


def test_same_seed_same_trajectory_including_info():
    actions = [np.array([m], dtype=np.float32) for m in np.linspace(0, 1, 100)]
    a = _rollout(make(), 7, actions)
    b = _rollout(make(), 7, actions)
    c = _rollout(make(), 8, actions)
    assert gym.utils.env_checker.data_equivalence(a, b)
    assert not gym.utils.env_checker.data_equivalence(a, c)


def test_reward_and_info_against_hand_computed_values():
    env = make(action_mode="model", session_length=3, lambda_init=2.0)
    env.reset(seed=0, options={"tau": 0.5})
    row = env._session[0]
    _, reward, terminated, truncated, info = env.step(4)
    y = float(env.benchmark.scores[row, 4])
    c = float(env.head_fit.cost_norm[row, 4])
    assert reward == pytest.approx(0.5 * y - 0.5 * c + 2.0 * (y - 0.5))  # w_q = τ, w_c = 1 − τ, λ = 2
    assert info["cost"] == pytest.approx(0.5 - y)
    assert info["score"] == y and info["model_index"] == 4 and info["model"] == env.models[4]
    assert info["usd_cost"] == pytest.approx(float(env.benchmark.costs[row, 4]))
    assert info["lambda"] == 2.0 and info["tau"] == 0.5
    assert not terminated and not truncated and "session_accuracy" not in info


def test_normalized_reward_divides_by_one_plus_lambda():
    plain = make(action_mode="model", session_length=3, lambda_init=3.0, quality_weight="zero", cost_weight="one")
    scaled = make(action_mode="model", session_length=3, lambda_init=3.0, quality_weight="zero", cost_weight="one",
                  reward_normalization="one_plus_lambda")
    for env in (plain, scaled):
        env.reset(seed=0, options={"tau": 0.5})
    row = plain._session[0]
    _, r_plain, *_ = plain.step(4)
    _, r_scaled, *_ = scaled.step(4)
    y, c = float(plain.benchmark.scores[row, 4]), float(plain.head_fit.cost_norm[row, 4])
    assert r_plain == pytest.approx(-c + 3.0 * (y - 0.5))
    assert r_scaled == pytest.approx((-c + 3.0 * (y - 0.5)) / 4.0)
    with pytest.raises(ValueError, match="reward_normalization"):
        make(reward_normalization="lambda")


def test_custom_reward_weights():
    env = make(action_mode="model", quality_weight=1.0, cost_weight="zero")
    env.reset(seed=0, options={"tau": 0.5})
    row = env._session[0]
    _, reward, *_ = env.step(2)
    assert reward == pytest.approx(float(env.benchmark.scores[row, 2]))


def test_mu_action_routes_like_the_head_and_session_ends_with_aggregates():
    env = make(session_length=5)
    env.reset(seed=3, options={"tau": 0.55})
    rows = list(env._session)
    scores, usd = [], []
    for t, action in enumerate([0.0, 0.25, 0.5, 0.75, 1.0]):
        _, _, terminated, truncated, info = env.step(np.array([action], dtype=np.float32))
        mu = env.head_fit.head.mu_from_action(np.float32(action))  # the action map, as the batched paths apply it
        expected = env.head_fit.head.route(env.head_fit.p_hat[[rows[t]]], env.head_fit.cost_hat[[rows[t]]], mu)[0]
        assert info["model_index"] == expected and info["mu"] == pytest.approx(mu)
        scores.append(info["score"])
        usd.append(info["usd_cost"])
        assert terminated == (t == 4) and not truncated
    assert info["session_accuracy"] == pytest.approx(np.mean(scores))
    assert info["session_usd_cost"] == pytest.approx(np.sum(usd))
    assert info["is_success"] == (np.mean(scores) >= 0.55)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.array([0.5], dtype=np.float32))


def test_learned_gamma_maps_onto_2_to_8():
    env = make(learn_gamma=True)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.5, 1.0], dtype=np.float32))
    assert info["gamma"] == pytest.approx(8.0)
    _, _, _, _, info = env.step(np.array([0.5, 0.0], dtype=np.float32))
    assert info["gamma"] == pytest.approx(2.0)


def test_lambda_table_reaches_the_next_observation():
    env = make(tau_range=(0.3, 0.8))
    env.reset(seed=0, options={"tau": 0.75})
    env.set_lambda_table([0.1, 0.2, 0.3, 0.4, 0.5])  # bins of width 0.1 over [0.3, 0.8]
    obs, _, _, _, info = env.step(np.array([0.5], dtype=np.float32))
    assert obs["lambda"][0] == pytest.approx(0.5)
    assert env.lambda_for(0.31) == pytest.approx(0.1) and env.lambda_for(0.45) == pytest.approx(0.2)  # end, centre
    assert env.lambda_for(0.50) == pytest.approx(0.25)  # halfway between the centres 0.45 and 0.55: continuous in τ
    env.set_lagrange_multiplier(1.5)
    obs, *_ = env.step(np.array([0.5], dtype=np.float32))
    assert obs["lambda"][0] == pytest.approx(1.5)


def test_tau_is_drawn_from_tau_range_by_default():
    env = make(tau_range=(0.4, 0.6))
    taus = [env.reset(seed=s)[1]["tau"] for s in range(50)]
    assert min(taus) >= 0.4 and max(taus) <= 0.6 and np.std(taus) > 0.03


def test_default_tau_range_is_the_feasible_range():
    env = make()
    low, high = env.tau_range
    assert 0.2 < low < 0.45 and 0.7 < high < 0.85


@pytest.mark.parametrize("action", [np.array([np.nan]), np.array([np.inf]), np.array([1.5]), np.array([-0.1]), np.array([0.1, 0.2]), "x"])
def test_bad_actions_raise_value_error(action):
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"[Aa]ction"):
        env.step(action)


@pytest.mark.parametrize("action", [11, -1, 2.5, np.nan])
def test_bad_model_actions_raise_value_error(action):
    env = make(action_mode="model")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"[Aa]ction"):
        env.step(action)


@pytest.mark.parametrize(
    ("tau", "message"),
    [(1.2, r"\[0, 1\]"), (-0.1, r"\[0, 1\]"), (float("nan"), r"options\['tau'\].*nan"), ("x", r"options\['tau'\]"),
     (0.95, "tau_range"), (0.1, "tau_range")],
)
def test_bad_tau_raises_with_value_and_range(tau, message):
    env = make(tau_range=(0.3, 0.8))
    with pytest.raises(ValueError, match=message):
        env.reset(options={"tau": tau})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"session_length": 1}, "session_length"),
        ({"split": "dev"}, "split"),
        ({"tau_range": (0.8, 0.3)}, "tau_range"),
        ({"tau_range": (0.3, 1.3)}, "tau_range"),
        ({"action_mode": "logits"}, "action_mode"),
        ({"render_mode": "human"}, "render_mode"),
        ({"quality_weight": "tau_squared"}, "quality_weight"),
        ({"lambda_init": -1.0}, "λ"),
        ({"lambda_max": float("inf")}, "lambda_max"),
        ({"session_length": 2.5}, "session_length"),
        ({"session_length": "8"}, "session_length"),
        ({"tau_range": (0.3, float("nan"))}, "tau_range"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


@pytest.mark.parametrize(
    ("values", "edges", "message"),
    [
        ([np.nan], None, r"λ `values`.*entry 0 is nan"),
        ([-1.0], None, r"λ `values`.*lambda_max=10.0.*entry 0 is -1.0"),
        ([11.0], None, r"entry 0 is 11.0"),
        ([], None, "empty"),
        ([1.0, 2.0], [0.3, 0.2, 0.8], r"`bin_edges` must be strictly increasing; entry 1 \(0.2\)"),
        ([1.0, 2.0], [0.3, 0.8], r"`bin_edges` must hold 3 edges"),
        ([0.1, 0.2], [-np.inf, 0.5, np.inf], r"`bin_edges` must be finite; entry 0 is -inf"),
        ([0.1, 0.2], [0.2, np.nan, 0.8], r"`bin_edges` must be finite; entry 1 is nan"),
    ],
)
def test_bad_lambda_tables_raise_naming_field_and_value(values, edges, message):
    env = make()
    env.reset(seed=0, options={"tau": 0.5})
    before = env.get_lambda_table()
    with pytest.raises(ValueError, match=message):
        env.set_lambda_table(values, edges)
    after = env.get_lambda_table()  # a refused table changes nothing
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_non_finite_bin_edges_never_reach_the_observation():
    env = make()
    env.reset(seed=0, options={"tau": 0.5})
    with pytest.raises(ValueError, match="bin_edges"):
        env.set_lambda_table([0.1, 0.2], [-np.inf, 0.5, np.inf])
    obs, *_ = env.step(np.array([0.5], dtype=np.float32))
    assert np.isfinite(obs["lambda"]).all() and obs["lambda"][0] == 0.0


def test_lambda_for_accepts_arrays_and_reward_weights_follow_the_schedules():
    env = make(tau_range=(0.3, 0.8), quality_weight="one", cost_weight=0.25)
    env.set_lambda_table([1.0, 3.0], [0.0, 0.5, 1.0])
    assert env.lambda_for(0.5) == 2.0 and isinstance(env.lambda_for(0.5), float)
    np.testing.assert_array_equal(env.lambda_for(np.array([0.1, 0.5, 0.9])), [1.0, 2.0, 3.0])
    assert env.reward_weights(0.4) == (1.0, 0.25)
    assert env.check_tau(0.5) == 0.5
    with pytest.raises(ValueError, match="tau_range"):
        env.check_tau(0.9)


def test_pickle_round_trip_continues_identically():
    env = make()
    env.reset(seed=5)
    env.step(np.array([0.3], dtype=np.float32))
    clone = pickle.loads(pickle.dumps(env))
    for mu in (0.1, 0.9, 0.5):
        a = env.step(np.array([mu], dtype=np.float32))
        b = clone.step(np.array([mu], dtype=np.float32))
        assert gym.utils.env_checker.data_equivalence(a, b)


def test_render_ansi():
    env = make(render_mode="ansi")
    env.reset(seed=0, options={"tau": 0.5})
    assert "tau=0.500" in env.render()
    env.step(np.array([0.5], dtype=np.float32))
    text = env.render()
    assert f"mu={env.head_fit.head.mu_from_action(0.5):.3f}" in text and "score=" in text  # μ after the action map
    assert make().render() is None


def test_train_holdout_keeps_the_duals_rows_out_of_training_sessions():
    from proteus_env.policy_eval import dual_and_calibration_rows, train_holdout_rows

    env = make(train_holdout=0.1, session_length=50)
    held = train_holdout_rows(env.benchmark, seed=0, fraction=0.1)
    train = env.benchmark.split_index("train")
    assert held.size == round(0.1 * train.size) and np.isin(held, train).all()
    assert env.session_rows.size == train.size - held.size and not np.isin(env.session_rows, held).any()
    for seed in range(5):
        env.reset(seed=seed)
        assert not np.isin(env._session, held).any()
    dual, calibration = dual_and_calibration_rows(env.benchmark, seed=0, train_holdout=0.1)
    assert np.array_equal(dual, held) and np.array_equal(calibration, env.benchmark.split_index("val"))
    halves = dual_and_calibration_rows(env.benchmark, seed=0)  # without a holdout: validation, half each
    assert not np.intersect1d(*halves).size and halves[0].size + halves[1].size == env.benchmark.split_index("val").size
    assert np.array_equal(make(split="val", train_holdout=0.1).session_rows, env.benchmark.split_index("val"))
    with pytest.raises(ValueError, match="train_holdout"):
        make(train_holdout=1.0)
