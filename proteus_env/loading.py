"""``load_benchmark``: one entry point for every benchmark, and the per-process data cache.

Model subsets: every benchmark takes ``models=[...]`` and ``exclude_models=[...]``. Loaders that
read files (RouterBench, SPROUT) apply them while reading, so an excluded model's columns are not
needed at all (a file may lack that model's cost column); any other benchmark is restricted with
:meth:`Benchmark.select_models` after it is built. Either way the subset is applied before any
routing head is fitted on it.

Trust: options that load code or read files (:data:`TRUST_OPTIONS`) come only from the caller.
:func:`recorded_loader_kwargs` reduces loader arguments read from a file (an artifact's
``benchmark.json`` or ``config.yaml``) to those that only describe the data.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from proteus_env import paths
from proteus_env.benchmark import Benchmark, parse_model_names
from proteus_env.loaders import load_routerbench, load_sprout
from proteus_env.synthetic import make_synthetic_benchmark

BenchmarkFactory = Callable[..., Benchmark]
#: ``(resolved path, size, mtime_ns, inode)`` of a file, or ``(path, -1, -1, -1)`` when it is gone.
FileIdentity = tuple[str, int, int, int]

_FACTORIES: dict[str, BenchmarkFactory] = {
    "synthetic": make_synthetic_benchmark,
    "routerbench": load_routerbench,
    "sprout": load_sprout,
}
_CACHE: dict[str, tuple[Benchmark, tuple[FileIdentity, ...]]] = {}
_LOCK = threading.Lock()

#: Loader options that widen trust (load code, read or write files chosen by the value). Only a
#: caller (keyword arguments, command-line flags) may set them, never a file such as an artifact.
TRUST_OPTIONS: tuple[str, ...] = ("data_path", "trust_pickle", "cache_dir", "prices (a file path)", "encoder_kwargs (paths)")
#: Loader options that only describe the data: the ones an artifact's record may set.
RECORDABLE_OPTIONS: frozenset[str] = frozenset({
    "n_queries", "seed", "split_seed", "embedding_dim",  # synthetic
    "variant", "drop_tasks", "missing", "encoder", "encoder_kwargs", "drop_cross_split_duplicates", "prices",  # files
    "models", "exclude_models",
})
_PATH_WORDS = ("path", "dir", "file", "url", "trust", "remote", "code")


def register_benchmark(name: str, factory: BenchmarkFactory) -> None:
    """Register (or replace) the loader behind ``load_benchmark(name, ...)``."""
    _FACTORIES[name.lower()] = factory


def available_benchmarks() -> list[str]:
    """Names accepted by :func:`load_benchmark`."""
    return sorted(_FACTORIES)


def load_benchmark(name: str, *, models: Sequence[str] | str | None = None, exclude_models: Sequence[str] | str | None = None,
                   **kwargs: Any) -> Benchmark:
    """Load a benchmark by name, optionally restricted to a subset of its models.

    Args:
        name: ``"synthetic"`` (built in, no files), ``"routerbench"`` or ``"sprout"``.
        models: Keep only these models (names or one comma-separated text); they stay in the
            benchmark's column order. ``None``: all.
        exclude_models: Drop these models. For RouterBench and SPROUT an excluded model's
            columns are not read, so a file may lack them.
        **kwargs: Passed to the benchmark's loader (for the synthetic one: ``n_queries``, ``seed``,
            ``split_seed``, ``embedding_dim``).

    Returns:
        The benchmark; with a subset, its ``metadata`` records ``models_available`` and
        ``dropped_models``. Rows, costs and splits of the kept rows are those of the full data.

    Raises:
        ValueError: For an unknown benchmark name, listing the known ones; an argument the
            benchmark's loader does not take (such as ``data_path`` for the synthetic one), listing
            those it takes; an unknown model name, listing the available ones; or fewer than 2
            models left.
    """
    factory = _FACTORIES.get(str(name).lower())
    if factory is None:
        raise ValueError(f"Unknown benchmark {name!r}; available: {sorted(_FACTORIES)}.")
    keep = parse_model_names(models, "models")
    drop = parse_model_names(exclude_models, "exclude_models")
    parameters = _parameters(factory)
    if parameters is not None:
        unknown = sorted(set(kwargs) - parameters)
        if unknown:
            raise ValueError(f"Benchmark {str(name).lower()!r} takes no argument(s) {unknown}; it takes "
                             f"{sorted(parameters | {'models', 'exclude_models'})}.")
    if keep is None and drop is None:
        return factory(**kwargs)
    if parameters is not None and {"models", "exclude_models"} <= parameters:
        return factory(models=keep, exclude_models=drop, **kwargs)
    return factory(**kwargs).select_models(keep, drop)


def _parameters(factory: BenchmarkFactory) -> set[str] | None:
    """The keyword arguments ``factory`` accepts, or ``None`` when it takes any (``**kwargs``) or cannot be inspected."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)}


