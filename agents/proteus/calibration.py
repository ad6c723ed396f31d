"""Validation calibration of a trained policy: a monotone map from the requested τ to its τ input.

The policy is conditioned on τ, but what it achieves at input τ is measured, not assumed: for a
grid of τ inputs the deterministic policy's realized accuracy (and cost) on the validation split is
recorded once after training. Serving a request τ then uses the smallest τ input whose
(monotonized) validation accuracy reaches τ (a point estimate), or, at a chosen ``confidence``
level, the τ input certified by Learn-then-Test with exact finite-sample bounds
(:mod:`proteus_env.guarantees`): the served queries' realized accuracy is then ≥ τ with
probability ≥ ``confidence``, as long as validation and served queries are exchangeable.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from proteus_env.env import ProteusRoutingEnv
from proteus_env.guarantees import Certificate, certified_threshold, certify, scores_are_binary
from proteus_env.policy_eval import accuracy_at_taus, dual_and_calibration_rows
from proteus_env.session_eval import needs_sessions, session_accuracy_at_taus

#: τ inputs measured on validation by default (``TrainConfig.calibration_points``).
DEFAULT_CALIBRATION_POINTS = 201


@dataclasses.dataclass(frozen=True)
class TauCalibration:
    """Validation accuracy of the deterministic policy at each τ input.

    Attributes:
        tau_inputs: ``(G,)`` increasing τ values in [0, 1] fed to the policy.
        val_accuracy: ``(G,)`` realized validation accuracy at each input.
        val_usd_per_1k: ``(G,)`` validation USD per 1K queries at each input.
        n_val: Validation queries behind each figure.
        binary: Whether every validation score is 0 or 1 (then the exact binomial bounds apply;
            otherwise the Hoeffding–Bentkus ones for scores in [0, 1]).

    Raises:
        ValueError: On non-finite values, τ inputs outside [0, 1] or decreasing, accuracies
            outside [0, 1], negative costs, arrays of different lengths, or ``n_val < 1``.
    """

    tau_inputs: np.ndarray
    val_accuracy: np.ndarray
    val_usd_per_1k: np.ndarray
    n_val: int
    binary: bool = False

    def __post_init__(self) -> None:
        """Check the values (raises ``ValueError`` naming the field)."""
        arrays = {}
        for name in ("tau_inputs", "val_accuracy", "val_usd_per_1k"):
            try:
                array = np.asarray(getattr(self, name), dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"`{name}` must be a list of numbers, got {getattr(self, name)!r}.") from None
            if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
                raise ValueError(f"`{name}` must be a non-empty 1-D array of finite numbers, got {getattr(self, name)!r}.")
            arrays[name] = array
        if not arrays["tau_inputs"].shape == arrays["val_accuracy"].shape == arrays["val_usd_per_1k"].shape:
            raise ValueError("`tau_inputs`, `val_accuracy` and `val_usd_per_1k` must have the same length.")
        inputs = arrays["tau_inputs"]
        if (inputs < 0).any() or (inputs > 1).any() or (np.diff(inputs) < 0).any():
            raise ValueError(f"`tau_inputs` must be increasing values in [0, 1], got {inputs.tolist()}.")
        if (arrays["val_accuracy"] < 0).any() or (arrays["val_accuracy"] > 1).any():
            raise ValueError(f"`val_accuracy` must lie in [0, 1], got {arrays['val_accuracy'].tolist()}.")
        if (arrays["val_usd_per_1k"] < 0).any():
            raise ValueError(f"`val_usd_per_1k` must be >= 0, got {arrays['val_usd_per_1k'].tolist()}.")
        if (isinstance(self.n_val, (bool, np.bool_)) or not isinstance(self.n_val, (int, float, np.integer, np.floating))
                or not np.isfinite(self.n_val) or int(self.n_val) != self.n_val or self.n_val < 1):
            raise ValueError(f"`n_val` must be a positive integer, got {self.n_val!r}.")
        for name, array in arrays.items():
            object.__setattr__(self, name, array)
        object.__setattr__(self, "n_val", int(self.n_val))
        if not isinstance(self.binary, (bool, np.bool_)):
            raise ValueError(f"`binary` must be true or false, got {self.binary!r}.")
        object.__setattr__(self, "binary", bool(self.binary))

    @functools.cached_property
    def monotone_accuracy(self) -> np.ndarray:
        """Running maximum of the validation accuracy over τ inputs (the monotone map)."""
        return np.maximum.accumulate(self.val_accuracy)

    @property
    def max_reachable(self) -> float:
        """The highest validation accuracy over all τ inputs."""
        return float(self.val_accuracy.max())

    def certificate(self, tau: float, confidence: float, deploy_queries: int | None = None) -> Certificate:
        """What a τ input's validation accuracy must reach so that τ holds at ``confidence``.

        The floor is on the realized accuracy of ``deploy_queries`` served queries (default: as
        many as validation), with probability ``confidence`` (:mod:`proteus_env.guarantees`).
        """
        n_deploy = self.n_val if deploy_queries is None else int(deploy_queries)
        return certified_threshold(float(tau), self.n_val, 1.0 - float(confidence), n_deploy, binary=self.binary)

    def required_accuracy(self, tau: float, confidence: float | None = None, deploy_queries: int | None = None) -> float:
        """Validation accuracy a τ input needs for target ``tau`` (``tau`` itself without a ``confidence``)."""
        if confidence is None:
            return float(tau)
        return self.certificate(tau, confidence, deploy_queries).threshold

    def input_for(self, tau: np.ndarray | float, confidence: float | None = None, deploy_queries: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Policy τ inputs for requested targets, and whether each target is reachable.

        Without a ``confidence`` (a point estimate, no guarantee): the smallest τ input whose
        monotonized validation accuracy reaches τ. With one: Learn-then-Test fixed-sequence testing
        over the τ inputs from the highest (most accurate) down, each needing the certified
        threshold; the lowest input before the first failure serves τ with probability
        ``confidence`` (:func:`proteus_env.guarantees.certify`).

        Returns:
            ``(tau_input, reachable)``: unreachable targets get the τ input with the highest
            validation accuracy (the most accurate setting).
        """
        taus = np.atleast_1d(np.asarray(tau, dtype=np.float64))
        monotone = self.monotone_accuracy
        most_accurate = self.tau_inputs[int(np.argmax(self.val_accuracy))]
        descending = self.val_accuracy[::-1]  # fixed order: the highest τ input first
        inputs = np.empty_like(taus)
        reachable = np.empty(taus.shape, dtype=bool)
        for i, value in enumerate(taus):
            if confidence is None:
                meets = np.flatnonzero(monotone >= value)
                reachable[i] = meets.size > 0
                inputs[i] = self.tau_inputs[meets[0]] if meets.size else most_accurate
                continue
            n_deploy = self.n_val if deploy_queries is None else int(deploy_queries)
            choice = certify(descending, float(value), self.n_val, confidence, n_deploy, binary=self.binary)
            reachable[i] = choice.certified
            inputs[i] = self.tau_inputs[-1 - choice.position] if choice.certified else most_accurate
        return inputs, reachable

    def to_dict(self) -> dict[str, Any]:
        """The calibration as JSON-able lists."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dataclasses.asdict(self).items()}

    def save(self, path: str | Path) -> None:
        """Write JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def from_dict(cls, data: Any, *, source: str | Path = "calibration") -> TauCalibration:
        """Build from :meth:`to_dict`'s JSON, checking it.

        Raises:
            ValueError: If a key is missing or a value is out of range, naming ``source``.
        """
        if not isinstance(data, dict):
            raise ValueError(f"{source}: the calibration must be a JSON object, got {type(data).__name__}.")
        missing = [key for key in ("tau_inputs", "val_accuracy", "val_usd_per_1k", "n_val") if key not in data]
        if missing:
            raise ValueError(f"{source}: missing {missing}.")
        try:
            # Calibrations written before `binary` was recorded are treated as fractional (the safe side).
            return cls(tau_inputs=data["tau_inputs"], val_accuracy=data["val_accuracy"], val_usd_per_1k=data["val_usd_per_1k"],
                       n_val=data["n_val"], binary=data.get("binary", False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> TauCalibration:
        """Read JSON written by :meth:`save`.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            ValueError: If it is not valid JSON or holds bad values, naming ``path``.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Calibration file {path} does not exist.")
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(data, source=path)


def fit_tau_calibration(model: Any, val_env: ProteusRoutingEnv, *, n_points: int = DEFAULT_CALIBRATION_POINTS) -> TauCalibration:
    """Measure ``model``'s deterministic policy on the calibration rows at ``n_points`` τ inputs.

    τ inputs span the env's ``tau_range``; λ is what the env shows at each τ (the trained table).
    The rows are disjoint from those the dual callback tuned λ on
    (:func:`proteus_env.policy_eval.dual_and_calibration_rows`: the whole validation split when the
    env holds out part of train for the dual, else the second half of validation), so the
    calibration is not measured on rows the training adapted to.
    """
    low, high = val_env.tau_range
    inputs = np.linspace(low, high, int(n_points))
    lambdas = np.array([val_env.lambda_for(t) for t in inputs])
    kwargs = val_env.constructor_kwargs()
    _, rows = dual_and_calibration_rows(val_env.benchmark, seed=kwargs["split_seed"], train_holdout=kwargs.get("train_holdout", 0.0))

    def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    if needs_sessions(val_env):  # a session-state (or budget) policy is measured on whole sessions (issue 12)
        result = session_accuracy_at_taus(policy, val_env, rows, inputs, seed=int(kwargs["split_seed"]))
    else:
        result = accuracy_at_taus(policy, val_env.benchmark, val_env.head_fit, rows, inputs, lambdas, include_query=val_env.include_query)
    return TauCalibration(tau_inputs=inputs, val_accuracy=result["accuracy"], val_usd_per_1k=result["usd_per_1k"], n_val=int(rows.size),
                          binary=scores_are_binary(val_env.benchmark.scores[rows]))
