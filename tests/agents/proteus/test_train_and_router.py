"""`proteus train` on a tiny budget, the artifact, `ProteusRouter` and `proteus route`."""

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from shared_fixtures import tiny_train_config

from agents.cli import main
from agents.proteus.router import ProteusRouter, UnreachableTargetWarning
from agents.proteus.train import apply_override, load_config, train


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    torch.set_num_threads(1)
    config = tiny_train_config(checkpoint_every=128)
    out = tmp_path_factory.mktemp("artifact")
    result = train(config=config, out_dir=out, seed=3, timesteps=256, n_envs=2)
    return out, result, config


def test_train_writes_a_complete_artifact(artifact):
    out, result, _ = artifact
    for name in ("manifest.json", "policy.pt", "policy.json", "model.zip", "lambda_table.json", "routing_head.npz",
                 "routing_head.json", "calibration.json", "config.yaml", "benchmark.json", "summary.json"):
        assert (out / name).is_file(), name
    checkpoints = sorted((out / "checkpoints").glob("model_*_steps.zip"))
    assert [p.name for p in checkpoints] == ["model_128_steps.zip", "model_256_steps.zip"]  # SB3's CheckpointCallback
    from stable_baselines3.common.save_util import load_from_zip_file

    data, _, _ = load_from_zip_file(checkpoints[0])  # our own checkpoint: trusted
    assert data["proteus_dual_state"]["lambdas"] and len(data["proteus_dual_state"]["edges"]) == 4  # λ rides in the zip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timesteps"] >= 256 and len(summary["val_accuracy"]) == 3
    identity = json.loads((out / "benchmark.json").read_text())
    assert identity["name"] == "synthetic" and identity["env_kwargs"]["split_seed"] == 3
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["seed"] == 3 and config["n_envs"] == 2


def test_router_routes_like_the_policy_and_head(artifact):
    out, result, _ = artifact
    router = ProteusRouter.load(out)
    from proteus_env import make_synthetic_benchmark

    bench = make_synthetic_benchmark(n_queries=3000, seed=0, split_seed=3)
    rows = bench.splits["test"][:100]
    routed = router.route(bench.embeddings[rows], 0.5, prompt_tokens=bench.prompt_tokens[rows])
    assert routed.models.shape == (100,) and set(routed.models) <= set(bench.models)
    assert np.all((routed.mu >= 0) & (routed.mu <= 1))
    p_hat, c_hat = router.head.predict(bench.embeddings[rows], bench.prompt_tokens[rows])
    np.testing.assert_array_equal(routed.indices, router.head.route(p_hat, c_hat, routed.mu))
    np.testing.assert_allclose(routed.expected_accuracy, p_hat[np.arange(100), routed.indices])
    assert np.all(routed.expected_cost > 0)
    again = router.route(bench.embeddings[rows], 0.5, prompt_tokens=bench.prompt_tokens[rows])
    np.testing.assert_array_equal(again.indices, routed.indices)  # deterministic by default
    raw = router.route(bench.embeddings[rows], 0.5, prompt_tokens=bench.prompt_tokens[rows], calibrated=False)
    assert raw.tau_input == 0.5


def test_fast_policy_path_equals_sb3_predict(artifact):
    router = ProteusRouter.load(artifact[0])
    router.chunk_size = 7  # several chunks
    from proteus_env.policy_eval import batch_observations

    rng = np.random.default_rng(0)
    obs = batch_observations(rng.random((50, 11)), rng.random((50, 11)), rng.random(50), rng.random(50))
    np.testing.assert_allclose(router.policy_actions(obs), router.policy.predict(obs, deterministic=True)[0], atol=1e-6)


def test_router_flags_unreachable_targets(artifact):
    router = ProteusRouter.load(artifact[0])
    p_hat = np.full((4, 11), 0.5, np.float32)
    with pytest.warns(UnreachableTargetWarning, match="above the best validation accuracy this router reached"):
        result = router.route_observations(p_hat, p_hat, 0.99)
    assert not result.reachable
    with pytest.warns(UnreachableTargetWarning) as caught:  # the message says what was needed and what was reached
        router.route_observations(p_hat, p_hat, 0.99, confidence=0.95)
    message = str(caught[0].message)
    best = router.calibration.max_reachable
    assert "cannot be certified at 95% confidence" in message and f"best any input reached {best:.3f}" in message
    reachable = router.route_observations(p_hat, p_hat, float(router.calibration.val_accuracy.min()))
    assert reachable.reachable


