"""Helpers shared by test modules (imported by name: a module called ``conftest`` is ambiguous once a
sub-folder has its own conftest.py, as tests/robustness does)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
ROUTERBENCH_SAMPLE = SHARED_DATA / "routerbench" / "routerbench_0shot_sample365.csv"


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
