"""evaluate_policy: any agent (SB3 model or zip, callable, ProteusRouter) on the yardstick of `proteus eval`."""

from __future__ import annotations

import numpy as np
import pytest

from agents.evaluation.any_agent import DUAL_STATE_ATTRIBUTE, evaluate_policy, load_callable
from agents.evaluation.policy_zip import known_algorithms, read_zip

ENV = {"benchmark_kwargs": {"n_queries": 3000}, "session_length": 16}
QUICK = {"n_taus": 4, "predictive": False, "dynamic": False, "sessions": False, "n_boot": 100, "progress": False}


def mu_one(obs):
    return np.ones((obs["tau"].shape[0], 1))


def mu_zero_single(obs):
    return [0.0]


@pytest.fixture(scope="module")
def sb3_models(tmp_path_factory):
    """PPO and SAC on μ, DQN on the discrete mode: a few hundred steps each, saved as zips."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN, PPO, SAC

    import proteus_env  # noqa: F401  (registers the ids)

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("sb3")
    mu_env = gym.make("Proteus-Synthetic-v0", **ENV)
    model_env = gym.make("Proteus-Synthetic-v0", action_mode="model", **ENV)
    small = {"net_arch": [16, 16]}
    models = {
        "ppo": (PPO("MultiInputPolicy", mu_env, n_steps=64, batch_size=64, n_epochs=1, policy_kwargs=small, seed=0), mu_env),
        "sac": (SAC("MultiInputPolicy", mu_env, learning_starts=32, buffer_size=500, batch_size=32,
                    policy_kwargs={**small, "activation_fn": torch.nn.Tanh}, seed=0), mu_env),
        "dqn": (DQN("MultiInputPolicy", model_env, learning_starts=32, buffer_size=500, batch_size=32, policy_kwargs=small, seed=0),
                model_env),
    }
    paths = {}
    for name, (model, _) in models.items():
        model.learn(128 if name == "ppo" else 200)
        paths[name] = out / f"{name}.zip"
        model.save(paths[name])
    return models, paths


def _rows(result, router):
    return result.results[result.results["router"] == router].reset_index(drop=True)


# ---------------------------------------------------------------------------- callables
def test_mu_one_costs_about_the_best_fixed_model_and_meets_high_floors_mu_zero_is_cheap_and_misses_them():
    one = evaluate_policy(mu_one, ENV, seeds=2, **QUICK)
    zero = evaluate_policy(mu_zero_single, ENV, seeds=2, **QUICK)
    s1, s0 = one.summary.set_index("router"), zero.summary.set_index("router")
    assert {"router", "floor_compliance", "usd_per_1k", "normalized_cost"} <= set(one.summary.columns)
    assert set(s1.index) >= {"mu_one", "oracle", "best_fixed", "carrot"} and "mu_zero_single" in s0.index
    best = s1.loc["best_fixed", "usd_per_1k"]
    assert 0.8 * best < s1.loc["mu_one", "usd_per_1k"] < 1.2 * best
    assert s1.loc["mu_one", "floor_compliance"] >= 0.75 and s1.loc["mu_one", "normalized_cost"] > 0.8
    assert s0.loc["mu_zero_single", "usd_per_1k"] < 0.1 * best
    high = sorted(one.taus)[-2]  # a high floor below the top of the achievable range (which only routers reach)
    assert _rows(one, "mu_one").query("tau == @high")["floor_met"].all()
    assert not _rows(zero, "mu_zero_single").query("tau >= @high")["floor_met"].any()
    # the yardstick: the best fixed model scores exactly 1; the hindsight oracle meets every floor, so it scores
    # >= 0 (its cost is one for every τ, above the least cost of meeting a low τ)
    assert s1.loc["best_fixed", "normalized_cost"] == pytest.approx(1.0) and 0.0 <= s1.loc["oracle", "normalized_cost"] < 1.0
    assert (one.results["normalized_cost"].dropna() >= -1e-12).all()  # no met floor costs less than meeting it in hindsight
    # misses count as failures: a cheap router that misses every high floor is not scored cheap
    assert s0.loc["mu_zero_single", "normalized_cost"] > 0.5
    for column in ("normalized_cost", "floor_compliance"):
        low, high = s1.loc["mu_one", f"{column}_ci_low"], s1.loc["mu_one", f"{column}_ci_high"]
        assert low <= s1.loc["mu_one", column] <= high


def test_discrete_mode_always_model_k_equals_that_fixed_model():
    result = evaluate_policy(lambda obs: np.full(obs["tau"].shape[0], 2), {**ENV, "action_mode": "model"}, name="always2", **QUICK)
    rows = _rows(result, "always2")
    fixed = result.fixed_models.set_index("model").iloc[2]
    assert np.allclose(rows["accuracy"], fixed["accuracy"]) and np.allclose(rows["usd_per_1k"], fixed["usd_per_1k"])
    assert rows["mean_mu"].isna().all()
    best = result.summary.set_index("router").loc["best_fixed"]
    k = list(result.fixed_models["model"]).index(
        result.fixed_models.loc[np.isclose(result.fixed_models["usd_per_1k"], best["usd_per_1k"]), "model"].iloc[0])
    same = evaluate_policy(lambda obs: np.full(obs["tau"].shape[0], k), {**ENV, "action_mode": "model"}, name="best", **QUICK)
    assert np.allclose(_rows(same, "best")[["accuracy", "usd_per_1k"]], _rows(same, "best_fixed")[["accuracy", "usd_per_1k"]])


def test_single_and_batched_callables_agree_and_the_probe_detects_them():
    def single(obs):
        return [float(obs["tau"][0])]

    def batch(obs):
        return obs["tau"]

    a = evaluate_policy(single, ENV, name="rule", **QUICK)
    b = evaluate_policy(batch, ENV, name="rule", **QUICK)
    c = evaluate_policy(single, ENV, name="rule", batched=False, **QUICK)
    for other in (b, c):
        assert np.allclose(_rows(a, "rule")[["accuracy", "usd_per_1k"]], _rows(other, "rule")[["accuracy", "usd_per_1k"]])


def test_lambda_comes_from_the_argument_the_policy_or_the_environment():
    seen = []

    def spy(obs):
        seen.append(float(obs["lambda"][0, 0]))
        return np.ones((obs["tau"].shape[0], 1))

    evaluate_policy(spy, ENV, batched=True, lambda_value=0.7, **QUICK)
    assert seen and all(v == pytest.approx(0.7) for v in seen)
    seen.clear()
    setattr(spy, DUAL_STATE_ATTRIBUTE, {"lambdas": [0.5, 1.5], "edges": [0.0, 0.5, 1.0]})
    result = evaluate_policy(spy, ENV, batched=True, **QUICK)
    assert min(seen) >= 0.5 and max(seen) <= 1.5 and len(set(seen)) > 1
    assert DUAL_STATE_ATTRIBUTE in result.routers[0]


# ---------------------------------------------------------------------------- SB3 models and zips
@pytest.mark.parametrize("name", ["ppo", "sac", "dqn"])
def test_sb3_models_and_their_zips_score_alike_without_unpickling(sb3_models, name):
    models, paths = sb3_models
    model, env = models[name]
    by_object = evaluate_policy(model, env, name=name, **QUICK)
    by_zip = evaluate_policy(paths[name], env, algo=name.upper(), name=name, **QUICK)
    assert np.allclose(_rows(by_object, name)[["accuracy", "usd_per_1k"]], _rows(by_zip, name)[["accuracy", "usd_per_1k"]])
    assert by_object.seeds == [0] and "zip" in by_zip.routers[0]
    assert np.isfinite(by_object.summary.set_index("router").loc[name, ["floor_compliance", "usd_per_1k"]].to_numpy(float)).all()


def test_trusted_zips_load_with_the_algorithm_class(sb3_models):
    models, paths = sb3_models
    trusted = evaluate_policy(paths["sac"], models["sac"][1], algo="sac", trust_pickle=True, name="sac", **QUICK)
    plain = evaluate_policy(paths["sac"], models["sac"][1], algo="SAC", name="sac", **QUICK)
    assert np.allclose(_rows(trusted, "sac")["accuracy"], _rows(plain, "sac")["accuracy"])


def test_read_zip_identifies_the_algorithm_without_unpickling(sb3_models):
    _, paths = sb3_models
    assert [read_zip(paths[n]).algorithm for n in ("ppo", "sac", "dqn")] == ["PPO", "SAC", "DQN"]
    assert read_zip(paths["ppo"]).observation_keys["p_hat"] == (11,)


def test_a_proteus_router_is_evaluated_like_proteus_eval(tiny_routers):
    from agents.evaluation.run import evaluate
    from agents.proteus.router import ProteusRouter

    router = ProteusRouter.load(tiny_routers / "seed0")
    mine = evaluate_policy(router, None, **QUICK)
    theirs = evaluate(tiny_routers / "seed0", **QUICK)
    for name in ("proteus_raw", "proteus"):
        assert np.allclose(_rows(mine, name)[["accuracy", "usd_per_1k"]], _rows(theirs, name)[["accuracy", "usd_per_1k"]])
    assert mine.seeds == [0]


# ---------------------------------------------------------------------------- bad input
def test_an_unknown_algorithm_lists_the_known_ones(sb3_models):
    _, paths = sb3_models
    with pytest.raises(ValueError, match="Unknown algorithm 'SACK'; known algorithms: .*PPO.*SAC"):
        evaluate_policy(paths["sac"], ENV, algo="SACK", **QUICK)
    assert {"PPO", "SAC", "DQN", "A2C", "TD3"} <= set(known_algorithms())


def test_a_zip_of_another_algorithm_is_named(sb3_models):
    models, paths = sb3_models
    with pytest.raises(ValueError, match=r"holds a SAC model .* not PPO: .*--algo SAC"):
        evaluate_policy(paths["sac"], models["sac"][1], algo="PPO", **QUICK)
    with pytest.raises(ValueError, match="holds a PPO model"):
        evaluate_policy(paths["ppo"], models["ppo"][1], algo="A2C", trust_pickle=True, **QUICK)


class _Stub:
    """An SB3-like policy that observes the raw query embedding too."""

    def __init__(self):
        from gymnasium import spaces

        box = spaces.Box(0.0, 1.0, (11,), np.float32)
        self.observation_space = spaces.Dict({"p_hat": box, "cost_hat": box, "tau": spaces.Box(0.0, 1.0, (1,), np.float32),
                                              "lambda": spaces.Box(0.0, 10.0, (1,), np.float32),
                                              "query": spaces.Box(-np.inf, np.inf, (32,), np.float32)})
        self.action_space = spaces.Box(0.0, 1.0, (1,), np.float32)

    def predict(self, obs, deterministic=True):
        return np.ones((obs["tau"].shape[0], 1)), None


def test_observation_and_action_space_mismatches_are_named(sb3_models):
    models, paths = sb3_models
    with pytest.raises(ValueError, match=r"Observation-space mismatch.*gives no \['query'\]"):
        evaluate_policy(_Stub(), ENV, **QUICK)
    with pytest.raises(ValueError, match=r"Observation-space mismatch.*p_hat: policy \(11,\) vs environment \(3,\)"):
        evaluate_policy(models["ppo"][0], _three_models(), **QUICK)
    with pytest.raises(ValueError, match=r"Observation-space mismatch.*p_hat: policy \(11,\) vs environment \(3,\)"):
        evaluate_policy(paths["ppo"], _three_models(), algo="PPO", **QUICK)
    with pytest.raises(ValueError, match="Action-space mismatch.*action_mode='model'"):
        evaluate_policy(models["dqn"][0], ENV, **QUICK)
    with pytest.raises(ValueError, match="session step by step|served step by step"):
        evaluate_policy(mu_one, {**ENV, "session_state": True}, **QUICK)


def _three_models():
    from proteus_env import load_benchmark

    names = list(load_benchmark("synthetic", n_queries=3000).models[:3])
    return {**ENV, "models": names}


@pytest.mark.parametrize(("fn", "mode", "message"), [
    (lambda obs: np.ones((obs["tau"].shape[0], 3)), "mu", r"shape \(\d+, 3\).*needs \(\d+, 1\) or \(\d+,\)"),
    (lambda obs: np.full((obs["tau"].shape[0], 1), np.nan), "mu", "NaN"),
    (lambda obs: "cheap", "mu", "not numbers"),
    (lambda obs: np.full(obs["tau"].shape[0], 99), "model", r"model indices \[99"),
    (lambda obs: np.full(obs["tau"].shape[0], 0.5), "model", "integers in"),
])
def test_a_callable_returning_the_wrong_shape_or_nan_is_named(fn, mode, message):
    with pytest.raises(ValueError, match=message):
        evaluate_policy(fn, {**ENV, "action_mode": mode}, name="bad", batched=True, **QUICK)


def test_other_bad_arguments_are_named(sb3_models, tmp_path):
    models, paths = sb3_models
    with pytest.raises(ValueError, match="needs the algorithm"):
        evaluate_policy(paths["sac"], ENV, **QUICK)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate_policy(tmp_path / "none.zip", ENV, algo="SAC", **QUICK)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a zip file"):
        evaluate_policy(tmp_path / "junk.zip", ENV, algo="SAC", **QUICK)
    with pytest.raises(ValueError, match="disagrees with the routers"):
        evaluate_policy(models["sac"][0], models["sac"][1], seeds=[0, 1], **QUICK)
    with pytest.raises(ValueError, match="taken by the baselines"):
        evaluate_policy(mu_one, ENV, name="carrot", **QUICK)
    with pytest.raises(ValueError, match="Cannot evaluate int"):
        evaluate_policy(3, ENV, **QUICK)
    with pytest.raises(ValueError, match="`env` must be"):
        evaluate_policy(mu_one, 3.5, **QUICK)


def test_module_function_specs_that_do_not_import_or_are_not_callable(tmp_path, monkeypatch):
    (tmp_path / "agent_mod.py").write_text("import numpy as np\nLIMIT = 3\ndef act(obs):\n    return [1.0]\n")
    (tmp_path / "broken_mod.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.chdir(tmp_path)
    assert load_callable("agent_mod:act")({"tau": [0.5]}) == [1.0]
    assert load_callable(f"{tmp_path / 'agent_mod.py'}:act")({}) == [1.0]
    for spec, message in [("no_such_module_xyz:act", "cannot import 'no_such_module_xyz'"), ("broken_mod:act", "RuntimeError: boom"),
                          ("agent_mod:missing", "has no attribute 'missing'"), ("agent_mod:LIMIT", "is a int, not a callable"),
                          ("agent_mod", "module:function")]:
        with pytest.raises(ValueError, match=message):
            load_callable(spec)


def test_the_dual_state_attribute_is_the_callbacks_own():
    """any_agent repeats the name to stay torch-free on import; it must stay the callback's."""
    from callbacks.lagrangian import MODEL_STATE_ATTRIBUTE

    assert DUAL_STATE_ATTRIBUTE == MODEL_STATE_ATTRIBUTE


def test_a_zip_whose_plain_policy_kwargs_cannot_rebuild_the_policy_is_named(sb3_models, tmp_path):
    """A malformed net_arch read from the file fails deep inside SB3: the error names the file, not a raw traceback."""
    import json
    import zipfile

    _, paths = sb3_models
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(paths["ppo"]) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            raw = source.read(item.filename)
            if item.filename == "data":
                data = json.loads(raw)
                data["policy_kwargs"] = {"net_arch": {"pi": "x"}}  # plain JSON, but not an architecture
                raw = json.dumps(data).encode()
            target.writestr(item, raw)
    with pytest.raises(ValueError, match=r"broken\.zip: cannot rebuild .* from its plain policy_kwargs"):
        evaluate_policy(broken, ENV, algo="PPO", **QUICK)