def test_confidence_raises_the_policy_input(artifact):
    router = ProteusRouter.load(artifact[0])
    calibration = router.calibration
    tau = float(np.quantile(calibration.val_accuracy, 0.3))
    assert calibration.required_accuracy(tau, 0.95) > tau
    assert calibration.input_for(tau, 0.95)[0][0] >= calibration.input_for(tau)[0][0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.route(np.zeros((2, 5)), 0.5, prompt_tokens=np.ones(2)), "embeddings"),
        (lambda r: r.route(np.full((2, 32), np.nan), 0.5, prompt_tokens=np.ones(2)), "NaN"),
        (lambda r: r.route(np.zeros((2, 32)), 1.5, prompt_tokens=np.ones(2)), r"\[0, 1\]"),
        (lambda r: r.route(np.zeros((2, 32)), float("nan"), prompt_tokens=np.ones(2)), r"\[0, 1\]"),
        (lambda r: r.route(np.zeros((2, 32)), 0.5), "prompt_tokens"),
        (lambda r: r.route(["what is 2+2?"], 0.5), "encoder"),
        (lambda r: r.route_observations(np.zeros((2, 3)), np.zeros((2, 3)), 0.5), "shape"),
    ],
)
def test_router_rejects_bad_input(artifact, call, message):
    with pytest.raises(ValueError, match=message):
        call(ProteusRouter.load(artifact[0]))


def test_router_load_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        ProteusRouter.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing-dir"):
        ProteusRouter.load(tmp_path / "missing-dir")


def test_router_accepts_an_sb3_model_or_its_policy(artifact):
    out, result, _ = artifact
    loaded = ProteusRouter.load(out)
    from_model = ProteusRouter(result.model, loaded.head, loaded.calibration, {"lambdas": loaded.lambdas, "edges": loaded.lambda_edges})
    assert from_model.policy is result.model.policy
    with pytest.raises(ValueError, match="SB3 policy"):
        ProteusRouter(object(), loaded.head, loaded.calibration, {"lambdas": loaded.lambdas, "edges": loaded.lambda_edges})


def test_resume_continues_from_the_saved_lambda(artifact, tmp_path):
    out, result, config = artifact
    saved = json.loads((out / "lambda_table.json").read_text())["lambdas"]
    resumed = train(config=config, out_dir=tmp_path / "resumed", seed=3, timesteps=64, n_envs=2, resume=out)
    assert resumed.model.num_timesteps > result.model.num_timesteps
    state = json.loads((tmp_path / "resumed" / "lambda_table.json").read_text())
    assert state["rollouts"] > json.loads((out / "lambda_table.json").read_text())["rollouts"]
    assert len(state["lambdas"]) == len(saved)


def test_resume_from_a_checkpoint(artifact, tmp_path):
    out, _, config = artifact
    checkpoint = out / "checkpoints" / "model_128_steps.zip"
    resumed = train(config=config, out_dir=tmp_path / "resumed", seed=3, timesteps=64, n_envs=2, resume=checkpoint)
    assert resumed.model.num_timesteps == 128 + 128  # one rollout of 2 x 64 after the checkpoint's 128
    with pytest.raises(ValueError, match="Cannot resume"):
        train(config=config, out_dir=tmp_path / "other", seed=4, timesteps=64, n_envs=2, resume=checkpoint)
    with pytest.raises(FileNotFoundError, match="neither an artifact"):
        train(config=config, out_dir=tmp_path / "other", seed=3, timesteps=64, n_envs=2, resume=tmp_path / "nothing")


def test_training_into_an_existing_artifact_replaces_it(artifact, tmp_path):
    out, _, config = artifact
    target = tmp_path / "run"
    train(config={**config, "checkpoint_every": 64}, out_dir=target, seed=3, timesteps=64, n_envs=2)
    first = (target / "manifest.json").read_text()
    train(config=config, out_dir=target, seed=3, timesteps=128, n_envs=2)
    assert (target / "manifest.json").read_text() != first
    assert json.loads((target / "summary.json").read_text())["timesteps"] == 128
    assert (target / "checkpoints" / "model_64_steps.zip").is_file()  # checkpoints of the first run are kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run.lock"]  # the lock stays (deleting it would race)


