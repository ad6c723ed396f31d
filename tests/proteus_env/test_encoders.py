"""Prompt encoders: registry, TF-IDF + SVD, the optional sentence-transformers encoder, the disk cache."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from proteus_env import encoders
from proteus_env.encoders import (
    Encoder,
    TfidfSvdEncoder,
    available_encoders,
    cache_key,
    encode_texts,
    get_encoder,
    register_encoder,
    texts_digest,
)

TOPICS = ["solve the integral of x squared", "translate this sentence into french", "write a python function to sort a list",
          "which court decides contract law disputes", "what are the symptoms of the flu", "summarize the history of rome"]
TEXTS = [f"{TOPICS[i % len(TOPICS)]} case {i} with detail {i * 7 % 13}" for i in range(120)]
TRAIN = np.arange(0, 120, 2)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path / "home"))


def test_registry_lists_and_builds_encoders():
    assert {"tfidf-svd", "sentence-transformers"} <= set(available_encoders())
    encoder = get_encoder("tfidf-svd")
    assert isinstance(encoder, TfidfSvdEncoder) and encoder.dim == 64 and encoder.requires_fit
    assert get_encoder("TFIDF-SVD", dim=8).dim == 8
    with pytest.raises(ValueError, match="Unknown encoder 'nope'.*tfidf-svd"):
        get_encoder("nope")
    with pytest.raises(ValueError, match="Bad settings for encoder 'tfidf-svd'"):
        get_encoder("tfidf-svd", dimension=3)
    with pytest.raises(ValueError, match="`dim` must be a positive integer"):
        get_encoder("tfidf-svd", dim=0)


def test_register_custom_encoder_and_refuse_silent_replacement(monkeypatch):
    class Length(Encoder):
        name = "length"

        def settings(self):
            return {}

        @property
        def dim(self):
            return 1

        def transform(self, texts):
            return np.array([[len(t)] for t in texts], dtype=np.float32)

    monkeypatch.setattr(encoders, "_REGISTRY", dict(encoders._REGISTRY))
    register_encoder("length", Length)
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("length", Length)
    result = encode_texts(["ab", "abcd"], encoder="length")
    np.testing.assert_array_equal(result.embeddings, [[2], [4]])


def test_tfidf_svd_is_float32_deterministic_and_fitted_on_train_only():
    first = TfidfSvdEncoder(dim=16, seed=3).encode(TEXTS, train_index=TRAIN)
    again = TfidfSvdEncoder(dim=16, seed=3).encode(TEXTS, train_index=TRAIN)
    assert first.shape == (120, 16) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert np.abs(first).sum(axis=1).min() > 0

    changed = list(TEXTS)
    changed[1] = "completely different words about quantum chromodynamics"  # row 1 is not a train row
    moved = TfidfSvdEncoder(dim=16, seed=3).encode(changed, train_index=TRAIN)
    others = np.setdiff1d(np.arange(120), [1])
    np.testing.assert_array_equal(moved[others], first[others])
    assert not np.array_equal(moved[1], first[1])

    changed_train = list(TEXTS)
    changed_train[0] = "completely different words about quantum chromodynamics"  # row 0 is a train row
    refit = TfidfSvdEncoder(dim=16, seed=3).encode(changed_train, train_index=TRAIN)
    assert not np.allclose(refit[others], first[others])


def test_tfidf_svd_pads_with_zero_columns_when_train_is_too_small():
    encoder = TfidfSvdEncoder(dim=64)
    out = encoder.encode(TEXTS[:12], train_index=np.arange(10))
    assert out.shape == (12, 64)
    assert encoder.effective_dim == 9
    assert (out[:, 9:] == 0).all() and (out[:, :9] != 0).any()


def test_cache_hit_on_second_encode(tmp_path):
    first = encode_texts(TEXTS, encoder_kwargs={"dim": 8}, train_index=TRAIN, cache_dir=tmp_path)
    second = encode_texts(TEXTS, encoder_kwargs={"dim": 8}, train_index=TRAIN, cache_dir=tmp_path)
    assert not first.cache_hit and second.cache_hit
    assert first.path == second.path and first.path.parent == tmp_path / "embeddings" and first.path.is_file()
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    assert not second.embeddings.flags.writeable


def test_default_cache_dir_is_under_proteus_home(tmp_path):
    result = encode_texts(TEXTS[:20], encoder_kwargs={"dim": 4})
    assert result.path.is_relative_to(tmp_path / "home" / "cache" / "embeddings")


def test_cache_key_changes_with_settings_texts_and_train_index(tmp_path):
    digest = texts_digest(TEXTS)
    base = cache_key(TfidfSvdEncoder(dim=8), digest, TRAIN)
    assert cache_key(TfidfSvdEncoder(dim=8), digest, TRAIN) == base
    assert cache_key(TfidfSvdEncoder(dim=16), digest, TRAIN) != base
    assert cache_key(TfidfSvdEncoder(dim=8, seed=1), digest, TRAIN) != base
    assert cache_key(TfidfSvdEncoder(dim=8, ngram_max=1), digest, TRAIN) != base
    assert cache_key(TfidfSvdEncoder(dim=8), texts_digest([*TEXTS[:-1], "other"]), TRAIN) != base
    assert cache_key(TfidfSvdEncoder(dim=8), digest, TRAIN[:-1]) != base
    assert texts_digest(["ab", "c"]) != texts_digest(["a", "bc"])

    first = encode_texts(TEXTS, encoder_kwargs={"dim": 8}, train_index=TRAIN, cache_dir=tmp_path)
    other = encode_texts(TEXTS, encoder_kwargs={"dim": 8, "seed": 1}, train_index=TRAIN, cache_dir=tmp_path)
    assert not other.cache_hit and other.path != first.path


def test_corrupt_cache_file_is_recomputed(tmp_path):
    first = encode_texts(TEXTS, encoder_kwargs={"dim": 8}, train_index=TRAIN, cache_dir=tmp_path)
    first.path.write_bytes(b"not an npz file")
    with pytest.warns(RuntimeWarning, match="unreadable embedding cache"):
        again = encode_texts(TEXTS, encoder_kwargs={"dim": 8}, train_index=TRAIN, cache_dir=tmp_path)
    assert not again.cache_hit
    np.testing.assert_array_equal(again.embeddings, first.embeddings)


def test_sentence_transformers_missing_dependency_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'proteus-routing-gym\[sentence\]'"):
        get_encoder("sentence-transformers")
    with pytest.raises(ImportError, match=r"proteus-routing-gym\[sentence\]"):
        encode_texts(["a prompt"], encoder="sentence-transformers")


def test_tfidf_fit_transform_save_load_round_trip(tmp_path):
    from proteus_env.encoders import TfidfSvdEncoder, load_encoder

    texts = [f"question {i} about {'math' if i % 2 else 'history'} and topic {i % 7}" for i in range(60)]
    train = np.arange(40)
    encoded = TfidfSvdEncoder(dim=8, seed=1).encode(texts, train_index=train)
    fitted = TfidfSvdEncoder(dim=8, seed=1).fit([texts[i] for i in train])
    np.testing.assert_allclose(fitted.transform(texts), encoded, atol=1e-6)
    fitted.save(tmp_path)
    assert not list(tmp_path.glob("*.pkl"))
    loaded = load_encoder(tmp_path)
    probe = ["question 99 about math and topic 3"]
    np.testing.assert_allclose(loaded.transform(probe), fitted.transform(probe), atol=1e-6)


def test_unfitted_tfidf_transform_and_missing_saved_encoder_raise(tmp_path):
    from proteus_env.encoders import TfidfSvdEncoder, load_encoder

    with pytest.raises(ValueError, match="not fitted"):
        TfidfSvdEncoder().transform(["x"])
    with pytest.raises(FileNotFoundError, match="encoder.json"):
        load_encoder(tmp_path)
