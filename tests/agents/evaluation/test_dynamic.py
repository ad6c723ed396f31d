"""Dynamic targets: schedules and window scoring."""

import numpy as np
import pytest

from agents.evaluation.dynamic import SCENARIOS, make_schedules, run_scenario, run_scenarios, stream_rows


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
    with pytest.raises(ValueError, match="tau_high"):
        make_schedules(0.5, 1.5, 100)
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


def test_run_scenarios_gives_one_row_per_router_scenario_window(small_benchmark):
    bench = small_benchmark

    def cheapest(rows, tau):
        return np.zeros(rows.size, dtype=np.int64), None

    rows = run_scenarios({"cheap": cheapest}, bench.split_index("test"), bench.scores, bench.costs, 0.4, 0.6, seed=0,
                         length=200, window=50)
    assert len(rows) == len(SCENARIOS) * 4
    assert {r["scenario"] for r in rows} == set(SCENARIOS) and {r["router"] for r in rows} == {"cheap"}
    assert all(np.isnan(r["mean_mu"]) for r in rows)
