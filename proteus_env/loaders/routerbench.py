"""RouterBench (Hu et al., 2024) in its wide schema, from CSV, pickle or parquet.

Schema (one row per prompt): ``prompt`` (the string form of a Python list of turns), ``eval_name``
(the task), optionally ``sample_id``; for every model a score column named by the model and a
``<model>|total_cost`` column (USD per query); ``<model>|model_response`` and other columns are
ignored. Models are the columns that have a ``|total_cost`` partner.

Published pickles are only unpickled when their sha256 equals a pinned release (see
:mod:`proteus_env.loaders.sources`) or with ``trust_pickle=True``; the first load writes a parquet
copy (without the model responses) to ``<cache_dir>/routerbench/`` and later loads read that copy,
never the pickle again.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from proteus_env import paths
from proteus_env.benchmark import Benchmark
from proteus_env.loaders import sources
from proteus_env.loaders.assemble import build_benchmark
from proteus_env.loaders.table import BenchmarkTable
from proteus_env.loaders.text import TURN_SEPARATOR, PromptFormatError, estimate_tokens_many, prompt_turns
from proteus_env.splits import make_splits

RouterBenchVariant = Literal["0shot", "5shot"]
VARIANTS: tuple[str, ...] = ("0shot", "5shot")
COST_SUFFIX = "|total_cost"
RESPONSE_SUFFIX = "|model_response"
REQUIRED_COLUMNS: tuple[str, ...] = ("prompt", "eval_name")
MISSING_POLICIES: tuple[str, ...] = ("raise", "drop")
_FORMATS = {".csv": "csv", ".pkl": "pickle", ".pickle": "pickle", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class _WideData:
    """The validated content of a wide file; missing score/cost cells are NaN."""

    models: tuple[str, ...]
    sample_id: np.ndarray
    task: np.ndarray
    turns: list[list[str]]
    scores: np.ndarray
    costs: np.ndarray


# ---------------------------------------------------------------------- public API
def load_routerbench(
    data_path: str | os.PathLike[str] | None = None,
    *,
    split_seed: int = 0,
    encoder: str = "tfidf-svd",
    encoder_kwargs: dict[str, Any] | None = None,
    drop_tasks: Sequence[str] = (),
    trust_pickle: bool = False,
    variant: RouterBenchVariant = "0shot",
    cache_dir: str | os.PathLike[str] | None = None,
    missing: str = "raise",
) -> Benchmark:
    """Load RouterBench as a :class:`~proteus_env.benchmark.Benchmark`.

    Args:
        data_path: A CSV, pickle or parquet file in the wide schema; by default the file is
            looked up in ``$PROTEUS_DATA_DIR``, the user folder, then the hub (see
            :mod:`proteus_env.loaders.sources`).
        split_seed: Seed of the 70/15/15 task-stratified, prompt-disjoint split (duplicate
            prompt texts share a split).
        encoder: Prompt encoder name; fitted on the train split only.
        encoder_kwargs: Encoder settings (``tfidf-svd``: ``dim``, ``seed``, ...).
        drop_tasks: Task-name prefixes to drop, e.g. ``("mmlu",)`` or ``("test-match",)``.
        trust_pickle: Unpickle a pickle whose sha256 matches no pinned release (pickles can run
            code: only for files you trust).
        variant: ``"0shot"`` or ``"5shot"``: which release to look up when ``data_path`` is None.
        cache_dir: Root of the safe parquet copies and embedding caches (default
            ``$PROTEUS_HOME/cache``).
        missing: ``"raise"`` (default) on rows with a missing score or cost cell, or ``"drop"``
            them (the count is kept in ``metadata["n_dropped_missing"]``). The published 5-shot
            file has such rows.

    Returns:
        A benchmark named ``"routerbench"`` with prompts, tasks, estimated prompt tokens and splits.

    Raises:
        FileNotFoundError: When no file is found or downloadable; says which file to put where.
        ValueError: On a malformed file (naming the file, column, row and value), a refused
            pickle, a checksum mismatch, or a ``drop_tasks`` prefix that matches nothing.
    """
    table = load_routerbench_table(data_path, drop_tasks=drop_tasks, trust_pickle=trust_pickle, variant=variant,
                                   cache_dir=cache_dir, missing=missing)
    splits = make_splits(table.task, seed=int(split_seed), groups=table.prompts)
    empty = [name for name, index in splits.items() if index.size == 0]
    if empty:
        raise ValueError(f"RouterBench file {table.metadata['source']}: {table.n_queries} prompts are too few for a "
                         f"train/val/test split (split(s) {empty} would be empty).")
    return build_benchmark(table, splits=splits, encoder=encoder, encoder_kwargs=encoder_kwargs, cache_dir=cache_dir,
                           metadata={"split_seed": int(split_seed), "splits": "70/15/15 stratified by task, prompt-disjoint"})


def load_routerbench_table(
    data_path: str | os.PathLike[str] | None = None,
    *,
    drop_tasks: Sequence[str] = (),
    trust_pickle: bool = False,
    variant: RouterBenchVariant = "0shot",
    cache_dir: str | os.PathLike[str] | None = None,
    missing: str = "raise",
) -> BenchmarkTable:
    """Locate, read and validate a RouterBench file, without embeddings or splits.

    Arguments and errors as :func:`load_routerbench`.
    """
    variant = check_variant(variant)
    if missing not in MISSING_POLICIES:
        raise ValueError(f"`missing` must be one of {list(MISSING_POLICIES)}, got {missing!r}.")
    path = locate_routerbench(data_path, variant=variant, cache_dir=cache_dir)
    return read_routerbench(path, trust_pickle=trust_pickle, cache_dir=cache_dir, missing=missing, drop_tasks=drop_tasks,
                            variant=variant if data_path is None else None)


def locate_routerbench(data_path: str | os.PathLike[str] | None, *, variant: str = "0shot",
                       cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Find the RouterBench file: ``data_path``, ``$PROTEUS_DATA_DIR``, the user folder, the hub.

    Raises:
        FileNotFoundError: If nothing is found; the message says which file to put where.
    """
    if data_path is not None:
        path = Path(data_path).expanduser()
        if not path.is_file():
            raise sources.DataNotFoundError(f"RouterBench data_path {path} is not a file"
                                            f"{' (it is a directory)' if path.is_dir() else ' (it does not exist)'}.")
        return path
    pin = sources.ROUTERBENCH_FILES[variant]
    stem = Path(pin.filename).stem
    names = [f"{stem}{ext}" for ext in (".pkl", ".parquet", ".csv")]
    env_dir = paths.env_data_dir()
    if env_dir is not None:
        found = sources.first_existing([env_dir / "routerbench" / n for n in names] + [env_dir / n for n in names])
        if found is not None:
            return found
    if pin.sha256:
        safe_copy = _safe_copy_path(pin.sha256, cache_dir)
        if safe_copy.is_file():
            return safe_copy
    user_dir = paths.user_data_dir() / "routerbench"
    found = sources.first_existing(user_dir / n for n in names)
    if found is not None:
        return found
    downloaded, reason = sources.hub_fallback([pin], user_dir)
    if downloaded:
        return downloaded[0]
    env_note = f"$PROTEUS_DATA_DIR ({env_dir}) holds none of {names}" if env_dir else "$PROTEUS_DATA_DIR is not set"
    raise sources.DataNotFoundError(
        f"RouterBench ({variant}) data not found. Put {pin.filename} (sha256 {pin.sha256}, from {pin.url}) at "
        f"{user_dir / pin.filename}, or in $PROTEUS_DATA_DIR/routerbench/, or pass data_path=<a CSV, pickle or parquet "
        f"file in the RouterBench wide schema>. Looked in: {env_note}; {user_dir}. Automatic download: {reason}."
    )


