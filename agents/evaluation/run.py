"""``proteus eval``: trained PROTEUS routers against every baseline on realized test outcomes.

    result = evaluate(["artifacts/seed0", "artifacts/seed1", "artifacts/seed2"], margins=(None, 0.95))
    result.results      # one row per router × τ × seed (accuracy, CI, USD/1K, floor met, ...)
    result.aggregates   # one row per router: compliance, bands, Pearson(τ, μ), AIQ, RPI, ... (mean ± sd)
    write_report(result, "reports/eval"); write_figures(result, "reports/eval")

Seeds, honestly. A trained router was trained on the split of its own seed (``split_seed`` in its
``benchmark.json``); evaluating it on another seed's split would put its training rows in the
test set. So with routers given, the evaluated seeds *are* the routers' seeds (one artifact per
seed). For each seed the benchmark is loaded with that split, the routing head is re-fitted
(deterministic: the same head the router was trained with, which is checked), and every router
(the baselines of :func:`agents.baselines.make_baselines`, PROTEUS raw and calibrated) routes
the test split with the same p̂ and ĉ. Calibrated routers share one margin option; several
margins are evaluated side by side (router names carry the margin).

The τ grid spans the achievable range: from the cheapest model's test accuracy to the highest
test accuracy any non-oracle baseline reaches (in every evaluated seed). A user grid is evaluated
as given, points outside a seed's range flagged infeasible (reported, not hidden; aggregates use
feasible points only, see :func:`proteus_env.metrics.summarize`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from agents.evaluation.dynamic import make_schedules, run_scenarios
from proteus_env.benchmark import Benchmark
from proteus_env.loading import cached_benchmark
from proteus_env.metrics import (
    DEFAULT_BANDS,
    References,
    TauRecord,
    evaluate_tau,
    feasible_tau_grid,
    fixed_model_outcomes,
    reference_outcomes,
    summarize,
)
from proteus_env.routing_head import HeadFit, RoutingHead, fit_routing_head

#: Router families shown in the dynamic-target scenarios.
DYNAMIC_FAMILIES: tuple[str, ...] = ("proteus", "carrot", "zero_router")
#: Routers whose decision does not depend on τ (drawn as reference lines in the figures).
TAU_INDEPENDENT: frozenset[str] = frozenset({"oracle", "best_fixed", "cheapest", "random"})
#: Files that make a directory a ``proteus train`` artifact.
ARTIFACT_FILES: tuple[str, ...] = ("model.zip", "benchmark.json", "routing_head.npz", "routing_head.json", "calibration.json")
#: Aggregates pooled over (τ, seed) pairs rather than averaged over per-seed values.
POOLED_RATES: tuple[str, ...] = ("floor_compliance", *(f"band_{round(b * 100):d}pp" for b in DEFAULT_BANDS))
#: Default number of τ points of the automatic grid.
DEFAULT_N_TAUS = 11

RouteFn = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray | None]]


# ---------------------------------------------------------------------------- artifacts and seeds
@dataclasses.dataclass(frozen=True)
class RouterArtifact:
    """What an artifact directory says about the data its router was trained on.

    Attributes:
        path: The artifact directory.
        seed: The split seed the router was trained on.
        benchmark: Benchmark name for :func:`proteus_env.load_benchmark`.
        data_path: Data file of a real benchmark (``None`` for the synthetic one).
        benchmark_kwargs: Further loader arguments.
        fingerprint: The benchmark fingerprint recorded at training time (``None`` if absent).
    """

    path: Path
    seed: int
    benchmark: str
    data_path: str | None
    benchmark_kwargs: dict[str, Any]
    fingerprint: str | None

    @classmethod
    def read(cls, path: str | Path) -> RouterArtifact:
        """Read ``benchmark.json`` (and ``config.yaml`` as a fallback) of one artifact.

        Raises:
            FileNotFoundError: If the directory is not a complete ``proteus train`` artifact.
            ValueError: If the split seed or the benchmark cannot be determined.
        """
        path = Path(path)
        missing = [name for name in ARTIFACT_FILES if not (path / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{path} is not a complete `proteus train` artifact: {', '.join(missing)} missing.")
        identity = json.loads((path / "benchmark.json").read_text())
        env_kwargs = dict(identity.get("env_kwargs") or {})
        config_file = path / "config.yaml"
        config = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
        config_env = dict((config or {}).get("env_kwargs") or {})
        seed = env_kwargs.get("split_seed", config_env.get("split_seed", (config or {}).get("seed")))
        if seed is None:
            raise ValueError(f"{path}: cannot tell which split seed the router was trained on (no env_kwargs.split_seed).")
        name = env_kwargs.get("benchmark")
        if not isinstance(name, str):
            name = config_env.get("benchmark") if isinstance(config_env.get("benchmark"), str) else identity.get("name")
        if not isinstance(name, str):
            raise ValueError(f"{path}: benchmark.json names no benchmark.")
        data_path = env_kwargs.get("data_path", config_env.get("data_path"))
        kwargs = env_kwargs.get("benchmark_kwargs", config_env.get("benchmark_kwargs")) or {}
        return cls(path=path, seed=int(seed), benchmark=name.lower(), data_path=None if data_path is None else str(data_path),
                   benchmark_kwargs=dict(kwargs), fingerprint=identity.get("fingerprint"))


def find_artifacts(paths: Sequence[str | Path]) -> list[RouterArtifact]:
    """Resolve ``--router`` arguments: artifact directories, or parents whose subdirectories are artifacts.

    Returns:
        The artifacts sorted by seed.

    Raises:
        FileNotFoundError: For a path that is neither an artifact nor a parent of artifacts.
        ValueError: For two artifacts of one seed, or artifacts trained on different benchmarks.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[RouterArtifact] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise FileNotFoundError(f"Router artifact {path} does not exist or is not a directory.")
        if (path / "model.zip").is_file():
            found.append(RouterArtifact.read(path))
            continue
        children = sorted(child for child in path.iterdir() if child.is_dir() and (child / "model.zip").is_file())
        if not children:
            raise FileNotFoundError(f"{path} is neither a `proteus train` artifact (no model.zip) nor a directory of artifacts.")
        found += [RouterArtifact.read(child) for child in children]
    if not found:
        raise ValueError("`routers` is empty: give at least one artifact directory (or use baselines only).")
    by_seed: dict[int, Path] = {}
    for artifact in found:
        if artifact.seed in by_seed:
            raise ValueError(f"Two router artifacts were trained on split seed {artifact.seed}: {by_seed[artifact.seed]} and "
                             f"{artifact.path}. Give one artifact per seed.")
        by_seed[artifact.seed] = artifact.path
    first = found[0]
    for artifact in found[1:]:
        if (artifact.benchmark, artifact.benchmark_kwargs) != (first.benchmark, first.benchmark_kwargs):
            raise ValueError(f"Router artifacts {first.path} and {artifact.path} were trained on different benchmarks "
                             f"({first.benchmark} {first.benchmark_kwargs} vs {artifact.benchmark} {artifact.benchmark_kwargs}).")
    return sorted(found, key=lambda a: a.seed)


