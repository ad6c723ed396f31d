"""The reliability diagram of `proteus eval`: the routing head's p̂ against realized scores."""

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from agents.evaluation.plots import plot_reliability, reliability_frame, write_figures
from agents.evaluation.report import FIGURES
from agents.evaluation.result import CALIBRATION_COLUMNS, EvalResult
from proteus_env import fit_routing_head, make_synthetic_benchmark
from proteus_env.metrics import expected_calibration_error


@pytest.fixture(scope="module")
def bench_and_fit():
    bench = make_synthetic_benchmark(n_queries=1500, seed=0)
    return bench, fit_routing_head(bench, seed=0)


def _result(calibration):
    empty = pd.DataFrame()
    return EvalResult(results=pd.DataFrame({"router": ["carrot"], "family": ["carrot"]}), aggregates=empty, dynamic=empty,
                      dynamic_summary=empty, fixed_models=empty, ranges=empty, taus=np.array([0.5]), seeds=[0, 1], confidences=(None,),
                      benchmark={"name": "synthetic"}, routers=[], schedules={}, calibration=calibration)


def test_reliability_frame_bins_every_split_and_model(bench_and_fit):
    bench, fit = bench_and_fit
    frame = reliability_frame(bench, fit, seed=3)
    assert list(frame.columns) == list(CALIBRATION_COLUMNS)
    assert len(frame) == 2 * bench.n_models * 10 and set(frame["split"]) == {"val", "test"} and (frame["seed"] == 3).all()
    test = bench.split_index("test")
    per_model = frame[frame["split"] == "test"].groupby("model", sort=False)["count"].sum()
    assert (per_model == test.size).all()
    # the ECE recomputed from the bins is the metric's
    k = 2
    part = frame[(frame["split"] == "test") & (frame["model"] == bench.models[k]) & (frame["count"] > 0)]
    from_bins = float((part["count"] * (part["mean_score"] - part["mean_probability"]).abs()).sum() / part["count"].sum())
    assert from_bins == pytest.approx(expected_calibration_error(bench.scores[test, k], fit.p_hat[test, k].astype(np.float64)))


def test_reliability_figure_is_written_with_the_others(tmp_path, bench_and_fit):
    bench, fit = bench_and_fit
    calibration = pd.concat([reliability_frame(bench, fit, seed=s) for s in (0, 1)], ignore_index=True)
    figure = plot_reliability(_result(calibration))
    assert len([ax for ax in figure.axes if ax.has_data()]) == bench.n_models + 1  # all models, then each
    figure.savefig(tmp_path / "reliability.png")
    image = matplotlib.image.imread(tmp_path / "reliability.png")
    assert image.ndim == 3 and image.std() > 0
    assert "reliability.png" in dict(FIGURES)


def test_reliability_figure_without_predictions_is_a_placeholder():
    result = _result(pd.DataFrame(columns=list(CALIBRATION_COLUMNS)))
    figure = plot_reliability(result)
    assert len(figure.axes) == 1 and not figure.axes[0].axison


def test_eval_result_defaults_to_no_calibration():
    empty = pd.DataFrame()
    result = EvalResult(results=empty, aggregates=empty, dynamic=empty, dynamic_summary=empty, fixed_models=empty, ranges=empty,
                        taus=np.array([0.5]), seeds=[0], confidences=(None,), benchmark={}, routers=[], schedules={})
    assert result.calibration.empty and list(result.calibration.columns) == list(CALIBRATION_COLUMNS)


def test_evaluate_records_the_head_calibration(tmp_path):
    from agents.evaluation.run import evaluate

    result = evaluate(None, benchmark_kwargs={"n_queries": 1500}, seeds=[1], n_taus=2, predictive=False, n_boot=20, dynamic=False,
                      progress=False)
    assert set(result.calibration["split"]) == {"val", "test"} and set(result.calibration["seed"]) == {1}
    paths = write_figures(result, tmp_path)
    assert paths["reliability.png"].is_file() and paths["reliability.png"].stat().st_size > 0
