"""Units of `proteus serve` without HTTP: the configuration, tenant state, masked routing, batching."""

from __future__ import annotations

import asyncio
import math
import warnings

import numpy as np
import pytest

from agents.serving.config import ControllerConfig, load_config, parse_config
from agents.serving.routing import RouteBatcher, ServingRouter
from agents.serving.tenants import TenantState

ISSUE_EXAMPLE = """
upstreams:
  gpt-4-1106-preview:
    base_url: http://127.0.0.1:9001/v1
    model: gpt-4            # the id sent upstream
    api_key_env: OPENAI_API_KEY   # optional
"""


def test_the_issue_format_parses_exactly(tmp_path):
    path = tmp_path / "upstreams.yaml"
    path.write_text(ISSUE_EXAMPLE)
    config = load_config(path)
    (upstream,) = config.upstreams.values()
    assert (upstream.name, upstream.base_url, upstream.model, upstream.api_key_env) == ("gpt-4-1106-preview", "http://127.0.0.1:9001/v1",
                                                                                        "gpt-4", "OPENAI_API_KEY")
    assert config.tenants == {} and config.default_tenant is None
    assert not hasattr(upstream, "key")  # the key is read from the environment when needed, never kept


def test_tenants_and_controller_settings_parse_with_overrides():
    config = parse_config({"upstreams": {"m": {"base_url": "http://127.0.0.1:1/v1"}},
                           "tenants": {"acme": {"tau": 0.8, "margin": 0.95, "controller": {"kind": "pid", "max_boost": 0.1}},
                                       "beta": {"tau": 0.5, "confidence": "none"}},
                           "default_tenant": "beta", "controller": {"eta": 0.3, "update_every": 10}})
    assert config.upstreams["m"].model == "m"  # the id sent upstream defaults to the benchmark name
    acme, beta = config.tenants["acme"], config.tenants["beta"]
    assert (acme.tau, acme.confidence, acme.controller.kind, acme.controller.max_boost, acme.controller.eta) == (0.8, 0.95, "pid", 0.1, 0.3)
    assert (beta.confidence, beta.controller.kind, beta.controller.update_every) == (None, "gradient", 10)
    assert config.default_tenant == "beta"


@pytest.mark.parametrize(("data", "match"), [
    ({}, "upstreams"),
    ({"upstreams": {}}, "upstreams"),
    ({"upstreams": {"m": {"base_url": "ftp://x"}}}, "base_url"),
    ({"upstreams": {"m": {"base_url": "http://h/v1", "api_key": "sk-in-the-file"}}}, "unknown keys"),
    ({"upstreams": {"m": {"base_url": "http://h/v1", "timeout": 0}}}, "timeout"),
    ({"upstreams": {"m": {"base_url": "http://h/v1"}}, "tenants": {"a": {"tau": 1.5}}}, "tau"),
    ({"upstreams": {"m": {"base_url": "http://h/v1"}}, "tenants": {"a": {}}}, "tau"),
    ({"upstreams": {"m": {"base_url": "http://h/v1"}}, "tenants": {"a": {"tau": 0.5, "confidence": 1.2}}}, "confidence"),
    ({"upstreams": {"m": {"base_url": "http://h/v1"}}, "tenants": {"a": {"tau": 0.5, "confidence": 0.9, "margin": 0.9}}}, "not both"),
    ({"upstreams": {"m": {"base_url": "http://h/v1"}}, "tenants": {"a b": {"tau": 0.5}}}, "tenant names"),
    ({"upstreams": {"m": {"base_url": "http://h/v1"}}, "default_tenant": "nobody"}, "default_tenant"),
    ({"upstreams": {"m": {"base_url": "http://h/v1"}}, "controller": {"kind": "bang-bang"}}, "kind"),
    ({"upstreams": {"m": {"base_url": "http://h/v1"}}, "controller": {"update_every": 0}}, "update_every"),
    ({"upstreams": {"m": {"base_url": "http://h/v1"}}, "routers": {}}, "unknown keys"),
])
def test_invalid_configurations_are_refused_naming_the_key(data, match):
    with pytest.raises(ValueError, match=match):
        parse_config(data)


