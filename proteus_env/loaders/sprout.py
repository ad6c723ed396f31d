"""SPROUT (Somerstep et al., 2025, "CARROT") from its official parquet splits.

Each split file (``data/train-00000-of-00001.parquet``, ``validation``, ``test``) has meta columns
(``key``, ``dataset``, ``dataset_level``, ``dataset_idx``, ``prompt``, ``golden_answer``) and one
struct column per model with at least ``score`` (in [0, 1]), ``num_input_tokens`` and
``num_output_tokens``. Model columns are recognized by their struct type, so the 13-model
``SPROUT`` and the 14-model ``SPROUT-o3mini`` load alike.

Cost is not stored: ``cost = num_input_tokens x input price + num_output_tokens x output price``
with the price table shipped in ``proteus_env/data/sprout_prices.json`` (USD per 1M tokens),
which ``prices=`` overrides entry by entry. ``prompt_tokens`` is the median over models of
``num_input_tokens`` (counted by each model's own tokenizer). The task is the ``dataset`` column.
The official splits are kept (``validation`` is ``val``); a prompt that appears in two splits is
an error unless ``drop_cross_split_duplicates=True``. ``models=[...]`` / ``exclude_models=[...]``
choose the model columns read; an excluded model's columns are neither checked nor priced.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from proteus_env import paths
from proteus_env.benchmark import SPLIT_NAMES, Benchmark, model_subset_metadata, parse_model_names, resolve_model_subset
from proteus_env.loaders import sources
from proteus_env.loaders.assemble import build_benchmark
from proteus_env.loaders.table import BenchmarkTable

SproutVariant = Literal["SPROUT", "SPROUT-o3mini"]
VARIANTS: tuple[str, ...] = ("SPROUT", "SPROUT-o3mini")
REQUIRED_META: tuple[str, ...] = ("prompt", "dataset")
STRUCT_FIELDS: tuple[str, ...] = ("score", "num_input_tokens", "num_output_tokens")
PRICE_FILE = Path(__file__).resolve().parents[1] / "data" / "sprout_prices.json"
MISSING_POLICIES: tuple[str, ...] = ("raise", "drop")

PriceTable = dict[str, tuple[float, float]]


@dataclass(frozen=True)
class _Split:
    """One parsed split file; missing cells are NaN."""

    path: Path
    models: tuple[str, ...]
    available: tuple[str, ...]
    prompts: np.ndarray
    task: np.ndarray
    scores: np.ndarray
    tokens_in: np.ndarray
    tokens_out: np.ndarray
    prompt_tokens: np.ndarray


# ---------------------------------------------------------------------- public API
def load_sprout(
    data_path: str | os.PathLike[str] | None = None,
    *,
    split_seed: int = 0,
    encoder: str = "tfidf-svd",
    encoder_kwargs: dict[str, Any] | None = None,
    drop_tasks: Sequence[str] = (),
    trust_pickle: bool = False,
    variant: SproutVariant = "SPROUT",
    cache_dir: str | os.PathLike[str] | None = None,
    prices: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    missing: str = "raise",
    drop_cross_split_duplicates: bool = False,
    models: Sequence[str] | str | None = None,
    exclude_models: Sequence[str] | str | None = None,
) -> Benchmark:
    """Load SPROUT as a :class:`~proteus_env.benchmark.Benchmark` with its official splits.

    Args:
        data_path: A directory holding the three split files (directly or under ``data/``);
            by default they are looked up in ``$PROTEUS_DATA_DIR``, the user folder, then the hub.
        split_seed: Recorded only: SPROUT keeps its official splits.
        encoder: Prompt encoder name; fitted on the official train split only.
        encoder_kwargs: Encoder settings.
        drop_tasks: ``dataset`` prefixes to drop.
        trust_pickle: Unused (SPROUT is parquet); accepted so that every loader takes it.
        variant: ``"SPROUT"`` (13 models) or ``"SPROUT-o3mini"`` (14 models).
        cache_dir: Root of the embedding cache (default ``$PROTEUS_HOME/cache``).
        prices: Price overrides: a mapping ``model -> {"input": x, "output": y}`` (or ``[x, y]``),
            USD per 1M tokens, or the path of a JSON file of that shape; entries replace the
            shipped ones.
        missing: ``"raise"`` on rows with a missing (null or NaN) score or token count, or ``"drop"``.
        drop_cross_split_duplicates: Drop validation/test rows whose prompt is in an earlier split
            instead of raising.
        models: Read only these model columns (``None``: every model).
        exclude_models: Do not read these model columns.

    Returns:
        A benchmark named ``"sprout"``.

    Raises:
        FileNotFoundError: When the files are not found or downloadable; says which file goes where.
        ValueError: On a malformed file (naming the file, column, row and value), an unpriced
            model, different model columns across splits, or prompts shared between splits.
    """
    table = load_sprout_table(data_path, drop_tasks=drop_tasks, variant=variant, prices=prices, missing=missing,
                              drop_cross_split_duplicates=drop_cross_split_duplicates, models=models, exclude_models=exclude_models)
    if table.splits is None:  # read_sprout always sets the official splits
        raise RuntimeError("SPROUT table without official splits.")
    return build_benchmark(table, splits=table.splits, encoder=encoder, encoder_kwargs=encoder_kwargs, cache_dir=cache_dir,
                           metadata={"split_seed": int(split_seed), "splits": "official (train / validation / test)"})


def load_sprout_table(
    data_path: str | os.PathLike[str] | None = None,
    *,
    drop_tasks: Sequence[str] = (),
    variant: SproutVariant = "SPROUT",
    prices: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    missing: str = "raise",
    drop_cross_split_duplicates: bool = False,
    models: Sequence[str] | str | None = None,
    exclude_models: Sequence[str] | str | None = None,
) -> BenchmarkTable:
    """Locate, read and validate the SPROUT split files, without embeddings.

    Arguments and errors as :func:`load_sprout`.
    """
    variant = check_variant(variant)
    if missing not in MISSING_POLICIES:
        raise ValueError(f"`missing` must be one of {list(MISSING_POLICIES)}, got {missing!r}.")
    files = locate_sprout(data_path, variant=variant)
    return read_sprout(files, prices=prices, missing=missing, drop_tasks=drop_tasks,
                       drop_cross_split_duplicates=drop_cross_split_duplicates, variant=variant, models=models,
                       exclude_models=exclude_models)


def load_price_table(prices: Mapping[str, Any] | str | os.PathLike[str] | None = None) -> PriceTable:
    """Return the shipped SPROUT price table (USD per 1M tokens), ``prices`` entries replacing its own.

    Raises:
        ValueError: On a price that is not a finite number >= 0, naming the model and the source.
        FileNotFoundError: If ``prices`` names a JSON file that does not exist.
    """
    table = _parse_prices(json.loads(PRICE_FILE.read_text()), str(PRICE_FILE))
    if prices is None:
        return table
    if isinstance(prices, (str, os.PathLike)):
        path = Path(prices).expanduser()
        try:
            payload = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"SPROUT price file {path} is not valid JSON: {exc}") from None
        return {**table, **_parse_prices(payload, str(path))}
    if not isinstance(prices, Mapping):
        raise ValueError(f"`prices` must be a mapping, a JSON file path or None, got {type(prices).__name__}.")
    return {**table, **_parse_prices(prices, "the prices argument")}


def locate_sprout(data_path: str | os.PathLike[str] | None, *, variant: str = "SPROUT") -> dict[str, Path]:
    """Find the three split files: ``data_path``, ``$PROTEUS_DATA_DIR``, the user folder, the hub.

    Returns:
        ``{"train", "val", "test"}`` -> file path.

    Raises:
        FileNotFoundError: If they are not found; names the missing files and where they go.
    """
    names = {split: Path(name).name for split, name in sources.SPROUT_SPLIT_FILES.items()}
    if data_path is not None:
        base = Path(data_path).expanduser()
        if not base.is_dir():
            raise sources.DataNotFoundError(
                f"SPROUT data_path {base} must be a directory holding {sorted(names.values())} (directly or under data/); "
                f"{'it is a file' if base.is_file() else 'it does not exist'}.")
        found, absent = _split_files(base)
        if absent:
            raise sources.DataNotFoundError(f"SPROUT directory {base} lacks {absent} (looked in {base} and {base / 'data'}).")
        return found
    env_dir = paths.env_data_dir()
    bases = [env_dir / "sprout" / variant, env_dir / variant] if env_dir is not None else []
    user_dir = paths.user_data_dir() / "sprout" / variant
    for base in [*bases, user_dir]:
        found, absent = _split_files(base)
        if not absent:
            return found
    downloaded, reason = sources.hub_fallback(list(sources.SPROUT_FILES[variant].values()), user_dir)
    if downloaded:
        return dict(zip(SPLIT_NAMES, downloaded, strict=True))
    env_note = f"$PROTEUS_DATA_DIR ({env_dir}) has no sprout/{variant}/ with them" if env_dir else "$PROTEUS_DATA_DIR is not set"
    repo = sources.SPROUT_FILES[variant]["train"].repo_id
    raise sources.DataNotFoundError(
        f"SPROUT ({variant}) data not found. Put {sorted(names.values())} (from https://huggingface.co/datasets/{repo}, "
        f"folder data/) in {user_dir / 'data'}, or in $PROTEUS_DATA_DIR/sprout/{variant}/data/, or pass "
        f"data_path=<a directory holding them>. Looked in: {env_note}; {user_dir}. Automatic download: {reason}."
    )


def read_sprout(
    files: Mapping[str, str | os.PathLike[str]],
    *,
    prices: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    missing: str = "raise",
    drop_tasks: Sequence[str] = (),
    drop_cross_split_duplicates: bool = False,
    variant: str | None = None,
    models: Sequence[str] | str | None = None,
    exclude_models: Sequence[str] | str | None = None,
) -> BenchmarkTable:
    """Read and validate the three split files into one :class:`BenchmarkTable` with official splits.

    Raises:
        ValueError: See :func:`load_sprout`.
    """
    subset = {"models": parse_model_names(models, "models"), "exclude_models": parse_model_names(exclude_models, "exclude_models")}
    parts = {split: _read_split(Path(files[split]), **subset) for split in SPLIT_NAMES}
    models = parts["train"].models
    for split in ("val", "test"):
        if set(parts[split].models) != set(models):
            extra = sorted(set(parts[split].models) - set(models))
            lacking = sorted(set(models) - set(parts[split].models))
            raise ValueError(f"SPROUT file {parts[split].path} has other model columns than {parts['train'].path}: "
                             f"extra {extra}, missing {lacking}.")
    price_table = load_price_table(prices)
    unpriced = [m for m in models if m not in price_table]
    if unpriced:
        raise ValueError(f"SPROUT file {parts['train'].path}: no price for model column(s) {unpriced} in {PRICE_FILE.name}; "
                         f"pass prices={{'{unpriced[0]}': {{'input': ..., 'output': ...}}}} (USD per 1M tokens).")
    holes = {split: _incomplete_rows(part) for split, part in parts.items()}
    keep = {split: _keep_rows(part, models, missing=missing, drop_tasks=drop_tasks) for split, part in parts.items()}
    _check_drop_prefixes(parts, drop_tasks)
    n_missing = int(sum(int(h.sum()) for h in holes.values()))
    n_tasks = int(sum(int((~keep[s] & ~holes[s]).sum()) for s in SPLIT_NAMES))
    n_cross = _cross_split_duplicates(parts, keep, drop=drop_cross_split_duplicates)
    blocks = {split: _reorder(parts[split], models, keep[split]) for split in SPLIT_NAMES}
    scores = np.concatenate([b["scores"] for b in blocks.values()])
    tokens_in = np.concatenate([b["tokens_in"] for b in blocks.values()])
    tokens_out = np.concatenate([b["tokens_out"] for b in blocks.values()])
    prompt_tokens = np.concatenate([b["prompt_tokens"] for b in blocks.values()])
    price_in = np.array([price_table[m][0] for m in models]) / 1e6
    price_out = np.array([price_table[m][1] for m in models]) / 1e6
    sizes = [blocks[s]["scores"].shape[0] for s in SPLIT_NAMES]
    if min(sizes) == 0:
        empty = [s for s, n in zip(SPLIT_NAMES, sizes, strict=True) if n == 0]
        raise ValueError(f"SPROUT: split(s) {empty} have no rows left (files {[str(parts[s].path) for s in empty]}).")
    starts = np.cumsum([0, *sizes])
    splits = {s: np.arange(starts[i], starts[i + 1], dtype=np.int64) for i, s in enumerate(SPLIT_NAMES)}
    metadata = {
        "source": str(Path(files["train"]).parent),
        "files": {s: str(parts[s].path) for s in SPLIT_NAMES},
        "sha256": {s: sources.sha256_file(parts[s].path) for s in SPLIT_NAMES},
        "format": "parquet",
        "variant": variant,
        "prices_usd_per_1m": {m: list(price_table[m]) for m in models},
        "n_rows_file": {s: int(parts[s].scores.shape[0]) for s in SPLIT_NAMES},
        "n_dropped_cross_split_duplicates": n_cross,
        "n_dropped_missing": n_missing,
        "n_dropped_tasks": n_tasks,
        "dropped_rows": {"missing": n_missing, "drop_tasks": n_tasks, "cross_split_duplicates": n_cross},
        "drop_tasks": list(_prefixes(drop_tasks)),
        "prompt_tokens": "median over models of num_input_tokens",
    }
    metadata = model_subset_metadata(metadata, parts["train"].available, models)
    return BenchmarkTable(
        name="sprout",
        models=models,
        task=np.concatenate([b["task"] for b in blocks.values()]),
        prompts=np.concatenate([b["prompts"] for b in blocks.values()]),
        scores=scores,
        costs=tokens_in * price_in + tokens_out * price_out,
        prompt_tokens=np.rint(prompt_tokens).astype(np.int64),
        splits=splits,
        metadata=metadata,
    )


# ---------------------------------------------------------------------- helpers
def check_variant(variant: str) -> str:
    """Return the canonical spelling of a SPROUT variant (case-insensitive), or raise ``ValueError``."""
    matches = [v for v in VARIANTS if v.lower() == str(variant).lower()]
    if not matches:
        raise ValueError(f"Unknown SPROUT variant {variant!r}; expected one of {list(VARIANTS)}.")
    return matches[0]


def _prefixes(drop_tasks: Sequence[str]) -> tuple[str, ...]:
    return (drop_tasks,) if isinstance(drop_tasks, str) else tuple(str(p) for p in drop_tasks)


def _split_files(base: Path) -> tuple[dict[str, Path], list[str]]:
    """Return the split files found in ``base`` or ``base/data``, and the names of those not found."""
    found: dict[str, Path] = {}
    absent: list[str] = []
    for split, name in sources.SPROUT_SPLIT_FILES.items():
        filename = Path(name).name
        path = sources.first_existing([base / filename, base / "data" / filename])
        if path is None:
            absent.append(filename)
        else:
            found[split] = path
    return found, absent


def _parse_prices(payload: Any, source: str) -> PriceTable:
    entries = payload.get("prices", payload) if isinstance(payload, Mapping) else payload
    if not isinstance(entries, Mapping):
        raise ValueError(f"SPROUT prices in {source} must map model names to prices, got {type(entries).__name__}.")
    table: PriceTable = {}
    for model, value in entries.items():
        if isinstance(value, Mapping):
            pair = (value.get("input"), value.get("output"))
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            pair = (value[0], value[1])
        else:
            raise ValueError(f"SPROUT price of {model!r} in {source} must be {{'input': x, 'output': y}} or [x, y], "
                             f"got {value!r}.")
        try:
            numbers = tuple(float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"SPROUT price of {model!r} in {source} is not numeric: {value!r}.") from None
        if not all(math.isfinite(v) and v >= 0 for v in numbers):
            raise ValueError(f"SPROUT price of {model!r} in {source} must be finite and >= 0 (USD per 1M tokens), got {value!r}.")
        table[str(model)] = (numbers[0], numbers[1])
    return table


def _read_split(path: Path, *, models: tuple[str, ...] | None = None, exclude_models: tuple[str, ...] | None = None) -> _Split:
    """Read and check one split file (the kept model columns only); NaN marks missing cells."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise ValueError(f"SPROUT file {path} is empty (0 bytes).")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # ArrowInvalid, OSError, ...: truncated or not parquet
        raise ValueError(f"SPROUT file {path} cannot be read as parquet (truncated or corrupt?): "
                         f"{type(exc).__name__}: {str(exc)[:200]}") from None
    names = table.schema.names
    absent = [c for c in REQUIRED_META if c not in names]
    if absent:
        raise ValueError(f"SPROUT file {path} is missing the required column(s) {absent}; columns found: {names[:12]}.")
    if table.num_rows == 0:
        raise ValueError(f"SPROUT file {path} has no rows.")
    names = list(table.schema.names)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"SPROUT file {path} has duplicate column name(s) {dupes}: which copy holds the data is ambiguous; "
                         f"rename or remove one.")
    available = tuple(f.name for f in table.schema if pa.types.is_struct(f.type))
    if models is not None or exclude_models is not None:
        models = resolve_model_subset(available, models, exclude_models, source=f"SPROUT file {path}")
    else:
        models = available
    if len(models) < 2:
        raise ValueError(f"SPROUT file {path} has {len(models)} model (struct) column(s) {list(models)}; "
                         f"routing needs at least 2.")
    for model in models:
        fields = [table.schema.field(model).type.field(i).name for i in range(table.schema.field(model).type.num_fields)]
        lacking = [f for f in STRUCT_FIELDS if f not in fields]
        if lacking:
            raise ValueError(f"SPROUT file {path}: model column {model!r} lacks the struct field(s) {lacking} (has {fields}).")
    prompts = _text_column(table, "prompt", path)
    task = _text_column(table, "dataset", path)
    scores, tokens_in, tokens_out = (np.column_stack([_struct_field(table, m, f, path) for m in models]) for f in STRUCT_FIELDS)
    _check_values(path, models, "score", scores, high=1.0)
    _check_values(path, models, "num_input_tokens", tokens_in, high=np.inf, integral=True)
    _check_values(path, models, "num_output_tokens", tokens_out, high=np.inf, integral=True)
    return _Split(path, models, available, prompts, task, scores, tokens_in, tokens_out,
                  _median_input_tokens(table, available, tokens_in, path))


