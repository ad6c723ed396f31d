"""``proteus sweep`` as a library call: run (or resume) a sweep on Ray Tune and write its tables.

    spec = SweepSpec(SearchSpace.parse(grid=["ppo.learning_rate=[0.001, 0.0003]"], seeds=[0, 1]), out_dir="sweeps/lr",
                     timesteps=20_000)
    result = run_sweep(spec)                         # a local Ray instance sized to the cores
    result = run_sweep(spec, address="10.0.0.5:6379")   # a cluster (`ray start --head` there)
    result = resume_sweep("sweeps/lr")               # after an interruption: finished trials are kept
    result.best                                      # also in sweeps/lr/best.json

The sweep directory holds ``sweep.json`` (the spec, JSON), ``tune/`` (Ray Tune's experiment: its
state, one folder per trial), ``trials/<trial id>/`` (each trial's ``proteus train`` artifact),
``trials.csv`` (one row per trial: its point of the space, status and last report),
``configs.csv`` (one row per configuration, ranked, see :mod:`agents.sweep.metrics`) and
``best.json`` (the best configuration, its ``--set`` options and the command that trains it).

Resuming goes through Tune's ``Tuner.restore``, which reads Tune's own state files (``tuner.pkl``
is a pickle written by Tune): resume only sweep directories you created.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from agents.ray_cluster import ray_session
from agents.sweep.metrics import METRICS, RANKING, configurations
from agents.sweep.space import SearchSpace, override_string
from agents.sweep.trial import run_trial

#: Files of a sweep directory.
SPEC_FILE, TUNE_DIR, TRIALS_CSV, CONFIGS_CSV, BEST_JSON = "sweep.json", "tune", "trials.csv", "configs.csv", "best.json"


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """Everything a sweep needs; saved as ``sweep.json`` so that ``--resume`` needs only the directory.

    Attributes:
        space: What varies.
        out_dir: The sweep directory (absolute once resolved; on a cluster it must be on storage
            every node sees, e.g. NFS).
        base_overrides: ``--set KEY=VALUE`` applied to every trial before its own overrides.
        config_path: A YAML config (``proteus train --config``); default: the packaged one.
        timesteps: Training transitions per trial (default: the config's ``n_timesteps``).
        n_envs: Training envs per trial (default: the config's).
        data_paths: Env id -> data file, for the RouterBench and SPROUT benchmarks.
        cpus_per_trial: CPUs Ray reserves per trial (trials run side by side on the rest).
        max_concurrent: At most this many trials at once (default: as many as the CPUs allow).
    """

    space: SearchSpace
    out_dir: Path
    base_overrides: tuple[str, ...] = ()
    config_path: str | None = None
    timesteps: int | None = None
    n_envs: int | None = None
    data_paths: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None

    def resolved(self) -> SweepSpec:
        """A copy with absolute paths (Tune runs trials in their own working directories) and checked values.

        Raises:
            ValueError: On a bad number or a config file that does not exist.
        """
        for name, value in (("timesteps", self.timesteps), ("n_envs", self.n_envs), ("max_concurrent", self.max_concurrent)):
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}.")
        if not (isinstance(self.cpus_per_trial, (int, float)) and 0 < self.cpus_per_trial and math.isfinite(self.cpus_per_trial)):
            raise ValueError(f"--cpus-per-trial must be a positive number, got {self.cpus_per_trial!r}.")
        config_path = None if self.config_path is None else str(Path(self.config_path).expanduser().resolve())
        if config_path is not None and not Path(config_path).is_file():
            raise FileNotFoundError(f"--config {self.config_path}: no such file.")
        data_paths = {env_id: str(Path(path).expanduser().resolve()) for env_id, path in dict(self.data_paths).items()}
        return dataclasses.replace(self, out_dir=Path(self.out_dir).expanduser().resolve(), config_path=config_path,
                                   data_paths=data_paths, base_overrides=tuple(self.base_overrides))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; also what every trial receives (:func:`agents.sweep.trial.run_trial`)."""
        return {"space": self.space.to_dict(), "out_dir": str(self.out_dir), "base_overrides": list(self.base_overrides),
                "config_path": self.config_path, "timesteps": self.timesteps, "n_envs": self.n_envs,
                "data_paths": dict(self.data_paths), "cpus_per_trial": self.cpus_per_trial, "max_concurrent": self.max_concurrent}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepSpec:
        """Inverse of :meth:`to_dict`."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"space"}
        unknown = sorted(set(data) - fields - {"space"})
        if unknown:
            raise ValueError(f"sweep spec has unknown fields {unknown}.")
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["base_overrides"] = tuple(kwargs.get("base_overrides") or ())
        return cls(space=SearchSpace.from_dict(data["space"]), **kwargs)


@dataclasses.dataclass
class SweepResult:
    """What a sweep produced (also written to its directory).

    Attributes:
        out_dir: The sweep directory.
        trials: One row per trial (``trials.csv``).
        configs: One row per configuration, ranked (``configs.csv``).
        best: The best configuration (``best.json``), or ``None`` when no configuration completed.
        complete: Whether every trial finished (``False`` after an interruption: resume it).
    """

    out_dir: Path
    trials: pd.DataFrame
    configs: pd.DataFrame
    best: dict[str, Any] | None
    complete: bool


class SweepInterrupted(KeyboardInterrupt):
    """The sweep stopped before every trial finished; the tables of what finished were written."""

    def __init__(self, out_dir: Path, done: int, total: int) -> None:
        self.out_dir = out_dir
        super().__init__(f"sweep interrupted after {done} of {total} trials; tables of the finished ones written to {out_dir}; "
                         f"continue with: proteus sweep --resume --out {shlex.quote(str(out_dir))}")


def run_sweep(spec: SweepSpec, *, address: str | None = None, num_cpus: int | None = None, verbose: bool = False,
              on_trial: Callable[[str], None] | None = None) -> SweepResult:
    """Run a new sweep into ``spec.out_dir``.

    Args:
        spec: The sweep.
        address: A Ray cluster (``HOST:PORT`` of ``ray start --head``, ``ray://HOST:PORT`` or
            ``auto``); default: a new local instance on this machine.
        num_cpus: CPUs of the local instance (default: the cores); not with ``address``.
        verbose: Ray's and Tune's own output.
        on_trial: Called with a line per finished or failed trial.

    Returns:
        The :class:`SweepResult`.

    Raises:
        ValueError: On a bad spec (an unknown key, an empty space, an unknown benchmark), an
            ``out_dir`` that already holds a sweep, or an unreachable ``address`` (naming it).
        ImportError: If Ray is not installed (saying how to install it).
        SweepInterrupted: When interrupted (Ctrl-C); finished trials are kept for :func:`resume_sweep`.
    """
    spec = spec.resolved()
    spec.space.check(spec.base_overrides, spec.config_path)  # every key and value, before Ray starts
    out = spec.out_dir
    if (out / SPEC_FILE).exists() or (out / TUNE_DIR).exists():
        raise ValueError(f"{out} already holds a sweep: continue it with --resume, or choose another --out.")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory.")
    with ray_session(address, num_cpus=num_cpus, feature="proteus sweep", verbose=verbose) as ray:
        out.mkdir(parents=True, exist_ok=True)
        (out / SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
        return _fit(ray, spec, restore=False, verbose=verbose, on_trial=on_trial)


def resume_sweep(out_dir: str | Path, *, address: str | None = None, num_cpus: int | None = None, verbose: bool = False,
                 on_trial: Callable[[str], None] | None = None) -> SweepResult:
    """Continue the sweep in ``out_dir`` (Tune's ``Tuner.restore``): finished trials are kept, the others run (again).

    Raises:
        FileNotFoundError: If ``out_dir`` holds no sweep.
        ValueError: If its ``sweep.json`` is unreadable, or as :func:`run_sweep`.
    """
    out = Path(out_dir).expanduser().resolve()
    if not (out / SPEC_FILE).is_file():
        raise FileNotFoundError(f"{out} holds no sweep ({SPEC_FILE} is missing): start one without --resume.")
    try:
        spec = SweepSpec.from_dict(json.loads((out / SPEC_FILE).read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{out / SPEC_FILE} is not a readable sweep spec: {exc}") from None
    spec = dataclasses.replace(spec, out_dir=out)  # the directory may have moved
    with ray_session(address, num_cpus=num_cpus, feature="proteus sweep", verbose=verbose) as ray:
        from ray import tune

        restore = tune.Tuner.can_restore(str(out / TUNE_DIR))
        return _fit(ray, spec, restore=restore, verbose=verbose, on_trial=on_trial)


def _fit(ray: Any, spec: SweepSpec, *, restore: bool, verbose: bool, on_trial: Callable[[str], None] | None) -> SweepResult:
    from ray import tune

    if not verbose:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic reporter honours verbose=0
    trainable = tune.with_resources(tune.with_parameters(run_trial, spec=spec.to_dict()), {"cpu": spec.cpus_per_trial})
    callbacks = [_TrialPrinter(on_trial)] if on_trial is not None else []
    if restore:  # Tune keeps the saved RunConfig (no per-trial lines on a resumed sweep)
        tuner = tune.Tuner.restore(str(spec.out_dir / TUNE_DIR), trainable, resume_unfinished=True, resume_errored=True)
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        tuner = tune.Tuner(
            trainable,
            param_space=spec.space.to_tune(tune),
            # constant_grid_search: one random draw per sample, run on every grid point (seeds, benchmarks, grid keys);
            # by default Tune draws anew for each grid point, and each configuration would be scored on one seed only.
            tune_config=tune.TuneConfig(num_samples=spec.space.num_samples, max_concurrent_trials=spec.max_concurrent,
                                        reuse_actors=True, trial_dirname_creator=_trial_dirname,
                                        search_alg=BasicVariantGenerator(constant_grid_search=True)),
            run_config=tune.RunConfig(name=TUNE_DIR, storage_path=str(spec.out_dir), verbose=2 if verbose else 0,
                                      callbacks=callbacks, failure_config=tune.FailureConfig(max_failures=0)),
        )
    grid = tuner.fit()
    trials = trials_table(grid, spec.space.keys)
    result = write_tables(spec, trials)
    if not result.complete:
        raise SweepInterrupted(spec.out_dir, int((trials["status"] == "TERMINATED").sum()), spec.space.n_trials)
    return result


def _trial_dirname(trial: Any) -> str:
    return str(trial.trial_id)


class _TrialPrinter:
    """A Tune callback printing one line per finished or failed trial (built lazily: Tune is optional)."""

    def __new__(cls, emit: Callable[[str], None]) -> Any:
        from ray import tune

        class Printer(tune.Callback):
            def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
                result = trial.last_result or {}
                emit(f"trial {trial.trial_id} done: {_describe(trial.config)}  floor compliance "
                     f"{result.get('floor_compliance', math.nan):.3f}, USD/1K {result.get('usd_per_1k', math.nan):.3f}")

            def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
                emit(f"trial {trial.trial_id} FAILED: {_describe(trial.config)} (see {TRIALS_CSV})")

        return Printer()


def _describe(config: Mapping[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in dict(config.get("overrides") or {}).items()]
    return " ".join([*parts, f"seed={config.get('seed')}", str(config.get("env_id"))])


def trials_table(grid: Any, keys: Sequence[str]) -> pd.DataFrame:
    """One row per trial of a Tune ``ResultGrid``: id, status, its point of the space, its last report, its error.

    A trial that reported its final metrics is ``TERMINATED``; one that raised is ``ERROR``; any
    other (interrupted, never started) is ``PENDING``.
    """
    rows = []
    for result in grid:
        metrics = dict(result.metrics or {})
        config = dict(result.config or {})
        overrides = dict(config.get("overrides") or {})
        if result.error is not None:
            status = "ERROR"
        elif metrics.get("final") == 1:
            status = "TERMINATED"
        else:
            status = "PENDING"
        row: dict[str, Any] = {"trial_id": metrics.get("trial_id") or Path(str(result.path)).name, "status": status,
                               "env_id": config.get("env_id"), "seed": config.get("seed")}
        row.update({key: _plain(overrides.get(key)) for key in keys})
        row.update({metric: metrics.get(metric, math.nan) for metric in ("timesteps", *METRICS)})
        row.update(reports=metrics.get("training_iteration", 0), wall_time_s=metrics.get("wall_time_s", math.nan),
                   artifact=metrics.get("artifact"), error=None if result.error is None else _first_line(result.error))
        rows.append(row)
    columns = ["trial_id", "status", "env_id", "seed", *keys, "timesteps", *METRICS, "reports", "wall_time_s", "artifact", "error"]
    return pd.DataFrame(rows, columns=columns).sort_values(["trial_id"], kind="stable").reset_index(drop=True)


def write_tables(spec: SweepSpec, trials: pd.DataFrame) -> SweepResult:
    """Write ``trials.csv``, ``configs.csv`` and ``best.json`` to the sweep directory."""
    keys = spec.space.keys
    configs = configurations(trials, keys)
    out = spec.out_dir
    trials.to_csv(out / TRIALS_CSV, index=False)
    configs.to_csv(out / CONFIGS_CSV, index=False)
    best = best_configuration(configs, spec)
    (out / BEST_JSON).write_text(json.dumps(best, indent=2, default=str) + "\n")
    complete = bool(len(trials) == spec.space.n_trials and (trials["status"] != "PENDING").all())
    return SweepResult(out_dir=out, trials=trials, configs=configs, best=best if best.get("overrides") is not None else None,
                       complete=complete)


def best_configuration(configs: pd.DataFrame, spec: SweepSpec) -> dict[str, Any]:
    """The top-ranked configuration as a JSON-able dict (``overrides`` is ``None`` when none completed)."""
    ranking = ", then ".join(f"{metric} ({'higher' if mode == 'max' else 'lower'} first)" for metric, mode in RANKING)
    head: dict[str, Any] = {"ranking": f"mean over each configuration's trials (seeds x benchmarks) of the last validation pass: {ranking}",
                            "n_configurations": int(len(configs))}
    ranked = configs[configs["rank"] == 1]
    if ranked.empty:
        return {**head, "overrides": None, "reason": "no configuration finished all its trials"}
    row = ranked.iloc[0]
    keys = spec.space.keys
    overrides = {key: _plain(row[key]) for key in keys}
    sets = [*spec.base_overrides, *(override_string(k, v) for k, v in overrides.items())]
    command = ["proteus", "train"] + (["--config", spec.config_path] if spec.config_path else [])
    for assignment in sets:
        command += ["--set", assignment]
    return {**head, "overrides": overrides, "set": sets,
            "metrics": {m: _float(row[m]) for m in (*METRICS, "floor_compliance_min")},
            "n_trials": int(row["n_trials"]), "seeds": list(spec.space.seeds), "env_ids": list(spec.space.env_ids),
            "timesteps": spec.timesteps, "command": shlex.join(command)}


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, (list, dict, str)) else value


def _float(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "cause", None) or error).strip().splitlines()
    return text[-1][:300] if text else type(error).__name__
