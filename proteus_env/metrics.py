"""Evaluation metrics for τ-conditioned routers: pure functions over realized outcomes.

Every figure here is computed from *realized* scores and USD costs of the chosen models (the
benchmark's ``scores`` and ``costs`` on the evaluated rows), never from predicted correctness.
Nothing here knows about routers, the environment or torch: callers route, then pass arrays.

Building blocks:

* :func:`routing_outcome` — accuracy and USD per 1K queries of one routing decision;
* :func:`bootstrap_ci` — percentile bootstrap interval of a mean;
* :func:`oracle_choice`, :func:`fixed_model_outcomes`, :func:`reference_outcomes` — the oracle and
  fixed-model reference points;
* :func:`one_sided_margin` — the normal-approximation calibration target τ' the routers used before
  certified floors (:mod:`proteus_env.guarantees`), kept to measure what certification costs
  (``benchmarks/certified_floors.py``), with :func:`effective_sample_size`;
* :func:`feasible_tau_grid` — the τ grid inside the achievable range, with feasibility flags;
* :func:`evaluate_tau` — one :class:`TauRecord` per τ;
* :func:`summarize` — the aggregates over a τ grid (floor compliance, band rates, Pearson(τ, μ),
  cost range, savings, gap to oracle, AIQ, routing efficiency, RPI).
* :func:`calibration_metrics` — per-model AUC, Brier score and expected calibration error of
  predicted correctness p̂ (:func:`auc_score`, :func:`brier_score`,
  :func:`expected_calibration_error`), and :func:`reliability_curve` for reliability diagrams.
* :func:`oracle_floor_cost`, :func:`normalized_cost` and :func:`seed_bootstrap_ci` — the yardstick below.

The yardstick (one number per router and run, to cite):

* **normalized cost** — for every feasible target τ of the grid and every split seed ``s``, the
  router's realized test cost ``c`` (USD per 1K queries) placed between ``c_τ(s)``, the least any
  router could pay to meet τ on that seed's test split knowing every realized score in hindsight
  (:func:`oracle_floor_cost`; 0), and the best fixed model's ``c_b(s)`` (the single model with
  the best train accuracy, the ``best_fixed`` baseline, the operator's safe fallback; 1):
  ``n = (c − c_τ) / (c_b − c_τ)``. A met floor scores ``n ≥ 0`` (no router meets τ for less than
  ``c_τ``). A missed floor (realized accuracy < τ) is a **failure** and scores ``max(1, n)``: no
  better than the fallback, and never cheaper than what the router paid. The router's figure is
  the mean of ``n`` over all feasible (τ, seed) pairs; lower is better, the best fixed model
  scores exactly 1. Failures are counted, not excluded, because exclusion rewards missing the
  expensive targets.
* **floor compliance** — the share of feasible (τ, seed) pairs whose floor was met
  (``floor_compliance`` of ``proteus eval``, pooled over pairs).

**Cite the pair, and rank by cost only among compliant routers.** A failure costs the fallback,
which at the top targets is about what meeting them costs, so a cheap router that gives up on the
top floors can score a normalized cost close to a compliant router's, or below it (notebook 03:
sending every query to Yi-34B met 71 % of floors at 0.32, a CARROT certified at 95 % met all at
0.36). The summary table therefore lists the routers whose floor compliance is at least
:data:`COMPLIANCE_STANDARD` first, by normalized cost, then the others, by compliance. Two
earlier definitions were worse: one lower reference for every τ (the cheapest-correct-model
oracle, dearer than meeting a low τ) gave compliant routers negative scores; repairing a miss by
mixing in the fallback priced a miss by its shortfall, and ranked routers calibrated to τ itself
(57 % compliance) above every certified one.

Both are reported with 95 % percentile bootstrap intervals over seeds (:func:`seed_bootstrap_ci`:
whole seeds are resampled, because the targets of one seed share its split and are not
independent); with a single seed the interval is undefined (NaN): evaluate several seeds.

References:
    Hu et al., 2024, "RouterBench: A Benchmark for Multi-LLM Routing System" (AIQ, the
    non-decreasing convex hull). Bhatti, Vaddina, Birru, 2026, "PROTEUS: SLA-Aware Routing via
    Lagrangian RL for Multi-LLM Serving Systems", arXiv 2601.19402 (floor compliance, τ–μ
    correlation, savings versus the best fixed model, gap to oracle, routing efficiency, RPI).
    The paper's exact formulas for routing efficiency and RPI could not be retrieved; the
    definitions in :func:`routing_efficiency` and :func:`relative_performance_index` are our
    reading and say so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from proteus_env._validation import check_confidence, check_int, check_tau, check_unit_interval_array

#: Bands of the band-compliance rates, in absolute accuracy points (0.02 = ±2 pp).
DEFAULT_BANDS: tuple[float, ...] = (0.02, 0.05)
#: Above this many distinct values, :func:`bootstrap_ci` resamples indices instead of counts.
_MAX_DISTINCT_FOR_MULTINOMIAL = 64


# ---------------------------------------------------------------------------- validation
# Scalars (τ, confidence levels, counts) are checked by proteus_env._validation; ``check_tau`` is
# importable from here too. The array checks below are specific to routing outcomes.
def _check_outcomes(scores: Any, costs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(n, K)`` scores and costs: same shape, non-empty, finite, costs >= 0."""
    scores = np.asarray(scores, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"`scores` must be a non-empty 2-D (n, K) array, got shape {scores.shape}.")
    if costs.shape != scores.shape:
        raise ValueError(f"`costs` has shape {costs.shape}, expected {scores.shape} like `scores`.")
    if not np.isfinite(scores).all():
        raise ValueError("`scores` holds NaN or infinite values.")
    if not np.isfinite(costs).all() or (costs < 0).any():
        raise ValueError("`costs` must be finite and non-negative.")
    return scores, costs


