"""Array-parameterized predictors of the routing head: correctness and cost.

All of them read the standardized query features ``[z, log1p(prompt_tokens)]`` and predict all
``K`` models at once; their parameters are plain arrays (saved as ``.npz``, never pickled).

* Linear (the defaults): a joint soft-label logistic regression of correctness
  (:func:`fit_soft_logistic`) and a ridge regression of log cost (:func:`fit_ridge`), fitted with
  numpy/scipy.
* Non-linear, fitted with scikit-learn and exported into arrays: gradient-boosted trees
  (:func:`fit_gbt` → :class:`TreeEnsemble`, ``HistGradientBoosting*`` per model) and a small MLP
  (:func:`fit_mlp` → :class:`MLPModel`, one network for all models). Predicting needs numpy only.

Fractional scores (GSM8K, MT-Bench) are soft labels everywhere: the logistic loss takes them as
they are, the trees weigh a positive and a negative copy of the row, and the MLP fits the exact
decomposition of :func:`soft_label_rows`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

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


# ---------------------------------------------------------------------- non-linear predictors
# Gradient-boosted trees and a small MLP (scikit-learn), fitted here and exported into plain
# arrays: a fitted head holds no scikit-learn object, so it saves as ``.npz`` + JSON and loads
# without pickle, and predicting needs numpy only.

#: Activations of :class:`MLPModel` (scikit-learn's names).
MLP_ACTIVATIONS: tuple[str, ...] = ("identity", "logistic", "tanh", "relu")
#: Rows per chunk of :meth:`TreeEnsemble.predict` times trees: bounds its working memory.
_TREE_CHUNK_CELLS = 1 << 20


def soft_label_rows(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split rows of soft targets into weighted binary rows with the same cross-entropy.

    Row ``i`` with scores ``y_i`` in [0, 1]^K becomes copies at thresholds ``t_1 < … < t_m`` (the
    distinct positive values of ``y_i``, and 1), copy ``j`` with labels ``1{y_ik >= t_j}`` and weight
    ``t_j − t_{j−1}`` (``t_0 = 0``). The weights sum to 1 and ``Σ_j w_j·label_jk = y_ik``, so the
    weighted binary cross-entropy of the copies equals the soft one for every model at once. Binary
    rows stay one copy of weight 1.

    Args:
        targets: ``(n, K)`` scores in [0, 1].

    Returns:
        ``(rows (m,), labels (m, K) in {0, 1}, weights (m,))``: the source row of every copy.
    """
    targets = np.asarray(targets, dtype=np.float64)
    n, k = targets.shape
    fractional = ((targets > 0.0) & (targets < 1.0)).any(axis=1)
    whole = np.flatnonzero(~fractional)
    part = np.flatnonzero(fractional)
    if part.size == 0:
        return whole, targets.copy(), np.ones(n)
    values = targets[part]
    levels = np.concatenate([np.sort(values, axis=1), np.ones((part.size, 1))], axis=1)  # (p, K + 1)
    weights = np.diff(levels, axis=1, prepend=0.0)  # t_j − t_{j−1}
    labels = (values[:, None, :] >= levels[:, :, None]).astype(np.float64)  # (p, K + 1, K)
    keep = weights > 0.0
    copy_rows = np.broadcast_to(part[:, None], keep.shape)[keep]
    rows = np.concatenate([whole, copy_rows])
    all_labels = np.concatenate([targets[whole], labels[keep]])
    all_weights = np.concatenate([np.ones(whole.size), weights[keep]])
    order = np.argsort(rows, kind="stable")
    return rows[order], all_labels[order], all_weights[order]


