"""SPROUT loader: tested on small fixtures written here in the published parquet schema."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq
import pytest
from gymnasium.utils.env_checker import check_env
from sprout_fixture import MODELS_13, MODELS_14, SIZES, SPLIT_FILES, make_split, write_sprout  # noqa: F401  (tests/ helper)

import proteus_env  # noqa: F401  (registers the environments)
from proteus_env import load_benchmark
from proteus_env.loaders import load_price_table, load_sprout, sources
from proteus_env.loaders.sprout import PRICE_FILE


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROTEUS_DATA_DIR", raising=False)


def split_columns(root: Path, split: str) -> dict[str, list]:
    return pq.read_table(root / "data" / SPLIT_FILES[split]).to_pydict()


@pytest.fixture
def sprout13(tmp_path) -> Path:
    return write_sprout(tmp_path / "SPROUT", MODELS_13)


# ---------------------------------------------------------------------- happy path
@pytest.mark.parametrize("models", [MODELS_13, MODELS_14], ids=["13-models", "14-models"])
def test_fixture_loads_with_official_splits_and_token_costs(tmp_path, models):
    root = write_sprout(tmp_path / "s", models)
    bench = load_benchmark("sprout", data_path=str(root))
    assert bench.name == "sprout"
    assert bench.models == tuple(models)
    assert {k: v.size for k, v in bench.splits.items()} == SIZES
    prices = json.loads(PRICE_FILE.read_text())["prices"]
    offset = 0
    for split in ("train", "val", "test"):
        cols = split_columns(root, split)
        rows = bench.splits[split]
        np.testing.assert_array_equal(rows, np.arange(offset, offset + SIZES[split]))
        offset += SIZES[split]
        assert list(bench.prompts[rows]) == cols["prompt"]
        assert list(bench.task[rows]) == cols["dataset"]
        for k, model in enumerate(models):
            cells = cols[model]
            price_in, price_out = prices[model]["input"] / 1e6, prices[model]["output"] / 1e6
            expected_cost = [c["num_input_tokens"] * price_in + c["num_output_tokens"] * price_out for c in cells]
            np.testing.assert_allclose(bench.costs[rows, k], expected_cost, rtol=1e-12)
            np.testing.assert_array_equal(bench.scores[rows, k], [c["score"] for c in cells])
        in_tokens = np.array([[cols[m][i]["num_input_tokens"] for m in models] for i in range(SIZES[split])])
        np.testing.assert_array_equal(bench.prompt_tokens[rows], np.rint(np.median(in_tokens, axis=1)))
    assert bench.embeddings.shape == (sum(SIZES.values()), 64)
    assert bench.embeddings.dtype == np.float32
    assert bench.metadata["sha256"]["train"] == sources.sha256_file(root / "data" / SPLIT_FILES["train"])


def test_files_directly_in_directory_and_o3mini_variant_name(tmp_path):
    root = write_sprout(tmp_path / "flat", MODELS_14)
    for filename in SPLIT_FILES.values():
        (root / "data" / filename).rename(root / filename)
    bench = load_sprout(str(root), variant="sprout-o3mini")
    assert bench.n_models == 14
    assert bench.metadata["variant"] == "SPROUT-o3mini"


def test_price_override_by_dict_and_by_json_file(tmp_path, sprout13):
    base = load_sprout(str(sprout13))
    k = MODELS_13.index("openai-gpt-4o")
    doubled = load_sprout(str(sprout13), prices={"openai-gpt-4o": {"input": 5.0, "output": 20.0}})
    np.testing.assert_allclose(doubled.costs[:, k], 2 * base.costs[:, k], rtol=1e-12)
    others = [i for i in range(len(MODELS_13)) if i != k]
    np.testing.assert_array_equal(doubled.costs[:, others], base.costs[:, others])
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"prices": {"openai-gpt-4o": [0.0, 0.0]}}))
    free = load_sprout(str(sprout13), prices=str(path))
    assert (free.costs[:, k] == 0).all()


def test_price_table_shipped_values():
    table = load_price_table()
    assert table["aws-claude-3-5-sonnet-v1"] == (3.0, 15.0)
    assert table["openai-gpt-4o-mini"] == (0.15, 0.6)
    assert table["wxai-llama-3-405b-instruct"] == (3.5, 3.5)
    assert set(MODELS_14) <= set(table)


@pytest.mark.parametrize("prices, fragment", [
    ({"openai-gpt-4o": {"input": -1, "output": 2}}, "finite and >= 0"),
    ({"openai-gpt-4o": {"input": "cheap", "output": 2}}, "not numeric"),
    ({"openai-gpt-4o": 3.0}, "must be"),
])
def test_bad_prices_raise_naming_the_model(prices, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        load_price_table(prices)
    assert "openai-gpt-4o" in str(info.value)


def test_unpriced_model_raises_naming_it(tmp_path):
    root = write_sprout(tmp_path / "s", [*MODELS_13[:3], "acme-brand-new-llm"])
    with pytest.raises(ValueError, match="acme-brand-new-llm"):
        load_sprout(str(root))
    bench = load_sprout(str(root), prices={"acme-brand-new-llm": [1.0, 2.0]})
    assert bench.models[-1] == "acme-brand-new-llm"


def test_env_passes_check_env_on_fixture(sprout13):
    env = gym.make("Proteus-SPROUT-v0", data_path=str(sprout13), session_length=16)  # the train split has 90 rows
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert obs["p_hat"].shape == (13,)
    env.close()


# ---------------------------------------------------------------------- bad files
def _set_cell(split: str, model: str, row: int, **fields):
    def edit(columns):
        columns[model][row] = {**columns[model][row], **fields}
    return {split: edit}


@pytest.mark.parametrize("edit, fragments", [
    (_set_cell("val", "openai-gpt-4o", 3, score=1.7), ["openai-gpt-4o", "score", "1.7", "row 3"]),
    (_set_cell("test", "wxai-llama-3-1-8b-instruct", 5, num_output_tokens=-4),
     ["wxai-llama-3-1-8b-instruct", "num_output_tokens", "-4"]),
    ({"train": lambda c: c.pop("prompt")}, ["prompt", "missing the required column"]),
    ({"train": lambda c: c.update({"openai-gpt-4o": [{"score": 1.0, "num_input_tokens": 3} for _ in c["key"]]})},
     ["openai-gpt-4o", "num_output_tokens"]),
    ({"val": lambda c: c.update({"openai-gpt-4o": [{**x, "score": "good"} for x in c["openai-gpt-4o"]]})},
     ["openai-gpt-4o", "score", "good"]),
    ({"test": lambda c: c.pop("openai-gpt-4o")}, ["other model columns", "openai-gpt-4o"]),
    ({"train": lambda c: c["prompt"].__setitem__(7, "duplicate text"),
      "val": lambda c: c["prompt"].__setitem__(2, "duplicate text")},
     ["also appear in the 'train' split", "row 2", "duplicate text"]),
], ids=["score-out-of-range", "negative-tokens", "no-prompt-column", "struct-lacks-field", "non-numeric-score",
        "model-missing-in-test", "duplicate-across-splits"])
def test_bad_file_raises_naming_file_and_problem(tmp_path, edit, fragments):
    root = write_sprout(tmp_path / "bad", MODELS_13, edit=edit)
    with pytest.raises(ValueError) as info:
        load_sprout(str(root))
    message = str(info.value)
    assert str(root) in message
    for fragment in fragments:
        assert fragment in message


def test_cross_split_duplicates_can_be_dropped(tmp_path):
    def train(c):
        c["prompt"][7] = "shared prompt"
    def test(c):
        c["prompt"][0] = "shared prompt"
    root = write_sprout(tmp_path / "dup", MODELS_13, edit={"train": train, "test": test})
    with pytest.raises(ValueError, match="prompt-disjoint"):
        load_sprout(str(root))
    bench = load_sprout(str(root), drop_cross_split_duplicates=True)
    assert bench.splits["test"].size == SIZES["test"] - 1
    assert bench.metadata["n_dropped_cross_split_duplicates"] == 1
    train_prompts = set(bench.prompts[bench.splits["train"]])
    assert not train_prompts & set(bench.prompts[bench.splits["test"]])


def test_null_struct_is_missing_and_can_be_dropped(tmp_path):
    def null_cell(c):
        c["openai-gpt-4o"][4] = None
    root = write_sprout(tmp_path / "null", MODELS_13, edit={"train": null_cell})
    with pytest.raises(ValueError, match="missing") as info:
        load_sprout(str(root))
    assert "openai-gpt-4o" in str(info.value) and "row 4" in str(info.value)
    bench = load_sprout(str(root), missing="drop")
    assert bench.splits["train"].size == SIZES["train"] - 1


@pytest.mark.parametrize("damage, fragment", [
    (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "cannot be read as parquet"),
    (lambda p: p.write_bytes(b""), "is empty"),
], ids=["truncated", "empty"])
def test_truncated_or_empty_file(sprout13, damage, fragment):
    target = sprout13 / "data" / SPLIT_FILES["val"]
    damage(target)
    with pytest.raises(ValueError, match=fragment) as info:
        load_sprout(str(sprout13))
    assert str(target) in str(info.value)


def test_missing_split_file_names_it(sprout13):
    (sprout13 / "data" / SPLIT_FILES["test"]).unlink()
    with pytest.raises(FileNotFoundError, match="test-00000-of-00001.parquet"):
        load_sprout(str(sprout13))


def test_drop_tasks_by_prefix(sprout13):
    bench = load_sprout(str(sprout13), drop_tasks=("math",))
    assert "math" not in set(bench.task)
    assert bench.n_queries == sum(SIZES.values()) - sum((n + 2) // 4 for n in SIZES.values())  # rows with i % 4 == 1
    with pytest.raises(ValueError, match="matches no"):
        load_sprout(str(sprout13), drop_tasks=("nope",))
