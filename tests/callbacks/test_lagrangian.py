import glob

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from agents.proteus.policies import BetaActorCriticPolicy
from callbacks import MODEL_STATE_ATTRIBUTE, GradientAscentController, LagrangianDualCallback, PIDController, achievable_accuracy_range
from proteus_env import ProteusRoutingEnv
from proteus_env.env import lambda_at
from proteus_env.routing_head import fixed_mu_frontier

ENV_KWARGS = {"benchmark_kwargs": {"n_queries": 3000}, "session_length": 16, "tau_range": (0.3, 0.8), "render_mode": None}
PPO_KWARGS = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "gamma": 0.0, "device": "cpu", "seed": 0}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _venv(cls=DummyVecEnv, n_envs=2):
    kwargs = {"vec_env_kwargs": {"start_method": "spawn"}} if cls is SubprocVecEnv else {}
    return make_vec_env("proteus_env:Proteus-Synthetic-v0", n_envs=n_envs, seed=0, env_kwargs=ENV_KWARGS, vec_env_cls=cls, **kwargs)


@pytest.mark.parametrize("vec_env_cls", [DummyVecEnv, SubprocVecEnv])
def test_lambda_reaches_the_unwrapped_envs(vec_env_cls):
    venv = _venv(vec_env_cls)
    try:
        callback = LagrangianDualCallback(n_bins=5, eta=5.0, max_val_queries=300)
        model = PPO(BetaActorCriticPolicy, venv, **PPO_KWARGS)
        model.learn(128, callback=callback)
        assert callback.lambdas.max() > 0  # the untrained policy misses the high floors
        tables = venv.env_method("get_lambda_table")
        for values, edges in tables:
            np.testing.assert_allclose(values, callback.lambdas)
            np.testing.assert_allclose(edges, callback.edges)
        obs = venv.reset()
        taus = obs["tau"][:, 0]
        expected = lambda_at(taus, callback.lambdas, callback.edges)
        np.testing.assert_allclose(obs["lambda"][:, 0], expected, rtol=1e-6)
    finally:
        venv.close()


def _model(venv):
    model = PPO(BetaActorCriticPolicy, venv, **PPO_KWARGS)
    model.set_logger(configure(None, []))  # update() outside learn() still logs
    return model


def _callback_with(validate_result, n_envs=1, **kwargs):
    """A callback initialised on a real env, whose validation pass returns a fixed result."""
    venv = _venv(n_envs=n_envs)
    model = _model(venv)
    callback = LagrangianDualCallback(n_bins=3, max_val_queries=200, **kwargs)
    callback.init_callback(model)
    callback.validate = lambda: {**validate_result, "tau": callback.taus.copy()}
    return callback, venv


def _result(acc, ends=None):
    acc = np.asarray(acc, dtype=float)
    result = {"accuracy": acc, "usd_per_1k": np.ones_like(acc), "mu_mean": np.full_like(acc, 0.5)}
    if ends is not None:
        result["end_accuracy"] = np.asarray(ends, dtype=float)
    return result


def test_update_sign_clip_and_missing_bins():
    callback, venv = _callback_with(_result([0.0, 1.0, np.nan]), eta=0.4, lambda_max=1.0, lambda_init=0.5)
    taus = callback.taus.copy()
    callback.update()
    # under target -> λ rises; over target -> λ falls; no data -> λ unchanged
    assert callback.lambdas[0] == pytest.approx(min(1.0, 0.5 + 0.4 * (taus[0] - 0.0)))
    assert callback.lambdas[1] == pytest.approx(max(0.0, 0.5 + 0.4 * (taus[1] - 1.0)))
    assert callback.lambdas[2] == pytest.approx(0.5)
    for _ in range(20):
        callback.update()
    assert callback.lambdas[0] == pytest.approx(1.0) and callback.lambdas[1] == pytest.approx(0.0)
    assert np.all((callback.lambdas >= 0) & (callback.lambdas <= 1.0))
    np.testing.assert_allclose(venv.env_method("get_lambda_table")[0][0], callback.lambdas)
    venv.close()


