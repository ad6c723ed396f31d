"""`proteus eval`: seeds, artifact checks, the τ grid and feasibility, baselines only, dynamic targets."""

import json
import shutil

import numpy as np
import pytest

from agents.cli import main
from agents.cli.eval import parse_margin
from agents.evaluation.dynamic import SCENARIOS, make_schedules, run_scenario, stream_rows
from agents.evaluation.run import RouterArtifact, evaluate, find_artifacts, resolve_seeds

SMALL = {"n_queries": 3000}
FAST = {"n_boot": 100, "progress": False}


@pytest.fixture(scope="module")
def artifacts(tiny_routers):
    """A parent directory holding two tiny trained routers, on split seeds 0 and 1."""
    return tiny_routers


# ---------------------------------------------------------------------------- artifacts and seeds
def test_artifacts_are_found_in_a_parent_directory_with_their_seeds(artifacts):
    found = find_artifacts([artifacts])
    assert [a.seed for a in found] == [0, 1]
    assert all(a.benchmark == "synthetic" and a.benchmark_kwargs == SMALL for a in found)
    assert [a.seed for a in find_artifacts([artifacts / "seed1", artifacts / "seed0"])] == [0, 1]


def test_seeds_follow_the_routers_and_must_agree(artifacts):
    found = find_artifacts([artifacts])
    assert resolve_seeds(found, None) == [0, 1]
    assert resolve_seeds(found, 2) == [0, 1]
    assert resolve_seeds(None, 3) == [0, 1, 2]
    assert resolve_seeds(None, None) == [0]
    with pytest.raises(ValueError, match="disagrees with the routers"):
        resolve_seeds(found, 3)
    with pytest.raises(ValueError, match="disagrees with the routers"):
        evaluate([artifacts / "seed0"], seeds=[1], **FAST)
    with pytest.raises(ValueError, match="`seeds`"):
        resolve_seeds(None, 0)


@pytest.mark.parametrize(("extra", "message"), [
    (["--seeds", "3", "--no-progress"], "disagrees with the routers"),
    (["--baselines-only"], "exclude each other"),
    (None, "--router"),
])
def test_cli_rejects_contradictory_options(artifacts, tmp_path, capsys, extra, message):
    argv = ["eval", "--out", str(tmp_path)] + ([] if extra is None else ["--router", str(artifacts), *extra])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("proteus eval: error:") and message in err and "Traceback" not in err


def test_two_artifacts_of_one_seed_are_refused(artifacts, tmp_path):
    shutil.copytree(artifacts / "seed0", tmp_path / "copy")
    with pytest.raises(ValueError, match="split seed 0"):
        find_artifacts([artifacts / "seed0", tmp_path / "copy"])


def test_a_path_that_is_no_artifact_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory|does not exist"):
        find_artifacts([tmp_path / "missing"])
    with pytest.raises(FileNotFoundError, match="neither"):
        find_artifacts([tmp_path])


def test_an_artifact_whose_head_does_not_match_raises(artifacts, tmp_path):
    target = tmp_path / "tampered"
    shutil.copytree(artifacts / "seed0", target)
    with np.load(target / "routing_head.npz") as arrays:
        values = dict(arrays)
    values["correct_weights"] = values["correct_weights"] + 0.01
    np.savez(target / "routing_head.npz", **values)
    with pytest.raises(ValueError, match=r"routing head does not match.*split seed 0.*correct_weights"):
        evaluate([target], predictive=False, dynamic=False, **FAST)


def test_an_artifact_trained_on_other_data_raises(artifacts, tmp_path):
    target = tmp_path / "other"
    shutil.copytree(artifacts / "seed1", target)
    identity = json.loads((target / "benchmark.json").read_text())
    identity["env_kwargs"]["benchmark_kwargs"] = {"n_queries": 2500}
    (target / "benchmark.json").write_text(json.dumps(identity))
    assert RouterArtifact.read(target).benchmark_kwargs == {"n_queries": 2500}
    with pytest.raises(ValueError, match="fingerprint"):
        evaluate([target], predictive=False, dynamic=False, **FAST)


def test_margin_parsing():
    assert parse_margin("none") is None and parse_margin("0.95") == 0.95
    for bad in ("1.5", "high"):
        with pytest.raises(ValueError, match="--margin"):
            parse_margin(bad)
    with pytest.raises(ValueError, match="`margins`"):
        evaluate(None, benchmark_kwargs=SMALL, margins=(2.0,), **FAST)


