"""A trained artifact with each file removed, truncated, malformed, or holding out-of-range values."""

from __future__ import annotations

import probe_generators as gen
import pytest
from hypothesis import given, settings


@settings(settings.get_profile("probes"), max_examples=30)
@given(spec=gen.artifact_specs())
def test_artifact(artifact_ctx, spec):
    outcome = gen.run_artifact(artifact_ctx, spec)
    assert outcome.ok, outcome


# ---------------------------------------------------------------------------- what the probes found in artifact.py (fixed)
@pytest.mark.parametrize("spec", [
    {"kind": "damage", "file": "routing_head.npz", "how": "truncate", "fraction": 0.5, "resign": True},  # BadZipFile traceback
    {"kind": "damage", "file": "routing_head.npz", "how": "empty", "fraction": 0.0, "resign": True},  # EOFError traceback
    {"kind": "npz", "edit": ("cost_sd", "nan"), "resign": True},  # routed with a NaN expected cost
    {"kind": "npz", "edit": ("feature_scale", "nan"), "resign": True},  # refused at route time without naming the file
    {"kind": "npz", "edit": ("quality_prior", "shape"), "resign": True},  # a numpy broadcasting error at route time
    {"kind": "npz", "edit": ("cost_bias", "huge"), "resign": True},  # routed with an inf expected cost
    {"kind": "value", "edit": "policy net huge", "resign": True},  # asked torch for 4 TB
    {"kind": "value", "edit": "policy net negative", "resign": True},  # RuntimeError traceback
    {"kind": "value", "edit": "policy hidden huge", "resign": True},  # allocated 1.3 GB before failing
    {"kind": "value", "edit": "policy lambda high inf", "resign": True},  # λ unbounded: any λ table passed
    {"kind": "value", "edit": "policy lambda high 1e6", "resign": True},
    {"kind": "value", "edit": "calibration n_val list", "resign": True},  # message did not name n_val
    {"kind": "weights", "edit": "nan", "resign": True},  # refused only when routing, without naming policy.pt
    {"kind": "value", "edit": "lambda text", "resign": True},  # "0.1" read from JSON as λ = 0.1
], ids=lambda spec: str(spec.get("edit") or f"{spec['file']} {spec['how']}"))
def test_damage_found_by_the_probes_is_a_clear_error(artifact_ctx, spec):
    outcome = gen.run_artifact(artifact_ctx, spec)
    assert outcome.ok, outcome