def resolve_seeds(artifacts: Sequence[RouterArtifact] | None, seeds: int | Sequence[int] | None) -> list[int]:
    """The evaluated seeds: the routers' seeds when routers are given, else ``0..N-1`` (or the list given).

    Args:
        artifacts: The router artifacts, or ``None`` for baselines only.
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


def check_head_matches(saved: RoutingHead, fit: HeadFit, *, artifact: Path, seed: int, rtol: float = 1e-6) -> None:
    """Raise if the artifact's saved routing head differs from the head re-fitted on this benchmark and seed.

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


# ---------------------------------------------------------------------------- contenders
@dataclasses.dataclass(frozen=True)
class Contender:
    """A router as the evaluation sees it.

    Attributes:
        name: Display name (unique; calibrated routers carry ``[margin=…]`` when there is one).
        family: Name without the margin suffix (``carrot``, ``proteus``, ``proteus_raw``, ...).
        kind: ``"baseline"`` or ``"proteus"``.
        calibration_margin: The margin option it was calibrated with (``None``: no margin).
        calibrated: Whether it takes a calibration margin at all (fixed, random, oracle and raw
            PROTEUS do not).
        route: ``route(rows, tau) -> (choice, mu or None)``.
        router: The underlying router object (a baseline router or a ``ProteusRouter``).
    """

    name: str
    family: str
    kind: str
    calibration_margin: float | None
    route: RouteFn = dataclasses.field(repr=False, compare=False)
    router: Any = dataclasses.field(default=None, repr=False, compare=False)
    calibrated: bool = True

    @property
    def margin_label(self) -> str:
        """``"none"``, the confidence level (``"0.95"``), or ``"n/a"`` for routers without calibration."""
        if not self.calibrated:
            return "n/a"
        return "none" if self.calibration_margin is None else f"{self.calibration_margin:g}"

    @property
    def tau_dependent(self) -> bool:
        """Whether its routing depends on τ (the fixed and random references do not)."""
        return self.family not in TAU_INDEPENDENT


