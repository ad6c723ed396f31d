import numpy as np
import pytest

from proteus_env import Benchmark
from proteus_env.splits import make_splits


def _arrays(n=6, k=2, d=3):
    return dict(
        name="tiny",
        models=("a", "b"),
        task=np.array(["t"] * n),
        scores=np.zeros((n, k)),
        costs=np.ones((n, k)),
        embeddings=np.zeros((n, d)),
        prompt_tokens=np.ones(n, dtype=int),
        splits={"train": [0, 1, 2, 3], "val": [4], "test": [5]},
    )


def test_valid_benchmark_is_read_only_and_typed():
    bench = Benchmark(**_arrays())
    assert bench.scores.dtype == np.float32 and bench.costs.dtype == np.float64
    assert bench.embeddings.dtype == np.float32 and bench.prompt_tokens.dtype == np.int64
    with pytest.raises(ValueError):
        bench.scores[0, 0] = 1.0
    assert bench.n_queries == 6 and bench.n_models == 2 and bench.embedding_dim == 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("scores", np.full((6, 2), 1.5), "scores"),
        ("scores", np.full((6, 2), np.nan), "scores"),
        ("scores", np.zeros((5, 2)), "scores"),
        ("costs", -np.ones((6, 2)), "costs"),
        ("costs", np.full((6, 2), np.inf), "costs"),
        ("embeddings", np.zeros((4, 3)), "embeddings"),
        ("prompt_tokens", np.ones(5), "prompt_tokens"),
        ("task", np.array(["t"] * 3), "task"),
        ("models", ("a", "a"), "models"),
        ("splits", {"train": [0, 1, 2, 3], "val": [3, 4], "test": [5]}, "disjoint"),
        ("splits", {"train": [0, 1, 2], "val": [4], "test": [5]}, "cover"),
        ("splits", {"train": [0, 1, 2, 3, 4, 5]}, "splits"),
        ("splits", {"train": [0, 1, 2, 3], "val": [4], "test": [6]}, "outside"),
    ],
)
def test_invalid_fields_raise_naming_the_field(field, value, message):
    arrays = _arrays()
    arrays[field] = value
    with pytest.raises(ValueError, match=message):
        Benchmark(**arrays)


def test_bad_score_error_names_row_and_model():
    arrays = _arrays()
    scores = np.zeros((6, 2))
    scores[3, 1] = 2.0
    arrays["scores"] = scores
    with pytest.raises(ValueError, match=r"row 3, model 'b'"):
        Benchmark(**arrays)


def test_fingerprint_tracks_data_and_splits():
    bench = Benchmark(**_arrays())
    assert bench.fingerprint() == Benchmark(**_arrays()).fingerprint()
    other = bench.with_splits({"train": [0, 1, 2, 5], "val": [4], "test": [3]})
    assert other.fingerprint() != bench.fingerprint()
    assert other.scores is bench.scores  # arrays shared, not copied


def test_make_splits_is_seeded_stratified_and_keeps_duplicates_together():
    task = np.array(["big"] * 200 + ["small"] * 5)
    prompts = np.array([f"p{i % 150}" for i in range(200)] + [f"s{i}" for i in range(5)])
    splits = make_splits(task, seed=3, groups=prompts)
    again = make_splits(task, seed=3, groups=prompts)
    other = make_splits(task, seed=4, groups=prompts)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    assert not np.array_equal(splits["test"], other["test"])
    together = np.concatenate([splits[k] for k in ("train", "val", "test")])
    assert np.array_equal(np.sort(together), np.arange(205))
    for name in ("train", "val", "test"):
        assert "small" in set(task[splits[name]])
    where = {}
    for name, idx in splits.items():
        for p in prompts[idx]:
            where.setdefault(p, set()).add(name)
    assert all(len(s) == 1 for s in where.values())
    sizes = {k: v.size for k, v in splits.items()}
    assert 0.65 < sizes["train"] / 205 < 0.75


def test_make_splits_rejects_bad_fractions():
    with pytest.raises(ValueError, match="fractions"):
        make_splits(["a"] * 10, fractions=(0.5, 0.5, 0.5))
