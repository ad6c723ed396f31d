r"""Dual-update rules of the Lagrangian relaxation: one multiplier per τ-bin, pure NumPy.

The training objective is the Lagrangian of "minimise cost subject to accuracy ≥ τ", split into
``B`` τ-bins with one multiplier λ_b each. After each validation pass the dual callback hands a
controller the per-bin *constraint error*

.. math::
    e_b = τ_b − \mathrm{acc}_b

(positive when bin ``b`` misses its floor, the analogue of OmniSafe's ``J_c − d``, cost minus
limit), and a mask of the bins that were measured. The controller returns the new
``λ ∈ [0, λ_max]^B``. Bins outside the mask keep their λ and their memory untouched.

Two rules, after OmniSafe's ``common/lagrange.py`` (:class:`GradientAscentController`) and
``common/pid_lagrange.py`` (:class:`PIDController`), vectorised over bins and without torch:

* projected dual (sub)gradient ascent, the PROTEUS paper's rule;
* the PID-Lagrangian of Stooke, Achiam and Abbeel (2020), "Responsive Safety in Reinforcement
  Learning by PID Lagrangian Methods", with OmniSafe's moving-average smoothing.

Every controller has ``update(error, measured_mask) -> lambdas``, a JSON-able ``state()`` and a
validating ``load_state(state)``. :func:`tau_span` is the collapse measure the callback logs.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from proteus_env._validation import check_number

__all__ = [
    "CONTROLLERS",
    "DualController",
    "GradientAscentController",
    "PIDController",
    "make_controller",
    "tau_span",
]


def _as_vector(value: Any, field: str, n: int) -> np.ndarray:
    """``value`` as a finite float64 ``(n,)`` array, or a ``ValueError`` naming ``field`` and the value."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"Dual state field {field!r} must be a list of {n} numbers, got {value!r}.") from None
    if array.shape != (n,):
        raise ValueError(f"Dual state field {field!r} must hold {n} values (one per bin), got shape {array.shape}: {value!r}.")
    if not np.isfinite(array).all():
        raise ValueError(f"Dual state field {field!r} must be finite, got {array.tolist()!r}.")
    return array


def _check_number(value: Any, name: str, *, low: float = 0.0, high: float = math.inf, high_open: bool = False,
                  low_open: bool = False) -> float:
    """:func:`proteus_env._validation.check_number`, with the lower bound 0 the dual's settings share."""
    return check_number(value, name, low=low, high=high, low_open=low_open, high_open=high_open)