@dataclass(frozen=True, eq=False)
class MLPModel:
    """A multilayer perceptron as arrays: ``h ← act(h @ W + b)`` per hidden layer, then ``h @ W + b``.

    The output is the last layer's pre-activation: logits for correctness, log USD for cost.

    Attributes:
        coefs: Weight matrices, first ``(D, H1)`` ... last ``(H, K)``.
        intercepts: Bias vectors, one per layer.
        activation: Hidden activation, one of :data:`MLP_ACTIVATIONS`.
    """

    coefs: tuple[np.ndarray, ...]
    intercepts: tuple[np.ndarray, ...]
    activation: str

    kind = "mlp"

    def __post_init__(self) -> None:
        if self.activation not in MLP_ACTIVATIONS:
            raise ValueError(f"MLP activation must be one of {list(MLP_ACTIVATIONS)}, got {self.activation!r}.")
        if not self.coefs or len(self.coefs) != len(self.intercepts):
            raise ValueError(f"An MLP needs as many weight matrices as bias vectors (>= 1), got {len(self.coefs)} and {len(self.intercepts)}.")
        width = None
        for i, (w, b) in enumerate(zip(self.coefs, self.intercepts, strict=True)):
            if w.ndim != 2 or b.shape != (w.shape[1],) or (width is not None and w.shape[0] != width):
                raise ValueError(f"MLP layer {i} has weights {w.shape} and bias {b.shape}, which do not chain.")
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise ValueError(f"MLP layer {i} holds NaN or infinite values.")
            width = w.shape[1]

    @property
    def n_features(self) -> int:
        """Input width ``D``."""
        return int(self.coefs[0].shape[0])

    @property
    def n_outputs(self) -> int:
        """Output width ``K``."""
        return int(self.coefs[-1].shape[1])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Output ``(n, K)`` for standardized ``features`` ``(n, D)``."""
        hidden = features
        for w, b in zip(self.coefs[:-1], self.intercepts[:-1], strict=True):
            hidden = _activate(hidden @ w + b, self.activation)
        return hidden @ self.coefs[-1] + self.intercepts[-1]

    def meta(self) -> dict[str, Any]:
        """JSON-able description (with :meth:`to_arrays`, everything needed to rebuild it)."""
        return {"kind": self.kind, "activation": self.activation, "n_layers": len(self.coefs)}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The parameters as named arrays."""
        arrays = {f"w{i}": w for i, w in enumerate(self.coefs)}
        arrays.update({f"b{i}": b for i, b in enumerate(self.intercepts)})
        return arrays

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> MLPModel:
        """Rebuild from :meth:`meta` and :meth:`to_arrays` (validated)."""
        n_layers = int(meta.get("n_layers", 0))
        missing = [name for i in range(n_layers) for name in (f"w{i}", f"b{i}") if name not in arrays]
        if n_layers < 1 or missing:
            raise ValueError(f"Saved MLP is incomplete: {n_layers} layers, missing arrays {missing}.")
        coefs = tuple(np.asarray(arrays[f"w{i}"], dtype=np.float64) for i in range(n_layers))
        intercepts = tuple(np.asarray(arrays[f"b{i}"], dtype=np.float64) for i in range(n_layers))
        return cls(coefs=coefs, intercepts=intercepts, activation=str(meta.get("activation")))


