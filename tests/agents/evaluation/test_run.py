"""The protocol: settings, seeds, artifact checks, the τ grid and feasibility, baselines only."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from agents.evaluation.contenders import find_artifacts
from agents.evaluation.run import EvalSettings, evaluate, resolve_seeds

SMALL = {"n_queries": 3000}
FAST = {"n_boot": 100, "progress": False}
QUICK = {"benchmark_kwargs": SMALL, "seeds": 1, "n_taus": 3, "predictive": False, "dynamic": False, "n_boot": 50, "progress": False}


# ---------------------------------------------------------------------------- settings
def test_settings_are_checked_and_normalized():
    settings = EvalSettings(confidences=[None, 0.95, None, 0.95], taus=[0.5, 0.6], n_taus=3.0)
    assert settings.confidences == (None, 0.95) and settings.taus == (0.5, 0.6) and settings.n_taus == 3
    assert EvalSettings(confidences=0.9).confidences == (0.9,) and EvalSettings(confidences=None).confidences == (None,)
    assert dataclasses.replace(settings, n_boot=10) == EvalSettings(confidences=(None, 0.95), taus=(0.5, 0.6), n_taus=3, n_boot=10)
    bad = [({"confidences": (2.0,)}, "confidences"), ({"confidences": ()}, "confidences"), ({"n_taus": 0}, "n_taus"),
           ({"n_boot": 1.5}, "n_boot"), ({"stream_length": 1}, "stream_length"), ({"window": 2000}, "window"),
           ({"torch_threads": 0}, "torch_threads"), ({"taus": []}, "taus"), ({"benchmark": 3}, "benchmark")]
    for options, name in bad:
        with pytest.raises(ValueError, match=f"`{name}"):
            EvalSettings(**options)


def test_keywords_settings_and_the_deprecated_alias_are_one_call():
    by_keywords = evaluate(None, confidences=(None, 0.95), **QUICK)
    by_settings = evaluate(None, EvalSettings(confidences=(None, 0.95), **QUICK))
    overridden = evaluate(None, EvalSettings(confidences=(0.9,), **QUICK), confidences=(None, 0.95))
    with pytest.warns(DeprecationWarning, match="confidences"):
        by_alias = evaluate(None, margins=(None, 0.95), **QUICK)
    for other in (by_settings, overridden, by_alias):
        assert other.confidences == (None, 0.95)
        assert by_keywords.results.equals(other.results) and by_keywords.aggregates.equals(other.aggregates)
    with pytest.raises(TypeError, match="tau_grid"):
        evaluate(None, tau_grid=[0.5], **QUICK)
    with pytest.raises(TypeError, match="margins"):
        evaluate(None, margins=(None,), confidences=(None,), **QUICK)


def test_results_carry_the_calibration_confidence_and_the_slack():
    result = evaluate(None, confidences=(None, 0.95), **QUICK)
    results = result.results.set_index("router")
    assert results.loc["carrot[confidence=0.95]", "calibration_confidence"].eq("0.95").all()
    assert results.loc["carrot", "calibration_confidence"].eq("none").all()
    assert results.loc["oracle", "calibration_confidence"].eq("n/a").all()
    np.testing.assert_allclose(result.results["slack"], result.results["accuracy"] - result.results["tau"])
    assert "calibration_confidence" in result.aggregates.columns and "margin" not in result.results.columns


# ---------------------------------------------------------------------------- seeds and artifacts
def test_seeds_follow_the_routers_and_must_agree(tiny_routers):
    found = find_artifacts([tiny_routers])
    assert resolve_seeds(found, None) == [0, 1]
    assert resolve_seeds(found, 2) == [0, 1]
    assert resolve_seeds(None, 3) == [0, 1, 2]
    assert resolve_seeds(None, None) == [0]
    with pytest.raises(ValueError, match="disagrees with the routers"):
        resolve_seeds(found, 3)
    with pytest.raises(ValueError, match="disagrees with the routers"):
        evaluate([tiny_routers / "seed0"], seeds=[1], **FAST)
    with pytest.raises(ValueError, match="`seeds`"):
        resolve_seeds(None, 0)


def test_an_artifact_is_evaluated_on_its_own_data_only(tiny_routers, tmp_path):
    target = tmp_path / "tampered"
    shutil.copytree(tiny_routers / "seed0", target)
    identity = json.loads((target / "benchmark.json").read_text())
    identity["env_kwargs"]["benchmark_kwargs"] = {"n_queries": 2500}
    (target / "benchmark.json").write_text(json.dumps(identity))
    with pytest.raises(ValueError, match="benchmark.json does not match its checksum"):
        evaluate([target], predictive=False, dynamic=False, **FAST)
    with pytest.raises(ValueError, match="fingerprint"):  # other loader arguments: other data
        evaluate([tiny_routers / "seed1"], benchmark_kwargs={"n_queries": 2500}, predictive=False, dynamic=False, **FAST)
    with pytest.raises(ValueError, match="trained on 'synthetic'"):
        evaluate([tiny_routers / "seed0"], benchmark="routerbench", **FAST)


# ---------------------------------------------------------------------------- grid and feasibility
def test_baselines_only_default_grid_is_feasible_and_user_grid_is_flagged():
    result = evaluate(None, benchmark_kwargs=SMALL, seeds=2, predictive=False, dynamic=False, **FAST)
    assert result.seeds == [0, 1] and result.routers == []
    assert result.results["feasible"].all()
    low, high = result.ranges["low"].max(), result.ranges["high"].min()
    assert low - 1e-9 <= result.taus.min() and result.taus.max() <= high + 1e-9 and result.taus.size == 11
    assert "proteus" not in set(result.results["family"])

    flagged = evaluate(None, benchmark_kwargs=SMALL, seeds=1, taus=[0.05, 0.5, 0.99], predictive=False, dynamic=False, **FAST)
    feasible = flagged.results.drop_duplicates("tau").set_index("tau")["feasible"]
    assert feasible.to_dict() == {0.05: False, 0.5: True, 0.99: False}
    carrot = flagged.aggregates.set_index("router").loc["carrot"]
    assert carrot["n_pairs"] == 1  # aggregates use the feasible (τ, seed) pairs only
    assert len(flagged.results) == flagged.results["router"].nunique() * 3


def test_paper_targets_are_infeasible_on_the_routerbench_sample(routerbench_sample, tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEUS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROTEUS_DATA_DIR", raising=False)
    result = evaluate(None, benchmark="routerbench", data_path=routerbench_sample, seeds=1, taus=[0.5, 0.85, 0.9, 0.95],
                      dynamic=False, **FAST)
    assert result.benchmark["name"] == "routerbench" and result.benchmark["n_queries"] == 365
    feasible = result.results.drop_duplicates("tau").set_index("tau")["feasible"]
    assert feasible.loc[0.5] and not feasible.loc[[0.85, 0.9, 0.95]].any()
    assert result.ranges["high"].max() < 0.85  # the achievable maximum with realized correctness
    assert {"knn", "mlp", "carrot", "omnirouter", "omnirouter_uncalibrated", "zero_router"} <= set(result.results["router"])
