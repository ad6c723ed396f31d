"""Dual-update rules: known sequences in, known λ out; no SB3 model involved."""

import json
import math

import numpy as np
import pytest

from callbacks.dual import CONTROLLERS, DualController, GradientAscentController, PIDController, make_controller, tau_span


# ---------------------------------------------------------------------------- the rules before the split
def _legacy_gradient(lambdas, error, measured, eta, lambda_max):
    """The callback's inline rule before ``callbacks.dual`` existed (copied verbatim)."""
    error = np.where(measured, error, 0.0)
    updated = np.clip(lambdas + eta * error, 0.0, lambda_max)
    return np.where(measured, updated, lambdas)


def _legacy_pid(lambdas, integral, previous_error, error, measured, gains, lambda_max):
    """The callback's inline PID before ``callbacks.dual`` existed (copied verbatim)."""
    error = np.where(measured, error, 0.0)
    k_p, k_i, k_d = gains
    integral = np.where(measured, np.clip(integral + error, 0.0, lambda_max / max(k_i, 1e-12)), integral)
    derivative = error - previous_error
    previous_error = np.where(measured, error, previous_error)
    updated = np.clip(k_p * error + k_i * integral + k_d * derivative, 0.0, lambda_max)
    return np.where(measured, updated, lambdas), integral, previous_error


def _random_sequence(seed, n_steps=60, n_bins=7):
    rng = np.random.default_rng(seed)
    errors = rng.normal(0.05, 0.2, size=(n_steps, n_bins))
    measured = rng.random((n_steps, n_bins)) > 0.15
    errors[~measured] = np.nan
    return errors, measured


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_reproduces_the_previous_rule_exactly(seed):
    errors, measured = _random_sequence(seed)
    controller = GradientAscentController(7, eta=0.4, lambda_max=1.5, lambda_init=0.2)
    lambdas = np.full(7, 0.2)
    for error, mask in zip(errors, measured, strict=True):
        lambdas = _legacy_gradient(lambdas, error, mask, 0.4, 1.5)
        np.testing.assert_array_equal(controller.update(error, mask), lambdas)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pid_without_smoothing_reproduces_the_previous_rule_exactly(seed):
    errors, measured = _random_sequence(seed)
    gains = (0.7, 0.3, 0.2)
    controller = PIDController(7, kp=gains[0], ki=gains[1], kd=gains[2], lambda_max=2.0)
    lambdas, integral, previous = np.zeros(7), np.zeros(7), np.zeros(7)
    for error, mask in zip(errors, measured, strict=True):
        lambdas, integral, previous = _legacy_pid(lambdas, integral, previous, error, mask, gains, 2.0)
        np.testing.assert_array_equal(controller.update(error, mask), lambdas)
        np.testing.assert_array_equal(controller.integral, integral)
        np.testing.assert_array_equal(controller.previous_error, previous)


# ---------------------------------------------------------------------------- gradient ascent
def test_gradient_known_sequence_and_projection():
    controller = GradientAscentController(3, eta=0.5, lambda_max=1.0)
    np.testing.assert_allclose(controller.update([0.4, -0.2, 0.0]), [0.2, 0.0, 0.0])  # projected at 0
    np.testing.assert_allclose(controller.update([0.4, 0.6, 0.1]), [0.4, 0.3, 0.05])
    np.testing.assert_allclose(controller.update([2.0, -0.2, 0.1]), [1.0, 0.2, 0.1])  # projected at λ_max
    np.testing.assert_allclose(controller.update([0.1, -1.0, -0.1]), [1.0, 0.0, 0.05])


def test_gradient_masks_and_nan_bins_keep_their_lambda():
    controller = GradientAscentController(3, eta=1.0, lambda_init=0.5)
    np.testing.assert_allclose(controller.update([0.1, np.nan, -0.1]), [0.6, 0.5, 0.4])  # NaN: not measured
    np.testing.assert_allclose(controller.update([0.1, 0.3, 9.0], np.array([True, True, False])), [0.7, 0.8, 0.4])


