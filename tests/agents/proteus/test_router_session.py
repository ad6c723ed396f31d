"""``ProteusRouter.session``: streaming sessions see exactly what the environment's session state shows (issue 12)."""

import numpy as np
import pytest
import torch as th

from agents.proteus.calibration import TauCalibration
from agents.proteus.policies import BetaActorCriticPolicy
from agents.proteus.router import ProteusRouter
from proteus_env import ProteusRoutingEnv

LENGTH = 40
EDGES = [0.2, 0.5, 0.9]


def _router_and_env(**extra):
    env = ProteusRoutingEnv(benchmark_kwargs={"n_queries": 3000}, session_length=LENGTH, split="test", session_state=True, **extra)
    th.manual_seed(0)
    policy = BetaActorCriticPolicy(env.observation_space, env.action_space, lambda _: 1e-3)
    calibration = TauCalibration(tau_inputs=np.array([0.0, 1.0]), val_accuracy=np.array([0.3, 0.8]),
                                 val_usd_per_1k=np.array([0.1, 1.0]), n_val=100)
    state = {"lambdas": [0.5, 1.5], "edges": EDGES}
    env.set_lambda_table([0.5, 1.5], EDGES)
    if extra.get("budget_usd_per_1k"):
        state["budget"] = {"lambdas": [0.2, 0.9]}
        env.set_lambda_table([0.2, 0.9], EDGES, constraint="budget")
    identity = {"env_kwargs": {"session_length": LENGTH, **extra}}
    return ProteusRouter(policy, env.head_fit.head, calibration, state, identity), env


@pytest.mark.parametrize("extra", [{"feedback_delay": 3, "feedback_rate": 0.5}, {"feedback_delay": 0, "budget_usd_per_1k": 0.6}])
def test_session_sees_exactly_the_env_observation(extra):
    router, env = _router_and_env(**extra)
    assert router.session_state and router.observes_budget == ("budget_usd_per_1k" in extra)
    obs, _ = env.reset(seed=4, options={"tau": 0.55})
    rows = list(env._session)
    revealed = env._revealed
    session = router.session(0.55, calibrated=False)
    fit, bench = env.head_fit, env.benchmark
    for t in range(LENGTH):
        row = rows[t]
        seen = session.observation(fit.p_hat[row], fit.cost_hat[row])
        assert set(seen) == set(obs)
        for key in obs:
            np.testing.assert_array_equal(seen[key][0], obs[key], err_msg=f"step {t}, {key}")
        action = router.policy_actions(seen, deterministic=True)[0]  # the env maps the action to μ as the router does
        decision = session.route_observation(fit.p_hat[row], fit.cost_hat[row], usd=bench.costs[row])
        assert decision.mu == pytest.approx(fit.head.mu_from_action(float(action[0])))
        obs, _, terminated, _, info = env.step(np.asarray(action, dtype=np.float32))
        assert info["model_index"] == decision.index and info["usd_cost"] == decision.charge
        j = t - extra["feedback_delay"]  # what the environment reveals after this step
        if j >= 0 and (revealed is None or revealed[j]):
            session.observe(j, float(bench.scores[rows[j], session.decisions[j].index]))
    assert terminated
    final = session.features
    assert final["progress"] == 1.0 and final == pytest.approx({k: float(obs[k][0]) for k in final}, abs=1e-6)


def test_session_outcomes_arrive_out_of_order_and_are_checked():
    router, env = _router_and_env(feedback_delay=0)
    session = router.session(0.6, length=10, calibrated=False)
    fit = env.head_fit
    ids = [session.route_observation(fit.p_hat[r], fit.cost_hat[r]).query_id for r in env.session_rows[:3]]
    assert ids == [0, 1, 2]
    session.observe(2, 1.0)
    session.observe(0, 0.0)
    assert session.features["running_accuracy"] == 0.5 and session.features["revealed"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="already observed"):
        session.observe(2, 1.0)
    with pytest.raises(ValueError, match="never served"):
        session.observe(7, 1.0)
    with pytest.raises(ValueError, match="score"):
        session.observe(1, 2.0)
    session.set_tau(0.4)
    assert session.tau == 0.4 and session.features["accuracy_slack"] == pytest.approx(0.5 - 0.4)
    batch = router.route_observations(fit.p_hat[env.session_rows[:5]], fit.cost_hat[env.session_rows[:5]], 0.6, calibrated=False)
    assert batch.indices.shape == (5,)  # a batch is routed as the start of a fresh session
