"""Who is evaluated: the baselines and the trained PROTEUS routers, as :class:`Contender` s.

A contender is a router seen through one function, ``route(rows, tau) -> (choice, mu or None)``,
with the name, family and calibration confidence the report shows. The baselines come from
:func:`agents.baselines.make_baselines`; a trained router comes from a ``proteus train`` artifact
directory (:class:`RouterArtifact`, read and verified once by
:func:`agents.proteus.artifact.read_artifact`), whose routing head must match the head re-fitted
on the evaluated benchmark (:func:`check_head_matches`).

:class:`Contender`, :func:`baseline_contenders` and :func:`check_head_matches` live in the
torch-free :mod:`agents.evaluation.protocol` (so that any agent can be evaluated without torch)
and are re-exported here under their old import path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.evaluation.protocol import Contender, baseline_contenders, check_head_matches, router_contenders
from agents.proteus.artifact import MODEL_ZIP, Artifact, is_artifact, read_artifact
from agents.proteus.router import ProteusRouter
from proteus_env.benchmark import Benchmark
from proteus_env.loading import recorded_loader_kwargs
from proteus_env.routing_head import HeadFit

__all__ = ["Contender", "RouterArtifact", "baseline_contenders", "check_head_matches", "find_artifacts", "proteus_contenders"]


# ---------------------------------------------------------------------------- artifacts
@dataclasses.dataclass(frozen=True)
class RouterArtifact:
    """What an artifact directory says about the data its router was trained on.

    Attributes:
        path: The artifact directory.
        seed: The split seed the router was trained on.
        benchmark: Benchmark name for :func:`proteus_env.load_benchmark`.
        data_path: Always ``None``: a file named by the artifact is never read (the caller passes
            ``data_path`` / ``--data``; the fingerprint check then refuses other data).
        benchmark_kwargs: Loader arguments that only describe the data
            (:func:`proteus_env.loading.recorded_loader_kwargs`), with ``models`` set to the
            artifact's models when it was trained on a model subset.
        fingerprint: The benchmark fingerprint recorded at training time.
        verified: The artifact as :func:`~agents.proteus.artifact.read_artifact` read it (every
            file checked against the manifest).
        recorded_data_path: The data file the artifact names (for messages only; never read).
        ignored_options: Recorded options that were not used because they would widen trust
            (``data_path``, ``trust_pickle``, ``cache_dir``, ...) or are unknown.
    """

    path: Path
    seed: int
    benchmark: str
    data_path: str | None
    benchmark_kwargs: dict[str, Any]
    fingerprint: str
    verified: Artifact = dataclasses.field(repr=False, compare=False)
    recorded_data_path: str | None = dataclasses.field(default=None, compare=False)
    ignored_options: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    @classmethod
    def read(cls, path: str | Path) -> RouterArtifact:
        """Read and verify one artifact; the loader arguments come from ``benchmark.json`` (``config.yaml`` as a fallback).

        Nothing read from the artifact turns on trust: its ``data_path``, ``trust_pickle``,
        ``cache_dir`` and other such options are ignored (see ``ignored_options``); only options
        that describe the data are kept, and the recorded fingerprint decides whether the data
        the caller supplies is the data the router was trained on.

        Raises:
            FileNotFoundError: If the directory is not a ``proteus train`` artifact or a listed file is missing.
            ValueError: If a file was modified or holds a bad value, or the benchmark cannot be determined.
        """
        verified = read_artifact(path)
        identity = verified.identity
        env_kwargs = dict(identity.get("env_kwargs") or {})
        config_env = (verified.config or {}).get("env_kwargs")
        config_env = dict(config_env) if isinstance(config_env, dict) else {}
        name = env_kwargs.get("benchmark")
        if not isinstance(name, str):
            name = config_env.get("benchmark") if isinstance(config_env.get("benchmark"), str) else identity.get("name")
        if not isinstance(name, str):
            raise ValueError(f"{verified.path / 'benchmark.json'} names no benchmark.")
        data_path = env_kwargs.get("data_path", config_env.get("data_path"))
        recorded = env_kwargs.get("benchmark_kwargs", config_env.get("benchmark_kwargs")) or {}
        kwargs, ignored = recorded_loader_kwargs(recorded, source=str(verified.path / "benchmark.json"))
        if data_path is not None:
            ignored.insert(0, "data_path")
        subset = [env_kwargs.get(k, config_env.get(k)) for k in ("models", "exclude_models")]
        if verified.dropped_models or any(subset) or kwargs.keys() & {"models", "exclude_models"}:
            kwargs.pop("exclude_models", None)
            kwargs["models"] = verified.models  # the manifest's list, checked against the head and the policy
        return cls(path=verified.path, seed=verified.split_seed, benchmark=name.lower(), data_path=None, benchmark_kwargs=kwargs,
                   fingerprint=str(verified.benchmark["fingerprint"]), verified=verified,
                   recorded_data_path=None if data_path is None else str(data_path), ignored_options=tuple(ignored))


def find_artifacts(paths: str | Path | Sequence[str | Path]) -> list[RouterArtifact]:
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
        if _looks_like_artifact(path):
            found.append(RouterArtifact.read(path))
            continue
        children = sorted(child for child in path.iterdir() if child.is_dir() and _looks_like_artifact(child))
        if not children:
            raise FileNotFoundError(f"{path} is neither a `proteus train` artifact (no manifest.json) nor a directory of artifacts.")
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


def _looks_like_artifact(path: Path) -> bool:
    """An artifact, or an artifact from before manifests (which :func:`RouterArtifact.read` refuses by name)."""
    return is_artifact(path) or (path / MODEL_ZIP).is_file()


# ---------------------------------------------------------------------------- contenders
def proteus_contenders(artifact: RouterArtifact, bench: Benchmark, fit: HeadFit, confidences: Sequence[float | None], *,
                       seed: int, deploy_queries: int | None = None) -> dict[str, Contender]:
    """The trained router of ``artifact``: raw (``proteus_raw``) and calibrated once per confidence level.

    ``deploy_queries`` is the size of the served sample each certified floor is about.

    Raises:
        ValueError: If the artifact's routing head differs from ``fit``'s (see :func:`check_head_matches`).
    """
    check_head_matches(artifact.verified.head, fit, artifact=artifact.path, seed=seed)  # before loading the policy
    router = ProteusRouter.from_artifact(artifact.verified)
    return router_contenders(router, bench, fit, confidences, seed=seed, deploy_queries=deploy_queries, name="proteus",
                             label=artifact.path)
