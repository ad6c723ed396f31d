"""Acceptance figures of the synthetic benchmark against the published RouterBench values."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from proteus_env import make_synthetic_benchmark
from proteus_env.predictors import Standardizer, fit_soft_logistic, query_features, sigmoid
from proteus_env.synthetic import ROUTERBENCH_MODELS, ROUTERBENCH_SIZE, ROUTERBENCH_TASKS


@pytest.fixture(scope="module")
def full():
    return make_synthetic_benchmark()


def test_default_size_models_and_tasks(full):
    assert full.n_queries == ROUTERBENCH_SIZE == 36_497
    assert set(full.models) == set(ROUTERBENCH_MODELS)
    shares = {t: np.mean(full.task == t) for t in ROUTERBENCH_TASKS}
    for name, family in ROUTERBENCH_TASKS.items():
        assert shares[name] == pytest.approx(family.count / ROUTERBENCH_SIZE, abs=0.01)


def test_per_model_means_match_published_values(full):
    for k, model in enumerate(full.models):
        published_score, published_cost = ROUTERBENCH_MODELS[model]
        assert full.scores[:, k].mean() == pytest.approx(published_score, abs=0.03), model
        assert full.costs[:, k].mean() == pytest.approx(published_cost, rel=0.15), model


def test_best_single_model_and_no_model_correct_share(full):
    assert full.scores.mean(axis=0).max() == pytest.approx(0.78, abs=0.03)
    no_model_correct = float((full.scores.max(axis=1) <= 0).mean())
    assert 0.02 <= no_model_correct <= 0.06


def test_fractional_tasks_use_quarter_steps(full):
    fractional = np.isin(full.task, ["grade-school-math", "mt-bench"])
    steps = full.scores[fractional] * 4
    assert np.allclose(steps, np.round(steps))
    assert ((full.scores[fractional] > 0) & (full.scores[fractional] < 1)).any()
    assert set(np.unique(full.scores[~fractional])) <= {0.0, 1.0}


def test_correctness_is_predictable_but_not_easy(full):
    train, test = full.splits["train"], full.splits["test"]
    features = query_features(full.embeddings, full.prompt_tokens)
    scaler = Standardizer.fit(features[train])
    weights, bias = fit_soft_logistic(scaler.transform(features[train]), full.scores[train].astype(float))
    p_hat = sigmoid(scaler.transform(features[test]) @ weights + bias)
    aucs = np.array([roc_auc_score(full.scores[test, k] >= 0.5, p_hat[:, k]) for k in range(full.n_models)])
    assert np.mean((aucs >= 0.62) & (aucs <= 0.85)) >= 0.8, aucs


def test_same_seed_same_data_other_seed_other_data():
    a = make_synthetic_benchmark(n_queries=500, seed=1)
    b = make_synthetic_benchmark(n_queries=500, seed=1)
    c = make_synthetic_benchmark(n_queries=500, seed=2)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_split_seed_changes_only_the_split():
    a = make_synthetic_benchmark(n_queries=500, seed=1, split_seed=1)
    b = make_synthetic_benchmark(n_queries=500, seed=1, split_seed=2)
    assert np.array_equal(a.scores, b.scores)
    assert not np.array_equal(a.splits["test"], b.splits["test"])


@pytest.mark.parametrize("bad", [0, 10, 2.5, -3])
def test_bad_size_raises(bad):
    with pytest.raises(ValueError, match="n_queries"):
        make_synthetic_benchmark(n_queries=bad)


@pytest.mark.slow
def test_routerbench_scale_405k_generates_fast_and_small():
    import time

    start = time.perf_counter()
    big = make_synthetic_benchmark(n_queries=405_000, seed=0)
    elapsed = time.perf_counter() - start
    nbytes = sum(getattr(big, f).nbytes for f in ("scores", "costs", "embeddings", "prompt_tokens"))
    nbytes += big.task.size * 8
    assert nbytes < 2 * 1024**3
    assert elapsed < 60.0  # a generous bound on a 2-core machine; measured about 2 s
