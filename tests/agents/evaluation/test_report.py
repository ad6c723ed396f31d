"""`proteus eval --out DIR`: report.md, results.csv, the figures and the terminal table."""

import matplotlib.image
import pandas as pd
import pytest

from agents.cli import main
from agents.evaluation.plots import write_figures
from agents.evaluation.report import FIGURES, report_markdown, write_report
from agents.evaluation.result import RESULT_COLUMNS
from agents.evaluation.run import evaluate

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BASELINES = {"oracle", "best_fixed", "cheapest", "random", "zero_router", "carrot", "knn", "mlp", "omnirouter",
             "omnirouter_uncalibrated"}


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_routers):
    """`proteus eval` on two tiny routers (seeds 0 and 1) with and without a confidence level."""
    parent = tiny_routers
    out = tmp_path_factory.mktemp("report")
    code = main(["eval", "--router", str(parent / "seed0"), str(parent / "seed1"), "--confidence", "none", "0.95", "--n-taus", "5",
                 "--n-boot", "100", "--stream-length", "400", "--window", "100", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_every_file_is_written(report):
    for name in ("report.md", "results.csv", "aggregates.csv", "dynamic.csv", *(name for name, _ in FIGURES)):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name


@pytest.mark.parametrize("name", [name for name, _ in FIGURES])
def test_figures_are_valid_pngs(report, name):
    data = (report / name).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(report / name)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # not a blank canvas


def test_results_csv_has_one_row_per_router_tau_seed(report):
    results = pd.read_csv(report / "results.csv")
    assert list(results.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    routers = set(results["router"])
    confident = {f"{name}[confidence=0.95]" for name in ("zero_router", "carrot", "knn", "mlp", "omnirouter", "omnirouter_uncalibrated")}
    assert routers == BASELINES | confident | {"proteus_raw", "proteus", "proteus[confidence=0.95]"}
    assert sorted(results["seed"].unique()) == [0, 1] and results["tau"].nunique() == 5
    assert len(results) == len(routers) * 5 * 2
    assert not results.duplicated(["router", "tau", "seed"]).any()
    proteus = results[results["family"] == "proteus"]
    assert proteus["mean_mu"].between(0, 1).all() and results.loc[results["kind"] == "baseline", "mean_mu"].isna().all()
    assert (results["accuracy_ci_low"] <= results["accuracy"] + 1e-9).all()
    assert (results["floor_met"] == (results["accuracy"] >= results["tau"])).all()
    assert set(results.loc[results["router"] == "proteus[confidence=0.95]", "calibration_confidence"].astype(str)) == {"0.95"}


def test_aggregates_have_compliance_and_spread(report):
    aggregates = pd.read_csv(report / "aggregates.csv").set_index("router")
    for column in ("floor_compliance", "floor_compliance_sd", "band_2pp", "band_5pp", "pearson_tau_mu", "cost_range",
                   "max_savings_vs_best_fixed", "gap_to_oracle", "aiq", "routing_efficiency", "rpi", "mean_accuracy",
                   "mean_usd_per_1k"):
        assert column in aggregates.columns, column
    assert aggregates["floor_compliance"].between(0, 1).all()
    assert aggregates.loc["oracle", "floor_compliance"] == 1.0
    assert (aggregates["n_seeds"] == 2).all() and (aggregates["n_pairs"] == 10).all()


def test_dynamic_windows(report):
    windows = pd.read_csv(report / "dynamic.csv")
    assert set(windows["scenario"]) == {"step", "drift", "cyclic"}
    assert {"proteus", "proteus[confidence=0.95]", "carrot", "zero_router"} <= set(windows["router"])
    shares = windows.groupby(["router", "scenario", "seed"])["met"].mean()
    assert shares.between(0, 1).all() and (windows.groupby(["router", "scenario", "seed"]).size() == 4).all()
    step = windows[(windows["scenario"] == "step") & (windows["router"] == "carrot") & (windows["seed"] == 0)].sort_values("window")
    assert step["tau_mean"].iloc[0] < step["tau_mean"].iloc[-1]  # the target actually steps
    assert step["tau_mean"].iloc[0] == step["tau_mean"].iloc[1]


def test_report_markdown_sections(report):
    text = (report / "report.md").read_text()
    for fragment in ("## Setup", "proteus eval --router", "Seeds", "[0, 1]", "## Accuracy, cost and floor per τ", "## Aggregates",
                     "## Dynamic targets", "`proteus[confidence=0.95]`", "compliance.png", "## Achievable range"):
        assert fragment in text, fragment


def test_terminal_table_and_infeasible_marks(tmp_path, capsys):
    code = main(["eval", "--baselines-only", "--benchmark-arg", "n_queries=3000", "--seeds", "1", "--taus", "0.4", "0.99",
                 "--no-predictive", "--no-dynamic", "--n-boot", "100", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "carrot" in out and "0.99†" in out and "aggregates" in out
    text = (tmp_path / "report.md").read_text()
    assert "τ=0.99 †" in text and "Infeasible τ" in text and "τ=0.40 |" in text
    results = pd.read_csv(tmp_path / "results.csv")
    assert results.loc[results["tau"] == 0.99, "feasible"].eq(False).all()
    assert results.loc[results["tau"] == 0.4, "feasible"].all()
    dynamic_png = matplotlib.image.imread(tmp_path / "dynamic.png")  # placeholder figure when not run
    assert dynamic_png.size > 0


def test_writers_work_from_python(tmp_path):
    result = evaluate(None, benchmark_kwargs={"n_queries": 3000}, seeds=1, n_taus=3, predictive=False, n_boot=50,
                      stream_length=200, window=50, progress=False)
    assert report_markdown(result).startswith("# PROTEUS evaluation report")
    paths = {**write_report(result, tmp_path), **write_figures(result, tmp_path)}
    assert all(path.is_file() for path in paths.values())
    assert len(pd.read_csv(paths["results.csv"])) == result.results["router"].nunique() * 3
