"""``proteus eval``: trained PROTEUS routers against every baseline on realized test outcomes.

    result = evaluate(["artifacts/seed0", "artifacts/seed1", "artifacts/seed2"], confidences=(None, 0.95))
    result.results      # one row per router × τ × seed (accuracy, CI, USD/1K, floor met, ...)
    result.aggregates   # one row per router: compliance, bands, Pearson(τ, μ), AIQ, RPI, ... (mean ± sd)
    write_report(result, "reports/eval"); write_figures(result, "reports/eval")

The options are one :class:`EvalSettings`; ``evaluate(routers, settings)`` and
``evaluate(routers, **options)`` (the settings' fields as keywords) are the same call.

Seeds, honestly. A trained router was trained on the split of its own seed (``split_seed`` in its
``benchmark.json``); evaluating it on another seed's split would put its training rows in the
test set. So with routers given, the evaluated seeds *are* the routers' seeds (one artifact per
seed). For each seed the benchmark is loaded with that split, the routing head is re-fitted
(deterministic: the same head the router was trained with, which is checked), and every router
(the baselines of :func:`agents.baselines.make_baselines`, PROTEUS raw and calibrated) routes
the test split with the same p̂ and ĉ. Calibrated routers share one confidence option; several
confidence levels are evaluated side by side (router names carry the level).

The τ grid spans the achievable range: from the cheapest model's test accuracy to the highest
test accuracy any non-oracle baseline reaches (in every evaluated seed). A user grid is evaluated
as given, points outside a seed's range flagged infeasible (reported, not hidden; aggregates use
feasible points only, see :func:`proteus_env.metrics.summarize`).

The protocol itself is :func:`agents.evaluation.protocol.run_protocol` (torch-free, shared with
:func:`agents.evaluation.any_agent.evaluate_policy`); this module adds the ``proteus train``
artifacts: their seeds, their benchmark, their routing head and their routers.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.evaluation.contenders import Contender, RouterArtifact, find_artifacts, proteus_contenders
from agents.evaluation.fanout import score_seeds_on_ray
from agents.evaluation.protocol import EvalSettings, load_seed_benchmark, resolve_seeds, run_protocol, torch_threads
from agents.evaluation.result import EvalResult
from proteus_env.benchmark import Benchmark
from proteus_env.routing_head import HeadConfig, HeadFit

__all__ = ["EvalResult", "EvalSettings", "evaluate", "load_seed_benchmark", "resolve_seeds"]


# ---------------------------------------------------------------------------- evaluation
def evaluate(routers: str | Path | Sequence[str | Path] | None = None, settings: EvalSettings | None = None,
             **options: Any) -> EvalResult:
    """Evaluate trained PROTEUS routers (or the baselines alone) on the test splits.

    Args:
        routers: Artifact directories of ``proteus train`` (one per seed), or a parent directory
            of them; ``None`` for the baselines only.
        settings: The options (default: ``EvalSettings()``).
        **options: Fields of :class:`EvalSettings`, overriding those of ``settings``
            (``margins`` is a deprecated alias of ``confidences``).

    Returns:
        An :class:`~agents.evaluation.result.EvalResult`; written to ``settings.out_dir`` if set.

    Raises:
        ValueError: On a bad option (named), seeds that disagree with the routers, or a router
            artifact that does not match the benchmark (fingerprint or routing head).
        FileNotFoundError: For a router path that is not an artifact.
        TypeError: On an unknown option.
    """
    if "margins" in options:
        if "confidences" in options:
            raise TypeError("evaluate() got both `confidences` and its deprecated alias `margins`.")
        warnings.warn("evaluate(margins=...) is deprecated; use confidences=...", DeprecationWarning, stacklevel=2)
        options["confidences"] = options.pop("margins")
    settings = EvalSettings(**options) if settings is None else dataclasses.replace(settings, **options)
    with torch_threads(settings.torch_threads):
        return _evaluate(routers, settings)


def _evaluate(routers: Any, settings: EvalSettings) -> EvalResult:
    """:func:`evaluate` without the torch thread setting."""
    artifacts = find_artifacts(routers) if routers is not None else None
    seed_list = resolve_seeds(artifacts, settings.seeds)
    settings = _resolve_benchmark(artifacts, settings)
    by_seed = {a.seed: a for a in artifacts or []}

    def head_config(seed: int, bench: Benchmark) -> HeadConfig | None:
        artifact = by_seed.get(seed)
        if artifact is None:
            return None
        if artifact.fingerprint != bench.fingerprint():
            raise ValueError(
                f"Router artifact {artifact.path} was trained on benchmark fingerprint {artifact.fingerprint}, but "
                f"{settings.benchmark!r} with split seed {seed} (kwargs {settings.benchmark_kwargs or {}}, data "
                f"{settings.data_path}) has fingerprint {bench.fingerprint()}: other data or another split. Evaluate it on the "
                f"benchmark it was trained on.")
        return artifact.verified.head.config

    def factory(seed: int, bench: Benchmark, fit: HeadFit, served: int) -> dict[str, Contender]:
        artifact = by_seed.get(seed)
        if artifact is None:
            return {}
        return proteus_contenders(artifact, bench, fit, settings.confidences, seed=seed, deploy_queries=served)

    return run_protocol(seed_list, settings, factory=factory if artifacts else None, head_config=head_config,
                        routers=[str(a.path) for a in artifacts or []], seed_scorer=score_seeds_on_ray if settings.ray else None)


def _resolve_benchmark(artifacts: list[RouterArtifact] | None, settings: EvalSettings) -> EvalSettings:
    """``settings`` with the benchmark name, data path and loader arguments filled in from the artifacts."""
    data = None if settings.data_path is None else str(settings.data_path)
    if not artifacts:
        return dataclasses.replace(settings, benchmark=(settings.benchmark or "synthetic").lower(), data_path=data)
    first = artifacts[0]
    if settings.benchmark is not None and settings.benchmark.lower() != first.benchmark:
        raise ValueError(f"`benchmark` is {settings.benchmark!r} but the routers were trained on {first.benchmark!r}.")
    return dataclasses.replace(
        settings, benchmark=first.benchmark, data_path=data if data is not None else first.data_path,
        benchmark_kwargs=settings.benchmark_kwargs if settings.benchmark_kwargs is not None else first.benchmark_kwargs)
