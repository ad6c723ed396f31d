"""RouterBench (Hu et al., 2024) in its wide schema, from CSV, pickle or parquet.

Schema (one row per prompt): ``prompt`` (the string form of a Python list of turns), ``eval_name``
(the task), optionally ``sample_id`` and ``oracle_model_to_route_to``; for every model a score
column named by the model and a ``<model>|total_cost`` column (USD per query);
``<model>|model_response`` columns are not read. Every other column names a model: a bare name is
its score column, ``<model>|...`` one of its other columns. A model with a score column and no
cost column (or the reverse) is an error naming the model and the missing column, unless the
caller leaves that model out by name (``exclude_models=[...]``, or a ``models=[...]`` list without
it); so is a column name that appears twice (pandas would silently rename the second copy).

Published pickles are only unpickled when their sha256 equals a pinned release (see
:mod:`proteus_env.loaders.sources`) or with ``trust_pickle=True``; the first load writes a parquet
copy (without the model responses) to ``<cache_dir>/routerbench/`` and later loads read that copy,
never the pickle again.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pickle
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from proteus_env import paths
from proteus_env.benchmark import Benchmark, model_subset_metadata, parse_model_names, resolve_model_subset
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
#: Columns that are not a model's: the required ones and the optional id and oracle columns.
META_COLUMNS: tuple[str, ...] = (*REQUIRED_COLUMNS, "sample_id", "oracle_model_to_route_to")
# Index columns pandas writes with ``to_csv(index=True)`` (``Unnamed: 0``) or ``reset_index`` (``index``).
_INDEX_COLUMN = re.compile(r"Unnamed: \d+|index|level_\d+")
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
    available: tuple[str, ...] = ()

    def select(self, models: tuple[str, ...], available: tuple[str, ...]) -> _WideData:
        """The same rows with the score and cost columns of ``models`` only."""
        columns = [self.models.index(m) for m in models]
        return dataclasses.replace(self, models=models, scores=self.scores[:, columns], costs=self.costs[:, columns],
                                   available=available)


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
    models: Sequence[str] | str | None = None,
    exclude_models: Sequence[str] | str | None = None,
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
            file has such rows. Only the cells of the kept models count.
        models: Read only these models (their columns must be complete); ``None``: every model.
        exclude_models: Do not read these models; their columns may be missing or incomplete.

    Returns:
        A benchmark named ``"routerbench"`` with prompts, tasks, estimated prompt tokens and splits.

    Raises:
        FileNotFoundError: When no file is found or downloadable; says which file to put where.
        ValueError: On a malformed file (naming the file, column, row and value), a duplicated
            column name, a model with a score column and no cost column (or the reverse), an
            unknown name in ``models`` / ``exclude_models``, a refused pickle, a checksum
            mismatch, or a ``drop_tasks`` prefix that matches nothing.
    """
    table = load_routerbench_table(data_path, drop_tasks=drop_tasks, trust_pickle=trust_pickle, variant=variant,
                                   cache_dir=cache_dir, missing=missing, models=models, exclude_models=exclude_models)
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
    models: Sequence[str] | str | None = None,
    exclude_models: Sequence[str] | str | None = None,
) -> BenchmarkTable:
    """Locate, read and validate a RouterBench file, without embeddings or splits.

    Arguments and errors as :func:`load_routerbench`.
    """
    variant = check_variant(variant)
    if missing not in MISSING_POLICIES:
        raise ValueError(f"`missing` must be one of {list(MISSING_POLICIES)}, got {missing!r}.")
    models, exclude_models = parse_model_names(models, "models"), parse_model_names(exclude_models, "exclude_models")
    path = locate_routerbench(data_path, variant=variant, cache_dir=cache_dir)
    return read_routerbench(path, trust_pickle=trust_pickle, cache_dir=cache_dir, missing=missing, drop_tasks=drop_tasks,
                            variant=variant if data_path is None else None, models=models, exclude_models=exclude_models)


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
    models: Sequence[str] | str | None = None,
    exclude_models: Sequence[str] | str | None = None,
) -> BenchmarkTable:
    """Read one wide-schema file (CSV, pickle or parquet) into a validated :class:`BenchmarkTable`.

    ``metadata["variant"]`` is the pinned release the file's sha256 matches, else ``variant``
    (the release the file was looked up for; ``None`` for a file the user named). Only the
    columns of the kept models (and the prompt, task and id columns) are read from a CSV or
    parquet file; model responses never are.

    Raises:
        ValueError: On an unsupported suffix, an empty, truncated or malformed file, a duplicated
            column name, an incomplete model (see :func:`identify_models`), a refused pickle,
            missing cells with ``missing="raise"``, or a ``drop_tasks`` prefix matching nothing.
    """
    path = Path(path)
    fmt = _format_of(path)
    if path.stat().st_size == 0:
        raise ValueError(f"RouterBench file {path} is empty (0 bytes).")
    sha = sources.sha256_file(path)
    pinned = {f.sha256: name for name, f in sources.ROUTERBENCH_FILES.items() if f.sha256}
    metadata: dict[str, Any] = {"source": str(path), "format": fmt, "sha256": sha,
                                "variant": pinned.get(sha, variant), "pinned_release": sha in pinned}
    subset = {"models": models, "exclude_models": exclude_models}
    if fmt == "pickle":
        wide, safe_copy, cache_hit = _read_pickle_safely(path, sha, pinned, trust_pickle=trust_pickle, cache_dir=cache_dir,
                                                         **subset)
        metadata.update({"safe_copy": str(safe_copy) if safe_copy else None, "safe_copy_hit": cache_hit})
    else:
        header = _csv_header(path) if fmt == "csv" else _parquet_header(path)
        kept, available = identify_models(header, str(path), **subset)
        wanted = {*META_COLUMNS, *kept, *(m + COST_SUFFIX for m in kept)}
        frame = _read_frame(path, fmt, columns=[c for c in header if c in wanted])
        wide = dataclasses.replace(coerce_wide_frame(frame, str(path), models=kept), available=available)
    return _to_table(wide, str(path), metadata, missing=missing, drop_tasks=drop_tasks)


