"""TauCalibration: point-estimate and certified (Learn-then-Test) choice of the policy's τ input."""

import numpy as np
import pytest

from agents.proteus.calibration import TauCalibration
from proteus_env.guarantees import certified_threshold


def _calibration(accuracy, n_val=4000, binary=True):
    accuracy = np.asarray(accuracy, dtype=float)
    inputs = np.linspace(0.3, 0.8, accuracy.size)
    return TauCalibration(inputs, accuracy, np.linspace(0.05, 3.0, accuracy.size), n_val, binary)


def test_certified_choice_walks_down_from_the_highest_input_and_stops_at_the_first_failure():
    # The dip at the 4th input stops the walk: the cheaper inputs below it are not used, even
    # though one of them (0.66) would pass on its own.
    calibration = _calibration([0.40, 0.66, 0.50, 0.60, 0.70, 0.75, 0.78])
    tau = 0.65
    threshold = calibration.certificate(tau, 0.95).threshold
    assert threshold == certified_threshold(tau, 4000, 0.05, 4000, binary=True).threshold
    assert 0.66 < threshold < 0.70
    inputs, reachable = calibration.input_for(tau, 0.95)
    assert reachable[0] and inputs[0] == calibration.tau_inputs[4]
    point, _ = calibration.input_for(tau)  # without a confidence: the first input whose running max reaches τ
    assert point[0] == calibration.tau_inputs[1]


def test_a_target_that_cannot_be_certified_is_unreachable_and_served_at_the_most_accurate_input():
    calibration = _calibration([0.40, 0.60, 0.78, 0.70])  # the highest input is not the most accurate one
    inputs, reachable = calibration.input_for(0.72, 0.95)
    assert not reachable[0] and inputs[0] == calibration.tau_inputs[2]


def test_deployment_size_and_fractional_scores_raise_the_bar():
    binary = _calibration([0.5, 0.7], binary=True)
    fractional = _calibration([0.5, 0.7], binary=False)
    assert binary.required_accuracy(0.6, 0.95, 100) > binary.required_accuracy(0.6, 0.95, 100_000)
    assert fractional.required_accuracy(0.6, 0.95) > binary.required_accuracy(0.6, 0.95)
    assert binary.required_accuracy(0.6) == 0.6


def test_binary_round_trips_and_old_files_are_read_as_fractional():
    calibration = _calibration([0.5, 0.7])
    assert TauCalibration.from_dict(calibration.to_dict()).binary is True
    old = {k: v for k, v in calibration.to_dict().items() if k != "binary"}
    assert TauCalibration.from_dict(old).binary is False
    with pytest.raises(ValueError, match="binary"):
        TauCalibration.from_dict({**calibration.to_dict(), "binary": "yes"})
