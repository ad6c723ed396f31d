"""The routing head: predicted correctness p̂, predicted cost ĉ, the quality prior b, and the score.

Shared by the environment, the trained-router API and the baselines. For a quality preference
μ ∈ [0, 1] the head routes query ``x`` to

    argmax_k  p̂_k(x) + μ · s_b · b_k − (1 − μ)^γ · s_c · ĉ_k(x)

* ``p̂`` — a joint soft-label logistic regression on ``[z, log1p(prompt_tokens)]`` fitted on the
  train split only, Platt-calibrated per model on validation. Train rows get cross-fitted
  (out-of-fold, ``n_folds``) predictions: in-sample ones are optimistic, and a policy trained on
  them learns that cheap models are right more often than they are.
* ``ĉ`` — a ridge regression of log USD cost on the same features (prompt length carries most of
  the cost), mapped to [0, 1] on a log scale between the 1st and 99th percentile of the train
  split's log costs, so that μ moves through the cheap models instead of jumping to the dearest.
* ``b`` — each model's train-split mean score, min-max scaled to [0, 1].
* ``s_b``, ``s_c`` and ``γ`` — the term scales; defaults chosen by measurement (see
  :class:`HeadConfig`).

Everything is vectorized over queries; parameters are plain arrays, saved to ``.npz`` + JSON.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from proteus_env.benchmark import Benchmark
from proteus_env.predictors import (
    Standardizer,
    fit_platt,
    fit_ridge,
    fit_soft_logistic,
    query_features,
    sigmoid,
)

GAMMA_RANGE: tuple[float, float] = (2.0, 8.0)


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

    Attributes:
        l2: Ridge strength of both predictors.
        n_folds: Folds of the cross-fitted train predictions.
        quality_scale: ``s_b``, weight of the quality prior term.
        cost_scale: ``s_c``, weight of the normalized cost term.
        gamma: Default exponent γ of ``(1 − μ)``.
        cost_quantiles: Quantiles of the train log costs mapped to 0 and 1.
    """

    l2: float = 1.0
    n_folds: int = 5
    quality_scale: float = 0.1
    cost_scale: float = 3.0
    gamma: float = 2.0
    cost_quantiles: tuple[float, float] = (0.01, 0.99)

    def __post_init__(self) -> None:
        problems = []
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
        return cls(**values)

    def key(self) -> str:
        """A stable string for cache keys."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@dataclasses.dataclass(frozen=True, eq=False)
class RoutingHead:
    """A fitted routing head: predicts p̂ and ĉ for new queries and scores the models.

    Attributes:
        models: Model names, in column order.
        config: The settings it was fitted with.
        feature_mean, feature_scale: The standardizer of ``[z, log1p(tokens)]``.
        correct_weights, correct_bias: Logistic regression of correctness, ``(D, K)`` and ``(K,)``.
        platt_a, platt_c: Per-model Platt calibration on validation.
        cost_weights, cost_bias, cost_sd: Ridge regression of log USD cost.
        log_cost_range: Log-USD values mapped to ĉ = 0 and ĉ = 1.
        quality_prior: ``b`` in [0, 1], ``(K,)``.
        train_mean_score: Each model's mean train score (before scaling), ``(K,)``.
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

    _ARRAYS = (
        "feature_mean", "feature_scale", "correct_weights", "correct_bias", "platt_a", "platt_c",
        "cost_weights", "cost_bias", "cost_sd", "log_cost_range", "quality_prior", "train_mean_score",
    )

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
        return features @ self.correct_weights + self.correct_bias

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
        log_cost = features @ self.cost_weights + self.cost_bias
        usd = np.exp(log_cost + 0.5 * self.cost_sd**2)
        return p_hat.astype(np.float32), log_scale(log_cost, self.log_cost_range).astype(np.float32), usd

    # ------------------------------------------------------------------ routing
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
    def save(self, directory: str | Path) -> None:
        """Write ``routing_head.npz`` and ``routing_head.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "routing_head.npz", **{name: getattr(self, name) for name in self._ARRAYS})
        meta = {"models": list(self.models), "config": dataclasses.asdict(self.config), "format": 1}
        (directory / "routing_head.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> RoutingHead:
        """Read a head written by :meth:`save` (no pickle involved).

        Raises:
            FileNotFoundError: If the files are missing, naming them.
        """
        directory = Path(directory)
        for name in ("routing_head.npz", "routing_head.json"):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"Routing head file {directory / name} is missing.")
        meta = json.loads((directory / "routing_head.json").read_text())
        config = HeadConfig.from_dict(meta["config"])
        with np.load(directory / "routing_head.npz", allow_pickle=False) as arrays:
            values = {name: arrays[name] for name in cls._ARRAYS}
        return cls(models=tuple(meta["models"]), config=config, **values)


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


def fit_routing_head(benchmark: Benchmark, *, seed: int = 0, config: HeadConfig | None = None) -> HeadFit:
    """Fit the routing head on ``benchmark``'s train split; cached per benchmark, seed and config.

    Args:
        benchmark: The data; only its train rows fit the predictors, its validation rows calibrate.
        seed: Seed of the cross-fitting folds.
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


