"""Issue 17: a tau-blind policy is detected and reported, never shipped silently."""

import json
import math
import warnings

import pytest
import torch
import yaml
from shared_fixtures import tiny_train_config

from agents.cli import main
from agents.proteus.collapse import COLLAPSE_SPAN, CollapsedPolicyWarning, collapse_record, describe_collapse
from agents.proteus.router import ProteusRouter
from agents.proteus.train import train


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """256 steps: the policy has barely moved from its initial, tau-blind mu."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("untrained")
    with pytest.warns(CollapsedPolicyWarning, match=r"spans 0\.\d\d of the achievable range"):
        result = train(config=tiny_train_config(), out_dir=out, seed=0, timesteps=256, n_envs=2)
    return out, result


def test_the_summary_records_the_span_and_flags_a_tau_blind_policy(untrained):
    out, result = untrained
    summary = json.loads((out / "summary.json").read_text())
    assert summary == result.summary
    assert summary["collapsed"] is True and summary["tau_span"] < COLLAPSE_SPAN
    low, high = summary["achievable_accuracy"]
    assert 0.0 < low < high <= 1.0
    assert len(summary["bin_tau"]) == len(summary["bin_accuracy"]) == 3
    reach = summary["reachable_accuracy"]
    assert reach[1] - reach[0] < COLLAPSE_SPAN * (high - low)  # the calibration sees the same narrow range


def test_loading_a_collapsed_artifact_warns(untrained):
    out, _ = untrained
    with pytest.warns(CollapsedPolicyWarning, match="barely follows"):
        ProteusRouter.load(out)


def test_describe_collapse_names_the_span_and_every_bin():
    record = collapse_record(0.12, [0.35, 0.55, 0.75], [0.763, 0.763, 0.764], (0.30, 0.78))
    assert record["collapsed"] and record["tau_span"] == 0.12
    text = describe_collapse(record)
    assert "0.12" in text and "[0.300, 0.780]" in text
    assert all(f"τ={t:.3f}: {a:.3f}" in text for t, a in ((0.35, 0.763), (0.55, 0.763), (0.75, 0.764)))
    healthy = collapse_record(0.95, [0.35, 0.75], [0.36, 0.76], (0.30, 0.78))
    assert not healthy["collapsed"] and describe_collapse(healthy) is None
    unmeasured = collapse_record(math.nan, [], [], (0.3, 0.78))
    assert unmeasured["tau_span"] is None and not unmeasured["collapsed"]


@pytest.mark.parametrize(("mode", "code"), [("warn", 0), ("fail", 3)])
def test_cli_on_collapse(tmp_path, capsys, mode, code):
    torch.set_num_threads(1)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"default": tiny_train_config()}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapsedPolicyWarning)  # the CLI reports it itself, once
        assert main(["train", "--config", str(config), "--timesteps", "128", "--n-envs", "2", "--out", str(tmp_path / "run"),
                     "--no-progress", "--on-collapse", mode]) == code
    captured = capsys.readouterr()
    assert "tau-span" in captured.out
    prefix = "proteus train: error:" if mode == "fail" else "proteus train: warning:"
    assert captured.err.startswith(prefix) and "spans" in captured.err and "τ-bin" in captured.err and "Traceback" not in captured.err
    assert (tmp_path / "run" / "manifest.json").is_file()  # the artifact is kept for inspection either way
