"""``proteus train``: Beta-PPO with the Lagrangian dual callback, written to one artifact directory.

Artifact layout (``--out DIR``)::

    model.zip                  SB3 PPO model (BetaActorCriticPolicy); carries the dual state too
    lambda_table.json          λ per τ-bin and the bin edges
    routing_head.npz / .json   the routing head (predictor, prior b, cost model, γ, scales)
    calibration.json           validation accuracy of the deterministic policy per τ input
    config.yaml                the resolved configuration
    benchmark.json             the benchmark's identity (name, fingerprint, sizes, env kwargs)
    summary.json               timesteps, wall time, final validation figures
    checkpoints/               periodic checkpoints (model + λ)
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import proteus_env  # noqa: F401  (registers the ids)
from agents.proteus.calibration import TauCalibration, fit_tau_calibration
from agents.proteus.policies import BetaActorCriticPolicy
from callbacks.lagrangian import MODEL_STATE_ATTRIBUTE, LagrangianDualCallback
from proteus_env.benchmark import Benchmark
from proteus_env.encoders import encoder_from_settings
from proteus_env.env import ProteusRoutingEnv

DEFAULT_ENV_ID = "Proteus-Synthetic-v0"
#: Attribute of the SB3 model naming the data and split it was trained on (saved in the zip).
DATA_IDENTITY_ATTRIBUTE = "proteus_trained_on"


def load_config(env_id: str = DEFAULT_ENV_ID, path: str | Path | None = None) -> dict[str, Any]:
    """Read the rl-zoo style YAML (the packaged default unless ``path``) and pick ``env_id``'s block.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a mapping or has neither ``env_id`` nor ``default``.
    """
    if path is None:
        text = resources.files("agents.proteus").joinpath("configs/default.yaml").read_text()
        source = "agents/proteus/configs/default.yaml"
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Config file {path} does not exist.")
        text, source = path.read_text(), str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"Config file {source} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"Config file {source} must hold a mapping of environment ids to settings.")
    block = data.get(env_id, data.get("default"))
    if not isinstance(block, dict):
        raise ValueError(f"Config file {source} has no block for {env_id!r} and no 'default' block.")
    return copy.deepcopy(block)


def apply_override(config: dict[str, Any], assignment: str) -> None:
    """Apply ``KEY.SUBKEY=VALUE`` (VALUE parsed as YAML) to ``config`` in place.

    Raises:
        ValueError: If ``assignment`` has no ``=``.
    """
    if "=" not in assignment:
        raise ValueError(f"Override {assignment!r} must look like key.subkey=value.")
    key, raw = assignment.split("=", 1)
    target = config
    parts = key.strip().split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = yaml.safe_load(raw)


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    model: PPO
    out_dir: Path
    summary: dict[str, Any]
    calibration: TauCalibration


class _LambdaCheckpoint(BaseCallback):
    """Save the model (its zip carries the dual state) every ``save_freq`` calls."""

    def __init__(self, save_freq: int, directory: Path) -> None:
        super().__init__()
        self.save_freq = max(1, int(save_freq))
        self.directory = directory

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.model.save(self.directory / f"model_{self.num_timesteps}_steps.zip")
            state = getattr(self.model, MODEL_STATE_ATTRIBUTE, None)
            (self.directory / f"lambda_{self.num_timesteps}_steps.json").write_text(json.dumps(state, indent=2))
        return True


def make_training_env(env_id: str, env_kwargs: dict[str, Any], *, n_envs: int, vec_env: str, seed: int):
    """SB3 vector env of ``env_id`` (each env wrapped in ``Monitor``)."""
    if vec_env not in ("dummy", "subproc"):
        raise ValueError(f"`vec_env` must be 'dummy' or 'subproc', got {vec_env!r}.")
    if int(n_envs) != n_envs or n_envs < 1:
        raise ValueError(f"`n_envs` must be a positive integer, got {n_envs!r}.")
    kwargs: dict[str, Any] = {"vec_env_cls": DummyVecEnv}
    if vec_env == "subproc":
        kwargs = {"vec_env_cls": SubprocVecEnv, "vec_env_kwargs": {"start_method": "spawn"}}
        env_id = env_id if ":" in env_id else f"proteus_env:{env_id}"
    return make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs={**env_kwargs, "render_mode": None}, **kwargs)


def train(
    env_id: str = DEFAULT_ENV_ID,
    *,
    config: dict[str, Any] | None = None,
    out_dir: str | Path = "artifacts/proteus",
    seed: int = 0,
    timesteps: int | None = None,
    n_envs: int | None = None,
    vec_env: str | None = None,
    data_path: str | None = None,
    tensorboard: str | Path | None = None,
    resume: str | Path | None = None,
    progress_bar: bool = False,
    verbose: int = 0,
) -> TrainResult:
    """Train the PROTEUS agent and write the artifact directory.

    The seed sets the benchmark split (``split_seed``), the routing head's folds and the training.

    Args:
        env_id: A registered id (``Proteus-Synthetic-v0``, ``Proteus-RouterBench-v0``, ...).
        config: Resolved config block (default: the packaged one for ``env_id``).
        out_dir: Artifact directory.
        seed: Seed of the split, the head and PPO.
        timesteps: Overrides ``n_timesteps``.
        n_envs: Overrides ``n_envs``.
        vec_env: ``"dummy"`` or ``"subproc"``; overrides ``vec_env``.
        data_path: Data file handed to the RouterBench and SPROUT envs.
        tensorboard: TensorBoard log directory.
        resume: An artifact or checkpoint (``.zip``) to continue from, λ included.
        progress_bar: Show SB3's progress bar.
        verbose: SB3 verbosity.

    Returns:
        A :class:`TrainResult`.
    """
    config = copy.deepcopy(config) if config is not None else load_config(env_id)
    timesteps = int(timesteps if timesteps is not None else config["n_timesteps"])
    n_envs = int(n_envs if n_envs is not None else config["n_envs"])
    vec_env = vec_env or config.get("vec_env", "dummy")
    if timesteps < 1:
        raise ValueError(f"`timesteps` must be >= 1, got {timesteps}.")
    env_kwargs = dict(config.get("env_kwargs") or {})
    env_kwargs["split_seed"] = int(seed)
    if data_path is not None:
        env_kwargs["data_path"] = str(data_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    registered = gym.spec(env_id.split(":")[-1]).kwargs
    val_env = ProteusRoutingEnv(**{**registered, **env_kwargs, "split": "val"})
    headroom = float(config.get("tau_headroom", 0.0) or 0.0)
    if headroom > 0 and env_kwargs.get("tau_range") is None:
        # Train on targets a little above the feasible top too: those bins' λ climbs to λ_max and
        # teaches the policy the accurate end of the frontier; the calibration map decides later
        # which τ input serves a requested target. (The second env shares the cached data and head.)
        low, high = val_env.tau_range
        env_kwargs["tau_range"] = [low, min(1.0, round(high + headroom, 4))]
        val_env = ProteusRoutingEnv(**{**registered, **env_kwargs, "split": "val"})
    threads = int(config.get("torch_threads", 1) or 0)
    if threads > 0:  # tiny networks: one thread is fastest and leaves the other core to the envs
        th.set_num_threads(threads)
    venv = make_training_env(env_id, env_kwargs, n_envs=n_envs, vec_env=vec_env, seed=seed)
    dual = LagrangianDualCallback(val_env=val_env, seed=seed, verbose=verbose, **(config.get("dual") or {}))
    ppo_kwargs = dict(config.get("ppo") or {})
    policy_kwargs = dict(config.get("policy_kwargs") or {})
    identity = {"benchmark": val_env.benchmark.name, "fingerprint": val_env.benchmark.fingerprint(), "split_seed": int(seed)}
    if resume is not None:
        model = PPO.load(_resume_path(Path(resume)), env=venv, device=ppo_kwargs.get("device", "cpu"),
                         tensorboard_log=str(tensorboard) if tensorboard else None)
        trained_on = getattr(model, DATA_IDENTITY_ATTRIBUTE, None)
        if trained_on is not None and trained_on != identity:
            raise ValueError(f"Cannot resume {resume}: it was trained on {trained_on}, this run uses {identity} "
                             f"(continuing would train on rows of another split's test set). Use the same --seed and data.")
        model.set_random_seed(seed)
    else:
        model = PPO(BetaActorCriticPolicy, venv, seed=seed, verbose=verbose, policy_kwargs=policy_kwargs,
                    tensorboard_log=str(tensorboard) if tensorboard else None, **ppo_kwargs)
    setattr(model, DATA_IDENTITY_ATTRIBUTE, identity)  # saved in the zip; checked on resume
    callbacks: list[BaseCallback] = [dual]
    every = int(config.get("checkpoint_every", 0) or 0)
    if every > 0:
        callbacks.append(_LambdaCheckpoint(max(1, every // n_envs), out_dir / "checkpoints"))

    start = time.perf_counter()
    model.learn(total_timesteps=timesteps, callback=CallbackList(callbacks), progress_bar=progress_bar,
                reset_num_timesteps=resume is None, tb_log_name="proteus")
    wall = time.perf_counter() - start
    if not dual.last_validation:  # a budget shorter than one rollout: measure once anyway
        dual.update()

    calibration = fit_tau_calibration(model, val_env, n_points=int(config.get("calibration_points", 41)))
    model.save(out_dir / "model.zip")
    (out_dir / "lambda_table.json").write_text(json.dumps(dual.state(), indent=2))
    val_env.head_fit.head.save(out_dir)
    save_benchmark_encoder(val_env.benchmark, out_dir / "encoder")
    calibration.save(out_dir / "calibration.json")
    resolved = {**config, "env_id": env_id, "seed": seed, "n_timesteps": timesteps, "n_envs": n_envs, "vec_env": vec_env,
                "env_kwargs": env_kwargs}
    (out_dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    benchmark = val_env.benchmark
    identity = {"env_id": env_id, "name": benchmark.name, "fingerprint": benchmark.fingerprint(), "n_queries": benchmark.n_queries,
                "models": list(benchmark.models), "embedding_dim": benchmark.embedding_dim, "metadata": benchmark.metadata,
                "env_kwargs": {k: v for k, v in val_env.constructor_kwargs().items() if _jsonable(v)}, "tau_range": list(val_env.tau_range)}
    (out_dir / "benchmark.json").write_text(json.dumps(identity, indent=2, default=str))
    validation = dual.last_validation
    summary = {
        "env_id": env_id, "seed": seed, "timesteps": int(model.num_timesteps), "wall_time_s": wall,
        "steps_per_s": timesteps / wall if wall > 0 else None,
        "val_tau": validation["tau"].tolist(), "val_accuracy": validation["accuracy"].tolist(),
        "val_usd_per_1k": validation["usd_per_1k"].tolist(), "lambda": dual.lambdas.tolist(),
        "val_floor_compliance": float((validation["accuracy"] >= validation["tau"]).mean()),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    venv.close()
    return TrainResult(model=model, out_dir=out_dir, summary=summary, calibration=calibration)


def save_benchmark_encoder(benchmark: Benchmark, directory: Path) -> bool:
    """Refit the benchmark's text encoder on its train prompts and save it, so the router can encode prompts.

    Returns:
        ``False`` when the benchmark has no prompts or no encoder (the synthetic one).

    Raises:
        RuntimeError: If the refitted encoder does not reproduce the benchmark's embeddings.
    """
    name = benchmark.metadata.get("encoder")
    if benchmark.prompts is None or not name:
        return False
    encoder = encoder_from_settings(name, dict(benchmark.metadata.get("encoder_settings") or {}))
    train = benchmark.split_index("train")
    encoder.fit([str(p) for p in benchmark.prompts[train]])
    probe = train[:16]
    if not np.allclose(encoder.transform([str(p) for p in benchmark.prompts[probe]]), benchmark.embeddings[probe], atol=1e-4):
        raise RuntimeError(f"Refitting the {name!r} encoder did not reproduce the benchmark's embeddings; the router could not encode prompts.")
    encoder.save(directory)
    return True


def _resume_path(path: Path) -> Path:
    if path.is_dir():
        path = path / "model.zip"
    if not path.is_file():
        raise FileNotFoundError(f"Nothing to resume from: {path} does not exist (give an artifact directory or a checkpoint .zip).")
    return path


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True
