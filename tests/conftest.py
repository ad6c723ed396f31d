"""Shared fixtures: a small synthetic benchmark and the path of the shared real-data sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from proteus_env import Benchmark, make_synthetic_benchmark

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
ROUTERBENCH_SAMPLE = SHARED_DATA / "routerbench" / "routerbench_0shot_sample365.csv"


@pytest.fixture(scope="session")
def small_benchmark() -> Benchmark:
    """A 3,000-query synthetic benchmark: fast to fit, same structure as the default."""
    return make_synthetic_benchmark(n_queries=3000, seed=0)


@pytest.fixture(scope="session")
def routerbench_sample() -> Path:
    """The real 365-prompt RouterBench sample in ../shared (never copied into the repository)."""
    if not ROUTERBENCH_SAMPLE.is_file():
        pytest.skip(f"RouterBench sample not found at {ROUTERBENCH_SAMPLE}")
    return ROUTERBENCH_SAMPLE


def tiny_train_config(**overrides) -> dict:
    """The packaged training config shrunk to seconds: 3,000 queries, 64-step rollouts, 3 λ-bins."""
    from agents.proteus.config import load_config

    tiny = {"env_kwargs": {"session_length": 16, "benchmark_kwargs": {"n_queries": 3000}},
            "ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "gamma": 0.0, "device": "cpu"},
            "dual": {"n_bins": 3, "max_val_queries": 300}, "checkpoint_every": 0, "calibration_points": 11, **overrides}
    config = load_config()
    for key, value in tiny.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


@pytest.fixture(scope="session")
def tiny_routers(tmp_path_factory) -> Path:
    """A parent directory holding two tiny trained routers, on split seeds 0 and 1."""
    import torch

    from agents.proteus.train import train

    torch.set_num_threads(1)
    parent = tmp_path_factory.mktemp("routers")
    for seed in (0, 1):
        train(config=tiny_train_config(), out_dir=parent / f"seed{seed}", seed=seed, timesteps=256, n_envs=2)
    return parent
