"""Seed lists on the command line of the benchmark scripts: ``10-29``, ``0 1 2`` or ``0-4,7``."""

from __future__ import annotations


def parse_seeds(items: list[str]) -> list[int]:
    """``["10-29"]`` or ``["0", "1", "5-7"]`` -> the seeds, in order.

    Raises:
        ValueError: Naming the part that is not a seed or a range of seeds.
    """
    seeds: list[int] = []
    for item in items:
        for part in str(item).split(","):
            low, _, high = part.partition("-")
            try:
                seeds.extend(range(int(low), int(high or low) + 1))
            except ValueError:
                raise ValueError(f"--seeds: {part!r} is not a seed or a range like 10-29.") from None
    return seeds