def test_global_mode_uses_one_lambda_and_mean_error():
    callback, venv = _callback_with(_result(np.zeros(3)), mode="global", eta=1.0)
    callback.update()
    assert callback.lambdas.shape == (1,) and callback.taus.shape == (3,)  # n_bins validation targets, one λ
    assert callback.lambdas[0] == pytest.approx(callback.taus.mean())
    venv.close()


def test_pid_controller_reacts_to_error_and_stays_in_bounds():
    callback, venv = _callback_with(_result([0.0, 1.0, 0.5]), controller="pid", pid_gains=(1.0, 0.5, 0.25), lambda_max=2.0)
    callback.update()
    taus = callback.taus
    # k_p·e + k_i·Σe + k_d·(e − e_prev), with e_prev = 0 on the first step
    assert callback.lambdas[0] == pytest.approx(1.0 * taus[0] + 0.5 * taus[0] + 0.25 * taus[0])
    assert callback.lambdas[1] == 0.0
    callback.update()  # same error again: the derivative vanishes, the integral doubles
    assert callback.lambdas[0] == pytest.approx(1.0 * taus[0] + 0.5 * 2 * taus[0])
    for _ in range(50):
        callback.update()
    assert callback.lambdas.max() <= 2.0
    venv.close()


def test_real_validation_pass_measures_the_deterministic_policy():
    venv = _venv(n_envs=1)
    model = PPO(BetaActorCriticPolicy, venv, **PPO_KWARGS)
    callback = LagrangianDualCallback(n_bins=3, max_val_queries=None)
    callback.init_callback(model)
    result = callback.validate()
    val_env = callback.val_env
    from proteus_env.policy_eval import validation_halves

    rows, calibration_rows = validation_halves(val_env.benchmark, seed=0)
    np.testing.assert_array_equal(callback._val_rows, rows)  # the dual half only: the router calibrates on the other
    assert np.intersect1d(rows, calibration_rows).size == 0
    assert rows.size + calibration_rows.size == val_env.benchmark.splits["val"].size
    # brute force: step through the validation rows with the deterministic policy at bin 0's τ
    tau = callback.taus[0]
    scores = []
    for row in rows[:200]:
        obs = {"p_hat": val_env.head_fit.p_hat[row], "cost_hat": val_env.head_fit.cost_hat[row],
               "tau": np.array([tau], np.float32), "lambda": np.array([val_env.lambda_for(tau)], np.float32)}
        mu = model.predict(obs, deterministic=True)[0]  # the action; the head's action map turns it into μ
        head = val_env.head_fit.head
        k = head.route(val_env.head_fit.p_hat[[row]], val_env.head_fit.cost_hat[[row]], head.mu_from_action(float(mu[0])))[0]
        scores.append(val_env.benchmark.scores[row, k])
    sub = LagrangianDualCallback(n_bins=3, max_val_queries=None)
    sub.init_callback(model)
    sub._val_rows = rows[:200]
    assert sub.validate()["accuracy"][0] == pytest.approx(np.mean(scores), abs=1e-6)
    assert result["accuracy"].shape == (3,)
    venv.close()


def test_state_is_saved_with_the_model_and_restored_on_resume(tmp_path):
    venv = _venv(n_envs=1)
    model = PPO(BetaActorCriticPolicy, venv, **PPO_KWARGS)
    callback = LagrangianDualCallback(n_bins=3, eta=3.0, max_val_queries=200)
    model.learn(128, callback=callback)
    saved = callback.lambdas.copy()
    assert getattr(model, MODEL_STATE_ATTRIBUTE)["lambdas"] == saved.tolist()
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", env=venv)
    assert getattr(loaded, MODEL_STATE_ATTRIBUTE)["lambdas"] == saved.tolist()
    resumed = LagrangianDualCallback(n_bins=3, eta=3.0, max_val_queries=200)
    resumed.init_callback(loaded)
    np.testing.assert_allclose(resumed.lambdas, saved)
    np.testing.assert_allclose(venv.env_method("get_lambda_table")[0][0], saved)
    venv.close()


