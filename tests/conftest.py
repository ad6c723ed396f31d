"""Shared fixtures: a small synthetic benchmark and the path of the shared real-data sample."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from shared_fixtures import ROUTERBENCH_SAMPLE, tiny_train_config

from proteus_env import Benchmark, make_synthetic_benchmark


@pytest.fixture(scope="session", autouse=True)
def _sb3_logs_in_pytest_tmp(tmp_path_factory) -> Iterator[None]:
    """SB3's ``learn()`` without a logger makes a ``tempdir/SB3-<date>`` folder per call: keep them in pytest's tmp."""
    previous = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3_logs"))
    yield
    if previous is None:
        os.environ.pop("SB3_LOGDIR", None)
    else:
        os.environ["SB3_LOGDIR"] = previous


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


@pytest.fixture(scope="session")
def tiny_routers(tmp_path_factory) -> Path:
    """A parent directory holding two tiny trained routers, on split seeds 0 and 1."""
    import torch

    from agents.proteus.train import train

    torch.set_num_threads(1)
    parent = tmp_path_factory.mktemp("routers")
    for seed in (0, 1):
        train(config=tiny_train_config(), out_dir=parent / f"seed{seed}", seed=seed, timesteps=256, n_envs=2)
    return parent


@pytest.fixture(scope="session")
def ray_instance():
    """A local Ray instance (2 CPUs, no dashboard) on 127.0.0.1 for the tests of issue 10, shut down at the end."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'proteus-routing-gym[ray]')")
    if ray.is_initialized():
        yield ray
        return
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning",
             _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()
