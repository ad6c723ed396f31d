"""The routing head: predicted correctness p̂, predicted cost ĉ, the quality prior b, and the score.

Shared by the environment, the trained-router API and the baselines. For a quality preference
μ ∈ [0, 1] the head routes query ``x`` to

    argmax_k  p̂_k(x) + μ · s_b · b_k − (1 − μ)^γ · s_c · ĉ_k(x)

* ``p̂`` — by default a joint soft-label logistic regression on ``[z, log1p(prompt_tokens)]``
  (``HeadConfig.predictor``: also ``"gbt"``, gradient-boosted trees, or ``"mlp"``) fitted on the
  train split only, Platt-calibrated per model on validation. Train rows get cross-fitted
  (out-of-fold, ``n_folds``; rows sharing a prompt text share a fold) predictions: in-sample ones
  are optimistic, and a policy trained on them learns that cheap models are right more often than
  they are.
* ``ĉ`` — by default a ridge regression of log USD cost on the same features (prompt length
  carries most of the cost; ``HeadConfig.cost_predictor``: also ``"gbt"`` or ``"mlp"``, whose train
  rows are cross-fitted too), mapped to [0, 1] on a log scale between the 1st and 99th percentile
  of the train split's log costs, so that μ moves through the cheap models instead of jumping to
  the dearest.
* ``b`` — each model's train-split mean score, min-max scaled to [0, 1].
* ``s_b``, ``s_c`` and ``γ`` — the term scales; defaults chosen by measurement (see
  :class:`HeadConfig`).

The policy's action ``a ∈ [0, 1]`` reaches μ through the head's *action map*
(:meth:`RoutingHead.mu_from_action`, ``HeadConfig.action_map``): a monotone piecewise-linear map,
fitted on the train rows' (cross-fitted) predictions, under which the predicted accuracy of the
routed model rises linearly in ``a`` between two plateaus (``a ≤ 0.1`` routes like μ = 0,
``a ≥ 0.9`` like μ₁ and above, μ₁ the smallest μ reaching the highest predicted accuracy).
Without it, the fleet's whole cost–accuracy frontier can sit in a narrow band of μ (on the
synthetic pair {gpt-4, Yi-34B}, μ ∈ [0.5, 0.75]; below it every query goes to the cheap model),
where a policy that has drifted outside the band gets no gradient from a reward that is flat in μ
(issue 14). The map uses no labels beyond the train split's. It is fitted at the configured γ; with
``learn_gamma`` the linearity holds only approximately.

Everything is vectorized over queries; parameters are plain arrays, saved to ``.npz`` + JSON (the
trees and the MLP are exported from scikit-learn into arrays: loading a head never unpickles).
:func:`choose_predictor` picks among predictors on validation, never on test.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from proteus_env.benchmark import Benchmark
from proteus_env.metrics import calibration_metrics
from proteus_env.predictors import (
    ArrayModel,
    GBTSettings,
    MLPSettings,
    Standardizer,
    fit_gbt,
    fit_mlp,
    fit_platt,
    fit_ridge,
    fit_soft_logistic,
    model_from_arrays,
    query_features,
    sigmoid,
)

GAMMA_RANGE: tuple[float, float] = (2.0, 8.0)
#: Correctness predictors of :attr:`HeadConfig.predictor`.
PREDICTORS: tuple[str, ...] = ("logistic", "gbt", "mlp")
#: Cost predictors of :attr:`HeadConfig.cost_predictor`.
COST_PREDICTORS: tuple[str, ...] = ("ridge", "gbt", "mlp")
#: Action maps of :attr:`HeadConfig.action_map`.
ACTION_MAPS: tuple[str, ...] = ("identity", "accuracy")
#: Knots of the action map (``a`` = 0, 0.01, ..., 1).
ACTION_KNOTS: int = 101
#: Width of the action map's plateaus at each end: ``a ≤ ACTION_PLATEAU`` routes like μ = 0 (the
#: cheap end), ``a ≥ 1 − ACTION_PLATEAU`` like the most accurate μ. A Beta policy (α, β ≥ 1) reaches
#: a mean of 0.1 with β = 9α; a plateau much narrower would make the ends hard to hold.
ACTION_PLATEAU: float = 0.1
#: Knots of the identity action map (``a`` is μ).
IDENTITY_ACTION_MAP: np.ndarray = np.array([0.0, 1.0])
#: μ grid on which the predicted-accuracy curve is measured when fitting the map.
_ACTION_GRID: int = 401
#: Roles of the non-linear predictors in a saved head (prefix of their arrays in the ``.npz``).
_ROLES: tuple[str, ...] = ("correctness", "cost")


def gamma_from_action(entry: np.ndarray | float) -> np.ndarray | float:
    """Map the learned-γ action entry in [0, 1] affinely onto γ ∈ [2, 8]."""
    return GAMMA_RANGE[0] + entry * (GAMMA_RANGE[1] - GAMMA_RANGE[0])


def log_scale(log_cost: np.ndarray, log_cost_range: np.ndarray) -> np.ndarray:
    """Map log-USD values onto [0, 1] between the two ends of ``log_cost_range`` (clipped)."""
    low, high = log_cost_range
    return np.clip((log_cost - low) / (high - low), 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """Settings of the routing head.

    The default term scales and γ spread μ's range over the whole cost–quality frontier (μ = 0
    routes like the cheapest model, μ = 1 like the most accurate); ``benchmarks/frontier.py``
    measures that spread for any setting.

    The predictors default to the linear ones (logistic p̂, ridge ĉ); ``"gbt"`` and ``"mlp"`` are
    scikit-learn models exported into arrays. Pick among them on validation with
    :func:`choose_predictor`.

    Attributes:
        l2: Ridge strength of the linear predictors (logistic and ridge).
        n_folds: Folds of the cross-fitted train predictions.
        quality_scale: ``s_b``, weight of the quality prior term.
        cost_scale: ``s_c``, weight of the normalized cost term.
        gamma: Default exponent γ of ``(1 − μ)``.
        cost_quantiles: Quantiles of the train log costs mapped to 0 and 1.
        predictor: Correctness model, one of :data:`PREDICTORS`.
        cost_predictor: Log-cost model, one of :data:`COST_PREDICTORS`.
        gbt_max_iter, gbt_learning_rate, gbt_max_depth, gbt_min_samples_leaf: Gradient-boosted
            trees (``HistGradientBoosting*``, one per model, early stopping on 10 % of the rows).
        mlp_hidden, mlp_alpha, mlp_max_iter: The MLP (L-BFGS, one network for all models).
        action_map: How the policy's action reaches μ, one of :data:`ACTION_MAPS`: ``"accuracy"``
            (default) spreads the predicted accuracy linearly over the action range (see the
            module docstring); ``"identity"`` uses the action as μ (heads saved before the map
            existed load as ``"identity"``).

    The tree and MLP defaults were chosen on validation log-loss of split seed 0 only (synthetic
    benchmark with 8,000 queries; RouterBench sample with TF-IDF and MiniLM embeddings): depth-2
    trees did at least as well as depth 3 everywhere; the MLP needs a strong L2 penalty (the best
    ``alpha`` was 10–300 depending on the data, 100 a compromise) and a 32-unit layer.
    """

    l2: float = 1.0
    n_folds: int = 5
    quality_scale: float = 0.1
    cost_scale: float = 3.0
    gamma: float = 2.0
    cost_quantiles: tuple[float, float] = (0.01, 0.99)
    predictor: str = "logistic"
    cost_predictor: str = "ridge"
    gbt_max_iter: int = 200
    gbt_learning_rate: float = 0.1
    gbt_max_depth: int = 2
    gbt_min_samples_leaf: int = 20
    mlp_hidden: tuple[int, ...] = (32,)
    mlp_alpha: float = 100.0
    mlp_max_iter: int = 100
    action_map: str = "accuracy"

    def __post_init__(self) -> None:
        problems = []
        for field in dataclasses.fields(self):  # numbers first: the checks below compare them
            value = getattr(self, field.name)
            if isinstance(field.default, (int, float)) and not isinstance(field.default, bool):
                if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
                    problems.append(f"{field.name} must be a number (got {value!r})")
        if problems:
            raise ValueError("Invalid HeadConfig: " + "; ".join(problems) + ".")
        if not (self.l2 > 0 and np.isfinite(self.l2)):
            problems.append(f"l2 must be a finite number > 0 (got {self.l2!r})")
        if int(self.n_folds) != self.n_folds or self.n_folds < 2:
            problems.append(f"n_folds must be an integer >= 2 (got {self.n_folds!r})")
        for name in ("quality_scale", "cost_scale"):
            value = getattr(self, name)
            if not (value >= 0 and np.isfinite(value)):
                problems.append(f"{name} must be a finite number >= 0 (got {value!r})")
        if not GAMMA_RANGE[0] <= self.gamma <= GAMMA_RANGE[1]:
            problems.append(f"gamma must lie in {list(GAMMA_RANGE)} (got {self.gamma!r})")
        low, high = self.cost_quantiles
        if not 0.0 <= low < high <= 1.0:
            problems.append(f"cost_quantiles must satisfy 0 <= low < high <= 1 (got {self.cost_quantiles!r})")
        if self.predictor not in PREDICTORS:
            problems.append(f"predictor must be one of {list(PREDICTORS)} (got {self.predictor!r})")
        if self.cost_predictor not in COST_PREDICTORS:
            problems.append(f"cost_predictor must be one of {list(COST_PREDICTORS)} (got {self.cost_predictor!r})")
        if self.action_map not in ACTION_MAPS:
            problems.append(f"action_map must be one of {list(ACTION_MAPS)} (got {self.action_map!r})")
        for name in ("gbt_max_iter", "gbt_max_depth", "gbt_min_samples_leaf", "mlp_max_iter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                problems.append(f"{name} must be an integer >= 1 (got {value!r})")
        for name in ("gbt_learning_rate", "mlp_alpha"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.number)) and value > 0 and np.isfinite(value)):
                problems.append(f"{name} must be a finite number > 0 (got {value!r})")
        hidden = self.mlp_hidden
        if not (isinstance(hidden, tuple) and hidden and all(isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h >= 1
                                                              for h in hidden)):
            problems.append(f"mlp_hidden must be a non-empty tuple of integers >= 1 (got {hidden!r})")
        if problems:
            raise ValueError("Invalid HeadConfig: " + "; ".join(problems) + ".")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HeadConfig:
        """Build from a dict (for example a ``gym.make`` kwarg), naming unknown keys."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"Unknown HeadConfig fields {unknown}; known: {[f.name for f in dataclasses.fields(cls)]}.")
        values = dict(values)
        if "cost_quantiles" in values:
            values["cost_quantiles"] = tuple(values["cost_quantiles"])
        if isinstance(values.get("mlp_hidden"), (list, tuple)):  # JSON and YAML give lists
            values["mlp_hidden"] = tuple(values["mlp_hidden"])
        return cls(**values)

    def key(self) -> str:
        """A stable string for cache keys."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def part_key(self, role: str) -> str:
        """Cache key of one predictor (``"correctness"`` or ``"cost"``): only the fields it depends on."""
        values = dataclasses.asdict(self)
        kind = self.predictor if role == "correctness" else self.cost_predictor
        wanted = {"n_folds", "l2"} if kind in ("logistic", "ridge") else {"n_folds"}
        wanted |= {name for name in values if name.startswith(f"{kind}_")}
        if role == "cost":
            wanted.add("cost_quantiles")
        return json.dumps({"kind": kind, **{name: values[name] for name in sorted(wanted)}}, sort_keys=True)

    def gbt_settings(self) -> GBTSettings:
        """The gradient-boosted trees' settings."""
        return GBTSettings(max_iter=int(self.gbt_max_iter), learning_rate=float(self.gbt_learning_rate), max_depth=int(self.gbt_max_depth),
                           min_samples_leaf=int(self.gbt_min_samples_leaf))

    def mlp_settings(self) -> MLPSettings:
        """The MLP's settings."""
        return MLPSettings(hidden=tuple(int(h) for h in self.mlp_hidden), alpha=float(self.mlp_alpha), max_iter=int(self.mlp_max_iter))


