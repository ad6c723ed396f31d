"""A small SPROUT data set in the published parquet schema, for tests (the rows are made up)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MODELS_13 = [
    "aws-claude-3-5-sonnet-v1", "aws-titan-text-premier-v1", "openai-gpt-4o", "openai-gpt-4o-mini",
    "wxai-granite-3-2b-instruct-8k-max-tokens", "wxai-granite-3-8b-instruct-8k-max-tokens", "wxai-llama-3-1-70b-instruct",
    "wxai-llama-3-1-8b-instruct", "wxai-llama-3-2-1b-instruct", "wxai-llama-3-2-3b-instruct", "wxai-llama-3-3-70b-instruct",
    "wxai-llama-3-405b-instruct", "wxai-mixtral-8x7b-instruct-v01",
]
MODELS_14 = [*MODELS_13, "openai-o3-mini"]
SPLIT_FILES = {"train": "train-00000-of-00001.parquet", "val": "validation-00000-of-00001.parquet",
               "test": "test-00000-of-00001.parquet"}
SIZES = {"train": 90, "val": 24, "test": 24}
DATASETS = ["mmlu-pro", "math", "ragbench", "openhermes"]
WORDS = ("algebra integral proof chemistry biology history poem summary translate python function list sort graph "
         "physics energy market price contract law court patient symptom recipe travel essay").split()


def make_split(split: str, models: list[str], n: int, seed: int) -> dict[str, object]:
    """Columns of one split: meta columns and one struct per model (with an extra `response` field)."""
    rng = np.random.default_rng([seed, len(split)])
    task = [DATASETS[i % len(DATASETS)] for i in range(n)]
    prompts = [f"{split} question {i}: " + " ".join(rng.choice(WORDS, size=8 + i % 5)) for i in range(n)]
    columns: dict[str, object] = {
        "key": [f"{split}-{i}" for i in range(n)],
        "dataset": task,
        "dataset_level": ["easy" if i % 2 else "hard" for i in range(n)],
        "dataset_idx": list(range(n)),
        "prompt": prompts,
        "golden_answer": ["42"] * n,
    }
    for k, model in enumerate(models):
        skill = (k + 1) / (len(models) + 1)
        columns[model] = [
            {"score": float(rng.random() < skill), "num_input_tokens": int(20 + 3 * i + k),
             "num_output_tokens": int(rng.integers(1, 400)), "response": f"answer {i}"}
            for i in range(n)
        ]
    return columns


def write_sprout(root: Path, models: list[str], *, seed: int = 0, sizes: dict[str, int] = SIZES,
                 edit: dict[str, object] | None = None) -> Path:
    """Write the three split files under ``root/data``; ``edit`` maps split -> function(columns)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, filename in SPLIT_FILES.items():
        columns = make_split(split, models, sizes[split], seed)
        if edit and split in edit:
            edit[split](columns)
        pq.write_table(pa.table(columns), root / "data" / filename)
    return root