class DualController(abc.ABC):
    """Base class of the dual-update rules: ``B`` projected multipliers λ_b ∈ [0, λ_max].

    Subclasses implement :meth:`_step` (the rule, applied to the measured bins) and declare the
    arrays of their memory in ``memory_keys``; :meth:`state` and :meth:`load_state` handle them.

    Args:
        n_bins: Number of multipliers ``B`` (τ-bins; 1 for one global λ).
        lambda_max: Upper bound of every λ_b (OmniSafe's ``lagrangian_upper_bound``), finite and > 0.
        lambda_init: λ of every bin before the first update, in [0, ``lambda_max``].

    Attributes:
        lambdas: ``(B,)`` current multipliers (read it; change it only through :meth:`update`,
            :meth:`load_state` or :meth:`reset`).
    """

    #: Name used in configs and saved states (``"gradient"``, ``"pid"``).
    name: ClassVar[str] = ""
    #: Keys of the per-bin memory arrays saved by :meth:`state`, besides ``lambdas``.
    memory_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_bins: int = 1, *, lambda_max: float = 10.0, lambda_init: float = 0.0) -> None:
        if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
            raise ValueError(f"`n_bins` must be a positive integer, got {n_bins!r}.")
        self.n_bins = int(n_bins)
        self.lambda_max = _check_number(lambda_max, "lambda_max", low_open=True)
        try:
            self.lambda_init = _check_number(lambda_init, "lambda_init", high=self.lambda_max)
        except ValueError:
            raise ValueError(f"Need 0 <= lambda_init <= lambda_max < inf, got lambda_init={lambda_init!r} and "
                             f"lambda_max={lambda_max!r}.") from None
        self.lambdas = np.full(self.n_bins, self.lambda_init)
        self._reset_memory()

    # ------------------------------------------------------------------ the rule
    def update(self, error: Any, measured_mask: Any = None) -> np.ndarray:
        """One dual step on the measured bins; returns a copy of the new λ.

        Args:
            error: ``(B,)`` constraint errors ``e_b = τ_b − acc_b`` (a scalar when ``B = 1``). May
                be NaN at bins outside the mask.
            measured_mask: ``(B,)`` bool, the bins measured in this pass. ``None``: the bins whose
                error is finite.

        Returns:
            ``(B,)`` the new λ, each in [0, ``lambda_max``]; unmeasured bins keep their λ.

        Raises:
            ValueError: On a wrong shape, or a non-finite error at a measured bin (naming the bins).
        """
        error = np.asarray(error, dtype=np.float64)
        if error.ndim == 0 and self.n_bins == 1:
            error = error.reshape(1)
        if error.shape != (self.n_bins,):
            raise ValueError(f"`error` must have shape ({self.n_bins},), one entry per bin; got shape {error.shape}.")
        if measured_mask is None:
            measured = np.isfinite(error)
        else:
            measured = np.asarray(measured_mask)
            if measured.shape != (self.n_bins,) or measured.dtype != np.bool_:
                raise ValueError(f"`measured_mask` must be a bool array of shape ({self.n_bins},), got {measured.dtype} "
                                 f"of shape {measured.shape}.")
            bad = np.flatnonzero(measured & ~np.isfinite(error))
            if bad.size:
                raise ValueError(f"`error` is not finite at measured bins {bad.tolist()}: {error[bad].tolist()}.")
        self._step(np.where(measured, error, 0.0), measured)
        return self.lambdas.copy()

    @abc.abstractmethod
    def _step(self, error: np.ndarray, measured: np.ndarray) -> None:
        """Apply the rule: update ``self.lambdas`` and the memory at ``measured`` bins only.

        Args:
            error: ``(B,)`` finite errors (0 at unmeasured bins).
            measured: ``(B,)`` bool mask.
        """

    # ------------------------------------------------------------------ state
    def _reset_memory(self) -> None:
        for key in self.memory_keys:
            setattr(self, key, np.zeros(self.n_bins))

    def warm_start(self, lambdas: Any) -> None:
        """Start from given multipliers instead of ``lambda_init`` (before the first update).

        Each λ_b is clipped to [0, ``lambda_max``]; the memory is emptied. Subclasses whose output
        is not λ itself (the PID rule) set their memory so that the output starts there.

        Raises:
            ValueError: On a wrong shape or non-finite values.
        """
        values = np.asarray(lambdas, dtype=np.float64)
        if values.shape != (self.n_bins,) or not np.isfinite(values).all():
            raise ValueError(f"Warm-start multipliers must be {self.n_bins} finite numbers, got {values.tolist()}.")
        self._reset_memory()
        self.lambdas = np.clip(values, 0.0, self.lambda_max)

    def reset(self) -> None:
        """Back to λ = ``lambda_init`` and empty memory."""
        self.lambdas = np.full(self.n_bins, self.lambda_init)
        self._reset_memory()

    def state(self) -> dict[str, Any]:
        """JSON-able state: ``{"controller": name, "lambdas": [...], <memory key>: [...], ...}``."""
        return {"controller": self.name, "lambdas": self.lambdas.tolist(),
                **{key: getattr(self, key).tolist() for key in self.memory_keys}}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state` after validating every field.

        Memory keys a state lacks start from their defaults (:meth:`_default_memory`).

        Raises:
            ValueError: On another controller's state, an unknown or missing field, a wrong shape,
                a non-finite value, or λ outside [0, ``lambda_max``]; the message names the field
                and its value. Nothing is changed when it raises.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"A dual state must be a dict, got {type(state).__name__}: {state!r}.")
        saved_by = state.get("controller", self.name)
        if saved_by != self.name:
            raise ValueError(f"Dual state field 'controller' is {saved_by!r}; this controller is {self.name!r}.")
        unknown = sorted(set(state) - {"controller", "lambdas", *self.memory_keys})
        if unknown:
            raise ValueError(f"Unknown dual state fields {unknown} for controller {self.name!r} "
                             f"(expected 'lambdas' and {list(self.memory_keys)}).")
        if "lambdas" not in state:
            raise ValueError("Dual state field 'lambdas' is missing.")
        lambdas = _as_vector(state["lambdas"], "lambdas", self.n_bins)
        outside = np.flatnonzero((lambdas < 0.0) | (lambdas > self.lambda_max))
        if outside.size:
            raise ValueError(f"Dual state field 'lambdas' must lie in [0, {self.lambda_max}] (lambda_max); bins "
                             f"{outside.tolist()} hold {lambdas[outside].tolist()}.")
        memory = self._default_memory(state, lambdas)
        for key in self.memory_keys:
            if key in state:
                memory[key] = self._check_memory(key, _as_vector(state[key], key, self.n_bins))
        self.lambdas = lambdas
        for key, value in memory.items():
            setattr(self, key, value)

    def _default_memory(self, state: Mapping[str, Any], lambdas: np.ndarray) -> dict[str, np.ndarray]:
        """Memory for the keys a saved state lacks (zeros by default)."""
        return {key: np.zeros(self.n_bins) for key in self.memory_keys}

    def _check_memory(self, key: str, value: np.ndarray) -> np.ndarray:
        """Validate (and possibly project) one loaded memory array."""
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_bins={self.n_bins}, lambda_max={self.lambda_max}, lambdas={self.lambdas.tolist()})"


class GradientAscentController(DualController):
    r"""Projected dual (sub)gradient ascent, the PROTEUS paper's rule.

    .. math::
        λ_b ← \mathrm{clip}\big(λ_b + η\,(τ_b − \mathrm{acc}_b),\; 0,\; λ_{\max}\big)

    for every measured bin ``b``. ``τ_b − acc_b`` is the derivative of the Lagrangian with respect
    to λ_b, so this is gradient ascent on the dual, projected onto the box [0, λ_max]. It is
    OmniSafe's ``Lagrange.update_lagrange_multiplier`` with plain SGD (``lambda_lr`` = η,
    ``lagrangian_upper_bound`` = λ_max), without torch. The controller has no memory besides λ.

    Args:
        n_bins: Number of multipliers.
        eta: Step size η > 0 (the paper's 0.4).
        lambda_max: Upper bound of λ.
        lambda_init: Initial λ of every bin.
    """

    name: ClassVar[str] = "gradient"

    def __init__(self, n_bins: int = 1, *, eta: float = 0.4, lambda_max: float = 10.0, lambda_init: float = 0.0) -> None:
        self.eta = _check_number(eta, "eta", low_open=True)
        super().__init__(n_bins, lambda_max=lambda_max, lambda_init=lambda_init)

    def _step(self, error: np.ndarray, measured: np.ndarray) -> None:
        updated = np.clip(self.lambdas + self.eta * error, 0.0, self.lambda_max)
        self.lambdas = np.where(measured, updated, self.lambdas)


class PIDController(DualController):
    r"""PID-Lagrangian (Stooke et al., 2020) with OmniSafe's moving-average smoothing, per bin.

    For every measured bin, with error ``e = τ_b − acc_b``:

    .. math::
        δ_p &← α_p\,δ_p + (1 − α_p)\,e                              &&\text{(smoothed error, P term)}\\
        I &← \mathrm{clip}\big(I + e,\; 0,\; λ_{\max} / k_i\big)      &&\text{(integral, anti-windup)}\\
        δ_d &← α_d\,e_{\text{prev}} + (1 − α_d)\,e,\quad
            D = δ_d − e_{\text{prev}},\quad e_{\text{prev}} ← δ_d    &&\text{(smoothed derivative)}\\
        λ_b &← \mathrm{clip}\big(k_p\,δ_p + k_i\,I + k_d\,D,\; 0,\; λ_{\max}\big)

    (``D ← max(D, 0)`` with ``positive_derivative=True``, as in Stooke et al. and OmniSafe: the
    derivative then only resists a *growing* violation.) The α are the weights of the *past*, as in
    OmniSafe's ``pid_delta_p_ema_alpha`` / ``pid_delta_d_ema_alpha``: **α = 0 means no smoothing**
    (δ_p = e, D = e − e_prev), the default, which is the plain PID of this package's earlier
    releases, number for number. OmniSafe's own default is 0.95 for both.

    Differences from OmniSafe's ``PIDLagrangian``, all chosen to keep earlier saved states valid:
    the integral is stored unscaled (``I``, multiplied by ``k_i`` in the output; OmniSafe stores
    ``k_i·ΣΔ``) and clipped above at ``λ_max / k_i`` so it cannot wind up beyond what λ can use;
    the derivative delay (``pid_d_delay``) is fixed at one update; λ is the PID output itself
    (positional form), so ``lambda_init`` is only the λ shown before the first update.

    Args:
        n_bins: Number of multipliers.
        kp: Proportional gain ``k_p`` >= 0.
        ki: Integral gain ``k_i`` >= 0.
        kd: Derivative gain ``k_d`` >= 0.
        lambda_max: Upper bound of λ.
        lambda_init: λ of every bin before the first update.
        delta_p_ema_alpha: α_p in [0, 1), smoothing of the P term's error (0: none).
        delta_d_ema_alpha: α_d in [0, 1), smoothing of the D term's signal (0: none).
        positive_derivative: Keep only the positive part of the derivative term.
    """

    name: ClassVar[str] = "pid"
    memory_keys: ClassVar[tuple[str, ...]] = ("integral", "previous_error", "delta_p")

    def __init__(
        self,
        n_bins: int = 1,
        *,
        kp: float = 0.4,
        ki: float = 0.05,
        kd: float = 0.1,
        lambda_max: float = 10.0,
        lambda_init: float = 0.0,
        delta_p_ema_alpha: float = 0.0,
        delta_d_ema_alpha: float = 0.0,
        positive_derivative: bool = False,
    ) -> None:
        self.kp = _check_number(kp, "kp")
        self.ki = _check_number(ki, "ki")
        self.kd = _check_number(kd, "kd")
        self.delta_p_ema_alpha = _check_number(delta_p_ema_alpha, "delta_p_ema_alpha", high=1.0, high_open=True)
        self.delta_d_ema_alpha = _check_number(delta_d_ema_alpha, "delta_d_ema_alpha", high=1.0, high_open=True)
        self.positive_derivative = bool(positive_derivative)
        self.integral = self.previous_error = self.delta_p = np.zeros(0)
        super().__init__(n_bins, lambda_max=lambda_max, lambda_init=lambda_init)

    @property
    def gains(self) -> tuple[float, float, float]:
        """``(k_p, k_i, k_d)``."""
        return self.kp, self.ki, self.kd

    @property
    def integral_max(self) -> float:
        """Anti-windup bound of the integral, ``λ_max / k_i`` (``k_i`` floored at 1e-12)."""
        return self.lambda_max / max(self.ki, 1e-12)

    def warm_start(self, lambdas: Any) -> None:
        """Start the output at ``lambdas``: the integral holds ``λ / k_i`` (the P and D terms start at 0)."""
        super().warm_start(lambdas)
        if self.ki > 0:
            self.integral = np.minimum(self.lambdas / self.ki, self.integral_max)

    def _step(self, error: np.ndarray, measured: np.ndarray) -> None:
        a_p, a_d = self.delta_p_ema_alpha, self.delta_d_ema_alpha
        self.integral = np.where(measured, np.clip(self.integral + error, 0.0, self.integral_max), self.integral)
        self.delta_p = np.where(measured, a_p * self.delta_p + (1.0 - a_p) * error, self.delta_p)
        delta_d = a_d * self.previous_error + (1.0 - a_d) * error
        derivative = delta_d - self.previous_error
        if self.positive_derivative:
            derivative = np.maximum(derivative, 0.0)
        self.previous_error = np.where(measured, delta_d, self.previous_error)
        updated = np.clip(self.kp * self.delta_p + self.ki * self.integral + self.kd * derivative, 0.0, self.lambda_max)
        self.lambdas = np.where(measured, updated, self.lambdas)

    def _default_memory(self, state: Mapping[str, Any], lambdas: np.ndarray) -> dict[str, np.ndarray]:
        memory = super()._default_memory(state, lambdas)
        # States written before the smoothing existed have no ``delta_p``: their P term used the raw
        # last error, which is what they stored as ``previous_error``.
        if "delta_p" not in state and "previous_error" in state:
            memory["delta_p"] = _as_vector(state["previous_error"], "previous_error", self.n_bins)
        return memory

    def _check_memory(self, key: str, value: np.ndarray) -> np.ndarray:
        if key == "integral":
            negative = np.flatnonzero(value < 0.0)
            if negative.size:
                raise ValueError(f"Dual state field 'integral' must be >= 0; bins {negative.tolist()} hold {value[negative].tolist()}.")
            # The bound depends on k_i, which may differ from the run that saved the state.
            return np.minimum(value, self.integral_max)
        return value


#: Controller classes by their config name.
CONTROLLERS: dict[str, type[DualController]] = {"gradient": GradientAscentController, "pid": PIDController}


def make_controller(
    name: str,
    n_bins: int,
    *,
    eta: float = 0.4,
    lambda_max: float = 10.0,
    lambda_init: float = 0.0,
    pid_gains: Sequence[float] = (0.4, 0.05, 0.1),
    pid_ema_alphas: Sequence[float] = (0.0, 0.0),
) -> DualController:
    """Build a controller from the dual callback's config keywords.

    Args:
        name: ``"gradient"`` or ``"pid"``.
        n_bins: Number of multipliers.
        eta: Step size of ``"gradient"``.
        lambda_max: Upper bound of λ.
        lambda_init: Initial λ.
        pid_gains: ``(k_p, k_i, k_d)`` of ``"pid"``.
        pid_ema_alphas: ``(α_p, α_d)`` smoothing of ``"pid"`` (0: none).

    Raises:
        ValueError: On an unknown name or bad settings, naming them.
    """
    if name not in CONTROLLERS:
        raise ValueError(f"`controller` must be one of {sorted(CONTROLLERS)}, got {name!r}.")
    if name == "gradient":
        return GradientAscentController(n_bins, eta=eta, lambda_max=lambda_max, lambda_init=lambda_init)
    gains = tuple(pid_gains)
    if len(gains) != 3:
        raise ValueError(f"`pid_gains` must be (k_p, k_i, k_d), got {pid_gains!r}.")
    alphas = tuple(pid_ema_alphas)
    if len(alphas) != 2:
        raise ValueError(f"`pid_ema_alphas` must be (delta_p_ema_alpha, delta_d_ema_alpha), got {pid_ema_alphas!r}.")
    return PIDController(n_bins, kp=gains[0], ki=gains[1], kd=gains[2], lambda_max=lambda_max, lambda_init=lambda_init,
                         delta_p_ema_alpha=alphas[0], delta_d_ema_alpha=alphas[1])


def tau_span(accuracy_per_bin: Any, achievable_low: float, achievable_high: float) -> float:
    r"""Spread of a policy's accuracy across τ-bins, relative to the achievable spread.

    .. math::
        \mathrm{span} = \frac{\max_b \mathrm{acc}_b − \min_b \mathrm{acc}_b}{\mathrm{high} − \mathrm{low}}

    over the bins with a finite accuracy. A policy that follows τ across the whole achievable
    range scores close to 1 (a little less, since bin centres stop half a bin short of the range's
    ends); a τ-blind policy, which serves every target at the same accuracy, scores 0.

    Args:
        accuracy_per_bin: ``(B,)`` realized accuracy at each bin's τ (NaN: not measured).
        achievable_low: The lowest achievable accuracy (the cheapest end).
        achievable_high: The highest achievable accuracy (the best fixed-μ accuracy).

    Returns:
        The span, >= 0 (above 1 when the policy's range exceeds the reference's); NaN when fewer
        than two bins are measured or the achievable range is a single point.

    Raises:
        ValueError: If a bound is not finite, or ``achievable_high < achievable_low``.
    """
    low = float(achievable_low)
    high = float(achievable_high)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"The achievable range must be finite, got low={achievable_low!r}, high={achievable_high!r}.")
    if high < low:
        raise ValueError(f"`achievable_high` ({high}) is below `achievable_low` ({low}).")
    accuracy = np.asarray(accuracy_per_bin, dtype=np.float64).reshape(-1)
    accuracy = accuracy[np.isfinite(accuracy)]
    if accuracy.size < 2 or high == low:
        return float("nan")
    return float((accuracy.max() - accuracy.min()) / (high - low))
