"""Issue 14: a small training run on a two-model synthetic subset reaches down to the cheap model.

At the default config and budget the pair now trains (benchmarks/agent_targets.py, seeds 0-4:
validation accuracy spans 0.649-0.775 of the achievable 0.644-0.785, every floor met; README,
"Every model subset"), thanks to the routing head's action map and the dual's frontier warm start.
At this test's budget it does not yet: measured (seed 0, tiny config with 3 λ-bins) the range was
[0.685, 0.689] after 32,768 steps and [0.682, 0.762] after 98,304 steps, the low end 2-3 points
above the cheap model's 0.659: with 3 bins, the lowest τ shares a λ sized for the bin centre above
it. So the range check is an expected failure (``raises=ReachableRangeShortfall``) at a budget a
test can afford; the subset plumbing assertions still fail the test for real.
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
@pytest.mark.xfail(strict=False, reason="issue 14: at a test's budget (32k steps, 3 λ-bins) the pair's lowest reachable accuracy "
                                        "stays 2-3 points above the cheap model's; the default budget reaches it (README, "
                                        "'Every model subset'); the subset plumbing itself is checked by the other assertions",
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
