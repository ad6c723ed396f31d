"""``proteus train``: Beta-PPO with the Lagrangian dual callback, written to one artifact directory.

    result = train("Proteus-Synthetic-v0", config=load_train_config(), out_dir="artifacts/proteus", seed=0)
    router = ProteusRouter.load(result.out_dir)

The artifact's files are defined by :mod:`agents.proteus.artifact`; the configuration by
:mod:`agents.proteus.config` (:func:`load_config` and :func:`apply_override` are re-exported here).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from filelock import FileLock, Timeout
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import proteus_env  # registers the ids; ENV_IDS
from agents.proteus.artifact import (
    CHECKPOINT_RECORD,
    CHECKPOINTS_DIR,
    ChecksummedCheckpointCallback,
    benchmark_identity,
    is_artifact,
    read_artifact,
    read_manifest,
    record_checkpoint,
    same_data,
    verify_checkpoint,
    write_artifact,
)
from agents.proteus.calibration import TauCalibration, fit_tau_calibration
from agents.proteus.collapse import CollapsedPolicyWarning, collapse_record, describe_collapse
from agents.proteus.config import DEFAULT_ENV_ID, TrainConfig, apply_override, load_config, load_train_config
from agents.proteus.policies import BetaActorCriticPolicy
from callbacks.lagrangian import LagrangianDualCallback
from callbacks.validation_hook import ValidationHook, ValidationHookCallback
from proteus_env.benchmark import Benchmark, parse_model_names
from proteus_env.encoders import Encoder, encoder_from_settings
from proteus_env.env import ProteusRoutingEnv

__all__ = ["DEFAULT_ENV_ID", "TrainConfig", "TrainResult", "apply_override", "fit_benchmark_encoder", "load_config",
           "load_train_config", "make_training_env", "train"]

#: Attribute of the SB3 model naming the data and split it was trained on (saved in the zip).
DATA_IDENTITY_ATTRIBUTE = "proteus_trained_on"


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    model: PPO
    out_dir: Path
    summary: dict[str, Any]
    calibration: TauCalibration


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
    config: TrainConfig | Mapping[str, Any] | None = None,
    out_dir: str | Path = "artifacts/proteus",
    seed: int = 0,
    timesteps: int | None = None,
    n_envs: int | None = None,
    vec_env: str | None = None,
    data_path: str | None = None,
    models: Sequence[str] | str | None = None,
    exclude_models: Sequence[str] | str | None = None,
    tensorboard: str | Path | None = None,
    resume: str | Path | None = None,
    progress_bar: bool = False,
    verbose: int = 0,
    overwrite: bool = False,
    on_validation: ValidationHook | None = None,
) -> TrainResult:
    """Train the PROTEUS agent and write the artifact directory (replacing an artifact already there).

    The seed sets the benchmark split (``split_seed``), the routing head's folds and the training.
    Checkpoints (every ``checkpoint_every`` transitions) go to ``out_dir/checkpoints``.

    Args:
        env_id: A registered id (``Proteus-Synthetic-v0``, ``Proteus-RouterBench-v0``, ...).
        config: A :class:`TrainConfig` or a (partial) mapping of one (default: the packaged one for ``env_id``).
        out_dir: Artifact directory.
        seed: Seed of the split, the head and PPO.
        timesteps: Overrides ``n_timesteps``.
        n_envs: Overrides ``n_envs``.
        vec_env: ``"dummy"`` or ``"subproc"``; overrides ``vec_env``.
        data_path: Data file handed to the RouterBench and SPROUT envs.
        models: Train on these models of the benchmark only (the env's ``models``; recorded in the artifact).
        exclude_models: Leave these models out (the env's ``exclude_models``).
        tensorboard: TensorBoard log directory.
        resume: An artifact directory or a checkpoint ``.zip`` to continue from, λ included. Its
            checksums are verified first; SB3 then loads its ``model.zip`` (which unpickles it), so
            resume only from artifacts you trust.
        progress_bar: Show SB3's progress bar.
        verbose: SB3 verbosity.
        overwrite: Replace whatever ``out_dir`` holds. Without it, a non-empty ``out_dir`` must be
            an artifact of the same data and split (it is then replaced, its checkpoints kept).
        on_validation: ``hook(timesteps, validation)``, called after every dual update with the
            dual callback's ``last_validation`` (per-bin ``tau``, ``accuracy``, ``usd_per_1k``, ...;
            :class:`~callbacks.validation_hook.ValidationHookCallback`); ``proteus sweep`` reports
            to Ray Tune with it.

    While it runs, ``out_dir`` is locked (``<out_dir>.lock``): a second run pointed at it stops at
    once with an error naming the holder. Ctrl-C writes a checkpoint that ``resume`` verifies and
    raises :class:`TrainingInterrupted` saying how to resume.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: On a bad config value, or a ``resume`` source that fails verification or was
            trained on other data or another split.
        FileNotFoundError: If ``resume`` does not exist.
    """
    cfg = TrainConfig.coerce(config) if config is not None else load_train_config(env_id)
    timesteps = int(timesteps if timesteps is not None else cfg.n_timesteps)
    n_envs = int(n_envs if n_envs is not None else cfg.n_envs)
    vec_env = vec_env or cfg.vec_env
    if timesteps < 1:
        raise ValueError(f"`timesteps` must be >= 1, got {timesteps}.")
    env_kwargs = dict(cfg.env_kwargs)
    env_kwargs["split_seed"] = int(seed)
    if data_path is not None:
        env_kwargs["data_path"] = str(data_path)
    for key, names in (("models", models), ("exclude_models", exclude_models)):  # model subset (issue 14)
        if names is not None:
            env_kwargs[key] = list(parse_model_names(names, key) or ())
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"Artifact path {out_dir} exists and is not a directory.")
    with output_lock(out_dir):
        return _train_locked(env_id, cfg, env_kwargs, out_dir=out_dir, seed=seed, timesteps=timesteps, n_envs=n_envs, vec_env=vec_env,
                             tensorboard=tensorboard, resume=resume, progress_bar=progress_bar, verbose=verbose, overwrite=overwrite,
                             on_validation=on_validation)


def _train_locked(env_id: str, cfg: TrainConfig, env_kwargs: dict[str, Any], *, out_dir: Path, seed: int, timesteps: int, n_envs: int,
                  vec_env: str, tensorboard: str | Path | None, resume: str | Path | None, progress_bar: bool, verbose: int,
                  overwrite: bool, on_validation: ValidationHook | None = None) -> TrainResult:
    """The body of :func:`train`, run while ``out_dir`` is locked."""
    registered = registered_kwargs(env_id)
    val_env = ProteusRoutingEnv(**{**registered, **env_kwargs, "split": "val"})
    headroom = float(cfg.tau_headroom or 0.0)
    if headroom > 0 and env_kwargs.get("tau_range") is None:
        # Train on targets a little above the feasible top too: those bins' λ climbs to λ_max and
        # teaches the policy the accurate end of the frontier; the calibration map decides later
        # which τ input serves a requested target. (The second env shares the cached data and head.)
        low, high = val_env.tau_range
        env_kwargs["tau_range"] = [low, min(1.0, round(high + headroom, 4))]
        val_env = ProteusRoutingEnv(**{**registered, **env_kwargs, "split": "val"})
    benchmark = val_env.benchmark
    data_identity = benchmark_identity(benchmark, seed)
    if not overwrite and resume is None:  # a resume source is verified against the data below
        check_output_dir(out_dir, data_identity)
    resume_zip = _verified_resume_zip(Path(resume), data_identity) if resume is not None else None
    threads = int(cfg.torch_threads or 0)
    if threads > 0:  # tiny networks: one thread is fastest and leaves the other core to the envs
        th.set_num_threads(threads)
    venv = make_training_env(env_id, env_kwargs, n_envs=n_envs, vec_env=vec_env, seed=seed)
    dual = LagrangianDualCallback(val_env=val_env, seed=seed, verbose=verbose, **dataclasses.asdict(cfg.dual))
    ppo_kwargs = dataclasses.asdict(cfg.ppo)
    head = val_env.head_fit.head
    # the action map gives the policy's actions their meaning: a checkpoint trained under another map must not continue
    identity = {"benchmark": benchmark.name, "fingerprint": benchmark.fingerprint(), "split_seed": int(seed),
                "action_map": head.config.action_map, "action_mu_sha256": hashlib.sha256(head.action_mu.tobytes()).hexdigest()}
    if resume_zip is not None:
        model = PPO.load(resume_zip, env=venv, device=ppo_kwargs["device"], tensorboard_log=str(tensorboard) if tensorboard else None)
        trained_on = getattr(model, DATA_IDENTITY_ATTRIBUTE, None)
        if trained_on is not None and trained_on != identity:
            raise ValueError(f"Cannot resume {resume}: it was trained on {trained_on}, this run uses {identity} "
                             f"(continuing would train on rows of another split's test set). Use the same --seed and data.")
        model.set_random_seed(seed)
    else:
        model = PPO(BetaActorCriticPolicy, venv, seed=seed, verbose=verbose, policy_kwargs=cfg.policy_kwargs.to_sb3(),
                    tensorboard_log=str(tensorboard) if tensorboard else None, **ppo_kwargs)
    setattr(model, DATA_IDENTITY_ATTRIBUTE, identity)  # saved in the zip; checked on resume
    if not tensorboard:  # SB3's default logger would leave an empty tempdir/SB3-<date> folder behind every run
        model.set_logger(Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if verbose >= 1 else []))
    callbacks: list[BaseCallback] = [dual]
    reporter = ValidationHookCallback(dual, on_validation) if on_validation is not None else None
    if reporter is not None:
        callbacks.append(reporter)  # after the dual: it reports the pass the dual just made
    if cfg.checkpoint_every > 0:
        callbacks.append(ChecksummedCheckpointCallback(max(1, cfg.checkpoint_every // n_envs), out_dir / CHECKPOINTS_DIR, data_identity))

    start = time.perf_counter()
    try:
        model.learn(total_timesteps=timesteps, callback=CallbackList(callbacks), progress_bar=progress_bar,
                    reset_num_timesteps=resume is None, tb_log_name="proteus")
    except KeyboardInterrupt:
        checkpoint = out_dir / CHECKPOINTS_DIR / f"interrupted_{model.num_timesteps}_steps.zip"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        model.save(checkpoint)  # carries the dual state
        record_checkpoint(checkpoint, data_identity)
        venv.close()
        raise TrainingInterrupted(checkpoint, out_dir, model.num_timesteps) from None
    wall = time.perf_counter() - start
    if not dual.last_validation:  # a budget shorter than one rollout: measure once anyway
        dual.update()
    if reporter is not None:
        reporter.report_if_new()

    calibration = fit_tau_calibration(model, val_env, n_points=cfg.calibration_points)
    resolved = {**cfg.to_dict(), "env_id": env_id, "seed": seed, "n_timesteps": timesteps, "n_envs": n_envs, "vec_env": vec_env,
                "env_kwargs": env_kwargs}
    description = {"env_id": env_id, "name": benchmark.name, "fingerprint": benchmark.fingerprint(), "n_queries": benchmark.n_queries,
                   "models": list(benchmark.models), "embedding_dim": benchmark.embedding_dim, "metadata": benchmark.metadata,
                   "env_kwargs": {k: v for k, v in val_env.constructor_kwargs().items() if _jsonable(v)},
                   "tau_range": list(val_env.tau_range)}
    validation = dual.last_validation
    summary = {
        "env_id": env_id, "seed": seed, "timesteps": int(model.num_timesteps), "wall_time_s": wall,
        "steps_per_s": timesteps / wall if wall > 0 else None,
        "val_tau": validation["tau"].tolist(), "val_accuracy": validation["accuracy"].tolist(),
        "val_usd_per_1k": validation["usd_per_1k"].tolist(), "lambda": dual.lambdas.tolist(),
        "val_floor_compliance": float((validation["accuracy"] >= validation["tau"]).mean()),
        "reachable_accuracy": [float(calibration.val_accuracy.min()), float(calibration.val_accuracy.max())],
        **collapse_record(validation.get("tau_span", float("nan")), validation["tau"], validation["accuracy"], dual.achievable_range),
    }
    write_artifact(out_dir, model=model, lambda_state=dual.state(), head=val_env.head_fit.head, calibration=calibration,
                   benchmark=data_identity, identity=description, config=resolved, summary=summary,
                   encoder=fit_benchmark_encoder(benchmark), overwrite=True)
    venv.close()
    collapse = describe_collapse(summary)
    if collapse is not None:
        warnings.warn(f"{out_dir}: {collapse}", CollapsedPolicyWarning, stacklevel=2)
    return TrainResult(model=model, out_dir=out_dir, summary=summary, calibration=calibration)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C; a verified checkpoint was written first.

    Attributes:
        checkpoint: The checkpoint ``.zip`` (``train(resume=checkpoint)`` continues from it).
        out_dir: The artifact directory of the run.
        timesteps: Transitions trained before the interruption.
    """

    def __init__(self, checkpoint: Path, out_dir: Path, timesteps: int) -> None:
        self.checkpoint, self.out_dir, self.timesteps = checkpoint, out_dir, int(timesteps)
        super().__init__(f"interrupted after {self.timesteps} steps; checkpoint written to {checkpoint}; "
                         f"continue with: proteus train --resume {checkpoint} --out {out_dir} (and the same --seed and options)")


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``<out_dir>.lock`` while a run writes ``out_dir``; a second run fails at once naming the holder.

    Raises:
        ValueError: If another process holds the lock.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out_dir.parent / f"{out_dir.name}.lock"
    owner = out_dir.parent / f"{out_dir.name}.lock.owner"
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = owner.read_text().strip() if owner.is_file() else "unknown"
        raise ValueError(f"{out_dir} is being written by another proteus train run ({holder}; lock {lock_path}); "
                         f"wait for it to finish or choose another --out.") from None
    try:
        owner.write_text(f"pid {os.getpid()} on {socket.gethostname()}")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def check_output_dir(out_dir: Path, data_identity: Mapping[str, Any]) -> None:
    """Refuse to write into a non-empty ``out_dir`` that is not an artifact of the same data and split.

    Raises:
        ValueError: Naming the directory and what it holds (``overwrite=True`` / ``--overwrite`` replaces it).
    """
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if {path.name for path in out_dir.iterdir()} == {CHECKPOINTS_DIR}:  # an interrupted run: its checkpoints name their data
        record = out_dir / CHECKPOINTS_DIR / CHECKPOINT_RECORD
        try:
            entries = json.loads(record.read_text()).get("files", {}) if record.is_file() else {}
        except (ValueError, AttributeError):
            entries = {}  # unreadable: treated like any other foreign content below
        if entries and isinstance(entries, dict) and all(same_data(entry.get("benchmark", {}), data_identity) for entry in entries.values()):
            return
    if not is_artifact(out_dir):
        raise ValueError(f"{out_dir} is not empty and holds no proteus artifact; choose an empty --out, or pass --overwrite "
                         f"to write the artifact there anyway.")
    recorded = read_manifest(out_dir)["benchmark"]
    if not (same_data(recorded, data_identity) and recorded.get("models") == data_identity.get("models")):
        raise ValueError(f"{out_dir} holds an artifact trained on other data or another split ({recorded.get('name')}, "
                         f"split seed {recorded.get('split_seed')}, fingerprint {recorded.get('fingerprint')}); this run uses "
                         f"{data_identity.get('name')}, split seed {data_identity.get('split_seed')}, fingerprint "
                         f"{data_identity.get('fingerprint')}. Choose another --out, or pass --overwrite to replace it.")


def registered_kwargs(env_id: str) -> dict[str, Any]:
    """The registered keyword arguments of ``env_id`` (``Proteus-...-v0`` or ``proteus_env:Proteus-...-v0``).

    Raises:
        ValueError: If no environment of that id is registered, listing the PROTEUS ids.
    """
    try:
        return dict(gym.spec(env_id.split(":")[-1]).kwargs)
    except gym.error.Error:
        raise ValueError(f"Unknown environment id {env_id!r}; the PROTEUS ids are {sorted(proteus_env.ENV_IDS)}.") from None


def fit_benchmark_encoder(benchmark: Benchmark) -> Encoder | None:
    """Refit the benchmark's text encoder on its train prompts, so the router can encode prompts.

    Returns:
        The fitted encoder, or ``None`` when the benchmark has no prompts or no encoder (the synthetic one).

    Raises:
        RuntimeError: If the refitted encoder does not reproduce the benchmark's embeddings.
    """
    name = benchmark.metadata.get("encoder")
    if benchmark.prompts is None or not name:
        return None
    encoder = encoder_from_settings(name, dict(benchmark.metadata.get("encoder_settings") or {}))
    train_rows = benchmark.split_index("train")
    encoder.fit([str(p) for p in benchmark.prompts[train_rows]])
    probe = train_rows[:16]
    if not np.allclose(encoder.transform([str(p) for p in benchmark.prompts[probe]]), benchmark.embeddings[probe], atol=1e-4):
        raise RuntimeError(f"Refitting the {name!r} encoder did not reproduce the benchmark's embeddings; the router could not encode prompts.")
    return encoder


def _verified_resume_zip(path: Path, expected: dict[str, Any]) -> Path:
    """The SB3 zip to resume from, after its checksums and its data identity were checked."""
    if path.is_dir():
        artifact = read_artifact(path)
        recorded, zip_path = artifact.benchmark, None
    elif path.suffix == ".zip":
        recorded, zip_path = verify_checkpoint(path), path
    else:
        raise FileNotFoundError(f"Nothing to resume from: {path} is neither an artifact directory nor a checkpoint .zip.")
    if not same_data(recorded, expected):
        seen = {key: recorded.get(key) for key in ("name", "fingerprint", "split_seed")}
        wanted = {key: expected[key] for key in ("name", "fingerprint", "split_seed")}
        raise ValueError(f"Cannot resume {path}: it was trained on {seen}, this run uses {wanted} "
                         f"(continuing would train on rows of another split's test set). Use the same --seed and data.")
    return artifact.verified_model_zip() if zip_path is None else zip_path


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True
