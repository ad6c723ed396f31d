"""`proteus eval` on the command line: the confidence option (and its --margin alias), user errors."""

import pandas as pd
import pytest

from agents.cli import main

QUICK = ["--baselines-only", "--benchmark-arg", "n_queries=3000", "--seeds", "1", "--n-taus", "2", "--no-predictive",
         "--no-dynamic", "--n-boot", "50", "--no-progress"]


@pytest.mark.parametrize("flag", ["--confidence", "--margin"])
def test_confidence_levels_and_the_margin_alias(tmp_path, capsys, flag):
    assert main(["eval", *QUICK, flag, "none", "0.9", "--out", str(tmp_path)]) == 0
    results = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    assert {"carrot", "carrot[confidence=0.9]"} <= set(results["router"])
    assert set(results.loc[results["router"] == "carrot[confidence=0.9]", "calibration_confidence"].astype(str)) == {"0.9"}
    text = (tmp_path / "report.md").read_text()
    assert "--confidence none 0.9" in text and "Calibration confidence level(s): none, 0.9" in text
    assert "carrot[confidence=0.9]" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["1.5", "high"])
def test_a_bad_confidence_is_a_user_error(tmp_path, capsys, value):
    assert main(["eval", *QUICK, "--confidence", value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("proteus eval: error: --confidence") and value in err and "Traceback" not in err


@pytest.mark.parametrize(("extra", "message"), [
    (["--seeds", "3", "--no-progress"], "disagrees with the routers"),
    (["--baselines-only"], "exclude each other"),
    (None, "--router"),
])
def test_cli_rejects_contradictory_options(tiny_routers, tmp_path, capsys, extra, message):
    argv = ["eval", "--out", str(tmp_path)] + ([] if extra is None else ["--router", str(tiny_routers), *extra])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("proteus eval: error:") and message in err and "Traceback" not in err
