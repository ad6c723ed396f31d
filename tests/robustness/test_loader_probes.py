"""The RouterBench loaders on mutated copies of the real 365-prompt sample."""

from __future__ import annotations

import probe_generators as gen
from hypothesis import given, settings


@settings(settings.get_profile("probes"), max_examples=20)
@given(spec=gen.loader_specs().filter(lambda s: s["entry"] != "load_routerbench" and s["op"] != "huge_prompt"))
def test_loaders(loader_ctx, spec):
    outcome = gen.run_loader(loader_ctx, spec)
    assert outcome.ok, outcome


@settings(settings.get_profile("probes"), max_examples=3)
@given(spec=gen.loader_specs().filter(lambda s: s["entry"] == "load_routerbench" and s["op"] in ("drop_column", "set_cell", "duplicate_rows")))
def test_load_routerbench_with_embeddings(loader_ctx, spec):
    outcome = gen.run_loader(loader_ctx, spec)
    assert outcome.ok, outcome
