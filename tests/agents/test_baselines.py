"""Baseline routers: interface, calibration on validation, the batch dual, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import linprog

from agents.baselines import (
    TRADEOFF_GRID,
    BaseRouter,
    CalibratedRouter,
    CalibrationSettings,
    CarrotRouter,
    KNNRouter,
    MLPRouter,
    OmniRouter,
    Router,
    ZeroRouter,
    batch_lagrangian_route,
    make_baselines,
)
from proteus_env import fit_routing_head, make_synthetic_benchmark
from proteus_env import metrics as M
from proteus_env.guarantees import certified_threshold

# Inside every calibrated router's reach on the validation split of this benchmark (the cheapest
# model scores ~0.30 there; the weakest router, MLP, tops out near 0.74).
TAUS = (0.35, 0.5, 0.6, 0.7)


@pytest.fixture(scope="module")
def bench():
    return make_synthetic_benchmark(n_queries=4000, seed=0)


@pytest.fixture(scope="module")
def fit(bench):
    return fit_routing_head(bench, seed=0)


@pytest.fixture(scope="module")
def routers(bench, fit):
    return make_baselines(bench, fit, seed=0)


@pytest.fixture(scope="module")
def confident_routers(bench, fit):
    return make_baselines(bench, fit, CalibrationSettings(confidence=0.95), seed=0, predictive=False)


def _outcome(bench, split, choice):
    rows = bench.split_index(split)
    return M.routing_outcome(bench.scores[rows], bench.costs[rows], choice)


# ---------------------------------------------------------------------------- interface
def test_every_baseline_follows_the_interface(bench, routers):
    expected = {"oracle", "best_fixed", "cheapest", "random", "zero_router", "carrot", "knn", "mlp",
                "omnirouter", "omnirouter_uncalibrated"}
    assert set(routers) == expected
    test = bench.split_index("test")
    for name, router in routers.items():
        assert isinstance(router, Router) and router.name == name
        choice = router.route(test, 0.6)
        assert choice.shape == test.shape and choice.dtype == np.int64
        assert choice.min() >= 0 and choice.max() < bench.n_models


def test_confidence_is_in_the_name(confident_routers):
    assert "carrot[confidence=0.95]" in confident_routers
    carrot = confident_routers["carrot[confidence=0.95]"]
    assert carrot.confidence == 0.95 and carrot.settings == CalibrationSettings(confidence=0.95)
    assert carrot.base_name == "carrot"


@pytest.mark.parametrize("cls", [ZeroRouter, CarrotRouter, KNNRouter, MLPRouter, OmniRouter])
def test_every_calibrated_router_shares_one_constructor_contract(bench, fit, cls):
    settings = CalibrationSettings(confidence=0.9, deploy_queries=1000)
    router = cls(bench, fit, settings)
    assert router.settings is settings and router.confidence == 0.9
    assert router.target(0.5) == settings.threshold(0.5, bench.split_index("val").size, binary=router.binary_scores)
    assert router.name.endswith("[confidence=0.9]")
    plain = cls(bench, fit)
    assert plain.confidence is None and plain.settings == CalibrationSettings() and "[" not in plain.name


def test_calibration_settings_are_checked(bench, fit):
    assert CalibrationSettings() == CalibrationSettings(None, None)
    for bad in (0.0, 1.0, 1.5, -0.1, True, "high", float("nan")):
        with pytest.raises(ValueError, match="confidence"):
            CalibrationSettings(confidence=bad)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="deploy_queries"):
            CalibrationSettings(deploy_queries=bad)
    with pytest.raises(TypeError, match="CalibrationSettings"):
        CarrotRouter(bench, fit, 0.95)


def test_oracle_matches_metric_and_needs_rows(bench, routers):
    test = bench.split_index("test")
    np.testing.assert_array_equal(routers["oracle"].route(test, 0.5), M.oracle_choice(bench.scores[test], bench.costs[test]))
    with pytest.raises(ValueError, match="row indices"):
        routers["oracle"].route(bench.embeddings[test], 0.5, prompt_tokens=bench.prompt_tokens[test])


def test_fixed_models_by_train_means(bench, routers):
    train = bench.split_index("train")
    assert routers["best_fixed"].model_index == int(np.argmax(bench.scores[train].mean(axis=0)))
    assert routers["cheapest"].model_index == int(np.argmin(bench.costs[train].mean(axis=0)))


def test_random_router_is_seeded_and_uniform(bench, routers):
    test = bench.split_index("test")
    first, second = routers["random"].route(test, 0.3), routers["random"].route(test, 0.9)
    np.testing.assert_array_equal(first, second)
    counts = np.bincount(first, minlength=bench.n_models)
    assert counts.min() > 0.5 * test.size / bench.n_models


# ---------------------------------------------------------------------------- calibration
CALIBRATED = ("zero_router", "carrot", "knn", "mlp", "omnirouter")


@pytest.mark.parametrize("name", CALIBRATED)
@pytest.mark.parametrize("tau", TAUS)
def test_calibration_meets_tau_on_validation_by_construction(bench, routers, name, tau):
    router = routers[name]
    cal = router.calibrate(tau)
    assert cal.tau == tau and cal.target == tau  # no margin
    assert cal.feasible
    accuracy, usd = _outcome(bench, "val", router.route(bench.split_index("val"), tau))
    assert accuracy == cal.val_accuracy and usd == pytest.approx(cal.val_usd_per_1k)
    assert accuracy >= tau


@pytest.mark.parametrize("name", ["zero_router[confidence=0.95]", "carrot[confidence=0.95]", "omnirouter[confidence=0.95]"])
def test_confidence_calibrates_to_the_certified_threshold(bench, confident_routers, name):
    router = confident_routers[name]
    n = bench.split_index("val").size  # n_deploy = n_val by default
    for tau in (0.4, 0.6):
        cal = router.calibrate(tau)
        assert cal.target == certified_threshold(tau, n, 0.05, n, binary=router.binary_scores).threshold
        accuracy, _ = _outcome(bench, "val", router.route(bench.split_index("val"), tau))
        assert cal.feasible and accuracy >= cal.target > tau
        # Wider than the old normal approximation: exact bounds, and δ split between validation and deployment.
        assert cal.target > tau + 1.6448536269514722 * math.sqrt(tau * (1 - tau) / (n / 2))


def test_deploy_queries_sets_the_size_of_the_served_sample(bench, fit):
    small = CarrotRouter(bench, fit, CalibrationSettings(confidence=0.9, deploy_queries=100))
    large = CarrotRouter(bench, fit, CalibrationSettings(confidence=0.9, deploy_queries=10_000_000))
    assert small.target(0.5) > large.target(0.5) > 0.5
    n = bench.split_index("val").size
    assert large.target(0.5) == certified_threshold(0.5, n, 0.1, 10_000_000, binary=large.binary_scores).threshold


def test_certified_choice_is_a_fixed_sequence_from_the_accurate_end(bench, confident_routers):
    carrot = confident_routers["carrot[confidence=0.95]"]
    accuracy, _ = carrot.validation_curve()
    for tau in (0.4, 0.6):
        cal = carrot.calibrate(tau)
        index = int(np.flatnonzero(TRADEOFF_GRID == cal.value)[0])
        assert (accuracy[: index + 1] >= cal.target).all()  # every setting from m = 0 to the chosen one passed
        assert index + 1 == accuracy.size or accuracy[index + 1] < cal.target  # and the next one failed


def test_carrot_m_is_the_cheapest_grid_setting_and_monotone(routers):
    carrot = routers["carrot"]
    accuracy, _ = carrot.validation_curve()
    ms = [carrot.calibrate(tau).value for tau in TAUS]
    assert ms == sorted(ms, reverse=True)  # a higher target can only lower m
    for tau, m in zip(TAUS, ms, strict=True):
        index = int(np.flatnonzero(TRADEOFF_GRID == m)[0])
        assert accuracy[index] >= tau and not (accuracy[index + 1:] >= tau).any()
        assert carrot.calibrate(tau).details["willingness_to_pay"] == pytest.approx((1 - m) / m)


def test_zero_router_mixes_adjacent_hull_models(bench, routers):
    zero = routers["zero_router"]
    cal = zero.calibrate(0.6)
    lo, hi = cal.details["low_model"], cal.details["high_model"]
    assert zero.hull_models.index(hi) == zero.hull_models.index(lo) + 1
    assert 0.0 < cal.value < 1.0
    assert set(np.unique(zero.route(bench.split_index("test"), 0.6))) <= {lo, hi}


def test_infeasible_target_falls_back_to_the_most_accurate_setting(bench, routers):
    test = bench.split_index("test")
    for name in CALIBRATED:
        cal = routers[name].calibrate(0.99)
        assert not cal.feasible and cal.val_accuracy < 0.99
        assert routers[name].route(test, 0.99).shape == test.shape


def test_uncalibrated_omnirouter_uses_alpha_equal_tau_on_predictions(bench, fit, routers):
    omni = routers["omnirouter_uncalibrated"]
    val = bench.split_index("val")
    for tau in TAUS:
        assert omni.calibrate(tau).value == tau
        choice = omni.route(val, tau)
        assert fit.p_hat[val, choice].astype(float).mean() >= tau  # predicted accuracy meets τ ...
    assert any(not omni.calibrate(tau).feasible for tau in TAUS)  # ... realized accuracy need not


def test_new_queries_by_embeddings(bench, routers):
    test = bench.split_index("test")
    emb, tokens = bench.embeddings[test], bench.prompt_tokens[test]
    for name in ("carrot", "knn", "zero_router", "best_fixed"):
        by_rows = routers[name].route(test, 0.6)
        by_emb = routers[name].route(emb, 0.6, prompt_tokens=tokens)
        if name == "zero_router":  # fresh draws for new queries: same two models
            assert set(np.unique(by_emb)) <= set(np.unique(by_rows))
        else:  # same predictions up to float32 rounding of p̂
            assert np.mean(by_rows == by_emb) >= 0.99


# ---------------------------------------------------------------------------- the batch dual
def test_dual_converges_to_the_hand_computed_optimum():
    # Model 0 is free, model 1 costs 1 and is always right. Switching query i buys
    # Δp = (0.1, 0.5, 0.8, 0.4) at cost 1, so the cheapest way from mean p̂ 0.55 to α = 0.75
    # (Δ Σp̂ = 0.8) is to switch query 2 alone: LP optimum 1, integral, at the breakpoint
    # ν* = 1 / 0.8 = 1.25, where the dual value g(ν*) = Σ min_k(ĉ − ν*p̂) + ν*·n·α = 1 as well.
    p_hat = np.array([[0.9, 1.0], [0.5, 1.0], [0.2, 1.0], [0.6, 1.0]])
    cost_hat = np.array([[0.0, 1.0]] * 4)
    solution = batch_lagrangian_route(p_hat, cost_hat, 0.75)
    assert solution.nu == pytest.approx(1.25, abs=1e-8)
    np.testing.assert_array_equal(solution.choice, [0, 0, 1, 0])
    assert cost_hat[np.arange(4), solution.choice].sum() == pytest.approx(1.0)
    assert solution.feasible and solution.mean_p_hat == pytest.approx(0.75)
    dual = np.min(cost_hat - 1.25 * p_hat, axis=1).sum() + 1.25 * 4 * 0.75
    assert dual == pytest.approx(1.0)
    assert batch_lagrangian_route(p_hat, cost_hat, 0.5).nu == 0.0  # already met by the free model
    assert batch_lagrangian_route(p_hat, cost_hat, 1.0).choice.tolist() == [1, 1, 1, 1]


def test_dual_matches_the_lp_relaxation_on_a_random_instance():
    rng = np.random.default_rng(7)
    n, k, alpha = 40, 3, 0.7
    p_hat = rng.uniform(0.2, 1.0, size=(n, k))
    cost_hat = rng.uniform(0.0, 1.0, size=(n, k))
    solution = batch_lagrangian_route(p_hat, cost_hat, alpha)
    cost = cost_hat[np.arange(n), solution.choice].sum()
    # LP: min Σ c·x  s.t.  Σ p·x ≥ nα,  Σ_k x_ik = 1,  x ≥ 0.
    a_eq = np.kron(np.eye(n), np.ones(k))
    lp = linprog(cost_hat.ravel(), A_ub=-p_hat.ravel()[None, :], b_ub=[-n * alpha], A_eq=a_eq, b_eq=np.ones(n), bounds=(0, 1))
    assert lp.status == 0
    assert solution.mean_p_hat >= alpha
    # Integral rounding of the LP costs at most one query's cost spread more than the optimum.
    assert lp.fun - 1e-9 <= cost <= lp.fun + np.ptp(cost_hat, axis=1).max() + 1e-9


# ---------------------------------------------------------------------------- bad input
def test_bad_input_raises_value_error(bench, fit, routers):
    carrot = routers["carrot"]
    test = bench.split_index("test")
    for tau in (1.5, -0.1, float("nan"), "high"):
        with pytest.raises(ValueError, match="tau"):
            carrot.route(test, tau)
    with pytest.raises(ValueError, match="prompt_tokens"):
        carrot.route(bench.embeddings[test], 0.5)  # embeddings without prompt tokens
    with pytest.raises(ValueError, match="prompt_tokens"):
        carrot.route(test, 0.5, prompt_tokens=bench.prompt_tokens[test])
    with pytest.raises(ValueError, match=r"\[0, 4000\)"):
        carrot.route(np.array([0, 4000]), 0.5)
    with pytest.raises(ValueError, match="1-D int array"):
        carrot.route(test.reshape(-1, 1), 0.5)
    with pytest.raises(ValueError, match="empty"):
        carrot.route(np.array([], dtype=np.int64), 0.5)
    with pytest.raises(ValueError, match="confidence"):
        CarrotRouter(bench, fit, CalibrationSettings(confidence=1.5))
    with pytest.raises(ValueError, match="alpha"):
        batch_lagrangian_route(np.ones((2, 2)), np.ones((2, 2)), 1.2)
    with pytest.raises(ValueError, match="shape"):
        batch_lagrangian_route(np.ones((2, 2)), np.ones((2, 3)), 0.5)
    other = make_synthetic_benchmark(n_queries=300, seed=1)
    with pytest.raises(ValueError, match="fit the head on this benchmark"):
        ZeroRouter(other, fit)


def test_base_classes_are_abstract(bench, fit):
    with pytest.raises(NotImplementedError):
        BaseRouter(bench, fit).route(bench.split_index("test"), 0.5)
    with pytest.raises(NotImplementedError):
        CalibratedRouter(bench, fit).calibrate(0.5)
    assert OmniRouter(bench, fit, calibrated=False).name == "omnirouter_uncalibrated"