def test_cli_train_and_route(tmp_path, capsys):
    torch.set_num_threads(1)
    config = tmp_path / "config.yaml"
    base = tiny_train_config()
    config.write_text(yaml.safe_dump({"default": base}))
    out = tmp_path / "run"
    code = main(["train", "--config", str(config), "--timesteps", "128", "--n-envs", "2", "--out", str(out), "--no-progress",
                 "--tensorboard", str(tmp_path / "tb"), "--set", "ppo.learning_rate=0.001"])
    assert code == 0
    assert "trained" in capsys.readouterr().out
    assert yaml.safe_load((out / "config.yaml").read_text())["ppo"]["learning_rate"] == 0.001
    assert list((tmp_path / "tb").rglob("events*"))
    from proteus_env import make_synthetic_benchmark

    bench = make_synthetic_benchmark(n_queries=3000, seed=0)
    np.save(tmp_path / "emb.npy", bench.embeddings[:3])
    np.save(tmp_path / "tok.npy", bench.prompt_tokens[:3])
    route = ["route", "--router", str(out), "--tau", "0.5", "--embeddings", str(tmp_path / "emb.npy"), "--tokens", str(tmp_path / "tok.npy")]
    code = main(route)
    text = capsys.readouterr().out
    assert code == 0 and "tau=0.500" in text and len(text.strip().splitlines()) == 5
    for flag in ("--confidence", "--margin"):  # --margin: the old name, still accepted
        assert main([*route, flag, "0.9"]) == 0
        assert "at 90% confidence" in capsys.readouterr().out


def _route_error(argv, capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


def test_cli_route_user_errors(artifact, tmp_path, capsys):
    out = artifact[0]
    from proteus_env import make_synthetic_benchmark

    bench = make_synthetic_benchmark(n_queries=3000, seed=0)
    np.save(tmp_path / "emb.npy", bench.embeddings[:3])
    np.save(tmp_path / "tok.npy", bench.prompt_tokens[:3])
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "garbage.npy").write_bytes(b"not an array")
    base = ["route", "--router", str(out), "--tau", "0.5", "--tokens", str(tmp_path / "tok.npy")]
    err = _route_error(["route", "--router", str(tmp_path / "nowhere"), "--tau", "0.5", "x"], capsys)
    assert err.startswith("proteus route: error:") and "nowhere" in err
    broken = shutil.copytree(out, tmp_path / "broken", ignore=shutil.ignore_patterns("checkpoints"))
    (broken / "lambda_table.json").write_text("{oops")
    err = _route_error(["route", "--router", str(broken), "--tau", "0.5", "x"], capsys)
    assert "lambda_table.json" in err and "checksum" in err
    err = _route_error([*base, "--embeddings", str(tmp_path / "objects.npy")], capsys)
    assert "objects.npy" in err
    err = _route_error([*base, "--embeddings", str(tmp_path / "garbage.npy")], capsys)
    assert "garbage.npy" in err
    err = _route_error([*base, "--embeddings", str(tmp_path / "missing.npy")], capsys)
    assert "missing.npy" in err
    err = _route_error([*base, "--embeddings", str(tmp_path / "emb.npy"), "--tau", "1.5"], capsys)
    assert "[0, 1]" in err
    err = _route_error([*base, "--embeddings", str(tmp_path / "emb.npy"), "--confidence", "95"], capsys)
    assert "confidence" in err
    err = _route_error(["route", "--router", str(out), "--tau", "0.5", "what is 2+2?"], capsys)
    assert "encoder" in err


def test_cli_train_user_errors(tmp_path, capsys):
    err = _route_error(["train", "--set", "tau_headrom=0.1", "--out", str(tmp_path / "x")], capsys)
    assert err.startswith("proteus train: error:") and "'tau_headrom'" in err and "'tau_headroom'" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("default:\n  ppo:\n    lerning_rate: 0.1\n")
    err = _route_error(["train", "--config", str(bad), "--out", str(tmp_path / "x")], capsys)
    assert "bad.yaml" in err and "ppo.learning_rate" in err
    err = _route_error(["train", "--config", str(tmp_path / "none.yaml")], capsys)
    assert "none.yaml" in err
    err = _route_error(["train", "--resume", str(tmp_path / "gone"), "--out", str(tmp_path / "x"), "--timesteps", "64"], capsys)
    assert "gone" in err
    assert not (tmp_path / "x").exists()