def _check_choice(choice: Any, n: int, n_models: int) -> np.ndarray:
    """Validate an ``(n,)`` integer array of model indices in ``[0, n_models)``."""
    choice = np.asarray(choice)
    if choice.shape != (n,):
        raise ValueError(f"`choice` has shape {choice.shape}, expected ({n},) (one model index per query).")
    if choice.dtype.kind not in "iu":
        raise ValueError(f"`choice` must hold integer model indices, got dtype {choice.dtype}.")
    if n and (choice.min() < 0 or choice.max() >= n_models):
        raise ValueError(f"`choice` holds model indices outside [0, {n_models}).")
    return choice.astype(np.int64)


def _check_vector(values: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """Validate a finite 1-D float vector."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {values.shape}.")
    if values.size == 0 and not allow_empty:
        raise ValueError(f"`{name}` is empty.")
    if not np.isfinite(values).all():
        raise ValueError(f"`{name}` holds NaN or infinite values.")
    return values


# ---------------------------------------------------------------------------- outcomes
def routing_outcome(scores: Any, costs: Any, choice: Any) -> tuple[float, float]:
    """Realized accuracy and USD per 1K queries of routing query ``i`` to model ``choice[i]``.

    Args:
        scores: ``(n, K)`` realized scores in [0, 1] of the evaluated rows.
        costs: ``(n, K)`` USD per query of the evaluated rows.
        choice: ``(n,)`` integer model index per query.

    Returns:
        ``(accuracy, usd_per_1k)``: the mean realized score of the chosen models and
        ``1000 ×`` their mean USD cost.

    Raises:
        ValueError: On mismatched shapes, NaN, negative costs or out-of-range indices.
    """
    scores, costs = _check_outcomes(scores, costs)
    choice = _check_choice(choice, *scores.shape)
    rows = np.arange(scores.shape[0])
    return float(scores[rows, choice].mean()), float(costs[rows, choice].mean() * 1000.0)


def chosen_scores(scores: Any, choice: Any) -> np.ndarray:
    """Return the ``(n,)`` realized scores of the chosen models (for bootstrap intervals)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"`scores` must be 2-D (n, K), got shape {scores.shape}.")
    choice = _check_choice(choice, *scores.shape)
    return scores[np.arange(scores.shape[0]), choice]


def oracle_choice(scores: Any, costs: Any) -> np.ndarray:
    """Per query, the cheapest model among those with the best realized score.

    Args:
        scores: ``(n, K)`` realized scores.
        costs: ``(n, K)`` USD costs.

    Returns:
        ``(n,)`` int64 model indices (ties in both score and cost go to the lowest index).
    """
    scores, costs = _check_outcomes(scores, costs)
    best = scores >= scores.max(axis=1, keepdims=True)
    return np.argmin(np.where(best, costs, np.inf), axis=1).astype(np.int64)


def oracle_floor_cost(scores: Any, costs: Any, tau: float, *, iterations: int = 100) -> float:
    """The least USD per 1K queries with which any router could meet the floor τ on these rows, in hindsight.

    Choosing one model per query with the realized scores known, minimize the mean cost subject to
    mean score ≥ τ. The linear relaxation (a fraction of a query may be split between two models)
    is solved exactly by its Lagrangian: for a price ν ≥ 0 each query takes
    ``argmin_k cost_k − ν·score_k``; mean score and cost rise with ν, and τ is met at the price
    where the mean score crosses it, interpolated between the two sides of that breakpoint. The
    relaxation is a lower bound: every router that meets τ on these rows pays at least this (the
    integer optimum differs by at most one query's cost).

    Args:
        scores: ``(n, K)`` realized scores.
        costs: ``(n, K)`` USD costs.
        tau: The floor.
        iterations: Bisection steps on the price (log scale).

    Returns:
        USD per 1K queries; the cheapest choice's cost when τ is below its accuracy, NaN when τ is
        above the oracle's accuracy (no choice of models meets it).
    """
    scores, costs = _check_outcomes(scores, costs)
    tau = float(tau)

    def outcome(price: float) -> tuple[float, float]:
        # ties go to the higher score, then the lower index: a price on a breakpoint counts as past it
        value = costs - price * scores - 1e-12 * scores * (np.abs(costs).max() + 1.0)
        choice = np.argmin(value, axis=1)
        rows = np.arange(scores.shape[0])
        return float(scores[rows, choice].mean()), float(costs[rows, choice].mean())

    accuracy, cost = outcome(0.0)
    if accuracy >= tau:
        return 1000.0 * cost
    top = float(scores.max(axis=1).mean())
    if tau > top + 1e-12:
        return math.nan
    spread = float(costs.max() - costs.min())
    low_price, high_price = 0.0, max(spread, 1e-300) * 1e6
    high_outcome = outcome(high_price)
    low_outcome = (accuracy, cost)
    if high_outcome[0] < tau:  # the price cannot reach τ within floating point: τ is the oracle's accuracy itself
        return 1000.0 * high_outcome[1]
    for _ in range(int(iterations)):
        middle = math.sqrt(max(low_price, high_price * 1e-18) * high_price)
        result = outcome(middle)
        if result[0] >= tau:
            high_price, high_outcome = middle, result
        else:
            low_price, low_outcome = middle, result
    (a0, c0), (a1, c1) = low_outcome, high_outcome
    share = 0.0 if a1 <= a0 else (tau - a0) / (a1 - a0)
    return 1000.0 * (c0 + share * (c1 - c0))