def test_controllers_are_vectorized_over_bins():
    errors, measured = _random_sequence(3, n_bins=4)
    for make in (lambda n: GradientAscentController(n, eta=0.7, lambda_max=1.0),
                 lambda n: PIDController(n, kp=0.5, ki=0.2, kd=0.3, lambda_max=1.0, delta_p_ema_alpha=0.5,
                                         delta_d_ema_alpha=0.8, positive_derivative=True)):
        joint = make(4)
        alone = [make(1) for _ in range(4)]
        for error, mask in zip(errors, measured, strict=True):
            together = joint.update(error, mask)
            for b in range(4):
                if mask[b]:
                    alone[b].update(error[b])
                assert together[b] == pytest.approx(alone[b].lambdas[0], abs=1e-15)


def test_one_bin_accepts_a_scalar_error():
    controller = GradientAscentController(eta=2.0)
    assert controller.update(0.25).tolist() == [0.5]


@pytest.mark.parametrize(
    ("error", "mask", "message"),
    [([0.1, 0.2], None, "shape"), ([0.1, np.nan, 0.2], np.array([True, True, True]), "bins \\[1\\]"),
     ([0.1, 0.1, 0.1], np.array([1, 0, 1]), "measured_mask"), ([0.1, 0.1, 0.1], np.array([True, False]), "measured_mask")],
)
def test_update_rejects_bad_inputs(error, mask, message):
    controller = GradientAscentController(3)
    with pytest.raises(ValueError, match=message):
        controller.update(error, mask)
    assert controller.lambdas.tolist() == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------------------- PID
def test_pid_known_sequence():
    controller = PIDController(2, kp=1.0, ki=0.5, kd=0.25, lambda_max=5.0)
    # e = (0.2, -0.1): P 0.2, I 0.2 (the negative bin's integral stays at 0), D e − 0
    np.testing.assert_allclose(controller.update([0.2, -0.1]), [0.2 + 0.1 + 0.05, 0.0])
    # same error again: D vanishes, I doubles
    np.testing.assert_allclose(controller.update([0.2, -0.1]), [0.2 + 0.2, 0.0])
    # error drops: the derivative pulls λ down
    np.testing.assert_allclose(controller.update([0.0, 0.4]), [0.0 + 0.2 + 0.25 * -0.2, 0.4 + 0.2 + 0.25 * 0.5])
    np.testing.assert_allclose(controller.integral, [0.4, 0.4])


def test_pid_smoothing_follows_omnisafe():
    controller = PIDController(1, kp=1.0, ki=0.0, kd=1.0, delta_p_ema_alpha=0.5, delta_d_ema_alpha=0.75)
    # step 1: δ_p = 0.5·0 + 0.5·0.4 = 0.2; δ_d = 0.75·0 + 0.25·0.4 = 0.1, D = 0.1
    assert controller.update(0.4)[0] == pytest.approx(0.2 + 0.1)
    # step 2: δ_p = 0.5·0.2 + 0.5·0.4 = 0.3; δ_d = 0.75·0.1 + 0.25·0.4 = 0.175, D = 0.075
    assert controller.update(0.4)[0] == pytest.approx(0.3 + 0.075)
    assert controller.delta_p[0] == pytest.approx(0.3) and controller.previous_error[0] == pytest.approx(0.175)


def test_pid_positive_derivative_only_resists_a_growing_violation():
    signed = PIDController(1, kp=0.0, ki=0.0, kd=1.0, lambda_max=5.0)
    positive = PIDController(1, kp=0.0, ki=0.0, kd=1.0, lambda_max=5.0, positive_derivative=True)
    for controller in (signed, positive):
        controller.update(0.5)
    assert signed.update(0.6)[0] == pytest.approx(0.1) and positive.update(0.6)[0] == pytest.approx(0.1)
    assert signed.previous_error[0] == positive.previous_error[0] == pytest.approx(0.6)
    # a falling error: the signed derivative would be −0.4 (λ clipped at 0 either way), the positive part is 0
    signed.kp = positive.kp = 1.0
    assert signed.update(0.2)[0] == pytest.approx(0.0) and positive.update(0.2)[0] == pytest.approx(0.2)


def test_pid_integral_is_clipped_and_lambda_projected():
    controller = PIDController(2, kp=0.0, ki=0.5, kd=0.0, lambda_max=1.0)
    for _ in range(20):
        lambdas = controller.update([1.0, -1.0])
    np.testing.assert_allclose(controller.integral, [2.0, 0.0])  # λ_max / k_i = 2, and >= 0
    np.testing.assert_allclose(lambdas, [1.0, 0.0])
    lambdas = controller.update([-1.0, 0.0])  # no wind-up: one negative step already lowers λ
    assert lambdas[0] == pytest.approx(0.5)


