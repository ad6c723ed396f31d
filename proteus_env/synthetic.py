"""A built-in, RouterBench-like synthetic benchmark, generated from a seed with no files.

The generator imitates RouterBench (Hu et al., 2024), 0-shot variant:

* the 11 RouterBench models, with their published full-data mean score and mean USD per query
  (``ROUTERBENCH_MODELS``; source: ``withmartian/routerbench``, as summarized in the project's
  shared data README);
* task families in RouterBench's proportions (``ROUTERBENCH_TASKS``); GSM8K and MT-Bench scores are
  fractional in steps of 0.25 (a Binomial(4, p) / 4 draw), the rest are 0/1;
* a latent per-query difficulty ``delta`` shared by all models and a per-(model, task) skill, so
  that the models' errors are correlated as on the real data (hard queries are hard for everyone);
  an idiosyncratic per-(query, model) term keeps correctness only partly predictable;
* per-query cost = per-model price x (prompt tokens + the model's verbosity x answer tokens), with
  prompt and answer lengths log-normal per task, so prompt length explains most, not all, cost;
* embeddings ``z`` that carry the task (a per-task centroid) and the difficulty (one direction)
  only partly, under isotropic noise, so a linear predictor reaches an AUC near the 0.7 measured
  on real RouterBench prompts, not 1.

The model offsets (to hit the published mean scores) and the prices (to hit the published mean
costs) are solved from the generator's own distribution (a fixed reference draw, independent of
``seed``), not fitted to the sample being generated, so the calibration test can fail.

``tests/proteus_env/test_synthetic.py`` holds the acceptance figures of the default draw (seed 0,
36,497 prompts); ``benchmarks/synthetic_calibration.py`` prints them against the published ones.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from proteus_env._validation import check_int
from proteus_env.benchmark import Benchmark
from proteus_env.splits import make_splits

#: Published RouterBench 0-shot full-data (36,497 prompts) mean score and mean USD per query.
ROUTERBENCH_MODELS: dict[str, tuple[float, float]] = {
    "WizardLM/WizardLM-13B-V1.2": (0.4311, 0.000073),
    "claude-instant-v1": (0.5984, 0.000233),
    "claude-v1": (0.6301, 0.002145),
    "claude-v2": (0.6358, 0.002419),
    "gpt-3.5-turbo-1106": (0.6193, 0.000243),
    "gpt-4-1106-preview": (0.7814, 0.003293),
    "meta/code-llama-instruct-34b-chat": (0.2022, 0.000172),
    "meta/llama-2-70b-chat": (0.3287, 0.000203),
    "mistralai/mistral-7b-chat": (0.3061, 0.000046),
    "mistralai/mixtral-8x7b-chat": (0.5471, 0.000135),
    "zero-one-ai/Yi-34B-Chat": (0.6475, 0.000186),
}


@dataclass(frozen=True)
class TaskFamily:
    """One RouterBench task family of the generator."""

    count: int  # prompts in the 36,497-prompt RouterBench
    fractional: bool  # scores in steps of 0.25
    difficulty: float  # shift of the latent difficulty (higher: harder for every model)
    prompt_tokens: float  # median prompt length
    answer_tokens: float  # median answer length


#: RouterBench task families and counts (MT-Bench and RAG share the 1,799 remaining prompts).
ROUTERBENCH_TASKS: dict[str, TaskFamily] = {
    "mmlu": TaskFamily(14_042, False, 0.0, 110.0, 12.0),
    "hellaswag": TaskFamily(10_042, False, -0.3, 160.0, 8.0),
    "grade-school-math": TaskFamily(7_450, True, 0.5, 95.0, 160.0),
    "arc-challenge": TaskFamily(1_470, False, -0.2, 75.0, 10.0),
    "winogrande": TaskFamily(1_267, False, 0.3, 45.0, 6.0),
    "mbpp": TaskFamily(427, False, 0.6, 120.0, 180.0),
    "rag": TaskFamily(1_719, False, 0.2, 450.0, 60.0),
    "mt-bench": TaskFamily(80, True, 0.4, 70.0, 300.0),
}

#: Number of RouterBench prompts, the default size.
ROUTERBENCH_SIZE = sum(t.count for t in ROUTERBENCH_TASKS.values())

# World constants of the generator (fixed across seeds: the seed draws queries, not a new world).
_WORLD_SEED = 20_240_301
_DIFFICULTY_LOADING = 2.1  # kappa: how strongly the shared difficulty drives every model's logit
_SKILL_SD = 0.6  # spread of per-(model, task) skill
_IDIOSYNCRATIC_SD = 1.0  # unpredictable per-(query, model) logit noise
_LENGTH_SD = 0.45  # log-sd of prompt length within a task
_ANSWER_SD = 0.5  # log-sd of answer length within a task
_VERBOSITY_SD = 0.3  # log-sd of a model's answer length on one query around the task median
_EMBED_TASK_SCALE = 0.9  # norm scale of the task centroids in z
_EMBED_DIFFICULTY_SCALE = 0.8  # loading of the difficulty on its direction in z
_EMBED_LENGTH_SCALE = 0.3  # loading of the (standardized) log prompt length in z
_REFERENCE_SIZE = 40_000  # reference draw used to solve offsets and prices


@dataclass(frozen=True)
class _World:
    """The seed-independent parameters of the generator."""

    models: tuple[str, ...]
    tasks: tuple[str, ...]
    task_probs: np.ndarray  # (T,)
    skill: np.ndarray  # (K, T)
    verbosity: np.ndarray  # (K,) answer-length multiplier of each model
    centroids: np.ndarray  # (T, d)
    difficulty_direction: np.ndarray  # (d,)
    length_direction: np.ndarray  # (d,)


@functools.lru_cache(maxsize=8)
def _world(embedding_dim: int) -> _World:
    rng = np.random.default_rng(_WORLD_SEED)
    models = tuple(ROUTERBENCH_MODELS)
    tasks = tuple(ROUTERBENCH_TASKS)
    counts = np.array([ROUTERBENCH_TASKS[t].count for t in tasks], dtype=np.float64)
    skill = rng.normal(0.0, _SKILL_SD, size=(len(models), len(tasks)))
    skill -= skill.mean(axis=1, keepdims=True)
    verbosity = np.exp(rng.normal(0.0, 0.35, size=len(models)))
    n_tasks = len(tasks)
    if embedding_dim < n_tasks + 2:
        raise ValueError(f"`embedding_dim` must be at least {n_tasks + 2} for the synthetic benchmark, got {embedding_dim}.")
    basis = np.linalg.qr(rng.normal(size=(embedding_dim, embedding_dim)))[0]
    centroids = basis[:, :n_tasks].T * _EMBED_TASK_SCALE  # orthogonal task directions
    return _World(
        models=models,
        tasks=tasks,
        task_probs=counts / counts.sum(),
        skill=skill,
        verbosity=verbosity,
        centroids=centroids,
        difficulty_direction=basis[:, n_tasks],
        length_direction=basis[:, n_tasks + 1],
    )


def _draw_latents(rng: np.random.Generator, world: _World, n: int) -> dict[str, np.ndarray]:
    """Draw the per-query latents: task, difficulty, lengths and idiosyncratic noise."""
    task_idx = rng.choice(len(world.tasks), size=n, p=world.task_probs)
    shift = np.array([ROUTERBENCH_TASKS[t].difficulty for t in world.tasks])[task_idx]
    difficulty = rng.standard_normal(n) + shift
    prompt_median = np.array([ROUTERBENCH_TASKS[t].prompt_tokens for t in world.tasks])[task_idx]
    answer_median = np.array([ROUTERBENCH_TASKS[t].answer_tokens for t in world.tasks])[task_idx]
    log_prompt_z = rng.standard_normal(n)
    prompt_tokens = np.maximum(1, np.round(prompt_median * np.exp(_LENGTH_SD * log_prompt_z))).astype(np.int64)
    answer_tokens = answer_median * np.exp(_ANSWER_SD * rng.standard_normal(n))
    noise = rng.standard_normal((n, len(world.models))) * _IDIOSYNCRATIC_SD
    return {
        "task_idx": task_idx,
        "difficulty": difficulty,
        "log_prompt_z": log_prompt_z,
        "prompt_tokens": prompt_tokens,
        "answer_tokens": answer_tokens,
        "noise": noise,
    }


def _logits(world: _World, latents: dict[str, np.ndarray], offsets: np.ndarray) -> np.ndarray:
    """Per-(query, model) logit of a correct answer."""
    skill = world.skill[:, latents["task_idx"]].T  # (n, K)
    return offsets[None, :] + skill - _DIFFICULTY_LOADING * latents["difficulty"][:, None] + latents["noise"]


def _token_cost_units(world: _World, latents: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Per-(query, model) billable tokens: prompt plus this model's answer length."""
    spread = np.exp(_VERBOSITY_SD * rng.standard_normal((latents["prompt_tokens"].size, len(world.models))))
    answers = latents["answer_tokens"][:, None] * world.verbosity[None, :] * spread
    return latents["prompt_tokens"][:, None] + answers