# ---------------------------------------------------------------------------- grid and feasibility
def test_baselines_only_default_grid_is_feasible_and_user_grid_is_flagged():
    result = evaluate(None, benchmark_kwargs=SMALL, seeds=2, predictive=False, dynamic=False, **FAST)
    assert result.seeds == [0, 1] and result.routers == []
    assert result.results["feasible"].all()
    low, high = result.ranges["low"].max(), result.ranges["high"].min()
    assert low - 1e-9 <= result.taus.min() and result.taus.max() <= high + 1e-9 and result.taus.size == 11
    assert "proteus" not in set(result.results["family"])

    flagged = evaluate(None, benchmark_kwargs=SMALL, seeds=1, taus=[0.05, 0.5, 0.99], predictive=False, dynamic=False, **FAST)
    feasible = flagged.results.drop_duplicates("tau").set_index("tau")["feasible"]
    assert feasible.to_dict() == {0.05: False, 0.5: True, 0.99: False}
    carrot = flagged.aggregates.set_index("router").loc["carrot"]
    assert carrot["n_pairs"] == 1  # aggregates use the feasible (τ, seed) pairs only
    assert len(flagged.results) == flagged.results["router"].nunique() * 3


def test_paper_targets_are_infeasible_on_the_routerbench_sample(routerbench_sample, tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROTEUS_DATA_DIR", raising=False)
    result = evaluate(None, benchmark="routerbench", data_path=routerbench_sample, seeds=1, taus=[0.5, 0.85, 0.9, 0.95],
                      dynamic=False, **FAST)
    assert result.benchmark["name"] == "routerbench" and result.benchmark["n_queries"] == 365
    feasible = result.results.drop_duplicates("tau").set_index("tau")["feasible"]
    assert feasible.loc[0.5] and not feasible.loc[[0.85, 0.9, 0.95]].any()
    assert result.ranges["high"].max() < 0.85  # the achievable maximum with realized correctness
    assert {"knn", "mlp", "carrot", "omnirouter", "omnirouter_uncalibrated", "zero_router"} <= set(result.results["router"])


# ---------------------------------------------------------------------------- dynamic targets
def test_schedules_step_drift_and_cycle():
    schedules = make_schedules(0.5, 0.7, 1000)
    assert set(schedules) == set(SCENARIOS)
    step = schedules["step"]
    assert np.all(step[:500] == 0.5) and np.all(step[500:] == 0.7)
    drift = schedules["drift"]
    assert drift[0] == 0.5 and drift[-1] == 0.7 and np.all(np.diff(drift) >= 0)
    cyclic = schedules["cyclic"]
    assert cyclic.min() == pytest.approx(0.5) and cyclic.max() == pytest.approx(0.7)
    assert np.sum(np.diff(np.sign(np.diff(cyclic))) != 0) >= 3  # goes up and down
    for values in schedules.values():
        assert np.allclose(values / 0.005, np.round(values / 0.005))
    with pytest.raises(ValueError, match="tau_low"):
        make_schedules(0.8, 0.7, 100)
    with pytest.raises(ValueError, match="length"):
        make_schedules(0.5, 0.7, 1)


def test_run_scenario_routes_each_tau_as_one_batch(small_benchmark):
    bench = small_benchmark
    rows = stream_rows(bench.split_index("test"), 400, seed=0)
    schedule = make_schedules(0.4, 0.6, 400)["step"]
    calls = []

    def route(batch_rows, tau):
        calls.append((batch_rows.size, tau))
        best = np.argmax(bench.scores[batch_rows], axis=1) if tau > 0.5 else np.zeros(batch_rows.size, dtype=np.int64)
        return best, np.full(batch_rows.size, tau)

    run = run_scenario(route, rows, schedule, bench.scores, bench.costs, window=100, scenario="step")
    assert sorted(calls) == [(200, 0.4), (200, 0.6)]
    assert len(run.windows) == 4 and 0.0 <= run.share_met <= 1.0
    assert [w["tau_mean"] for w in run.windows] == pytest.approx([0.4, 0.4, 0.6, 0.6])
    assert all(w["met"] for w in run.windows[2:])  # the per-query best model meets 0.6
    assert run.windows[0]["mean_mu"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="window"):
        run_scenario(route, rows, schedule, bench.scores, bench.costs, window=500)
