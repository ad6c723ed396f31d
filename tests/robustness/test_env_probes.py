"""The env, its constructor and the vector env under generated bad and unusual inputs."""

from __future__ import annotations

import probe_generators as gen
from hypothesis import given, settings


@settings(settings.get_profile("probes"), max_examples=25)
@given(spec=gen.env_reset_specs())
def test_env_reset(env_ctx, spec):
    outcome = gen.run_env_reset(env_ctx, spec)
    assert outcome.ok, outcome


@settings(settings.get_profile("probes"), max_examples=30)
@given(spec=gen.env_step_specs())
def test_env_step(env_ctx, spec):
    outcome = gen.run_env_step(env_ctx, spec)
    assert outcome.ok, outcome


@settings(settings.get_profile("probes"), max_examples=20)
@given(kwargs=gen.env_constructor_specs())
def test_env_constructor(env_ctx, kwargs):
    outcome = gen.run_env_constructor(env_ctx, kwargs)
    assert outcome.ok, outcome


@settings(settings.get_profile("probes"), max_examples=20)
@given(spec=gen.vector_specs())
def test_vector_env(env_ctx, spec):
    outcome = gen.run_vector(env_ctx, spec)
    assert outcome.ok, outcome


def test_non_finite_lambda_edges_are_refused(env_ctx):
    env = env_ctx.make()
    outcome = gen.judge("env", "set_lambda_table", lambda: env.unwrapped.set_lambda_table([0.1, 0.2], [-float("inf"), 0.5, float("inf")]),
                        expect=gen.INVALID, names=("bin_edges",))
    assert outcome.outcome == "clear error", outcome


def test_a_boolean_lambda_is_refused(env_ctx):
    # lambda_init=True used to be read as λ = 1 (the one validation layer now refuses booleans, text and complex numbers).
    outcome = gen.judge("env constructor", "lambda_init=True", lambda: env_ctx.make(lambda_init=True), expect=gen.INVALID, names=("values",))
    assert outcome.outcome == "clear error", outcome
