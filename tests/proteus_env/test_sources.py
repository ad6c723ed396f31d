"""Where data comes from: pins, checksums, the user folder and (faked) hub downloads."""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agents.cli import main as cli_main
from agents.cli.data import add_subparser as add_data_subparser
from agents.cli.data import run_data
from proteus_env.loaders import download, load_routerbench, load_sprout, routerbench, sources

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT.parent / "shared" / "data" / "routerbench" / "routerbench_0shot_sample365.csv"
needs_sample = pytest.mark.skipif(not SAMPLE.is_file(),
                                  reason=f"RouterBench sample not found at {SAMPLE} (../shared/data/routerbench)")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROTEUS_DATA_DIR", raising=False)


class FakeHub:
    """Stands in for ``huggingface_hub.hf_hub_download``: copies local files, records the calls."""

    def __init__(self, files: dict[str, Path] | None = None, error: Exception | None = None) -> None:
        self.files = files or {}
        self.error = error
        self.calls: list[dict] = []

    def __call__(self, *, repo_id, filename, repo_type, revision, local_dir):
        self.calls.append({"repo_id": repo_id, "filename": filename, "repo_type": repo_type, "revision": revision})
        if self.error is not None:
            raise self.error
        target = Path(local_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.files[filename], target)
        return str(target)


def _use_hub(monkeypatch, hub: FakeHub) -> FakeHub:
    monkeypatch.setattr(sources, "_get_hf_hub_download", lambda: hub)
    return hub


def _no_hub(monkeypatch) -> None:
    def missing():
        raise ImportError("No module named 'huggingface_hub'")

    monkeypatch.setattr(sources, "_get_hf_hub_download", missing)


def _sample_pickle(path: Path) -> Path:
    pd.read_csv(SAMPLE).to_pickle(path)
    return path


def _pin(monkeypatch, sha: str) -> sources.HubFile:
    pin = sources.HubFile(sources.ROUTERBENCH_REPO, "routerbench_0shot.pkl", "a" * 40, sha)
    monkeypatch.setitem(sources.ROUTERBENCH_FILES, "0shot", pin)
    return pin


def test_pins_are_complete_for_routerbench():
    for variant, pin in sources.ROUTERBENCH_FILES.items():
        assert pin.repo_id == "withmartian/routerbench" and pin.filename == f"routerbench_{variant}.pkl"
        assert pin.revision is not None and len(pin.revision) == 40
        assert pin.sha256 is not None and len(pin.sha256) == 64
    for variant, files in sources.SPROUT_FILES.items():
        expected = [f"data/{s}-00000-of-00001.parquet" for s in ("train", "validation", "test")]
        assert [f.filename for f in files.values()] == expected
        assert all(f.repo_id == f"CARROT-LLM-Routing/{variant}" for f in files.values())


def test_sha256_and_home_folders(tmp_path, monkeypatch):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"x" * 3_000_001)
    assert sources.sha256_file(path, chunk_size=1000) == hashlib.sha256(b"x" * 3_000_001).hexdigest()
    assert sources.proteus_home() == tmp_path / "home"
    assert sources.user_data_dir() == tmp_path / "home" / "data"
    assert sources.cache_root() == tmp_path / "home" / "cache"
    assert sources.cache_root(tmp_path / "c") == tmp_path / "c"
    monkeypatch.delenv("PROTEUS_HOME")
    assert sources.proteus_home() == Path.home() / ".cache" / "proteus"


@needs_sample
def test_download_fallback_fetches_pinned_file_then_reads_the_safe_copy(tmp_path, monkeypatch):
    source = _sample_pickle(tmp_path / "upstream.pkl")
    pin = _pin(monkeypatch, sources.sha256_file(source))
    hub = _use_hub(monkeypatch, FakeHub({"routerbench_0shot.pkl": source}))

    bench = load_routerbench(encoder_kwargs={"dim": 4})
    assert bench.n_queries == 365
    assert hub.calls == [{"repo_id": "withmartian/routerbench", "filename": "routerbench_0shot.pkl", "repo_type": "dataset",
                          "revision": pin.revision}]
    landed = tmp_path / "home" / "data" / "routerbench" / "routerbench_0shot.pkl"
    assert bench.metadata["source"] == str(landed) and bench.metadata["pinned_release"]
    safe_copy = Path(bench.metadata["safe_copy"])
    assert safe_copy.is_file()

    monkeypatch.setattr(routerbench, "_read_pickle", lambda _p: pytest.fail("the pickle was read again"))
    again = load_routerbench(encoder_kwargs={"dim": 4})
    assert len(hub.calls) == 1  # no second download
    assert again.metadata["source"] == str(safe_copy)
    np.testing.assert_array_equal(again.scores, bench.scores)


