"""``ProteusRouter.route`` / ``route_observations`` under generated inputs, τ and confidence levels."""

from __future__ import annotations

import numpy as np
import probe_generators as gen
import pytest
from hypothesis import given, settings


@settings(settings.get_profile("probes"), max_examples=40)
@given(spec=gen.router_specs())
def test_route(router_ctx, spec):
    outcome = gen.run_router(router_ctx, spec)
    assert outcome.ok, outcome


@settings(settings.get_profile("probes"), max_examples=25)
@given(spec=gen.observation_specs())
def test_route_observations(router_ctx, spec):
    outcome = gen.run_observations(router_ctx, spec)
    assert outcome.ok, outcome


# ---------------------------------------------------------------------------- what the probes found in the router (fixed)
def _inputs(ctx, n=3):
    return np.random.default_rng(0).normal(size=(n, ctx.d)), np.full(n, 80)


@pytest.mark.parametrize("confidence", ["abc", 1.5, float("nan"), True, [0.9]])
def test_a_bad_confidence_is_named(router_ctx, confidence):
    embeddings, tokens = _inputs(router_ctx)
    with pytest.raises(ValueError, match="confidence"):
        router_ctx.router.route(embeddings, 0.6, prompt_tokens=tokens, confidence=confidence)


def test_a_confidence_given_as_text_routes(router_ctx):
    # "0.95" used to pass the calibration and crash formatting the warning ("Unknown format code '%'").
    embeddings, tokens = _inputs(router_ctx)
    result = router_ctx.router.route(embeddings, 0.99, prompt_tokens=tokens, confidence="0.95")
    assert np.isfinite(result.expected_cost).all()


def test_deploy_queries_is_named(router_ctx):
    embeddings, tokens = _inputs(router_ctx)
    with pytest.raises(ValueError, match="deploy_queries"):
        router_ctx.router.route(embeddings, 0.6, prompt_tokens=tokens, confidence=0.9, deploy_queries=0)


def test_an_infinite_predicted_cost_is_an_error_naming_the_model(router_ctx):
    embeddings, tokens = _inputs(router_ctx)
    with pytest.raises(ValueError, match=r"predicted USD cost of model '.+' for query \d+ is inf"):
        router_ctx.router.route(embeddings * 1e300, 0.6, prompt_tokens=tokens)


@pytest.mark.parametrize(("queries", "what"), [({"a": 1}, "queries"), (None, "queries"), ("complex", "complex"), ("text", "text")])
def test_queries_that_are_not_real_numbers_are_named(router_ctx, queries, what):
    embeddings, tokens = _inputs(router_ctx)
    if queries == "complex":
        queries = embeddings + 1j
    elif queries == "text":
        queries = np.full(embeddings.shape, "a")
    with pytest.raises(ValueError, match=what):
        router_ctx.router.route(queries, 0.6, prompt_tokens=tokens)


def test_prompt_tokens_that_are_text_are_named(router_ctx):
    embeddings, _ = _inputs(router_ctx)
    with pytest.raises(ValueError, match="prompt_tokens"):
        router_ctx.router.route(embeddings, 0.6, prompt_tokens=np.full(3, "a"))


@pytest.mark.parametrize(("p_value", "c_value", "name"), [(1.5, 0.5, "p_hat"), (-0.1, 0.5, "p_hat"), (0.5, -3e16, "cost_hat"),
                                                          (0.5, 1e30, "cost_hat")])
def test_predictions_outside_the_unit_box_are_refused(router_ctx, p_value, c_value, name):
    p_hat, cost_hat = np.full((2, router_ctx.k), 0.5), np.full((2, router_ctx.k), 0.5)
    p_hat[0, 0], cost_hat[0, 0] = p_value, c_value
    with pytest.raises(ValueError, match=name):
        router_ctx.router.route_observations(p_hat, cost_hat, 0.6)


def test_numbers_in_an_object_array_are_routed(router_ctx):
    p_hat = np.full((2, router_ctx.k), 0.5, dtype=object)
    result = router_ctx.router.route_observations(p_hat, p_hat.copy(), 0.6)
    assert len(result.models) == 2


def test_an_uncertifiable_target_says_why_without_contradiction(router_ctx):
    # It used to say "that needs no validation accuracy from the most accurate τ input down".
    message = router_ctx.router.unreachable_reason(0.999, 0.95, deploy_queries=10)
    assert "needs no validation accuracy" not in message
    assert "cannot be certified at 95% confidence for 10 served queries" in message and "even 100% would not be enough" in message
