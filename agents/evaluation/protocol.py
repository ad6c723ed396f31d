"""The evaluation protocol for any router: realized test accuracy and cost per τ, over split seeds.

Torch-free at import: :mod:`agents.evaluation.run` (``proteus eval`` on ``proteus train``
artifacts) and :mod:`agents.evaluation.any_agent` (:func:`~agents.evaluation.any_agent.evaluate_policy`,
any agent) both run :func:`run_protocol`; they differ only in the contenders they add beside the
baselines (a :data:`ContenderFactory`).

For each seed the benchmark is loaded with that split, the routing head is fitted (deterministic),
and every contender (the baselines of :func:`agents.baselines.make_baselines` and the evaluated
routers) routes the test split with the same p̂ and ĉ. Calibrated routers share one confidence
option; several confidence levels are evaluated side by side (router names carry the level).

The τ grid spans the achievable range: from the cheapest model's test accuracy to the highest
test accuracy any non-oracle baseline reaches (in every evaluated seed). A user grid is evaluated
as given, points outside a seed's range flagged infeasible (reported, not hidden; aggregates use
feasible points only, see :func:`proteus_env.metrics.summarize`). The one-line summary per router
(:attr:`EvalResult.summary`) carries the yardstick of :func:`proteus_env.metrics.normalized_cost`
with bootstrap intervals over seeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from agents.baselines import CalibratedRouter, CalibrationSettings, confidence_name, make_baselines
from agents.evaluation.dynamic import make_schedules, run_scenarios
from agents.evaluation.plots import reliability_frame, write_figures
from agents.evaluation.report import write_report
from agents.evaluation.result import (
    DEFAULT_N_TAUS,
    DYNAMIC_COLUMNS,
    DYNAMIC_FAMILIES,
    DYNAMIC_SUMMARY_COLUMNS,
    POOLED_RATES,
    RESULT_COLUMNS,
    SUMMARY_COLUMNS,
    TAU_INDEPENDENT,
    EvalResult,
    RouteFn,
)
from agents.evaluation.sessions import SESSION_COLUMNS, SessionProtocol, run_sessions, session_contenders, summarize_sessions
from proteus_env._validation import check_confidence, check_int
from proteus_env.benchmark import Benchmark
from proteus_env.loading import cached_benchmark
from proteus_env.metrics import (
    COMPLIANCE_STANDARD,
    References,
    TauRecord,
    evaluate_tau,
    feasible_tau_grid,
    fixed_model_outcomes,
    normalized_cost,
    oracle_floor_cost,
    reference_outcomes,
    seed_bootstrap_ci,
    summarize,
)
from proteus_env.routing_head import HeadConfig, HeadFit, RoutingHead, fit_routing_head

__all__ = [
    "Contender",
    "ContenderFactory",
    "EvalSettings",
    "baseline_contenders",
    "check_head_matches",
    "load_seed_benchmark",
    "resolve_seeds",
    "router_contenders",
    "run_protocol",
    "summary_frame",
    "torch_threads",
]

#: ``factory(seed, bench, fit, deploy_queries) -> {name: Contender}``: the routers evaluated beside
#: the baselines on one seed (``deploy_queries`` is the test split's size, for certified floors).
ContenderFactory = Callable[[int, Benchmark, HeadFit, int], "dict[str, Contender]"]
#: ``head_config(seed, bench) -> HeadConfig or None``: the routing head to fit for a seed (it may
#: raise when the data is not what the evaluated routers were trained on).
HeadConfigFn = Callable[[int, Benchmark], "HeadConfig | None"]
#: Scores every seed elsewhere (Ray): ``(seeds, settings, factory=, head_config=) -> (scores, τ grid, low, high)``.
SeedScorer = Callable[..., "tuple[list[SeedScores], list[float], float, float]"]


# ---------------------------------------------------------------------------- settings
@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """Every option of :func:`evaluate` (and of ``proteus eval``), checked on construction.

    Attributes:
        benchmark: Benchmark name. With routers, default (and required to match) the one they were
            trained on; without, default ``"synthetic"``.
        data_path: Data file of a real benchmark (overrides the artifacts' path; the benchmark
            fingerprint recorded at training time still has to match).
        benchmark_kwargs: Further loader arguments (likewise).
        taus: A user τ grid (evaluated as given; points outside the achievable range are flagged
            infeasible). Default: ``n_taus`` points spanning the range achievable in every seed.
        n_taus: Points of the default grid.
        seeds: Baselines only: ``N`` (seeds ``0..N-1``) or a list. With routers: must agree with
            the routers' seeds if given.
        confidences: Confidence levels of the calibrated routers: ``None`` (no margin) and/or
            one-sided confidence levels in (0, 1); each is evaluated as its own router variant.
            Stored as a tuple without duplicates.
        predictive: Include the KNN and MLP baselines (the slowest to fit).
        dynamic: Run the dynamic-target scenarios.
        stream_length: Queries per dynamic stream.
        window: Queries per window of the dynamic scenarios.
        n_boot: Bootstrap resamples of the accuracy intervals.
        progress: Show a tqdm progress bar.
        out_dir: If given, write the report, ``results.csv`` and the figures there.
        command: Command line recorded in the report.
        torch_threads: Torch threads while evaluating (restored afterwards). The policy's batches
            are small, so one thread is fastest and does not fight a concurrent training for the
            cores; ``None`` leaves torch alone.
        sessions: Measure per-session compliance (issue 12; :mod:`agents.evaluation.sessions`).
        session_length: Queries per test session (default 500).
        feedback_delay: Queries until a served query's realized outcome reaches the routers.
        feedback_rate: Share of outcomes ever revealed, in [0, 1].
        tau_schedule: τ within a session: ``"constant"`` (every τ of the grid) or ``"step"``,
            ``"drift"``, ``"cyclic"`` between two targets.
        task_drift: Draw each session from a drifting mixture of the benchmark's tasks.
        ray: Evaluate the seeds in parallel on Ray, one actor per seed (``proteus eval --ray``;
            :mod:`agents.evaluation.fanout`); the result is the sequential one.
        ray_address: The Ray cluster for ``ray`` (default: a local instance sized to the cores).

    Raises:
        ValueError: Naming the first bad option.
    """

    benchmark: str | None = None
    data_path: str | Path | None = None
    benchmark_kwargs: dict[str, Any] | None = None
    taus: Sequence[float] | None = None
    n_taus: int = DEFAULT_N_TAUS
    seeds: int | Sequence[int] | None = None
    confidences: Sequence[float | None] = (None,)
    predictive: bool = True
    dynamic: bool = True
    stream_length: int = 1000
    window: int = 100
    n_boot: int = 1000
    progress: bool = True
    out_dir: str | Path | None = None
    command: str | None = None
    torch_threads: int | None = 1
    sessions: bool = True
    session_length: int = 500
    feedback_delay: int = 0
    feedback_rate: float = 1.0
    tau_schedule: str = "constant"
    task_drift: bool = False
    ray: bool = False
    ray_address: str | None = None

    def __post_init__(self) -> None:
        protocol = SessionProtocol(self.session_length, self.feedback_delay, self.feedback_rate, self.tau_schedule, self.task_drift)
        for name in ("session_length", "feedback_delay", "feedback_rate", "task_drift"):
            object.__setattr__(self, name, getattr(protocol, "length" if name == "session_length" else name))
        if self.torch_threads is not None:
            object.__setattr__(self, "torch_threads", check_int(self.torch_threads, "torch_threads", minimum=1))
        object.__setattr__(self, "confidences", _check_confidences(self.confidences))
        for name, minimum in (("n_taus", 1), ("n_boot", 1), ("stream_length", 2), ("window", 1)):
            object.__setattr__(self, name, check_int(getattr(self, name), name, minimum=minimum))
        if self.window > self.stream_length:
            raise ValueError(f"`window` must be an integer in [1, stream_length={self.stream_length}], got {self.window!r}.")
        if self.taus is not None:
            taus = tuple(np.atleast_1d(np.asarray(self.taus, dtype=object)))
            if not taus:
                raise ValueError("`taus` is empty.")
            object.__setattr__(self, "taus", taus)
        if self.benchmark is not None and not isinstance(self.benchmark, str):
            raise ValueError(f"`benchmark` must be a benchmark name, got {self.benchmark!r}.")


def _check_confidences(confidences: Any) -> tuple[float | None, ...]:
    if confidences is None or isinstance(confidences, (int, float)):
        confidences = (confidences,)
    out: list[float | None] = []
    for i, confidence in enumerate(confidences):
        value = check_confidence(confidence, f"confidences[{i}]")
        if value not in out:
            out.append(value)
    if not out:
        raise ValueError("`confidences` is empty; pass (None,) for no margin.")
    return tuple(out)


# ---------------------------------------------------------------------------- seeds and data
def resolve_seeds(artifacts: Sequence[Any] | None, seeds: int | Sequence[int] | None) -> list[int]:
    """The evaluated seeds: the routers' seeds when routers are given, else ``0..N-1`` (or the list given).

    Args:
        artifacts: The trained routers (anything with a ``seed``: one per seed), or ``None`` for
            baselines only (or routers that were not trained on a split).
        seeds: ``N`` (seeds ``0..N-1``), explicit seeds, or ``None``.

    Raises:
        ValueError: If ``seeds`` disagrees with the routers' seeds, or is not a positive count /
            a list of distinct non-negative integers.
    """
    wanted: list[int] | None = None
    if seeds is not None:
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
            if int(seeds) < 1:
                raise ValueError(f"`seeds` must be a positive number of seeds, got {seeds!r}.")
            wanted = list(range(int(seeds)))
        else:
            try:
                wanted = [int(s) for s in seeds]
            except (TypeError, ValueError):
                raise ValueError(f"`seeds` must be a count or a list of integer seeds, got {seeds!r}.") from None
            if not wanted or len(set(wanted)) != len(wanted) or min(wanted) < 0:
                raise ValueError(f"`seeds` must list distinct non-negative seeds, got {seeds!r}.")
    if artifacts:
        have = sorted(a.seed for a in artifacts)
        if wanted is not None and sorted(wanted) != have:
            raise ValueError(f"`seeds` ({seeds!r} -> {sorted(wanted)}) disagrees with the routers given, which were trained on "
                             f"split seeds {have}. Each router is evaluated on its own seed's split only (other splits would "
                             f"leak its training rows into test); drop `seeds` or pass one artifact per seed.")
        return have
    return sorted(wanted) if wanted is not None else [0]


def load_seed_benchmark(name: str, seed: int, *, data_path: str | None = None, benchmark_kwargs: dict[str, Any] | None = None) -> Benchmark:
    """Load the benchmark with split ``seed`` exactly as ``ProteusRoutingEnv`` does (cached per process)."""
    kwargs = dict(benchmark_kwargs or {})
    if data_path is not None:
        kwargs["data_path"] = str(data_path)
    kwargs.setdefault("split_seed", int(seed))
    return cached_benchmark(name, **kwargs)


# ---------------------------------------------------------------------------- contenders
@dataclasses.dataclass(frozen=True)
class Contender:
    """A router as the evaluation sees it.

    Attributes:
        name: Display name (unique; calibrated routers carry ``[confidence=…]`` when there is one).
        family: Name without the confidence suffix (``carrot``, ``proteus``, ``proteus_raw``, ...).
        kind: ``"baseline"``, ``"proteus"`` (a ``ProteusRouter``, served in sessions with feedback) or
            ``"policy"`` (any other agent, :mod:`agents.evaluation.any_agent`).
        confidence: The confidence level it was calibrated with (``None``: no margin).
        route: ``route(rows, tau) -> (choice, mu or None)``.
        router: The underlying router object (a baseline router or a ``ProteusRouter``).
        calibrated: Whether it takes a calibration confidence at all (fixed, random, oracle and
            raw PROTEUS do not).
    """

    name: str
    family: str
    kind: str
    confidence: float | None
    route: RouteFn = dataclasses.field(repr=False, compare=False)
    router: Any = dataclasses.field(default=None, repr=False, compare=False)
    calibrated: bool = True

    @property
    def confidence_label(self) -> str:
        """``"none"``, the confidence level (``"0.95"``), or ``"n/a"`` for routers without calibration."""
        if not self.calibrated:
            return "n/a"
        return "none" if self.confidence is None else f"{self.confidence:g}"

    @property
    def tau_dependent(self) -> bool:
        """Whether its routing depends on τ (the fixed and random references do not)."""
        return self.family not in TAU_INDEPENDENT


def baseline_contenders(bench: Benchmark, fit: HeadFit, confidences: Sequence[float | None], *, seed: int,
                        predictive: bool, deploy_queries: int | None = None) -> dict[str, Contender]:
    """Every baseline of :func:`~agents.baselines.make_baselines`, once per confidence level.

    Routers without calibration (oracle, fixed, random) do not depend on the confidence and
    appear once. ``deploy_queries`` is the size of the served sample each certified floor is about
    (the evaluation passes the test split's size).
    """
    out: dict[str, Contender] = {}
    for confidence in confidences:
        settings = CalibrationSettings(confidence=confidence, deploy_queries=deploy_queries)
        routers = make_baselines(bench, fit, settings, seed=seed, predictive=predictive)
        for name, router in routers.items():
            if name in out:
                continue
            calibrated = isinstance(router, CalibratedRouter)

            def route(rows: np.ndarray, tau: float, _router: Any = router) -> tuple[np.ndarray, None]:
                return _router.route(rows, tau), None

            out[name] = Contender(name, router.base_name if calibrated else name, "baseline",
                                  router.confidence if calibrated else None, route, router, calibrated=calibrated)
    return out


def check_head_matches(saved: RoutingHead, fit: HeadFit, *, artifact: Path | str, seed: int, rtol: float = 1e-6) -> None:
    """Raise if the artifact's saved routing head differs from the head re-fitted on this benchmark and seed.

    Args:
        saved: The routing head the router was trained with.
        fit: The head fitted on the evaluated benchmark and seed.
        artifact: The artifact directory (or a label of the router) named in the message.
        seed: The split seed.
        rtol: Relative tolerance of the array comparison.

    Raises:
        ValueError: Naming the artifact, the seed and the first mismatching array.
    """
    refit = fit.head
    if tuple(saved.models) != tuple(refit.models):
        raise ValueError(f"Router artifact {artifact} routes between other models than the benchmark of seed {seed}: "
                         f"{list(saved.models)} vs {list(refit.models)}.")
    for name in RoutingHead._ARRAYS:
        a, b = np.asarray(getattr(saved, name), dtype=np.float64), np.asarray(getattr(refit, name), dtype=np.float64)
        if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=1e-9):
            detail = f"shapes {a.shape} vs {b.shape}" if a.shape != b.shape else f"max |difference| {np.abs(a - b).max():.3g}"
            raise ValueError(
                f"Router artifact {artifact}: its saved routing head does not match the head re-fitted on the benchmark for "
                f"split seed {seed} ({name}: {detail}). The router was trained on other data, another split or another head "
                f"config; evaluate it on the benchmark it was trained on.")



def router_contenders(router: Any, bench: Benchmark, fit: HeadFit, confidences: Sequence[float | None], *, seed: int,
                      deploy_queries: int | None = None, name: str = "proteus", label: Path | str = "the router") -> dict[str, Contender]:
    """A trained ``ProteusRouter``: raw (``<name>_raw``) and calibrated once per confidence level.

    Args:
        router: The :class:`~agents.proteus.router.ProteusRouter` (its routing head must be ``fit``'s).
        bench: The benchmark of the seed.
        fit: The head fitted on it.
        confidences: Confidence levels of the calibrated variants.
        seed: The split seed.
        deploy_queries: Size of the served sample each certified floor is about.
        name: Family name of the contenders (``"proteus"`` for ``proteus eval``).
        label: How the router is named in a head-mismatch error (the artifact directory).

    Raises:
        ValueError: If the router's routing head differs from ``fit``'s (see :func:`check_head_matches`).
    """
    check_head_matches(router.head, fit, artifact=label, seed=seed)
    unreachable = type(router).unreachable_warning if hasattr(type(router), "unreachable_warning") else UserWarning

    def make(calibrated: bool, confidence: float | None) -> RouteFn:
        def route(rows: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
            query = bench.embeddings[rows] if router.include_query else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", unreachable)  # an unreachable τ is reported as a missed floor
                result = router.route_observations(fit.p_hat[rows], fit.cost_hat[rows], tau, calibrated=calibrated,
                                                   confidence=confidence, deploy_queries=deploy_queries, query=query)
            return result.indices.astype(np.int64), result.mu

        return route

    raw = f"{name}_raw"
    out = {raw: Contender(raw, raw, "proteus", None, make(False, None), router, calibrated=False)}
    for confidence in confidences:
        label_name = confidence_name(name, confidence)
        out[label_name] = Contender(label_name, name, "proteus", confidence, make(True, confidence), router)
    return out


# ---------------------------------------------------------------------------- one seed
@dataclasses.dataclass
class _Seed:
    """Everything prepared for one seed."""

    seed: int
    bench: Benchmark
    test: np.ndarray
    contenders: dict[str, Contender]
    references: References
    low: float
    high: float
    fixed: pd.DataFrame
    calibration: pd.DataFrame


def _prepare_seed(seed: int, settings: EvalSettings, factory: ContenderFactory | None, head_config: HeadConfigFn | None) -> _Seed:
    bench = load_seed_benchmark(settings.benchmark, seed, data_path=settings.data_path, benchmark_kwargs=settings.benchmark_kwargs)
    fit = fit_routing_head(bench, seed=seed, config=None if head_config is None else head_config(seed, bench))
    served = int(bench.split_index("test").size)  # the floors are on the realized accuracy of the test split
    contenders = baseline_contenders(bench, fit, settings.confidences, seed=seed, predictive=settings.predictive, deploy_queries=served)
    if factory is not None:
        extra = factory(seed, bench, fit, served)
        clash = sorted(set(extra) & set(contenders))
        if clash:
            raise ValueError(f"Router name(s) {clash} are taken by the baselines ({sorted(contenders)}); choose another name.")
        contenders.update(extra)
    test = bench.split_index("test")
    scores, costs = bench.scores[test], bench.costs[test]
    references = reference_outcomes(scores, costs, best_fixed=contenders["best_fixed"].router.model_index,
                                    cheapest=contenders["cheapest"].router.model_index)
    reach = [float(scores[np.arange(test.size), c.route(test, 1.0)[0]].mean())
             for c in contenders.values() if c.kind == "baseline" and c.family != "oracle"]
    low = references.cheapest[0]
    high = max(low, *reach)
    accuracy, usd = fixed_model_outcomes(scores, costs)
    fixed = pd.DataFrame({"seed": seed, "model": list(bench.models), "accuracy": accuracy, "usd_per_1k": usd})
    return _Seed(seed, bench, test, contenders, references, float(low), float(high), fixed, reliability_frame(bench, fit, seed))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op threads to ``n`` for the block, if torch is in use (``None``: leave them).

    Torch is never imported here: when it is not loaded yet, no contender runs on it.
    """
    torch = sys.modules.get("torch")
    if n is None or torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------------------- the protocol
def run_protocol(seed_list: Sequence[int], settings: EvalSettings, *, factory: ContenderFactory | None = None,
                 head_config: HeadConfigFn | None = None, routers: Sequence[str] = (),
                 seed_scorer: SeedScorer | None = None) -> EvalResult:
    """Evaluate the baselines, and the contenders of ``factory``, on the test split of every seed.

    Each seed is prepared (:func:`_prepare_seed`: data, head, contenders), the τ grid is drawn
    over every seed's achievable range (:func:`tau_grid`), and each seed is scored on it
    (:func:`score_seed`); :func:`assemble_result` merges the seeds. With ``settings.ray`` the
    caller passes ``seed_scorer`` (:func:`agents.evaluation.fanout.score_seeds_on_ray`, which
    imports this module), and the seeds run in parallel on Ray through the same three functions.

    Args:
        seed_list: The split seeds (see :func:`resolve_seeds`).
        settings: The options, with ``benchmark`` resolved to a name.
        factory: The evaluated routers per seed (``None``: the baselines only).
        head_config: The routing head config per seed (``None``: the default head).
        routers: What the evaluated routers are, as recorded in :attr:`EvalResult.routers`.
        seed_scorer: Scores the seeds elsewhere (required with ``settings.ray``).

    Returns:
        The :class:`~agents.evaluation.result.EvalResult`; written to ``settings.out_dir`` if set.

    Raises:
        ValueError: If ``settings.ray`` is set without a ``seed_scorer``.
    """
    start = time.perf_counter()
    if settings.ray:
        if seed_scorer is None:
            raise ValueError("settings.ray needs a seed_scorer (agents.evaluation.fanout.score_seeds_on_ray); "
                             "evaluate() and evaluate_policy() pass it.")
        scored, tau_values, low, high = seed_scorer(seed_list, settings, factory=factory, head_config=head_config)
    else:
        scored, tau_values, low, high = _score_seeds(seed_list, settings, factory, head_config)
    return assemble_result(scored, tau_values, low, high, settings, routers=routers, start=start)


@dataclasses.dataclass
class SeedScores:
    """Everything one seed contributes to an :class:`EvalResult` (plain data: ``proteus eval --ray`` ships it between processes)."""

    seed: int
    low: float
    high: float
    n_test: int
    n_queries: int
    n_models: int
    references: References
    fixed: pd.DataFrame
    calibration: pd.DataFrame
    rows: list[dict[str, Any]]
    summaries: list[dict[str, Any]]
    windows: list[dict[str, Any]]
    sessions: list[dict[str, Any]]


def tau_grid(ranges: Sequence[tuple[float, float]], settings: EvalSettings) -> tuple[list[float], float, float]:
    """The evaluated τ grid and the range achievable in every seed, from each seed's ``(low, high)``."""
    low = max(r[0] for r in ranges)
    high = min(r[1] for r in ranges)
    high = max(high, low)
    grid = feasible_tau_grid(low, high, int(settings.n_taus), taus=settings.taus)
    return [float(t) for t in grid.taus], low, high


def _score_seeds(seed_list: Sequence[int], settings: EvalSettings, factory: ContenderFactory | None,
                 head_config: HeadConfigFn | None) -> tuple[list[SeedScores], list[float], float, float]:
    """Prepare every seed, draw the grid, score every seed: the sequential path."""
    bar = tqdm(total=len(seed_list), desc="proteus eval", unit="step", disable=not settings.progress, leave=False)
    prepared: list[_Seed] = []
    try:
        for seed in seed_list:
            bar.set_postfix_str(f"seed {seed}: data, head, baselines")
            prepared.append(_prepare_seed(seed, settings, factory, head_config))
            bar.update()
        tau_values, low, high = tau_grid([(p.low, p.high) for p in prepared], settings)
        bar.total = len(seed_list) + sum(len(p.contenders) for p in prepared) + (len(seed_list) if settings.dynamic else 0)
        bar.refresh()

        def tick(label: str) -> None:
            bar.set_postfix_str(label)
            bar.update()

        scored = [score_seed(p, tau_values, low, high, settings, tick=tick) for p in prepared]
    finally:
        bar.close()  # a bad data file: clear the bar, so that the error starts its own line
    return scored, tau_values, low, high


def score_seed(p: _Seed, tau_values: Sequence[float], low: float, high: float, settings: EvalSettings, *,
               tick: Callable[[str], None] | None = None) -> SeedScores:
    """Score one prepared seed on the τ grid: per-τ records, the dynamic scenarios and the sessions.

    Args:
        p: The prepared seed.
        tau_values: The τ grid (:func:`tau_grid`).
        low: Lower end of the range achievable in every seed.
        high: Upper end of it.
        settings: The options.
        tick: Called after each contender (and the dynamic scenarios) with a progress label.
    """
    tick = tick or (lambda label: None)
    scores, costs = p.bench.scores[p.test], p.bench.costs[p.test]
    rows: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    per_router: dict[str, list[TauRecord]] = {}
    # the yardstick's lower reference: the least any router could pay for each floor, in hindsight
    floor_usd = {tau: oracle_floor_cost(scores, costs, tau) for tau in tau_values}
    for contender in p.contenders.values():
        records = []
        fixed_choice = None if contender.tau_dependent else contender.route(p.test, tau_values[0])
        for tau in tau_values:
            choice, mu = fixed_choice if fixed_choice is not None else contender.route(p.test, tau)
            feasible = bool(p.low - 1e-12 <= tau <= p.high + 1e-12)
            record = evaluate_tau(scores, costs, choice, tau, mu=mu, feasible=feasible, n_boot=int(settings.n_boot), seed=p.seed)
            records.append(record)
            rows.append({"router": contender.name, "family": contender.family, "kind": contender.kind,
                         "calibration_confidence": contender.confidence_label, "seed": p.seed, **record.as_dict(),
                         "floor_usd_per_1k": floor_usd[tau]})
        per_router[contender.name] = records
        tick(f"seed {p.seed}: {contender.name}")
    others = [r.usd_per_1k for n, recs in per_router.items() if p.contenders[n].family != "oracle" for r in recs]
    cost_range = (float(min(others)), float(max(others)))
    for router_name, records in per_router.items():
        summaries.append({"router": router_name, "seed": p.seed, **summarize(records, p.references, cost_range=cost_range)})

    windows: list[dict[str, Any]] = []
    if settings.dynamic:
        tau_low, tau_high = _dynamic_targets(low, high)
        chosen = {n: c.route for n, c in p.contenders.items() if c.family in DYNAMIC_FAMILIES}
        if chosen:
            for row in run_scenarios(chosen, p.test, p.bench.scores, p.bench.costs, tau_low, tau_high, seed=p.seed,
                                     length=int(settings.stream_length), window=int(settings.window)):
                windows.append({"seed": p.seed, **row})
        tick(f"seed {p.seed}: dynamic targets")
    sessions: list[dict[str, Any]] = []
    if settings.sessions:  # per-session compliance under realized feedback (issue 12)
        protocol = SessionProtocol(settings.session_length, settings.feedback_delay, settings.feedback_rate, settings.tau_schedule,
                                   settings.task_drift)
        fit = next(iter(p.contenders.values())).router.fit  # every baseline router holds the seed's head fit
        streaming, batch = session_contenders(p.contenders, p.bench, fit, settings.confidences, protocol)
        sessions = run_sessions(p.seed, p.bench, fit, p.test, list(tau_values), low, high, protocol, streaming=streaming, batch=batch)
    return SeedScores(seed=p.seed, low=p.low, high=p.high, n_test=int(p.test.size), n_queries=int(p.bench.n_queries),
                      n_models=int(p.bench.n_models), references=p.references, fixed=p.fixed, calibration=p.calibration, rows=rows,
                      summaries=summaries, windows=windows, sessions=sessions)


def assemble_result(scored: Sequence[SeedScores], tau_values: Sequence[float], low: float, high: float, settings: EvalSettings, *,
                    routers: Sequence[str] = (), start: float | None = None) -> EvalResult:
    """Merge the seeds' scores (in seed order as given) into the :class:`EvalResult`; write it to ``settings.out_dir`` if set."""
    start = time.perf_counter() if start is None else start
    results = pd.DataFrame([row for s in scored for row in s.rows])
    results["normalized_cost"] = _normalized_costs(results, scored)
    results = results[[*RESULT_COLUMNS, *[c for c in results.columns if c not in RESULT_COLUMNS]]]
    aggregates = _aggregate(results, pd.DataFrame([row for s in scored for row in s.summaries]))
    schedules: dict[str, np.ndarray] = {}
    if settings.dynamic:
        tau_low, tau_high = _dynamic_targets(low, high)
        schedules = make_schedules(tau_low, tau_high, int(settings.stream_length))
    dynamic_frame = pd.DataFrame([row for s in scored for row in s.windows], columns=list(DYNAMIC_COLUMNS))
    ranges = pd.DataFrame([{"seed": s.seed, "low": s.low, "high": s.high, "n_test": s.n_test,
                            "oracle_accuracy": s.references.oracle[0], "oracle_usd_per_1k": s.references.oracle[1],
                            "best_fixed_accuracy": s.references.best_fixed[0],
                            "best_fixed_usd_per_1k": s.references.best_fixed[1]} for s in scored])
    result = EvalResult(
        results=results, aggregates=aggregates, dynamic=dynamic_frame, dynamic_summary=_dynamic_summary(dynamic_frame),
        fixed_models=pd.concat([s.fixed for s in scored], ignore_index=True), ranges=ranges, taus=np.asarray(tau_values),
        seeds=[s.seed for s in scored], confidences=tuple(settings.confidences),
        benchmark={"name": settings.benchmark, "data_path": settings.data_path, "benchmark_kwargs": settings.benchmark_kwargs or {},
                   "n_queries": scored[0].n_queries, "n_models": scored[0].n_models},
        routers=list(routers), schedules=schedules, command=settings.command,
        calibration=pd.concat([s.calibration for s in scored], ignore_index=True),
    )
    if settings.sessions:
        result.session_protocol = {"length": settings.session_length, "feedback_delay": settings.feedback_delay,
                                   "feedback_rate": settings.feedback_rate, "tau_schedule": settings.tau_schedule,
                                   "task_drift": settings.task_drift}
        frame = pd.DataFrame([row for s in scored for row in s.sessions], columns=list(SESSION_COLUMNS))
        result.sessions, result.session_summary = frame, summarize_sessions(frame)
    result.summary = summary_frame(result.results, result.aggregates, result.session_summary, n_boot=int(settings.n_boot))
    result.wall_time_s = time.perf_counter() - start
    if settings.out_dir is not None:
        write_figures(result, settings.out_dir)
        write_report(result, settings.out_dir)
    return result


def _dynamic_targets(low: float, high: float) -> tuple[float, float]:
    """The two targets of the dynamic scenarios: 20 % and 80 % into the achievable range."""
    return round(low + 0.2 * (high - low), 3), round(low + 0.8 * (high - low), 3)


def _aggregate(results: pd.DataFrame, summaries: pd.DataFrame) -> pd.DataFrame:
    """One row per router: pooled rates over feasible (τ, seed) pairs, other summaries mean ± sd over seeds."""
    order = list(dict.fromkeys(results["router"]))
    metrics = [c for c in summaries.columns if c not in ("router", "seed")]
    rows = []
    for router in order:
        res = results[results["router"] == router]
        feasible = res[res["feasible"]]
        per_seed = summaries[summaries["router"] == router]
        first = res.iloc[0]
        row: dict[str, Any] = {"router": router, "family": first["family"], "kind": first["kind"],
                               "calibration_confidence": first["calibration_confidence"], "n_seeds": int(per_seed.shape[0]),
                               "n_pairs": int(feasible.shape[0])}
        for metric in metrics:
            values = per_seed[metric].to_numpy(dtype=np.float64)
            finite = values[np.isfinite(values)]
            row[metric] = float(finite.mean()) if finite.size else math.nan
            row[f"{metric}_sd"] = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
        for rate in POOLED_RATES:  # share of feasible (τ, seed) pairs, not a mean of per-seed shares
            if rate == "floor_compliance":
                hits = feasible["floor_met"].to_numpy(dtype=bool)
            else:
                band = int(rate.split("_")[1][:-2]) / 100.0
                hits = (feasible["accuracy"] - feasible["tau"]).abs().to_numpy() <= band + 1e-12
            row[rate] = float(hits.mean()) if hits.size else math.nan
        for column in ("accuracy", "usd_per_1k"):
            per_seed_mean = feasible.groupby("seed")[column].mean()
            row[f"mean_{column}"] = float(feasible[column].mean()) if len(feasible) else math.nan
            row[f"mean_{column}_sd"] = float(per_seed_mean.std(ddof=1)) if per_seed_mean.size > 1 else math.nan
        row["mean_mu"] = float(res["mean_mu"].mean()) if res["mean_mu"].notna().any() else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _dynamic_summary(windows: pd.DataFrame) -> pd.DataFrame:
    if windows.empty:
        return pd.DataFrame(columns=list(DYNAMIC_SUMMARY_COLUMNS))
    rows = []
    for (router, scenario), part in windows.groupby(["router", "scenario"], sort=False):
        per_seed = part.groupby("seed")["met"].mean()
        rows.append({"router": router, "scenario": scenario, "share_met": float(part["met"].mean()),
                     "share_met_sd": float(per_seed.std(ddof=1)) if per_seed.size > 1 else math.nan,
                     "n_seeds": int(per_seed.size), "n_windows": int(part.shape[0]), "mean_accuracy": float(part["accuracy"].mean()),
                     "mean_tau": float(part["tau_mean"].mean()), "mean_usd_per_1k": float(part["usd_per_1k"].mean())})
    return pd.DataFrame(rows, columns=list(DYNAMIC_SUMMARY_COLUMNS))


def _normalized_costs(results: pd.DataFrame, scored: Sequence[SeedScores]) -> np.ndarray:
    """The yardstick's normalized cost of every row of the per-τ table (NaN for infeasible τ)."""
    references = {s.seed: s.references for s in scored}
    best_usd = results["seed"].map(lambda s: references[s].best_fixed[1]).to_numpy(dtype=np.float64)
    floor = results["floor_usd_per_1k"].to_numpy(dtype=np.float64)
    feasible = results["feasible"].to_numpy(dtype=bool) & np.isfinite(floor)
    value = normalized_cost(results["usd_per_1k"].to_numpy(dtype=np.float64), results["floor_met"].to_numpy(dtype=bool),
                            np.where(feasible, floor, 0.0), best_usd)
    return np.where(feasible, value, np.nan)


def summary_frame(results: pd.DataFrame, aggregates: pd.DataFrame, session_summary: pd.DataFrame | None = None, *,
                  n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per router (:data:`~agents.evaluation.result.SUMMARY_COLUMNS`): the yardstick, with intervals over seeds.

    Args:
        results: The per-τ table, with its ``normalized_cost`` column.
        aggregates: The per-router aggregates (for the pooled ``floor_compliance``).
        session_summary: The per-session summary, if sessions were run.
        n_boot: Bootstrap resamples of the intervals.
        seed: Seed of the bootstrap.
    """
    sessions = {} if session_summary is None or session_summary.empty else dict(
        zip(session_summary["router"], session_summary["compliance"], strict=True))
    pooled = dict(zip(aggregates["router"], aggregates["floor_compliance"], strict=True))
    rows = []
    for router, part in results.groupby("router", sort=False):
        feasible = part[part["feasible"]]
        by_seed = [g for _, g in feasible.groupby("seed")]
        met = [g["floor_met"].to_numpy(dtype=np.float64) for g in by_seed]
        cost = [g["normalized_cost"].to_numpy(dtype=np.float64) for g in by_seed]
        values = feasible["normalized_cost"].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        first = part.iloc[0]
        compliance_ci = seed_bootstrap_ci(met, n_boot=n_boot, seed=seed)
        cost_ci = seed_bootstrap_ci(cost, n_boot=n_boot, seed=seed)
        rows.append({
            "router": router, "family": first["family"], "kind": first["kind"], "calibration_confidence": first["calibration_confidence"],
            "n_seeds": int(part["seed"].nunique()), "floor_compliance": float(pooled.get(router, math.nan)),
            "floor_compliance_ci_low": compliance_ci[0], "floor_compliance_ci_high": compliance_ci[1],
            "meets_standard": bool(pooled.get(router, math.nan) >= COMPLIANCE_STANDARD),
            "normalized_cost": float(values.mean()) if values.size else math.nan,
            "normalized_cost_ci_low": cost_ci[0], "normalized_cost_ci_high": cost_ci[1],
            "usd_per_1k": float(feasible["usd_per_1k"].mean()) if len(feasible) else math.nan,
            "accuracy": float(feasible["accuracy"].mean()) if len(feasible) else math.nan,
            "session_compliance": float(sessions.get(router, math.nan)),
        })
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    # Compliant routers first, by normalized cost; then the rest, by compliance (the module docstring of proteus_env.metrics).
    order = frame.assign(_rank=np.where(frame["meets_standard"], frame["normalized_cost"], 10.0 - frame["floor_compliance"].fillna(0.0)))
    return frame.loc[order.sort_values(["meets_standard", "_rank"], ascending=[False, True], kind="stable").index].reset_index(drop=True)
