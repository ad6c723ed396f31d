"""The one validation layer: checks of the values a caller, a command line or a file hands in.

Every check returns the value in its canonical type (``float``, ``int``, a float64 array) or raises
a ``ValueError`` whose message names the argument (and, for values read from a file, the file
and the field) and shows the bad value. The environment, the metrics, the router and the
evaluation use these functions instead of checks of their own, so one kind of value is refused
with one message everywhere.

Scalars:

* :func:`check_unit_interval` — a finite number in [0, 1]; :func:`check_tau` is the same for an
  accuracy target τ;
* :func:`check_confidence` — ``None`` (no margin) or a confidence level in the open interval
  (0, 1); :func:`parse_confidence` reads one from text (``"none"`` or a level);
  :func:`check_open_unit_interval` — any other number in (0, 1), such as a failure probability δ;
* :func:`check_number` — a finite number in any interval; :func:`check_finite`,
  :func:`check_positive`, :func:`check_int` — the common cases;
* :func:`check_tau_range` — a ``(low, high)`` pair with ``0 <= low <= high <= 1``.

Arrays (a ``source`` such as a file name, when given, starts the message):

* :func:`check_unit_interval_array` — finite values in [0, 1] (calibration inputs, τ grids);
* :func:`check_lambda_values`, :func:`check_bin_edges` and :func:`check_lambda_table` — a table of
  Lagrange multipliers λ per τ-bin: values finite in [0, ``lambda_max``], edges finite and
  strictly increasing, one more edge than values.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Texts that :func:`parse_confidence` reads as "no margin".
NO_CONFIDENCE = ("none", "null", "no", "0")


# ---------------------------------------------------------------------------- scalars
def _as_float(value: Any, name: str, expected: str) -> float:
    """``float(value)``, refusing booleans and non-numbers with a message naming ``name``."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be {expected}, got the boolean {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be {expected}, got {value!r}.") from None


def check_unit_interval(value: Any, name: str) -> float:
    """Return ``value`` as a float after checking it is a finite number in [0, 1].

    Raises:
        ValueError: Naming ``name`` and the value, if it is not a finite number in [0, 1].
    """
    number = _as_float(value, name, "a number in [0, 1]")
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ValueError(f"`{name}` must be a finite number in [0, 1], got {value!r}.")
    return number


def check_tau(value: Any, name: str = "tau") -> float:
    """Return an accuracy target τ as a float after checking it is a finite number in [0, 1].

    Raises:
        ValueError: Naming ``name`` and the value, if it is not a finite number in [0, 1].
    """
    return check_unit_interval(value, name)


def check_open_unit_interval(value: Any, name: str) -> float:
    """Return ``value`` as a float after checking it lies in the open interval (0, 1) (a probability such as δ).

    Raises:
        ValueError: Naming ``name`` and the value, if it is not a number in (0, 1).
    """
    number = _as_float(value, name, "a number in (0, 1)")
    if not 0.0 < number < 1.0:  # also NaN
        raise ValueError(f"`{name}` must be a number in (0, 1), got {value!r}.")
    return number


def check_confidence(value: Any, name: str = "confidence", *, allow_none: bool = True) -> float | None:
    """Return a confidence level in the open interval (0, 1), or ``None`` (no margin).

    Args:
        value: ``None`` or a number.
        name: The argument's name, for the message.
        allow_none: Whether ``None`` is accepted (it is not for a bootstrap interval's coverage).

    Raises:
        ValueError: Naming ``name`` and the value, if it is not ``None`` (when allowed) or a level
            in (0, 1).
    """
    expected = "None or a confidence level in (0, 1)" if allow_none else "a confidence level in (0, 1)"
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"`{name}` must be {expected}, got None.")
    number = _as_float(value, name, expected)
    if not 0.0 < number < 1.0:  # also NaN
        raise ValueError(f"`{name}` must be {expected}, got {value!r}.")
    return number


