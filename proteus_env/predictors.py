"""Small array-parameterized predictors of the routing head: correctness and cost.

Both are linear models on standardized query features ``[z, log1p(prompt_tokens)]``, fitted with
plain numpy/scipy so that their parameters are arrays (saved as ``.npz``, never pickled) and their
prediction is one matrix product for all ``K`` models at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

_EPS = 1e-6


@dataclass(frozen=True)
class Standardizer:
    """Feature standardization ``(x - mean) / scale`` fitted on the train split."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> Standardizer:
        """Fit on ``features`` ``(n, D)``; constant columns keep a unit scale."""
        scale = features.std(axis=0)
        return cls(mean=features.mean(axis=0), scale=np.where(scale > 1e-12, scale, 1.0))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Standardize ``features`` ``(n, D)``."""
        return (features - self.mean) / self.scale


def query_features(embeddings: np.ndarray, prompt_tokens: np.ndarray) -> np.ndarray:
    """Stack the embedding and the log prompt length into the predictors' input ``(n, d + 1)``."""
    tokens = np.log1p(np.asarray(prompt_tokens, dtype=np.float64))[:, None]
    return np.hstack([np.asarray(embeddings, dtype=np.float64), tokens])


def fit_soft_logistic(features: np.ndarray, targets: np.ndarray, *, l2: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``K`` logistic regressions jointly on soft targets in [0, 1].

    Minimizes the mean binary cross-entropy plus ``l2 / n`` times the squared weights (the bias is
    not penalized). Fractional scores (GSM8K, MT-Bench) are used as soft labels, not thresholded.

    Args:
        features: ``(n, D)`` standardized features.
        targets: ``(n, K)`` realized scores in [0, 1].
        l2: Ridge strength.

    Returns:
        ``(weights (D, K), bias (K,))``.
    """
    n, dim = features.shape
    k = targets.shape[1]
    design = np.hstack([features, np.ones((n, 1))])
    penalty = np.ones(dim + 1)
    penalty[-1] = 0.0

    def loss_and_grad(flat: np.ndarray) -> tuple[float, np.ndarray]:
        theta = flat.reshape(dim + 1, k)
        logits = design @ theta
        # log(1 + exp(x)) computed stably.
        loss = (np.logaddexp(0.0, logits) - targets * logits).mean(axis=0).sum()
        prob = 1.0 / (1.0 + np.exp(-logits))
        grad = design.T @ (prob - targets) / n
        loss += 0.5 * l2 / n * float((penalty[:, None] * theta**2).sum())
        grad += l2 / n * penalty[:, None] * theta
        return float(loss), grad.ravel()

    base = np.clip(targets.mean(axis=0), _EPS, 1 - _EPS)
    start = np.zeros((dim + 1, k))
    start[-1] = np.log(base / (1 - base))
    result = minimize(loss_and_grad, start.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    theta = result.x.reshape(dim + 1, k)
    return theta[:-1], theta[-1]


def fit_platt(logits: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-model Platt scaling ``sigmoid(a * logit + c)`` fitted on held-out (validation) rows.

    Returns:
        ``(a (K,), c (K,))``.
    """
    k = logits.shape[1]
    a = np.ones(k)
    c = np.zeros(k)
    for j in range(k):
        x = logits[:, j]
        y = targets[:, j]

        def loss_and_grad(params: np.ndarray, x: np.ndarray = x, y: np.ndarray = y) -> tuple[float, np.ndarray]:
            z = params[0] * x + params[1]
            prob = 1.0 / (1.0 + np.exp(-z))
            loss = float((np.logaddexp(0.0, z) - y * z).mean())
            diff = prob - y
            return loss, np.array([(diff * x).mean(), diff.mean()])

        result = minimize(loss_and_grad, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
        a[j], c[j] = result.x
    return a, c


def fit_ridge(features: np.ndarray, targets: np.ndarray, *, l2: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge regression of every column of ``targets`` on ``features`` (closed form).

    Returns:
        ``(weights (D, K), bias (K,), residual_sd (K,))``.
    """
    n, dim = features.shape
    mean_x = features.mean(axis=0)
    mean_y = targets.mean(axis=0)
    xc = features - mean_x
    yc = targets - mean_y
    weights = np.linalg.solve(xc.T @ xc + l2 * np.eye(dim), xc.T @ yc)
    bias = mean_y - mean_x @ weights
    residual = targets - (features @ weights + bias)
    return weights, bias, residual.std(axis=0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically safe logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))
