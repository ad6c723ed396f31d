"""Fixtures of the robustness probes: one tiny trained router per session and the contexts the probes run in."""

from __future__ import annotations

from pathlib import Path

import probe_generators as gen
import pytest
from hypothesis import HealthCheck, settings

#: The fixed, seeded sample of the default test run (the benchmark script runs the same strategies at a larger count).
settings.register_profile("probes", derandomize=True, deadline=None, database=None, print_blob=False,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                                 HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="session")
def probe_router(tmp_path_factory) -> Path:
    """A tiny router trained once per session (about two seconds)."""
    return gen.train_tiny_router(tmp_path_factory.mktemp("probe_router") / "router")


@pytest.fixture(scope="session")
def env_ctx() -> gen.EnvContext:
    return gen.EnvContext()


@pytest.fixture(scope="session")
def loader_ctx(tmp_path_factory) -> gen.LoaderContext:
    if not gen.SAMPLE_CSV.is_file():
        pytest.skip(f"RouterBench sample not found at {gen.SAMPLE_CSV}")
    return gen.LoaderContext(tmp_path_factory.mktemp("probe_loader"))


@pytest.fixture(scope="session")
def router_ctx(probe_router) -> gen.RouterContext:
    return gen.RouterContext(probe_router)


@pytest.fixture(scope="session")
def artifact_ctx(probe_router, tmp_path_factory) -> gen.ArtifactContext:
    return gen.ArtifactContext(probe_router, tmp_path_factory.mktemp("probe_artifacts"))


@pytest.fixture(scope="session")
def cli_ctx(probe_router, tmp_path_factory) -> gen.CliContext:
    return gen.CliContext(probe_router, tmp_path_factory.mktemp("probe_cli"))


@pytest.fixture(scope="session")
def agent_ctx(tmp_path_factory) -> gen.AgentContext:
    return gen.AgentContext(tmp_path_factory.mktemp("probe_agent"))
