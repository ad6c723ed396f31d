"""The sweep's search space: parsed and checked against the training config before Ray starts (no Ray needed)."""

from __future__ import annotations

import pytest

from agents.sweep.space import Distribution, SearchSpace, resolve_benchmarks


def test_grid_times_seeds_times_benchmarks_times_samples():
    space = SearchSpace.parse(grid=["ppo.learning_rate=[0.001, 0.0003]", "dual.n_bins=[3, 5, 9]"], random=["dual.eta=loguniform(0.1, 1)"],
                              seeds=[0, 1], benchmarks=["synthetic"], num_samples=2)
    assert space.n_trials == 2 * 3 * 2 * 1 * 2
    assert space.keys == ["ppo.learning_rate", "dual.n_bins", "dual.eta"]
    space.check()
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_a_single_grid_value_and_lists_as_values():
    space = SearchSpace.parse(grid=["ppo.n_epochs=5", "policy_kwargs.net_arch=[[32], [64, 64]]"])
    assert space.grid == {"ppo.n_epochs": [5], "policy_kwargs.net_arch": [[32], [64, 64]]}
    space.check()


def test_benchmark_names_and_ids():
    assert resolve_benchmarks(["synthetic", "Proteus-SPROUT-v0", "SYNTHETIC"]) == ["Proteus-Synthetic-v0", "Proteus-SPROUT-v0"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grid": ["ppo.learning_rat=[0.1]"]}, "Unknown config key 'ppo.learning_rat' .*did you mean 'ppo.learning_rate'"),
    ({"random": ["dual.etaa=uniform(0.1, 1)"]}, "Unknown config key 'dual.etaa'"),
    ({"grid": ["ppo.n_steps=[64, 1.5]"]}, "ppo.n_steps.*must be an integer"),
])
def test_unknown_keys_and_bad_values_fail_before_any_trial(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace.parse(**kwargs).check()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grid": ["ppo.learning_rate=[]"]}, "empty search space: --grid ppo.learning_rate has no values"),
    ({"random": ["dual.eta=uniform(1, 1)"]}, "empty search space.*low < high"),
    ({"random": ["dual.eta=choice([])"]}, "empty search space"),
    ({"num_samples": 0}, "empty search space: --num-samples"),
    ({"seeds": []}, "empty search space: no split seed"),
    ({"benchmarks": []}, "empty search space: no benchmark"),
    ({"benchmarks": ["routerbenchh"]}, "unknown benchmark 'routerbenchh'; known: routerbench, sprout, synthetic"),
    ({"random": ["dual.eta=normal(0, 1)"]}, "unknown distribution 'normal'"),
    ({"random": ["dual.eta=loguniform(0, 1)"]}, "loguniform needs 0 < low"),
    ({"grid": ["dual.eta"]}, "must look like KEY=VALUES"),
    ({"grid": ["dual.eta=[0.1]"], "random": ["dual.eta=uniform(0.1, 1)"]}, "given twice"),
    ({"seeds": [0, 0]}, "distinct non-negative"),
])
def test_bad_spaces_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace.parse(**kwargs)


def test_distributions_to_tune_and_back():
    tune = pytest.importorskip("ray.tune")
    dist = Distribution.parse("randint(2, 6)", "ppo.n_epochs")
    assert dist.examples() == [2, 5]
    sampler = dist.to_tune(tune)
    assert 2 <= sampler.sample() < 6
    assert Distribution.parse(dist.describe(), "ppo.n_epochs") == dist
