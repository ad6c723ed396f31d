"""Per-session compliance of ``proteus eval`` (issue 12)."""

import numpy as np
import pytest

from agents.evaluation.run import EvalSettings, evaluate
from agents.evaluation.sessions import (
    SESSION_COLUMNS,
    SessionProtocol,
    StreamingContender,
    serve_streaming,
    session_plan,
    tau_paths,
)
from proteus_env import make_synthetic_benchmark

QUICK = {"benchmark_kwargs": {"n_queries": 3000}, "seeds": 1, "n_taus": 3, "predictive": False, "dynamic": False, "n_boot": 20,
         "progress": False}


@pytest.mark.parametrize(
    ("options", "name"),
    [({"session_length": 1}, "session_length"), ({"feedback_delay": float("nan")}, "feedback_delay"),
     ({"feedback_delay": -2}, "feedback_delay"), ({"feedback_rate": 1.5}, "feedback_rate"), ({"tau_schedule": "sine"}, "tau_schedule")],
)
def test_bad_session_options_are_refused_by_name(options, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        EvalSettings(**options)


def test_plan_cuts_the_test_split_into_disjoint_sessions_and_draws_the_reveals():
    bench = make_synthetic_benchmark(n_queries=3000, seed=0)
    test = bench.split_index("test")
    plan, revealed = session_plan(bench, test, SessionProtocol(length=100, feedback_rate=0.3), seed=0)
    assert plan.shape == (test.size // 100, 100) and np.unique(plan).size == plan.size and np.isin(plan, test).all()
    assert 0.2 < revealed.mean() < 0.4
    drift, _ = session_plan(bench, test, SessionProtocol(length=100, task_drift=True), seed=0)
    assert drift.shape == plan.shape and np.isin(drift, test).all()
    (label, path), = tau_paths([0.5, 0.6], SessionProtocol(length=10, tau_schedule="step"), 0.3, 0.8)
    assert path.tolist() == [0.4] * 5 + [0.7] * 5 and label == pytest.approx(0.55)
    assert [label for label, _ in tau_paths([0.5, 0.6], SessionProtocol(length=10), 0.3, 0.8)] == [0.5, 0.6]


class _Recorder:
    def __init__(self):
        self.seen, self.t = [], 0

    def set_tau(self, tau):
        pass

    def observe(self, query_id, score):
        self.seen.append((self.t, query_id))


def test_outcomes_arrive_delay_queries_late_and_only_when_revealed():
    bench = make_synthetic_benchmark(n_queries=3000, seed=0)
    recorders = []

    def open_session(tau):
        recorders.append(_Recorder())
        return recorders[-1]

    def step(sessions, rows):
        for session in sessions:
            session.t += 1
        return np.zeros(len(sessions), dtype=np.int64)

    plan = np.tile(bench.split_index("test")[:8], (2, 1))
    revealed = np.array([[True] * 8, [True, False] * 4])
    serve_streaming(StreamingContender("x", open_session, step), bench, plan, revealed, np.full(plan.shape, 0.5), delay=3)
    assert recorders[0].seen == [(t + 4, t) for t in range(5)]  # query j is observed after query j + 3 was routed
    assert recorders[1].seen == [(t + 4, t) for t in range(0, 5, 2)]


def test_evaluate_reports_per_session_compliance_for_every_router(tmp_path):
    result = evaluate(None, **QUICK, confidences=(None, 0.95), session_length=100, feedback_delay=5, feedback_rate=0.5,
                      out_dir=tmp_path)
    summary = result.session_summary.set_index("router")
    assert {"carrot", "carrot_pi", "carrot[confidence=0.95]", "carrot_pi[confidence=0.95]", "oracle", "omnirouter"} <= set(summary.index)
    assert summary.loc["oracle", "compliance"] == 1.0 and summary["compliance"].between(0, 1).all()
    assert summary.loc["carrot[confidence=0.95]", "compliance"] >= summary.loc["carrot", "compliance"]
    assert list(result.sessions.columns) == list(SESSION_COLUMNS) and set(result.sessions["tau"]) == set(result.taus)
    assert result.session_protocol == {"length": 100, "feedback_delay": 5, "feedback_rate": 0.5, "tau_schedule": "constant",
                                       "task_drift": False}
    assert (tmp_path / "sessions.csv").is_file() and "Per-session compliance" in (tmp_path / "report.md").read_text()
    scheduled = evaluate(None, **QUICK, session_length=100, tau_schedule="cyclic", task_drift=True)
    assert scheduled.sessions["tau"].nunique() == 1 and scheduled.session_protocol["task_drift"]
    assert evaluate(None, **QUICK, sessions=False).session_summary.empty
