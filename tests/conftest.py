"""Shared fixtures: a small synthetic benchmark and the path of the shared real-data sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from proteus_env import Benchmark, make_synthetic_benchmark

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
ROUTERBENCH_SAMPLE = SHARED_DATA / "routerbench" / "routerbench_0shot_sample365.csv"


@pytest.fixture(scope="session")
def small_benchmark() -> Benchmark:
    """A 3,000-query synthetic benchmark: fast to fit, same structure as the default."""
    return make_synthetic_benchmark(n_queries=3000, seed=0)


@pytest.fixture(scope="session")
def routerbench_sample() -> Path:
    """The real 365-prompt RouterBench sample in ../shared (never copied into the repository)."""
    if not ROUTERBENCH_SAMPLE.is_file():
        pytest.skip(f"RouterBench sample not found at {ROUTERBENCH_SAMPLE}")
    return ROUTERBENCH_SAMPLE