def _median_input_tokens(table: Any, available: tuple[str, ...], kept_tokens: np.ndarray, path: Path) -> np.ndarray:
    """Per row, the median ``num_input_tokens`` over every model column of the file, excluded ones too.

    A prompt's length does not depend on which models are routed between, so a model subset keeps
    the full file's ``prompt_tokens``. Cells of excluded models that are missing or invalid are
    skipped; a row with none left uses the kept models' median.
    """
    import pyarrow as pa

    columns = [kept_tokens]
    for model in available:
        field = table.schema.field(model).type
        names = [field.field(i).name for i in range(field.num_fields)]
        if "num_input_tokens" not in names:
            continue
        try:
            values = _struct_field(table, model, "num_input_tokens", path)
        except (ValueError, pa.ArrowInvalid):
            continue
        with np.errstate(invalid="ignore"):
            columns.append(np.where(np.isfinite(values) & (values >= 0), values, np.nan)[:, None])
    stacked = np.column_stack(columns[1:]) if len(columns) > 1 else kept_tokens
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows whose cells are all missing: filled below
        median = np.nanmedian(stacked, axis=1)
    fallback = np.median(kept_tokens, axis=1)
    return np.where(np.isnan(median), fallback, median)


def _text_column(table: Any, name: str, path: Path) -> np.ndarray:
    values = table.column(name).to_pylist()
    for row, value in enumerate(values):
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            values[row] = "\n\n".join(value)
        elif not isinstance(value, str) or not value.strip():
            raise ValueError(f"SPROUT file {path}: column {name!r} at row {row} holds {value!r}, expected non-empty text.")
    return np.array(values, dtype=object)


