import math

import numpy as np
import pytest
from scipy import stats

from proteus_env.guarantees import (
    certified_threshold,
    fixed_sequence_choice,
    required_population_accuracy,
    scores_are_binary,
    upper_tail_p_value,
)


def test_population_threshold_is_the_clopper_pearson_inversion():
    # Without a deployment sample, a mean certifies τ exactly when the one-sided Clopper–Pearson lower
    # bound of that mean is at least τ.
    n, tau, delta = 400, 0.7, 0.05
    cert = certified_threshold(tau, n, delta)
    k = round(cert.threshold * n)
    lower = lambda successes: stats.beta.ppf(delta, successes, n - successes + 1)  # noqa: E731
    assert lower(k) >= tau - 1e-12
    assert lower(k - 1) < tau


def test_deployment_size_raises_the_bar_and_large_deployments_approach_the_population():
    n_val, tau, delta = 2000, 0.6, 0.05
    population = certified_threshold(tau, n_val, delta).threshold
    small = certified_threshold(tau, n_val, delta, 200).threshold
    large = certified_threshold(tau, n_val, delta, 2_000_000).threshold
    assert population < large < small
    assert large - population < 0.01


def test_fractional_scores_need_a_higher_bar_than_binary_ones():
    binary = certified_threshold(0.6, 1000, 0.05, 1000, binary=True).threshold
    fractional = certified_threshold(0.6, 1000, 0.05, 1000, binary=False).threshold
    assert binary < fractional <= 1.0


def test_uncertifiable_targets_are_reported():
    assert not certified_threshold(0.99, 20, 0.05, 20).certifiable
    assert certified_threshold(0.0, 20, 0.05, 20).threshold == 0.0
    assert math.isinf(required_population_accuracy(1.0, 10, 0.01, binary=False))


@pytest.mark.parametrize("binary", [True, False])
def test_p_values_are_monotone_in_the_observed_mean(binary):
    means = np.linspace(0.3, 1.0, 36)
    p = [upper_tail_p_value(m, 300, 0.6, binary=binary) for m in means]
    assert np.all(np.diff(p) <= 1e-15)
    assert p[0] > 0.5 and p[-1] < 1e-6


def test_fixed_sequence_stops_at_the_first_failure():
    assert fixed_sequence_choice(np.array([0.9, 0.8, 0.65, 0.75, 0.6]), 0.7) == 1
    assert fixed_sequence_choice(np.array([0.9, 0.8]), 0.7) == 1
    assert fixed_sequence_choice(np.array([0.6, 0.9]), 0.7) is None  # a later pass does not count


def test_the_floor_holds_with_the_stated_probability_for_the_chosen_setting():
    # 20 settings whose population accuracy falls from 0.85 to 0.45; each trial draws validation and
    # deployment outcomes, picks a setting by fixed-sequence testing, and checks the served floor.
    rng = np.random.default_rng(0)
    p = np.linspace(0.85, 0.45, 20)
    n_val, n_deploy, tau, delta, trials = 300, 200, 0.7, 0.1, 4000
    cert = certified_threshold(tau, n_val, delta, n_deploy)
    val = rng.binomial(n_val, p, size=(trials, p.size)) / n_val
    failures = 0
    for t in range(trials):
        chosen = fixed_sequence_choice(val[t], cert.threshold)
        if chosen is not None:
            failures += rng.binomial(n_deploy, p[chosen]) / n_deploy < tau
    assert failures / trials <= delta  # the bound is conservative; Monte-Carlo noise is ~0.005 here


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="delta"):
        certified_threshold(0.5, 100, 1.5)
    with pytest.raises(ValueError, match="n_val"):
        certified_threshold(0.5, 0, 0.05)
    with pytest.raises(ValueError, match="tau"):
        certified_threshold(1.2, 100, 0.05)


def test_scores_are_binary():
    assert scores_are_binary(np.array([[0.0, 1.0], [1.0, 1.0]]))
    assert not scores_are_binary(np.array([0.0, 0.25, 1.0]))


def test_certify_returns_the_cheapest_certified_setting_and_its_threshold():
    from proteus_env.guarantees import certify

    accuracy = np.array([0.80, 0.78, 0.74, 0.70, 0.60])  # most accurate first
    choice = certify(accuracy, 0.7, 2000, 0.95, 2000, binary=True)
    assert choice.certified and accuracy[choice.position] >= choice.certificate.threshold
    assert choice.position == 2 and choice.certificate.delta == pytest.approx(0.05)
    assert not certify(accuracy, 0.79, 2000, 0.95, 2000, binary=True).certified