def _fit(benchmark: Benchmark, *, seed: int, config: HeadConfig) -> HeadFit:
    train = benchmark.split_index("train")
    val = benchmark.split_index("val")
    features_raw = query_features(benchmark.embeddings, benchmark.prompt_tokens)
    standardizer = Standardizer.fit(features_raw[train])
    features = standardizer.transform(features_raw)
    scores = benchmark.scores.astype(np.float64)

    # Correctness: full fit for val/test, cross-fitted logits for the train rows.
    weights, bias = fit_soft_logistic(features[train], scores[train], l2=config.l2)
    logits = features @ weights + bias
    for fold in _grouped_folds(benchmark, train, n_folds=config.n_folds, seed=seed):
        rest = np.setdiff1d(train, fold, assume_unique=True)
        fold_w, fold_b = fit_soft_logistic(features[rest], scores[rest], l2=config.l2)
        logits[fold] = features[fold] @ fold_w + fold_b
    platt_a, platt_c = fit_platt(logits[val], scores[val])
    p_hat = sigmoid(platt_a * logits + platt_c)

    # Cost: ridge on log USD; normalization bounds from the train split's realized log costs.
    log_costs = np.log(np.maximum(benchmark.costs, 1e-12))
    cost_w, cost_b, cost_sd = fit_ridge(features[train], log_costs[train], l2=config.l2)
    low, high = np.quantile(log_costs[train], config.cost_quantiles)
    if not high > low:  # every train cost equal: any unit width keeps the scale defined
        high = low + 1.0
    log_cost_range = np.array([low, high])
    cost_hat = log_scale(features @ cost_w + cost_b, log_cost_range)
    cost_norm = log_scale(log_costs, log_cost_range)

    mean_score = scores[train].mean(axis=0)
    spread = mean_score.max() - mean_score.min()
    prior = (mean_score - mean_score.min()) / spread if spread > 0 else np.zeros_like(mean_score)
    head = RoutingHead(
        models=benchmark.models,
        config=config,
        feature_mean=standardizer.mean,
        feature_scale=standardizer.scale,
        correct_weights=weights,
        correct_bias=bias,
        platt_a=platt_a,
        platt_c=platt_c,
        cost_weights=cost_w,
        cost_bias=cost_b,
        cost_sd=cost_sd,
        log_cost_range=log_cost_range,
        quality_prior=prior,
        train_mean_score=mean_score,
    )
    arrays = [a.astype(np.float32) for a in (p_hat, cost_hat, cost_norm)]
    for array in arrays:
        array.flags.writeable = False
    return HeadFit(head=head, p_hat=arrays[0], cost_hat=arrays[1], cost_norm=arrays[2])


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
    benchmark: Benchmark, fit: HeadFit, mus: np.ndarray, *, split: str = "test", gamma: float | None = None
) -> dict[str, np.ndarray]:
    """Realized accuracy and USD per 1K queries of fixed-μ routing on one split.

    Returns:
        ``{"mu", "accuracy", "usd_per_1k"}`` arrays, one entry per μ.
    """
    rows = benchmark.split_index(split)
    accuracy, usd = [], []
    for mu in np.asarray(mus, dtype=np.float64):
        choice = fit.head.route(fit.p_hat[rows], fit.cost_hat[rows], mu, gamma)
        accuracy.append(float(benchmark.scores[rows, choice].mean()))
        usd.append(float(benchmark.costs[rows, choice].mean() * 1000.0))
    return {"mu": np.asarray(mus, dtype=np.float64), "accuracy": np.array(accuracy), "usd_per_1k": np.array(usd)}

