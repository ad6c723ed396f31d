"""Turn a parsed :class:`BenchmarkTable` into a :class:`~proteus_env.benchmark.Benchmark`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from proteus_env.benchmark import Benchmark
from proteus_env.encoders import encode_texts
from proteus_env.loaders.table import BenchmarkTable


def build_benchmark(
    table: BenchmarkTable,
    *,
    splits: Mapping[str, np.ndarray],
    encoder: str = "tfidf-svd",
    encoder_kwargs: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Benchmark:
    """Embed the table's prompts (encoder fitted on the train split only) and build the benchmark.

    Args:
        table: The parsed file.
        splits: ``{"train", "val", "test"}`` row indices.
        encoder: Encoder registry name (see :mod:`proteus_env.encoders`).
        encoder_kwargs: Encoder settings.
        cache_dir: Cache root for the embeddings.
        metadata: Extra metadata entries.

    Returns:
        A validated, read-only :class:`Benchmark`.
    """
    encoded = encode_texts(
        table.prompts.tolist(),
        encoder=encoder,
        encoder_kwargs=encoder_kwargs,
        train_index=np.asarray(splits["train"]),
        cache_dir=cache_dir,
    )
    meta = {
        **dict(table.metadata),
        **dict(metadata or {}),
        "encoder": encoded.encoder,
        "encoder_settings": encoded.settings,
        "embedding_cache_key": encoded.key[:24],
        "embedding_cache_hit": encoded.cache_hit,
        "embedding_cache_file": str(encoded.path) if encoded.path is not None else None,
    }
    return Benchmark(
        name=table.name,
        models=table.models,
        task=table.task,
        scores=table.scores,
        costs=table.costs,
        embeddings=encoded.embeddings,
        prompt_tokens=table.prompt_tokens,
        splits=dict(splits),
        prompts=table.prompts,
        metadata=meta,
    )
