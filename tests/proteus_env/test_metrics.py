"""Metrics on hand-made cases whose answers are known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from proteus_env import metrics as M

# Three queries, three models. Model 0 cheap, model 2 dear.
SCORES = np.array(
    [
        [1.0, 1.0, 1.0],  # everyone right: the oracle takes model 0
        [0.0, 1.0, 1.0],  # models 1 and 2 right: the oracle takes model 1
        [0.0, 0.0, 0.0],  # nobody right: the oracle takes the cheapest, model 0
        [0.0, 0.0, 1.0],  # only model 2
    ]
)
COSTS = np.array(
    [
        [0.001, 0.002, 0.010],
        [0.001, 0.002, 0.010],
        [0.001, 0.002, 0.010],
        [0.001, 0.002, 0.010],
    ]
)


# ---------------------------------------------------------------------------- outcomes
def test_routing_outcome_exact():
    accuracy, usd = M.routing_outcome(SCORES, COSTS, np.array([0, 1, 0, 2]))
    assert accuracy == pytest.approx(0.75)
    assert usd == pytest.approx((0.001 + 0.002 + 0.001 + 0.010) / 4 * 1000)


def test_oracle_choice_cost_and_accuracy():
    choice = M.oracle_choice(SCORES, COSTS)
    np.testing.assert_array_equal(choice, [0, 1, 0, 2])
    accuracy, usd = M.routing_outcome(SCORES, COSTS, choice)
    assert accuracy == pytest.approx(0.75)
    assert usd == pytest.approx(3.5)


def test_oracle_prefers_cheapest_among_fractional_best():
    scores = np.array([[0.25, 0.75, 0.75]])
    costs = np.array([[0.1, 0.3, 0.2]])
    assert M.oracle_choice(scores, costs).tolist() == [2]


def test_reference_outcomes():
    ref = M.reference_outcomes(SCORES, COSTS)
    assert ref.best_fixed_index == 2 and ref.cheapest_index == 0
    assert ref.best_fixed == pytest.approx((0.75, 10.0))
    assert ref.cheapest == pytest.approx((0.25, 1.0))
    assert ref.oracle == pytest.approx((0.75, 3.5))
    forced = M.reference_outcomes(SCORES, COSTS, best_fixed=1)
    assert forced.best_fixed == pytest.approx((0.5, 2.0))


def test_fixed_model_outcomes():
    accuracy, usd = M.fixed_model_outcomes(SCORES, COSTS)
    np.testing.assert_allclose(accuracy, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(usd, [1.0, 2.0, 10.0])


# ---------------------------------------------------------------------------- statistics
def test_bootstrap_ci_coverage_on_bernoulli():
    # 200 samples of 200 Bernoulli(0.3) draws; the 95 % interval should cover p about 95 % of
    # the time. With 200 intervals the count of covers has sd sqrt(200 * 0.95 * 0.05) ≈ 3.1, so
    # [0.89, 0.99] is ±3 sd around 0.95 (with room for the percentile interval's known slight
    # under-coverage at n = 200). Seeds are fixed, so the test is deterministic.
    rng = np.random.default_rng(123)
    p, covered = 0.3, 0
    for i in range(200):
        sample = (rng.random(200) < p).astype(float)
        low, high = M.bootstrap_ci(sample, confidence=0.95, n_boot=1000, seed=i)
        covered += low <= p <= high
    assert 0.89 <= covered / 200 <= 0.99


def test_bootstrap_ci_continuous_matches_normal_width():
    values = np.random.default_rng(0).random(500)  # many distinct values: index resampling path
    low, high = M.bootstrap_ci(values, n_boot=2000, seed=1)
    assert low < values.mean() < high
    expected = 2 * 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert (high - low) == pytest.approx(expected, rel=0.15)


def test_bootstrap_ci_degenerate_and_deterministic():
    assert M.bootstrap_ci(np.ones(10)) == (1.0, 1.0)
    assert M.bootstrap_ci([0.5]) == (0.5, 0.5)
    sample = np.array([0, 1, 1, 0, 1, 0.25, 0.75])
    assert M.bootstrap_ci(sample, seed=3) == M.bootstrap_ci(sample, seed=3)


def test_one_sided_margin_closed_form_and_wilson_inversion():
    assert M.one_sided_margin(0.7, 100, None) == 0.7
    z = norm.ppf(0.95)
    tau_prime = M.one_sided_margin(0.5, 100, 0.95)
    assert tau_prime == pytest.approx(0.5 + z * 0.05)
    # The Wilson lower bound of an observed accuracy τ' on n queries is τ again.
    n, p_obs = 100, tau_prime
    wilson_low = (p_obs + z**2 / (2 * n) - z * math.sqrt(p_obs * (1 - p_obs) / n + z**2 / (4 * n**2))) / (1 + z**2 / n)
    assert wilson_low == pytest.approx(0.5, abs=1e-12)
    assert M.one_sided_margin(1.0, 10, 0.99) == 1.0
    assert M.one_sided_margin(0.99, 5, 0.99) == 1.0  # capped


def test_effective_sample_size():
    assert M.effective_sample_size(600) == 300
    assert M.effective_sample_size(599) == 299  # 299.5 truncated, as agents.proteus.calibration does
    assert M.effective_sample_size(100, 300) == 75
    assert M.effective_sample_size(1) == 1


def test_pearson():
    assert M.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert M.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert M.pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(M.pearson([1, 2, 3], [1, 1, 1]))
    assert math.isnan(M.pearson([1], [1]))


# ---------------------------------------------------------------------------- compliance
TAUS = np.array([0.5, 0.6, 0.7, 0.8])
ACCS = np.array([0.52, 0.57, 0.76, 0.80])  # |acc − τ| = 0.02, 0.03, 0.06, 0.00


def test_floor_compliance_rate():
    assert M.floor_compliance_rate(TAUS, ACCS) == pytest.approx(0.75)  # all but τ = 0.6


def test_band_rates_absolute_points():
    assert M.band_rate(TAUS, ACCS, 0.02) == pytest.approx(0.5)  # 0.02 (edge counts) and 0.00
    assert M.band_rate(TAUS, ACCS, 0.05) == pytest.approx(0.75)
    assert M.band_rate(TAUS, ACCS, 0.0) == pytest.approx(0.25)


def test_savings_efficiency_rpi():
    assert M.savings(2.0, 10.0) == pytest.approx(0.8)
    np.testing.assert_allclose(M.savings(np.array([5.0, 10.0]), 10.0), [0.5, 0.0])
    # Router: 0.6 accuracy at $1/1K; reference 0.75 at $10/1K → (0.6/1) / (0.75/10) = 8.
    assert M.routing_efficiency(0.6, 1.0, (0.75, 10.0)) == pytest.approx(8.0)
    assert M.relative_performance_index(0.5, 0.25, 0.75) == pytest.approx(0.5)
    assert M.relative_performance_index(0.25, 0.25, 0.75) == pytest.approx(0.0)


# ---------------------------------------------------------------------------- AIQ
def test_nondecreasing_hull_drops_dominated_and_decreasing_points():
    costs = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 1.0])
    quality = np.array([0.2, 0.3, 0.6, 0.5, 0.7, 0.65, 0.4])
    x, y = M.nondecreasing_hull(costs, quality)
    # (0.5, 0.3) and (1.5, 0.5) lie under chords, (1.0, 0.4) is a worse duplicate cost,
    # (3.0, 0.65) is past the best quality.
    np.testing.assert_allclose(x, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(y, [0.2, 0.6, 0.7])


def test_aiq_of_known_hull():
    costs = np.array([0.0, 1.0, 2.0, 1.5, 3.0])
    quality = np.array([0.2, 0.6, 0.7, 0.5, 0.65])
    # Trapezoids 0.5·(0.2 + 0.6) + 0.5·(0.6 + 0.7), then flat 0.7 from 2 to 3: 1.75 over a range of 3.
    assert M.aiq(costs, quality) == pytest.approx(1.75 / 3)
    # Shared range [0, 4]: one more unit at 0.7.
    assert M.aiq(costs, quality, cost_range=(0.0, 4.0)) == pytest.approx(2.45 / 4)


def test_aiq_counts_zero_below_the_cheapest_point_and_handles_one_point():
    assert M.aiq([1.0, 2.0], [0.5, 0.5], cost_range=(0.0, 2.0)) == pytest.approx(0.25)
    assert M.aiq([1.0], [0.4]) == pytest.approx(0.4)
    assert M.aiq([1.0], [0.4], cost_range=(0.0, 0.5)) == 0.0


# ---------------------------------------------------------------------------- τ grid and records
def test_feasible_tau_grid_default_and_user():
    grid = M.feasible_tau_grid(0.293, 0.812, n=6)
    # Ends rounded inwards (0.30, 0.81), inner points of linspace(0.30, 0.81, 6) to the nearest 0.01.
    np.testing.assert_allclose(grid.taus, [0.30, 0.40, 0.50, 0.61, 0.71, 0.81])
    assert M.feasible_tau_grid(0.293, 0.812, n=6, step=None).taus[0] == 0.293
    dense = M.feasible_tau_grid(0.30, 0.32, n=5)  # spacing below the step: not rounded
    np.testing.assert_allclose(dense.taus, np.linspace(0.30, 0.32, 5))
    assert grid.is_feasible.all() and grid.low == 0.293 and grid.high == 0.812
    user = M.feasible_tau_grid(0.3, 0.8, taus=[0.2, 0.5, 0.85, 0.95])
    np.testing.assert_array_equal(user.is_feasible, [False, True, False, False])
    np.testing.assert_allclose(user.taus, [0.2, 0.5, 0.85, 0.95])
    assert M.feasible_tau_grid(0.5, 0.5, n=3).taus.tolist() == [0.5, 0.5, 0.5]


def test_evaluate_tau_record():
    record = M.evaluate_tau(SCORES, COSTS, [0, 1, 0, 2], 0.8, mu=np.array([0.1, 0.2, 0.3, 0.4]), feasible=False)
    assert record.accuracy == pytest.approx(0.75)
    assert record.usd_per_1k == pytest.approx(3.5)
    assert not record.floor_met
    assert record.violation == pytest.approx(0.05)
    assert record.slack == pytest.approx(-0.05)
    assert record.mean_mu == pytest.approx(0.25)
    assert record.accuracy_ci[0] <= 0.75 <= record.accuracy_ci[1]
    assert record.feasible is False and record.n_queries == 4
    met = M.evaluate_tau(SCORES, COSTS, [0, 1, 0, 2], 0.75)
    assert met.floor_met and met.violation == 0.0 and math.isnan(met.mean_mu)
    assert set(met.as_dict()) >= {"tau", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "usd_per_1k"}


def _record(tau: float, accuracy: float, usd: float, mu: float, feasible: bool = True) -> M.TauRecord:
    return M.TauRecord(tau, accuracy, (accuracy, accuracy), usd, accuracy >= tau, max(0.0, tau - accuracy),
                       accuracy - tau, mu, feasible, 100)


def test_summarize_exact_aggregates():
    refs = M.References(oracle=(0.9, 1.0), best_fixed=(0.8, 10.0), cheapest=(0.4, 0.5), best_fixed_index=0, cheapest_index=1)
    records = [
        _record(0.5, 0.52, 1.0, 0.1),
        _record(0.6, 0.57, 2.0, 0.3),
        _record(0.7, 0.76, 4.0, 0.5),
        _record(0.8, 0.80, 8.0, 0.7),
        _record(0.95, 0.82, 9.0, 0.9, feasible=False),  # reported, excluded from the rates
    ]
    out = M.summarize(records, refs)
    assert out["n_tau"] == 5 and out["n_feasible"] == 4
    assert out["floor_compliance"] == pytest.approx(0.75)
    assert out["band_2pp"] == pytest.approx(0.5) and out["band_5pp"] == pytest.approx(0.75)
    assert out["mean_violation"] == pytest.approx(0.03 / 4) and out["max_violation"] == pytest.approx(0.03)
    assert out["pearson_tau_mu"] == pytest.approx(1.0)
    assert out["cost_range"] == pytest.approx(8.0)
    assert out["max_savings_vs_best_fixed"] == pytest.approx(0.9)  # τ = 0.5 met at $1 vs $10
    assert out["savings_at_parity"] == pytest.approx(0.2)  # only τ = 0.8 reaches 0.80
    assert out["gap_to_oracle"] == pytest.approx(0.9 - 0.82)  # uses every record
    expected_eff = np.mean([(a / c) / (0.8 / 10.0) for a, c in [(0.52, 1), (0.57, 2), (0.76, 4), (0.80, 8)]])
    assert out["routing_efficiency"] == pytest.approx(expected_eff)
    assert out["rpi"] == pytest.approx(np.mean([(a - 0.4) / 0.5 for a in (0.52, 0.57, 0.76, 0.80)]))
    # AIQ over all five points: hull (1, .52) (2, .57) (4, .76) (8, .80) (9, .82).
    x, y = np.array([1, 2, 4, 8, 9.0]), np.array([0.52, 0.57, 0.76, 0.80, 0.82])
    hx, hy = M.nondecreasing_hull(x, y)
    assert out["aiq"] == pytest.approx(np.trapezoid(hy, hx) / 8)
    everything = M.summarize(records, refs, feasible_only=False)
    assert everything["floor_compliance"] == pytest.approx(3 / 5)


def test_summarize_without_mu_gives_nan_correlation():
    refs = M.References((0.9, 1.0), (0.8, 10.0), (0.4, 0.5), 0, 1)
    out = M.summarize([_record(0.5, 0.6, 1.0, float("nan")), _record(0.6, 0.7, 2.0, float("nan"))], refs)
    assert math.isnan(out["pearson_tau_mu"])
    assert out["pearson_tau_accuracy"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call",
    [
        lambda: M.routing_outcome(SCORES, COSTS[:, :2], [0, 0, 0, 0]),  # mismatched shapes
        lambda: M.routing_outcome(SCORES, COSTS, [0, 0, 0]),  # choice length
        lambda: M.routing_outcome(SCORES, COSTS, [0, 0, 0, 3]),  # index out of range
        lambda: M.routing_outcome(SCORES, COSTS, [0.0, 0.0, 0.0, 0.0]),  # float indices
        lambda: M.routing_outcome(np.where(SCORES == 1, np.nan, SCORES), COSTS, [0, 0, 0, 0]),  # NaN
        lambda: M.routing_outcome(SCORES, -COSTS, [0, 0, 0, 0]),  # negative cost
        lambda: M.evaluate_tau(SCORES, COSTS, [0, 0, 0, 0], 1.5),  # τ > 1
        lambda: M.evaluate_tau(SCORES, COSTS, [0, 0, 0, 0], float("nan")),
        lambda: M.evaluate_tau(SCORES, COSTS, [0, 0, 0, 0], -0.1),
        lambda: M.evaluate_tau(SCORES, COSTS, [0, 0, 0, 0], 0.5, mu=[0.1, 0.2]),
        lambda: M.bootstrap_ci([]),
        lambda: M.bootstrap_ci([0.1, np.nan]),
        lambda: M.bootstrap_ci([0.1, 0.2], confidence=1.0),
        lambda: M.one_sided_margin(1.2, 100, 0.95),
        lambda: M.one_sided_margin(0.5, 0, 0.95),
        lambda: M.one_sided_margin(0.5, 100, 1.5),
        lambda: M.effective_sample_size(0),
        lambda: M.effective_sample_size(10, 2.5),
        lambda: M.floor_compliance_rate([0.5, 1.2], [0.5, 0.6]),
        lambda: M.band_rate([0.5], [0.5, 0.6], 0.02),
        lambda: M.pearson([1, 2], [1, 2, 3]),
        lambda: M.aiq([1.0, np.nan], [0.5, 0.6]),
        lambda: M.aiq([1.0, 2.0], [0.5, 0.6], cost_range=(2.0, 1.0)),
        lambda: M.feasible_tau_grid(0.8, 0.3),
        lambda: M.feasible_tau_grid(0.3, 0.8, taus=[0.5, 1.1]),
        lambda: M.feasible_tau_grid(0.3, 0.8, n=0),
        lambda: M.summarize([], M.References((0.9, 1.0), (0.8, 10.0), (0.4, 0.5), 0, 1)),
        lambda: M.reference_outcomes(SCORES, COSTS, best_fixed=7),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


# ---------------------------------------------------------------------------- calibration of p̂
def test_auc_matches_the_rank_definition_with_ties():
    y = np.array([1, 0, 1, 0, 1, 0], dtype=float)
    p = np.array([0.9, 0.1, 0.5, 0.5, 0.2, 0.3])
    # positives {0.9, 0.5, 0.2} vs negatives {0.1, 0.5, 0.3}: 3 + (1 + 0.5 + 1) + 1 = 6.5 of 9 pairs
    assert M.auc_score(y, p) == pytest.approx(6.5 / 9)
    assert M.auc_score(y, 1 - p) == pytest.approx(1 - 6.5 / 9)
    assert M.auc_score(y, np.full(6, 0.4)) == pytest.approx(0.5)
    assert math.isnan(M.auc_score(np.ones(4), np.linspace(0, 1, 4)))  # no negatives


def test_auc_with_soft_scores_weighs_rows_and_skips_self_pairs():
    rng = np.random.default_rng(0)
    y = rng.choice([0.0, 0.25, 0.5, 1.0], size=40)
    p = rng.random(40).round(1)
    num = den = 0.0
    for i in range(40):
        for j in range(40):
            if i != j:
                weight = y[i] * (1 - y[j])
                den += weight
                num += weight * ((p[i] > p[j]) + 0.5 * (p[i] == p[j]))
    assert M.auc_score(y, p) == pytest.approx(num / den)


def test_brier_and_ece_on_a_hand_made_case():
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0], dtype=float)
    p = np.array([0.05, 0.05, 0.15, 0.15, 0.95, 0.95, 1.0, 0.5])
    assert M.brier_score(y, p) == pytest.approx(np.mean((p - y) ** 2))
    curve = M.reliability_curve(y, p, n_bins=10)
    assert curve["count"].tolist() == [2, 2, 0, 0, 0, 1, 0, 0, 0, 3]  # p̂ = 1 falls in the last bin
    assert np.isnan(curve["mean_score"][2]) and curve["lower"][5] == pytest.approx(0.5) and curve["upper"][-1] == 1.0
    # |0.5 − 0.05|·2 + |1 − 0.15|·2 + |0 − 0.5|·1 + |1/3 − 2.9/3|·3, over 8 rows
    expected = (0.45 * 2 + 0.85 * 2 + 0.5 + abs(1 / 3 - 2.9 / 3) * 3) / 8
    assert M.expected_calibration_error(y, p, n_bins=10) == pytest.approx(expected)
    assert M.expected_calibration_error(y, y, n_bins=10) == 0.0  # p̂ = realized 0/1 scores
    assert M.expected_calibration_error(y, p, n_bins=1) == pytest.approx(abs(y.mean() - p.mean()))


def test_calibration_metrics_per_model():
    rng = np.random.default_rng(1)
    p = rng.random((2000, 3))
    y = (rng.random((2000, 3)) < p).astype(float)  # calibrated by construction
    y[:, 2] = 1.0  # a model that is always right: no AUC
    out = M.calibration_metrics(y, p)
    assert set(out) == {"auc", "brier", "ece", "mean_probability", "mean_score"} and all(v.shape == (3,) for v in out.values())
    assert out["auc"][0] > 0.7 and math.isnan(out["auc"][2])
    assert out["ece"][0] < 0.05 and out["ece"][2] > 0.3
    np.testing.assert_allclose(out["brier"], ((p - y) ** 2).mean(axis=0))


@pytest.mark.parametrize(
    ("scores", "probabilities", "kwargs", "message"),
    [
        (np.ones(3), np.ones(4), {}, "shape"),
        (np.ones(3), np.array([0.5, 1.2, 0.1]), {}, "probabilities"),
        (np.array([0.5, np.nan, 1.0]), np.ones(3), {}, "scores"),
        (np.ones(0), np.ones(0), {}, "empty"),
        (np.ones(3), np.ones(3), {"n_bins": 0}, "n_bins"),
    ],
)
def test_calibration_inputs_are_validated(scores, probabilities, kwargs, message):
    with pytest.raises(ValueError, match=message):
        M.reliability_curve(scores, probabilities, **kwargs)


# ---------------------------------------------------------------------------- the yardstick (issue 10)
def test_oracle_floor_cost_is_the_exact_linear_relaxation_and_a_lower_bound_of_every_router():
    from scipy.optimize import linprog

    from proteus_env.metrics import oracle_floor_cost

    rng = np.random.default_rng(0)
    for trial in range(60):
        n, k = int(rng.integers(2, 25)), int(rng.integers(1, 5))
        scores = rng.integers(0, 2, (n, k)).astype(float) if trial % 2 else rng.uniform(0, 1, (n, k))
        costs = rng.uniform(0, 1e-3, (n, k))
        tau = float(rng.uniform(0, 1))
        got = oracle_floor_cost(scores, costs, tau)
        one_per_query = np.kron(np.eye(n), np.ones(k))  # each query's shares sum to 1
        lp = linprog(costs.ravel() / n * 1000, A_ub=-scores.ravel()[None] / n, b_ub=[-tau], A_eq=one_per_query, b_eq=np.ones(n),
                     bounds=(0, 1))
        if lp.status == 2:  # infeasible: τ above the oracle's accuracy
            assert np.isnan(got)
            continue
        assert got == pytest.approx(lp.fun, rel=1e-9, abs=1e-12)
        for _ in range(20):  # any routing that meets τ pays at least this
            choice = rng.integers(0, k, n)
            accuracy, usd = scores[np.arange(n), choice].mean(), 1000 * costs[np.arange(n), choice].mean()
            if accuracy >= tau:
                assert usd >= got - 1e-12
    assert oracle_floor_cost([[1.0, 0.0]], [[2e-3, 1e-3]], 0.0) == pytest.approx(1.0)  # τ = 0: the cheapest choice


def test_normalized_cost_places_costs_between_oracle_and_best_fixed_and_counts_misses_as_failures():
    from proteus_env.metrics import normalized_cost

    value = normalized_cost([1.0, 3.0, 2.0, 0.5, 4.0], [True, True, True, False, False], 1.0, 3.0)
    assert value.tolist() == [0.0, 1.0, 0.5, 1.0, 1.5]  # a miss scores max(1, n): never cheaper than the fallback
    assert np.isnan(normalized_cost([1.0], [True], 2.0, 2.0)).all()  # no scale
    with pytest.raises(ValueError, match="floor_met"):
        normalized_cost([1.0, 2.0], [True], 0.0, 1.0)


def test_seed_bootstrap_ci_resamples_whole_seeds():
    from proteus_env.metrics import seed_bootstrap_ci

    assert all(np.isnan(seed_bootstrap_ci([[0.2, 0.4]])))  # one seed: no interval
    low, high = seed_bootstrap_ci([[0.0, 0.0], [1.0, 1.0], [0.5, np.nan]], n_boot=500)
    assert 0.0 <= low < 0.5 < high <= 1.0
    assert seed_bootstrap_ci([[0.3], [0.3], [0.3]]) == (pytest.approx(0.3), pytest.approx(0.3))
    with pytest.raises(ValueError, match="n_boot"):
        seed_bootstrap_ci([[1.0], [0.0]], n_boot=0)
