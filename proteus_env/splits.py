"""Seeded, task-stratified, prompt-disjoint train/validation/test splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.70, 0.15, 0.15)


def make_splits(
    task: Sequence[str] | np.ndarray,
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    groups: Sequence[object] | np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Split rows into train/val/test, stratified by task, keeping each group in one split.

    Within every task the groups (by default one per row; pass the prompt texts to keep duplicate
    prompts together) are shuffled with ``seed`` and cut at the requested fractions. Every task with
    at least three groups appears in all three splits.

    Args:
        task: ``(N,)`` task name per row; the stratification key.
        seed: Seed of the shuffle; the same seed gives the same splits.
        fractions: Train, validation and test fractions; positive, summing to 1.
        groups: Optional ``(N,)`` group key per row (for example the prompt text).

    Returns:
        ``{"train", "val", "test"}`` -> sorted int64 row indices, disjoint and covering.

    Raises:
        ValueError: On fractions that are not positive or do not sum to 1, or mismatched lengths.
    """
    fractions = tuple(float(f) for f in fractions)  # type: ignore[assignment]
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must be three positive numbers summing to 1, got {fractions}.")
    task = np.asarray(task, dtype=object)
    n = task.shape[0]
    if groups is None:
        group_ids = np.arange(n)
    else:
        groups = np.asarray(groups, dtype=object)
        if groups.shape != (n,):
            raise ValueError(f"`groups` has shape {groups.shape}, expected ({n},) like `task`.")
        group_ids = group_codes(groups)
    rng = np.random.default_rng(seed)
    if n == 0:
        return {name: np.empty(0, dtype=np.int64) for name in ("train", "val", "test")}
    # A group belongs to the task of its first row, so duplicates never straddle splits.
    group_list, first_row = np.unique(group_ids, return_index=True)
    task_ids = group_codes(task)
    group_task = task_ids[first_row]
    group_split = np.empty(group_list.size, dtype=np.int64)
    for code in np.unique(group_task).tolist():  # task codes follow the sorted task names
        members = np.flatnonzero(group_task == code)
        members = members[rng.permutation(members.size)]
        cut = _cut_points(members.size, fractions)
        group_split[members[: cut[0]]] = 0
        group_split[members[cut[0] : cut[1]]] = 1
        group_split[members[cut[1] :]] = 2
    lookup = np.empty(int(group_ids.max()) + 1, dtype=np.int64)
    lookup[group_list] = group_split
    assignment = lookup[group_ids]
    return {name: np.flatnonzero(assignment == i).astype(np.int64) for i, name in enumerate(("train", "val", "test"))}


def group_codes(values: Sequence[object] | np.ndarray) -> np.ndarray:
    """Integer codes of ``values`` in the sorted order of their text, by hashing (``pandas.factorize``).

    Equal to ``np.unique(values.astype(str), return_inverse=True)[1]`` but without the fixed-width
    string array that call builds: that array is ``N x`` the longest text, so one 2-million-character
    prompt among 405K rows asked for terabytes. Memory here grows with the number of values only.
    """
    items = np.asarray(values, dtype=object).reshape(-1)
    if not all(type(v) is str for v in items.tolist()):
        items = np.array([str(v) for v in items.tolist()], dtype=object)
    codes, _ = pd.factorize(items, sort=True)
    return codes.astype(np.int64, copy=False)


def _cut_points(size: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    """Cut ``size`` items at the fractions, giving val and test one item each when possible."""
    n_val = int(round(size * fractions[1]))
    n_test = int(round(size * fractions[2]))
    if size >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    n_train = max(size - n_val - n_test, 0)
    return n_train, n_train + n_val