def test_training_sessions_are_logged_across_rollout_boundaries(tmp_path):
    venv = _venv(n_envs=2)
    model = PPO(BetaActorCriticPolicy, venv, tensorboard_log=str(tmp_path), **{**PPO_KWARGS, "n_steps": 24, "batch_size": 48})
    callback = LagrangianDualCallback(n_bins=3, max_val_queries=200)
    model.learn(96, callback=callback, tb_log_name="run")
    # sessions of 16 steps straddle rollouts of 24: accumulators must survive the boundary
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = glob.glob(str(tmp_path / "run_1" / "events*"))
    accumulator = EventAccumulator(files[0])
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    for tag in ("constraint/lambda_bin0", "constraint/violation", "sla/accuracy/val", "sla/usd_per_1k/val",
                "sla/floor_compliance/val", "sla/mu_mean/val", "sla/accuracy/train", "sla/usd_per_1k/train",
                "sla/floor_compliance/train", "sla/mu_mean/train", "train/tau_span"):
        assert tag in tags, tag
    spans = [e.value for e in accumulator.Scalars("train/tau_span")]
    assert spans and all(np.isfinite(spans))
    train_mu = [e.value for e in accumulator.Scalars("sla/mu_mean/train")]
    assert all(0.0 <= v <= 1.0 for v in train_mu)
    venv.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"mode": "both"}, "mode"), ({"controller": "pd"}, "controller"), ({"eta": 0}, "eta"), ({"n_bins": 0}, "n_bins"),
     ({"lambda_init": 5, "lambda_max": 1}, "lambda"), ({"update_every": 0}, "update_every")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LagrangianDualCallback(**kwargs)


def test_lambda_max_above_the_env_bound_is_rejected():
    venv = _venv(n_envs=1)
    model = PPO(BetaActorCriticPolicy, venv, **PPO_KWARGS)
    callback = LagrangianDualCallback(lambda_max=50.0)
    with pytest.raises(ValueError, match="lambda_max"):
        callback.init_callback(model)
    venv.close()


def test_constructor_kwargs_rebuild_the_env_on_another_split():
    env = ProteusRoutingEnv(**{k: v for k, v in ENV_KWARGS.items() if k != "render_mode"})
    val = ProteusRoutingEnv(**env.constructor_kwargs(split="val"))
    assert val.split == "val" and val.benchmark is env.benchmark and val.tau_range == env.tau_range


def test_session_accumulators_survive_rollout_boundaries():
    """Feed a 2-env stream of infos by hand: sessions of 4 steps cut by 'rollouts' of 3 steps."""
    callback, venv = _callback_with(_result([0.5, 0.5, 0.5]), n_envs=2)
    mus = {0: [0.1, 0.2, 0.3, 0.4], 1: [0.9, 0.9, 0.9, 0.9]}
    for step in range(4):
        infos = []
        for env in (0, 1):
            info = {"mu": mus[env][step], "tau": 0.5}
            if step == 3:
                info.update(session_accuracy=0.75, session_usd_cost=0.004 * (env + 1), is_success=True)
            infos.append(info)
        callback.locals = {"infos": infos}
        callback._on_step()
        if step == 2:  # a rollout ends mid-session: nothing finished yet, nothing logged, nothing lost
            assert callback._train_sessions == []
    sessions = callback._train_sessions
    assert [s["mu_mean"] for s in sessions] == [pytest.approx(0.25), pytest.approx(0.9)]
    assert [s["usd_per_1k"] for s in sessions] == [pytest.approx(1.0), pytest.approx(2.0)]  # $0.004 over 4 queries = $1/1K
    venv.close()