@dataclasses.dataclass(frozen=True, eq=False)
class RoutingHead:
    """A fitted routing head: predicts p̂ and ĉ for new queries and scores the models.

    Attributes:
        models: Model names, in column order.
        config: The settings it was fitted with.
        feature_mean, feature_scale: The standardizer of ``[z, log1p(tokens)]``.
        correct_weights, correct_bias: Logistic regression of correctness, ``(D, K)`` and ``(K,)``
            (``(0, K)`` and zeros with a non-linear ``correct_model``).
        platt_a, platt_c: Per-model Platt calibration on validation.
        cost_weights, cost_bias: Ridge regression of log USD cost (``(0, K)`` and zeros with a
            non-linear ``cost_model``).
        cost_sd: Residual sd of log cost per model (out-of-fold on train for a non-linear model).
        log_cost_range: Log-USD values mapped to ĉ = 0 and ĉ = 1.
        quality_prior: ``b`` in [0, 1], ``(K,)``.
        train_mean_score: Each model's mean train score (before scaling), ``(K,)``.
        correct_model: The gradient-boosted trees or MLP of correctness logits, or ``None`` (logistic).
        cost_model: The trees or MLP of log USD cost, or ``None`` (ridge).
        action_mu: The action map's knots: μ at ``a = 0, 1/(M − 1), ..., 1``, non-decreasing from 0
            to 1 (``[0, 1]``, the identity, when ``config.action_map == "identity"``).
    """

    models: tuple[str, ...]
    config: HeadConfig
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    correct_weights: np.ndarray
    correct_bias: np.ndarray
    platt_a: np.ndarray
    platt_c: np.ndarray
    cost_weights: np.ndarray
    cost_bias: np.ndarray
    cost_sd: np.ndarray
    log_cost_range: np.ndarray
    quality_prior: np.ndarray
    train_mean_score: np.ndarray
    correct_model: ArrayModel | None = None
    cost_model: ArrayModel | None = None
    action_mu: np.ndarray = dataclasses.field(default_factory=lambda: IDENTITY_ACTION_MAP.copy())

    _ARRAYS = (
        "feature_mean", "feature_scale", "correct_weights", "correct_bias", "platt_a", "platt_c",
        "cost_weights", "cost_bias", "cost_sd", "log_cost_range", "quality_prior", "train_mean_score", "action_mu",
    )
    #: Arrays a head saved by an earlier version may lack (``action_mu``: the identity reproduces its routing).
    _OPTIONAL_ARRAYS = frozenset({"action_mu"})

    def __post_init__(self) -> None:
        problem = action_map_problem(self.action_mu)
        if problem:
            raise ValueError(f"Invalid routing head: `action_mu` {problem}.")
        knots = np.asarray(self.action_mu, dtype=np.float64)
        knots.flags.writeable = False
        object.__setattr__(self, "action_mu", knots)

    @property
    def n_models(self) -> int:
        """Number of models ``K``."""
        return len(self.models)

    @property
    def embedding_dim(self) -> int:
        """Width of the embeddings the head expects."""
        return int(self.feature_mean.shape[0]) - 1

    # ------------------------------------------------------------------ predictions
    def _features(self, embeddings: np.ndarray, prompt_tokens: np.ndarray) -> np.ndarray:
        embeddings = np.asarray(embeddings, dtype=np.float64)
        prompt_tokens = np.asarray(prompt_tokens)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_dim:
            raise ValueError(f"`embeddings` must have shape (n, {self.embedding_dim}), got {embeddings.shape}.")
        if prompt_tokens.shape != (embeddings.shape[0],):
            raise ValueError(f"`prompt_tokens` must have shape ({embeddings.shape[0]},), got {prompt_tokens.shape}.")
        if not np.isfinite(embeddings).all():
            raise ValueError("`embeddings` holds NaN or infinite values.")
        if not np.isfinite(prompt_tokens.astype(np.float64)).all() or (prompt_tokens < 0).any():
            raise ValueError("`prompt_tokens` must be finite and non-negative.")
        return (query_features(embeddings, prompt_tokens) - self.feature_mean) / self.feature_scale

    def correctness_logits(self, features: np.ndarray) -> np.ndarray:
        """Uncalibrated logits of correctness for standardized ``features``."""
        if self.correct_model is not None:
            return self.correct_model.predict(features)
        return features @ self.correct_weights + self.correct_bias

    def log_cost(self, features: np.ndarray) -> np.ndarray:
        """Predicted log USD cost (before normalization) for standardized ``features``."""
        if self.cost_model is not None:
            return self.cost_model.predict(features)
        return features @ self.cost_weights + self.cost_bias

    def standardized_features(self, embeddings: np.ndarray, prompt_tokens: np.ndarray) -> np.ndarray:
        """The predictors' input for new queries (validated), ``(n, d + 1)``."""
        return self._features(embeddings, prompt_tokens)

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Apply the per-model Platt calibration to logits."""
        return sigmoid(self.platt_a * logits + self.platt_c)

    def predict(self, embeddings: np.ndarray, prompt_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predict ``(p̂, ĉ)``, each ``(n, K)`` float32, for new queries.

        Raises:
            ValueError: On a wrong embedding width, mismatched lengths, NaN or negative tokens.
        """
        p_hat, cost_hat, _ = self.predict_with_usd(embeddings, prompt_tokens)
        return p_hat, cost_hat

    def predict_with_usd(self, embeddings: np.ndarray, prompt_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(p̂, ĉ, expected USD)`` for new queries, standardizing the features once."""
        features = self._features(embeddings, prompt_tokens)
        p_hat = self.calibrate(self.correctness_logits(features))
        log_cost = self.log_cost(features)
        usd = np.exp(log_cost + 0.5 * self.cost_sd**2)
        return p_hat.astype(np.float32), log_scale(log_cost, self.log_cost_range).astype(np.float32), usd

    # ------------------------------------------------------------------ routing
    def mu_from_action(self, action: np.ndarray | float) -> np.ndarray | float:
        """μ for policy actions in [0, 1] through the action map (scalar in, float out).

        Args:
            action: Scalar or array of actions; values outside [0, 1] are clipped (as SB3 clips
                Box actions), NaN passes through for the caller's own check.
        """
        knots = self.action_mu
        scalar = np.ndim(action) == 0
        action = np.clip(np.asarray(action, dtype=np.float64), 0.0, 1.0)
        # The same float operations as the environment's scalar step (bit-identical results).
        position = action * (knots.size - 1)
        index = np.minimum(np.floor(np.nan_to_num(position)).astype(np.int64), knots.size - 2)
        mu = knots[index] + (position - index) * (knots[index + 1] - knots[index])
        return float(mu) if scalar else mu

    def score(self, p_hat: np.ndarray, cost_hat: np.ndarray, mu: np.ndarray | float, gamma: np.ndarray | float | None = None) -> np.ndarray:
        """The score ``p̂ + μ·s_b·b − (1 − μ)^γ·s_c·ĉ`` for every query and model, ``(n, K)``.

        Args:
            p_hat: ``(n, K)`` predicted correctness.
            cost_hat: ``(n, K)`` normalized predicted cost.
            mu: Scalar or ``(n,)`` quality preference in [0, 1].
            gamma: Scalar or ``(n,)`` exponent; ``None`` uses the configured γ.

        Raises:
            ValueError: If μ is NaN or outside [0, 1], or γ is not finite and positive.
        """
        gamma = self.config.gamma if gamma is None else gamma
        mu = np.asarray(mu, dtype=np.float64)
        gamma = np.asarray(gamma, dtype=np.float64)
        if not np.all((mu >= 0.0) & (mu <= 1.0)):  # also NaN
            raise ValueError(f"μ must be finite and in [0, 1]; got {mu[~((mu >= 0.0) & (mu <= 1.0))].ravel()[:5].tolist()}.")
        if not np.all(np.isfinite(gamma) & (gamma > 0)):
            raise ValueError("γ must be finite and > 0.")
        if mu.ndim == 1:
            mu = mu[:, None]
        if gamma.ndim == 1:
            gamma = gamma[:, None]
        quality = mu * (self.config.quality_scale * self.quality_prior)
        cost = (1.0 - mu) ** gamma * self.config.cost_scale
        return p_hat + quality - cost * cost_hat

    def route(self, p_hat: np.ndarray, cost_hat: np.ndarray, mu: np.ndarray | float, gamma: np.ndarray | float | None = None) -> np.ndarray:
        """Model index ``argmax_k`` of :meth:`score`, ``(n,)`` int64."""
        return np.argmax(self.score(p_hat, cost_hat, mu, gamma), axis=1)

    def score_matrix(self, p_hat: np.ndarray, cost_hat: np.ndarray) -> np.ndarray:
        """Stack ``(p̂, s_b·b, −s_c·ĉ)`` into ``(n, 3, K)`` so one query's score is a dot product.

        ``score = [1, μ, (1 − μ)^γ] @ matrix[i]``: the environment's single-step fast path.
        """
        n = p_hat.shape[0]
        prior = np.broadcast_to(self.config.quality_scale * self.quality_prior, (n, self.n_models))
        return np.ascontiguousarray(np.stack([p_hat, prior, -self.config.cost_scale * cost_hat], axis=1), dtype=np.float64)

    # ------------------------------------------------------------------ persistence
    def _models_by_role(self) -> dict[str, ArrayModel]:
        pairs = {"correctness": self.correct_model, "cost": self.cost_model}
        return {role: model for role, model in pairs.items() if model is not None}

    def arrays(self) -> dict[str, np.ndarray]:
        """Every parameter array by its name in ``routing_head.npz``.

        The fixed fields (:attr:`_ARRAYS`) and, for a non-linear predictor, its arrays prefixed with
        its role (``correctness__w0``, ``cost__threshold``, ...).
        """
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        for role, model in self._models_by_role().items():
            arrays.update({f"{role}__{name}": value for name, value in model.to_arrays().items()})
        return arrays

    def save(self, directory: str | Path) -> None:
        """Write ``routing_head.npz`` and ``routing_head.json`` into ``directory``.

        A head with the linear predictors writes format 1 (as before non-linear predictors
        existed); with a tree or MLP predictor, format 2 adds a ``predictors`` entry (kind and
        shape of each) to the JSON and the predictor's arrays to the ``.npz``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "routing_head.npz", **self.arrays())
        meta: dict[str, Any] = {"models": list(self.models), "config": dataclasses.asdict(self.config), "format": 1}
        predictors = {role: model.meta() for role, model in self._models_by_role().items()}
        if predictors:
            meta.update(format=2, predictors=predictors)
        (directory / "routing_head.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> RoutingHead:
        """Read a head written by :meth:`save` (no pickle involved).

        Raises:
            FileNotFoundError: If the files are missing, naming them.
            ValueError: If a predictor's arrays are missing or inconsistent with the config and models.
        """
        directory = Path(directory)
        for name in ("routing_head.npz", "routing_head.json"):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"Routing head file {directory / name} is missing.")
        meta = json.loads((directory / "routing_head.json").read_text())
        config = HeadConfig.from_dict(meta["config"])
        predictors = meta.get("predictors") or {}
        if not isinstance(predictors, dict) or set(predictors) - set(_ROLES):
            raise ValueError(f"{directory / 'routing_head.json'}: `predictors` must map roles among {list(_ROLES)} to settings.")
        with np.load(directory / "routing_head.npz", allow_pickle=False) as arrays:
            missing = [name for name in cls._ARRAYS if name not in arrays.files and name not in cls._OPTIONAL_ARRAYS]
            if missing:
                raise ValueError(f"{directory / 'routing_head.npz'} lacks the arrays {missing}.")
            values = {name: arrays[name] for name in cls._ARRAYS if name in arrays.files}
            parts = {role: {name.split("__", 1)[1]: arrays[name] for name in arrays.files if name.startswith(f"{role}__")}
                     for role in predictors}
        models = {role: model_from_arrays(dict(predictors[role]), parts[role]) for role in predictors}
        expected = {"correctness": config.predictor != "logistic", "cost": config.cost_predictor != "ridge"}
        n_models = len(meta["models"])
        n_features = int(np.asarray(values["feature_mean"]).shape[0])
        for role in _ROLES:
            if (role in models) != expected[role]:
                kind = config.predictor if role == "correctness" else config.cost_predictor
                raise ValueError(f"{directory}: the config's {role} predictor is {kind!r} but the file "
                                 f"{'holds' if role in models else 'lacks'} a non-linear {role} model.")
            model = models.get(role)
            if model is not None and (model.n_features != n_features or model.n_outputs != n_models):
                raise ValueError(f"{directory}: the {role} model maps {model.n_features} features to {model.n_outputs} outputs; "
                                 f"the head has {n_features} features and {n_models} models.")
        if "action_mu" not in values:  # saved before the action map existed: its policy acted on μ directly
            config = dataclasses.replace(config, action_map="identity")
            values["action_mu"] = IDENTITY_ACTION_MAP.copy()
        elif "action_map" not in meta["config"]:
            raise ValueError(f"{directory / 'routing_head.json'}: the config lacks `action_map` although the arrays hold a map.")
        problem = action_map_problem(values["action_mu"])
        if problem:
            raise ValueError(f"{directory / 'routing_head.npz'}: `action_mu` {problem}.")
        return cls(models=tuple(meta["models"]), config=config, **values, correct_model=models.get("correctness"),
                   cost_model=models.get("cost"))


@dataclasses.dataclass(frozen=True, eq=False)
class HeadFit:
    """A routing head with its predictions for every row of the benchmark it was fitted on.

    Attributes:
        head: The fitted :class:`RoutingHead`.
        p_hat: ``(N, K)`` float32 predicted correctness; out-of-fold for train rows.
        cost_hat: ``(N, K)`` float32 normalized predicted cost.
        cost_norm: ``(N, K)`` float32 normalized realized cost (the reward's cost term).
    """

    head: RoutingHead
    p_hat: np.ndarray
    cost_hat: np.ndarray
    cost_norm: np.ndarray

    @functools.cached_property
    def score_matrix(self) -> np.ndarray:
        """``(N, 3, K)`` read-only stack of the score terms (see :meth:`RoutingHead.score_matrix`)."""
        matrix = self.head.score_matrix(self.p_hat, self.cost_hat)
        matrix.flags.writeable = False
        return matrix


_CACHE: dict[tuple[str, int, str], HeadFit] = {}
_CACHE_LOCK = threading.Lock()
#: Per-process cache of the two predictors apart (``(fingerprint, seed, role, HeadConfig.part_key(role))``):
#: heads differing only in the other predictor or in the score's scales share the fitted parts.
_PART_CACHE: dict[tuple[str, int, str, str], Any] = {}


def fit_routing_head(benchmark: Benchmark, *, seed: int = 0, config: HeadConfig | None = None) -> HeadFit:
    """Fit the routing head on ``benchmark``'s train split; cached per benchmark, seed and config.

    Args:
        benchmark: The data; only its train rows fit the predictors, its validation rows calibrate.
        seed: Seed of the cross-fitting folds (and of the trees' early-stopping split and the MLP's
            initial weights).
        config: Head settings (default :class:`HeadConfig`).

    Returns:
        A :class:`HeadFit` with read-only prediction arrays for all ``N`` rows.
    """
    config = config or HeadConfig()
    key = (benchmark.fingerprint(), int(seed), config.key())
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    fit = _fit(benchmark, seed=seed, config=config)
    with _CACHE_LOCK:
        _CACHE[key] = fit
    return fit


@dataclasses.dataclass(frozen=True, eq=False)
class _Correctness:
    """The fitted correctness predictor: parameters and calibrated p̂ for every row."""

    weights: np.ndarray
    bias: np.ndarray
    model: ArrayModel | None
    platt_a: np.ndarray
    platt_c: np.ndarray
    p_hat: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class _Cost:
    """The fitted cost predictor: parameters and normalized ĉ (predicted and realized) for every row."""

    weights: np.ndarray
    bias: np.ndarray
    sd: np.ndarray
    model: ArrayModel | None
    log_cost_range: np.ndarray
    cost_hat: np.ndarray
    cost_norm: np.ndarray


def _cached_part(benchmark: Benchmark, seed: int, config: HeadConfig, role: str, build: Any) -> Any:
    key = (benchmark.fingerprint(), int(seed), role, config.part_key(role))
    with _CACHE_LOCK:
        cached = _PART_CACHE.get(key)
    if cached is None:
        cached = build()
        with _CACHE_LOCK:
            _PART_CACHE[key] = cached
    return cached


def _fit(benchmark: Benchmark, *, seed: int, config: HeadConfig) -> HeadFit:
    train = benchmark.split_index("train")
    features_raw = query_features(benchmark.embeddings, benchmark.prompt_tokens)
    standardizer = Standardizer.fit(features_raw[train])
    features = standardizer.transform(features_raw)
    scores = benchmark.scores.astype(np.float64)

    correct = _cached_part(benchmark, seed, config, "correctness", lambda: _fit_correctness(benchmark, features, scores, seed=seed, config=config))
    cost = _cached_part(benchmark, seed, config, "cost", lambda: _fit_cost(benchmark, features, seed=seed, config=config))

    mean_score = scores[train].mean(axis=0)
    spread = mean_score.max() - mean_score.min()
    prior = (mean_score - mean_score.min()) / spread if spread > 0 else np.zeros_like(mean_score)
    head = RoutingHead(
        models=benchmark.models,
        config=config,
        feature_mean=standardizer.mean,
        feature_scale=standardizer.scale,
        correct_weights=correct.weights,
        correct_bias=correct.bias,
        platt_a=correct.platt_a,
        platt_c=correct.platt_c,
        cost_weights=cost.weights,
        cost_bias=cost.bias,
        cost_sd=cost.sd,
        log_cost_range=cost.log_cost_range,
        quality_prior=prior,
        train_mean_score=mean_score,
        correct_model=correct.model,
        cost_model=cost.model,
    )
    if config.action_map == "accuracy":
        knots = fit_action_map(head, correct.p_hat[train], cost.cost_hat[train])
        head = dataclasses.replace(head, action_mu=knots)
    return HeadFit(head=head, p_hat=correct.p_hat, cost_hat=cost.cost_hat, cost_norm=cost.cost_norm)


def action_map_problem(knots: Any) -> str | None:
    """What is wrong with action-map knots, or ``None`` when they are valid.

    Valid knots are at least two finite, non-decreasing values from exactly 0 to exactly 1.
    """
    array = np.asarray(knots)
    if array.ndim != 1 or array.size < 2 or array.dtype.kind not in "iuf":
        return f"must be a 1-D array of at least 2 numbers, got {array.dtype} of shape {array.shape}"
    if not np.isfinite(array).all():
        return "holds NaN or infinite values"
    if array[0] != 0.0 or array[-1] != 1.0 or (np.diff(array) < 0).any():
        return f"must rise monotonically from 0 to 1, got {np.round(array[:3], 4).tolist()}...{np.round(array[-3:], 4).tolist()}"
    return None


def fit_action_map(head: RoutingHead, p_hat: np.ndarray, cost_hat: np.ndarray, *, knots: int = ACTION_KNOTS,
                   plateau: float = ACTION_PLATEAU) -> np.ndarray:
    """Knots of the action map under which predicted accuracy rises linearly in the action.

    On a grid of μ, the head routes ``p_hat``/``cost_hat`` (train rows, cross-fitted) and takes the
    mean p̂ of the chosen models, made non-decreasing. The action ``a`` maps to μ = 0 … μ₀ on
    ``[0, plateau]`` (μ₀: the largest μ still routing like μ = 0), then through the inverse of that
    curve on ``[plateau, 1 − plateau]``, then μ₁ … 1 on the last plateau (μ₁: the smallest μ reaching
    the highest predicted accuracy).

    Returns:
        ``(knots,)`` μ values at ``a = linspace(0, 1, knots)``: non-decreasing, from 0 to 1.
        :data:`IDENTITY_ACTION_MAP` (two knots) when the predicted accuracy does not change with μ
        (one model, or identical ones).
    """
    mu_grid = np.linspace(0.0, 1.0, _ACTION_GRID)
    p_hat = np.asarray(p_hat, dtype=np.float64)
    rows = np.arange(p_hat.shape[0])
    predicted = np.array([p_hat[rows, head.route(p_hat, cost_hat, mu)].mean() for mu in mu_grid])
    curve = np.maximum.accumulate(predicted)
    rise = curve[-1] - curve[0]
    actions = np.linspace(0.0, 1.0, knots)
    if not rise > 1e-9:
        return IDENTITY_ACTION_MAP.copy()
    share = (curve - curve[0]) / rise
    start = mu_grid[np.flatnonzero(share <= 1e-12)[-1]]
    end = mu_grid[np.flatnonzero(share >= 1.0 - 1e-12)[0]]
    inner = np.clip((actions - plateau) / (1.0 - 2.0 * plateau), 0.0, 1.0)
    strictly_rising = share + 1e-9 * np.linspace(0.0, 1.0, share.size)  # np.interp needs increasing x; flat parts pass at once
    mu = np.clip(np.interp(inner, strictly_rising, mu_grid), start, end)
    low, high = actions < plateau, actions > 1.0 - plateau
    mu[low] = start * actions[low] / plateau
    mu[high] = end + (1.0 - end) * (actions[high] - (1.0 - plateau)) / plateau
    mu[0], mu[-1] = 0.0, 1.0
    return np.maximum.accumulate(mu)


def _frozen32(array: np.ndarray) -> np.ndarray:
    out = array.astype(np.float32)
    out.flags.writeable = False
    return out


def _fit_model(kind: str, features: np.ndarray, targets: np.ndarray, *, task: str, seed: int, config: HeadConfig) -> ArrayModel:
    """Fit a non-linear predictor (``"gbt"`` or ``"mlp"``)."""
    if kind == "gbt":
        return fit_gbt(features, targets, task=task, settings=config.gbt_settings(), seed=seed)
    return fit_mlp(features, targets, task=task, settings=config.mlp_settings(), seed=seed)


def _cross_fitted(kind: str, features: np.ndarray, targets: np.ndarray, folds: list[np.ndarray], train: np.ndarray, *, task: str,
                  seed: int, config: HeadConfig) -> tuple[ArrayModel, np.ndarray]:
    """The model fitted on all train rows, and its outputs for every row (out-of-fold for train rows)."""
    model = _fit_model(kind, features[train], targets[train], task=task, seed=seed, config=config)
    outputs = model.predict(features)
    for fold in folds:
        rest = np.setdiff1d(train, fold, assume_unique=True)
        outputs[fold] = _fit_model(kind, features[rest], targets[rest], task=task, seed=seed, config=config).predict(features[fold])
    return model, outputs


def _fit_correctness(benchmark: Benchmark, features: np.ndarray, scores: np.ndarray, *, seed: int, config: HeadConfig) -> _Correctness:
    """p̂: the full fit for val/test rows, cross-fitted logits for the train rows, Platt on validation."""
    train = benchmark.split_index("train")
    val = benchmark.split_index("val")
    model = None
    if config.predictor == "logistic":
        weights, bias = fit_soft_logistic(features[train], scores[train], l2=config.l2)
        logits = features @ weights + bias
        for fold in _grouped_folds(benchmark, train, n_folds=config.n_folds, seed=seed):
            rest = np.setdiff1d(train, fold, assume_unique=True)
            fold_w, fold_b = fit_soft_logistic(features[rest], scores[rest], l2=config.l2)
            logits[fold] = features[fold] @ fold_w + fold_b
    else:
        folds = _grouped_folds(benchmark, train, n_folds=config.n_folds, seed=seed)
        model, logits = _cross_fitted(config.predictor, features, scores, folds, train, task="classification", seed=seed, config=config)
        weights, bias = np.zeros((0, scores.shape[1])), np.zeros(scores.shape[1])
    platt_a, platt_c = fit_platt(logits[val], scores[val])
    p_hat = sigmoid(platt_a * logits + platt_c)
    return _Correctness(weights, bias, model, platt_a, platt_c, _frozen32(p_hat))


def _fit_cost(benchmark: Benchmark, features: np.ndarray, *, seed: int, config: HeadConfig) -> _Cost:
    """ĉ: log USD cost; normalization bounds from the train split's realized log costs."""
    train = benchmark.split_index("train")
    log_costs = np.log(np.maximum(benchmark.costs, 1e-12))
    model = None
    if config.cost_predictor == "ridge":
        cost_w, cost_b, cost_sd = fit_ridge(features[train], log_costs[train], l2=config.l2)
        predicted = features @ cost_w + cost_b
    else:
        folds = _grouped_folds(benchmark, train, n_folds=config.n_folds, seed=seed)
        model, predicted = _cross_fitted(config.cost_predictor, features, log_costs, folds, train, task="regression", seed=seed,
                                         config=config)
        cost_w, cost_b = np.zeros((0, log_costs.shape[1])), np.zeros(log_costs.shape[1])
        cost_sd = (log_costs[train] - predicted[train]).std(axis=0)  # out-of-fold residuals
    low, high = np.quantile(log_costs[train], config.cost_quantiles)
    if not high > low:  # every train cost equal: any unit width keeps the scale defined
        high = low + 1.0
    log_cost_range = np.array([low, high])
    return _Cost(cost_w, cost_b, cost_sd, model, log_cost_range, _frozen32(log_scale(predicted, log_cost_range)),
                 _frozen32(log_scale(log_costs, log_cost_range)))


def _grouped_folds(benchmark: Benchmark, train: np.ndarray, *, n_folds: int, seed: int) -> list[np.ndarray]:
    """Cross-fitting folds of the train rows; rows with the same prompt text share a fold.

    Otherwise a duplicated prompt could sit in two folds and its "out-of-fold" prediction would be
    partly in-sample, the optimism cross-fitting removes.
    """
    rng = np.random.default_rng(seed)
    if benchmark.prompts is None:
        return np.array_split(train[rng.permutation(train.size)], n_folds)
    _, group = np.unique(benchmark.prompts[train].astype(str), return_inverse=True)
    fold_of_group = rng.permutation(group.max() + 1) % n_folds
    return [train[fold_of_group[group] == f] for f in range(n_folds)]


def fixed_mu_frontier(
    benchmark: Benchmark, fit: HeadFit, mus: np.ndarray, *, split: str = "test", rows: np.ndarray | None = None,
    gamma: float | None = None,
) -> dict[str, np.ndarray]:
    """Realized accuracy and cost of fixed-μ routing on one split (or on given rows).

    Args:
        benchmark: The data (realized scores and costs).
        fit: The routing head fit.
        mus: The μ values.
        split: The split routed when ``rows`` is not given.
        rows: Row indices to route instead of a whole split.
        gamma: The exponent γ (default: the head's).

    Returns:
        ``{"mu", "accuracy", "usd_per_1k", "cost_norm"}`` arrays, one entry per μ (``cost_norm``:
        the mean normalized realized cost, the reward's cost term).
    """
    rows = benchmark.split_index(split) if rows is None else np.asarray(rows)
    p_hat, cost_hat = fit.p_hat[rows], fit.cost_hat[rows]
    accuracy, usd, cost_norm = [], [], []
    for mu in np.asarray(mus, dtype=np.float64):
        choice = fit.head.route(p_hat, cost_hat, mu, gamma)
        accuracy.append(float(benchmark.scores[rows, choice].mean()))
        usd.append(float(benchmark.costs[rows, choice].mean() * 1000.0))
        cost_norm.append(float(fit.cost_norm[rows, choice].mean()))
    return {"mu": np.asarray(mus, dtype=np.float64), "accuracy": np.array(accuracy), "usd_per_1k": np.array(usd),
            "cost_norm": np.array(cost_norm)}


# ---------------------------------------------------------------------- choosing the predictors
#: Validation metrics :func:`choose_predictor` can rank correctness predictors by (lower is better).
SELECTION_METRICS: tuple[str, ...] = ("log_loss", "brier")


@dataclasses.dataclass(frozen=True)
class PredictorChoice:
    """The predictors :func:`choose_predictor` picked on validation, with every candidate's scores.

    Attributes:
        config: The chosen head settings (fit it with ``fit_routing_head(benchmark, seed=..., config=choice.config)``).
        predictor: Label of the chosen correctness candidate.
        cost_predictor: Label of the chosen cost candidate.
        metric: The correctness metric ranked by (``"log_loss"`` or ``"brier"``).
        scores: Per correctness candidate: validation ``log_loss`` and ``brier`` (with Platt scaling
            cross-fitted over the validation rows) and the mean over models of ``auc`` and ``ece``.
        cost_scores: Per cost candidate: validation ``rmse_log_cost`` (empty without cost candidates).
    """

    config: HeadConfig
    predictor: str
    cost_predictor: str
    metric: str
    scores: dict[str, dict[str, float]]
    cost_scores: dict[str, dict[str, float]]

    def summary(self) -> str:
        """The candidates' validation scores as text, the chosen ones marked with ``*``."""
        lines = [f"correctness predictors (validation; chosen by {self.metric}):"]
        for label, values in self.scores.items():
            mark = "*" if label == self.predictor else " "
            lines.append(f" {mark} {label:<24} " + "  ".join(f"{k}={v:.4f}" for k, v in values.items()))
        if self.cost_scores:
            lines.append("cost predictors (validation; chosen by rmse_log_cost):")
            for label, values in self.cost_scores.items():
                mark = "*" if label == self.cost_predictor else " "
                lines.append(f" {mark} {label:<24} " + "  ".join(f"{k}={v:.4f}" for k, v in values.items()))
        return "\n".join(lines)


Candidate = str | HeadConfig | Mapping[str, Any]


def _candidate_config(candidate: Candidate, base: HeadConfig, field: str) -> tuple[str, HeadConfig]:
    """``(label, config)`` of a candidate: a predictor name, a :class:`HeadConfig` or a dict of overrides."""
    if isinstance(candidate, str):
        return candidate, dataclasses.replace(base, **{field: candidate})
    config = candidate if isinstance(candidate, HeadConfig) else HeadConfig.from_dict({**dataclasses.asdict(base), **dict(candidate)})
    changed = [f"{f.name}={getattr(config, f.name)}" for f in dataclasses.fields(HeadConfig)
               if f.name != field and getattr(config, f.name) != getattr(base, f.name)]
    label = str(getattr(config, field)) + (f"[{','.join(changed)}]" if changed else "")
    return label, config


def _validation_platt_cv(benchmark: Benchmark, logits: np.ndarray, scores: np.ndarray, val: np.ndarray, *, seed: int,
                         n_folds: int) -> np.ndarray:
    """Calibrated p̂ of the validation rows with Platt scaling fitted out-of-fold over them (rows sharing a prompt share a fold)."""
    position = {int(row): i for i, row in enumerate(val)}
    p_hat = np.empty_like(logits)
    for fold in _grouped_folds(benchmark, val, n_folds=min(n_folds, val.size), seed=seed):
        if fold.size == 0:
            continue
        at = np.array([position[int(r)] for r in fold])
        rest = np.setdiff1d(np.arange(val.size), at, assume_unique=True)
        a, c = fit_platt(logits[rest], scores[rest])
        p_hat[at] = sigmoid(a * logits[at] + c)
    return p_hat


def choose_predictor(
    benchmark: Benchmark,
    seed: int = 0,
    candidates: Sequence[Candidate] = PREDICTORS,
    *,
    cost_candidates: Sequence[Candidate] | None = None,
    config: HeadConfig | None = None,
    metric: str = "log_loss",
) -> PredictorChoice:
    """Fit every candidate predictor and pick the best on the validation split (never on test).

    Correctness candidates are ranked by the validation log-loss (or Brier score) of p̂; because
    the head's Platt scaling is fitted on those same validation rows, the score uses Platt scaling
    cross-fitted over them (5 folds), so that no candidate is scored on rows it was calibrated on.
    Cost candidates (optional) are ranked by the validation RMSE of predicted log USD cost, with
    the chosen correctness predictor. Every fit goes through :func:`fit_routing_head` (cached).

    Args:
        benchmark: The data.
        seed: Split-independent seed of the head fits (cross-fitting folds).
        candidates: Correctness predictors: names of :data:`PREDICTORS`, :class:`HeadConfig`
            objects, or dicts of :class:`HeadConfig` overrides (``{"predictor": "gbt", "gbt_max_depth": 4}``).
        cost_candidates: Cost predictors, likewise (names of :data:`COST_PREDICTORS`); ``None``
            keeps ``config``'s.
        config: The base settings the candidates override (default :class:`HeadConfig`).
        metric: ``"log_loss"`` or ``"brier"``.

    Returns:
        A :class:`PredictorChoice`; ``choice.summary()`` prints the scores.

    Raises:
        ValueError: On no candidates, an unknown metric or a bad candidate.
    """
    if metric not in SELECTION_METRICS:
        raise ValueError(f"`metric` must be one of {list(SELECTION_METRICS)}, got {metric!r}.")
    if not candidates:
        raise ValueError("`candidates` is empty: give at least one predictor.")
    base = config or HeadConfig()
    val = benchmark.split_index("val")
    scores = benchmark.scores[val].astype(np.float64)
    table: dict[str, dict[str, float]] = {}
    configs: dict[str, HeadConfig] = {}
    for candidate in candidates:
        label, cand = _candidate_config(candidate, base, "predictor")
        fit = fit_routing_head(benchmark, seed=seed, config=cand)
        head = fit.head
        logits = head.correctness_logits(head.standardized_features(benchmark.embeddings[val], benchmark.prompt_tokens[val]))
        p_hat = np.clip(_validation_platt_cv(benchmark, logits, scores, val, seed=seed, n_folds=5), 1e-6, 1 - 1e-6)
        log_loss = float(-(scores * np.log(p_hat) + (1 - scores) * np.log(1 - p_hat)).mean())
        per_model = calibration_metrics(scores, p_hat)
        table[label] = {"log_loss": log_loss, "brier": float(((p_hat - scores) ** 2).mean()),
                        "auc": float(np.nanmean(per_model["auc"])), "ece": float(np.mean(per_model["ece"]))}
        configs[label] = cand
    chosen = min(table, key=lambda label: table[label][metric])
    best = configs[chosen]
    cost_table: dict[str, dict[str, float]] = {}
    cost_label = best.cost_predictor
    if cost_candidates:
        log_costs = np.log(np.maximum(benchmark.costs[val], 1e-12))
        cost_configs = {}
        for candidate in cost_candidates:
            label, cand = _candidate_config(candidate, best, "cost_predictor")
            head = fit_routing_head(benchmark, seed=seed, config=cand).head
            predicted = head.log_cost(head.standardized_features(benchmark.embeddings[val], benchmark.prompt_tokens[val]))
            cost_table[label] = {"rmse_log_cost": float(np.sqrt(((predicted - log_costs) ** 2).mean()))}
            cost_configs[label] = cand
        cost_label = min(cost_table, key=lambda label: cost_table[label]["rmse_log_cost"])
        best = cost_configs[cost_label]
    return PredictorChoice(config=best, predictor=chosen, cost_predictor=cost_label, metric=metric, scores=table, cost_scores=cost_table)