def _struct_field(table: Any, model: str, field: str, path: Path) -> np.ndarray:
    """One field of a struct column as float64, NaN where the struct or the field is null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.column(model).combine_chunks()
    values = pc.struct_field(column, field)  # respects the parent struct's nulls
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type)):
        first = next((v for v in values.to_pylist() if v is not None), None)
        raise ValueError(f"SPROUT file {path}: field {field!r} of model column {model!r} has type {values.type}, "
                         f"expected a number (first value: {first!r}).")
    return values.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _check_values(path: Path, models: tuple[str, ...], field: str, values: np.ndarray, *, high: float,
                  integral: bool = False) -> None:
    present = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        bad = present & (~np.isfinite(values) | (values < 0) | (values > high))
        if integral:
            bad |= present & np.isfinite(values) & (values != np.round(values))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        rule = "a whole number >= 0" if integral else f"in [0, {high}]"
        raise ValueError(f"SPROUT file {path}: model column {models[col]!r} field {field!r} at row {row} holds "
                         f"{float(values[row, col])!r}; it must be {rule} ({int(bad.sum())} such cells).")


def _incomplete_rows(part: _Split) -> np.ndarray:
    """Rows with a missing score or token count in a kept model column."""
    return (np.isnan(part.scores) | np.isnan(part.tokens_in) | np.isnan(part.tokens_out)).any(axis=1)


def _starts_with(values: np.ndarray, prefix: str) -> np.ndarray:
    """Elementwise ``str(value).startswith(prefix)`` without a fixed-width string array."""
    return np.fromiter((str(v).startswith(prefix) for v in values.tolist()), dtype=bool, count=len(values))


def _keep_rows(part: _Split, models: tuple[str, ...], *, missing: str, drop_tasks: Sequence[str]) -> np.ndarray:
    holes = np.isnan(part.scores) | np.isnan(part.tokens_in) | np.isnan(part.tokens_out)
    incomplete = holes.any(axis=1)
    if incomplete.any() and missing == "raise":
        row, col = (int(i) for i in np.argwhere(holes)[0])
        raise ValueError(f"SPROUT file {part.path}: {int(incomplete.sum())} rows have a missing (null or NaN) score or "
                         f"token count (first: model column {part.models[col]!r} at row {row}). "
                         f"Pass missing='drop' to drop them.")
    keep = ~incomplete
    for prefix in _prefixes(drop_tasks):
        keep &= ~_starts_with(part.task, prefix)
    return keep


def _check_drop_prefixes(parts: Mapping[str, _Split], drop_tasks: Sequence[str]) -> None:
    tasks = np.concatenate([p.task for p in parts.values()])
    for prefix in _prefixes(drop_tasks):
        if not _starts_with(tasks, prefix).any():
            raise ValueError(f"SPROUT: drop_tasks prefix {prefix!r} matches no 'dataset' value "
                             f"(values: {[str(t)[:60] for t in sorted(set(map(str, tasks.tolist())))[:8]]}).")


def _cross_split_duplicates(parts: Mapping[str, _Split], keep: dict[str, np.ndarray], *, drop: bool) -> int:
    """Raise (or, with ``drop``, unmark) rows whose prompt already appears in an earlier split."""
    seen: dict[str, str] = {}
    n_dropped = 0
    for split in SPLIT_NAMES:
        part = parts[split]
        rows = np.flatnonzero(keep[split])
        clash = [r for r in rows.tolist() if part.prompts[r] in seen]
        if clash:
            if not drop:
                first = clash[0]
                raise ValueError(
                    f"SPROUT file {part.path}: {len(clash)} prompt(s) also appear in the {seen[part.prompts[first]]!r} split "
                    f"(first at row {first}: {str(part.prompts[first])[:80]!r}); splits must be prompt-disjoint. "
                    f"Pass drop_cross_split_duplicates=True to drop them from the later split.")
            keep[split][clash] = False
            n_dropped += len(clash)
        for r in np.flatnonzero(keep[split]).tolist():
            seen.setdefault(part.prompts[r], split)
    return n_dropped


def _reorder(part: _Split, models: tuple[str, ...], keep: np.ndarray) -> dict[str, np.ndarray]:
    """Return the kept rows of a split, with model columns in ``models`` order."""
    order = [part.models.index(m) for m in models]
    rows = np.flatnonzero(keep)
    return {
        "prompts": part.prompts[rows],
        "task": part.task[rows],
        "scores": part.scores[np.ix_(rows, order)],
        "tokens_in": part.tokens_in[np.ix_(rows, order)],
        "tokens_out": part.tokens_out[np.ix_(rows, order)],
        "prompt_tokens": part.prompt_tokens[rows],
    }