def parse_confidence(text: Any, name: str = "--confidence") -> float | None:
    """Read a confidence level from text: ``"none"`` (or ``"null"``, ``"no"``, ``"0"``) -> ``None``.

    Args:
        text: A command-line or configuration value, e.g. ``"0.95"`` or ``"none"``.
        name: How the value was given (``"--confidence"``, a config key), for the message.

    Raises:
        ValueError: Naming ``name`` and the text, if it is neither "none" nor a level in (0, 1).
    """
    if text is None or str(text).strip().lower() in NO_CONFIDENCE:
        return None
    message = f"{name} must be 'none' or a confidence level in (0, 1), got {text!r}."
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError(message) from None
    if not 0.0 < value < 1.0:
        raise ValueError(message)
    return value


def check_number(value: Any, name: str, *, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
                 high_open: bool = False) -> float:
    """Return ``value`` as a finite float after checking it lies between ``low`` and ``high``.

    Args:
        value: The number.
        name: The argument's name (or a file's field), for the message.
        low: Lower bound (``-inf``: none).
        high: Upper bound (``inf``: none).
        low_open: Exclude ``low`` itself.
        high_open: Exclude ``high`` itself.

    Raises:
        ValueError: Naming ``name``, the interval and the value.
    """
    left = "(" if low_open or low == -math.inf else "["
    right = ")" if high_open or high == math.inf else "]"
    expected = f"a finite number in {left}{low:g}, {high:g}{right}"
    number = _as_float(value, name, expected)
    above = number > low if low_open else number >= low
    below = number < high if high_open else number <= high
    if not (math.isfinite(number) and above and below):
        raise ValueError(f"`{name}` must be {expected}, got {value!r}.")
    return number


def check_finite(value: Any, name: str) -> float:
    """Return ``value`` as a finite float.

    Raises:
        ValueError: Naming ``name`` and the value, if it is not a finite number.
    """
    number = _as_float(value, name, "a finite number")
    if not math.isfinite(number):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    return number


