"""The ``proteus`` CLI, run as a subprocess, with missing, malformed and contradictory arguments."""

from __future__ import annotations

import concurrent.futures

import probe_generators as gen
import pytest

#: Subprocesses of the default run (a few seconds each; the benchmark script runs many more).
N_SUBPROCESSES = 4


def test_cli_subprocesses(cli_ctx):
    specs = gen.draw(gen.cli_specs(), N_SUBPROCESSES)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda spec: gen.run_cli(cli_ctx, spec), specs))
    bad = [str(o) for o in outcomes if not o.ok]
    assert not bad, "\n".join(bad)


def _case(argv, expect=gen.INVALID, names=()):
    return {"argv": argv, "expect": expect, "names": names}


# ---------------------------------------------------------------------------- what the probes found in the CLI (fixed), in process
@pytest.mark.parametrize("spec", [
    # prompts next to --embeddings were silently ignored
    _case(("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/emb.npy", "--tokens", "{dir}/tok.npy", "a prompt"),
          names=("prompts",)),
    # complex embeddings lost their imaginary part with only a NumPy warning; huge ones printed inf USD
    _case(("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/complexemb.npy", "--tokens", "{dir}/tok.npy"),
          names=("complex",)),
    _case(("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/hugeemb.npy", "--tokens", "{dir}/tok.npy"),
          names=("cost",)),
    # --fixed-mu-only trains nothing: --timesteps / --out were silently ignored
    _case(("demo", "--fixed-mu-only", "--timesteps", "100"), names=("--timesteps",)),
    _case(("demo", "--fixed-mu-only", "--out", "{out}"), names=("--out",)),
    _case(("demo", "--fixed-mu-only", "--seed", "-1"), names=("--seed",)),
    # a FileExistsError traceback from the figures; a TypeError traceback from the loader
    _case(("eval", "--baselines-only", "--out", "{dir}/afile", "--no-dynamic", "--no-predictive"), names=("afile",)),
    _case(("eval", "--baselines-only", "--out", "{out}", "--benchmark-arg", "bogus=1", "--no-progress"), names=("bogus",)),
], ids=lambda spec: " ".join(spec["argv"][:1] + spec["argv"][-3:]))
def test_cli_findings_are_clear_errors(cli_ctx, spec):
    outcome = gen.run_cli(cli_ctx, spec, in_process=True)
    assert outcome.outcome == "clear error", outcome
