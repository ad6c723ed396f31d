"""Nothing from data turns on trust (issue 16): an artifact's ``benchmark.json`` / ``config.yaml`` may name its
data, never make ``proteus eval`` or ``ProteusRouter.load`` read another file or unpickle one."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from agents.evaluation.contenders import RouterArtifact, find_artifacts
from agents.evaluation.run import evaluate
from agents.proteus.router import ProteusRouter

FAST = {"n_boot": 50, "progress": False, "predictive": False, "dynamic": False, "n_taus": 3}


class _Trap:
    """Unpickling this creates a file: evidence that a pickle named by an artifact was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _hostile_copy(source: Path, target: Path, *, identity_env: dict | None = None, config_env: dict | None = None) -> Path:
    """Copy an artifact and edit ``benchmark.json`` / ``config.yaml``, fixing their checksums as a hostile author would."""
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    if identity_env is not None:
        identity = json.loads((target / "benchmark.json").read_text())
        identity["env_kwargs"] = identity_env(identity["env_kwargs"]) if callable(identity_env) else identity_env
        (target / "benchmark.json").write_text(json.dumps(identity))
    if config_env is not None:
        config = yaml.safe_load((target / "config.yaml").read_text())
        config["env_kwargs"] = config_env
        (target / "config.yaml").write_text(yaml.safe_dump(config))
    for name in ("benchmark.json", "config.yaml"):
        manifest["files"][name] = hashlib.sha256((target / name).read_bytes()).hexdigest()
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


@pytest.fixture
def trap(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "PICKLE-WAS-LOADED"
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(_Trap(marker)))
    return path, marker


def _widening(env: dict, pkl: Path, tmp_path: Path) -> dict:
    return {**env, "benchmark": "routerbench", "data_path": str(pkl),
            "benchmark_kwargs": {"trust_pickle": True, "cache_dir": str(tmp_path / "elsewhere"), "drop_tasks": ["x"],
                                 "encoder_kwargs": {"model_path": str(tmp_path / "code")}}}


@pytest.mark.parametrize("where", ["benchmark.json", "config.yaml"])
def test_an_artifact_cannot_name_a_file_to_read_or_turn_on_trust_pickle(tiny_routers, tmp_path, trap, where, monkeypatch):
    """Before: ``RouterArtifact.read`` took ``data_path`` and ``trust_pickle`` from the artifact, and ``evaluate``
    unpickled the file it named (running its code) before any fingerprint check."""
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROTEUS_DATA_DIR", raising=False)
    pkl, marker = trap
    if where == "benchmark.json":
        target = _hostile_copy(tiny_routers / "seed0", tmp_path / "hostile", identity_env=lambda env: _widening(env, pkl, tmp_path))
    else:  # benchmark.json without the keys: config.yaml was the fallback
        target = _hostile_copy(tiny_routers / "seed0", tmp_path / "hostile", identity_env={"split_seed": 0},
                               config_env=_widening({"session_length": 16}, pkl, tmp_path))
    artifact = RouterArtifact.read(target)
    assert artifact.data_path is None and artifact.recorded_data_path == str(pkl)
    assert artifact.benchmark == "routerbench" and artifact.benchmark_kwargs == {"drop_tasks": ["x"], "encoder_kwargs": {}}
    assert {"data_path", "trust_pickle", "cache_dir", "encoder_kwargs.model_path"} <= set(artifact.ignored_options)
    with pytest.raises((FileNotFoundError, ValueError)):
        evaluate([target], **FAST)  # looks for RouterBench where the caller's settings say; finds none
    assert not marker.exists() and not (tmp_path / "elsewhere").exists()
    ProteusRouter.load(target)  # loading the router reads the artifact's own files only
    assert not marker.exists()


def test_the_caller_still_chooses_the_data_and_the_fingerprint_decides(tiny_routers, tmp_path, trap):
    pkl, marker = trap
    target = _hostile_copy(tiny_routers / "seed0", tmp_path / "hostile",
                           identity_env=lambda env: {**env, "data_path": str(pkl), "benchmark_kwargs": {"n_queries": 3000,
                                                                                                         "trust_pickle": True}})
    result = evaluate([target], **FAST)  # synthetic, n_queries from the record: the data it was trained on
    assert "proteus" in set(result.results["family"]) and not marker.exists()
    with pytest.raises(ValueError) as info:  # other data given by the caller: refused, saying both fingerprints
        evaluate([target], benchmark_kwargs={"n_queries": 2500}, **FAST)
    recorded = find_artifacts([target])[0].fingerprint
    message = str(info.value)
    assert recorded in message and "fingerprint" in message
    assert len({word.strip(":,.") for word in message.split() if len(word.strip(":,.")) == 16 and word.strip(":,.").isalnum()}) >= 2