def identify_models(
    columns: Sequence[Any],
    source: str,
    *,
    models: Sequence[str] | str | None = None,
    exclude_models: Sequence[str] | str | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Find the models of a wide-schema header and check the kept ones have both columns.

    Every column that is not one of :data:`META_COLUMNS` (or an index column pandas wrote) names
    a model: a bare name is its score column, ``<model>|total_cost`` its cost column,
    ``<model>|...`` another of its columns. Models are ordered by their cost columns, then the
    others by first appearance.

    Args:
        columns: The header, exactly as in the file.
        source: The file, for messages.
        models: Keep only these models (``None``: all).
        exclude_models: Leave these models out: their columns need not be complete.

    Returns:
        ``(kept, available)``: the kept models, and every model the header names.

    Raises:
        ValueError: Naming ``source``: a column name that appears twice, a missing required
            column, a kept model without its score or its cost column (saying which, and how to
            exclude it), an unknown name in ``models`` / ``exclude_models`` (listing the available
            ones), or fewer than 2 models.
    """
    columns = [str(c) for c in columns]
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(columns):
        if name.strip():  # a nameless column (pandas' unnamed index) is no one's
            seen.setdefault(name, []).append(position)
    dupes = {name: where for name, where in seen.items() if len(where) > 1}
    if dupes:
        listed = ", ".join(f"{name!r} (columns {where})" for name, where in list(dupes.items())[:5])
        raise ValueError(f"RouterBench file {source} has duplicate column name(s): {listed}"
                         f"{f' and {len(dupes) - 5} more' if len(dupes) > 5 else ''}. Which copy holds the data is "
                         f"ambiguous (pandas would read the first and rename the second to '<name>.1'); rename or remove one.")
    absent = [c for c in REQUIRED_COLUMNS if c not in seen]
    if absent:
        raise ValueError(f"RouterBench file {source} is missing the required column(s) {absent}; "
                         f"columns found: {columns[:12]}{' ...' if len(columns) > 12 else ''}.")
    named: dict[str, None] = {}
    for column in columns:
        if column.endswith(COST_SUFFIX):
            named.setdefault(column[: -len(COST_SUFFIX)])
    for column in columns:
        if column in META_COLUMNS or _INDEX_COLUMN.fullmatch(column) or not column.strip():
            continue
        named.setdefault(column.split("|", 1)[0] if "|" in column else column)
    available = tuple(named)
    if not available:
        raise ValueError(f"RouterBench file {source} has no model columns (a score column '<model>' and a cost column "
                         f"'<model>{COST_SUFFIX}' per model); columns found: {columns[:12]}.")
    subset = models is not None or exclude_models is not None
    kept = resolve_model_subset(available, models, exclude_models, source=f"RouterBench file {source}") if subset else available
    problems, incomplete = [], []
    for model in kept:
        score, cost = model in seen, model + COST_SUFFIX in seen
        if score and cost:
            continue
        incomplete.append(model)
        if score:
            problems.append(f"model {model!r} has a score column {model!r} but no cost column '{model}{COST_SUFFIX}'")
        elif cost:
            problems.append(f"model {model!r} has a cost column '{model}{COST_SUFFIX}' but no score column {model!r}")
        else:
            others = [c for c in columns if c.startswith(model + "|")]
            problems.append(f"model {model!r} (columns {others[:3]}) has neither a score column {model!r} nor a cost column "
                            f"'{model}{COST_SUFFIX}'")
    if problems:
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise ValueError(f"RouterBench file {source}: {shown}. Add the missing column(s), or leave the model(s) out by name: "
                         f"exclude_models={incomplete} (CLI: --exclude-models {','.join(incomplete)}). Every column other than "
                         f"{list(META_COLUMNS)} names a model.")
    if len(kept) < 2:
        raise ValueError(f"RouterBench file {source} has only {len(kept)} model ({list(kept)}); routing needs at least 2.")
    return kept, available


def coerce_wide_frame(frame: pd.DataFrame, source: str, *, models: Sequence[str] | str | None = None,
                      exclude_models: Sequence[str] | str | None = None) -> _WideData:
    """Validate a wide-schema DataFrame and extract the arrays of its kept models (missing cells stay NaN).

    Raises:
        ValueError: Naming ``source``, the column, the row and the value of the first problem
            (see :func:`identify_models` for the checks of the header).
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"RouterBench file {source} holds a {type(frame).__name__}, expected a pandas DataFrame.")
    columns = [str(c) for c in frame.columns]
    models, available = identify_models(columns, source, models=models, exclude_models=exclude_models)
    frame = frame.set_axis(columns, axis=1)
    if len(frame) == 0:
        raise ValueError(f"RouterBench file {source} has no rows.")
    sample_id = (frame["sample_id"] if "sample_id" in columns else pd.Series(np.arange(len(frame)))).astype(str).to_numpy(object)
    scores = np.column_stack([_numeric(frame[m], source, m, sample_id, low=0.0, high=1.0) for m in models])
    costs = np.column_stack([_numeric(frame[m + COST_SUFFIX], source, m + COST_SUFFIX, sample_id, low=0.0, high=MAX_QUERY_USD)
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
    return _WideData(models, sample_id, task.astype(str).to_numpy(object), turns, scores, costs, available)


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


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV file exactly as written (pandas renames a duplicate ``x`` to ``x.1``)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle))
    except StopIteration:
        raise ValueError(f"RouterBench file {path} is empty (no header, no rows).") from None
    except (csv.Error, UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"RouterBench file {path} cannot be read as csv: its header is malformed ({exc}).") from None


