"""Real-benchmark loaders: RouterBench and SPROUT.

``proteus_env.loading`` registers :func:`load_routerbench` and :func:`load_sprout` as the
``"routerbench"`` and ``"sprout"`` benchmarks, which the ``Proteus-RouterBench-v0`` and
``Proteus-SPROUT-v0`` environments load.

Modules: :mod:`.sources` (where files come from, pins, checksums, downloads; the folders
themselves are in :mod:`proteus_env.paths`), :mod:`.routerbench`,
:mod:`.sprout`, :mod:`.text` (prompt flattening, token estimates), :mod:`.table` (the parsed
table and its summary) and :mod:`.assemble` (table + encoder + splits -> ``Benchmark``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from proteus_env import paths
from proteus_env.loaders import routerbench, sources, sprout
from proteus_env.loaders.routerbench import load_routerbench, load_routerbench_table, read_routerbench
from proteus_env.loaders.sources import DataNotFoundError
from proteus_env.loaders.sprout import load_price_table, load_sprout, load_sprout_table, read_sprout
from proteus_env.loaders.table import BenchmarkTable, summarize_outcomes

#: Loader name -> default variant.
DEFAULT_VARIANTS: dict[str, str] = {"routerbench": "0shot", "sprout": "SPROUT"}


def load_table(name: str, data_path: str | os.PathLike[str] | None = None, *, variant: str | None = None,
               **kwargs: Any) -> BenchmarkTable:
    """Read a real benchmark's file(s) without computing embeddings or splits (fast, for summaries).

    Args:
        name: ``"routerbench"`` or ``"sprout"``.
        data_path: As for the loader.
        variant: As for the loader (default: its default).
        **kwargs: Further loader arguments (``drop_tasks``, ``trust_pickle``, ``prices``, ``missing``, ``models``,
            ``exclude_models``, ...).

    Raises:
        ValueError: For an unknown name.
    """
    key = str(name).lower()
    if key == "routerbench":
        return load_routerbench_table(data_path, variant=variant or DEFAULT_VARIANTS[key], **kwargs)
    if key == "sprout":
        kwargs.pop("trust_pickle", None)
        return load_sprout_table(data_path, variant=variant or DEFAULT_VARIANTS[key], **kwargs)
    raise ValueError(f"No file loader for benchmark {name!r}; expected one of {sorted(DEFAULT_VARIANTS)}.")


def download(name: str, *, variant: str | None = None) -> list[Path]:
    """Fetch a benchmark's pinned files from the Hugging Face hub into ``$PROTEUS_HOME/data``.

    Raises:
        ImportError: If ``huggingface_hub`` is not installed.
        ValueError: For an unknown name or variant, or a checksum mismatch.
    """
    if not sources.hub_available():
        raise ImportError("Downloading needs huggingface_hub: pip install 'proteus-routing-gym[hub]'.")
    key = str(name).lower()
    if key == "routerbench":
        chosen = routerbench.check_variant(variant or DEFAULT_VARIANTS[key])
        return [sources.fetch_from_hub(sources.ROUTERBENCH_FILES[chosen], paths.user_data_dir() / "routerbench")]
    if key == "sprout":
        chosen = sprout.check_variant(variant or DEFAULT_VARIANTS[key])
        target = paths.user_data_dir() / "sprout" / chosen
        return [sources.fetch_from_hub(f, target) for f in sources.SPROUT_FILES[chosen].values()]
    raise ValueError(f"Nothing to download for benchmark {name!r}; expected one of {sorted(DEFAULT_VARIANTS)}.")


__all__ = [
    "BenchmarkTable",
    "DataNotFoundError",
    "download",
    "load_price_table",
    "load_routerbench",
    "load_routerbench_table",
    "load_sprout",
    "load_sprout_table",
    "load_table",
    "read_routerbench",
    "read_sprout",
    "summarize_outcomes",
]
