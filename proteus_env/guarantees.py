"""Finite-sample accuracy floors: certify a routing setting from validation outcomes.

A router calibrated on validation chooses a setting (PROTEUS's τ input, CARROT's trade-off m, a
fixed μ, ...) for a requested floor τ. This module makes the choice a guarantee:

    P( realized accuracy of the served queries ≥ τ ) ≥ 1 − δ,

under one assumption: validation queries and served queries are exchangeable draws from the same
distribution (it breaks under drift; then steer with realized feedback instead). The probability
is over the validation sample and the served sample together, and it holds for the setting the
procedure *chose*, not only for one setting looked at in isolation.

The procedure, for settings ordered from the most accurate to the cheapest (an order fixed before
looking at the validation outcomes, e.g. by the setting's parameter):

1. **Deployment.** ``n_deploy`` served queries average to their population accuracy p up to
   sampling noise. :func:`required_population_accuracy` is the smallest p for which the served
   mean falls below τ with probability at most δ_d (exact binomial tail for 0/1 scores; the
   Bentkus bound, ``e·P(Bin ≤ k)``, for scores in [0, 1]). Without ``n_deploy`` (a population
   floor) p = τ and δ_d = 0.
2. **Validation.** For each setting, H₀: its population accuracy < p. A valid p-value from its
   validation mean over ``n_val`` queries: the exact binomial tail (Clopper–Pearson's test) for
   0/1 scores, the Hoeffding–Bentkus p-value of Learn-then-Test (Angelopoulos et al., 2021,
   arXiv 2110.01052) for fractional ones.
3. **Learn-then-Test, fixed sequence.** Test the settings in order at level δ_v and stop at the
   first that is not rejected; the chosen setting is the last rejected one (the cheapest certified).
   Fixed-sequence testing controls the family-wise error at δ_v with no multiplicity correction.

δ is split as δ_v + δ_d = δ (union bound). The split is chosen from ``(τ, n_val, n_deploy)``
alone, never from outcomes, to make the validation threshold lowest. Because every p-value
above is non-increasing in the validation mean, step 2 reduces to one threshold per τ:
:func:`certified_threshold` returns the validation accuracy a setting must reach.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from scipy import stats

from proteus_env._validation import check_int, check_open_unit_interval, check_tau

#: Candidate shares of δ spent on validation (the rest covers the deployment sample).
_SPLITS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))
_BISECT_STEPS = 60


def _kl_bernoulli(a: float, b: float) -> float:
    """h₁(a, b) = a·log(a/b) + (1 − a)·log((1 − a)/(1 − b)), the Bernoulli KL divergence."""
    a = min(max(a, 0.0), 1.0)
    out = 0.0
    if a > 0:
        out += math.inf if b <= 0.0 else a * math.log(a / b)
    if a < 1:
        out += math.inf if b >= 1.0 else (1 - a) * math.log((1 - a) / (1 - b))
    return out


def upper_tail_p_value(mean: float, n: int, p0: float, *, binary: bool) -> float:
    """p-value of H₀ "population accuracy < p0" from a mean accuracy ``mean`` over ``n`` queries.

    Args:
        mean: Observed mean score in [0, 1].
        n: Number of queries behind ``mean``.
        p0: The accuracy H₀ says is not reached.
        binary: Scores are 0/1 (exact binomial tail); otherwise scores in [0, 1] (Hoeffding–Bentkus).

    Returns:
        The p-value in [0, 1]; small values certify accuracy ≥ p0.
    """
    if p0 <= 0.0:
        return 0.0
    if p0 >= 1.0:
        return 1.0
    if binary:
        successes = int(round(mean * n))
        return float(stats.binom.sf(successes - 1, n, p0))  # P(Bin(n, p0) ≥ successes)
    # Loss view of Learn-then-Test: loss = 1 − score, risk α = 1 − p0, observed risk r = 1 − mean.
    alpha, risk = 1.0 - p0, 1.0 - mean
    hoeffding = math.exp(-n * _kl_bernoulli(min(risk, alpha), alpha))
    bentkus = math.e * float(stats.binom.cdf(math.ceil(n * risk - 1e-9), n, alpha))
    return float(min(1.0, hoeffding, bentkus))


def _deploy_failure(p: float, tau: float, n_deploy: int, binary: bool) -> float:
    """Upper bound of P(mean of ``n_deploy`` served scores < τ) when the population accuracy is p."""
    if binary:
        needed = math.ceil(tau * n_deploy - 1e-9)  # successes needed to meet τ
        return float(stats.binom.cdf(needed - 1, n_deploy, p))
    if p <= tau:
        return 1.0
    hoeffding = math.exp(-n_deploy * _kl_bernoulli(tau, p))
    bentkus = math.e * float(stats.binom.cdf(math.ceil(n_deploy * tau - 1e-9), n_deploy, p))
    return min(1.0, hoeffding, bentkus)


@functools.lru_cache(maxsize=4096)
def required_population_accuracy(tau: float, n_deploy: int, delta: float, *, binary: bool) -> float:
    """The smallest population accuracy p whose ``n_deploy`` served queries meet τ with probability ≥ 1 − δ.

    Returns:
        p in [τ, 1], or ``math.inf`` when even p = 1 does not suffice (cannot happen for 0/1 scores).
    """
    if _deploy_failure(1.0, tau, n_deploy, binary) > delta:
        return math.inf
    low, high = float(tau), 1.0
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (low + high)
        if _deploy_failure(mid, tau, n_deploy, binary) <= delta:
            high = mid
        else:
            low = mid
    return high


@functools.lru_cache(maxsize=4096)
def _validation_threshold(p_required: float, n_val: int, delta_val: float, binary: bool) -> float:
    """The smallest validation mean whose p-value for H₀ "accuracy < p_required" is ≤ δ_v."""
    if not math.isfinite(p_required) or p_required > 1.0:
        return math.inf
    if binary:
        # Smallest success count k with P(Bin(n, p) ≥ k) ≤ δ_v.
        k = int(stats.binom.isf(delta_val, n_val, p_required)) + 1
        while k > 0 and stats.binom.sf(k - 2, n_val, p_required) <= delta_val:
            k -= 1
        while k <= n_val and stats.binom.sf(k - 1, n_val, p_required) > delta_val:
            k += 1
        return math.inf if k > n_val else k / n_val
    if upper_tail_p_value(1.0, n_val, p_required, binary=False) > delta_val:
        return math.inf
    low, high = 0.0, 1.0
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (low + high)
        if upper_tail_p_value(mid, n_val, p_required, binary=False) <= delta_val:
            high = mid
        else:
            low = mid
    return high


@dataclasses.dataclass(frozen=True)
class Certificate:
    """What a validation accuracy must reach so that a floor τ holds with probability 1 − δ.

    Attributes:
        tau: The floor on the served queries' realized accuracy.
        delta: Allowed failure probability.
        threshold: Validation mean accuracy a setting needs (``inf``: τ cannot be certified).
        population_accuracy: The population accuracy the validation test certifies.
        delta_val: Share of δ spent on the validation test.
        n_val: Validation queries.
        n_deploy: Served queries the floor is about (``None``: the population accuracy).
    """

    tau: float
    delta: float
    threshold: float
    population_accuracy: float
    delta_val: float
    n_val: int
    n_deploy: int | None

    @property
    def certifiable(self) -> bool:
        """Whether any validation accuracy can certify τ at all."""
        return math.isfinite(self.threshold) and self.threshold <= 1.0


@functools.lru_cache(maxsize=8192)
def certified_threshold(tau: float, n_val: int, delta: float, n_deploy: int | None = None, *, binary: bool = True) -> Certificate:
    """The validation accuracy a setting must reach to certify floor τ at level δ.

    Args:
        tau: Floor in [0, 1].
        n_val: Validation queries behind each setting's accuracy (≥ 1).
        delta: Failure probability in (0, 1).
        n_deploy: Served queries the floor is about; ``None`` certifies the population accuracy.
        binary: Scores are 0/1 (exact binomial); otherwise fractional scores in [0, 1].

    Returns:
        A :class:`Certificate`.

    Raises:
        ValueError: On τ outside [0, 1], δ outside (0, 1) or non-positive sample sizes.
    """
    tau = check_tau(tau)
    delta = check_open_unit_interval(delta, "delta")
    n_val = check_int(n_val, "n_val", minimum=1)
    n_deploy = None if n_deploy is None else check_int(n_deploy, "n_deploy", minimum=1)
    if tau == 0.0:  # every realized accuracy meets a zero floor
        return Certificate(tau, delta, 0.0, 0.0, delta, n_val, n_deploy)
    if n_deploy is None:
        return Certificate(tau, delta, _validation_threshold(tau, n_val, delta, binary), tau, delta, n_val, None)
    best: Certificate | None = None
    for share in _SPLITS:
        delta_val = delta * float(share)
        p_required = required_population_accuracy(tau, n_deploy, delta - delta_val, binary=binary)
        threshold = _validation_threshold(p_required, n_val, delta_val, binary)
        if best is None or threshold < best.threshold:
            best = Certificate(tau, delta, threshold, p_required, delta_val, n_val, n_deploy)
    assert best is not None
    return best


def fixed_sequence_choice(accuracy_in_order: np.ndarray, threshold: float) -> int | None:
    """Learn-then-Test fixed-sequence testing: walk the settings in order while each is certified.

    Args:
        accuracy_in_order: Validation accuracy of each setting, from the most accurate setting to the
            cheapest (an order fixed before seeing the outcomes).
        threshold: :attr:`Certificate.threshold`.

    Returns:
        The position of the last certified setting before the first failure, or ``None`` when the
        first setting already fails (nothing is certified).
    """
    passed = np.asarray(accuracy_in_order, dtype=np.float64) >= threshold
    if passed.size == 0 or not passed[0]:
        return None
    failures = np.flatnonzero(~passed)
    return int(failures[0] - 1) if failures.size else int(passed.size - 1)


def scores_are_binary(scores: np.ndarray) -> bool:
    """Whether every score is exactly 0 or 1 (then the exact binomial tests apply)."""
    values = np.asarray(scores)
    return bool(np.all((values == 0.0) | (values == 1.0)))


@dataclasses.dataclass(frozen=True)
class CertifiedChoice:
    """The setting a calibrated router serves τ with, at a confidence level.

    Attributes:
        position: Position in the caller's sequence (most accurate first) of the chosen setting, or
            ``None`` when τ cannot be certified (the first setting already fails).
        certificate: The :class:`Certificate` (its ``threshold`` is what a setting had to reach).
    """

    position: int | None
    certificate: Certificate

    @property
    def certified(self) -> bool:
        """Whether a setting was certified."""
        return self.position is not None


def certify(accuracy_in_order: np.ndarray, tau: float, n_val: int, confidence: float, n_deploy: int | None, *,
            binary: bool) -> CertifiedChoice:
    """Choose the cheapest setting certified to serve floor τ with probability ``confidence``.

    The one procedure behind every calibrated router (PROTEUS, CARROT, KNN, MLP, OmniRouter, zero
    router): :func:`certified_threshold` at ``delta = 1 − confidence``, then
    :func:`fixed_sequence_choice` over the router's settings.

    Args:
        accuracy_in_order: Validation accuracy of each setting, most accurate setting first (an
            order fixed by the settings' parameter, not by these accuracies).
        tau: The floor.
        n_val: Validation queries behind each accuracy.
        confidence: ``1 − δ``, in (0, 1).
        n_deploy: Served queries the floor is about (``None``: the population accuracy).
        binary: Scores are 0/1.
    """
    certificate = certified_threshold(float(tau), int(n_val), 1.0 - float(confidence), n_deploy, binary=binary)
    return CertifiedChoice(fixed_sequence_choice(accuracy_in_order, certificate.threshold), certificate)