def test_pid_lambda_init_is_shown_until_the_first_update():
    controller = PIDController(2, lambda_init=0.3)
    assert controller.lambdas.tolist() == [0.3, 0.3]
    controller.update([np.nan, 0.1])
    assert controller.lambdas[0] == 0.3 and controller.lambdas[1] == pytest.approx(0.4 * 0.1 + 0.05 * 0.1 + 0.1 * 0.1)


# ---------------------------------------------------------------------------- state
@pytest.mark.parametrize("make", [lambda: GradientAscentController(3, eta=0.3, lambda_max=2.0),
                                  lambda: PIDController(3, kp=0.6, ki=0.2, kd=0.4, lambda_max=2.0, delta_p_ema_alpha=0.6,
                                                        delta_d_ema_alpha=0.3)])
def test_state_round_trip_through_json(make):
    errors, measured = _random_sequence(5, n_steps=30, n_bins=3)
    original = make()
    for error, mask in zip(errors[:15], measured[:15], strict=True):
        original.update(error, mask)
    state = json.loads(json.dumps(original.state()))
    assert state["controller"] == original.name and set(state) == {"controller", "lambdas", *original.memory_keys}
    restored = make()
    restored.load_state(state)
    for error, mask in zip(errors[15:], measured[15:], strict=True):
        np.testing.assert_array_equal(restored.update(error, mask), original.update(error, mask))


def test_reset_goes_back_to_the_initial_state():
    controller = PIDController(2, lambda_init=0.1)
    controller.update([0.3, 0.3])
    controller.reset()
    assert controller.lambdas.tolist() == [0.1, 0.1] and controller.integral.tolist() == [0.0, 0.0]


def test_a_pid_state_without_smoothing_memory_loads():
    """States written before the smoothing existed: λ, integral and the last raw error."""
    controller = PIDController(2, kp=1.0, ki=0.0, kd=0.0, delta_p_ema_alpha=0.5)
    controller.load_state({"controller": "pid", "lambdas": [0.2, 0.0], "integral": [1.0, 0.0], "previous_error": [0.2, -0.1]})
    np.testing.assert_allclose(controller.delta_p, [0.2, -0.1])  # the P term's memory was the raw error
    np.testing.assert_allclose(controller.update([0.4, 0.1]), [0.3, 0.0])


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"lambdas": [0.1, 0.2]}, "'lambdas'.*3 values.*\\(2,\\)"),
        ({"lambdas": [0.1, float("nan"), 0.2]}, "'lambdas' must be finite.*nan"),
        ({"lambdas": [0.1, 2.5, 0.2]}, "'lambdas' must lie in \\[0, 2.0\\].*\\[1\\].*2.5"),
        ({"lambdas": [-0.1, 0.0, 0.2]}, "'lambdas'.*\\[0\\].*-0.1"),
        ({"lambdas": ["a", 0.0, 0.2]}, "'lambdas'.*list of 3 numbers"),
        ({}, "'lambdas' is missing"),
        ({"lambdas": [0.0] * 3, "controller": "gradient"}, "'controller' is 'gradient'"),
        ({"lambdas": [0.0] * 3, "integrl": [0.0] * 3}, "Unknown.*integrl"),
        ({"lambdas": [0.0] * 3, "integral": [0.0, -1.0, 0.0]}, "'integral' must be >= 0.*-1.0"),
        ({"lambdas": [0.0] * 3, "previous_error": [0.0, float("inf"), 0.0]}, "'previous_error' must be finite"),
        ({"lambdas": [0.0] * 3, "delta_p": [[0.0] * 3]}, "'delta_p'.*shape \\(1, 3\\)"),
        ([0.0, 0.0, 0.0], "must be a dict"),
    ],
)
def test_bad_state_is_rejected_and_nothing_changes(state, message):
    controller = PIDController(3, lambda_max=2.0, lambda_init=0.5)
    with pytest.raises(ValueError, match=message):
        controller.load_state(state)
    assert controller.lambdas.tolist() == [0.5, 0.5, 0.5] and controller.integral.tolist() == [0.0, 0.0, 0.0]


def test_gradient_state_has_no_memory_fields():
    controller = GradientAscentController(2)
    with pytest.raises(ValueError, match="Unknown.*integral"):
        controller.load_state({"lambdas": [0.0, 0.0], "integral": [0.0, 0.0]})


