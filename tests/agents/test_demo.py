import pytest

from agents.cli import main
from agents.demo import run_demo


def test_fixed_mu_demo_meets_validation_calibrated_targets_on_test(capsys):
    assert main(["demo", "--fixed-mu-only", "--taus", "0.4", "0.6"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip().startswith(("0.40", "0.60"))]
    assert len(lines) == 2 and "fixed-mu acc" in out and "PROTEUS" not in out


def test_demo_trains_and_reports_both_routers(tmp_path):
    rows = run_demo([0.5], timesteps=256, out_dir=tmp_path)
    (row,) = rows
    assert (tmp_path / "model.zip").is_file()
    for key in ("proteus_accuracy", "proteus_usd_per_1k", "fixed_accuracy", "fixed_usd_per_1k"):
        assert row[key] > 0
    assert 0.0 <= row["proteus_mu"] <= 1.0


@pytest.mark.parametrize("argv", [["demo", "--taus", "1.5"], ["demo", "--margin", "2"]])
def test_demo_rejects_bad_arguments(argv):
    with pytest.raises(SystemExit):
        main(argv)
