"""``load_benchmark``: one entry point for every benchmark, and the per-process data cache."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from proteus_env.benchmark import Benchmark
from proteus_env.loaders import load_routerbench, load_sprout
from proteus_env.synthetic import make_synthetic_benchmark

BenchmarkFactory = Callable[..., Benchmark]

_FACTORIES: dict[str, BenchmarkFactory] = {
    "synthetic": make_synthetic_benchmark,
    "routerbench": load_routerbench,
    "sprout": load_sprout,
}
_CACHE: dict[str, Benchmark] = {}
_LOCK = threading.Lock()


def register_benchmark(name: str, factory: BenchmarkFactory) -> None:
    """Register (or replace) the loader behind ``load_benchmark(name, ...)``."""
    _FACTORIES[name.lower()] = factory


def available_benchmarks() -> list[str]:
    """Names accepted by :func:`load_benchmark`."""
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