def test_an_integral_beyond_the_current_windup_bound_is_clipped():
    controller = PIDController(1, ki=0.5, lambda_max=1.0)
    controller.load_state({"lambdas": [1.0], "integral": [7.0]})
    assert controller.integral.tolist() == [2.0]


# ---------------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: GradientAscentController(0), "n_bins"),
        (lambda: GradientAscentController(2.0), "n_bins"),
        (lambda: GradientAscentController(2, eta=0.0), "eta"),
        (lambda: GradientAscentController(2, eta=float("inf")), "eta"),
        (lambda: GradientAscentController(2, lambda_max=0.0), "lambda_max"),
        (lambda: GradientAscentController(2, lambda_init=3.0, lambda_max=1.0), "lambda_init"),
        (lambda: PIDController(2, kp=-1.0), "kp"),
        (lambda: PIDController(2, ki=float("nan")), "ki"),
        (lambda: PIDController(2, delta_p_ema_alpha=1.0), "delta_p_ema_alpha"),
        (lambda: PIDController(2, delta_d_ema_alpha=-0.1), "delta_d_ema_alpha"),
        (lambda: make_controller("pd", 2), "controller"),
        (lambda: make_controller("pid", 2, pid_gains=(1.0, 2.0)), "pid_gains"),
        (lambda: make_controller("pid", 2, pid_ema_alphas=(0.5,)), "pid_ema_alphas"),
    ],
)
def test_bad_settings_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_make_controller_builds_the_named_rule():
    gradient = make_controller("gradient", 3, eta=0.2, lambda_max=4.0, lambda_init=1.0)
    assert isinstance(gradient, GradientAscentController) and gradient.eta == 0.2 and gradient.lambdas.tolist() == [1.0] * 3
    pid = make_controller("pid", 2, pid_gains=(1.0, 0.5, 0.25), pid_ema_alphas=(0.9, 0.8))
    assert isinstance(pid, PIDController) and pid.gains == (1.0, 0.5, 0.25)
    assert (pid.delta_p_ema_alpha, pid.delta_d_ema_alpha) == (0.9, 0.8)
    assert set(CONTROLLERS) == {"gradient", "pid"} and all(issubclass(c, DualController) for c in CONTROLLERS.values())


# ---------------------------------------------------------------------------- τ-span
def test_tau_span_known_values():
    assert tau_span([0.3, 0.5, 0.7], 0.3, 0.8) == pytest.approx(0.8)
    assert tau_span([0.763] * 9, 0.29, 0.78) == 0.0  # τ-blind: the collapse of issue 17
    assert tau_span([0.7, np.nan, 0.3], 0.3, 0.7) == pytest.approx(1.0)  # unmeasured bins are skipped
    assert isinstance(tau_span([0.3, 0.5], 0.3, 0.8), float)


def test_tau_span_undefined_cases_are_nan():
    assert math.isnan(tau_span([0.5], 0.3, 0.8))
    assert math.isnan(tau_span([0.5, np.nan], 0.3, 0.8))
    assert math.isnan(tau_span([0.4, 0.6], 0.5, 0.5))


@pytest.mark.parametrize(("low", "high", "message"), [(0.8, 0.3, "below"), (float("nan"), 0.8, "finite"), (0.3, float("inf"), "finite")])
def test_tau_span_rejects_bad_bounds(low, high, message):
    with pytest.raises(ValueError, match=message):
        tau_span([0.4, 0.6], low, high)


def test_warm_start_sets_the_multipliers_and_the_pid_output_starts_there():
    gradient = GradientAscentController(3, eta=0.5, lambda_max=4.0)
    gradient.warm_start([1.0, 2.5, 9.0])
    np.testing.assert_array_equal(gradient.lambdas, [1.0, 2.5, 4.0])  # clipped to lambda_max
    np.testing.assert_allclose(gradient.update([0.2, 0.0, -1.0]), [1.1, 2.5, 3.5])  # then the rule as usual
    pid = PIDController(2, kp=0.4, ki=0.05, kd=0.1, lambda_max=10.0)
    pid.warm_start([3.0, 0.5])
    np.testing.assert_allclose(pid.update([0.0, 0.0]), [3.0, 0.5])  # no error: the output stays where it started
    with pytest.raises(ValueError, match="3 finite numbers"):
        GradientAscentController(3).warm_start([1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="3 finite numbers"):
        GradientAscentController(3).warm_start([1.0, 2.0])
