"""The dual callback with session-state policies and a budget, a second constraint (issue 12)."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from agents.proteus.policies import BetaActorCriticPolicy
from callbacks import LagrangianDualCallback
from proteus_env import ProteusRoutingEnv
from proteus_env.session_eval import needs_sessions, session_accuracy_at_taus, session_plan_rows

ENV_KWARGS = {"benchmark_kwargs": {"n_queries": 3000}, "session_length": 16, "tau_range": (0.3, 0.8), "render_mode": None,
              "session_state": True, "feedback_delay": 2, "feedback_rate": 0.5, "budget_usd_per_1k": 0.05}
PPO_KWARGS = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "gamma": 0.0, "device": "cpu", "seed": 0}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_budget_gets_its_own_controller_and_reaches_every_env():
    venv = make_vec_env("proteus_env:Proteus-Synthetic-v0", n_envs=2, seed=0, env_kwargs=ENV_KWARGS)
    try:
        callback = LagrangianDualCallback(n_bins=3, eta=5.0, max_val_queries=320)
        model = PPO(BetaActorCriticPolicy, venv, **PPO_KWARGS)
        model.learn(128, callback=callback)
        assert callback.budget_controller is not None and callback.budget_controller is not callback.controller
        last = callback.last_validation
        assert set(last) >= {"accuracy", "usd_per_1k", "compliance", "budget_cost"}
        np.testing.assert_allclose(last["budget_cost"], last["usd_per_1k"] / 0.05 - 1.0)
        assert callback.budget_lambdas.max() > 0  # an untrained policy (action ≈ 0.5: about 0.12 $/1K) overspends 0.05 $/1K
        for values, edges in venv.env_method("get_lambda_table", constraint="budget"):
            np.testing.assert_allclose(values, callback.budget_lambdas)
            np.testing.assert_allclose(edges, callback.edges)
        state = callback.state()
        assert state["budget"]["lambdas"] == callback.budget_lambdas.tolist()
        restored = LagrangianDualCallback(n_bins=3, eta=5.0)
        restored.budget_controller = type(callback.controller)(3, eta=5.0)
        restored.edges = callback.edges
        restored.load_state(state)
        np.testing.assert_allclose(restored.budget_lambdas, callback.budget_lambdas)
        np.testing.assert_allclose(restored.lambdas, callback.lambdas)
    finally:
        venv.close()


def test_session_accuracy_serves_whole_sessions_at_each_tau():
    env = ProteusRoutingEnv(**{k: v for k, v in ENV_KWARGS.items() if k != "render_mode"}, split="val")
    assert needs_sessions(env) and not needs_sessions(ProteusRoutingEnv(benchmark_kwargs={"n_queries": 3000}))
    rows = env.benchmark.split_index("val")[:160]
    plan = session_plan_rows(rows, 16, seed=0)
    assert plan.shape == (10, 16) and set(plan.reshape(-1)) == set(rows)

    def cheapest(obs):
        return np.zeros((obs["tau"].shape[0], 1), dtype=np.float32)

    def best(obs):
        return np.ones((obs["tau"].shape[0], 1), dtype=np.float32)

    low = session_accuracy_at_taus(cheapest, env, rows, np.array([0.4, 0.7]))
    high = session_accuracy_at_taus(best, env, rows, np.array([0.4, 0.7]))
    assert high["accuracy"][0] > low["accuracy"][0] and high["usd_per_1k"][0] > low["usd_per_1k"][0]
    np.testing.assert_allclose(low["accuracy"][0], low["accuracy"][1])  # the same sessions at every τ
    assert low["compliance"][0] >= low["compliance"][1]
    with pytest.raises(ValueError, match="cannot fill one session"):
        session_plan_rows(rows[:10], 16)