def check_positive(value: Any, name: str) -> float:
    """Return ``value`` as a float after checking it is finite and > 0.

    Raises:
        ValueError: Naming ``name`` and the value, if it is not a finite number > 0.
    """
    number = _as_float(value, name, "a finite number > 0")
    if not (math.isfinite(number) and number > 0.0):
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
    return number


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int after checking it is a whole number (and >= ``minimum``).

    Integral floats (``3.0``) are accepted; booleans, fractions, strings and other non-numbers are not.

    Raises:
        ValueError: Naming ``name`` and the value.
    """
    bound = "" if minimum is None else f" >= {minimum}"
    message = f"`{name}` must be an integer{bound}, got {value!r}."
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(message)
    if isinstance(value, numbers.Integral):
        number = int(value)
    else:
        as_float = float(value)
        if not (math.isfinite(as_float) and as_float.is_integer()):
            raise ValueError(message)
        number = int(as_float)
    if minimum is not None and number < minimum:
        raise ValueError(message)
    return number


def check_tau_range(value: Any, name: str = "tau_range") -> tuple[float, float]:
    """Return ``(low, high)`` as floats after checking ``0 <= low <= high <= 1`` (both finite).

    Raises:
        ValueError: Naming ``name`` and the value, if it is not two such numbers.
    """
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be two numbers (low, high), got {value!r}.") from None
    if not (0.0 <= low <= high <= 1.0):  # also NaN
        raise ValueError(f"`{name}` must satisfy 0 <= low <= high <= 1, got ({low}, {high}).")
    return low, high


# ---------------------------------------------------------------------------- arrays
def _where(source: str | None) -> str:
    return f"{source}: " if source else ""


def _first_bad(array: np.ndarray, bad: np.ndarray) -> str:
    """Describe the first flagged entry: its index and value, and how many are flagged."""
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    shown = index[0] if len(index) == 1 else list(index)
    count = int(bad.sum())
    more = f" ({count} bad entries in all)" if count > 1 else ""
    return f"entry {shown} is {array[index].item()!r}{more}"


def _as_float_array(values: Any, field: str, source: str | None) -> np.ndarray:
    try:
        kind = np.asarray(values).dtype.kind
    except (TypeError, ValueError):  # ragged nesting: reported below
        kind = "O"
    if kind in "bUSc":  # booleans, text and complex numbers are not numbers here (float() would take them)
        raise ValueError(f"{_where(source)}`{field}` must be numbers, got {values!r}.")
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{_where(source)}`{field}` must be numbers, got {values!r}.") from None


def check_unit_interval_array(values: Any, name: str, *, source: str | None = None, ndim: int | None = None,
                              allow_empty: bool = False) -> np.ndarray:
    """Return ``values`` as a float64 array after checking every entry is finite and in [0, 1].

    Args:
        values: Array-like of numbers.
        name: The argument or field name, for the message.
        source: Where the values come from (a file name), for the message.
        ndim: Required number of dimensions, if any.
        allow_empty: Whether an empty array is accepted.

    Raises:
        ValueError: Naming the source, the field, the first bad entry and its value.
    """
    array = _as_float_array(values, name, source)
    where = _where(source)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{where}`{name}` must be {ndim}-D, got shape {array.shape}.")
    if array.size == 0 and not allow_empty:
        raise ValueError(f"{where}`{name}` is empty.")
    bad = ~((array >= 0.0) & (array <= 1.0))  # also NaN
    if bad.any():
        raise ValueError(f"{where}`{name}` must be finite and in [0, 1]; {_first_bad(array, bad)}.")
    return array


def check_lambda_values(values: Any, lambda_max: float, *, source: str | None = None, field: str = "values") -> np.ndarray:
    """Return λ values as a 1-D float64 array after checking each is finite and in [0, ``lambda_max``].

    Raises:
        ValueError: Naming the source, the field, the first bad entry and its value; also on an
            empty table.
    """
    where = _where(source)
    array = _as_float_array(values, field, source).reshape(-1)
    if array.size == 0:
        raise ValueError(f"{where}λ `{field}` is empty; give at least one multiplier.")
    bad = ~((array >= 0.0) & (array <= lambda_max))  # also NaN
    if bad.any():
        raise ValueError(f"{where}λ `{field}` must be finite and in [0, lambda_max={lambda_max}]; {_first_bad(array, bad)}.")
    return array


def check_bin_edges(edges: Any, n_bins: int, *, source: str | None = None, field: str = "bin_edges") -> np.ndarray:
    """Return τ-bin edges as a 1-D float64 array after checking ``n_bins + 1`` finite, strictly increasing values.

    Raises:
        ValueError: Naming the source, the field and the bad value.
    """
    where = _where(source)
    array = _as_float_array(edges, field, source).reshape(-1)
    if array.size != n_bins + 1:
        raise ValueError(f"{where}`{field}` must hold {n_bins + 1} edges (one more than the {n_bins} λ values), "
                         f"got {array.size}: {array.tolist()}.")
    finite = np.isfinite(array)
    if not finite.all():
        raise ValueError(f"{where}`{field}` must be finite; {_first_bad(array, ~finite)}.")
    steps = np.diff(array)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(f"{where}`{field}` must be strictly increasing; entry {i + 1} ({array[i + 1].item()!r}) "
                         f"does not exceed entry {i} ({array[i].item()!r}).")
    return array


def check_lambda_table(values: Any, edges: Any, lambda_max: float, *, source: str | None = None,
                       fields: Sequence[str] = ("values", "bin_edges")) -> tuple[np.ndarray, np.ndarray]:
    """Check a λ table: ``(B,)`` values in [0, ``lambda_max``] and ``(B + 1,)`` increasing edges over τ.

    Args:
        values: λ per τ-bin.
        edges: The bins' edges.
        lambda_max: Upper bound of λ.
        source: Where the table comes from (a file such as ``lambda_table.json``), for messages.
        fields: Names of the two fields, for messages (a file's keys, e.g. ``("lambdas", "edges")``).

    Returns:
        ``(values, edges)`` as 1-D float64 arrays (new arrays, never the caller's).

    Raises:
        ValueError: Naming the source, the field and the bad value.
    """
    lambda_max = check_positive(lambda_max, "lambda_max")
    value_field, edge_field = fields
    checked = check_lambda_values(values, lambda_max, source=source, field=value_field)
    return checked, check_bin_edges(edges, checked.size, source=source, field=edge_field)


__all__ = [
    "NO_CONFIDENCE",
    "check_bin_edges",
    "check_confidence",
    "check_finite",
    "check_int",
    "check_lambda_table",
    "check_lambda_values",
    "check_number",
    "check_open_unit_interval",
    "check_positive",
    "check_tau",
    "check_tau_range",
    "check_unit_interval",
    "check_unit_interval_array",
    "parse_confidence",
]
