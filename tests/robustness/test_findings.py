"""Findings of the probe suite: open ones as strict xfails (each flips to a failure when fixed), fixed ones as regression tests."""

from __future__ import annotations

from pathlib import Path

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


@pytest.mark.parametrize("finding", [pytest.param(f, id=f.key) for f in gen.FIXED_FINDINGS])
def test_fixed_finding_stays_fixed(contexts, finding):
    outcome = finding.run(contexts)
    assert outcome.ok, outcome


def test_earlier_findings_are_clear_errors(tmp_path, capsys):
    """Found by the probes and fixed: each now names the bad input."""
    import pandas as pd
    sample = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "routerbench" / "routerbench_0shot_sample365.csv"

    from agents.cli import main
    from agents.proteus.config import load_train_config
    from agents.proteus.train import train
    from proteus_env import make_synthetic_benchmark
    from proteus_env.loaders import load_routerbench

    with pytest.raises(ValueError, match="n_queries"):
        make_synthetic_benchmark(n_queries=None)
    frame = pd.read_csv(sample)
    frame.loc[frame.index[:2], "claude-v2|total_cost"] = 1e308  # finite, but its mean overflows
    frame.to_csv(tmp_path / "huge.csv", index=False)
    with pytest.raises(ValueError, match=r"claude-v2\|total_cost"):
        load_routerbench(tmp_path / "huge.csv")
    with pytest.raises(ValueError, match="Nope-v0"):
        train("Nope-v0", out_dir=tmp_path / "out", timesteps=64)
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ValueError, match="binary.yaml"):
        load_train_config(path=tmp_path / "binary.yaml")
    assert main(["train", "--seed", "-1", "--timesteps", "64", "--out", str(tmp_path / "o")]) == 2
    assert "--seed" in capsys.readouterr().err