def read_routerbench(
    path: str | os.PathLike[str],
    *,
    trust_pickle: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    missing: str = "raise",
    drop_tasks: Sequence[str] = (),
    variant: str | None = None,
) -> BenchmarkTable:
    """Read one wide-schema file (CSV, pickle or parquet) into a validated :class:`BenchmarkTable`.

    ``metadata["variant"]`` is the pinned release the file's sha256 matches, else ``variant``
    (the release the file was looked up for; ``None`` for a file the user named).

    Raises:
        ValueError: On an unsupported suffix, an empty, truncated or malformed file, a refused
            pickle, missing cells with ``missing="raise"``, or a ``drop_tasks`` prefix matching nothing.
    """
    path = Path(path)
    fmt = _format_of(path)
    if path.stat().st_size == 0:
        raise ValueError(f"RouterBench file {path} is empty (0 bytes).")
    sha = sources.sha256_file(path)
    pinned = {f.sha256: name for name, f in sources.ROUTERBENCH_FILES.items() if f.sha256}
    metadata: dict[str, Any] = {"source": str(path), "format": fmt, "sha256": sha,
                                "variant": pinned.get(sha, variant), "pinned_release": sha in pinned}
    if fmt == "pickle":
        wide, safe_copy, cache_hit = _read_pickle_safely(path, sha, pinned, trust_pickle=trust_pickle, cache_dir=cache_dir)
        metadata.update({"safe_copy": str(safe_copy) if safe_copy else None, "safe_copy_hit": cache_hit})
    else:
        wide = coerce_wide_frame(_read_frame(path, fmt), str(path))
    return _to_table(wide, str(path), metadata, missing=missing, drop_tasks=drop_tasks)


