"""The one validation layer: each check returns the canonical value or names the argument and the bad value."""

import math

import numpy as np
import pytest

from proteus_env import _validation as V
from proteus_env import metrics


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 1, np.float32(0.25), np.int64(1), "0.5"])
def test_check_tau_accepts_numbers_in_the_unit_interval(value):
    assert V.check_tau(value) == float(value)
    assert isinstance(V.check_tau(value), float)


@pytest.mark.parametrize("value", [-0.1, 1.1, math.nan, math.inf, None, "x", [0.5], True])
def test_check_tau_names_the_argument_and_the_value(value):
    with pytest.raises(ValueError, match=r"`target` must be .*got"):
        V.check_tau(value, "target")


def test_metrics_still_exports_check_tau():
    assert metrics.check_tau is V.check_tau


def test_check_confidence_and_parse_confidence():
    assert V.check_confidence(None) is None and V.check_confidence(0.95) == 0.95
    for bad in (0.0, 1.0, 1.5, -0.1, math.nan, "x", True):
        with pytest.raises(ValueError, match="`confidence` must be None or a confidence level in \\(0, 1\\)"):
            V.check_confidence(bad)
    with pytest.raises(ValueError, match="`coverage` must be a confidence level"):
        V.check_confidence(None, "coverage", allow_none=False)
    for text in ("none", "None", " null ", "no", "0", None):
        assert V.parse_confidence(text) is None
    assert V.parse_confidence("0.95") == 0.95 and V.parse_confidence(" 0.9 ") == 0.9
    for bad in ("1", "1.5", "-0.2", "nan", "abc", ""):
        with pytest.raises(ValueError, match=rf"--margin must be 'none' or a confidence level in \(0, 1\), got '{bad}'"):
            V.parse_confidence(bad, "--margin")


def test_open_unit_interval_finite_positive_and_int():
    assert V.check_open_unit_interval(0.05, "delta") == 0.05
    for bad in (0.0, 1.0, math.nan):
        with pytest.raises(ValueError, match="`delta` must be a number in \\(0, 1\\)"):
            V.check_open_unit_interval(bad, "delta")
    assert V.check_finite(-3, "w") == -3.0
    with pytest.raises(ValueError, match="`w` must be a finite number, got inf"):
        V.check_finite(math.inf, "w")
    assert V.check_positive(2, "lambda_max") == 2.0
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ValueError, match="`lambda_max` must be a finite number > 0"):
            V.check_positive(bad, "lambda_max")
    assert V.check_int(3, "n") == 3 and V.check_int(3.0, "n") == 3 and V.check_int(np.int64(4), "n", minimum=1) == 4
    for bad in (2.5, "3", True, None, math.nan, 0):
        with pytest.raises(ValueError, match="`n` must be an integer >= 1"):
            V.check_int(bad, "n", minimum=1)


def test_check_number_in_any_interval():
    assert V.check_number(0.5, "margin", low=0.5, high=1.0, high_open=True) == 0.5
    with pytest.raises(ValueError, match=r"`tenant.margin` must be a finite number in \[0.5, 1\), got 1.0"):
        V.check_number(1.0, "tenant.margin", low=0.5, high=1.0, high_open=True)
    with pytest.raises(ValueError, match=r"in \(0, inf\), got 0"):
        V.check_number(0, "x", low=0.0, low_open=True)
    for bad in (math.inf, math.nan, "a", True):
        with pytest.raises(ValueError, match="`x` must be a finite number"):
            V.check_number(bad, "x")


def test_check_tau_range():
    assert V.check_tau_range((0.2, 0.8)) == (0.2, 0.8)
    assert V.check_tau_range([0.5, 0.5]) == (0.5, 0.5)
    for bad in ((0.8, 0.2), (0.2, 1.2), (math.nan, 0.5), (0.1,), "ab", None):
        with pytest.raises(ValueError, match="tau_range"):
            V.check_tau_range(bad)


def test_check_unit_interval_array_names_source_field_and_first_bad_entry():
    np.testing.assert_array_equal(V.check_unit_interval_array([0.0, 0.5, 1.0], "taus"), [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match=r"^calibration.json: `tau_inputs` must be finite and in \[0, 1\]; entry 2 is 1.5 \(2 bad entries in all\)"):
        V.check_unit_interval_array([0.1, 0.2, 1.5, math.nan], "tau_inputs", source="calibration.json")
    with pytest.raises(ValueError, match=r"entry \[1, 0\] is -0.5"):
        V.check_unit_interval_array([[0.1, 0.2], [-0.5, 0.3]], "grid")
    with pytest.raises(ValueError, match="must be 1-D"):
        V.check_unit_interval_array([[0.1]], "taus", ndim=1)
    with pytest.raises(ValueError, match="is empty"):
        V.check_unit_interval_array([], "taus")
    with pytest.raises(ValueError, match="must be numbers"):
        V.check_unit_interval_array(["a"], "taus")


def test_check_lambda_table_names_the_file_the_field_and_the_value():
    values, edges = V.check_lambda_table([0.0, 2.5], [0.2, 0.5, 0.8], 10.0)
    assert values.dtype == np.float64 and edges.tolist() == [0.2, 0.5, 0.8]
    source, fields = "run/lambda_table.json", ("lambdas", "edges")
    cases = [
        (([-5.0, 1.0], [0, 0.5, 1]), r"^run/lambda_table.json: λ `lambdas` must be finite and in \[0, lambda_max=10.0\]; entry 0 is -5.0"),
        (([1.0, 1e6], [0, 0.5, 1]), r"entry 1 is 1000000.0"),
        (([1.0, math.inf], [0, 0.5, 1]), r"entry 1 is inf"),
        (([1.0, 2.0], [0, 0.5]), r"`edges` must hold 3 edges"),
        (([1.0, 2.0], [0, math.nan, 1]), r"`edges` must be finite; entry 1 is nan"),
        (([1.0, 2.0], [-math.inf, 0.5, math.inf]), r"`edges` must be finite; entry 0 is -inf \(2 bad entries in all\)"),
        (([1.0, 2.0], [0.5, 0.5, 1.0]), r"`edges` must be strictly increasing; entry 1 \(0.5\) does not exceed entry 0 \(0.5\)"),
        (([], [0.0]), r"λ `lambdas` is empty"),
        ((["x"], [0.0, 1.0]), r"`lambdas` must be numbers"),
    ]
    for (vals, edgs), message in cases:
        with pytest.raises(ValueError, match=message):
            V.check_lambda_table(vals, edgs, 10.0, source=source, fields=fields)
    with pytest.raises(ValueError, match="lambda_max"):
        V.check_lambda_table([1.0], [0.0, 1.0], math.inf)


def test_checked_arrays_are_new_arrays():
    given = np.array([0.5, 1.0])
    values = V.check_lambda_values(given, 10.0)
    values[0] = 9.0
    assert given[0] == 0.5