def test_missing_or_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("upstreams: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(bad)


def test_api_key_comes_from_the_named_variable(monkeypatch):
    config = parse_config({"upstreams": {"m": {"base_url": "http://h/v1", "api_key_env": "PROTEUS_TEST_UNSET_KEY"}}})
    monkeypatch.delenv("PROTEUS_TEST_UNSET_KEY", raising=False)
    with pytest.raises(ValueError, match="PROTEUS_TEST_UNSET_KEY"):
        config.upstreams["m"].api_key()
    monkeypatch.setenv("PROTEUS_TEST_UNSET_KEY", "sk-1")
    assert config.upstreams["m"].api_key() == "sk-1"


# ---------------------------------------------------------------------- tenant state
def _tenant(**controller):
    config = parse_config({"upstreams": {"m": {"base_url": "http://h/v1"}}, "tenants": {"t": {"tau": 0.8, "controller": controller}}})
    return TenantState.new("t", config.tenants["t"])


def test_running_accuracy_is_an_exponential_average_and_the_boost_follows_the_error():
    state = _tenant(update_every=4, eta=0.5, max_boost=0.2, half_life=1e9)  # half-life so long the average is the plain mean
    assert math.isnan(state.running_accuracy) and state.boost == 0.0
    missed = state.with_feedback([(0.0, 0.8, None)] * 3)
    assert state.feedback_count == 0  # the receiver is unchanged
    assert missed.feedback_count == 3 and missed.running_accuracy == pytest.approx(0.0) and missed.updates == 0 and missed.boost == 0.0
    missed = missed.with_feedback([(1.0, 0.8, 0.01)])  # 4th item: one update, error = 0.8 - 0.25
    assert missed.updates == 1 and missed.running_accuracy == pytest.approx(0.25)
    assert missed.boost == pytest.approx(min(0.2, 0.5 * 0.55)) and missed.served_tau(0.8) == pytest.approx(1.0)
    assert missed.realized_cost_usd == pytest.approx(0.01)
    recovered = missed.with_feedback([(1.0, 0.8, None)] * 40)  # over-served: the boost comes back down to 0
    assert recovered.boost == pytest.approx(0.0) and recovered.served_tau(0.8) == pytest.approx(0.8)


def test_half_life_weights_recent_feedback_more():
    state = _tenant(half_life=10.0).with_feedback([(0.0, 0.8, None)] * 100 + [(1.0, 0.8, None)] * 10)
    assert state.running_accuracy == pytest.approx(0.5, abs=0.01)  # the last 10 items weigh as much as everything before
    assert state.mean_accuracy == pytest.approx(10 / 110)


def test_state_round_trips_and_a_mismatched_controller_restarts_with_a_warning():
    state = _tenant(kind="pid", update_every=2, max_boost=0.3).with_feedback([(0.0, 0.8, None)] * 6)
    assert state.boost > 0
    restored, warning = TenantState.from_dict("t", state.config, state.to_dict())
    assert warning is None and restored.to_dict() == state.to_dict()
    other = _tenant(kind="gradient")
    moved, warning = TenantState.from_dict("t", other.config, state.to_dict())
    assert warning and "restarts" in warning and moved.boost == 0.0 and moved.feedback_count == 6


def test_anonymous_pseudo_tenant_tracks_accuracy_without_a_controller():
    state = TenantState.new("-", None, ControllerConfig(half_life=1e9)).with_feedback([(1.0, 0.3, None), (0.0, 0.9, None)])
    assert state.controller is None and state.boost == 0.0 and state.running_accuracy == pytest.approx(0.5)
    assert state.served_tau(0.7) == 0.7


# ---------------------------------------------------------------------- routing
def test_serving_router_matches_the_router_when_every_model_is_served(rb_router, rb_models, prompts):
    serving = ServingRouter(rb_router, rb_models)
    for tau in (0.2, 0.6, 0.9):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the router warns about unreachable targets: not under test here
            expected = rb_router.route(prompts, tau)
        got = serving.decide_texts(prompts, [tau] * len(prompts), [None] * len(prompts))
        assert [d.model for d in got] == list(expected.models)
        np.testing.assert_allclose([d.mu for d in got], expected.mu, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose([d.expected_cost_usd for d in got], expected.expected_cost, rtol=1e-6)
        assert {d.tau_input for d in got} == {expected.tau_input} and {d.reachable for d in got} == {expected.reachable}


def test_models_without_an_upstream_are_never_chosen(rb_router, rb_models, prompts):
    everything = ServingRouter(rb_router, rb_models)
    favourite = max(set(d.model for tau in (0.2, 0.9) for d in everything.decide_texts(prompts, [tau] * 30, [None] * 30)))
    allowed = [m for m in rb_models if m != favourite][-2:]  # mask out a model the router does choose
    serving = ServingRouter(rb_router, allowed)
    for tau in (0.0, 0.3, 0.6, 0.9, 1.0):
        assert {d.model for d in serving.decide_texts(prompts, [tau] * 30, [None] * 30)} <= set(allowed)
    with pytest.raises(ValueError, match="cannot be served"):
        ServingRouter(rb_router, ["not-a-model"])


def test_per_query_targets_in_one_batch(rb_router, rb_models, prompts):
    serving = ServingRouter(rb_router, rb_models)
    taus = [0.1, 0.9] * 15
    mixed = serving.decide_texts(prompts, taus, [None] * 30)
    for tau in (0.1, 0.9):
        rows = [i for i, t in enumerate(taus) if t == tau]
        alone = serving.decide_texts([prompts[i] for i in rows], [tau] * len(rows), [None] * len(rows))
        assert [mixed[i].model for i in rows] == [d.model for d in alone]
    low, high = serving.calibrated(0.1, None)[0], serving.calibrated(0.9, None)[0]
    assert low <= high  # the calibration map is monotone
    assert serving.calibrated(0.6, 0.95)[0] >= serving.calibrated(0.6, None)[0]  # a confidence level never lowers the input


def test_batcher_routes_concurrent_requests_together(rb_router, rb_models, prompts):
    serving = ServingRouter(rb_router, rb_models)
    batcher = RouteBatcher(serving)

    async def run():
        return await asyncio.gather(*(batcher.route(p, 0.6, None) for p in prompts))

    decisions = asyncio.run(asyncio.wait_for(run(), timeout=30))
    batcher.close()
    assert batcher.batches == 2 and batcher.routed == len(prompts)  # the first alone at once, the 29 others together
    assert [d.model for d in decisions] == [d.model for d in serving.decide_texts(prompts, [0.6] * 30, [None] * 30)]



def test_batcher_hands_a_routing_error_to_every_waiting_request(rb_router, rb_models, prompts, monkeypatch):
    serving = ServingRouter(rb_router, rb_models)
    batcher = RouteBatcher(serving)

    def broken(*args, **kwargs):
        raise ValueError("broken encoder")

    monkeypatch.setattr(serving, "decide_texts", broken)

    async def run():
        return await asyncio.gather(*(batcher.route(p, 0.6, None) for p in prompts[:3]), return_exceptions=True)

    results = asyncio.run(asyncio.wait_for(run(), timeout=30))
    batcher.close()
    assert all(isinstance(r, ValueError) for r in results)