def _family(name: str) -> str:
    return re.sub(r"\[margin=[^\]]*\]$", "", name)


def _baseline_contenders(bench: Benchmark, fit: HeadFit, margins: Sequence[float | None], seed: int, predictive: bool) -> dict[str, Contender]:
    from agents.baselines import CalibratedRouter, make_baselines

    out: dict[str, Contender] = {}
    for margin in margins:
        for name, router in make_baselines(bench, fit, margin=margin, seed=seed, predictive=predictive).items():
            if name in out:  # uncalibrated routers do not depend on the margin
                continue
            calibrated_margin = getattr(router, "margin", None)

            def route(rows: np.ndarray, tau: float, _router: Any = router) -> tuple[np.ndarray, None]:
                return _router.route(rows, tau), None

            out[name] = Contender(name, _family(name), "baseline", calibrated_margin, route, router,
                                  calibrated=isinstance(router, CalibratedRouter))
    return out


def _proteus_contenders(path: Path, bench: Benchmark, fit: HeadFit, margins: Sequence[float | None], seed: int) -> dict[str, Contender]:
    from agents.proteus.router import ProteusRouter, UnreachableTargetWarning

    router = ProteusRouter.load(path)
    check_head_matches(router.head, fit, artifact=path, seed=seed)

    def make(calibrated: bool, margin: float | None) -> RouteFn:
        def route(rows: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
            query = bench.embeddings[rows] if router.include_query else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnreachableTargetWarning)  # unreachable τ is reported as a missed floor
                result = router.route_observations(fit.p_hat[rows], fit.cost_hat[rows], tau, calibrated=calibrated,
                                                   confidence=margin, query=query)
            return result.indices.astype(np.int64), result.mu

        return route

    out = {"proteus_raw": Contender("proteus_raw", "proteus_raw", "proteus", None, make(False, None), router, calibrated=False)}
    for margin in margins:
        name = "proteus" if margin is None else f"proteus[margin={margin:g}]"
        out[name] = Contender(name, "proteus", "proteus", margin, make(True, margin), router)
    return out


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


def _prepare_seed(seed: int, *, name: str, data_path: str | None, benchmark_kwargs: dict[str, Any] | None,
                  artifact: RouterArtifact | None, margins: Sequence[float | None], predictive: bool) -> _Seed:
    bench = load_seed_benchmark(name, seed, data_path=data_path, benchmark_kwargs=benchmark_kwargs)
    head_config = None
    if artifact is not None:
        if artifact.fingerprint is not None and artifact.fingerprint != bench.fingerprint():
            raise ValueError(
                f"Router artifact {artifact.path} was trained on benchmark fingerprint {artifact.fingerprint}, but "
                f"{name!r} with split seed {seed} (kwargs {benchmark_kwargs or {}}, data {data_path}) has fingerprint "
                f"{bench.fingerprint()}: other data or another split. Evaluate it on the benchmark it was trained on.")
        head_config = RoutingHead.load(artifact.path).config
    fit = fit_routing_head(bench, seed=seed, config=head_config)
    contenders = _baseline_contenders(bench, fit, margins, seed, predictive)
    if artifact is not None:
        contenders.update(_proteus_contenders(artifact.path, bench, fit, margins, seed))
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
    return _Seed(seed, bench, test, contenders, references, float(low), float(high), fixed)


