"""``load_benchmark``: one entry point for every benchmark, and the per-process data cache."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from proteus_env.benchmark import Benchmark
from proteus_env.synthetic import make_synthetic_benchmark

BenchmarkFactory = Callable[..., Benchmark]

_FACTORIES: dict[str, BenchmarkFactory] = {"synthetic": make_synthetic_benchmark}
_CACHE: dict[str, Benchmark] = {}
_LOCK = threading.Lock()


def register_benchmark(name: str, factory: BenchmarkFactory) -> None:
    """Register (or replace) the loader behind ``load_benchmark(name, ...)``."""
    _FACTORIES[name.lower()] = factory


def available_benchmarks() -> list[str]:
    """Names accepted by :func:`load_benchmark`."""
    _import_optional_loaders()
    return sorted(_FACTORIES)


def load_benchmark(name: str, **kwargs: Any) -> Benchmark:
    """Load a benchmark by name.

    Args:
        name: ``"synthetic"`` (built in, no files), ``"routerbench"`` or ``"sprout"``.
        **kwargs: Passed to the benchmark's loader (for the synthetic one: ``n_queries``, ``seed``,
            ``split_seed``, ``embedding_dim``).

    Raises:
        ValueError: For an unknown name, listing the known ones.
    """
    _import_optional_loaders()
    factory = _FACTORIES.get(str(name).lower())
    if factory is None:
        raise ValueError(f"Unknown benchmark {name!r}; available: {sorted(_FACTORIES)}.")
    return factory(**kwargs)


def cached_benchmark(name: str, **kwargs: Any) -> Benchmark:
    """:func:`load_benchmark`, cached per process by name and (JSON-able) arguments.

    Environments call this, so every ``gym.make`` of one benchmark in a process shares one
    read-only :class:`Benchmark` instead of loading or copying it again.
    """
    key = json.dumps([str(name).lower(), kwargs], sort_keys=True, default=str)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    benchmark = load_benchmark(name, **kwargs)
    with _LOCK:
        _CACHE.setdefault(key, benchmark)
        return _CACHE[key]


def _import_optional_loaders() -> None:
    """Register the real-data loaders (RouterBench, SPROUT) when their module is present."""
    if "routerbench" in _FACTORIES:
        return
    try:
        from proteus_env.loaders import register_loaders
    except ModuleNotFoundError as exc:  # only a missing loaders package; a broken one must surface
        if exc.name != "proteus_env.loaders":
            raise
        _FACTORIES.setdefault("routerbench", _not_yet("routerbench"))
        _FACTORIES.setdefault("sprout", _not_yet("sprout"))
        return
    register_loaders(register_benchmark)


def _not_yet(name: str) -> BenchmarkFactory:
    def factory(**_: Any) -> Benchmark:
        raise NotImplementedError(
            f"The {name!r} loader is not part of this version yet (it comes with the real-benchmark "
            f"loaders); use load_benchmark('synthetic') or Proteus-Synthetic-v0 meanwhile."
        )

    return factory
