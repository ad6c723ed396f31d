"""``--models`` / ``--exclude-models`` across ``proteus train / eval / demo / route / data`` (issue 14)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from shared_fixtures import tiny_train_config

from agents.cli import build_parser
from agents.cli import main as cli_main
from agents.evaluation.contenders import RouterArtifact
from agents.proteus.artifact import check_model_subset, read_artifact
from proteus_env import load_benchmark

PAIR = ["gpt-4-1106-preview", "zero-one-ai/Yi-34B-Chat"]


@pytest.fixture(scope="module")
def pair_router(tmp_path_factory) -> Path:
    """A tiny router trained through the CLI on the two-model subset PAIR."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pair")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({"default": tiny_train_config()}))
    out = root / "router"
    code = cli_main(["train", "--config", str(config), "--timesteps", "256", "--n-envs", "2", "--seed", "0", "--no-progress",
                     "--out", str(out), "--models", ",".join(reversed(PAIR))])
    assert code == 0
    return out


def test_every_subcommand_takes_the_flags():
    parser = build_parser()
    for argv in (["train"], ["eval", "--out", "x"], ["demo"], ["route", "--router", "r", "--tau", "0.5"],
                 ["data", "info", "--benchmark", "synthetic"], ["data", "embed", "routerbench"]):
        args = parser.parse_args([*argv, "--models", "a,b", "--exclude-models", "c"])
        assert (args.models, args.exclude_models) == ("a,b", "c")


def test_the_artifact_records_the_subset(pair_router):
    artifact = read_artifact(pair_router)
    assert artifact.models == PAIR and artifact.benchmark["models"] == PAIR
    full = load_benchmark("synthetic", n_queries=3000)
    assert artifact.dropped_models == [m for m in full.models if m not in PAIR]
    assert artifact.identity["env_kwargs"]["models"] == list(reversed(PAIR))  # the env's constructor kwargs, as given
    assert artifact.identity["metadata"]["n_dropped_models"] == 9
    assert yaml.safe_load((pair_router / "config.yaml").read_text())["env_kwargs"]["models"] == list(reversed(PAIR))
    assert RouterArtifact.read(pair_router).benchmark_kwargs == {"n_queries": 3000, "models": PAIR}
    assert artifact.head.models == tuple(PAIR)


def test_eval_uses_the_artifacts_subset_and_refuses_another(pair_router, tmp_path, capsys):
    common = ["--router", str(pair_router), "--no-predictive", "--no-dynamic", "--n-boot", "20", "--n-taus", "3", "--no-progress"]
    assert cli_main(["eval", *common, "--out", str(tmp_path / "a")]) == 0  # no flag: the artifact's subset
    results = (tmp_path / "a" / "results.csv").read_text()
    assert "proteus" in results
    capsys.readouterr()
    assert cli_main(["eval", *common, "--out", str(tmp_path / "b"), "--models", ",".join(reversed(PAIR))]) == 0  # the same subset
    assert cli_main(["eval", *common, "--out", str(tmp_path / "b2"), "--benchmark-arg", "n_queries=3000"]) == 0  # args keep it
    capsys.readouterr()
    assert cli_main(["eval", *common, "--out", str(tmp_path / "c"), "--models", "gpt-4-1106-preview,claude-v2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("proteus eval: error: The model subset asked for") and str(pair_router) in err and PAIR[1] in err
    assert "Traceback" not in err
    assert cli_main(["eval", *common, "--out", str(tmp_path / "d"), "--exclude-models", PAIR[0]]) == 2
    assert "conflicts with router artifact" in capsys.readouterr().err


def test_eval_baselines_only_takes_the_subset(tmp_path, capsys):
    code = cli_main(["eval", "--baselines-only", "--benchmark-arg", "n_queries=3000", "--models", ",".join(PAIR), "--no-predictive",
                     "--no-dynamic", "--n-boot", "20", "--n-taus", "3", "--no-progress", "--out", str(tmp_path / "r")])
    assert code == 0
    assert "--models" in (tmp_path / "r" / "report.md").read_text()
    capsys.readouterr()
    assert cli_main(["eval", "--baselines-only", "--models", "gpt-5,claude-v2", "--no-progress", "--out", str(tmp_path / "s")]) == 2
    assert "unknown model(s) ['gpt-5']" in capsys.readouterr().err


def test_route_accepts_only_the_routers_own_subset(pair_router, tmp_path, capsys):
    bench = load_benchmark("synthetic", n_queries=3000, split_seed=0, models=PAIR)
    rows = bench.split_index("test")[:3]
    np.save(tmp_path / "z.npy", bench.embeddings[rows])
    np.save(tmp_path / "t.npy", bench.prompt_tokens[rows])
    base = ["route", "--router", str(pair_router), "--tau", "0.7", "--embeddings", str(tmp_path / "z.npy"), "--tokens", str(tmp_path / "t.npy")]
    assert cli_main([*base, "--models", ",".join(PAIR)]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"gpt-4-1106-preview|zero-one-ai/Yi-34B-Chat", out)) == 3
    assert cli_main([*base, "--exclude-models", "zero-one-ai/Yi-34B-Chat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("proteus route: error:") and "trained on the models" in err


def test_demo_fixed_mu_only_on_a_subset(capsys):
    assert cli_main(["demo", "--fixed-mu-only", "--taus", "0.65", "0.7", "--models", ",".join(PAIR)]) == 0
    assert "fixed-mu acc" in capsys.readouterr().out
    assert cli_main(["demo", "--fixed-mu-only", "--models", "gpt-4-1106-preview"]) == 2
    assert "at least 2" in capsys.readouterr().err


def test_train_refuses_unknown_names_before_training(tmp_path, capsys):
    assert cli_main(["train", "--timesteps", "64", "--out", str(tmp_path / "x"), "--exclude-models", "gpt-5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown model(s) ['gpt-5'] in `exclude_models`" in err and "available:" in err
    assert not (tmp_path / "x").exists()


def test_check_model_subset():
    check_model_subset(PAIR, None, None)
    check_model_subset(PAIR, list(reversed(PAIR)))
    check_model_subset(PAIR, [*PAIR, "claude-v2"], ["claude-v2"])
    check_model_subset(PAIR, exclude_models=["claude-v2"])
    with pytest.raises(ValueError, match="conflicts with router artifact r"):
        check_model_subset(PAIR, PAIR[:1] + ["claude-v2"], router="r")
    with pytest.raises(ValueError, match="conflicts"):
        check_model_subset(PAIR, exclude_models=PAIR[:1])
    json.dumps(PAIR)
