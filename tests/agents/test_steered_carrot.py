"""CARROT sessions, static and PI-steered on the revealed running accuracy (issue 12)."""

import numpy as np
import pytest

from agents.baselines import CalibrationSettings, CarrotRouter, SteeredCarrotRouter
from proteus_env import fit_routing_head, make_synthetic_benchmark
from proteus_env.session import PIController


@pytest.fixture(scope="module")
def setting():
    bench = make_synthetic_benchmark(n_queries=3000, seed=0)
    return bench, fit_routing_head(bench, seed=0)


def test_static_session_routes_like_carrot_and_keeps_the_books(setting):
    bench, fit = setting
    carrot = CarrotRouter(bench, fit)
    rows = bench.split_index("test")[:50]
    session = carrot.session(0.6, length=50)
    decisions = [session.route_row(int(r)) for r in rows]
    np.testing.assert_array_equal([d.index for d in decisions], carrot.route(rows, 0.6))
    assert session.features["progress"] == 1.0
    assert session.ledger.usd_sum == pytest.approx(sum(bench.costs[r, d.index] for r, d in zip(rows, decisions, strict=True)))
    session.observe(3, 1.0)
    assert session.features["running_accuracy"] == 1.0 and session.features["revealed"] == pytest.approx(1 / 50)


def test_pi_steering_pays_for_accuracy_below_the_floor_and_saves_above(setting):
    bench, fit = setting
    steered = SteeredCarrotRouter(bench, fit, kp=0.5, ki=0.01, max_offset=0.15)
    assert steered.name == "carrot_pi"
    rows = bench.split_index("test")
    behind, ahead = steered.session(0.6, length=100), steered.session(0.6, length=100)
    for session, outcome in ((behind, 0.0), (ahead, 1.0)):
        for j in range(20):
            decision = session.route_row(int(rows[j]))
            session.observe(decision.query_id, outcome)
    m_behind, target_behind = behind.current_tradeoff()
    m_ahead, target_ahead = ahead.current_tradeoff()
    assert target_behind == pytest.approx(0.6 + 0.15) and target_ahead == pytest.approx(0.6 - 0.15)  # saturated either way
    assert m_behind < steered.calibrate(0.6).value < m_ahead
    assert steered.tradeoff_for_target(0.6) == steered.calibrate(0.6).value  # the same rule as the static calibration


def test_steered_carrot_takes_the_same_settings_and_rejects_bad_gains(setting):
    bench, fit = setting
    certified = SteeredCarrotRouter(bench, fit, CalibrationSettings(confidence=0.95, deploy_queries=500))
    assert certified.name == "carrot_pi[confidence=0.95]" and certified.session(0.5).base_target > 0.5
    with pytest.raises(ValueError, match="kp"):
        SteeredCarrotRouter(bench, fit, kp=-1.0)
    with pytest.raises(ValueError, match="ki"):
        SteeredCarrotRouter(bench, fit, ki=float("nan"))


def test_pi_controller_clips_without_winding_up():
    pi = PIController(1.0, 0.5, low=-0.1, high=0.1)
    for _ in range(50):
        pi.update(1.0)
    assert pi.output == 0.1 and pi.integral < 1.0  # the integral stopped growing at saturation
    assert pi.update(-0.2) < 0.1  # so it comes back at once
