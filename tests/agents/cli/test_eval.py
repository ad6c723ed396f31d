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


# ---------------------------------------------------------------------------- any agent: --policy (issue 10)
AGENT = ["--benchmark-arg", "n_queries=3000", "--n-taus", "3", "--no-predictive", "--no-dynamic", "--no-sessions", "--n-boot", "50",
         "--no-progress"]


@pytest.fixture(scope="module")
def dqn_zip(tmp_path_factory):
    import gymnasium as gym
    from stable_baselines3 import DQN

    import proteus_env  # noqa: F401

    env = gym.make("Proteus-Synthetic-v0", action_mode="model", benchmark_kwargs={"n_queries": 3000})
    model = DQN("MultiInputPolicy", env, learning_starts=16, buffer_size=200, batch_size=16, policy_kwargs={"net_arch": [8]}, seed=0)
    model.learn(64)
    path = tmp_path_factory.mktemp("cli_agent") / "dqn.zip"
    model.save(path)
    return path


def test_policy_zip_and_module_function_on_the_command_line(dqn_zip, tmp_path, capsys, monkeypatch):
    assert main(["eval", "--policy", str(dqn_zip), "--algo", "DQN", "--env-arg", "action_mode=model", *AGENT,
                 "--out", str(tmp_path / "zip")]) == 0
    out = capsys.readouterr().out
    assert "summary: normalized cost" in out and "dqn" in out
    summary = pd.read_csv(tmp_path / "zip" / "summary.csv")
    assert {"dqn", "oracle", "best_fixed"} <= set(summary["router"])
    assert "--policy" in (tmp_path / "zip" / "report.md").read_text()
    (tmp_path / "rules.py").write_text("import numpy as np\n\ndef greedy(obs):\n    return np.ones((obs['tau'].shape[0], 1))\n")
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--policy", "rules:greedy", "--seeds", "2", *AGENT, "--out", str(tmp_path / "fn")]) == 0
    summary = pd.read_csv(tmp_path / "fn" / "summary.csv").set_index("router")
    assert summary.loc["greedy", "n_seeds"] == 2 and summary.loc["greedy", "normalized_cost_ci_low"] <= summary.loc["greedy", "normalized_cost"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--policy", "{zip}", "--algo", "SACK"], "Unknown algorithm 'SACK'; known algorithms"),
    (["--policy", "{zip}", "--algo", "SAC", "--env-arg", "action_mode=model"], "holds a DQN model"),
    (["--policy", "{zip}", "--algo", "DQN"], "Action-space mismatch"),
    (["--policy", "{zip}"], "--algo"),
    (["--policy", "no_such_module_xyz:act"], "cannot import 'no_such_module_xyz'"),
    (["--policy", "json:dumps", "--algo", "PPO"], "--algo goes with a model zip"),
    (["--policy", "os:sep"], "not a callable"),
    (["--policy", "{zip}", "--algo", "DQN", "--baselines-only"], "exclude each other"),
    (["--algo", "DQN", "--baselines-only"], "--algo goes with --policy"),
    (["--lambda", "0", "--baselines-only"], "--lambda goes with --policy"),  # 0 is given, not absent
    (["--policy", "{zip}", "--algo", "DQN", "--env-arg", "oops"], "key=value"),
])
def test_policy_user_errors_exit_2_with_a_clear_message(dqn_zip, tmp_path, capsys, argv, message):
    argv = [a.replace("{zip}", str(dqn_zip)) for a in argv]
    assert main(["eval", *argv, *AGENT, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("proteus eval: error:") and message in err and "Traceback" not in err
