"""Model subsets (issue 14): ``models=`` / ``exclude_models=`` in the benchmark, the loaders, the cache and the env."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from sprout_fixture import MODELS_13, write_sprout

import proteus_env  # noqa: F401  (registers the environments)
from proteus_env import ProteusRoutingEnv, cached_benchmark, load_benchmark, make_synthetic_benchmark
from proteus_env.benchmark import parse_model_names, resolve_model_subset
from proteus_env.loaders import load_routerbench, load_sprout

PAIR = ["gpt-4-1106-preview", "zero-one-ai/Yi-34B-Chat"]
SMALL = {"n_queries": 3000}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROTEUS_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def full() -> proteus_env.Benchmark:
    return make_synthetic_benchmark(n_queries=3000, seed=0)


def _assert_same_rows(subset, full, models):
    """Rows, their order, costs, scores and splits of the kept models are those of the full benchmark."""
    columns = [full.models.index(m) for m in models]
    assert subset.models == tuple(models)
    np.testing.assert_array_equal(subset.scores, full.scores[:, columns])
    np.testing.assert_array_equal(subset.costs, full.costs[:, columns])
    np.testing.assert_array_equal(subset.embeddings, full.embeddings)
    np.testing.assert_array_equal(subset.prompt_tokens, full.prompt_tokens)
    assert list(subset.task) == list(full.task)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(subset.splits[split], full.splits[split])


# ---------------------------------------------------------------------------- the benchmark
def test_select_models_keeps_rows_costs_splits_and_the_benchmark_order(full):
    subset = full.select_models(list(reversed(PAIR)))  # asked in reverse: kept in the benchmark's order
    _assert_same_rows(subset, full, PAIR)
    assert subset.metadata["models_available"] == list(full.models)
    assert subset.metadata["dropped_models"] == [m for m in full.models if m not in PAIR]
    assert subset.metadata["n_dropped_models"] == 9
    assert subset.fingerprint() != full.fingerprint()
    assert subset.fingerprint() == full.select_models(PAIR).fingerprint()
    assert full.select_models(None) is full and full.select_models(list(full.models)) is full

    excluded = full.select_models(exclude_models=["claude-v2", "claude-v1"])
    kept = [m for m in full.models if m not in ("claude-v1", "claude-v2")]
    _assert_same_rows(excluded, full, kept)
    both = full.select_models("gpt-4-1106-preview, zero-one-ai/Yi-34B-Chat,claude-v2", exclude_models="claude-v2")
    assert both.models == tuple(PAIR)  # a comma-separated text works too
    again = excluded.select_models(PAIR)  # a subset of a subset remembers the full list
    assert again.metadata["models_available"] == list(full.models) and again.metadata["n_dropped_models"] == 9


@pytest.mark.parametrize("kwargs, fragments", [
    ({"models": ["gpt-4", "claude-v2"]}, ["unknown model(s) ['gpt-4']", "`models`", "available:", "gpt-4-1106-preview"]),
    ({"exclude_models": ["nope"]}, ["unknown model(s) ['nope']", "`exclude_models`", "available:"]),
    ({"models": ["claude-v2"]}, ["leave 1 model", "at least 2"]),
    ({"models": PAIR, "exclude_models": PAIR[:1]}, ["leave 1 model"]),
    ({"models": []}, ["`models` must name at least one model"]),
    ({"models": ["claude-v2", "claude-v2"]}, ["more than once"]),
    ({"models": "a,,b"}, ["no empty name"]),
    ({"models": [3, 4]}, ["model names"]),
    ({"models": {"claude-v2": 1}}, ["list of model names"]),
])
def test_bad_model_names_are_a_clear_error(full, kwargs, fragments):
    for call in (lambda: full.select_models(**kwargs), lambda: load_benchmark("synthetic", n_queries=3000, **kwargs)):
        with pytest.raises(ValueError) as info:
            call()
        for fragment in fragments:
            assert fragment in str(info.value), str(info.value)


def test_parse_and_resolve_helpers():
    assert parse_model_names(None) is None
    assert parse_model_names(" a , b ") == ("a", "b")
    assert parse_model_names(("b", "a")) == ("b", "a")
    assert resolve_model_subset(("a", "b", "c"), ["c", "a"]) == ("a", "c")
    assert resolve_model_subset(("a", "b", "c"), exclude_models="b") == ("a", "c")


def test_load_and_cached_benchmark_take_the_subset(full):
    bench = load_benchmark("synthetic", n_queries=3000, models=PAIR)
    _assert_same_rows(bench, full, PAIR)
    cached = cached_benchmark("synthetic", n_queries=3000, models=PAIR)
    assert cached is cached_benchmark("synthetic", n_queries=3000, models=PAIR)
    assert cached is cached_benchmark("synthetic", n_queries=3000, models=list(reversed(PAIR)))  # one subset, one entry
    assert cached.models == tuple(PAIR) and cached_benchmark("synthetic", n_queries=3000).n_models == 11


# ---------------------------------------------------------------------------- the loaders
def test_routerbench_subset_equals_the_full_file_restricted(routerbench_sample):
    full = load_routerbench(routerbench_sample)
    subset = load_routerbench(routerbench_sample, models=list(reversed(PAIR)))
    _assert_same_rows(subset, full, PAIR)
    assert list(subset.prompts) == list(full.prompts)
    assert subset.metadata["dropped_models"] == [m for m in full.metadata["models_available"] if m not in PAIR]
    assert full.metadata["dropped_models"] == [] and len(full.metadata["models_available"]) == 11
    with pytest.raises(ValueError, match=r"unknown model\(s\) \['gpt-5'\].*available: \[") as info:
        load_routerbench(routerbench_sample, exclude_models=["gpt-5"])
    assert str(routerbench_sample) in str(info.value) and "claude-v2" in str(info.value)


def test_routerbench_file_may_lack_the_columns_of_an_excluded_model(routerbench_sample, tmp_path):
    frame = pd.read_csv(routerbench_sample)
    path = tmp_path / "no-claude-v2-cost.csv"
    frame.drop(columns=["claude-v2|total_cost"]).to_csv(path, index=False)
    with pytest.raises(ValueError) as info:
        load_routerbench(path)
    message = str(info.value)
    for fragment in (str(path), "model 'claude-v2'", "score column 'claude-v2'", "no cost column 'claude-v2|total_cost'",
                     "exclude_models=['claude-v2']", "--exclude-models claude-v2"):
        assert fragment in message, message
    bench = load_routerbench(path, exclude_models=["claude-v2"])
    full = load_routerbench(routerbench_sample)
    _assert_same_rows(bench, full, [m for m in full.models if m != "claude-v2"])
    assert bench.metadata["dropped_models"] == ["claude-v2"]
    both = load_routerbench(path, models=PAIR)  # leaving it out of `models` names it out too
    assert both.models == tuple(PAIR)


def test_sprout_subset(tmp_path):
    root = write_sprout(tmp_path / "SPROUT", [*MODELS_13[:3], "acme-unpriced-llm"])
    with pytest.raises(ValueError, match="acme-unpriced-llm"):
        load_sprout(str(root))
    bench = load_sprout(str(root), exclude_models=["acme-unpriced-llm"])  # an excluded model needs no price
    full = load_sprout(str(root), prices={"acme-unpriced-llm": [1.0, 2.0]})
    _assert_same_rows(bench, full, list(MODELS_13[:3]))
    assert bench.metadata["dropped_models"] == ["acme-unpriced-llm"]
    pair = load_sprout(str(root), models=[MODELS_13[2], MODELS_13[0]])
    assert pair.models == (MODELS_13[0], MODELS_13[2])
    with pytest.raises(ValueError, match=r"unknown model\(s\) \['gpt-4'\].*available"):
        load_sprout(str(root), models=["gpt-4", MODELS_13[0]])
    env = gym.make("Proteus-SPROUT-v0", data_path=str(root), exclude_models=["acme-unpriced-llm"], session_length=8)
    check_env(env.unwrapped)
    assert env.unwrapped.models == tuple(MODELS_13[:3])


# ---------------------------------------------------------------------------- the environment
def test_env_with_a_two_model_subset_passes_check_env(full):
    env = gym.make("Proteus-Synthetic-v0", benchmark_kwargs=SMALL, models=PAIR, session_length=16)
    check_env(env.unwrapped)
    inner = env.unwrapped
    assert inner.models == tuple(PAIR) and inner.action_space.shape == (1,)
    assert inner.observation_space["p_hat"].shape == (2,) and inner.head_fit.head.models == tuple(PAIR)
    kwargs = inner.constructor_kwargs()
    assert kwargs["models"] == PAIR and kwargs["exclude_models"] is None
    json.dumps({k: v for k, v in kwargs.items() if k != "head_config"})  # JSON-able
    again = ProteusRoutingEnv(**{**kwargs, "split": "val"})
    assert again.benchmark is inner.benchmark  # one cached benchmark per subset
    obs, _ = env.reset(seed=0)
    for _ in range(16):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert info["model"] in PAIR and np.isfinite(reward)
    assert terminated
    model_env = gym.make("Proteus-Synthetic-v0", benchmark_kwargs=SMALL, exclude_models=list(full.models[2:]), action_mode="model")
    check_env(model_env.unwrapped)
    assert model_env.unwrapped.action_space.n == 2


def test_env_subset_of_a_benchmark_object_and_contradictions(full):
    env = ProteusRoutingEnv(full, models=PAIR, session_length=8)
    assert env.benchmark.models == tuple(PAIR) and env.benchmark.scores.shape == (3000, 2)
    with pytest.raises(ValueError, match="unknown model"):
        gym.make("Proteus-Synthetic-v0", benchmark_kwargs=SMALL, models=["gpt-4", "claude-v2"])
    with pytest.raises(ValueError, match="contradicts benchmark_kwargs"):
        ProteusRoutingEnv(benchmark_kwargs={**SMALL, "models": PAIR}, models=["claude-v1", "claude-v2"])
    same = ProteusRoutingEnv(benchmark_kwargs={**SMALL, "models": PAIR}, models=list(reversed(PAIR)), session_length=8)
    assert same.models == tuple(PAIR)


def test_real_data_env_with_a_subset(routerbench_sample):
    env = gym.make("Proteus-RouterBench-v0", data_path=str(routerbench_sample), models=PAIR, session_length=8)
    check_env(env.unwrapped)
    assert env.unwrapped.models == tuple(PAIR)


def test_vector_env_takes_the_subset():
    from proteus_env import ProteusVectorEnv

    venv = ProteusVectorEnv(3, benchmark_kwargs=SMALL, models=PAIR, session_length=4)
    obs, _ = venv.reset(seed=1)
    assert obs["p_hat"].shape == (3, 2)
    _, _, _, _, info = venv.step(venv.action_space.sample())
    assert set(info["model"]) <= set(PAIR)


def test_paths_are_not_needed_for_the_synthetic_subset():
    assert not Path("does-not-exist").exists()
    assert load_benchmark("synthetic", n_queries=100, exclude_models="claude-v2").n_models == 10
