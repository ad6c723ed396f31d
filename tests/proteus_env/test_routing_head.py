import numpy as np
import pytest

from proteus_env import HeadConfig, RoutingHead, fit_routing_head
from proteus_env.routing_head import fixed_mu_frontier


@pytest.fixture(scope="module")
def fit(small_benchmark):
    return fit_routing_head(small_benchmark, seed=0)


def test_predictions_have_the_right_shape_and_range(fit, small_benchmark):
    n, k = small_benchmark.scores.shape
    for array in (fit.p_hat, fit.cost_hat, fit.cost_norm):
        assert array.shape == (n, k) and array.dtype == np.float32
        assert np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1
        assert not array.flags.writeable


def test_train_rows_are_cross_fitted_not_in_sample(fit, small_benchmark):
    """Out-of-fold train predictions are no more optimistic than test ones (in-sample ones would be)."""
    head = fit.head
    train = small_benchmark.splits["train"]
    in_sample, _ = head.predict(small_benchmark.embeddings[train], small_benchmark.prompt_tokens[train])
    scores = small_benchmark.scores[train]
    brier_oof = np.mean((fit.p_hat[train] - scores) ** 2)
    brier_in = np.mean((in_sample - scores) ** 2)
    assert brier_oof > brier_in  # in-sample fit looks better than it is
    assert not np.allclose(in_sample, fit.p_hat[train])
    test = small_benchmark.splits["test"]
    fresh, _ = head.predict(small_benchmark.embeddings[test], small_benchmark.prompt_tokens[test])
    np.testing.assert_allclose(fresh, fit.p_hat[test], atol=1e-5)  # val/test rows use the full fit


def test_predicted_correctness_is_calibrated_on_validation(fit, small_benchmark):
    val = small_benchmark.splits["val"]
    np.testing.assert_allclose(fit.p_hat[val].mean(axis=0), small_benchmark.scores[val].mean(axis=0), atol=0.02)


def test_cost_predictor_orders_models_like_real_costs(fit, small_benchmark):
    test = small_benchmark.splits["test"]
    real = np.log(small_benchmark.costs[test]).mean(axis=0)
    predicted = fit.cost_hat[test].mean(axis=0)
    assert np.corrcoef(real, predicted)[0, 1] > 0.95


def test_fit_is_cached_per_benchmark_seed_and_config(small_benchmark, fit):
    assert fit_routing_head(small_benchmark, seed=0) is fit
    assert fit_routing_head(small_benchmark, seed=1) is not fit
    assert fit_routing_head(small_benchmark, seed=0, config=HeadConfig(gamma=4.0)) is not fit


def test_score_and_argmax_match_a_brute_force_loop(fit):
    rng = np.random.default_rng(0)
    p_hat, c_hat = fit.p_hat[:200], fit.cost_hat[:200]
    mu = rng.random(200)
    gamma = rng.uniform(2, 8, 200)
    head = fit.head
    cfg = head.config
    expected = []
    for i in range(200):
        best, best_k = -np.inf, -1
        for k in range(head.n_models):
            s = p_hat[i, k] + mu[i] * cfg.quality_scale * head.quality_prior[k] - (1 - mu[i]) ** gamma[i] * cfg.cost_scale * c_hat[i, k]
            if s > best:
                best, best_k = s, k
        expected.append(best_k)
    np.testing.assert_array_equal(head.route(p_hat, c_hat, mu, gamma), expected)
    matrix = fit.score_matrix[:200]
    via_matrix = [int(np.dot([1.0, mu[i], (1 - mu[i]) ** gamma[i]], matrix[i]).argmax()) for i in range(200)]
    np.testing.assert_array_equal(via_matrix, expected)


