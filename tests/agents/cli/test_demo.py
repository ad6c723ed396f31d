import pytest

from agents.cli import main
from agents.cli.demo import run_demo


def test_fixed_mu_demo_meets_validation_calibrated_targets_on_test(capsys):
    assert main(["demo", "--fixed-mu-only", "--taus", "0.4", "0.6"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip().startswith(("0.40", "0.60"))]
    assert len(lines) == 2 and "fixed-mu acc" in out and "PROTEUS" not in out
    rows = run_demo([0.4, 0.6], train_agent=False)
    assert rows[0]["fixed_mu"] < rows[1]["fixed_mu"] and rows[0]["fixed_usd_per_1k"] < rows[1]["fixed_usd_per_1k"]
    # the margin buys accuracy with cost: never a lower μ, never a lower test accuracy than without it
    raw = run_demo([0.4, 0.6], train_agent=False, confidence=None)
    for r, m in zip(raw, rows, strict=True):
        assert r["fixed_mu"] <= m["fixed_mu"] and r["fixed_accuracy"] <= m["fixed_accuracy"]


def test_fixed_mu_calibration_meets_the_target_on_validation_by_construction():
    import gymnasium as gym
    import numpy as np

    from agents.cli.demo import calibrate_fixed_mu

    env = gym.make("Proteus-Synthetic-v0", benchmark_kwargs={"n_queries": 3000}).unwrapped
    val = env.benchmark.splits["val"]
    mus, reachable = calibrate_fixed_mu(env, [0.4, 0.6, 0.99])
    assert reachable.tolist() == [True, True, False] and mus[2] == 1.0  # 0.99 is out of reach: the accurate end, flagged
    for tau, mu in zip([0.4, 0.6], mus[:2], strict=True):
        chosen = env.head_fit.head.route(env.head_fit.p_hat[val], env.head_fit.cost_hat[val], mu)
        assert env.benchmark.scores[val, chosen].mean() >= tau
        if mu > 0:  # and it is the cheapest μ that does (a step lower misses)
            lower = env.head_fit.head.route(env.head_fit.p_hat[val], env.head_fit.cost_hat[val], mu - 0.01)
            assert env.benchmark.scores[val, lower].mean() < tau or np.isclose(mu, 0.0)


def test_demo_trains_and_reports_both_routers(tmp_path):
    rows = run_demo([0.5], timesteps=256, out_dir=tmp_path)
    (row,) = rows
    assert (tmp_path / "model.zip").is_file()
    for key in ("proteus_accuracy", "proteus_usd_per_1k", "fixed_accuracy", "fixed_usd_per_1k"):
        assert row[key] > 0
    assert 0.0 <= row["proteus_mu"] <= 1.0


def test_demo_takes_a_confidence_level_or_none(capsys):
    assert main(["demo", "--fixed-mu-only", "--taus", "0.4", "--confidence", "none"]) == 0
    assert "no guarantee" in capsys.readouterr().out
    assert main(["demo", "--fixed-mu-only", "--taus", "0.4", "--margin", "0.9"]) == 0  # --margin: an alias
    assert "certified to hold with probability 90%" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["demo", "--taus", "1.5"], ["demo", "--confidence", "2"], ["demo", "--margin", "2"],
                                  ["demo", "--confidence", "high"]])
def test_demo_rejects_bad_arguments(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("proteus demo: error:") and argv[-1] in err and "Traceback" not in err
