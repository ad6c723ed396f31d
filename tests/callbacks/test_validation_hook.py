"""``train(on_validation=...)``: the hook sees every dual update's validation pass, once."""

from __future__ import annotations

import numpy as np
import torch
from shared_fixtures import tiny_train_config

from agents.proteus.train import train


def test_the_hook_is_called_after_every_dual_update(tmp_path):
    torch.set_num_threads(1)
    calls = []
    result = train(config=tiny_train_config(), out_dir=tmp_path / "run", seed=0, timesteps=512, n_envs=2,
                   on_validation=lambda steps, validation: calls.append((steps, dict(validation))))
    assert [steps for steps, _ in calls] == [128, 256, 384, 512]  # 2 envs x 64 steps per rollout, one update each
    steps, last = calls[-1]
    assert np.allclose(last["accuracy"], result.summary["val_accuracy"]) and set(last) >= {"tau", "usd_per_1k", "tau_span"}


def test_a_budget_shorter_than_a_rollout_reports_its_one_pass(tmp_path):
    calls = []
    train(config=tiny_train_config(), out_dir=tmp_path / "run", seed=0, timesteps=16, n_envs=2,
          on_validation=lambda steps, validation: calls.append(steps))
    assert len(calls) == 1