@needs_sample
def test_checksum_mismatch_after_download_raises_and_deletes(tmp_path, monkeypatch):
    source = _sample_pickle(tmp_path / "upstream.pkl")
    _pin(monkeypatch, "0" * 64)
    _use_hub(monkeypatch, FakeHub({"routerbench_0shot.pkl": source}))
    with pytest.raises(ValueError, match="Checksum mismatch") as info:
        load_routerbench()
    assert "0" * 64 in str(info.value) and sources.sha256_file(source) in str(info.value)
    assert not (tmp_path / "home" / "data" / "routerbench" / "routerbench_0shot.pkl").exists()


@needs_sample
def test_user_folder_pickle_with_wrong_checksum_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "home" / "data" / "routerbench"
    folder.mkdir(parents=True)
    _sample_pickle(folder / "routerbench_0shot.pkl")  # not the pinned release
    with pytest.raises(ValueError, match="Refusing to unpickle"):
        load_routerbench()


def test_unreachable_hub_gives_file_not_found_with_the_reason(monkeypatch):
    _use_hub(monkeypatch, FakeHub(error=OSError("network is unreachable")))
    with pytest.raises(FileNotFoundError, match="network is unreachable") as info:
        load_routerbench()
    assert "routerbench_0shot.pkl" in str(info.value)


def _write_sprout_split(path: Path, split: str) -> None:
    n = 30
    rng = np.random.default_rng(len(split))
    words = np.array("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split())
    columns = {"prompt": [f"{split} {i} " + " ".join(rng.choice(words, 6)) for i in range(n)],
               "dataset": ["mmlu-pro" if i % 2 else "math" for i in range(n)]}
    for k, model in enumerate(["openai-gpt-4o", "openai-gpt-4o-mini", "wxai-llama-3-1-8b-instruct"]):
        columns[model] = [{"score": float(rng.random() < 0.3 * (k + 1)), "num_input_tokens": 10 + i,
                           "num_output_tokens": 5 + k} for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def test_sprout_download_fallback_uses_default_branch(tmp_path, monkeypatch):
    upstream = {}
    for split, name in sources.SPROUT_SPLIT_FILES.items():
        upstream[name] = tmp_path / "upstream" / name
        _write_sprout_split(upstream[name], split)
    hub = _use_hub(monkeypatch, FakeHub(upstream))
    bench = load_sprout(variant="SPROUT-o3mini", encoder_kwargs={"dim": 4})
    assert bench.n_queries == 90 and bench.n_models == 3
    assert [c["repo_id"] for c in hub.calls] == ["CARROT-LLM-Routing/SPROUT-o3mini"] * 3
    assert all(c["revision"] is None and c["repo_type"] == "dataset" for c in hub.calls)
    assert (tmp_path / "home" / "data" / "sprout" / "SPROUT-o3mini" / "data" / "test-00000-of-00001.parquet").is_file()
    load_sprout(variant="SPROUT-o3mini", encoder_kwargs={"dim": 4})
    assert len(hub.calls) == 3  # found in the user folder the second time


def test_sprout_not_found_names_files_and_folder(tmp_path, monkeypatch):
    _no_hub(monkeypatch)
    with pytest.raises(FileNotFoundError) as info:
        load_sprout()
    message = str(info.value)
    assert "validation-00000-of-00001.parquet" in message
    assert str(tmp_path / "home" / "data" / "sprout" / "SPROUT" / "data") in message


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="proteus")
    add_data_subparser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_download_with_fake_hub(tmp_path, monkeypatch, capsys):
    upstream = {}
    for split, name in sources.SPROUT_SPLIT_FILES.items():
        upstream[name] = tmp_path / "upstream" / name
        _write_sprout_split(upstream[name], split)
    _use_hub(monkeypatch, FakeHub(upstream))
    assert run_data(_parse(["data", "download", "sprout"])) == 0
    out = capsys.readouterr().out
    assert out.count("downloaded ") == 3 and "SPROUT/data/train-00000-of-00001.parquet" in out


def test_cli_download_without_hub_names_the_extra(monkeypatch, capsys):
    _no_hub(monkeypatch)
    assert cli_main(["data", "download", "routerbench"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("proteus data: error:") and "pip install 'proteus-routing-gym[hub]'" in err
    with pytest.raises(ImportError):
        download("routerbench")