def test_mu_spans_the_cost_quality_frontier(small_benchmark, fit):
    frontier = fixed_mu_frontier(small_benchmark, fit, np.linspace(0, 1, 101), split="test")
    acc, usd = frontier["accuracy"], frontier["usd_per_1k"]
    cheapest = int(np.argmin(small_benchmark.costs.mean(axis=0)))
    # mu = 0 is the cheap end, mu = 1 the accurate end
    assert usd[0] <= 1.5 * 1000 * small_benchmark.costs[small_benchmark.splits["test"], cheapest].mean()
    assert acc[-1] >= small_benchmark.scores[small_benchmark.splits["test"]].mean(axis=0).max() - 0.02
    # accuracy rises with mu (allowing sampling wiggles of a point)
    assert np.all(np.diff(np.maximum.accumulate(acc)) >= 0) and np.all(acc >= np.maximum.accumulate(acc) - 0.01)
    # the rise is spread over at least half of mu's range, not squeezed into a sliver
    low, high = acc[0], acc.max()
    mu10 = frontier["mu"][np.argmax(acc >= low + 0.1 * (high - low))]
    mu90 = frontier["mu"][np.argmax(acc >= low + 0.9 * (high - low))]
    assert mu90 - mu10 >= 0.45, (mu10, mu90)


def test_head_save_load_round_trip(tmp_path, fit, small_benchmark):
    fit.head.save(tmp_path)
    loaded = RoutingHead.load(tmp_path)
    rows = small_benchmark.splits["test"][:50]
    a = fit.head.predict(small_benchmark.embeddings[rows], small_benchmark.prompt_tokens[rows])
    b = loaded.predict(small_benchmark.embeddings[rows], small_benchmark.prompt_tokens[rows])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert loaded.config == fit.head.config and loaded.models == fit.head.models


def test_head_load_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="routing_head"):
        RoutingHead.load(tmp_path)


@pytest.mark.parametrize(
    ("embeddings", "tokens", "message"),
    [
        (np.zeros((3, 5)), np.ones(3), "embeddings"),
        (np.full((3, 32), np.nan), np.ones(3), "NaN"),
        (np.zeros((3, 32)), np.ones(4), "prompt_tokens"),
        (np.zeros((3, 32)), -np.ones(3), "prompt_tokens"),
    ],
)
def test_head_rejects_bad_queries(fit, embeddings, tokens, message):
    with pytest.raises(ValueError, match=message):
        fit.head.predict(embeddings, tokens)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_folds": 1}, "n_folds"), ({"gamma": 9.0}, "gamma"), ({"cost_scale": -1.0}, "cost_scale"), ({"l2": 0.0}, "l2"),
     ({"cost_quantiles": (0.9, 0.1)}, "cost_quantiles")],
)
def test_head_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HeadConfig(**kwargs)


def test_head_config_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match="gama"):
        HeadConfig.from_dict({"gama": 3.0})
    assert HeadConfig.from_dict({"cost_quantiles": [0.05, 0.95]}).cost_quantiles == (0.05, 0.95)


@pytest.mark.parametrize("mu", [np.nan, 1.5, -0.2])
def test_score_rejects_bad_mu(fit, mu):
    with pytest.raises(ValueError, match="μ"):
        fit.head.route(fit.p_hat[:3], fit.cost_hat[:3], mu)


def test_duplicate_train_prompts_share_a_cross_fitting_fold():
    from proteus_env import Benchmark
    from proteus_env.routing_head import _grouped_folds

    n = 40
    prompts = np.array([f"p{i % 10}" for i in range(n)], dtype=object)
    bench = Benchmark(name="dups", models=("a", "b"), task=np.array(["t"] * n), scores=np.zeros((n, 2)), costs=np.ones((n, 2)),
                      embeddings=np.zeros((n, 2)), prompt_tokens=np.ones(n, int), prompts=prompts,
                      splits={"train": np.arange(30), "val": np.arange(30, 35), "test": np.arange(35, 40)})
    folds = _grouped_folds(bench, bench.splits["train"], n_folds=5, seed=0)
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(30))
    fold_of = {}
    for f, rows in enumerate(folds):
        for text in prompts[rows]:
            assert fold_of.setdefault(text, f) == f


# ---------------------------------------------------------------------- non-linear predictors
FAST = {"gbt_max_iter": 25, "mlp_hidden": (16,), "mlp_max_iter": 40, "mlp_alpha": 3.0}


@pytest.fixture(scope="module")
def tiny_benchmark():
    from proteus_env import make_synthetic_benchmark

    bench = make_synthetic_benchmark(n_queries=1200, seed=0)
    return bench.select_models(bench.models[:4])  # 4 models: each tree fit is per model