def test_last_observation_gets_the_new_lambda():
    callback, venv = _callback_with(_result([0.0, 0.0, 0.0]), eta=1.0)
    callback.model._last_obs = venv.reset()
    callback.update()
    tau = callback.model._last_obs["tau"][0, 0]
    expected = lambda_at(tau, callback.lambdas, callback.edges)
    assert callback.model._last_obs["lambda"][0, 0] == pytest.approx(expected, rel=1e-6) and expected > 0
    venv.close()


# ---------------------------------------------------------------------------- controllers
def test_a_controller_instance_is_used_as_given():
    controller = PIDController(3, kp=1.0, ki=0.5, kd=0.25, lambda_max=2.0, delta_p_ema_alpha=0.5)
    callback, venv = _callback_with(_result([0.0, 1.0, 0.5]), controller=controller)
    assert callback.controller is controller and callback.lambda_max == 2.0
    taus = callback.taus
    callback.update()
    # δ_p = 0.5·e, I = e, D = e
    assert callback.lambdas[0] == pytest.approx(0.5 * taus[0] + 0.5 * taus[0] + 0.25 * taus[0])
    np.testing.assert_allclose(venv.env_method("get_lambda_table")[0][0], controller.lambdas)
    venv.close()


def test_pid_smoothing_from_the_config_keywords():
    callback, venv = _callback_with(_result([0.0, 1.0, 0.5]), controller="pid", pid_gains=(1.0, 0.0, 0.0),
                                    pid_ema_alphas=(0.75, 0.0), lambda_max=2.0)
    callback.update()
    assert callback.lambdas[0] == pytest.approx(0.25 * callback.taus[0])
    venv.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"eta": 0.1}, "eta"), ({"lambda_max": 2.0, "pid_gains": (1, 1, 1)}, "lambda_max', 'pid_gains"), ({"n_bins": 4}, "3 multipliers"),
     ({"mode": "global"}, "needs 1")],
)
def test_a_controller_instance_rejects_conflicting_keywords(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LagrangianDualCallback(**{"n_bins": 3, **kwargs}, controller=GradientAscentController(3))


def test_bad_controller_type():
    with pytest.raises(ValueError, match="controller"):
        LagrangianDualCallback(controller=3)


# ---------------------------------------------------------------------------- saved states
def _legacy_state(controller, lambdas, edges, **memory):
    """A dual state as written by releases before ``callbacks.dual`` (every key, always)."""
    n = len(lambdas)
    return {"lambdas": lambdas, "edges": edges, "mode": "per_bin", "controller": controller,
            "integral": memory.get("integral", [0.0] * n), "previous_error": memory.get("previous_error", [0.0] * n), "rollouts": 7}


def test_states_of_earlier_releases_still_load():
    callback, venv = _callback_with(_result([0.5, 0.5, 0.5]), eta=0.4)
    edges = [0.3, 0.45, 0.6, 0.8]
    callback.load_state(_legacy_state("gradient", [0.1, 0.2, 0.3], edges))
    np.testing.assert_allclose(callback.lambdas, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(callback.taus, [0.375, 0.525, 0.7])
    assert callback.state() == {"lambdas": [0.1, 0.2, 0.3], "edges": edges, "mode": "per_bin", "controller": "gradient", "rollouts": 7}
    venv.close()
    pid, venv = _callback_with(_result([0.5, 0.5, 0.5]), controller="pid")
    pid.load_state(_legacy_state("pid", [0.1, 0.0, 0.3], edges, integral=[0.5, 0.0, 1.0], previous_error=[0.1, -0.2, 0.05]))
    np.testing.assert_allclose(pid.controller.integral, [0.5, 0.0, 1.0])
    np.testing.assert_allclose(pid.controller.delta_p, [0.1, -0.2, 0.05])
    state = pid.state()
    assert list(state)[:4] == ["lambdas", "edges", "mode", "controller"] and state["rollouts"] == 7
    assert state["integral"] == [0.5, 0.0, 1.0] and state["previous_error"] == [0.1, -0.2, 0.05]
    venv.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [({"controller": "gradient"}, "controller 'gradient'"), ({"mode": "global"}, "mode"), ({"lambdas": [0.1, 0.2]}, "2 λ"),
     ({"lambdas": [0.1, 20.0, 0.0]}, "'lambdas'.*20.0"), ({"edges": [0.3, 0.6, 0.45, 0.8]}, "'edges'"),
     ({"edges": [0.3, 0.8]}, "2 bin edges"), ({"rollouts": -1}, "'rollouts'"), ({"integral": [0.0, float("nan"), 0.0]}, "integral")],
)
def test_bad_saved_states_are_rejected_and_nothing_changes(change, message):
    callback, venv = _callback_with(_result([0.5, 0.5, 0.5]), controller="pid")
    before = callback.state()
    state = {**_legacy_state("pid", [0.1, 0.2, 0.3], [0.3, 0.45, 0.6, 0.8]), **change}
    with pytest.raises(ValueError, match=message):
        callback.load_state(state)
    assert callback.state() == before
    venv.close()


# ---------------------------------------------------------------------------- τ-span (issue 17)
def test_tau_span_is_measured_logged_and_kept_at_each_validation():
    callback, venv = _callback_with(_result([0.35, 0.5, 0.7], ends=[0.31, 0.74]))
    assert callback.last_tau_span is None
    low, high = callback.achievable_range
    assert 0.0 <= low < high <= 1.0
    callback.update()
    expected = (0.74 - 0.31) / (high - low)  # the two ends of tau_range count too
    assert callback.last_tau_span == pytest.approx(expected)
    assert callback.last_validation["tau_span"] == callback.last_tau_span
    assert (callback.last_validation["achievable_low"], callback.last_validation["achievable_high"]) == (low, high)
    logged = callback.logger.name_to_value["train/tau_span"]
    assert type(logged) is float and logged == pytest.approx(expected)
    venv.close()


def test_the_real_validation_pass_measures_the_ends_of_the_tau_range():
    venv = _venv()
    callback = LagrangianDualCallback(n_bins=3, max_val_queries=200)
    callback.init_callback(_model(venv))
    result = callback.validate()
    assert result["accuracy"].shape == (3,) and result["end_accuracy"].shape == (2,)
    assert np.isfinite(result["end_accuracy"]).all()
    venv.close()


def test_a_tau_blind_policy_has_zero_span():
    """The collapse of issue 17: every bin served at the same accuracy."""
    callback, venv = _callback_with(_result([0.763, 0.763, 0.763]), eta=5.0)
    for _ in range(3):
        callback.update()
    assert callback.last_tau_span == 0.0
    assert callback.logger.name_to_value["train/tau_span"] == 0.0
    venv.close()


def test_achievable_range_is_the_fixed_mu_frontier_on_the_same_rows():
    env = ProteusRoutingEnv(**{k: v for k, v in ENV_KWARGS.items() if k != "render_mode"}, split="val")
    rows = env.benchmark.split_index("val")
    low, high = achievable_accuracy_range(env.benchmark, env.head_fit, rows)
    frontier = fixed_mu_frontier(env.benchmark, env.head_fit, np.linspace(0.0, 1.0, 101), split="val")
    assert low == pytest.approx(frontier["accuracy"][0]) and high == pytest.approx(frontier["accuracy"].max())
    # the cheap end is near the cheapest model's level (a few points above on this small benchmark,
    # whose head sends some queries elsewhere even at μ = 0); the top is at least μ = 1's accuracy
    usd = env.benchmark.costs[rows].mean(axis=0)
    assert low == pytest.approx(env.benchmark.scores[rows, int(np.argmin(usd))].mean(), abs=0.05)
    assert high >= frontier["accuracy"][-1]
    with pytest.raises(ValueError, match="rows"):
        achievable_accuracy_range(env.benchmark, env.head_fit, np.array([], dtype=int))


def test_frontier_lambdas_are_the_hull_slopes_of_fixed_mu_routing(small_benchmark):
    from callbacks.lagrangian import frontier_lambdas
    from proteus_env.routing_head import fit_routing_head

    fit = fit_routing_head(small_benchmark, seed=0)
    rows = small_benchmark.split_index("val")
    scores, cost = small_benchmark.scores[rows], fit.cost_norm[rows]
    points = []
    for mu in np.linspace(0, 1, 201):
        choice = fit.head.route(fit.p_hat[rows], fit.cost_hat[rows], mu)
        points.append((scores[np.arange(rows.size), choice].mean(), cost[np.arange(rows.size), choice].mean()))
    points = np.array(points)
    accuracy, cost = points[:, 0], points[:, 1]
    low, high = accuracy[cost == cost.min()].max(), accuracy.max()
    taus = np.concatenate([[low - 0.05], np.linspace(low + 0.003, high - 0.003, 11)])
    zeros, ones = np.zeros(taus.size), np.ones(taus.size)
    lambdas = frontier_lambdas(small_benchmark, fit, rows, taus, zeros, ones)
    assert lambdas[0] == 0.0  # below the cheapest end the floor does not bind
    assert (lambdas >= 0).all() and (np.diff(lambdas) >= -1e-12).all()  # a convex hull's slopes rise
    # λ(τ) is the slope of the hull segment over τ: both its ends minimize the Lagrangian cost − λ·accuracy,
    # so the minimum is reached by a point at or below τ and by one at or above it.
    for tau, lam in zip(taus[1:], lambdas[1:], strict=True):
        lagrangian = cost - lam * accuracy
        best = lagrangian.min() + 1e-9
        assert (lagrangian[accuracy <= tau] <= best).any() and (lagrangian[accuracy >= tau] <= best).any(), (tau, lam)
    # the weights enter as λ = w_c·slope − w_q
    np.testing.assert_allclose(frontier_lambdas(small_benchmark, fit, rows, taus, zeros, 2 * ones), 2 * lambdas)
    np.testing.assert_allclose(frontier_lambdas(small_benchmark, fit, rows, taus, 0.3 * ones, ones),
                               np.where(lambdas > 0, np.maximum(lambdas - 0.3, 0.0), 0.0))
    with pytest.raises(ValueError, match="empty"):
        frontier_lambdas(small_benchmark, fit, rows[:0], taus, zeros, ones)


def test_frontier_warm_start_reaches_the_controller_and_bad_values_are_named():
    from callbacks.lagrangian import frontier_lambdas

    with pytest.raises(ValueError, match="'frontier'"):
        LagrangianDualCallback(lambda_init="frontiers")
    venv = make_vec_env("proteus_env:Proteus-Synthetic-v0", n_envs=1, seed=0,
                        env_kwargs={"benchmark_kwargs": {"n_queries": 3000}, "session_length": 8})
    try:
        callback = LagrangianDualCallback(n_bins=3, lambda_init="frontier", lambda_max=2.0, max_val_queries=500)
        model = PPO(BetaActorCriticPolicy, venv, n_steps=8, batch_size=8, n_epochs=1, device="cpu", seed=0)
        callback.init_callback(model)
        env = callback.val_env
        w_q, w_c = env.reward_weights_batch(callback.taus)
        expected = np.clip(frontier_lambdas(env.benchmark, env.head_fit, callback._val_rows, callback.taus, w_q, w_c), 0.0, 2.0)
        np.testing.assert_allclose(callback.lambdas, expected)
        assert expected.max() > 0
        # one trace serves both: the achievable range is the one achievable_accuracy_range measures on the same rows
        assert callback.achievable_range == achievable_accuracy_range(env.benchmark, env.head_fit, callback._val_rows)
        for values, _ in venv.env_method("get_lambda_table"):
            np.testing.assert_allclose(values, expected)  # pushed before the first rollout
    finally:
        venv.close()