# ---------------------------------------------------------------------------- result
@dataclasses.dataclass
class EvalResult:
    """Everything ``proteus eval`` measured.

    Attributes:
        results: Tidy per-τ table, one row per router × τ × seed (see :data:`RESULT_COLUMNS`).
        aggregates: One row per router: pooled compliance / band rates over (τ, seed) pairs and,
            for every :func:`~proteus_env.metrics.summarize` key, its mean and sd over seeds
            (``<key>`` and ``<key>_sd``).
        dynamic: Per window of every dynamic scenario: router, scenario, seed, window figures.
        dynamic_summary: One row per router × scenario: share of windows met (mean ± sd over seeds).
        fixed_models: Each model's test accuracy and USD per 1K per seed (the zero-router hull).
        ranges: Per seed: the achievable range ``low`` / ``high`` and the test size.
        taus: The evaluated τ grid.
        seeds: The evaluated seeds.
        margins: The margin options of the calibrated routers.
        benchmark: Name, data path and loader arguments of the benchmark.
        routers: The router artifact directories (empty for baselines only).
        schedules: The dynamic scenarios' τ per query.
        wall_time_s: Wall time of :func:`evaluate`.
        command: The command line, when run from the CLI.
    """

    results: pd.DataFrame
    aggregates: pd.DataFrame
    dynamic: pd.DataFrame
    dynamic_summary: pd.DataFrame
    fixed_models: pd.DataFrame
    ranges: pd.DataFrame
    taus: np.ndarray
    seeds: list[int]
    margins: tuple[float | None, ...]
    benchmark: dict[str, Any]
    routers: list[str]
    schedules: dict[str, np.ndarray]
    wall_time_s: float = 0.0
    command: str | None = None

    @property
    def router_names(self) -> list[str]:
        """Router names in evaluation order."""
        return list(dict.fromkeys(self.results["router"]))


#: Columns of :attr:`EvalResult.results`.
RESULT_COLUMNS: tuple[str, ...] = (
    "router", "family", "kind", "calibration_margin", "seed", "tau", "feasible", "accuracy", "accuracy_ci_low",
    "accuracy_ci_high", "usd_per_1k", "floor_met", "violation", "margin", "mean_mu", "n_queries",
)


