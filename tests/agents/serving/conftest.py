"""Fixtures of the `proteus serve` tests: tiny trained routers, a stub upstream, servers on 127.0.0.1.

Every server here is a real uvicorn server on a free loopback port (on a thread of the test
process, or a `proteus serve` subprocess), stopped by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

try:  # the `serve` extra: without it these tests are not collected (install with pip install -e ".[serve]")
    import fastapi  # noqa: F401
    import httpx
    import prometheus_client  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError:
    collect_ignore_glob = ["test_*.py"]
else:
    from agents.serving.stub import StubUpstream, ThreadedServer

from .helpers import KEY_ENV, KEY_VALUE, ROUTERBENCH_SAMPLE, TIMEOUT


@pytest.fixture(scope="session")
def rb_router_dir(tmp_path_factory) -> Path:
    """A tiny router trained on the real 365-prompt RouterBench sample (it has a text encoder)."""
    if not ROUTERBENCH_SAMPLE.is_file():
        pytest.skip(f"RouterBench sample not found at {ROUTERBENCH_SAMPLE}")
    import torch

    from agents.proteus.train import load_config, train

    torch.set_num_threads(1)
    config = load_config("Proteus-RouterBench-v0")
    config["env_kwargs"] = {"session_length": 16, "benchmark_kwargs": {"encoder_kwargs": {"dim": 16}}}
    config["ppo"].update({"n_steps": 64, "batch_size": 64, "n_epochs": 1})
    config["dual"].update({"n_bins": 3})
    config["checkpoint_every"] = 0
    config["calibration_points"] = 21
    out = tmp_path_factory.mktemp("rb_router")
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 128 steps: the policy is expected to ignore τ (a collapse warning)
        patch.setenv("PROTEUS_HOME", str(tmp_path_factory.mktemp("proteus_home")))
        train("Proteus-RouterBench-v0", config=config, out_dir=out, seed=0, timesteps=128, n_envs=1, data_path=str(ROUTERBENCH_SAMPLE))
    return out


@pytest.fixture(scope="session")
def rb_router(rb_router_dir):
    """The RouterBench router, loaded once."""
    from agents.proteus.router import ProteusRouter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ProteusRouter.load(rb_router_dir)


@pytest.fixture(scope="session")
def rb_models(rb_router) -> list[str]:
    """The RouterBench router's model names."""
    return [str(m) for m in rb_router.head.models]


@pytest.fixture(scope="session")
def prompts() -> list[str]:
    """Thirty real prompts of the RouterBench sample."""
    import pandas as pd

    if not ROUTERBENCH_SAMPLE.is_file():
        pytest.skip(f"RouterBench sample not found at {ROUTERBENCH_SAMPLE}")
    return [str(p) for p in pd.read_csv(ROUTERBENCH_SAMPLE, usecols=["prompt"])["prompt"].head(30)]


@pytest.fixture(scope="session")
def stub() -> Iterator[tuple[StubUpstream, str]]:
    """A stub OpenAI-compatible upstream on 127.0.0.1: ``(stub, "http://127.0.0.1:PORT")``."""
    upstream = StubUpstream()
    with ThreadedServer(upstream) as server:
        yield upstream, server.url


@pytest.fixture(scope="session", autouse=True)
def upstream_key() -> Iterator[None]:
    """The stub upstreams' API key, in the environment variable named by the configurations."""
    previous = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = KEY_VALUE
    yield
    if previous is None:
        os.environ.pop(KEY_ENV, None)
    else:
        os.environ[KEY_ENV] = previous


@pytest.fixture()
def serve(tmp_path) -> Callable[..., contextlib.AbstractContextManager[tuple[ThreadedServer, httpx.Client]]]:
    """Start a server: ``with serve(router, config_dict, state=...) as (server, client): ...`` (client: httpx on its URL)."""
    from agents.serving import ServeSettings, create_app, parse_config

    @contextlib.contextmanager
    def start(router: Any, config: dict[str, Any], *, state: Path | None = None,
              settings: ServeSettings | None = None) -> Iterator[tuple[ThreadedServer, httpx.Client]]:
        app = create_app(router, parse_config(config, source="upstreams.yaml"), state_path=state or tmp_path / "state.sqlite", settings=settings)
        with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            yield server, client

    return start


@pytest.fixture(scope="session")
def synthetic_router(tmp_path_factory):
    """A tiny router trained on the synthetic benchmark: no text encoder, it routes embeddings only."""
    import torch

    from agents.proteus.router import ProteusRouter
    from agents.proteus.train import load_config, train

    torch.set_num_threads(1)
    config = load_config()
    config["env_kwargs"] = {"session_length": 16, "benchmark_kwargs": {"n_queries": 3000}}
    config["ppo"].update({"n_steps": 64, "batch_size": 64, "n_epochs": 1})
    config["dual"].update({"n_bins": 3, "max_val_queries": 300})
    config["checkpoint_every"] = 0
    config["calibration_points"] = 11
    out = tmp_path_factory.mktemp("synthetic_router")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the tiny policy is expected to ignore τ
        train(config=config, out_dir=out, seed=0, timesteps=128, n_envs=1)
        return ProteusRouter.load(out)
