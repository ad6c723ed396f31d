"""One trial of ``proteus sweep``: one ``proteus train`` run that reports to Ray Tune at every dual update.

:func:`run_trial` is the Tune function trainable. It builds the trial's config (the base config,
``--set`` overrides, then the trial's sampled overrides), calls :func:`agents.proteus.train.train`
with an ``on_validation`` hook that calls ``ray.tune.report`` after each dual update (the metrics of
:func:`agents.sweep.metrics.validation_metrics`), and reports once more at the end with the
artifact directory (``final`` = 1). The artifact is written to ``<sweep>/trials/<trial id>``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.proteus.collapse import CollapsedPolicyWarning
from agents.proteus.config import TrainConfig, load_train_config
from agents.sweep.metrics import validation_metrics
from agents.sweep.space import override_string

#: Sub-directory of the sweep directory holding one artifact per trial.
TRIALS_DIR = "trials"


def trial_config(env_id: str, overrides: Mapping[str, Any], spec: Mapping[str, Any]) -> TrainConfig:
    """The training config of one trial: ``spec``'s config file and ``--set`` overrides, then the trial's own.

    Raises:
        ValueError: On an unknown key or a value of the wrong type (naming the key).
    """
    assignments = [*spec.get("base_overrides", []), *(override_string(key, _plain(value)) for key, value in overrides.items())]
    return load_train_config(env_id, spec.get("config_path")).with_overrides(assignments)


def run_trial(config: dict[str, Any], spec: Mapping[str, Any]) -> None:
    """The Ray Tune trainable: train one configuration on one seed and benchmark, reporting to Tune.

    Args:
        config: The trial's point of the search space: ``overrides`` (key -> value), ``seed``, ``env_id``.
        spec: The sweep's fixed settings (:meth:`agents.sweep.runner.SweepSpec.to_dict`).
    """
    from ray import tune  # in a Ray worker: Ray is installed

    from agents.proteus.train import train

    env_id, seed = str(config["env_id"]), int(config["seed"])
    cfg = trial_config(env_id, dict(config.get("overrides") or {}), spec)
    out_dir = Path(spec["out_dir"]) / TRIALS_DIR / tune.get_context().get_trial_id()

    def report(timesteps: int, validation: Mapping[str, Any]) -> None:
        tune.report({**validation_metrics(timesteps, validation), "final": 0})

    data_paths = dict(spec.get("data_paths") or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapsedPolicyWarning)  # the τ-span is in the table
        result = train(env_id, config=cfg, out_dir=out_dir, seed=seed, timesteps=spec.get("timesteps"), n_envs=spec.get("n_envs"),
                       data_path=data_paths.get(env_id), overwrite=True, on_validation=report)
    summary = result.summary
    last = {"tau": summary["val_tau"], "accuracy": summary["val_accuracy"], "usd_per_1k": summary["val_usd_per_1k"],
            "tau_span": summary.get("tau_span", float("nan"))}
    tune.report({**validation_metrics(summary["timesteps"], last), "final": 1, "wall_time_s": float(summary["wall_time_s"]),
                 "artifact": str(out_dir)})


def _plain(value: Any) -> Any:
    """A Tune-sampled value as a plain Python value (NumPy scalars to ``int`` / ``float``)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, (list, dict, str)) else value