# ---------------------------------------------------------------------------- evaluation
def evaluate(
    routers: str | Path | Sequence[str | Path] | None = None,
    *,
    benchmark: str | None = None,
    data_path: str | Path | None = None,
    benchmark_kwargs: dict[str, Any] | None = None,
    taus: Sequence[float] | None = None,
    n_taus: int = DEFAULT_N_TAUS,
    seeds: int | Sequence[int] | None = None,
    margins: Sequence[float | None] = (None,),
    predictive: bool = True,
    dynamic: bool = True,
    stream_length: int = 1000,
    window: int = 100,
    n_boot: int = 1000,
    progress: bool = True,
    out_dir: str | Path | None = None,
    command: str | None = None,
    torch_threads: int | None = 1,
) -> EvalResult:
    """Evaluate trained PROTEUS routers (or the baselines alone) on the test splits.

    Args:
        routers: Artifact directories of ``proteus train`` (one per seed), or a parent directory
            of them; ``None`` for the baselines only.
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
        margins: Margin options of the calibrated routers: ``None`` and/or one-sided confidence
            levels in (0, 1); each is evaluated as its own router variant.
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
            cores (on 2 busy cores, 1 thread was 5× faster than 2); ``None`` leaves torch alone.

    Returns:
        An :class:`EvalResult`.

    Raises:
        ValueError: On a bad argument (named), seeds that disagree with the routers, or a router
            artifact that does not match the benchmark (fingerprint or routing head).
        FileNotFoundError: For a router path that is not an artifact.
    """
    if torch_threads is not None and (int(torch_threads) != torch_threads or int(torch_threads) < 1):
        raise ValueError(f"`torch_threads` must be a positive integer or None, got {torch_threads!r}.")
    with _torch_threads(torch_threads):
        return _evaluate(routers, benchmark=benchmark, data_path=data_path, benchmark_kwargs=benchmark_kwargs, taus=taus, n_taus=n_taus,
                         seeds=seeds, margins=margins, predictive=predictive, dynamic=dynamic, stream_length=stream_length,
                         window=window, n_boot=n_boot, progress=progress, out_dir=out_dir, command=command)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op threads to ``n`` for the block (``None``: leave them)."""
    if n is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _evaluate(routers: Any, *, benchmark: str | None, data_path: Any, benchmark_kwargs: dict[str, Any] | None, taus: Any, n_taus: int,
              seeds: Any, margins: Any, predictive: bool, dynamic: bool, stream_length: int, window: int, n_boot: int, progress: bool,
              out_dir: str | Path | None, command: str | None) -> EvalResult:
    """:func:`evaluate` without the torch thread setting."""
    start = time.perf_counter()
    margins = _check_margins(margins)
    if int(n_taus) != n_taus or int(n_taus) < 1:
        raise ValueError(f"`n_taus` must be a positive integer, got {n_taus!r}.")
    if int(n_boot) != n_boot or int(n_boot) < 1:
        raise ValueError(f"`n_boot` must be a positive integer, got {n_boot!r}.")
    if int(stream_length) != stream_length or int(stream_length) < 2:
        raise ValueError(f"`stream_length` must be an integer >= 2, got {stream_length!r}.")
    if int(window) != window or not 1 <= int(window) <= int(stream_length):
        raise ValueError(f"`window` must be an integer in [1, stream_length={stream_length}], got {window!r}.")
    if taus is not None:
        taus = list(np.atleast_1d(np.asarray(taus, dtype=object)))
        if not taus:
            raise ValueError("`taus` is empty.")
    artifacts = find_artifacts(routers) if routers is not None else None
    seed_list = resolve_seeds(artifacts, seeds)
    name, data_path, benchmark_kwargs = _benchmark_spec(artifacts, benchmark, data_path, benchmark_kwargs)

    bar = tqdm(total=len(seed_list), desc="proteus eval", unit="step", disable=not progress, leave=False)
    prepared: list[_Seed] = []
    for seed in seed_list:
        bar.set_postfix_str(f"seed {seed}: data, head, baselines")
        artifact = next((a for a in artifacts or [] if a.seed == seed), None)
        prepared.append(_prepare_seed(seed, name=name, data_path=data_path, benchmark_kwargs=benchmark_kwargs, artifact=artifact,
                                      margins=margins, predictive=predictive))
        bar.update()
    low = max(p.low for p in prepared)
    high = min(p.high for p in prepared)
    high = max(high, low)
    grid = feasible_tau_grid(low, high, int(n_taus), taus=taus)
    tau_values = [float(t) for t in grid.taus]

    n_contenders = sum(len(p.contenders) for p in prepared)
    bar.total = len(seed_list) + n_contenders + (len(seed_list) if dynamic else 0)
    bar.refresh()
    rows: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for p in prepared:
        scores, costs = p.bench.scores[p.test], p.bench.costs[p.test]
        per_router: dict[str, list[TauRecord]] = {}
        for contender in p.contenders.values():
            bar.set_postfix_str(f"seed {p.seed}: {contender.name}")
            records = []
            fixed_choice = None if contender.tau_dependent else contender.route(p.test, tau_values[0])
            for tau in tau_values:
                choice, mu = fixed_choice if fixed_choice is not None else contender.route(p.test, tau)
                feasible = bool(p.low - 1e-12 <= tau <= p.high + 1e-12)
                record = evaluate_tau(scores, costs, choice, tau, mu=mu, feasible=feasible, n_boot=int(n_boot), seed=p.seed)
                records.append(record)
                rows.append({"router": contender.name, "family": contender.family, "kind": contender.kind,
                             "calibration_margin": contender.margin_label, "seed": p.seed, **record.as_dict()})
            per_router[contender.name] = records
            bar.update()
        others = [r.usd_per_1k for n, recs in per_router.items() if p.contenders[n].family != "oracle" for r in recs]
        cost_range = (float(min(others)), float(max(others)))
        for router_name, records in per_router.items():
            summaries.append({"router": router_name, "seed": p.seed, **summarize(records, p.references, cost_range=cost_range)})

    results = pd.DataFrame(rows)
    results = results[[*RESULT_COLUMNS, *[c for c in results.columns if c not in RESULT_COLUMNS]]]
    aggregates = _aggregate(results, pd.DataFrame(summaries))

    schedules: dict[str, np.ndarray] = {}
    windows: list[dict[str, Any]] = []
    if dynamic:
        tau_low, tau_high = _dynamic_targets(low, high)
        schedules = make_schedules(tau_low, tau_high, int(stream_length))
        for p in prepared:
            bar.set_postfix_str(f"seed {p.seed}: dynamic targets")
            chosen = {n: c.route for n, c in p.contenders.items() if c.family in DYNAMIC_FAMILIES}
            if chosen:
                for row in run_scenarios(chosen, p.test, p.bench.scores, p.bench.costs, tau_low, tau_high, seed=p.seed,
                                         length=int(stream_length), window=int(window)):
                    windows.append({"seed": p.seed, **row})
            bar.update()
    bar.close()
    dynamic_frame = pd.DataFrame(windows, columns=["seed", "router", "scenario", "window", "start", "stop", "tau_mean", "accuracy",
                                                   "usd_per_1k", "mean_mu", "met"])
    ranges = pd.DataFrame([{"seed": p.seed, "low": p.low, "high": p.high, "n_test": int(p.test.size),
                            "oracle_accuracy": p.references.oracle[0], "best_fixed_accuracy": p.references.best_fixed[0],
                            "best_fixed_usd_per_1k": p.references.best_fixed[1]} for p in prepared])
    result = EvalResult(
        results=results, aggregates=aggregates, dynamic=dynamic_frame, dynamic_summary=_dynamic_summary(dynamic_frame),
        fixed_models=pd.concat([p.fixed for p in prepared], ignore_index=True), ranges=ranges, taus=np.asarray(tau_values),
        seeds=seed_list, margins=tuple(margins),
        benchmark={"name": name, "data_path": data_path, "benchmark_kwargs": benchmark_kwargs or {},
                   "n_queries": int(prepared[0].bench.n_queries), "n_models": int(prepared[0].bench.n_models)},
        routers=[str(a.path) for a in artifacts or []], schedules=schedules, command=command,
    )
    result.wall_time_s = time.perf_counter() - start
    if out_dir is not None:
        from agents.evaluation.plots import write_figures
        from agents.evaluation.report import write_report

        write_figures(result, out_dir)
        write_report(result, out_dir)
    return result


def _check_margins(margins: Any) -> tuple[float | None, ...]:
    if margins is None or isinstance(margins, (int, float)):
        margins = (margins,)
    out: list[float | None] = []
    for margin in margins:
        if margin is None:
            value = None
        else:
            try:
                value = float(margin)
            except (TypeError, ValueError):
                raise ValueError(f"`margins` entries must be None or a confidence level in (0, 1), got {margin!r}.") from None
            if not 0.0 < value < 1.0:
                raise ValueError(f"`margins` entries must be None or a confidence level in (0, 1), got {margin!r}.")
        if value not in out:
            out.append(value)
    if not out:
        raise ValueError("`margins` is empty; pass (None,) for no margin.")
    return tuple(out)


def _benchmark_spec(artifacts: list[RouterArtifact] | None, benchmark: str | None, data_path: Any,
                    benchmark_kwargs: dict[str, Any] | None) -> tuple[str, str | None, dict[str, Any] | None]:
    if benchmark is not None and not isinstance(benchmark, str):
        raise ValueError(f"`benchmark` must be a benchmark name, got {benchmark!r}.")
    data = None if data_path is None else str(data_path)
    if not artifacts:
        return (benchmark or "synthetic").lower(), data, benchmark_kwargs
    first = artifacts[0]
    if benchmark is not None and benchmark.lower() != first.benchmark:
        raise ValueError(f"`benchmark` is {benchmark!r} but the routers were trained on {first.benchmark!r}.")
    return first.benchmark, data if data is not None else first.data_path, (
        benchmark_kwargs if benchmark_kwargs is not None else first.benchmark_kwargs)


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
                               "calibration_margin": first["calibration_margin"], "n_seeds": int(per_seed.shape[0]),
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
    columns = ["router", "scenario", "share_met", "share_met_sd", "n_seeds", "n_windows", "mean_accuracy", "mean_tau", "mean_usd_per_1k"]
    if windows.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (router, scenario), part in windows.groupby(["router", "scenario"], sort=False):
        per_seed = part.groupby("seed")["met"].mean()
        rows.append({"router": router, "scenario": scenario, "share_met": float(part["met"].mean()),
                     "share_met_sd": float(per_seed.std(ddof=1)) if per_seed.size > 1 else math.nan,
                     "n_seeds": int(per_seed.size), "n_windows": int(part.shape[0]), "mean_accuracy": float(part["accuracy"].mean()),
                     "mean_tau": float(part["tau_mean"].mean()), "mean_usd_per_1k": float(part["usd_per_1k"].mean())})
    return pd.DataFrame(rows, columns=columns)