def test_config_helpers():
    config = load_config("Proteus-RouterBench-v0")
    assert config["ppo"]["gamma"] == 0.0
    apply_override(config, "dual.eta=0.2")
    assert config["dual"]["eta"] == 0.2
    with pytest.raises(ValueError, match="key"):
        apply_override(config, "dual.eta")
    with pytest.raises(FileNotFoundError):
        load_config(path="/nonexistent.yaml")


@pytest.mark.slow
def test_router_trained_on_routerbench_routes_prompts(routerbench_sample, tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path / "home"))
    torch.set_num_threads(1)
    config = load_config("Proteus-RouterBench-v0")
    config["env_kwargs"] = {"session_length": 16}
    config["ppo"].update({"n_steps": 64, "batch_size": 64, "n_epochs": 1})
    config["dual"].update({"n_bins": 3})
    config["checkpoint_every"] = 0
    out = tmp_path / "rb"
    train("Proteus-RouterBench-v0", config=config, out_dir=out, seed=0, timesteps=128, n_envs=1, data_path=str(routerbench_sample))
    assert (out / "encoder" / "encoder.json").is_file()
    router = ProteusRouter.load(out)
    result = router.route(["What is the capital of France?", "Write a Python function that reverses a list."], 0.6)
    assert result.models.shape == (2,) and set(result.models) <= set(router.head.models)
    from proteus_env import load_benchmark

    bench = load_benchmark("routerbench", data_path=str(routerbench_sample), split_seed=0)
    rows = bench.splits["test"][:5]
    by_text = router.route([str(p) for p in bench.prompts[rows]], 0.6, prompt_tokens=bench.prompt_tokens[rows])
    by_embedding = router.route(bench.embeddings[rows], 0.6, prompt_tokens=bench.prompt_tokens[rows])
    np.testing.assert_array_equal(by_text.indices, by_embedding.indices)


def test_resume_refuses_another_split(artifact, tmp_path):
    out, _, config = artifact
    with pytest.raises(ValueError, match="Cannot resume"):
        train(config=config, out_dir=tmp_path, seed=4, timesteps=64, n_envs=2, resume=out)  # trained on seed 3


def test_resume_refuses_another_action_map(artifact, tmp_path):
    """The action map gives the policy's actions their meaning: a checkpoint trained as action = μ cannot continue under another."""
    out, _, config = artifact
    identity = {**config, "env_kwargs": {**config["env_kwargs"], "head_config": {"action_map": "identity"}}}
    with pytest.raises(ValueError, match="action_map"):
        train(config=identity, out_dir=tmp_path, seed=3, timesteps=64, n_envs=2, resume=out)


def test_unreachable_target_gets_the_most_accurate_input(artifact):
    calibration = ProteusRouter.load(artifact[0]).calibration
    inputs, reachable = calibration.input_for(0.999)
    assert not reachable[0]
    assert inputs[0] == calibration.tau_inputs[int(np.argmax(calibration.val_accuracy))]


def test_calibration_map_is_monotone_and_flags_unreachable_targets():
    from agents.proteus.calibration import TauCalibration

    calibration = TauCalibration(tau_inputs=np.array([0.3, 0.4, 0.5, 0.6]), val_accuracy=np.array([0.50, 0.70, 0.65, 0.80]),
                                 val_usd_per_1k=np.array([1.0, 3.0, 2.0, 4.0]), n_val=1000)
    inputs, reachable = calibration.input_for([0.45, 0.5, 0.66, 0.68, 0.75, 0.9])
    np.testing.assert_allclose(inputs, [0.3, 0.3, 0.4, 0.4, 0.6, 0.6])  # the smallest input whose running max reaches τ
    assert np.all(np.diff(inputs) >= 0)
    np.testing.assert_array_equal(reachable, [True, True, True, True, True, False])
    confident_inputs, _ = calibration.input_for([0.5], confidence=0.95)
    assert confident_inputs[0] == 0.4  # 0.5 + z·sqrt(0.25/500) = 0.537 > 0.50


def test_training_leaves_no_sb3_log_folder_behind(artifact, tmp_path, monkeypatch):
    import tempfile

    _, _, config = artifact
    scratch = tmp_path / "tempdir"
    scratch.mkdir()
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where SB3's default logger would make SB3-<date>
    train(config=config, out_dir=tmp_path / "run", seed=3, timesteps=64, n_envs=2)
    assert list(scratch.iterdir()) == []
