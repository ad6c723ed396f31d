"""The typed training config: defaults in one place, unknown keys named with the closest valid one."""

import dataclasses

import pytest
import yaml

from agents.proteus import train as train_module
from agents.proteus.config import (
    DEFAULT_ENV_ID,
    DualConfig,
    PolicyConfig,
    TrainConfig,
    apply_override,
    load_config,
    load_train_config,
)


def test_the_yaml_repeats_the_code_defaults():
    text = (train_module.Path(train_module.__file__).parent / "configs" / "default.yaml").read_text()
    blocks = yaml.safe_load(text)
    assert TrainConfig.from_dict(blocks["default"]) == TrainConfig()
    for env_id in ("Proteus-Synthetic-v0", "Proteus-RouterBench-v0", "Proteus-SPROUT-v0"):
        assert load_train_config(env_id) == TrainConfig()
    assert TrainConfig().calibration_points == 201 and TrainConfig().tau_headroom == 0.0
    assert TrainConfig().env_kwargs["reward_normalization"] == "one_plus_lambda" and TrainConfig().env_kwargs["train_holdout"] == 0.1


def test_old_import_paths_still_work():
    assert train_module.load_config is load_config and train_module.apply_override is apply_override
    assert train_module.DEFAULT_ENV_ID == DEFAULT_ENV_ID


def test_load_config_returns_every_key():
    config = load_config("Proteus-RouterBench-v0")
    assert config == TrainConfig().to_dict()
    assert config["ppo"]["gamma"] == 0.0 and config["dual"]["pid_gains"] == [0.4, 0.05, 0.1]
    assert config["policy_kwargs"]["features_extractor_kwargs"] == {"hidden_dim": 64, "n_layers": 1}
    yaml.safe_dump(config)  # YAML-safe


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("tau_headrom=0.1", r"'tau_headrom' \(did you mean 'tau_headroom'\?\)"),
        ("ppo.lerning_rate=0.1", r"'ppo.lerning_rate' \(did you mean 'ppo.learning_rate'\?\)"),
        ("policy_kwargs.features_extractor_kwargs.hiden_dim=8", "did you mean 'policy_kwargs.features_extractor_kwargs.hidden_dim'"),
        ("zzz=1", "valid keys: calibration_points"),
        ("ppo.n_steps=abc", "'ppo.n_steps' must be an integer"),
        ("ppo.n_steps=1.5", "'ppo.n_steps' must be an integer"),
        ("ppo.normalize_advantage=3", "'ppo.normalize_advantage' must be true or false"),
        ("dual=3", "'dual' must be a mapping"),
        ("dual.mode.x=1", "dual.mode is not a mapping"),
        ("policy_kwargs.activation_fn=swish", "activation_fn must be one of"),
        ("dual.eta", "key.subkey=value"),
    ],
)
def test_bad_overrides_are_named(assignment, message):
    for config in (load_config(), TrainConfig()):
        with pytest.raises(ValueError, match=message):
            apply_override(config, assignment)


def test_good_overrides():
    config = load_config()
    apply_override(config, "dual.eta=0.2")
    apply_override(config, "ppo.learning_rate=3e-4")  # YAML reads 3e-4 as a string; a float field parses it
    apply_override(config, "env_kwargs.benchmark_kwargs.n_queries=5000")  # env_kwargs is free-form
    apply_override(config, "policy_kwargs.net_arch.pi=[32]")
    assert config["dual"]["eta"] == 0.2 and config["ppo"]["learning_rate"] == 3e-4
    assert config["env_kwargs"] == {**TrainConfig().env_kwargs, "benchmark_kwargs": {"n_queries": 5000}}
    typed = TrainConfig.from_dict(config)
    assert typed.dual.eta == 0.2 and typed.policy_kwargs.net_arch == {"pi": [32], "vf": [64, 64]}
    assert TrainConfig().with_overrides(["dual.n_bins=3", "n_envs=2"]).dual.n_bins == 3
    typed = TrainConfig()
    apply_override(typed, "dual.controller=pid")
    assert typed.dual == dataclasses.replace(DualConfig(), controller="pid")


def test_partial_mappings_keep_the_defaults():
    config = TrainConfig.from_dict({"ppo": {"n_steps": 64}, "dual": {"n_bins": 3}})
    assert config.ppo.n_steps == 64 and config.ppo.batch_size == 256 and config.dual.n_bins == 3
    assert TrainConfig.coerce(None) == TrainConfig() and TrainConfig.coerce(config) == config
    assert TrainConfig.coerce(config) is not config
    assert PolicyConfig().to_sb3()["activation_fn"].__name__ == "Tanh"


def test_config_files_are_checked(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("default:\n  dual:\n    n_binz: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*'dual.n_binz' \(did you mean 'dual.n_bins'\?\)"):
        load_config(path=bad)
    bad.write_text("default: [1, 2]\n")
    with pytest.raises(ValueError, match="no block"):
        load_config(path=bad)
    bad.write_text("default: {ppo: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(path=bad)
    with pytest.raises(FileNotFoundError):
        load_config(path=tmp_path / "nonexistent.yaml")
    good = tmp_path / "good.yaml"
    good.write_text("Proteus-Synthetic-v0:\n  n_envs: 2\n")
    assert load_train_config(path=good).n_envs == 2 and load_train_config(path=good).ppo == TrainConfig().ppo


def test_train_rejects_an_unknown_key_before_training(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'checkpoint_every'"):
        train_module.train(config={"checkpoint_evry": 0}, out_dir=tmp_path / "x", timesteps=64)
    assert not (tmp_path / "x").exists()
