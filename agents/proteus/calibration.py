"""Validation calibration of a trained policy: a monotone map from the requested τ to its τ input.

The policy is conditioned on τ, but what it achieves at input τ is measured, not assumed: for a
grid of τ inputs the deterministic policy's realized accuracy (and cost) on the validation split is
recorded once after training. Serving a request τ then uses the smallest τ input whose
(monotonized) validation accuracy reaches τ, optionally raised by a one-sided statistical margin
(:func:`proteus_env.metrics.one_sided_margin`). Without a margin a router calibrated exactly to τ
meets it on fresh data only about half of the time; the margin is the user's choice.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from proteus_env.env import ProteusRoutingEnv
from proteus_env.metrics import effective_sample_size, one_sided_margin
from proteus_env.policy_eval import accuracy_at_taus, validation_halves


@dataclasses.dataclass(frozen=True)
class TauCalibration:
    """Validation accuracy of the deterministic policy at each τ input.

    Attributes:
        tau_inputs: ``(G,)`` increasing τ values fed to the policy.
        val_accuracy: ``(G,)`` realized validation accuracy at each input.
        val_usd_per_1k: ``(G,)`` validation USD per 1K queries at each input.
        n_val: Validation queries behind each figure.
    """

    tau_inputs: np.ndarray
    val_accuracy: np.ndarray
    val_usd_per_1k: np.ndarray
    n_val: int

    @functools.cached_property
    def monotone_accuracy(self) -> np.ndarray:
        """Running maximum of the validation accuracy over τ inputs (the monotone map)."""
        return np.maximum.accumulate(self.val_accuracy)

    @property
    def max_reachable(self) -> float:
        """The highest validation accuracy over all τ inputs."""
        return float(self.val_accuracy.max())

    def required_accuracy(self, tau: float, confidence: float | None = None, deploy_queries: int | None = None) -> float:
        """Validation accuracy needed for target ``tau`` (``tau`` itself without a margin).

        With a ``confidence``, the margin covers the noise of the validation estimate and of a
        deployment sample of ``deploy_queries`` (default: as many as validation) together
        (:func:`proteus_env.metrics.effective_sample_size`), exactly as the calibrated baselines do.
        """
        if confidence is None:
            return float(tau)
        return one_sided_margin(float(tau), effective_sample_size(self.n_val, deploy_queries), confidence)

    def input_for(self, tau: np.ndarray | float, confidence: float | None = None, deploy_queries: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Policy τ inputs for requested targets, and whether each target is reachable.

        Returns:
            ``(tau_input, reachable)``: unreachable targets get the τ input with the highest
            validation accuracy (the most accurate setting).
        """
        taus = np.atleast_1d(np.asarray(tau, dtype=np.float64))
        monotone = self.monotone_accuracy
        inputs = np.empty_like(taus)
        reachable = np.empty(taus.shape, dtype=bool)
        for i, value in enumerate(taus):
            need = self.required_accuracy(value, confidence, deploy_queries)
            meets = np.flatnonzero(monotone >= need)
            reachable[i] = meets.size > 0
            inputs[i] = self.tau_inputs[meets[0]] if meets.size else self.tau_inputs[int(np.argmax(self.val_accuracy))]
        return inputs, reachable

    def save(self, path: str | Path) -> None:
        """Write JSON."""
        data = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dataclasses.asdict(self).items()}
        Path(path).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> TauCalibration:
        """Read JSON written by :meth:`save`."""
        data: dict[str, Any] = json.loads(Path(path).read_text())
        return cls(tau_inputs=np.asarray(data["tau_inputs"]), val_accuracy=np.asarray(data["val_accuracy"]),
                   val_usd_per_1k=np.asarray(data["val_usd_per_1k"]), n_val=int(data["n_val"]))


def fit_tau_calibration(model: Any, val_env: ProteusRoutingEnv, *, n_points: int = 41) -> TauCalibration:
    """Measure ``model``'s deterministic policy on the calibration half of validation at ``n_points`` τ inputs.

    τ inputs span the env's ``tau_range``; λ is what the env shows at each τ (the trained table).
    The dual callback tuned λ on the other half (:func:`proteus_env.policy_eval.validation_halves`),
    so the calibration is not measured on rows the training adapted to.
    """
    low, high = val_env.tau_range
    inputs = np.linspace(low, high, int(n_points))
    lambdas = np.array([val_env.lambda_for(t) for t in inputs])
    _, rows = validation_halves(val_env.benchmark, seed=val_env.constructor_kwargs()["split_seed"])

    def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    result = accuracy_at_taus(policy, val_env.benchmark, val_env.head_fit, rows, inputs, lambdas, include_query=val_env.include_query)
    return TauCalibration(tau_inputs=inputs, val_accuracy=result["accuracy"], val_usd_per_1k=result["usd_per_1k"], n_val=int(rows.size))
