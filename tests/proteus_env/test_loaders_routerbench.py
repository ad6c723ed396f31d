"""RouterBench loader on the real 365-prompt sample in ../shared (never copied into the repository)."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

import proteus_env  # noqa: F401  (registers the environments)
from agents.cli import main as cli_main
from agents.cli.data import add_subparser as add_data_subparser
from agents.cli.data import run_data
from proteus_env import load_benchmark
from proteus_env.loaders import load_routerbench, routerbench, sources
from proteus_env.loaders.text import estimate_tokens

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT.parent / "shared" / "data" / "routerbench" / "routerbench_0shot_sample365.csv"
MODELS = [
    "WizardLM/WizardLM-13B-V1.2", "claude-instant-v1", "claude-v1", "claude-v2", "gpt-3.5-turbo-1106", "gpt-4-1106-preview",
    "meta/code-llama-instruct-34b-chat", "meta/llama-2-70b-chat", "mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
]

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(),
                                reason=f"RouterBench sample not found at {SAMPLE} (../shared/data/routerbench)")


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory) -> Path:
    """One user folder for the module, so that loads of the same data share the embedding cache."""
    return tmp_path_factory.mktemp("shared-home")


@pytest.fixture(autouse=True)
def _home(shared_home, monkeypatch):
    monkeypatch.setenv("PROTEUS_HOME", str(shared_home))
    monkeypatch.delenv("PROTEUS_DATA_DIR", raising=False)


@pytest.fixture
def own_home(tmp_path, monkeypatch) -> Path:
    """A fresh user folder, for tests of caches and lookups."""
    home = tmp_path / "home"
    monkeypatch.setenv("PROTEUS_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_csv(SAMPLE)


@pytest.fixture(scope="module")
def sample_bench(shared_home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROTEUS_HOME", str(shared_home))
        return load_routerbench(SAMPLE)


# ---------------------------------------------------------------------- the real sample
def test_sample_loads_with_the_files_per_model_means(sample_bench, frame):
    bench = sample_bench
    assert (bench.n_queries, bench.n_models) == (365, 11)
    assert sorted(bench.models) == MODELS
    for k, model in enumerate(bench.models):
        assert bench.scores[:, k].astype(np.float64).mean() == pytest.approx(frame[model].mean(), abs=1e-9)
        assert bench.costs[:, k].mean() == pytest.approx(frame[f"{model}|total_cost"].mean(), rel=1e-12)
    gpt4 = bench.models.index("gpt-4-1106-preview")
    assert bench.scores[:, gpt4].mean() == pytest.approx(0.7815, abs=1e-4)  # measured once: 285.25 / 365
    assert bench.costs[:, gpt4].mean() == pytest.approx(0.003591, abs=1e-6)
    assert int((bench.scores.max(axis=1) == 0).sum()) == 17  # the file's `no_model_correct` rows
    assert bench.metadata["variant"] is None  # a file named by the user is not claimed to be a release
    assert bench.metadata["sha256"] == "7f78353344322a06d69b87d67ec8ee80c2fba44c07e57f2f5e048f4147815ffd"  # shared README


def test_tasks_prompts_and_token_estimates(sample_bench, frame):
    bench = sample_bench
    assert list(bench.task) == frame["eval_name"].tolist()
    assert len(set(bench.task)) == 61
    turns = [ast.literal_eval(p) for p in frame["prompt"]]
    assert sum(len(t) > 1 for t in turns) == 97 == bench.metadata["n_multi_turn"]
    row = next(i for i, t in enumerate(turns) if len(t) == 2)
    assert bench.prompts[row] == turns[row][0] + "\n\n" + turns[row][1]
    assert "['" not in bench.prompts[row][:2]
    assert bench.prompt_tokens[row] == estimate_tokens(bench.prompts[row])
    assert (bench.prompt_tokens > 0).all()


def test_embeddings_and_splits(sample_bench):
    bench = sample_bench
    assert bench.embeddings.shape == (365, 64) and bench.embeddings.dtype == np.float32
    sizes = {k: v.size for k, v in bench.splits.items()}
    assert sum(sizes.values()) == 365
    assert sizes["train"] == pytest.approx(0.70 * 365, abs=25)
    for name, index in bench.splits.items():
        others = np.concatenate([v for k, v in bench.splits.items() if k != name])
        assert not set(bench.prompts[index]) & set(bench.prompts[others])
    for task in ("hellaswag", "grade-school-math", "arc-challenge"):
        assert all((bench.task[index] == task).any() for index in bench.splits.values())


def test_splits_are_seeded():
    a, b = load_routerbench(SAMPLE), load_routerbench(SAMPLE)
    c = load_routerbench(SAMPLE, split_seed=1)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(a.splits[name], b.splits[name])
    assert not np.array_equal(a.splits["test"], c.splits["test"])


def test_second_load_reads_embeddings_from_cache(own_home):
    first = load_routerbench(SAMPLE)
    second = load_routerbench(SAMPLE)
    assert not first.metadata["embedding_cache_hit"] and second.metadata["embedding_cache_hit"]
    assert Path(second.metadata["embedding_cache_file"]).is_file()
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    other = load_routerbench(SAMPLE, encoder_kwargs={"dim": 16})
    assert not other.metadata["embedding_cache_hit"] and other.embedding_dim == 16


def test_duplicate_prompts_stay_in_one_split(tmp_path, frame):
    copies = frame.sample(40, random_state=1).assign(sample_id=lambda d: d["sample_id"] + ".copy")
    path = tmp_path / "dups.csv"
    pd.concat([frame, copies], ignore_index=True).to_csv(path, index=False)
    bench = load_routerbench(path)
    assert bench.n_queries == 405
    where = {}
    for name, index in bench.splits.items():
        for prompt in bench.prompts[index]:
            where.setdefault(prompt, set()).add(name)
    assert all(len(s) == 1 for s in where.values())


def test_drop_tasks_by_prefix(frame):
    bench = load_routerbench(SAMPLE, drop_tasks=("mmlu",))
    n_mmlu = int(frame["eval_name"].str.startswith("mmlu").sum())
    assert n_mmlu > 50
    assert bench.n_queries == 365 - n_mmlu
    assert not any(t.startswith("mmlu") for t in bench.task)
    assert bench.metadata["n_dropped_tasks"] == n_mmlu
    with pytest.raises(ValueError, match="'nope' matches no eval_name"):
        load_routerbench(SAMPLE, drop_tasks=("nope",))


def test_parquet_input_matches_csv(tmp_path, sample_bench):
    path = tmp_path / "sample.parquet"
    pd.read_csv(SAMPLE).to_parquet(path)
    bench = load_routerbench(path)
    np.testing.assert_array_equal(bench.scores, sample_bench.scores)
    np.testing.assert_array_equal(bench.costs, sample_bench.costs)
    assert bench.metadata["format"] == "parquet"


# ---------------------------------------------------------------------- pickles: refusal, trust, safe copy
def _object_pickle(frame: pd.DataFrame, path: Path) -> Path:
    """The sample as a pickle whose score columns hold Python objects, like the published files."""
    obj = frame.copy()
    for model in MODELS:
        obj[model] = obj[model].astype(object)
    obj["prompt"] = [ast.literal_eval(p) for p in obj["prompt"]]  # lists, not their string form
    obj.to_pickle(path)
    return path


def test_unpinned_pickle_is_refused_unless_trusted(own_home, tmp_path, frame, sample_bench, monkeypatch):
    path = _object_pickle(frame, tmp_path / "sample.pkl")
    with pytest.raises(ValueError, match="Refusing to unpickle") as info:
        load_routerbench(path)
    assert str(path) in str(info.value) and "trust_pickle=True" in str(info.value)

    bench = load_routerbench(path, trust_pickle=True)
    np.testing.assert_array_equal(bench.scores, sample_bench.scores)
    assert list(bench.prompts) == list(sample_bench.prompts)
    safe_copy = Path(bench.metadata["safe_copy"])
    assert safe_copy.is_file() and safe_copy.suffix == ".parquet"
    assert not bench.metadata["safe_copy_hit"]

    def no_unpickling(_path):
        raise AssertionError("the pickle was read again")

    monkeypatch.setattr(routerbench, "_read_pickle", no_unpickling)
    again = load_routerbench(path)  # no trust needed: the safe copy is read, not the pickle
    assert again.metadata["safe_copy_hit"]
    np.testing.assert_array_equal(again.scores, bench.scores)
    np.testing.assert_array_equal(again.costs, bench.costs)
    assert list(again.prompts) == list(bench.prompts)


def test_pinned_pickle_loads_without_trust(own_home, tmp_path, frame, monkeypatch):
    path = _object_pickle(frame, tmp_path / "routerbench_0shot.pkl")
    pin = sources.HubFile(sources.ROUTERBENCH_REPO, "routerbench_0shot.pkl", "0" * 40, sources.sha256_file(path))
    monkeypatch.setitem(sources.ROUTERBENCH_FILES, "0shot", pin)
    bench = load_routerbench(path)
    assert bench.metadata["pinned_release"] and bench.metadata["variant"] == "0shot"


def test_data_dir_env_var_is_searched(own_home, tmp_path, frame, monkeypatch):
    folder = tmp_path / "datasets" / "routerbench"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "routerbench_0shot.parquet")
    monkeypatch.setenv("PROTEUS_DATA_DIR", str(tmp_path / "datasets"))
    bench = load_routerbench()
    assert bench.metadata["source"] == str(folder / "routerbench_0shot.parquet")
    assert bench.metadata["variant"] == "0shot" and not bench.metadata["pinned_release"]
    assert bench.n_queries == 365


def test_nothing_found_says_which_file_goes_where(own_home, monkeypatch):
    def no_hub():
        raise ImportError("no huggingface_hub here")

    monkeypatch.setattr(sources, "_get_hf_hub_download", no_hub)
    with pytest.raises(FileNotFoundError) as info:
        load_routerbench(variant="5shot")
    message = str(info.value)
    assert str(own_home / "data" / "routerbench" / "routerbench_5shot.pkl") in message
    assert "PROTEUS_DATA_DIR" in message and "huggingface_hub is not installed" in message
    assert sources.ROUTERBENCH_FILES["5shot"].sha256 in message


# ---------------------------------------------------------------------- bad files, each made from the real sample
def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _set(model: str, row: int, value):
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df[model] = df[model].astype(object)
        df.loc[row, model] = value
        return df
    return edit


BAD_EDITS = {
    "missing-eval_name": (lambda df: df.rename(columns={"eval_name": "task"}), ["missing the required column", "eval_name"]),
    "misnamed-score-column": (lambda df: df.rename(columns={"claude-v1": "claude_v1"}),
                              ["'claude-v1|total_cost'", "'claude-v1'"]),
    "no-cost-columns": (lambda df: df[[c for c in df.columns if not c.endswith("|total_cost")]], ["|total_cost"]),
    "non-numeric-score": (_set("gpt-4-1106-preview", 5, "yes"), ["'gpt-4-1106-preview'", "row 5", "'yes'", "not a number"]),
    "score-out-of-range": (_set("claude-v2", 9, 1.5), ["'claude-v2'", "row 9", "1.5"]),
    "negative-cost": (_set("claude-v2|total_cost", 11, -0.001), ["'claude-v2|total_cost'", "row 11", "-0.001"]),
    "nan-cost": (_set("claude-v2|total_cost", 12, np.nan), ["missing", "'claude-v2|total_cost'", "row 12", "missing='drop'"]),
    "bad-prompt-literal": (_set("prompt", 3, "['never closed"), ["'prompt'", "row 3"]),
}


@pytest.mark.parametrize("name", sorted(BAD_EDITS))
def test_bad_file_raises_naming_file_column_and_value(tmp_path, frame, name):
    edit, fragments = BAD_EDITS[name]
    path = _write(edit(frame.copy()), tmp_path / f"{name}.csv")
    with pytest.raises(ValueError) as info:
        load_routerbench(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_cells_can_be_dropped(tmp_path, frame):
    path = _write(_set("claude-v2|total_cost", 12, np.nan)(frame.copy()), tmp_path / "hole.csv")
    bench = load_routerbench(path, missing="drop")
    assert bench.n_queries == 364 and bench.metadata["n_dropped_missing"] == 1


@pytest.mark.parametrize("cut", [0.5, 0.997])
def test_truncated_file(tmp_path, cut):
    data = SAMPLE.read_bytes()
    path = tmp_path / "truncated.csv"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValueError) as info:
        load_routerbench(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content, fragment", [(b"", "is empty"), (None, "has no rows")], ids=["empty", "header-only"])
def test_empty_file(tmp_path, content, fragment):
    path = tmp_path / "empty.csv"
    path.write_bytes(content if content is not None else SAMPLE.read_text().splitlines()[0].encode() + b"\n")
    with pytest.raises(ValueError, match=fragment) as info:
        load_routerbench(path)
    assert str(path) in str(info.value)


def test_truncated_pickle(tmp_path, frame):
    path = _object_pickle(frame, tmp_path / "cut.pkl")
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match="cannot be unpickled") as info:
        load_routerbench(path, trust_pickle=True)
    assert str(path) in str(info.value)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "sample.txt"
    path.write_text("x")
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        load_routerbench(path)


# ---------------------------------------------------------------------- env and CLI
def test_env_passes_check_env_on_the_sample():
    env = gym.make("Proteus-RouterBench-v0", data_path=str(SAMPLE))
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=3)
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(reward) and info["model"] in MODELS
    env.close()


def test_data_info_prints_the_samples_numbers(capsys, frame):
    parser = argparse.ArgumentParser(prog="proteus")
    add_data_subparser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "info", "--benchmark", "routerbench", "--path", str(SAMPLE)])
    assert run_data(args) == 0
    out = capsys.readouterr().out
    for label, value in (("prompts", 365), ("models", 11), ("tasks", 61)):
        assert re.search(rf"^{label}\s+{value}$", out, re.M), out
    for model in MODELS:
        line = re.search(rf"^{re.escape(model)}\s+(\S+)\s+(\S+)\s+(\S+)%$", out, re.M)
        assert line, model
        assert float(line.group(1)) == pytest.approx(frame[model].mean(), abs=5e-5)
        assert float(line.group(2)) == pytest.approx(frame[f"{model}|total_cost"].mean(), abs=5e-7)
    # The oracle's choices agree with the file's own `oracle_model_to_route_to` column.
    cheapest = "mistralai/mistral-7b-chat"  # where the oracle sends queries that no model gets right
    choices = frame["oracle_model_to_route_to"].replace("no_model_correct", cheapest).value_counts(normalize=True)
    for model in MODELS:
        share = float(re.search(rf"^{re.escape(model)}\s+\S+\s+\S+\s+(\S+)%$", out, re.M).group(1)) / 100
        assert share == pytest.approx(choices.get(model, 0.0), abs=5.1e-4), model
    scores = frame[MODELS].to_numpy()
    oracle = re.search(r"^oracle \(cheapest best model\)\s+(\S+)\s+(\S+)$", out, re.M)
    assert float(oracle.group(1)) == pytest.approx(scores.max(axis=1).mean(), abs=5e-5)
    assert "prompts with no model correct: 4.66% (17 of 365)" in out


def test_data_info_reports_missing_file(capsys, tmp_path):
    assert cli_main(["data", "info", "--benchmark", "routerbench", "--path", str(tmp_path / "absent.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("proteus data: error:") and "absent.csv" in err and "Traceback" not in err


def test_load_benchmark_registry_reaches_the_loader():
    bench = load_benchmark("routerbench", data_path=str(SAMPLE), split_seed=2, encoder_kwargs={"dim": 8})
    assert bench.name == "routerbench" and bench.embedding_dim == 8 and bench.metadata["split_seed"] == 2


# ---------------------------------------------------------------------- ambiguity is refused (issue 16)
def test_a_model_without_its_cost_or_score_column_is_named(tmp_path, frame):
    cases = {
        "no-cost": (["claude-v2|total_cost"], "model 'claude-v2' has a score column 'claude-v2' but no cost column 'claude-v2|total_cost'"),
        "no-score": (["claude-v2"], "model 'claude-v2' has a cost column 'claude-v2|total_cost' but no score column 'claude-v2'"),
        "response-only": (["claude-v2", "claude-v2|total_cost"], "model 'claude-v2' (columns ['claude-v2|model_response']) has neither"),
    }
    for name, (dropped, fragment) in cases.items():
        path = _write(frame.drop(columns=dropped), tmp_path / f"{name}.csv")
        with pytest.raises(ValueError) as info:
            load_routerbench(path)
        message = str(info.value)
        assert str(path) in message and fragment in message and "exclude_models=['claude-v2']" in message, message
        bench = load_routerbench(path, exclude_models=["claude-v2"])
        assert "claude-v2" not in bench.models and bench.n_models == 10
        assert bench.metadata["dropped_models"] == ["claude-v2"] and bench.metadata["n_dropped_models"] == 1


def test_a_score_column_without_a_cost_column_is_not_silently_ignored(tmp_path, frame):
    """Before: a file without `claude-v2|total_cost` loaded as a 10-model benchmark, silently."""
    path = _write(frame.drop(columns=["claude-v2|total_cost", "claude-v2|model_response"]), tmp_path / "bare.csv")
    with pytest.raises(ValueError, match=r"model 'claude-v2' has a score column 'claude-v2' but no cost column"):
        load_routerbench(path)
    extra = _write(frame.assign(category="x"), tmp_path / "extra.csv")  # an unknown column is ambiguous too
    with pytest.raises(ValueError, match=r"model 'category' has a score column 'category' but no cost column"):
        load_routerbench(extra)
    assert load_routerbench(extra, exclude_models=["category"]).n_models == 11
    indexed = tmp_path / "indexed.csv"
    frame.to_csv(indexed)  # pandas' index column `Unnamed: 0` is not a model
    assert load_routerbench(indexed).n_models == 11


def test_duplicate_column_names_are_refused_naming_them(tmp_path, frame):
    """Before: pandas renamed the second `gpt-4-1106-preview` to `gpt-4-1106-preview.1` and the first one was read, silently."""
    second = pd.DataFrame({"gpt-4-1106-preview": 1.0}, index=frame.index)  # a second copy, all correct
    path = _write(pd.concat([frame, second], axis=1), tmp_path / "dupes.csv")
    position = list(frame.columns).index("gpt-4-1106-preview")
    with pytest.raises(ValueError) as info:
        load_routerbench(path)
    message = str(info.value)
    assert str(path) in message, message
    assert f"duplicate column name(s): 'gpt-4-1106-preview' (columns [{position}, {frame.shape[1]}])" in message, message
    duplicated = pd.concat([frame, frame[["claude-v2"]]], axis=1)  # the same in a parquet or pickle frame
    parquet = tmp_path / "dupes.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_arrays([pa.array(duplicated.iloc[:, i]) for i in range(duplicated.shape[1])],
                                        names=[str(c) for c in duplicated.columns]), parquet)
    with pytest.raises(ValueError, match=r"duplicate column name\(s\): 'claude-v2'") as info:
        load_routerbench(parquet)
    assert str(parquet) in str(info.value)
    pickled = tmp_path / "dupes.pkl"
    duplicated.to_pickle(pickled)
    with pytest.raises(ValueError, match=r"duplicate column name\(s\): 'claude-v2'"):
        load_routerbench(pickled, trust_pickle=True)


def test_rows_and_models_dropped_by_options_are_counted_and_printed(tmp_path, frame, capsys):
    holes = frame.copy()
    holes["claude-v1|total_cost"] = holes["claude-v1|total_cost"].astype(object)
    holes.loc[[3, 7], "claude-v1|total_cost"] = np.nan
    holes.loc[9, "gpt-4-1106-preview"] = np.nan
    path = _write(holes, tmp_path / "holes.csv")
    n_mmlu = int(frame.loc[~frame.index.isin([3, 7, 9]), "eval_name"].str.startswith("mmlu").sum())
    bench = load_routerbench(path, missing="drop", drop_tasks=("mmlu",), exclude_models=["claude-v2"])
    meta = bench.metadata
    assert meta["dropped_rows"] == {"missing": 3, "drop_tasks": n_mmlu}
    assert meta["n_dropped_missing"] == 3 and meta["n_dropped_tasks"] == n_mmlu and meta["n_rows_file"] == 365
    assert bench.n_queries == 365 - 3 - n_mmlu
    assert meta["dropped_models"] == ["claude-v2"] and len(meta["models_available"]) == 11
    # Excluding the model with holes keeps its rows: only the kept models' cells count.
    kept = load_routerbench(path, missing="drop", exclude_models=["claude-v1"])
    assert kept.metadata["dropped_rows"] == {"missing": 1, "drop_tasks": 0} and kept.n_queries == 364

    assert cli_main(["data", "info", "--benchmark", "routerbench", "--path", str(path), "--missing", "drop",
                     "--drop-tasks", "mmlu", "--exclude-models", "claude-v2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^dropped\s+3 rows with a missing cell", out, re.M), out
    assert re.search(rf"^dropped\s+{n_mmlu} rows of dropped tasks", out, re.M), out
    assert re.search(r"^dropped\s+1 model\(s\) .*: claude-v2$", out, re.M), out
    assert re.search(r"^models\s+10$", out, re.M) and re.search(rf"^prompts\s+{365 - 3 - n_mmlu}$", out, re.M)
    assert cli_main(["data", "info", "--benchmark", "routerbench", "--path", str(SAMPLE)]) == 0
    assert re.search(r"^dropped\s+nothing$", capsys.readouterr().out, re.M)


def test_data_info_and_embed_take_a_model_subset(capsys):
    assert cli_main(["data", "info", "--benchmark", "routerbench", "--path", str(SAMPLE), "--models",
                     "gpt-4-1106-preview,zero-one-ai/Yi-34B-Chat"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^models\s+2$", out, re.M) and re.search(r"^dropped\s+9 model\(s\)", out, re.M)
    assert cli_main(["data", "info", "--benchmark", "synthetic", "--exclude-models", "claude-v2"]) == 0
    assert re.search(r"^models\s+10$", capsys.readouterr().out, re.M)
    assert cli_main(["data", "info", "--benchmark", "routerbench", "--path", str(SAMPLE), "--models", "gpt-4,claude-v2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("proteus data: error:") and "unknown model(s) ['gpt-4']" in err and "available:" in err
    assert cli_main(["data", "embed", "routerbench", "--path", str(SAMPLE), "--dim", "8", "--exclude-models", "claude-v2"]) == 0
    assert re.search(r"^dropped\s+1 model\(s\) .*claude-v2$", capsys.readouterr().out, re.M)
