"""Known findings in files this suite does not fix: strict xfails, so that each flips to a failure when fixed (then drop it)."""

from __future__ import annotations

import probe_generators as gen
import pytest


@pytest.fixture(scope="module")
def contexts(env_ctx, loader_ctx, cli_ctx):
    return {"env": env_ctx, "loader": loader_ctx, "cli": cli_ctx, "in_process": True}


@pytest.mark.parametrize("finding", [pytest.param(f, id=f.key, marks=pytest.mark.xfail(strict=True, reason=f"{f.where}: {f.what}"))
                                     for f in gen.FINDINGS])
def test_finding(contexts, finding):
    outcome = finding.run(contexts)
    assert outcome.ok, outcome
