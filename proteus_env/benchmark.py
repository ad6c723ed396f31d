"""The benchmark data model: one immutable object per routing data set.

A :class:`Benchmark` holds, for ``N`` queries and ``K`` models, the realized score of every
model on every query, the USD it charged, the query features and the prompt-disjoint splits.
Arrays, not DataFrames, so the environment's hot path indexes them directly.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


@dataclasses.dataclass(frozen=True, eq=False)
class Benchmark:
    """A routing benchmark: realized scores and costs of ``K`` models on ``N`` queries.

    All arrays are validated on construction and made read-only, so one object can be shared by
    every environment of a process without copies.

    Attributes:
        name: Short identifier, for example ``"synthetic"`` or ``"routerbench"``.
        models: The ``K`` model names, in column order.
        task: ``(N,)`` task (eval) name of every query.
        scores: ``(N, K)`` float32 realized quality in [0, 1] (0/1 or fractional).
        costs: ``(N, K)`` float64 USD charged by model ``k`` for query ``n``; finite, >= 0.
        embeddings: ``(N, d)`` float32 query features ``z``.
        prompt_tokens: ``(N,)`` int64 prompt length in tokens (counted or estimated).
        splits: ``{"train", "val", "test"}`` -> int64 index arrays; disjoint and covering.
        prompts: Optional ``(N,)`` prompt texts (the synthetic benchmark has none).
        metadata: Small JSON-able facts about the source (seed, file, checksum, ...).
    """

    name: str
    models: tuple[str, ...]
    task: np.ndarray
    scores: np.ndarray
    costs: np.ndarray
    embeddings: np.ndarray
    prompt_tokens: np.ndarray
    splits: Mapping[str, np.ndarray]
    prompts: np.ndarray | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "models", tuple(str(m) for m in self.models))
        set_(self, "task", _as_array("task", self.task, dtype=object))
        set_(self, "scores", _as_array("scores", self.scores, dtype=np.float32))
        set_(self, "costs", _as_array("costs", self.costs, dtype=np.float64))
        set_(self, "embeddings", _as_array("embeddings", self.embeddings, dtype=np.float32))
        set_(self, "prompt_tokens", _as_array("prompt_tokens", self.prompt_tokens, dtype=np.int64))
        if self.prompts is not None:
            set_(self, "prompts", _as_array("prompts", self.prompts, dtype=object))
        set_(self, "splits", {k: _as_array(f"splits[{k!r}]", v, dtype=np.int64) for k, v in dict(self.splits).items()})
        set_(self, "metadata", dict(self.metadata))
        self._validate()
        for field in ("task", "scores", "costs", "embeddings", "prompt_tokens", "prompts"):
            array = getattr(self, field)
            if array is not None:
                array.flags.writeable = False
        for array in self.splits.values():
            array.flags.writeable = False

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        n_models = len(self.models)
        if n_models < 2:
            raise ValueError(f"Benchmark {self.name!r}: `models` needs at least 2 models, got {n_models}.")
        if len(set(self.models)) != n_models:
            dupes = sorted({m for m in self.models if self.models.count(m) > 1})
            raise ValueError(f"Benchmark {self.name!r}: `models` has duplicate names {dupes}.")
        if self.scores.ndim != 2:
            raise ValueError(f"Benchmark {self.name!r}: `scores` must be 2-D (N, K), got shape {self.scores.shape}.")
        n = self.scores.shape[0]
        if n == 0:
            raise ValueError(f"Benchmark {self.name!r}: `scores` has no rows; a benchmark needs queries.")
        rows = {"scores": n, "costs": self.costs.shape[0] if self.costs.ndim else -1, "task": len(self.task),
                "embeddings": self.embeddings.shape[0] if self.embeddings.ndim else -1, "prompt_tokens": len(self.prompt_tokens)}
        if self.prompts is not None:
            rows["prompts"] = len(self.prompts)
        if len(set(rows.values())) > 1:
            raise ValueError(f"Benchmark {self.name!r}: fields disagree on the number of queries: {rows}.")
        expected = {"scores": (n, n_models), "costs": (n, n_models), "task": (n,), "prompt_tokens": (n,)}
        for field, shape in expected.items():
            got = getattr(self, field).shape
            if got != shape:
                raise ValueError(f"Benchmark {self.name!r}: `{field}` has shape {got}, expected {shape} (N={n}, K={n_models}).")
        if self.embeddings.ndim != 2:
            raise ValueError(f"Benchmark {self.name!r}: `embeddings` has shape {self.embeddings.shape}, expected ({n}, d).")
        _check_range(self.name, "scores", self.scores, low=0.0, high=1.0, models=self.models)
        _check_range(self.name, "costs", self.costs, low=0.0, high=np.inf, models=self.models)
        if not np.isfinite(self.embeddings).all():
            raise ValueError(f"Benchmark {self.name!r}: `embeddings` holds NaN or infinite values.")
        if (self.prompt_tokens < 0).any():
            row = int(np.flatnonzero(self.prompt_tokens < 0)[0])
            raise ValueError(f"Benchmark {self.name!r}: `prompt_tokens` is negative at row {row}.")
        self._validate_splits(n)

    def _validate_splits(self, n: int) -> None:
        names = set(self.splits)
        if names != set(SPLIT_NAMES):
            raise ValueError(f"Benchmark {self.name!r}: `splits` must have exactly the keys {list(SPLIT_NAMES)}, got {sorted(names)}.")
        seen = np.zeros(n, dtype=np.int64)
        for split, index in self.splits.items():
            if index.ndim != 1:
                raise ValueError(f"Benchmark {self.name!r}: `splits[{split!r}]` must be 1-D.")
            if index.size == 0:
                raise ValueError(f"Benchmark {self.name!r}: `splits[{split!r}]` is empty.")
            if index.min() < 0 or index.max() >= n:
                raise ValueError(f"Benchmark {self.name!r}: `splits[{split!r}]` has indices outside [0, {n}).")
            np.add.at(seen, index, 1)
        if (seen > 1).any():
            row = int(np.flatnonzero(seen > 1)[0])
            raise ValueError(f"Benchmark {self.name!r}: `splits` are not disjoint (row {row} is in more than one split).")
        if (seen == 0).any():
            row = int(np.flatnonzero(seen == 0)[0])
            raise ValueError(f"Benchmark {self.name!r}: `splits` do not cover every row (row {row} is in no split).")

    # ------------------------------------------------------------------ convenience
    @property
    def n_queries(self) -> int:
        """Number of queries ``N``."""
        return int(self.scores.shape[0])

    @property
    def n_models(self) -> int:
        """Number of models ``K``."""
        return len(self.models)

    @property
    def embedding_dim(self) -> int:
        """Width ``d`` of the query features."""
        return int(self.embeddings.shape[1])

    def split_index(self, split: str) -> np.ndarray:
        """Return the row indices of ``split``.

        Raises:
            ValueError: If ``split`` is not one of ``train``, ``val``, ``test``.
        """
        if split not in self.splits:
            raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLIT_NAMES)}.")
        return self.splits[split]

    def with_splits(self, splits: Mapping[str, Sequence[int] | np.ndarray], **metadata: Any) -> Benchmark:
        """Return the same data with other splits (arrays are shared, not copied)."""
        return dataclasses.replace(self, splits=dict(splits), metadata={**self.metadata, **metadata})

    def select_models(self, models: Sequence[str] | str | None = None, exclude_models: Sequence[str] | str | None = None) -> Benchmark:
        """Return the benchmark restricted to a subset of its models (rows, costs and splits unchanged).

        The kept models stay in this benchmark's column order whatever order ``models`` lists them
        in, so one subset is one benchmark (one fingerprint). Rows, their order, prompts, tasks,
        embeddings, prompt lengths and splits are shared, not copied; the kept columns of
        ``scores`` and ``costs`` are exactly this benchmark's.

        Args:
            models: The models to keep (names, or one comma-separated text); ``None``: all.
            exclude_models: Models to drop (applied after ``models``); ``None``: none.

        Returns:
            ``self`` when every model is kept, else a new benchmark whose ``metadata`` records
            ``models_available`` (the full list) and ``dropped_models``.

        Raises:
            ValueError: For an unknown or duplicated name (listing the available ones), or fewer
                than 2 models left.
        """
        kept = resolve_model_subset(self.models, models, exclude_models, source=f"Benchmark {self.name!r}")
        if kept == self.models:
            return self
        columns = [self.models.index(m) for m in kept]
        return dataclasses.replace(self, models=kept, scores=self.scores[:, columns], costs=self.costs[:, columns],
                                   metadata=model_subset_metadata(self.metadata, self.models, kept))

    def fingerprint(self) -> str:
        """A short content hash: equal for equal data and splits, used as a cache key."""
        digest = hashlib.sha256()
        digest.update(self.name.encode())
        digest.update("\x1f".join(self.models).encode())
        for array in (self.scores, self.costs, self.embeddings, self.prompt_tokens):
            digest.update(np.ascontiguousarray(array).tobytes())
        for split in SPLIT_NAMES:
            digest.update(np.ascontiguousarray(self.splits[split]).tobytes())
        return digest.hexdigest()[:16]


def parse_model_names(value: Sequence[str] | str | None, argument: str = "models") -> tuple[str, ...] | None:
    """Normalize a model list given as names or as one comma-separated text (``"a,b"``).

    Returns:
        The names as a tuple (surrounding whitespace stripped), or ``None`` for ``None``.

    Raises:
        ValueError: Naming ``argument``, for an empty list, an empty or non-text name, or a
            duplicated name.
    """
    if value is None:
        return None
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, (bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray, set, frozenset)):
        raise ValueError(f"`{argument}` must be a list of model names or one comma-separated text, got {value!r}.")
    else:
        names = list(value)
        bad = [n for n in names if not isinstance(n, str)]
        if bad:
            raise ValueError(f"`{argument}` must hold model names (text), got {bad[0]!r} in {names!r}.")
        names = [n.strip() for n in names]
    if not names or any(not n for n in names):
        raise ValueError(f"`{argument}` must name at least one model and no empty name, got {value!r}.")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"`{argument}` names {dupes} more than once: {names!r}.")
    return tuple(names)


def resolve_model_subset(
    available: Sequence[str],
    models: Sequence[str] | str | None = None,
    exclude_models: Sequence[str] | str | None = None,
    *,
    source: str = "the benchmark",
) -> tuple[str, ...]:
    """The models of ``available`` kept by ``models`` and ``exclude_models``, in ``available``'s order.

    Args:
        available: Every model the data has, in column order.
        models: Models to keep (``None``: all).
        exclude_models: Models to drop (``None``: none).
        source: What ``available`` belongs to, for messages (a file, a benchmark).

    Raises:
        ValueError: For a name that is not in ``available`` (listing them), a duplicated name, or
            fewer than 2 models left.
    """
    available = tuple(available)
    keep = parse_model_names(models, "models")
    drop = parse_model_names(exclude_models, "exclude_models")
    for argument, names in (("models", keep), ("exclude_models", drop)):
        unknown = [n for n in names or () if n not in available]
        if unknown:
            raise ValueError(f"{source}: unknown model(s) {unknown} in `{argument}`; available: {list(available)}.")
    kept = tuple(m for m in available if (keep is None or m in keep) and (drop is None or m not in drop))
    if len(kept) < 2:
        raise ValueError(f"{source}: `models`={list(keep) if keep else None} and `exclude_models`={list(drop) if drop else None} "
                         f"leave {len(kept)} model(s) {list(kept)}; routing needs at least 2 of {list(available)}.")
    return kept


def model_subset_metadata(metadata: Mapping[str, Any], available: Sequence[str], kept: Sequence[str]) -> dict[str, Any]:
    """``metadata`` plus the record of a model subset: ``models_available``, ``dropped_models``, ``n_dropped_models``.

    A subset of a subset keeps the first full list and adds to the dropped names.
    """
    full = list(metadata.get("models_available") or available)
    dropped = [m for m in full if m not in kept]
    return {**dict(metadata), "models_available": full, "dropped_models": dropped, "n_dropped_models": len(dropped)}


def _as_array(field: str, value: Any, *, dtype: Any) -> np.ndarray:
    """Convert ``value`` to an array the benchmark owns, naming the field when that fails.

    A read-only array of the right dtype (for example another benchmark's) is shared, not copied;
    anything else is copied so that later changes by the caller cannot reach the benchmark.
    """
    if isinstance(value, np.ndarray) and value.dtype == np.dtype(dtype) and not value.flags.writeable:
        return value
    try:
        return np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Benchmark field `{field}` cannot be converted to {np.dtype(dtype)}: {exc}") from None


def _check_range(name: str, field: str, array: np.ndarray, *, low: float, high: float, models: Sequence[str]) -> None:
    """Raise a ``ValueError`` naming the first non-finite or out-of-range entry."""
    finite = np.isfinite(array)
    bad = ~finite | (array < low) | (array > high)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"Benchmark {name!r}: `{field}` must be finite and in [{low}, {high}]; "
            f"row {row}, model {models[col]!r} holds {array[row, col]!r} ({int(bad.sum())} bad entries in all)."
        )
