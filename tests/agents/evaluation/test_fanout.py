"""``proteus eval --ray``: the seeds fan out over Ray and merge into the same tables as the sequential path."""

from __future__ import annotations

import pandas as pd
import pytest

from agents.evaluation.run import EvalSettings, evaluate

TINY = dict(benchmark="synthetic", benchmark_kwargs={"n_queries": 1500}, seeds=2, n_taus=4, predictive=False, n_boot=20,
            stream_length=200, window=50, session_length=100, progress=False)


def test_ray_and_sequential_paths_give_identical_tables(ray_instance):
    sequential = evaluate(None, EvalSettings(**TINY))
    fanned = evaluate(None, EvalSettings(**TINY, ray=True))
    assert fanned.seeds == sequential.seeds == [0, 1]
    for name in ("results", "aggregates", "summary", "dynamic", "sessions", "session_summary", "ranges", "fixed_models", "calibration"):
        pd.testing.assert_frame_equal(getattr(fanned, name), getattr(sequential, name), obj=name)
    assert list(fanned.taus) == list(sequential.taus)


def test_trained_routers_fan_out_one_worker_per_artifact(ray_instance, tiny_routers, tmp_path):
    options = dict(n_taus=3, predictive=False, dynamic=False, sessions=False, n_boot=20, progress=False)
    sequential = evaluate(tiny_routers, **options)
    fanned = evaluate(tiny_routers, **options, ray=True, out_dir=tmp_path / "report")
    pd.testing.assert_frame_equal(fanned.results, sequential.results)
    pd.testing.assert_frame_equal(fanned.summary, sequential.summary)
    assert (tmp_path / "report" / "report.md").is_file()


def test_a_seed_error_comes_back_as_itself(ray_instance, tmp_path):
    settings = EvalSettings(benchmark="routerbench", data_path=str(tmp_path / "missing.csv"), seeds=1, progress=False)
    with pytest.raises(Exception) as sequential:
        evaluate(None, settings)
    with pytest.raises(type(sequential.value), match="missing.csv"):  # the seed's own error, not Ray's wrapper
        evaluate(None, settings, ray=True)


def test_proteus_eval_ray_writes_the_same_results_csv(ray_instance, tmp_path):
    from agents.cli import main

    common = ["eval", "--baselines-only", "--seeds", "2", "--benchmark-arg", "n_queries=1500", "--n-taus", "3", "--no-predictive",
              "--no-dynamic", "--no-sessions", "--n-boot", "20", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "sequential")]) == 0
    assert main([*common, "--ray", "--out", str(tmp_path / "ray")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ray" / "results.csv"), pd.read_csv(tmp_path / "sequential" / "results.csv"))