def fixed_model_outcomes(scores: Any, costs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and USD per 1K queries of each model used alone: two ``(K,)`` arrays."""
    scores, costs = _check_outcomes(scores, costs)
    return scores.mean(axis=0), costs.mean(axis=0) * 1000.0


@dataclasses.dataclass(frozen=True)
class References:
    """Reference points on the evaluated rows, each ``(accuracy, usd_per_1k)``.

    Attributes:
        oracle: The per-query oracle (:func:`oracle_choice`).
        best_fixed: The best single model.
        cheapest: The cheapest single model.
        best_fixed_index: Index of the best single model.
        cheapest_index: Index of the cheapest single model.
    """

    oracle: tuple[float, float]
    best_fixed: tuple[float, float]
    cheapest: tuple[float, float]
    best_fixed_index: int
    cheapest_index: int


def reference_outcomes(scores: Any, costs: Any, *, best_fixed: int | None = None, cheapest: int | None = None) -> References:
    """Oracle, best fixed and cheapest model outcomes on the evaluated rows.

    Args:
        scores: ``(n, K)`` realized scores of the evaluated rows.
        costs: ``(n, K)`` USD costs of the evaluated rows.
        best_fixed: Index of the best fixed model; default the model with the highest accuracy on
            these rows (ties: the cheaper). Pass the train-split choice to match the
            ``best_fixed`` baseline router.
        cheapest: Index of the cheapest model; default the lowest mean cost on these rows.

    Returns:
        The :class:`References`.
    """
    scores, costs = _check_outcomes(scores, costs)
    accuracy, usd = fixed_model_outcomes(scores, costs)
    n_models = scores.shape[1]
    if best_fixed is None:
        best_fixed = int(np.lexsort((usd, -accuracy))[0])
    if cheapest is None:
        cheapest = int(np.lexsort((-accuracy, usd))[0])
    for name, index in (("best_fixed", best_fixed), ("cheapest", cheapest)):
        if not 0 <= int(index) < n_models:
            raise ValueError(f"`{name}` must be a model index in [0, {n_models}), got {index!r}.")
    oracle = routing_outcome(scores, costs, oracle_choice(scores, costs))
    return References(
        oracle=oracle,
        best_fixed=(float(accuracy[best_fixed]), float(usd[best_fixed])),
        cheapest=(float(accuracy[cheapest]), float(usd[cheapest])),
        best_fixed_index=int(best_fixed),
        cheapest_index=int(cheapest),
    )


# ---------------------------------------------------------------------------- statistics
def bootstrap_ci(values: Any, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values``.

    Resamples ``len(values)`` values with replacement ``n_boot`` times and returns the
    ``(1 − confidence)/2`` and ``(1 + confidence)/2`` quantiles of the resampled means (Efron's
    percentile interval). When ``values`` take few distinct values (0/1 or quarter-step scores),
    the resample counts of each distinct value are drawn from the equivalent multinomial, which
    is exact and far cheaper than resampling indices.

    Args:
        values: 1-D finite sample (for example the realized scores of the chosen models).
        confidence: Two-sided coverage in (0, 1).
        n_boot: Number of bootstrap resamples (>= 1).
        seed: Seed of the resampling.

    Returns:
        ``(low, high)``; both equal the mean when the sample is constant or has one value.

    Raises:
        ValueError: On an empty or non-finite sample, or ``confidence`` outside (0, 1).
    """
    values = _check_vector(values, "values")
    confidence = check_confidence(confidence, allow_none=False)
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    n = values.size
    rng = np.random.default_rng(seed)
    distinct, counts = np.unique(values, return_counts=True)
    if distinct.size == 1:
        return float(distinct[0]), float(distinct[0])
    if distinct.size <= _MAX_DISTINCT_FOR_MULTINOMIAL:
        draws = rng.multinomial(n, counts / n, size=n_boot)
        means = draws @ distinct / n
    else:
        per_chunk = max(1, 5_000_000 // n)  # bound the (resamples, n) index matrix to ~40 MB
        sizes = [min(per_chunk, n_boot - start) for start in range(0, n_boot, per_chunk)]
        means = np.concatenate([values[rng.integers(0, n, size=(size, n))].mean(axis=1) for size in sizes])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def seed_bootstrap_ci(groups: Sequence[Any], confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a pooled mean, resampling whole groups (seeds) with replacement.

    Each resample draws ``len(groups)`` groups with replacement and pools their values; the
    statistic is the mean of the pooled values (so groups weigh by their size, as the pooled
    rates of ``proteus eval`` do). Non-finite values are dropped first, and empty groups with them.

    Args:
        groups: One 1-D array of values per seed (for example the normalized cost, or 0/1 floor met,
            of each feasible τ of that seed).
        confidence: Two-sided coverage in (0, 1).
        n_boot: Number of bootstrap resamples (>= 1).
        seed: Seed of the resampling.

    Returns:
        ``(low, high)``; ``(nan, nan)`` with fewer than two non-empty groups (one seed says nothing
        about the spread between seeds).

    Raises:
        ValueError: On ``confidence`` outside (0, 1) or ``n_boot < 1``.
    """
    confidence = check_confidence(confidence, allow_none=False)
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    sums, counts = [], []
    for group in groups:
        values = np.asarray(group, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if values.size:
            sums.append(float(values.sum()))
            counts.append(values.size)
    if len(sums) < 2:
        return float("nan"), float("nan")
    sums_a, counts_a = np.asarray(sums), np.asarray(counts, dtype=np.float64)
    draws = np.random.default_rng(seed).integers(0, sums_a.size, size=(n_boot, sums_a.size))
    means = sums_a[draws].sum(axis=1) / counts_a[draws].sum(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def normalized_cost(usd: Any, floor_met: Any, floor_usd: Any, best_fixed_usd: Any) -> np.ndarray:
    """The yardstick's normalized cost of routing decisions (see the module docstring).

    ``n = (usd − floor_usd) / (best_fixed_usd − floor_usd)`` where the floor was met, and
    ``max(1, n)`` where it was missed (a failure is no better than the best fixed model).

    Args:
        usd: ``(m,)`` realized USD per 1K queries of the router (one per τ and seed).
        floor_met: ``(m,)`` whether each floor was met.
        floor_usd: The least USD per 1K that meets each floor in hindsight on the same rows
            (:func:`oracle_floor_cost`; scalar or ``(m,)``).
        best_fixed_usd: The best fixed model's USD per 1K on the same rows (scalar or ``(m,)``).

    Returns:
        ``(m,)`` float64; NaN where the best fixed model is not dearer than ``floor_usd`` (no scale).

    Raises:
        ValueError: On mismatched lengths or non-finite costs.
    """
    usd = _check_vector(usd, "usd", allow_empty=True)
    met = np.asarray(floor_met, dtype=bool)
    if met.shape != usd.shape:
        raise ValueError(f"`floor_met` has shape {met.shape}, expected {usd.shape} like `usd`.")
    floor = np.broadcast_to(np.asarray(floor_usd, dtype=np.float64), usd.shape)
    best = np.broadcast_to(np.asarray(best_fixed_usd, dtype=np.float64), usd.shape)
    if not (np.isfinite(floor).all() and np.isfinite(best).all()):
        raise ValueError("`floor_usd` and `best_fixed_usd` must be finite.")
    scale = best - floor
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(scale > 0, (usd - floor) / np.where(scale > 0, scale, 1.0), np.nan)
    return np.where(met | np.isnan(value), value, np.maximum(value, 1.0))


#: Floor compliance from which the yardstick's summary ranks a router by normalized cost (see the module docstring).
COMPLIANCE_STANDARD: float = 0.95


def one_sided_margin(tau: float, n: int, confidence: float | None) -> float:
    """Return the accuracy τ' to calibrate to on ``n`` queries so that τ holds at a one-sided confidence.

    A router calibrated so that its realized accuracy on ``n`` validation queries is exactly τ
    meets τ on fresh data only about half the time. Calibrating to

        τ' = τ + z · sqrt(τ (1 − τ) / n),   z = Φ⁻¹(confidence),

    instead makes τ the one-sided Wilson score lower confidence bound of an observed accuracy
    τ': the Wilson interval is the inversion of the score test |p̂ − p| ≤ z·sqrt(p(1 − p)/n),
    so its lower end equals τ exactly when p̂ = τ + z·sqrt(τ(1 − τ)/n) (Wilson, 1927). For
    fractional scores in [0, 1] the Bernoulli variance τ(1 − τ) bounds the true variance, so the
    margin is conservative. The result is capped at 1.

    Args:
        tau: The accuracy target τ in [0, 1].
        n: Number of calibration (validation) queries, >= 1.
        confidence: One-sided confidence level in (0, 1), or ``None`` for no margin (τ' = τ).

    Returns:
        τ' in [τ, 1].

    Raises:
        ValueError: On τ outside [0, 1], ``n < 1`` or ``confidence`` outside (0, 1).
    """
    tau = check_tau(tau)
    confidence = check_confidence(confidence)
    if confidence is None:
        return tau
    n = check_int(n, "n", minimum=1)
    z = NormalDist().inv_cdf(confidence)
    return float(min(1.0, tau + z * math.sqrt(tau * (1.0 - tau) / n)))


def effective_sample_size(n_val: int, n_deploy: int | None = None) -> int:
    """Sample size of a margin that covers validation and deployment noise together.

    A router calibrated on ``n_val`` validation queries and judged on ``n_deploy`` fresh ones
    errs by the sum of two independent sampling errors, whose variance is that of a single
    sample of ``1 / (1/n_val + 1/n_deploy)`` queries (``n_val / 2`` when the two are equal, the
    default). Pass the result as ``n`` to :func:`one_sided_margin`. Truncated to an integer >= 1.
    The routers certify with :mod:`proteus_env.guarantees` instead; this is the previous rule, kept
    for comparison.

    Raises:
        ValueError: If ``n_val`` or ``n_deploy`` is not a positive integer.
    """
    n_val = check_int(n_val, "n_val", minimum=1)
    n_deploy = n_val if n_deploy is None else check_int(n_deploy, "n_deploy", minimum=1)
    return max(1, int(1.0 / (1.0 / n_val + 1.0 / n_deploy)))


def pearson(x: Any, y: Any) -> float:
    """Pearson correlation of two equal-length vectors; NaN if fewer than 2 points or constant."""
    x = _check_vector(x, "x", allow_empty=True)
    y = _check_vector(y, "y", allow_empty=True)
    if x.shape != y.shape:
        raise ValueError(f"`x` and `y` must have the same length, got {x.size} and {y.size}.")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


# ---------------------------------------------------------------------------- τ grid
@dataclasses.dataclass(frozen=True)
class TauGrid:
    """A τ grid with the achievable range it was checked against.

    Attributes:
        taus: ``(n,)`` τ values.
        is_feasible: ``(n,)`` bool, ``low <= τ <= high``.
        low: The cheapest model's accuracy (every τ below is met by the cheapest model alone).
        high: The highest accuracy a non-oracle router reached (the achievable maximum).
    """

    taus: np.ndarray
    is_feasible: np.ndarray
    low: float
    high: float


def feasible_tau_grid(
    low: float,
    high: float,
    n: int = 11,
    *,
    taus: Sequence[float] | np.ndarray | None = None,
    step: float | None = 0.01,
) -> TauGrid:
    """Build the τ grid of an evaluation: inside the achievable range unless the user asks otherwise.

    The achievable range runs from the cheapest model's accuracy on the evaluated rows (``low``)
    to the highest accuracy any non-oracle router reaches there (``high``; the caller takes the
    maximum over its baselines' records). The default grid is ``n`` evenly spaced points between
    the two, with the ends rounded inwards to multiples of ``step`` and the inner points to the
    nearest multiple (when the spacing allows it). A user grid is kept as given,
    including points outside the range: those are evaluated anyway and flagged infeasible
    (reported, not hidden).

    Args:
        low: Lower end of the achievable range, in [0, 1].
        high: Upper end of the achievable range, in [low, 1].
        n: Number of points of the default grid (>= 1; 1 gives ``[low]``).
        taus: Optional user grid of τ values in [0, 1].
        step: Rounding step of the default grid's ends (``None``: no rounding).

    Returns:
        A :class:`TauGrid`.

    Raises:
        ValueError: On bounds outside [0, 1], ``low > high``, ``n < 1`` or a bad user τ.
    """
    low = check_tau(low, "low")
    high = check_tau(high, "high")
    if low > high:
        raise ValueError(f"`low` ({low}) must not exceed `high` ({high}).")
    if taus is not None:
        grid = np.array([check_tau(t, f"taus[{i}]") for i, t in enumerate(np.atleast_1d(np.asarray(taus, dtype=object)))], dtype=np.float64)
        if grid.size == 0:
            raise ValueError("`taus` is empty.")
    else:
        n = check_int(n, "n", minimum=1)
        start, stop = low, high
        if step is not None:
            if not float(step) > 0:
                raise ValueError(f"`step` must be positive or None, got {step!r}.")
            start = math.ceil(low / step - 1e-9) * step
            stop = math.floor(high / step + 1e-9) * step
            if start > stop:  # the range is narrower than one step
                start = stop = low
        grid = np.linspace(start, stop, n) if n > 1 else np.array([start])
        if step is not None and n > 1 and (stop - start) / (n - 1) >= step:
            grid = np.round(grid / step) * step  # readable labels; spacing >= step keeps points distinct
        grid = np.round(grid, 10)
    feasible = (grid >= low - 1e-12) & (grid <= high + 1e-12)
    return TauGrid(taus=grid, is_feasible=feasible, low=low, high=high)


# ---------------------------------------------------------------------------- per-τ record
@dataclasses.dataclass(frozen=True)
class TauRecord:
    """Realized outcome of a router at one accuracy target τ.

    Attributes:
        tau: The requested accuracy target.
        accuracy: Realized mean score of the chosen models.
        accuracy_ci: Percentile bootstrap interval of ``accuracy``.
        usd_per_1k: Realized USD per 1,000 queries.
        floor_met: ``accuracy >= tau``.
        violation: ``max(0, tau − accuracy)``.
        slack: ``accuracy − tau`` (negative when the floor is missed).
        mean_mu: Mean quality preference μ of the router (NaN when it has none).
        feasible: Whether τ lies in the achievable range (see :func:`feasible_tau_grid`).
        n_queries: Number of evaluated queries.
    """

    tau: float
    accuracy: float
    accuracy_ci: tuple[float, float]
    usd_per_1k: float
    floor_met: bool
    violation: float
    slack: float
    mean_mu: float
    feasible: bool
    n_queries: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view (the interval as ``accuracy_ci_low`` / ``accuracy_ci_high``)."""
        out = dataclasses.asdict(self)
        out["accuracy_ci_low"], out["accuracy_ci_high"] = out.pop("accuracy_ci")
        return out


def evaluate_tau(
    scores: Any,
    costs: Any,
    choice: Any,
    tau: float,
    *,
    mu: Any = None,
    feasible: bool = True,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> TauRecord:
    """Evaluate one routing decision made for accuracy target ``tau``.

    Args:
        scores: ``(n, K)`` realized scores of the evaluated rows.
        costs: ``(n, K)`` USD costs of the evaluated rows.
        choice: ``(n,)`` model index per query.
        tau: The accuracy target the router was asked for, in [0, 1].
        mu: Optional quality preference: a scalar or ``(n,)`` per-query μ (its mean is reported).
        feasible: Whether ``tau`` is in the achievable range (from :class:`TauGrid`).
        confidence: Coverage of the bootstrap interval.
        n_boot: Bootstrap resamples.
        seed: Bootstrap seed.

    Returns:
        The :class:`TauRecord`.
    """
    tau = check_tau(tau)
    scores, costs = _check_outcomes(scores, costs)
    accuracy, usd = routing_outcome(scores, costs, choice)
    low, high = bootstrap_ci(chosen_scores(scores, choice), confidence=confidence, n_boot=n_boot, seed=seed)
    if mu is None:
        mean_mu = float("nan")
    else:
        mu_array = np.atleast_1d(np.asarray(mu, dtype=np.float64))
        if mu_array.ndim != 1 or mu_array.size not in (1, scores.shape[0]):
            raise ValueError(f"`mu` must be a scalar or ({scores.shape[0]},), got shape {np.shape(mu)}.")
        if not np.isfinite(mu_array).all():
            raise ValueError("`mu` holds NaN or infinite values.")
        mean_mu = float(mu_array.mean())
    return TauRecord(
        tau=tau,
        accuracy=accuracy,
        accuracy_ci=(low, high),
        usd_per_1k=usd,
        floor_met=bool(accuracy >= tau),
        violation=float(max(0.0, tau - accuracy)),
        slack=float(accuracy - tau),
        mean_mu=mean_mu,
        feasible=bool(feasible),
        n_queries=int(scores.shape[0]),
    )


# ---------------------------------------------------------------------------- aggregates
def floor_compliance_rate(taus: Any, accuracies: Any) -> float:
    """Share of targets met: ``mean(accuracy_j >= τ_j)`` (PROTEUS's floor compliance)."""
    taus, accuracies = _paired(taus, accuracies)
    return float(np.mean(accuracies >= taus))


def band_rate(taus: Any, accuracies: Any, band: float) -> float:
    """Share of targets hit within an absolute band: ``mean(|accuracy_j − τ_j| <= band)``.

    ``band`` is in accuracy points (0.02 = ±2 pp), not relative to τ: a router that overshoots
    τ by more than the band wastes money and fails the band as surely as one that undershoots.
    """
    taus, accuracies = _paired(taus, accuracies)
    if not (math.isfinite(float(band)) and float(band) >= 0):
        raise ValueError(f"`band` must be a non-negative number, got {band!r}.")
    return float(np.mean(np.abs(accuracies - taus) <= float(band) + 1e-12))


def savings(usd: Any, reference_usd: float) -> np.ndarray | float:
    """Relative cost saving ``1 − usd / reference_usd`` (e.g. versus the best fixed model)."""
    reference_usd = float(reference_usd)
    if not (math.isfinite(reference_usd) and reference_usd > 0):
        raise ValueError(f"`reference_usd` must be a positive number, got {reference_usd!r}.")
    result = 1.0 - np.asarray(usd, dtype=np.float64) / reference_usd
    return float(result) if result.ndim == 0 else result


def routing_efficiency(accuracy: Any, usd: Any, reference: tuple[float, float]) -> np.ndarray | float:
    """Accuracy per dollar relative to a reference router (our reading of the paper's metric).

    ``RE = (accuracy / usd) / (accuracy_ref / usd_ref)`` with the best fixed model as the default
    reference in :func:`summarize`: RE > 1 means the router buys each point of accuracy more
    cheaply than sending everything to the best single model. The PROTEUS paper reports a
    "routing efficiency" whose exact formula we could not retrieve; this definition is ours.

    Args:
        accuracy: Router accuracy (scalar or array).
        usd: Router USD per 1K queries, same shape, positive.
        reference: ``(accuracy, usd_per_1k)`` of the reference, both positive.
    """
    ref_accuracy, ref_usd = (float(v) for v in reference)
    if not (ref_accuracy > 0 and ref_usd > 0):
        raise ValueError(f"`reference` accuracy and cost must be positive, got {reference!r}.")
    usd = np.asarray(usd, dtype=np.float64)
    if (usd <= 0).any():
        raise ValueError("`usd` must be positive for a routing efficiency.")
    result = (np.asarray(accuracy, dtype=np.float64) / usd) / (ref_accuracy / ref_usd)
    return float(result) if result.ndim == 0 else result


def relative_performance_index(accuracy: Any, low: float, high: float) -> np.ndarray | float:
    """RPI: share of the quality headroom a router captures (our reading of the paper's metric).

    ``RPI = (accuracy − low) / (high − low)`` with, in :func:`summarize`, ``low`` the cheapest
    model's accuracy and ``high`` the oracle's: 0 is no better than the cheapest model, 1 is the
    oracle. The PROTEUS paper reports an "RPI" whose exact formula we could not retrieve; this
    definition is ours.
    """
    low, high = float(low), float(high)
    if not high > low:
        raise ValueError(f"`high` ({high}) must exceed `low` ({low}) for an RPI.")
    result = (np.asarray(accuracy, dtype=np.float64) - low) / (high - low)
    return float(result) if result.ndim == 0 else result


def nondecreasing_hull(costs: Any, qualities: Any) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the non-decreasing convex hull of cost–quality points (RouterBench).

    Mixing two routing strategies at random reaches every point on the segment between them,
    so the achievable frontier of a set of (cost, quality) points is its upper concave envelope.
    It starts at the cheapest point (the best quality among equally cheap ones) and is truncated
    at its highest quality (the cheapest point reaching it): paying more than that buys nothing.

    Args:
        costs: ``(m,)`` costs (for example USD per 1K queries).
        qualities: ``(m,)`` qualities (for example accuracy).

    Returns:
        ``(hull_costs, hull_qualities)``: vertices sorted by cost, both strictly increasing.
    """
    costs, qualities = _paired(costs, qualities, names=("costs", "qualities"))
    order = np.lexsort((-qualities, costs))
    hull: list[tuple[float, float]] = []
    for x, y in zip(costs[order].tolist(), qualities[order].tolist(), strict=True):
        if hull and x == hull[-1][0]:
            continue  # same cost, lower or equal quality (sorted by quality descending)
        while len(hull) >= 2:
            (x0, y0), (x1, y1) = hull[-2], hull[-1]
            if (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0:  # hull[-1] on or below the chord
                hull.pop()
            else:
                break
        hull.append((x, y))
    hull_x = np.array([p[0] for p in hull])
    hull_y = np.array([p[1] for p in hull])
    top = int(np.argmax(hull_y))
    return hull_x[: top + 1], hull_y[: top + 1]


def aiq(costs: Any, qualities: Any, *, cost_range: tuple[float, float] | None = None) -> float:
    """RouterBench's AIQ: mean height of the non-decreasing convex hull over a cost range.

    ``AIQ = 1/(c_max − c_min) · ∫_{c_min}^{c_max} R̃(c) dc`` (Hu et al., 2024, Sec. 3), where
    R̃ is the :func:`nondecreasing_hull` of the router's (cost, quality) points, linear between
    vertices and extended flat beyond its most expensive vertex (as RouterBench's code does).
    To compare routers, pass one shared ``cost_range``; below a router's cheapest point R̃ counts
    as 0 (it cannot operate there). Default range: the router's own cheapest to dearest point.

    Args:
        costs: ``(m,)`` costs of the router's operating points (e.g. one per τ).
        qualities: ``(m,)`` qualities of those points.
        cost_range: Optional ``(c_min, c_max)``.

    Returns:
        AIQ in quality units; the hull's quality if the range is a single cost.
    """
    costs, qualities = _paired(costs, qualities, names=("costs", "qualities"))
    hull_x, hull_y = nondecreasing_hull(costs, qualities)
    low, high = (float(costs.min()), float(costs.max())) if cost_range is None else (float(cost_range[0]), float(cost_range[1]))
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        raise ValueError(f"`cost_range` must be finite with c_min <= c_max, got {cost_range!r}.")
    if high == low:
        return float(np.interp(low, hull_x, hull_y)) if low >= hull_x[0] else 0.0
    start = max(low, float(hull_x[0]))
    if start >= high:
        return 0.0
    inner = hull_x[(hull_x > start) & (hull_x < high)]
    xs = np.concatenate([[start], inner, [high]])
    area = float(np.trapezoid(np.interp(xs, hull_x, hull_y), xs))
    return area / (high - low)


def summarize(
    records: Sequence[TauRecord],
    references: References,
    *,
    bands: Sequence[float] = DEFAULT_BANDS,
    feasible_only: bool = True,
    cost_range: tuple[float, float] | None = None,
) -> dict[str, float]:
    """Aggregate one router's :class:`TauRecord` s over a τ grid.

    Rates and means use the feasible records only (``feasible_only=True``, the default), so a
    router is not blamed for targets no router can reach; those records stay in the per-τ table.
    AIQ and the gap to the oracle use every record (they describe the frontier, not targets).

    Returned keys (NaN where undefined, e.g. no feasible record or no μ):

    * ``n_tau``, ``n_feasible``;
    * ``floor_compliance`` — share of τ with accuracy ≥ τ;
    * ``band_2pp``, ``band_5pp`` (one per band) — share with ``|accuracy − τ| ≤ band``;
    * ``mean_violation``, ``max_violation`` — of ``max(0, τ − accuracy)``;
    * ``pearson_tau_mu`` — Pearson(τ, mean μ); ``pearson_tau_accuracy`` — Pearson(τ, accuracy);
    * ``cost_range`` — USD per 1K at the highest τ divided by that at the lowest τ;
    * ``max_savings_vs_best_fixed`` — the largest ``1 − usd/usd_best_fixed`` over the τ whose
      floor was met (a router cannot buy savings by missing its floor; the paper's "savings up
      to"); ``savings_at_parity`` — the same over τ whose accuracy is at least the best fixed
      model's (equal-or-better quality), NaN if none;
    * ``gap_to_oracle`` — oracle accuracy minus the router's best accuracy over the grid;
    * ``aiq`` — :func:`aiq` of the (USD per 1K, accuracy) points;
    * ``routing_efficiency`` — mean :func:`routing_efficiency` versus the best fixed model;
    * ``rpi`` — mean :func:`relative_performance_index` between the cheapest model and oracle.

    Args:
        records: One record per τ, all of the same router.
        references: Oracle, best fixed and cheapest outcomes on the same rows.
        bands: Absolute accuracy bands of the band rates.
        feasible_only: Restrict the rates and means to feasible records.
        cost_range: Shared cost range of the AIQ (see :func:`aiq`).

    Raises:
        ValueError: On no records.
    """
    if not records:
        raise ValueError("`records` is empty; evaluate at least one τ.")
    all_taus = np.array([r.tau for r in records])
    all_acc = np.array([r.accuracy for r in records])
    all_usd = np.array([r.usd_per_1k for r in records])
    keep = np.array([r.feasible or not feasible_only for r in records])
    taus, acc, usd = all_taus[keep], all_acc[keep], all_usd[keep]
    mus = np.array([r.mean_mu for r in records])[keep]
    nan = float("nan")
    out: dict[str, float] = {"n_tau": float(len(records)), "n_feasible": float(sum(r.feasible for r in records))}
    out["floor_compliance"] = floor_compliance_rate(taus, acc) if taus.size else nan
    for band in bands:
        out[f"band_{round(band * 100):d}pp"] = band_rate(taus, acc, band) if taus.size else nan
    violation = np.maximum(0.0, taus - acc)
    out["mean_violation"] = float(violation.mean()) if taus.size else nan
    out["max_violation"] = float(violation.max()) if taus.size else nan
    has_mu = np.isfinite(mus)
    out["pearson_tau_mu"] = pearson(taus[has_mu], mus[has_mu])
    out["pearson_tau_accuracy"] = pearson(taus, acc)
    if taus.size and usd[np.argmin(taus)] > 0:
        out["cost_range"] = float(usd[np.argmax(taus)] / usd[np.argmin(taus)])
    else:
        out["cost_range"] = nan
    best_acc, best_usd = references.best_fixed
    saved = savings(usd, best_usd) if best_usd > 0 else np.full(usd.shape, nan)
    met, parity = acc >= taus, acc >= best_acc
    out["max_savings_vs_best_fixed"] = float(saved[met].max()) if met.any() else nan
    out["savings_at_parity"] = float(saved[parity].max()) if parity.any() else nan
    out["gap_to_oracle"] = float(references.oracle[0] - all_acc.max())
    out["aiq"] = aiq(all_usd, all_acc, cost_range=cost_range)
    if taus.size and best_acc > 0 and best_usd > 0 and (usd > 0).all():
        out["routing_efficiency"] = float(np.mean(routing_efficiency(acc, usd, references.best_fixed)))
    else:
        out["routing_efficiency"] = nan
    low, high = references.cheapest[0], references.oracle[0]
    out["rpi"] = float(np.mean(relative_performance_index(acc, low, high))) if taus.size and high > low else nan
    return out


def _paired(a: Any, b: Any, *, names: tuple[str, str] = ("taus", "accuracies")) -> tuple[np.ndarray, np.ndarray]:
    """Validate two finite, non-empty 1-D vectors of equal length (τ values must be in [0, 1])."""
    a = _check_vector(a, names[0])
    b = _check_vector(b, names[1])
    if a.shape != b.shape:
        raise ValueError(f"`{names[0]}` and `{names[1]}` must have the same length, got {a.size} and {b.size}.")
    if names[0] == "taus":
        check_unit_interval_array(a, "taus")
    return a, b


# ---------------------------------------------------------------------------- calibration of p̂
# How well predicted correctness p̂ matches the realized scores, per model. Fractional scores
# (GSM8K, MT-Bench) are used as they are: a row with score y counts as a positive of weight y and
# a negative of weight 1 − y (for binary scores every definition below is the usual one).

#: Default number of equal-width probability bins of :func:`expected_calibration_error` and :func:`reliability_curve`.
DEFAULT_CALIBRATION_BINS = 10


def _check_predictions(scores: Any, probabilities: Any, *, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate realized scores and predicted probabilities: same shape, non-empty, every entry in [0, 1]."""
    scores = check_unit_interval_array(scores, "scores", ndim=ndim)
    probabilities = check_unit_interval_array(probabilities, "probabilities", ndim=ndim)
    if scores.shape != probabilities.shape:
        raise ValueError(f"`probabilities` has shape {probabilities.shape}, expected {scores.shape} like `scores`.")
    return scores, probabilities


def _check_bins(n_bins: Any) -> int:
    return check_int(n_bins, "n_bins", minimum=1)


def auc_score(scores: Any, probabilities: Any) -> float:
    """Area under the ROC curve of predicted probabilities against realized scores (one model).

    The Mann–Whitney form: the probability that a positive row gets a higher p̂ than a negative
    one, ties counting one half. A fractional score ``y`` makes its row a positive of weight ``y``
    and a negative of weight ``1 − y``; a row is never paired with itself.

    Args:
        scores: ``(n,)`` realized scores in [0, 1].
        probabilities: ``(n,)`` predicted probabilities in [0, 1].

    Returns:
        The AUC in [0, 1]; NaN when there is no positive or no negative weight (a model that is
        always right, or always wrong, on these rows).

    Raises:
        ValueError: On mismatched shapes, an empty input or values outside [0, 1].
    """
    y, p = _check_predictions(scores, probabilities, ndim=1)
    values, group = np.unique(p, return_inverse=True)
    positive = np.bincount(group, weights=y, minlength=values.size)
    negative = np.bincount(group, weights=1.0 - y, minlength=values.size)
    negative_below = np.cumsum(negative) - negative
    self_pairs = float((y * (1.0 - y)).sum())  # a fractional row is both: drop its pair with itself (a tie)
    numerator = float((positive * (negative_below + 0.5 * negative)).sum()) - 0.5 * self_pairs
    denominator = float(positive.sum() * negative.sum()) - self_pairs
    return numerator / denominator if denominator > 1e-12 else math.nan


def brier_score(scores: Any, probabilities: Any) -> float:
    """Brier score ``mean((p̂ − y)²)`` of predicted probabilities against realized scores (lower is better).

    Raises:
        ValueError: On mismatched shapes, an empty input or values outside [0, 1].
    """
    y, p = _check_predictions(scores, probabilities, ndim=1)
    return float(((p - y) ** 2).mean())


def reliability_curve(scores: Any, probabilities: Any, n_bins: int = DEFAULT_CALIBRATION_BINS) -> dict[str, np.ndarray]:
    """Reliability diagram data: predicted against realized correctness in equal-width bins of p̂.

    Bin ``b`` (of ``n_bins``) holds the rows with ``b/n_bins <= p̂ < (b + 1)/n_bins``; the last bin
    also holds ``p̂ = 1``.

    Args:
        scores: ``(n,)`` realized scores in [0, 1].
        probabilities: ``(n,)`` predicted probabilities in [0, 1].
        n_bins: Number of bins (>= 1).

    Returns:
        ``{"lower", "upper", "count", "mean_probability", "mean_score"}``, each ``(n_bins,)``; the
        means of an empty bin are NaN.

    Raises:
        ValueError: On mismatched shapes, an empty input, values outside [0, 1] or ``n_bins < 1``.
    """
    y, p = _check_predictions(scores, probabilities, ndim=1)
    n_bins = _check_bins(n_bins)
    index = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=n_bins) / count
        mean_y = np.bincount(index, weights=y, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {"lower": edges[:-1], "upper": edges[1:], "count": count.astype(np.int64), "mean_probability": mean_p, "mean_score": mean_y}


def expected_calibration_error(scores: Any, probabilities: Any, n_bins: int = DEFAULT_CALIBRATION_BINS) -> float:
    """Expected calibration error: ``Σ_b (n_b / n)·|mean score_b − mean p̂_b|`` over equal-width bins.

    The bins are those of :func:`reliability_curve` (``n_bins`` equal-width bins of [0, 1], empty
    bins contributing nothing). 0 is perfectly calibrated; the value depends on ``n_bins`` and, for
    small ``n``, is biased upwards by sampling noise in each bin's mean score.

    Raises:
        ValueError: On mismatched shapes, an empty input, values outside [0, 1] or ``n_bins < 1``.
    """
    curve = reliability_curve(scores, probabilities, n_bins)
    count = curve["count"]
    filled = count > 0
    gaps = np.abs(curve["mean_score"][filled] - curve["mean_probability"][filled])
    return float((count[filled] * gaps).sum() / count.sum())


def calibration_metrics(scores: Any, probabilities: Any, n_bins: int = DEFAULT_CALIBRATION_BINS) -> dict[str, np.ndarray]:
    """Per-model AUC, Brier score and ECE of predicted correctness against realized scores.

    Args:
        scores: ``(n, K)`` realized scores in [0, 1].
        probabilities: ``(n, K)`` predicted correctness p̂ in [0, 1].
        n_bins: Bins of the ECE.

    Returns:
        ``{"auc", "brier", "ece", "mean_probability", "mean_score"}``, each ``(K,)`` (AUC NaN for a
        model without both outcomes on these rows).

    Raises:
        ValueError: On mismatched shapes, an empty input, values outside [0, 1] or ``n_bins < 1``.
    """
    y, p = _check_predictions(scores, probabilities, ndim=2)
    n_bins = _check_bins(n_bins)
    columns = range(y.shape[1])
    return {
        "auc": np.array([auc_score(y[:, k], p[:, k]) for k in columns]),
        "brier": ((p - y) ** 2).mean(axis=0),
        "ece": np.array([expected_calibration_error(y[:, k], p[:, k], n_bins) for k in columns]),
        "mean_probability": p.mean(axis=0),
        "mean_score": y.mean(axis=0),
    }