def _activate(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(x, 0.0)
    if activation == "tanh":
        return np.tanh(x)
    if activation == "logistic":
        return sigmoid(x)
    return x


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """Sums of regression trees, one sum per output column, as flat node arrays.

    Output ``k`` is ``baseline[k]`` plus the leaf value every tree of ``output == k`` reaches. An
    internal node sends a row left when ``x[feature] <= threshold``; a leaf points to itself on both
    sides (so traversal is a fixed number of vectorized steps, the deepest tree's depth).

    Attributes:
        feature, threshold, left, right, value: Per node ``(M,)``; ``value`` is the leaf output.
        roots: Root node of every tree ``(T,)``.
        output: Output column of every tree ``(T,)``.
        baseline: Starting value per output ``(K,)``.
        n_features: Input width ``D`` the trees were grown on.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    output: np.ndarray
    baseline: np.ndarray
    n_features: int

    kind = "trees"
    _ARRAYS = ("feature", "threshold", "left", "right", "value", "roots", "output", "baseline")

    def __post_init__(self) -> None:
        m = self.feature.shape[0]
        for name in ("feature", "threshold", "left", "right", "value"):
            if getattr(self, name).shape != (m,):
                raise ValueError(f"Tree arrays must all have shape ({m},); `{name}` has {getattr(self, name).shape}.")
        if self.roots.ndim != 1 or self.output.shape != self.roots.shape or self.baseline.ndim != 1:
            raise ValueError(f"Tree `roots` {self.roots.shape}, `output` {self.output.shape} and `baseline` {self.baseline.shape} do not match.")
        for name in ("feature", "left", "right", "roots", "output"):
            if getattr(self, name).dtype.kind not in "iu":
                raise ValueError(f"Tree array `{name}` must hold integers, got {getattr(self, name).dtype}.")
        bounds = {"feature": self.n_features, "left": m, "right": m, "roots": m, "output": self.baseline.shape[0]}
        for name, high in bounds.items():
            array = getattr(self, name)
            if array.size and (array.min() < 0 or array.max() >= high):
                raise ValueError(f"Tree array `{name}` holds indices outside [0, {high}).")
        if np.isnan(self.threshold).any() or not (np.isfinite(self.value).all() and np.isfinite(self.baseline).all()):
            raise ValueError("Tree thresholds, leaf values or baselines hold NaN or infinite values.")
        object.__setattr__(self, "_depth", _tree_depth(self.left, self.right, self.roots))

    @property
    def n_outputs(self) -> int:
        """Output width ``K``."""
        return int(self.baseline.shape[0])

    @property
    def depth(self) -> int:
        """Depth of the deepest tree (traversal steps)."""
        return int(self._depth)  # type: ignore[attr-defined]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Output ``(n, K)`` for standardized ``features`` ``(n, D)``, vectorized over rows and trees."""
        n = features.shape[0]
        out = np.tile(self.baseline.astype(np.float64), (n, 1))
        n_trees = self.roots.shape[0]
        if n_trees == 0 or n == 0:
            return out
        assign = np.zeros((n_trees, self.n_outputs))
        assign[np.arange(n_trees), self.output] = 1.0
        chunk = max(1, _TREE_CHUNK_CELLS // n_trees)
        for start in range(0, n, chunk):
            x = features[start:start + chunk]
            rows = np.arange(x.shape[0])[:, None]
            node = np.broadcast_to(self.roots, (x.shape[0], n_trees))
            for _ in range(self.depth):
                go_left = x[rows, self.feature[node]] <= self.threshold[node]
                node = np.where(go_left, self.left[node], self.right[node])
            out[start:start + chunk] += self.value[node] @ assign
        return out

    def meta(self) -> dict[str, Any]:
        """JSON-able description (with :meth:`to_arrays`, everything needed to rebuild it)."""
        return {"kind": self.kind, "n_features": int(self.n_features), "n_trees": int(self.roots.shape[0])}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The node arrays by name."""
        return {name: getattr(self, name) for name in self._ARRAYS}

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TreeEnsemble:
        """Rebuild from :meth:`meta` and :meth:`to_arrays` (validated, cycles refused)."""
        missing = [name for name in cls._ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"Saved tree ensemble is missing arrays {missing}.")
        values = {name: np.asarray(arrays[name]) for name in cls._ARRAYS}
        for name in ("threshold", "value", "baseline"):
            values[name] = values[name].astype(np.float64)
        return cls(**values, n_features=int(meta.get("n_features", 0)))


def _tree_depth(left: np.ndarray, right: np.ndarray, roots: np.ndarray) -> int:
    """Levels below the roots until every path ends in a leaf (a node pointing to itself on both sides).

    Raises:
        ValueError: If the node links hold a cycle (a malformed or tampered file).
    """
    nodes = np.arange(left.shape[0])
    is_leaf = (left == nodes) & (right == nodes)
    frontier = np.unique(roots)
    depth = 0
    while True:
        internal = frontier[~is_leaf[frontier]]
        if internal.size == 0:
            return depth
        depth += 1
        if depth > left.shape[0]:
            raise ValueError("Tree node links hold a cycle.")
        frontier = np.unique(np.concatenate([left[internal], right[internal]]))


ArrayModel = MLPModel | TreeEnsemble
_MODEL_KINDS: dict[str, type[MLPModel] | type[TreeEnsemble]] = {"mlp": MLPModel, "trees": TreeEnsemble}


def model_from_arrays(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ArrayModel:
    """Rebuild a saved :class:`MLPModel` or :class:`TreeEnsemble` from its meta (``kind``) and arrays.

    Raises:
        ValueError: On an unknown kind or inconsistent arrays.
    """
    kind = meta.get("kind")
    if kind not in _MODEL_KINDS:
        raise ValueError(f"Unknown predictor kind {kind!r}; known: {sorted(_MODEL_KINDS)}.")
    return _MODEL_KINDS[kind].from_arrays(meta, arrays)


@dataclass(frozen=True)
class GBTSettings:
    """Settings of the gradient-boosted trees (scikit-learn ``HistGradientBoosting*``, one model per output).

    Attributes:
        max_iter: Boosting rounds at most (early stopping on 10 % of the rows usually ends sooner).
        learning_rate: Shrinkage.
        max_depth: Depth of every tree.
        min_samples_leaf: Fewest rows in a leaf.
        l2: L2 regularization of the leaf values.
    """

    max_iter: int = 200
    learning_rate: float = 0.1
    max_depth: int = 2
    min_samples_leaf: int = 20
    l2: float = 1.0


@dataclass(frozen=True)
class MLPSettings:
    """Settings of the MLP (scikit-learn ``MLPClassifier`` / ``MLPRegressor``, L-BFGS, all outputs jointly).

    Attributes:
        hidden: Hidden layer widths.
        alpha: L2 penalty (scikit-learn's ``alpha``).
        max_iter: L-BFGS iterations (a regularizer too).
    """

    hidden: tuple[int, ...] = (32,)
    alpha: float = 100.0
    max_iter: int = 100


def fit_gbt(features: np.ndarray, targets: np.ndarray, *, task: str, settings: GBTSettings, seed: int = 0) -> TreeEnsemble:
    """Gradient-boosted trees per output column, exported to a :class:`TreeEnsemble`.

    Args:
        features: ``(n, D)`` standardized features.
        targets: ``(n, K)``: soft scores in [0, 1] (``task="classification"``: outputs are logits,
            fractional scores weigh a positive and a negative copy of the row) or real values
            (``task="regression"``: outputs are the predicted values).
        task: ``"classification"`` or ``"regression"``.
        settings: Tree settings.
        seed: Seed of the early-stopping split.

    Returns:
        The fitted ensemble; a column with a single class is a constant (its clipped log-odds).
    """
    from threadpoolctl import threadpool_limits

    n, k = targets.shape
    params = {"max_iter": settings.max_iter, "learning_rate": settings.learning_rate, "max_depth": settings.max_depth,
              "max_leaf_nodes": None, "min_samples_leaf": settings.min_samples_leaf, "l2_regularization": settings.l2,
              "early_stopping": True, "validation_fraction": 0.1, "n_iter_no_change": 10, "scoring": "loss", "random_state": seed}
    edges = [_bin_edges(features[:, f]) for f in range(features.shape[1])]
    binned = bin_features(features, edges)
    parts: list[tuple[float, list[np.ndarray]]] = []
    # One OpenMP thread: on these sizes the trees gain little from threads, and on a busy machine
    # spinning OpenMP workers made a fit 30x slower (measured: 53 s against 1.6 s).
    with threadpool_limits(limits=1, user_api="openmp"):
        for j in range(k):
            parts.append(_fit_gbt_column(binned, targets[:, j].astype(np.float64), task=task, params=params))
    return _ensemble_from_nodes(parts, edges)


def _bin_edges(column: np.ndarray, max_bins: int = 255) -> np.ndarray:
    """Upper edges of at most ``max_bins`` quantile bins of one feature (unweighted, the fitting rows)."""
    return np.unique(np.quantile(column, np.linspace(0.0, 1.0, max_bins + 1)[1:-1]))


def bin_features(features: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Bin index of every value, as floats: bin ``b`` holds ``edges[b − 1] < x <= edges[b]``.

    The trees are grown on these indices, not on the raw features: scikit-learn then needs no
    binning of its own (with sample weights, its weighted quantiles were 100x slower), and a split
    ``bin <= b + 0.5`` is the raw split ``x <= edges[b]``.
    """
    return np.column_stack([np.searchsorted(e, features[:, f], side="left") for f, e in enumerate(edges)]).astype(np.float64)


def _fit_gbt_column(features: np.ndarray, y: np.ndarray, *, task: str, params: dict[str, Any]) -> tuple[float, list[np.ndarray]]:
    """``(baseline, tree node arrays)`` of one output column."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    n = y.shape[0]
    if task == "regression":
        if np.ptp(y) == 0 or n < 20:
            return float(y.mean()), []
        model = HistGradientBoostingRegressor(**params).fit(features, y)
    else:
        positive = y.sum()
        if positive <= _EPS or positive >= n - _EPS or n < 20:
            mean = float(np.clip(y.mean(), _EPS, 1 - _EPS))
            return float(np.log(mean / (1 - mean))), []
        x2 = np.vstack([features, features])
        y2 = np.concatenate([np.ones(n), np.zeros(n)])
        w2 = np.concatenate([y, 1.0 - y])
        keep = w2 > 0
        model = HistGradientBoostingClassifier(**params).fit(x2[keep], y2[keep], sample_weight=w2[keep])
    return float(np.asarray(model._baseline_prediction).ravel()[0]), [p[0].nodes for p in model._predictors]


def _ensemble_from_nodes(parts: list[tuple[float, list[np.ndarray]]], edges: list[np.ndarray]) -> TreeEnsemble:
    """Concatenate scikit-learn ``TreePredictor.nodes`` arrays (per output: baseline and trees).

    The trees split bin indices (:func:`bin_features`); their thresholds are mapped back onto the
    raw features through the bin ``edges``.
    """
    feature, threshold, left, right, value, roots, output = [], [], [], [], [], [], []
    offset = 0
    for column, (_, trees) in enumerate(parts):
        for nodes in trees:
            if (nodes["is_categorical"] != 0).any():
                raise ValueError("Categorical tree splits are not supported.")
            m = nodes.shape[0]
            local = np.arange(m)
            leaf = nodes["is_leaf"].astype(bool)
            feature_idx = np.where(leaf, 0, nodes["feature_idx"]).astype(np.int32)
            raw = np.array([_raw_threshold(edges[f], t) for f, t in zip(feature_idx.tolist(), nodes["num_threshold"].tolist(), strict=True)])
            feature.append(feature_idx)
            threshold.append(np.where(leaf, 0.0, raw).astype(np.float64))
            left.append((np.where(leaf, local, nodes["left"]) + offset).astype(np.int32))
            right.append((np.where(leaf, local, nodes["right"]) + offset).astype(np.int32))
            value.append(np.where(leaf, nodes["value"], 0.0).astype(np.float64))
            roots.append(offset)
            output.append(column)
            offset += m

    def cat(arrays: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype=dtype)

    return TreeEnsemble(feature=cat(feature, np.int32), threshold=cat(threshold, np.float64), left=cat(left, np.int32),
                        right=cat(right, np.int32), value=cat(value, np.float64), roots=np.asarray(roots, dtype=np.int32),
                        output=np.asarray(output, dtype=np.int32), baseline=np.array([b for b, _ in parts], dtype=np.float64),
                        n_features=len(edges))


def _raw_threshold(edges: np.ndarray, bin_threshold: float) -> float:
    """Raw-feature threshold of a split ``bin <= bin_threshold`` (``x <= edges[floor(bin_threshold)]``)."""
    if edges.size == 0 or not np.isfinite(bin_threshold):
        return np.inf if bin_threshold >= 0 else -np.inf
    b = int(np.floor(bin_threshold))
    if b < 0:
        return -np.inf
    return float(edges[b]) if b < edges.size else np.inf


def fit_mlp(features: np.ndarray, targets: np.ndarray, *, task: str, settings: MLPSettings, seed: int = 0) -> MLPModel:
    """One MLP for all output columns jointly, exported to an :class:`MLPModel`.

    Args:
        features: ``(n, D)`` standardized features.
        targets: ``(n, K)``: soft scores in [0, 1] (``task="classification"``: a multi-label
            network with sigmoid outputs, fitted on :func:`soft_label_rows`, so fractional scores
            keep their exact cross-entropy) or real values (``task="regression"``, standardized per
            column for the fit and mapped back into the last layer).
        task: ``"classification"`` or ``"regression"``.
        settings: Network settings.
        seed: Seed of the initial weights.

    Returns:
        The fitted network; its output is the logit (classification) or the value (regression).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from threadpoolctl import threadpool_limits

    params = {"hidden_layer_sizes": tuple(settings.hidden), "alpha": settings.alpha, "solver": "lbfgs", "max_iter": settings.max_iter,
              "random_state": seed}
    # One BLAS thread: on a busy machine spinning OpenBLAS workers made a fit 8x slower (measured: 142 s against 17 s).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is a deliberate limit
        if task == "regression":
            mean = targets.mean(axis=0)
            scale = targets.std(axis=0)
            scale = np.where(scale > 1e-12, scale, 1.0)
            model = MLPRegressor(**params).fit(features, (targets - mean) / scale)
            coefs = [np.asarray(w, dtype=np.float64) for w in model.coefs_]
            intercepts = [np.asarray(b, dtype=np.float64).reshape(-1) for b in model.intercepts_]
            coefs[-1] = coefs[-1] * scale
            intercepts[-1] = intercepts[-1] * scale + mean
        else:
            rows, labels, weights = soft_label_rows(targets)
            model = MLPClassifier(**params).fit(features[rows], labels.astype(np.int64), sample_weight=weights)
            coefs = [np.asarray(w, dtype=np.float64) for w in model.coefs_]
            intercepts = [np.asarray(b, dtype=np.float64).reshape(-1) for b in model.intercepts_]
    return MLPModel(coefs=tuple(coefs), intercepts=tuple(intercepts), activation=str(model.activation))
