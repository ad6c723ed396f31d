"""The per-process benchmark cache, trust of recorded loader options, and bounds set by the data (issue 16)."""

from __future__ import annotations

import os
import tracemalloc

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import proteus_env  # noqa: F401  (registers the environments)
from proteus_env import ProteusRoutingEnv, cached_benchmark
from proteus_env.loading import clear_benchmark_cache, file_identity, recorded_loader_kwargs
from proteus_env.splits import group_codes, make_splits


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROTEUS_DATA_DIR", raising=False)


# ---------------------------------------------------------------------------- the cache follows the file
def test_a_rewritten_file_is_never_served_stale(routerbench_sample, tmp_path):
    frame = pd.read_csv(routerbench_sample)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    first = cached_benchmark("routerbench", data_path=str(path), encoder_kwargs={"dim": 8})
    assert cached_benchmark("routerbench", data_path=str(path), encoder_kwargs={"dim": 8}) is first  # unchanged: cached

    k = first.models.index("claude-v2")
    row = int(np.flatnonzero(frame["claude-v2"].to_numpy() == 0.0)[0])
    text = path.read_text()
    edited = frame.copy()
    edited.loc[row, "claude-v2"] = 1.0  # same size in the file: '0.0' -> '1.0'
    edited.to_csv(path, index=False)
    assert len(path.read_text()) == len(text)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # whatever the clock's resolution
    second = cached_benchmark("routerbench", data_path=str(path), encoder_kwargs={"dim": 8})
    assert second is not first
    assert first.scores[row, k] == 0.0 and second.scores[row, k] == 1.0


def test_a_replaced_file_and_other_lookup_folders_are_reloaded(routerbench_sample, tmp_path, monkeypatch):
    frame = pd.read_csv(routerbench_sample)
    folder = tmp_path / "data" / "routerbench"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "routerbench_0shot.parquet")
    monkeypatch.setenv("PROTEUS_DATA_DIR", str(tmp_path / "data"))
    first = cached_benchmark("routerbench", encoder_kwargs={"dim": 8})
    assert first.n_queries == 365
    other = tmp_path / "other" / "routerbench"
    other.mkdir(parents=True)
    frame.iloc[:300].to_parquet(other / "routerbench_0shot.parquet")
    monkeypatch.setenv("PROTEUS_DATA_DIR", str(tmp_path / "other"))  # the folder searched is part of the key
    assert cached_benchmark("routerbench", encoder_kwargs={"dim": 8}).n_queries == 300
    monkeypatch.setenv("PROTEUS_DATA_DIR", str(tmp_path / "data"))
    replacement = folder / "new.parquet"
    frame.iloc[:200].to_parquet(replacement)
    os.replace(replacement, folder / "routerbench_0shot.parquet")  # a new inode, maybe the same mtime
    assert cached_benchmark("routerbench", encoder_kwargs={"dim": 8}).n_queries == 200


def test_file_identity_and_clearing(tmp_path):
    path = tmp_path / "f.txt"
    assert file_identity(path)[1:] == (-1, -1, -1)
    path.write_text("abc")
    identity = file_identity(path)
    assert identity[0] == str(path.resolve()) and identity[1] == 3
    clear_benchmark_cache()
    a = cached_benchmark("synthetic", n_queries=100)
    assert cached_benchmark("synthetic", n_queries=100) is a
    clear_benchmark_cache()
    assert cached_benchmark("synthetic", n_queries=100) is not a


