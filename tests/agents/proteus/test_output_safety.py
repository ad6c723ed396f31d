"""Issue 16, 'nothing is lost when runs collide or stop': the output lock, --overwrite and Ctrl-C."""

import subprocess
import sys
import time

import pytest
import torch
from shared_fixtures import tiny_train_config

from agents.cli import main
from agents.proteus.artifact import verify_checkpoint
from agents.proteus.train import TrainingInterrupted, train
from callbacks.lagrangian import LagrangianDualCallback


def _tiny(out, **kwargs):
    torch.set_num_threads(1)
    return train(config=tiny_train_config(), out_dir=out, seed=0, timesteps=128, n_envs=2, **kwargs)


def test_a_second_run_on_the_same_output_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import pathlib, time; from agents.proteus.train import output_lock\n"
        f"with output_lock(pathlib.Path({str(out)!r})):\n"
        f"    pathlib.Path({str(ready)!r}).write_text('x'); time.sleep(60)")])
    try:
        for _ in range(300):  # bounded wait for the holder to take the lock
            if ready.exists():
                break
            time.sleep(0.1)
        assert ready.exists()
        with pytest.raises(ValueError, match=rf"being written by another proteus train run \(pid {holder.pid}"):
            _tiny(out)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    _tiny(out)  # the lock is free again once its holder is gone
    assert (out / "manifest.json").is_file() and not (tmp_path / "run.lock.owner").exists()


def test_a_foreign_output_directory_needs_overwrite(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds no proteus artifact.*--overwrite"):
        _tiny(out)
    assert (out / "mine.txt").read_text() == "keep me"
    _tiny(out, overwrite=True)
    assert (out / "manifest.json").is_file()
    other = train(config=tiny_train_config(), out_dir=tmp_path / "seed1", seed=1, timesteps=64, n_envs=2)
    with pytest.raises(ValueError, match="other data or another split"):
        train(config=tiny_train_config(), out_dir=other.out_dir, seed=0, timesteps=64, n_envs=2)


def _interrupt_on_second_rollout(monkeypatch):
    original = LagrangianDualCallback._on_rollout_end
    calls = {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(LagrangianDualCallback, "_on_rollout_end", interrupted)


def test_ctrl_c_writes_a_verified_checkpoint_that_resumes(tmp_path, monkeypatch):
    _interrupt_on_second_rollout(monkeypatch)
    with pytest.raises(TrainingInterrupted) as caught:  # two rollouts of 128 steps: interrupted in the second
        train(config=tiny_train_config(), out_dir=tmp_path / "run", seed=0, timesteps=256, n_envs=2)
    checkpoint = caught.value.checkpoint
    assert checkpoint.is_file() and verify_checkpoint(checkpoint)["split_seed"] == 0
    assert f"--resume {checkpoint}" in str(caught.value)
    monkeypatch.undo()
    result = train(config=tiny_train_config(), out_dir=tmp_path / "run", seed=0, timesteps=256, n_envs=2, resume=checkpoint)
    assert result.summary["timesteps"] > caught.value.timesteps


def test_cli_ctrl_c_exits_130_saying_how_to_resume(tmp_path, monkeypatch, capsys):
    import yaml

    _interrupt_on_second_rollout(monkeypatch)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"default": tiny_train_config()}))
    code = main(["train", "--config", str(config), "--timesteps", "256", "--n-envs", "2", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 130 and "--resume" in err and "Traceback" not in err