@pytest.fixture(scope="module", params=["gbt", "mlp"])
def nonlinear_fit(request, tiny_benchmark):
    config = HeadConfig(predictor=request.param, cost_predictor=request.param, **FAST)
    return fit_routing_head(tiny_benchmark, seed=0, config=config)


def test_nonlinear_heads_predict_in_range_and_cross_fit_train_rows(nonlinear_fit, tiny_benchmark):
    bench, head = tiny_benchmark, nonlinear_fit.head
    n, k = bench.scores.shape
    for array in (nonlinear_fit.p_hat, nonlinear_fit.cost_hat, nonlinear_fit.cost_norm):
        assert array.shape == (n, k) and array.dtype == np.float32 and not array.flags.writeable
        assert np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1
    assert head.correct_model is not None and head.cost_model is not None
    assert head.correct_weights.shape == (0, k) and head.cost_weights.shape == (0, k)
    train, test = bench.splits["train"], bench.splits["test"]
    in_sample, in_sample_cost = head.predict(bench.embeddings[train], bench.prompt_tokens[train])
    assert not np.allclose(in_sample, nonlinear_fit.p_hat[train])  # train rows are out-of-fold, for p̂ ...
    assert not np.allclose(in_sample_cost, nonlinear_fit.cost_hat[train])  # ... and for ĉ
    fresh, fresh_cost = head.predict(bench.embeddings[test], bench.prompt_tokens[test])
    np.testing.assert_allclose(fresh, nonlinear_fit.p_hat[test], atol=1e-5)
    np.testing.assert_allclose(fresh_cost, nonlinear_fit.cost_hat[test], atol=1e-5)
    val = bench.splits["val"]  # Platt-calibrated on validation: mean p̂ matches mean score there
    np.testing.assert_allclose(nonlinear_fit.p_hat[val].mean(axis=0), bench.scores[val].mean(axis=0), atol=0.03)