@functools.lru_cache(maxsize=8)
def _calibration(embedding_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Solve model offsets and per-token prices on a fixed reference draw.

    Returns:
        ``(offsets, price_per_token)``, each ``(K,)``: offsets make the expected score of each model
        equal its published mean; prices make its expected USD per query equal the published mean.
    """
    world = _world(embedding_dim)
    rng = np.random.default_rng(_WORLD_SEED + 1)
    latents = _draw_latents(rng, world, _REFERENCE_SIZE)
    targets = np.array([ROUTERBENCH_MODELS[m][0] for m in world.models])
    offsets = np.zeros(len(world.models))
    for _ in range(50):  # Newton on each model's offset: mean(sigmoid(logit)) = target
        p = _sigmoid(_logits(world, latents, offsets))
        gap = p.mean(axis=0) - targets
        if np.abs(gap).max() < 1e-7:
            break
        offsets -= gap / (p * (1 - p)).mean(axis=0)
    units = _token_cost_units(world, latents, rng).mean(axis=0)
    prices = np.array([ROUTERBENCH_MODELS[m][1] for m in world.models]) / units
    return offsets, prices


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_synthetic_benchmark(
    n_queries: int = ROUTERBENCH_SIZE,
    *,
    seed: int = 0,
    split_seed: int | None = None,
    embedding_dim: int = 32,
) -> Benchmark:
    """Generate the RouterBench-like synthetic benchmark.

    Args:
        n_queries: Number of prompts (default 36,497, RouterBench's size).
        seed: Seed of the queries and their outcomes; the same seed gives the same benchmark.
        split_seed: Seed of the 70/15/15 task-stratified split (default: ``seed``).
        embedding_dim: Width of the query features (at least the number of tasks + 2).

    Returns:
        A validated :class:`~proteus_env.benchmark.Benchmark` named ``"synthetic"``.

    Raises:
        ValueError: If ``n_queries`` is below 30 or ``embedding_dim`` too small.
    """
    n_queries = check_int(n_queries, "n_queries", minimum=30)
    world = _world(embedding_dim)
    offsets, prices = _calibration(embedding_dim)
    rng = np.random.default_rng(np.random.SeedSequence([_WORLD_SEED, int(seed)]))
    latents = _draw_latents(rng, world, n_queries)
    probs = _sigmoid(_logits(world, latents, offsets))
    fractional = np.array([ROUTERBENCH_TASKS[t].fractional for t in world.tasks])[latents["task_idx"]]
    draws = rng.binomial(4, probs) / 4.0
    binary = (rng.random(probs.shape) < probs).astype(np.float64)
    scores = np.where(fractional[:, None], draws, binary).astype(np.float32)
    costs = _token_cost_units(world, latents, rng) * prices[None, :]

    noise = rng.standard_normal((n_queries, embedding_dim)).astype(np.float32)
    embeddings = (
        noise
        + world.centroids[latents["task_idx"]].astype(np.float32)
        + np.outer(_EMBED_DIFFICULTY_SCALE * latents["difficulty"], world.difficulty_direction).astype(np.float32)
        + np.outer(_EMBED_LENGTH_SCALE * latents["log_prompt_z"], world.length_direction).astype(np.float32)
    )
    task = np.array(world.tasks, dtype=object)[latents["task_idx"]]
    splits = make_splits(task, seed=seed if split_seed is None else split_seed)
    return Benchmark(
        name="synthetic",
        models=world.models,
        task=task,
        scores=scores,
        costs=costs,
        embeddings=embeddings,
        prompt_tokens=latents["prompt_tokens"],
        splits=splits,
        prompts=None,
        metadata={"generator": "proteus-synthetic-routerbench/1", "seed": int(seed), "n_queries": n_queries,
                  "split_seed": int(seed if split_seed is None else split_seed), "embedding_dim": embedding_dim},
    )