# ---------------------------------------------------------------------------- recorded options never widen trust
def test_recorded_loader_kwargs_keep_only_what_describes_the_data():
    kept, dropped = recorded_loader_kwargs({
        "n_queries": 3000, "drop_tasks": ["mmlu"], "models": ["a", "b"], "missing": "drop", "variant": "5shot",
        "trust_pickle": True, "cache_dir": "/tmp/x", "data_path": "/etc/passwd", "prices": "/tmp/prices.json",
        "encoder": "sentence-transformers", "encoder_kwargs": {"dim": 16, "model_path": "/tmp/evil", "trust_remote_code": True},
        "something_new": 1,
    })
    assert kept == {"n_queries": 3000, "drop_tasks": ["mmlu"], "models": ["a", "b"], "missing": "drop", "variant": "5shot",
                    "encoder": "sentence-transformers", "encoder_kwargs": {"dim": 16}}
    assert set(dropped) == {"trust_pickle", "cache_dir", "data_path", "prices", "encoder_kwargs.model_path",
                            "encoder_kwargs.trust_remote_code", "something_new"}
    assert recorded_loader_kwargs({"prices": {"m": [1, 2]}})[0] == {"prices": {"m": [1, 2]}}  # a mapping is data
    assert recorded_loader_kwargs(None) == ({}, [])
    assert recorded_loader_kwargs(["trust_pickle"])[0] == {}


# ---------------------------------------------------------------------------- memory is bounded by the data
def test_prompt_disjoint_splits_do_not_scale_with_the_longest_prompt():
    """Before: ``np.unique(groups.astype(str))`` built an N x (longest prompt) array: 405K rows and one
    2-million-character prompt asked for terabytes. Here 60 rows and one 400K-character prompt would
    need 60 x 400K x 4 B = 96 MB that way."""
    n = 60
    task = np.array(["a", "b", "c"] * (n // 3), dtype=object)
    prompts = np.array([f"prompt {i % 45}" for i in range(n)], dtype=object)
    prompts[7] = "x" * 400_000
    tracemalloc.start()
    try:
        splits = make_splits(task, seed=0, groups=prompts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"make_splits peaked at {peak / 1e6:.1f} MB"
    assert sum(v.size for v in splits.values()) == n


def test_group_codes_match_the_sorted_unique_codes_of_the_text():
    rng = np.random.default_rng(0)
    values = np.array([f"p{int(i)}" for i in rng.integers(0, 300, 2000)] + ["é", "Z", "a", "", "10", "9"], dtype=object)
    np.testing.assert_array_equal(group_codes(values), np.unique(values.astype(str), return_inverse=True)[1])
    mixed = np.array([3, "3", None, 2.5, "b"], dtype=object)  # compared as text, like astype(str)
    np.testing.assert_array_equal(group_codes(mixed), np.unique(mixed.astype(str), return_inverse=True)[1])


def test_session_length_is_bounded_by_the_data():
    """Before: ``session_length=10**12`` was accepted and reset() asked numpy for 8 TB."""
    with pytest.raises(ValueError, match=r"`session_length`=1000000000000 is larger than the whole benchmark 'synthetic' \(3000"):
        gym.make("Proteus-Synthetic-v0", benchmark_kwargs={"n_queries": 3000}, session_length=10**12)
    with pytest.raises(ValueError, match=r"session_length"):
        proteus_env.ProteusVectorEnv(2, benchmark_kwargs={"n_queries": 3000}, session_length=10**12)
    env = ProteusRoutingEnv(benchmark_kwargs={"n_queries": 3000}, split="val", session_length=1000)
    with pytest.raises(ValueError, match=r"`session_length`=1000 is larger than the 'val' split it draws sessions from \(450 queries\)"):
        env.reset(seed=0)
    fits = ProteusRoutingEnv(benchmark_kwargs={"n_queries": 3000}, split="val", session_length=450)
    fits.reset(seed=0)


def test_an_argument_the_loader_does_not_take_is_named():
    """Before: ``benchmark_kwargs={'bogus': 1}`` (or ``data_path=`` with the synthetic benchmark) raised a TypeError."""
    with pytest.raises(ValueError, match=r"Benchmark 'synthetic' takes no argument\(s\) \['bogus'\]; it takes \[.*'n_queries'"):
        gym.make("Proteus-Synthetic-v0", benchmark_kwargs={"n_queries": 2000, "bogus": 1})
    with pytest.raises(ValueError, match=r"takes no argument\(s\) \['data_path'\]"):
        gym.make("Proteus-Synthetic-v0", data_path="data.csv")