def test_nonlinear_head_saves_as_arrays_and_loads_without_pickle(tmp_path, nonlinear_fit, tiny_benchmark):
    import json

    nonlinear_fit.head.save(tmp_path)
    meta = json.loads((tmp_path / "routing_head.json").read_text())
    assert meta["format"] == 2 and set(meta["predictors"]) == {"correctness", "cost"}
    with np.load(tmp_path / "routing_head.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)
        assert any(name.startswith("correctness__") for name in arrays.files)
    loaded = RoutingHead.load(tmp_path)
    rows = tiny_benchmark.splits["test"][:60]
    a = nonlinear_fit.head.predict_with_usd(tiny_benchmark.embeddings[rows], tiny_benchmark.prompt_tokens[rows])
    b = loaded.predict_with_usd(tiny_benchmark.embeddings[rows], tiny_benchmark.prompt_tokens[rows])
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert loaded.config == nonlinear_fit.head.config
    assert set(loaded.arrays()) == set(nonlinear_fit.head.arrays())


def test_loading_refuses_a_head_whose_predictors_disagree_with_its_config(tmp_path, nonlinear_fit):
    import json

    nonlinear_fit.head.save(tmp_path)
    meta = json.loads((tmp_path / "routing_head.json").read_text())
    meta["config"]["predictor"] = "logistic"
    (tmp_path / "routing_head.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="correctness predictor is 'logistic'"):
        RoutingHead.load(tmp_path)
    meta["config"]["predictor"] = nonlinear_fit.head.config.predictor
    meta["predictors"]["correctness"]["kind"] = "pickle"
    (tmp_path / "routing_head.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="Unknown predictor kind"):
        RoutingHead.load(tmp_path)


def test_default_head_keeps_format_1_without_predictor_arrays(tmp_path, fit):
    import json

    fit.head.save(tmp_path)
    meta = json.loads((tmp_path / "routing_head.json").read_text())
    assert meta["format"] == 1 and "predictors" not in meta
    assert meta["config"]["predictor"] == "logistic" and meta["config"]["cost_predictor"] == "ridge"
    with np.load(tmp_path / "routing_head.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == set(RoutingHead._ARRAYS)
    assert fit.head.correct_model is None and fit.head.cost_model is None


def test_heads_share_the_fitted_predictor_they_have_in_common(small_benchmark, fit):
    """The per-process cache holds each predictor apart: a head differing only in the score's scales reuses both."""
    other = fit_routing_head(small_benchmark, seed=0, config=HeadConfig(gamma=5.0, cost_scale=2.0))
    assert other is not fit and other.p_hat is fit.p_hat and other.cost_hat is fit.cost_hat


def test_choose_predictor_ranks_on_validation_and_never_reads_test(tiny_benchmark):
    import dataclasses

    from proteus_env.routing_head import choose_predictor

    candidates = ["logistic", {"predictor": "mlp", **FAST}]
    choice = choose_predictor(tiny_benchmark, 0, candidates, cost_candidates=["ridge", {"cost_predictor": "gbt", **FAST}])
    assert set(choice.scores) == {"logistic", "mlp[gbt_max_iter=25,mlp_hidden=(16,),mlp_alpha=3.0,mlp_max_iter=40]"}
    assert choice.predictor == min(choice.scores, key=lambda label: choice.scores[label]["log_loss"])
    assert choice.config.predictor == choice.predictor.split("[")[0]
    assert choice.cost_predictor == min(choice.cost_scores, key=lambda label: choice.cost_scores[label]["rmse_log_cost"])
    for values in choice.scores.values():
        assert set(values) == {"log_loss", "brier", "auc", "ece"} and 0 < values["brier"] < values["log_loss"]
    assert "chosen by log_loss" in choice.summary() and "*" in choice.summary()
    # scrambling the test scores changes nothing: the choice never looks at the test split
    scores = tiny_benchmark.scores.copy()
    test = tiny_benchmark.splits["test"]
    scores[test] = 1.0 - scores[test]
    scrambled = dataclasses.replace(tiny_benchmark, scores=scores)
    again = choose_predictor(scrambled, 0, candidates)
    assert again.predictor == choice.predictor
    for label, values in choice.scores.items():
        assert again.scores[label] == pytest.approx(values, rel=1e-9)
    with pytest.raises(ValueError, match="metric"):
        choose_predictor(tiny_benchmark, 0, ["logistic"], metric="accuracy")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"predictor": "forest"}, "predictor"), ({"cost_predictor": "logistic"}, "cost_predictor"), ({"gbt_max_iter": 0}, "gbt_max_iter"),
     ({"gbt_learning_rate": -0.1}, "gbt_learning_rate"), ({"mlp_hidden": ()}, "mlp_hidden"), ({"mlp_hidden": (8, 0)}, "mlp_hidden"),
     ({"mlp_alpha": float("nan")}, "mlp_alpha")],
)
def test_head_config_rejects_bad_predictor_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HeadConfig(**kwargs)


def test_head_config_from_dict_takes_json_lists_for_mlp_hidden():
    config = HeadConfig.from_dict({"predictor": "mlp", "mlp_hidden": [32, 16]})
    assert config.mlp_hidden == (32, 16) and HeadConfig.from_dict(json_round_trip(config)) == config


def json_round_trip(config):
    import dataclasses
    import json

    return json.loads(json.dumps(dataclasses.asdict(config)))


# ---------------------------------------------------------------------- the action map (issue 14)
PAIR = ["gpt-4-1106-preview", "zero-one-ai/Yi-34B-Chat"]


@pytest.fixture(scope="module")
def pair_fit():
    from proteus_env import load_benchmark

    bench = load_benchmark("synthetic", n_queries=3000, split_seed=0, models=PAIR)
    return bench, fit_routing_head(bench, seed=0)


def _predicted_accuracy(fit, rows, mu):
    p_hat = fit.p_hat[rows]
    return float(p_hat[np.arange(rows.size), fit.head.route(p_hat, fit.cost_hat[rows], mu)].mean())