def coerce_wide_frame(frame: pd.DataFrame, source: str) -> _WideData:
    """Validate a wide-schema DataFrame and extract its arrays (missing cells stay NaN).

    Raises:
        ValueError: Naming ``source``, the column, the row and the value of the first problem.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"RouterBench file {source} holds a {type(frame).__name__}, expected a pandas DataFrame.")
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    absent = [c for c in REQUIRED_COLUMNS if c not in columns]
    if absent:
        raise ValueError(f"RouterBench file {source} is missing the required column(s) {absent}; "
                         f"columns found: {columns[:12]}{' ...' if len(columns) > 12 else ''}.")
    models = tuple(c[: -len(COST_SUFFIX)] for c in columns if c.endswith(COST_SUFFIX))
    if not models:
        raise ValueError(f"RouterBench file {source} has no '<model>{COST_SUFFIX}' columns, so no model columns can be "
                         f"identified; columns found: {columns[:12]}.")
    orphans = [m for m in models if m not in columns]
    if orphans:
        raise ValueError(f"RouterBench file {source}: column '{orphans[0]}{COST_SUFFIX}' has no score column '{orphans[0]}' "
                         f"({len(orphans)} such model(s): {orphans[:5]}).")
    if len(models) < 2:
        raise ValueError(f"RouterBench file {source} has only {len(models)} model ({list(models)}); routing needs at least 2.")
    if len(frame) == 0:
        raise ValueError(f"RouterBench file {source} has no rows.")
    sample_id = (frame["sample_id"] if "sample_id" in columns else pd.Series(np.arange(len(frame)))).astype(str).to_numpy(object)
    scores = np.column_stack([_numeric(frame[m], source, m, sample_id, low=0.0, high=1.0) for m in models])
    costs = np.column_stack([_numeric(frame[m + COST_SUFFIX], source, m + COST_SUFFIX, sample_id, low=0.0, high=np.inf)
                             for m in models])
    task = frame["eval_name"]
    bad_task = task.isna().to_numpy() | (task.astype(str).str.strip() == "").to_numpy()
    if bad_task.any():
        row = int(np.flatnonzero(bad_task)[0])
        raise ValueError(f"RouterBench file {source}: column 'eval_name' is empty at row {row} (sample_id {sample_id[row]!r}).")
    turns = []
    for row, value in enumerate(frame["prompt"].tolist()):
        try:
            turns.append(prompt_turns(value))
        except PromptFormatError as exc:
            raise ValueError(f"RouterBench file {source}: column 'prompt' at row {row} (sample_id {sample_id[row]!r}) {exc}: "
                             f"{str(value)[:80]!r}") from None
    return _WideData(models, sample_id, task.astype(str).to_numpy(object), turns, scores, costs)


# ---------------------------------------------------------------------- reading
def check_variant(variant: str) -> str:
    """Return the canonical spelling of a RouterBench variant (case-insensitive), or raise ``ValueError``."""
    matches = [v for v in VARIANTS if v.lower() == str(variant).lower()]
    if not matches:
        raise ValueError(f"Unknown RouterBench variant {variant!r}; expected one of {list(VARIANTS)}.")
    return matches[0]


def _format_of(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"RouterBench file {path}: unsupported file type {path.suffix!r}; expected one of {sorted(_FORMATS)}.")
    return fmt


def _read_frame(path: Path, fmt: str) -> pd.DataFrame:
    """Read a CSV or parquet file, turning reader failures into a ``ValueError`` naming the file."""
    try:
        if fmt == "csv":
            return pd.read_csv(path, low_memory=False)
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"RouterBench file {path} is empty (no header, no rows).") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        message = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ValueError(f"RouterBench file {path} cannot be read as {fmt} (truncated or corrupt?): {message}") from None
    except Exception as exc:  # pyarrow's ArrowInvalid and friends
        raise ValueError(f"RouterBench file {path} cannot be read as {fmt} (truncated or corrupt?): "
                         f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _read_pickle(path: Path) -> Any:
    """Unpickle ``path`` (callers check its sha256 or the user's trust first)."""
    try:
        return pd.read_pickle(path)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"RouterBench file {path} cannot be unpickled (truncated or corrupt?): "
                         f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _safe_copy_path(sha: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    return paths.cache_root(cache_dir) / "routerbench" / f"routerbench-{sha[:16]}.parquet"


def _read_pickle_safely(path: Path, sha: str, pinned: dict[str, str], *, trust_pickle: bool,
                        cache_dir: str | os.PathLike[str] | None) -> tuple[_WideData, Path | None, bool]:
    """Read a pickle through its safe parquet copy; unpickle only pinned or trusted files."""
    safe_copy = _safe_copy_path(sha, cache_dir)
    if safe_copy.is_file():
        return coerce_wide_frame(_read_frame(safe_copy, "parquet"), f"{safe_copy} (safe copy of {path})"), safe_copy, True
    if sha not in pinned and not trust_pickle:
        known = {name: value for value, name in pinned.items()}
        raise ValueError(
            f"Refusing to unpickle RouterBench file {path}: its sha256 {sha} matches no pinned release ({known}). "
            f"A pickle can run arbitrary code when loaded. Pass trust_pickle=True if you trust where it came from, "
            f"or convert it to parquet or CSV yourself."
        )
    wide = coerce_wide_frame(_read_pickle(path), str(path))
    written = _write_safe_copy(wide, safe_copy)
    return wide, written, False


def _write_safe_copy(wide: _WideData, target: Path) -> Path | None:
    """Write the validated content as a wide-schema parquet file (no responses); warn on failure."""
    frame = pd.DataFrame({"sample_id": wide.sample_id, "prompt": [repr(t) for t in wide.turns], "eval_name": wide.task})
    for k, model in enumerate(wide.models):
        frame[model] = wide.scores[:, k]
        frame[model + COST_SUFFIX] = wide.costs[:, k]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:
        warnings.warn(f"Could not write the safe parquet copy {target}: {exc}; the pickle will be read again next time.",
                      RuntimeWarning, stacklevel=4)
        return None
    return target


def _numeric(column: pd.Series, source: str, name: str, sample_id: np.ndarray, *, low: float, high: float) -> np.ndarray:
    """Coerce one score or cost column to float64; NaN stays (missing), anything else must be valid."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    original_missing = column.isna().to_numpy()
    unparsable = np.isnan(values) & ~original_missing
    if unparsable.any():
        row = int(np.flatnonzero(unparsable)[0])
        raise ValueError(f"RouterBench file {source}: column {name!r} at row {row} (sample_id {sample_id[row]!r}) holds "
                         f"{column.iloc[row]!r}, which is not a number ({int(unparsable.sum())} such cells).")
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(values) & (~np.isfinite(values) | (values < low) | (values > high))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        kind = "score" if high == 1.0 else "cost (USD)"
        raise ValueError(f"RouterBench file {source}: column {name!r} at row {row} (sample_id {sample_id[row]!r}) holds "
                         f"{float(values[row])!r}; a {kind} must be finite and in [{low}, {high}] ({int(bad.sum())} such cells).")
    return values


def _to_table(wide: _WideData, source: str, metadata: dict[str, Any], *, missing: str,
              drop_tasks: Sequence[str]) -> BenchmarkTable:
    """Apply the missing-cell policy and task drops, flatten prompts, estimate tokens."""
    holes = np.isnan(wide.scores) | np.isnan(wide.costs)
    incomplete = holes.any(axis=1)
    if incomplete.any() and missing == "raise":
        row, col = (int(i) for i in np.argwhere(holes)[0])
        column = wide.models[col] if np.isnan(wide.scores[row, col]) else wide.models[col] + COST_SUFFIX
        raise ValueError(f"RouterBench file {source}: {int(holes.sum())} missing score/cost cells in "
                         f"{int(incomplete.sum())} rows "
                         f"(first: column {column!r} at row {row}, sample_id {wide.sample_id[row]!r}). "
                         f"Pass missing='drop' to drop those rows.")
    prefixes = (drop_tasks,) if isinstance(drop_tasks, str) else tuple(str(p) for p in drop_tasks)
    tasks = wide.task.astype(str).astype(np.str_)
    dropped_task = np.zeros(tasks.shape[0], dtype=bool)
    for prefix in prefixes:
        hit = np.char.startswith(tasks, prefix)
        if not hit.any():
            raise ValueError(f"RouterBench file {source}: drop_tasks prefix {prefix!r} matches no eval_name "
                             f"(some eval_names: {sorted(set(tasks.tolist()))[:8]}).")
        dropped_task |= hit
    keep = ~incomplete & ~dropped_task
    if not keep.any():
        raise ValueError(f"RouterBench file {source}: no rows left after dropping tasks {list(prefixes)} "
                         f"and rows with missing cells.")
    rows = np.flatnonzero(keep)
    prompts = np.array([TURN_SEPARATOR.join(wide.turns[i]) for i in rows.tolist()], dtype=object)
    metadata = {**metadata, "n_rows_file": int(wide.scores.shape[0]), "n_dropped_missing": int(incomplete.sum()),
                "drop_tasks": list(prefixes), "n_dropped_tasks": int((dropped_task & ~incomplete).sum()),
                "n_multi_turn": int(sum(len(wide.turns[i]) > 1 for i in rows.tolist())),
                "prompt_tokens": "estimated: words + punctuation marks of the flattened prompt"}
    return BenchmarkTable(
        name="routerbench",
        models=wide.models,
        task=wide.task[rows],
        prompts=prompts,
        scores=wide.scores[rows],
        costs=wide.costs[rows],
        prompt_tokens=estimate_tokens_many(prompts.tolist()),
        splits=None,
        metadata=metadata,
    )
