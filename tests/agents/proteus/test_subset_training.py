"""Issue 14: a small training run on a two-model synthetic subset reaches down to the cheap model.

Measured with this budget (seed 0, 32,768 steps, about 16 s on one core): the calibrated router's
validation accuracy spans only [0.803, 0.808] (the strong model's end) while the cheap model alone
scores 0.630 on the same rows; with 8,192 steps the policy collapsed onto the cheap model instead
(span 0.00), which would pass the low-end check for the wrong reason, hence the second assertion.
This is the reward-design problem issue 14 describes (the quality term prefers the strong model at
λ = 0, so the low τ-bins never learn the cheap behaviour), not the subset plumbing: the test is kept
as an expected failure until the reward side is fixed.
"""

from __future__ import annotations

import numpy as np
import pytest
from shared_fixtures import tiny_train_config

from agents.proteus.artifact import read_artifact
from agents.proteus.train import train
from proteus_env import load_benchmark
from proteus_env.policy_eval import validation_halves

PAIR = ["gpt-4-1106-preview", "zero-one-ai/Yi-34B-Chat"]
TIMESTEPS = 32768


class ReachableRangeShortfall(AssertionError):
    """The calibrated router's reachable range misses an end of the frontier (the reward design, issue 14)."""


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="issue 14, open: on a two-model fleet the policy settles at one end of the range (the "
                                        "reward is a step function of mu with one switch point, and once the Beta policy "
                                        "concentrates away from it no gradient reaches it); the subset plumbing itself is "
                                        "checked by the other assertions, which fail the test",
                   raises=ReachableRangeShortfall)
def test_two_model_subset_training_reaches_the_cheap_model(tmp_path):
    import torch

    torch.set_num_threads(1)
    config = tiny_train_config(calibration_points=21)
    config["ppo"].update({"n_steps": 256, "batch_size": 256, "n_epochs": 4})
    result = train(config=config, out_dir=tmp_path / "pair", seed=0, timesteps=TIMESTEPS, n_envs=2, models=PAIR)

    artifact = read_artifact(result.out_dir)
    assert artifact.models == PAIR and len(artifact.dropped_models) == 9
    bench = load_benchmark("synthetic", n_queries=3000, split_seed=0, models=PAIR)
    _, rows = validation_halves(bench, seed=0)  # the rows the τ calibration is measured on
    costs = bench.costs[rows].mean(axis=0)
    cheap, strong = int(np.argmin(costs)), int(np.argmax(costs))
    assert bench.models[cheap] == "zero-one-ai/Yi-34B-Chat"
    cheap_accuracy = float(bench.scores[rows, cheap].mean())
    strong_accuracy = float(bench.scores[rows, strong].mean())
    low, high = result.summary["reachable_accuracy"]
    if high - low < 0.5 * (strong_accuracy - cheap_accuracy) - 0.01:
        raise ReachableRangeShortfall(f"the calibrated router's validation accuracy spans only [{low:.3f}, {high:.3f}] "
                                      f"(cheap model {cheap_accuracy:.3f}, strong model {strong_accuracy:.3f})")
    if low > cheap_accuracy + 0.01:
        raise ReachableRangeShortfall(f"the calibrated router's lowest validation accuracy {low:.3f} is more than 1 point above "
                                      f"the cheap model's {cheap_accuracy:.3f} (strong model {strong_accuracy:.3f}; reachable "
                                      f"up to {high:.3f})")