def test_action_map_spreads_predicted_accuracy_linearly_between_the_plateaus(pair_fit):
    """On a two-model fleet the whole frontier sits in a narrow band of μ; the action map spreads it over [0.1, 0.9]."""
    from proteus_env.routing_head import ACTION_PLATEAU

    bench, fit = pair_fit
    head, rows = fit.head, bench.split_index("train")
    knots = head.action_mu
    assert knots[0] == 0.0 and knots[-1] == 1.0 and (np.diff(knots) >= 0).all()
    low, high = _predicted_accuracy(fit, rows, 0.0), max(_predicted_accuracy(fit, rows, mu) for mu in np.linspace(0, 1, 101))
    # the plateaus: the cheap end up to a = 0.1, the accurate end from a = 0.9
    assert _predicted_accuracy(fit, rows, head.mu_from_action(ACTION_PLATEAU)) == pytest.approx(low, abs=1e-3)
    assert _predicted_accuracy(fit, rows, head.mu_from_action(1.0 - ACTION_PLATEAU)) == pytest.approx(high, abs=1e-3)
    # in between, predicted accuracy is linear in the action (within a grid step)
    for action in (0.3, 0.5, 0.7):
        share = (action - ACTION_PLATEAU) / (1.0 - 2.0 * ACTION_PLATEAU)
        assert _predicted_accuracy(fit, rows, head.mu_from_action(action)) == pytest.approx(low + share * (high - low), abs=0.01)
    # where μ itself would put half the range: a narrow band (the reason for the map)
    mid_mu = [mu for mu in np.linspace(0, 1, 201) if _predicted_accuracy(fit, rows, mu) >= (low + high) / 2][0]
    assert mid_mu > 0.55


def test_action_map_is_the_identity_on_request_and_for_flat_fleets(small_benchmark):
    fit = fit_routing_head(small_benchmark, seed=0, config=HeadConfig(action_map="identity"))
    np.testing.assert_array_equal(fit.head.action_mu, [0.0, 1.0])
    assert fit.head.mu_from_action(0.37) == 0.37
    np.testing.assert_array_equal(fit.head.mu_from_action(np.array([0.0, 0.5, 1.0])), [0.0, 0.5, 1.0])
    from proteus_env.routing_head import fit_action_map

    flat = np.full((20, fit.head.n_models), 0.5)  # every model predicted alike: predicted accuracy cannot move with μ
    np.testing.assert_array_equal(fit_action_map(fit.head, flat, flat), [0.0, 1.0])  # the two-knot identity (env fast path)


def test_action_map_round_trips_and_old_heads_load_as_identity(tmp_path, pair_fit):
    _, fit = pair_fit
    fit.head.save(tmp_path / "new")
    loaded = RoutingHead.load(tmp_path / "new")
    np.testing.assert_array_equal(loaded.action_mu, fit.head.action_mu)
    assert loaded.config.action_map == "accuracy"
    # a head saved before the map existed: no `action_mu` array, no `action_map` key; its policy acted on μ itself
    import json

    fit.head.save(tmp_path / "old")
    arrays = dict(np.load(tmp_path / "old" / "routing_head.npz"))
    del arrays["action_mu"]
    np.savez(tmp_path / "old" / "routing_head.npz", **arrays)
    meta = json.loads((tmp_path / "old" / "routing_head.json").read_text())
    del meta["config"]["action_map"]
    (tmp_path / "old" / "routing_head.json").write_text(json.dumps(meta))
    old = RoutingHead.load(tmp_path / "old")
    assert old.config.action_map == "identity" and old.mu_from_action(0.42) == pytest.approx(0.42)


@pytest.mark.parametrize(("knots", "message"), [
    ([0.0, 0.6, 0.4, 1.0], "rise monotonically"),
    ([0.1, 1.0], "rise monotonically"),
    ([0.0, np.nan, 1.0], "NaN"),
    ([0.5], "at least 2"),
])
def test_routing_head_rejects_a_bad_action_map(tmp_path, pair_fit, knots, message):
    _, fit = pair_fit
    fit.head.save(tmp_path)
    arrays = dict(np.load(tmp_path / "routing_head.npz"))
    arrays["action_mu"] = np.asarray(knots, dtype=np.float64)
    np.savez(tmp_path / "routing_head.npz", **arrays)
    with pytest.raises(ValueError, match=message) as info:
        RoutingHead.load(tmp_path)
    assert "action_mu" in str(info.value)


def test_action_map_clips_like_sb3_and_matches_the_scalar_path(pair_fit):
    _, fit = pair_fit
    head = fit.head
    actions = np.array([-0.5, 0.0, 0.123, 0.5, 0.999, 1.0, 1.5])
    mapped = head.mu_from_action(actions)
    assert mapped[0] == 0.0 and mapped[-1] == 1.0 and (np.diff(mapped) >= 0).all()
    assert [head.mu_from_action(float(a)) for a in actions] == mapped.tolist()