def _parquet_header(path: Path) -> list[str]:
    """The column names of a parquet file, from its schema (nothing else is read)."""
    import pyarrow.parquet as pq

    try:
        return [str(name) for name in pq.read_schema(path).names if not str(name).startswith("__index_level_")]
    except Exception as exc:  # ArrowInvalid, OSError, ...: truncated or not parquet
        raise ValueError(f"RouterBench file {path} cannot be read as parquet (truncated or corrupt?): "
                         f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _read_frame(path: Path, fmt: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV or parquet file (only ``columns``, if given), turning reader failures into a ``ValueError`` naming the file."""
    try:
        if fmt == "csv":
            return pd.read_csv(path, low_memory=False, usecols=columns)
        return pd.read_parquet(path, columns=columns)
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
                        cache_dir: str | os.PathLike[str] | None, models: Sequence[str] | None = None,
                        exclude_models: Sequence[str] | None = None) -> tuple[_WideData, Path | None, bool]:
    """Read a pickle through its safe parquet copy; unpickle only pinned or trusted files.

    The safe copy holds every model whose score and cost columns are both present, whatever
    subset this load keeps, so that later loads of other subsets can read it too.
    """
    safe_copy = _safe_copy_path(sha, cache_dir)
    if safe_copy.is_file():
        return (coerce_wide_frame(_read_frame(safe_copy, "parquet"), f"{safe_copy} (safe copy of {path})", models=models,
                                  exclude_models=exclude_models), safe_copy, True)
    if sha not in pinned and not trust_pickle:
        known = {name: value for value, name in pinned.items()}
        raise ValueError(
            f"Refusing to unpickle RouterBench file {path}: its sha256 {sha} matches no pinned release ({known}). "
            f"A pickle can run arbitrary code when loaded. Pass trust_pickle=True if you trust where it came from, "
            f"or convert it to parquet or CSV yourself."
        )
    frame = _read_pickle(path)
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"RouterBench file {path} holds a {type(frame).__name__}, expected a pandas DataFrame.")
    columns = [str(c) for c in frame.columns]
    kept, available = identify_models(columns, str(path), models=models, exclude_models=exclude_models)
    complete = tuple(m for m in available if m in columns and m + COST_SUFFIX in columns)
    wide = coerce_wide_frame(frame, str(path), models=complete)
    written = _write_safe_copy(wide, safe_copy)
    return wide.select(kept, available), written, False


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


#: The largest USD cost one query may have: far above any real LLM call (the priciest RouterBench query
#: costs cents), low enough that sums and means over millions of queries stay finite.
MAX_QUERY_USD = 1e6


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
    tasks = wide.task.tolist()
    dropped_task = np.zeros(len(tasks), dtype=bool)
    for prefix in prefixes:
        hit = np.fromiter((str(t).startswith(prefix) for t in tasks), dtype=bool, count=len(tasks))
        if not hit.any():
            raise ValueError(f"RouterBench file {source}: drop_tasks prefix {prefix!r} matches no eval_name "
                             f"(some eval_names: {[t[:60] for t in sorted(set(map(str, tasks)))[:8]]}).")
        dropped_task |= hit
    keep = ~incomplete & ~dropped_task
    if not keep.any():
        raise ValueError(f"RouterBench file {source}: no rows left after dropping tasks {list(prefixes)} "
                         f"and rows with missing cells.")
    rows = np.flatnonzero(keep)
    prompts = np.array([TURN_SEPARATOR.join(wide.turns[i]) for i in rows.tolist()], dtype=object)
    n_missing, n_tasks = int(incomplete.sum()), int((dropped_task & ~incomplete).sum())
    metadata = {**metadata, "n_rows_file": int(wide.scores.shape[0]), "n_dropped_missing": n_missing,
                "drop_tasks": list(prefixes), "n_dropped_tasks": n_tasks,
                "dropped_rows": {"missing": n_missing, "drop_tasks": n_tasks},
                "n_multi_turn": int(sum(len(wide.turns[i]) > 1 for i in rows.tolist())),
                "prompt_tokens": "estimated: words + punctuation marks of the flattened prompt"}
    metadata = model_subset_metadata(metadata, wide.available or wide.models, wide.models)
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