def cached_benchmark(name: str, **kwargs: Any) -> Benchmark:
    """:func:`load_benchmark`, cached per process by name, (JSON-able) arguments and file identity.

    Environments call this, so every ``gym.make`` of one benchmark in a process shares one
    read-only :class:`Benchmark` instead of loading or copying it again. A cached benchmark is
    served only while the files it was read from keep their identity (resolved path, size,
    modification time in ns, inode): a rewritten or replaced file is read again. The data folders
    a loader searches (``$PROTEUS_DATA_DIR``, ``$PROTEUS_HOME``) are part of the key.
    """
    keyed = dict(kwargs)
    for argument in ("models", "exclude_models"):  # one subset is one benchmark, whatever order it is listed in
        names = parse_model_names(keyed.get(argument), argument)
        if names is not None:
            keyed[argument] = sorted(names)
    key = json.dumps([str(name).lower(), keyed, _lookup_context(name)], sort_keys=True, default=str)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        benchmark, identities = cached
        if all(file_identity(identity[0]) == identity for identity in identities):
            return benchmark
    benchmark = load_benchmark(name, **kwargs)
    identities = tuple(file_identity(path) for path in source_files(benchmark, kwargs))
    with _LOCK:
        old = _CACHE.get(key)
        if old is not None and old is not cached and old[1] == identities:
            return old[0]  # another thread loaded the same files first
        _CACHE[key] = (benchmark, identities)
        return benchmark


def clear_benchmark_cache() -> None:
    """Forget every benchmark cached by :func:`cached_benchmark` in this process."""
    with _LOCK:
        _CACHE.clear()


def file_identity(path: str | os.PathLike[str]) -> FileIdentity:
    """``(resolved path, size, mtime_ns, inode)`` of ``path``; size, time and inode are -1 when it does not exist."""
    resolved = Path(path).expanduser().resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return (str(resolved), -1, -1, -1)
    return (str(resolved), int(stat.st_size), int(stat.st_mtime_ns), int(stat.st_ino))


def source_files(benchmark: Benchmark, kwargs: Mapping[str, Any] | None = None) -> list[str]:
    """The files a benchmark was read from: its ``metadata`` (``files`` or ``source``) and a ``prices`` file."""
    meta = benchmark.metadata
    found: list[str] = []
    files = meta.get("files")
    if isinstance(files, Mapping):
        found += [str(f) for f in files.values()]
    elif isinstance(meta.get("source"), str) and Path(meta["source"]).is_file():
        found.append(meta["source"])
    prices = (kwargs or {}).get("prices")
    if isinstance(prices, (str, os.PathLike)):
        found.append(str(prices))
    return found


def _lookup_context(name: str) -> list[str | None]:
    """The environment a file lookup depends on (empty for the generated benchmark)."""
    if str(name).lower() == "synthetic":
        return []
    return [os.environ.get(paths.DATA_DIR_ENV), os.environ.get(paths.HOME_ENV)]


def recorded_loader_kwargs(kwargs: Mapping[str, Any] | None, *, source: str = "the record") -> tuple[dict[str, Any], list[str]]:
    """Reduce loader arguments read from a file to those that only describe the data.

    An artifact's ``benchmark.json`` or ``config.yaml`` may say *which* data it was trained on
    (``n_queries``, ``variant``, ``drop_tasks``, ``models``, ...), but never turn on trust: a
    ``data_path``, ``trust_pickle``, ``cache_dir``, a ``prices`` file or a path inside
    ``encoder_kwargs`` (:data:`TRUST_OPTIONS`) is dropped, as is any option not in
    :data:`RECORDABLE_OPTIONS`. The caller passes such options itself if it wants them.

    Args:
        kwargs: The recorded loader arguments.
        source: The file they came from, for the names of the dropped options.

    Returns:
        ``(kept, dropped)``: the arguments to use, and the names of those ignored.
    """
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    if kwargs is None:
        return kept, dropped
    if not isinstance(kwargs, Mapping):
        return kept, [f"{source}: benchmark_kwargs ({type(kwargs).__name__}, not a mapping)"]
    for key, value in kwargs.items():
        if key not in RECORDABLE_OPTIONS:
            dropped.append(str(key))
        elif key == "prices" and not isinstance(value, Mapping):
            dropped.append("prices")
        elif key == "encoder_kwargs":
            if not isinstance(value, Mapping):
                dropped.append("encoder_kwargs")
                continue
            safe = {k: v for k, v in value.items() if _plain(v) and not any(w in str(k).lower() for w in _PATH_WORDS)}
            dropped += [f"encoder_kwargs.{k}" for k in value if k not in safe]
            kept[key] = safe
        else:
            kept[key] = value
    return kept, dropped


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 64)
