"""Generators of bad and unusual inputs, and the judge of what each one led to.

Shared by the property-based tests in this folder (a small, fixed, seeded sample) and by
``benchmarks/probes.py`` (the same strategies at a larger count). Every probe is one call of a
public entry point (the env, the vector env, the RouterBench loaders, the router, an artifact, the
``proteus`` CLI as a subprocess) with one generated input, judged as one of :data:`OUTCOMES`:

- ``correct``: the call returned and the result passed its checks (finite numbers, the model list
  and row count it should have, observations inside their spaces, ...);
- ``clear error``: a bad input was refused with an error of a documented type (``ValueError``,
  ``FileNotFoundError``; for the CLI ``proteus <cmd>: error: ...`` on stderr and exit 2) whose
  message names the bad input;
- ``traceback``: an exception of another type, an error that does not name the bad input, a CLI
  traceback or a timeout;
- ``silent wrong result``: a bad input accepted, NaN or inf in the output, a changed model list or
  row count, or a good input refused;
- ``out of memory``: ``MemoryError`` or more memory than the probe's bound (:data:`MEMORY_BOUND`).

Inputs behind a known, still open finding in a file this suite does not fix are listed in
:data:`FINDINGS` and kept out of the healthy strategies; the tests run them as strict xfails and
the benchmark counts them like any other probe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hypothesis import strategies as st

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CSV = REPO_ROOT.parent / "shared" / "data" / "routerbench" / "routerbench_0shot_sample365.csv"
PYTHON = sys.executable

OUTCOMES = ("correct", "clear error", "traceback", "silent wrong result", "out of memory")
#: Extra memory (bytes of the process's data segment) one in-process probe may take beyond what it had.
MEMORY_BOUND = 1 << 30
#: Address-space limit of one CLI subprocess (torch alone maps about 1 GiB).
CLI_MEMORY_BOUND = 6 << 30
#: Seconds one CLI subprocess may take.
CLI_TIMEOUT = 180

VALID, INVALID, EITHER = "valid", "invalid", "either"
CLEAR_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one probe led to."""

    entry: str
    label: str
    outcome: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Correct result or clear error."""
        return self.outcome in ("correct", "clear error")

    def __str__(self) -> str:
        return f"[{self.entry}] {self.outcome}: {self.label} -> {self.detail}"


# ---------------------------------------------------------------------------- memory bound and judging
def _data_segment() -> int:
    with open("/proc/self/status") as handle:
        match = re.search(r"VmData:\s+(\d+) kB", handle.read())
    return int(match.group(1)) * 1024 if match else 0


@contextlib.contextmanager
def memory_bound(extra: int = MEMORY_BOUND) -> Iterator[None]:
    """Cap the process's data segment at its current size plus ``extra`` bytes (``RLIMIT_DATA``).

    An allocation beyond the cap fails with ``MemoryError`` instead of taking the machine down.
    The soft limit is restored afterwards (the hard limit is never touched).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = _data_segment() + int(extra)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _is_oom(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and ("allocate" in text or "out of memory" in text))


def judge(entry: str, label: str, call: Callable[[], Any], *, expect: str, check: Callable[[Any], str | None] | None = None,
          names: tuple[str, ...] = (), also_clear: tuple[type[BaseException], ...] = (), bound: int = MEMORY_BOUND) -> Outcome:
    """Run ``call`` under the memory bound and classify what happened.

    Args:
        entry: The entry point (a row of the table).
        label: The input, for messages.
        call: The probe.
        expect: ``VALID`` (must succeed), ``INVALID`` (must be refused) or ``EITHER``.
        check: Returns why a returned result is wrong, or ``None``.
        names: If given, a clear error's message must contain one of these (case-insensitive).
        also_clear: Further exception types that count as clear errors for this probe.
        bound: Memory bound in bytes.
    """
    try:
        with memory_bound(bound), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except BaseException as exc:  # noqa: BLE001 - classifying every outcome is the point
        if isinstance(exc, KeyboardInterrupt):
            raise
        message = f"{type(exc).__name__}: {str(exc)[:300]}"
        if _is_oom(exc):
            return Outcome(entry, label, "out of memory", message)
        if not isinstance(exc, CLEAR_ERRORS + also_clear):
            return Outcome(entry, label, "traceback", message)
        if not str(exc).strip():
            return Outcome(entry, label, "traceback", f"empty message: {message}")
        if names and not any(n.lower() in str(exc).lower() for n in names):
            return Outcome(entry, label, "traceback", f"error does not name {names}: {message}")
        if expect == VALID:
            return Outcome(entry, label, "silent wrong result", f"a good input was refused: {message}")
        return Outcome(entry, label, "clear error", message)
    if expect == INVALID:
        return Outcome(entry, label, "silent wrong result", f"accepted: {_short(result)}")
    try:
        problem = check(result) if check is not None else None
    except Exception as exc:  # noqa: BLE001
        problem = f"the result could not be checked: {type(exc).__name__}: {exc}"
    if problem:
        return Outcome(entry, label, "silent wrong result", problem)
    return Outcome(entry, label, "correct", _short(result))


def _short(value: Any) -> str:
    return re.sub(r"\s+", " ", repr(value))[:160]


def _nonfinite(values: dict[str, Any]) -> str | None:
    for key, value in values.items():
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if not np.isfinite(array).all():
            return f"{key} is not finite: {_short(value)}"
    return None


def label_of(value: Any) -> str:
    """A short, unambiguous text for a generated value."""
    if isinstance(value, np.ndarray):
        return f"ndarray{value.shape}:{value.dtype}:{_short(value.ravel()[:4].tolist())}"
    return f"{type(value).__name__}:{_short(value)}"


# ---------------------------------------------------------------------------- shared value strategies
ODD_TEXT = ("", " ", "abc", "nan", "inf", "-inf", "1e309", "0.5", " 0.7 ", "none", "null", "0x1", "1/2", "½", "０.５", "\x00", "é" * 3)


def _real_number(value: Any) -> float | None:
    """``value`` as a float if it is a real number (not a bool), else ``None``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return float(value)


def _parses_finite(text: str) -> float | None:
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def scalars() -> st.SearchStrategy[Any]:
    """Scalars a caller may pass where one number is expected: good, bad and odd."""
    return st.one_of(
        st.floats(0, 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0.0, 1.0, -0.0, 1e-300, 1 - 1e-16, 1 + 1e-12, -1e-12, 1e308, -1e308, math.inf, -math.inf, math.nan]),
        st.integers(-(10**20), 10**20),
        st.booleans(),
        st.none(),
        st.sampled_from(ODD_TEXT),
        st.lists(st.floats(0, 1), max_size=3),
        st.floats(0, 1).map(np.float32),
        st.integers(0, 3).map(np.int64),
        st.builds(complex, st.floats(0, 1), st.floats(-1, 1)),
        st.dictionaries(st.sampled_from(["tau", "a"]), st.integers(0, 1), max_size=1),
    )


def unit_expectation(value: Any, low: float = 0.0, high: float = 1.0) -> str:
    """Whether a number meant for ``[low, high]`` is valid: real numbers in range, numeric text may go either way."""
    number = _real_number(value)
    if number is not None:
        return VALID if math.isfinite(number) and low <= number <= high else INVALID
    if isinstance(value, str):
        parsed = _parses_finite(value)
        return EITHER if parsed is not None and low <= parsed <= high else INVALID
    return INVALID


# ---------------------------------------------------------------------------- the environment
ENV_ID = "Proteus-Synthetic-v0"
ENV_BASE = {"benchmark_kwargs": {"n_queries": 2000}, "session_length": 8}


class EnvContext:
    """Environments built once per process (the benchmark and head are cached by the package)."""

    def __init__(self) -> None:
        self._envs: dict[str, Any] = {}

    def make(self, **overrides: Any) -> Any:
        """``gym.make(ENV_ID, benchmark_kwargs={"n_queries": 2000}, session_length=8, **overrides)``."""
        import gymnasium as gym

        import proteus_env  # noqa: F401  (registers the ids)

        return gym.make(ENV_ID, **{**ENV_BASE, **overrides})

    def env(self, kind: str = "mu") -> Any:
        """A shared env: ``mu``, ``model`` or ``gamma`` (μ and γ actions)."""
        if kind not in self._envs:
            kwargs = {"mu": {}, "model": {"action_mode": "model"}, "gamma": {"learn_gamma": True}}[kind]
            self._envs[kind] = self.make(**kwargs)
        return self._envs[kind]


def _check_observation(env: Any, obs: dict[str, np.ndarray]) -> str | None:
    if not env.observation_space.contains(obs):
        return f"observation outside its space: {_short({k: v.tolist() for k, v in obs.items()})}"
    return _nonfinite(obs)


def _check_info(info: dict[str, Any]) -> str | None:
    return _nonfinite({k: v for k, v in info.items() if isinstance(v, (int, float, np.number, np.ndarray)) and not isinstance(v, bool)})


def env_reset_specs() -> st.SearchStrategy[dict[str, Any]]:
    """``reset(seed=..., options=...)`` arguments: τ of every kind, odd seeds, extra keys (options always a dict)."""
    seeds = st.one_of(st.none(), st.integers(0, 2**63), st.integers(-5, -1), st.floats(-1, 3), st.sampled_from(["3", True, 2**70]))
    options = st.one_of(st.none(), st.just({}), st.builds(lambda t: {"tau": t}, scalars()),
                        st.builds(lambda t: {"tau": t, "unused": 1}, st.floats(0, 1)), st.just({"tau": None}))
    return st.fixed_dictionaries({"seed": seeds, "options": options})


def _seed_expectation(seed: Any) -> str:
    if seed is None:
        return VALID
    if isinstance(seed, bool):
        return EITHER  # Gymnasium's seeding takes True as the integer 1
    if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
        return VALID
    return INVALID


def run_env_reset(ctx: EnvContext, spec: dict[str, Any]) -> Outcome:
    """One ``env.reset`` probe."""
    import gymnasium

    env = ctx.env("mu")
    low, high = env.unwrapped.tau_range
    options, seed = spec["options"], spec["seed"]
    tau = (options or {}).get("tau")
    expect_tau = VALID if tau is None else unit_expectation(tau, low, high)
    expect_seed = _seed_expectation(seed)
    expect = INVALID if INVALID in (expect_tau, expect_seed) else (EITHER if EITHER in (expect_tau, expect_seed) else VALID)

    def check(result: Any) -> str | None:
        obs, info = result
        if tau is not None and abs(info["tau"] - float(tau)) > 1e-9:
            return f"asked for τ={tau!r}, got {info['tau']}"
        return _check_observation(env, obs) or _check_info(info)

    return judge("env.reset", f"seed={label_of(seed)} options={_short(options)}", lambda: env.reset(seed=seed, options=options),
                 expect=expect, check=check, also_clear=(gymnasium.error.Error,))


def env_step_specs() -> st.SearchStrategy[dict[str, Any]]:
    """``step(action)`` for μ, model-index and μ+γ envs: arrays of every shape and value, and odd objects."""
    elements = st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True))
    arrays = st.builds(lambda shape, values: np.resize(np.asarray(values, dtype=np.float64), shape),
                       st.sampled_from([(1,), (), (2,), (1, 1), (0,), (3,)]), st.lists(elements, min_size=1, max_size=3))
    actions = st.one_of(arrays, scalars(), st.integers(-3, 14), st.lists(st.integers(0, 12), max_size=2),
                        arrays.map(lambda a: a.astype(np.float32)), st.just(np.array([0.5], dtype=object)))  # text arrays: a finding
    return st.fixed_dictionaries({"kind": st.sampled_from(["mu", "mu", "model", "gamma"]), "action": actions})


def _action_expectation(kind: str, action: Any, n_models: int) -> str:
    if isinstance(action, (bool, np.bool_)):
        return INVALID if kind == "model" else EITHER
    if isinstance(action, (str, np.str_)):
        return INVALID if kind == "model" else (EITHER if unit_expectation(action) != INVALID else INVALID)
    try:
        values = np.asarray(action, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return INVALID
    if isinstance(action, np.ndarray) and action.dtype == object:
        return EITHER if values.size == (2 if kind == "gamma" else 1) and ((values >= 0) & (values <= 1)).all() else INVALID
    if kind == "model":
        if values.size != 1 or not math.isfinite(values[0]) or not float(values[0]).is_integer():
            return INVALID
        return VALID if 0 <= values[0] < n_models else INVALID
    width = 2 if kind == "gamma" else 1
    if values.size != width or not ((values >= 0) & (values <= 1)).all():
        return INVALID
    return VALID if not isinstance(action, (list, complex, dict)) else EITHER


def run_env_step(ctx: EnvContext, spec: dict[str, Any]) -> Outcome:
    """One ``env.step`` probe (after a seeded reset)."""
    env = ctx.env(spec["kind"])
    env.reset(seed=0)
    action = spec["action"]
    expect = _action_expectation(spec["kind"], action, env.unwrapped.benchmark.n_models)

    def check(result: Any) -> str | None:
        obs, reward, terminated, truncated, info = result
        if not math.isfinite(reward):
            return f"reward {reward}"
        if info["model"] not in env.unwrapped.models:
            return f"model {info['model']!r} is not one of the benchmark's"
        return _check_observation(env, obs) or _check_info(info)

    return judge(f"env.step ({spec['kind']})", label_of(action), lambda: env.step(action), expect=expect, check=check,
                 names=("action",))


#: Constructor arguments and the values generated for each.
def _constructor_values() -> dict[str, st.SearchStrategy[Any]]:
    return {
        "session_length": st.one_of(st.integers(-3, 40), st.sampled_from([8.0, 2.5, "8", None, True, 1402, 2000, 2001, 10**5, 10**12])),
        "train_holdout": st.one_of(st.floats(0, 0.5), scalars()),
        "models": st.one_of(st.none(), st.lists(st.sampled_from(["claude-v2", "gpt-4-1106-preview", "mistralai/mistral-7b-chat",
                                                                 "nope"]), max_size=3)),
        "exclude_models": st.one_of(st.none(), st.lists(st.sampled_from(["claude-v2", "gpt-4-1106-preview", "nope"]), max_size=2)),
        "tau_range": st.one_of(st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True)),
                               st.tuples(st.floats(0, 1), st.floats(0, 1)), st.sampled_from([(0.5,), "ab", None, (0.2, 0.4, 0.6)])),
        "lambda_max": scalars(),
        "lambda_init": scalars(),
        "split": st.sampled_from(["train", "val", "test", "dev", "", "TRAIN", None, 0]),
        "split_seed": st.integers(0, 2),  # None, "0", True, 1.5: finding env-split-seed
        "action_mode": st.sampled_from(["mu", "model", "Mu", "", None, 1]),
        "learn_gamma": st.sampled_from([True, False]),
        "include_query": st.sampled_from([True, False]),
        "quality_weight": st.one_of(st.sampled_from(["tau", "one", "zero", "one_minus_tau", "bogus", "", None]), scalars()),
        "cost_weight": st.one_of(st.sampled_from(["tau", "one", "zero", "one_minus_tau", "bogus"]), st.floats(allow_nan=True, allow_infinity=True)),
        "reward_normalization": st.sampled_from(["none", "one_plus_lambda", "None", "", None]),
        "head_config": st.one_of(st.none(), st.builds(lambda g: {"gamma": g}, st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                                                                          st.integers(-10, 10))), st.just({"bogus": 1}),
                                 st.builds(lambda q: {"quality_scale": q}, st.floats(allow_nan=True, allow_infinity=True))),
        "render_mode": st.sampled_from([None, "ansi", "human", "rgb_array", ""]),
        "benchmark_kwargs": st.one_of(st.builds(lambda n: {"n_queries": n}, st.one_of(st.integers(-5, 3000), st.sampled_from([2.5, 2000.0]))),
                                      st.just({"n_queries": 2000, "embedding_dim": 0}), st.just({"n_queries": 2000, "bogus": 1}),
                                      st.just({"n_queries": 2000, "data_path": str(SAMPLE_CSV)})),
    }


def env_constructor_specs() -> st.SearchStrategy[dict[str, Any]]:
    """One or two constructor overrides of ``gym.make("Proteus-Synthetic-v0", benchmark_kwargs={"n_queries": 2000}, ...)``."""
    values = _constructor_values()
    pair = st.sampled_from(sorted(values)).flatmap(lambda key: st.tuples(st.just(key), values[key]))
    return st.lists(pair, min_size=1, max_size=2, unique_by=lambda kv: kv[0]).map(dict)


_WEIGHTS = ("tau", "one", "zero", "one_minus_tau")


def _constructor_expectation(kwargs: dict[str, Any]) -> str:
    verdicts = []
    for key, value in kwargs.items():
        if key == "session_length":
            number = _real_number(value)
            size = (kwargs.get("benchmark_kwargs") or {}).get("n_queries", 2000)
            size = size if isinstance(size, int) and size >= 30 else 2000
            ok = number is not None and math.isfinite(number) and number.is_integer() and number >= 2
            if ok and number > 1402 * size / 2000:  # longer than the train split: refused, or drawn with replacement
                verdicts.append(INVALID if number > size else EITHER)
            else:
                verdicts.append((VALID if isinstance(value, int) else EITHER) if ok else INVALID)
        elif key == "train_holdout":
            number = _real_number(value)
            verdicts.append(VALID if number is not None and 0 <= number < 1 else
                            (EITHER if isinstance(value, str) and 0 <= (_parses_finite(value) or -1) < 1 else INVALID))
        elif key in ("models", "exclude_models"):
            if value is None:
                verdicts.append(VALID)
            elif "nope" in value:
                verdicts.append(INVALID)
            else:
                verdicts.append(EITHER)  # too few models left, or an empty list, may be refused
        elif key == "tau_range":
            if value is None:
                verdicts.append(VALID)
            else:
                try:
                    low, high = (float(v) for v in value)
                    verdicts.append(VALID if 0 <= low <= high <= 1 else INVALID)
                except (TypeError, ValueError):
                    verdicts.append(INVALID)
        elif key == "lambda_max":
            number = _real_number(value)
            floor = _real_number(kwargs.get("lambda_init", 0.0))
            floor = 0.0 if floor is None else floor
            verdicts.append(VALID if number is not None and math.isfinite(number) and number > 0 and number >= floor else
                            (EITHER if isinstance(value, str) and (_parses_finite(value) or 0) > 0 else INVALID))
        elif key == "lambda_init":
            if isinstance(value, list) and len(value) == 1:
                value = value[0]  # one λ per bin: a table of one bin is the same multiplier
            ceiling = _real_number(kwargs.get("lambda_max", 10.0))
            verdicts.append(unit_expectation(value, 0.0, ceiling if ceiling is not None and math.isfinite(ceiling) and ceiling > 0 else 10.0))
        elif key == "split":
            verdicts.append(VALID if value in ("train", "val", "test") else INVALID)
        elif key == "split_seed":
            verdicts.append(VALID if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else INVALID)
        elif key == "action_mode":
            verdicts.append(VALID if value in ("mu", "model") else INVALID)
        elif key in ("learn_gamma", "include_query"):
            verdicts.append(VALID)
        elif key in ("quality_weight", "cost_weight"):
            number = _real_number(value)
            if number is not None:
                verdicts.append(VALID if math.isfinite(number) else INVALID)
            else:
                verdicts.append(VALID if value in _WEIGHTS else INVALID)
        elif key == "reward_normalization":
            verdicts.append(VALID if value in ("none", "one_plus_lambda") else INVALID)
        elif key == "head_config":
            if value is None:
                verdicts.append(VALID)
            elif "gamma" in value:
                gamma = _real_number(value["gamma"])
                verdicts.append(VALID if gamma is not None and 2 <= gamma <= 8 else INVALID)
            elif "quality_scale" in value:
                verdicts.append(VALID if math.isfinite(value["quality_scale"]) and value["quality_scale"] >= 0 else INVALID)
            else:
                verdicts.append(INVALID)
        elif key == "render_mode":
            verdicts.append(VALID if value in (None, "ansi") else INVALID)
        elif key == "benchmark_kwargs":
            n = value.get("n_queries")
            ok = (isinstance(n, (int, float)) and not isinstance(n, bool) and float(n).is_integer() and n >= 30
                  and value.get("embedding_dim", 32) >= 10 and set(value) <= {"n_queries", "embedding_dim"})
            verdicts.append((VALID if isinstance(n, int) else EITHER) if ok else INVALID)
    if kwargs.get("action_mode") == "model" and kwargs.get("learn_gamma"):
        verdicts.append(INVALID)
    if INVALID in verdicts:
        return INVALID
    return EITHER if EITHER in verdicts else VALID


def run_env_constructor(ctx: EnvContext, kwargs: dict[str, Any]) -> Outcome:
    """Build the env with ``kwargs``, then play one whole session with sampled actions."""
    expect = _constructor_expectation(kwargs)

    def call() -> Any:
        env = ctx.make(**kwargs)
        env.action_space.seed(0)
        obs, info = env.reset(seed=0)
        problems = [_check_observation(env, obs)]
        done, steps, info = False, 0, {}
        while not done and steps < 64:
            obs, reward, done, _, info = env.step(env.action_space.sample())
            steps += 1
            problems += [None if math.isfinite(reward) else f"reward {reward}", _check_observation(env, obs), _check_info(info)]
        if env.unwrapped.render_mode == "ansi":
            env.render()
        return [p for p in problems if p], info

    def check(result: Any) -> str | None:
        problems, info = result
        return problems[0] if problems else None

    return judge("env constructor", _short(kwargs), call, expect=expect, check=check)


# ---------------------------------------------------------------------------- the vector env
def vector_specs() -> st.SearchStrategy[dict[str, Any]]:
    """``ProteusVectorEnv(num_envs)``, then one reset and one step with generated arguments."""
    num_envs = st.one_of(st.integers(-2, 6), st.sampled_from([1.5, "2", np.int64(3), 2.0]))
    tau = st.one_of(st.none(), scalars(), st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=4),
                    st.lists(st.floats(0.4, 0.6), min_size=1, max_size=4))
    seeds = st.one_of(st.none(), st.integers(0, 10**6), st.integers(-3, -1), st.lists(st.integers(0, 9), min_size=1, max_size=4))
    action = st.one_of(st.none(), st.builds(lambda shape, v: np.full(shape, v),
                                            st.sampled_from([(0,), (1,), (2,), (3,), (1, 1), (2, 1), (3, 1), (4, 1), (3, 2)]),
                                            st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True))))
    return st.fixed_dictionaries({"num_envs": num_envs, "seed": seeds, "tau": tau, "action": action})


def run_vector(ctx: EnvContext, spec: dict[str, Any]) -> Outcome:
    """One vector-env probe: construct, reset, step."""
    from proteus_env import ProteusVectorEnv

    n = spec["num_envs"]
    n_ok = isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
    expects = [VALID if n_ok else (EITHER if isinstance(n, float) and n.is_integer() and n >= 1 else INVALID)]
    width = int(n) if expects[0] != INVALID else 1
    seed = spec["seed"]
    if isinstance(seed, list):
        expects.append(EITHER)  # a list is entropy for the sessions' one generator
    else:
        expects.append(_seed_expectation(seed))
    tau = spec["tau"]
    low, high = ctx.env("mu").unwrapped.tau_range
    if isinstance(tau, list) and tau and all(isinstance(t, float) for t in tau):
        in_range = all(math.isfinite(t) and low <= t <= high for t in tau)
        expects.append(VALID if in_range and len(tau) in (1, width) else INVALID)
    elif tau is not None:
        expects.append(unit_expectation(tau, low, high))
    action = spec["action"]
    if action is None:
        action_expect = VALID
    else:
        fits = action.shape in ((width, 1), (width,)) and ((action >= 0) & (action <= 1)).all()
        action_expect = (VALID if action.shape == (width, 1) else EITHER) if fits else INVALID
    expects.append(action_expect)
    expect = INVALID if INVALID in expects else (EITHER if EITHER in expects else VALID)
    options = None if tau is None else {"tau": tau}

    def call() -> Any:
        venv = ProteusVectorEnv(n, **ENV_BASE)
        obs, info = venv.reset(seed=seed, options=options)
        act = np.full((venv.num_envs, 1), 0.5) if action is None else action
        obs2, reward, terminated, truncated, info2 = venv.step(act)
        return venv, obs, obs2, reward, info2

    def check(result: Any) -> str | None:
        venv, obs, obs2, reward, info = result
        if not venv.observation_space.contains(obs) or not venv.observation_space.contains(obs2):
            return "observation outside its space"
        return _nonfinite({"reward": reward, **obs2}) or _check_info(info)

    return judge("vector env", _short({k: label_of(v) for k, v in spec.items()}), call, expect=expect, check=check)


# ---------------------------------------------------------------------------- the RouterBench loaders
COST_SUFFIX = "|total_cost"


class LoaderContext:
    """The real RouterBench sample as text cells, and a scratch folder for the mutated copies."""

    def __init__(self, workdir: Path, csv: Path = SAMPLE_CSV) -> None:
        import pandas as pd

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
        self.columns = list(self.frame.columns)
        self.models = [c[: -len(COST_SUFFIX)] for c in self.columns if c.endswith(COST_SUFFIX)]
        self.counter = 0

    def path(self, suffix: str = ".csv") -> Path:
        """A fresh file name in the scratch folder."""
        self.counter += 1
        return self.workdir / f"probe{self.counter}{suffix}"


CELL_VALUES = ("", "nan", "NaN", "abc", "-1", "-0.5", "1e308", "1e309", "inf", "-inf", "2", "0.5", "1", "0", "1e-320", "True",
               " ", "1,5", "0x10", "None")
LOADER_OPS = ("drop_column", "duplicate_column", "rename_column", "set_cell", "set_cells", "drop_rows", "duplicate_rows",
              "empty_file", "truncate", "header_only", "huge_prompt", "empty_column", "missing_drop", "blank_lines")


def loader_specs() -> st.SearchStrategy[dict[str, Any]]:
    """Mutations of the real sample: dropped, duplicated, renamed, non-numeric, NaN, negative, huge and empty cells and columns."""
    kinds = st.sampled_from(["score", "cost", "prompt", "eval_name", "sample_id", "response", "oracle"])
    return st.fixed_dictionaries({
        "op": st.sampled_from(LOADER_OPS),
        "kind": kinds,
        "model": st.integers(0, 10),
        "row": st.integers(0, 364),
        "rows": st.integers(1, 5),
        "value": st.one_of(st.sampled_from(CELL_VALUES), st.floats(allow_nan=True, allow_infinity=True).map(repr)),
        "new_name": st.sampled_from(["{c} ", "{c}.1", "{C}", "{c}|cost", "x{c}", "{c}|total_cost"]),
        "fraction": st.floats(0.0, 0.99),
        "entry": st.sampled_from(["load_routerbench_table", "read_routerbench", "load_routerbench_table", "load_routerbench"]),
    })


def _column(ctx: LoaderContext, kind: str, model: int) -> str:
    name = ctx.models[model % len(ctx.models)]
    return {"score": name, "cost": name + COST_SUFFIX, "response": name + "|model_response", "prompt": "prompt",
            "eval_name": "eval_name", "sample_id": "sample_id", "oracle": "oracle_model_to_route_to"}[kind]


def _cell_verdict(kind: str, text: str) -> tuple[str, bool]:
    """(expectation, whether the cell counts as missing) for one score or cost cell."""
    stripped = text.strip()
    if stripped in ("", "nan", "NaN", "None"):
        return INVALID, True  # a missing cell: refused unless missing="drop"
    try:
        number = float(stripped)
    except ValueError:
        return INVALID, False
    if not math.isfinite(number) or number < 0 or (kind == "score" and number > 1):
        return INVALID, False
    return VALID, False


def loader_case(ctx: LoaderContext, spec: dict[str, Any]) -> tuple[Path, str, dict[str, Any], dict[str, Any]]:
    """Write the mutated CSV; return (path, expectation, loader kwargs, what a correct result must show)."""
    frame = ctx.frame.copy()
    op, kind = spec["op"], spec["kind"]
    column = _column(ctx, kind, spec["model"])
    n_rows, models = len(frame), list(ctx.models)
    expect, kwargs, text = VALID, {}, None
    essential = kind in ("score", "cost", "prompt", "eval_name")
    if op == "drop_column":
        frame = frame.drop(columns=[column])
        expect = INVALID if essential else VALID
    elif op == "duplicate_column":
        frame = frame.join(frame[[column]], rsuffix="__dup")
        frame.columns = [c[: -len("__dup")] if c.endswith("__dup") else c for c in frame.columns]
        expect = INVALID if kind not in ("response", "oracle") else EITHER
    elif op == "rename_column":
        new = spec["new_name"].format(c=column, C=column.upper())
        frame = frame.rename(columns={column: new})
        if new == column:
            expect = VALID
        elif kind in ("prompt", "eval_name", "score", "cost"):
            expect = INVALID
        else:
            expect = EITHER
    elif op in ("set_cell", "set_cells", "missing_drop"):
        rows = [spec["row"]] if op != "set_cells" else list(range(spec["row"], min(n_rows, spec["row"] + spec["rows"])))
        frame.loc[rows, column] = spec["value"]
        if kind in ("score", "cost"):
            expect, missing = _cell_verdict(kind, spec["value"])
            if op == "missing_drop":
                kwargs["missing"] = "drop"
                if missing:
                    expect, n_rows = VALID, n_rows - len(rows)
        elif kind in ("prompt", "eval_name"):
            expect = INVALID if not spec["value"].strip() or spec["value"].strip() in ("nan", "NaN", "None") and kind == "eval_name" else EITHER
        else:
            expect = EITHER if kind == "sample_id" else VALID
    elif op == "drop_rows":
        keep = max(1, int(len(frame) * (1 - spec["fraction"])))
        frame = frame.iloc[:keep]
        n_rows = keep
        if spec["entry"] == "load_routerbench":
            expect = EITHER
    elif op == "duplicate_rows":
        frame = frame._append(frame.iloc[: spec["rows"]], ignore_index=True) if hasattr(frame, "_append") else \
            __import__("pandas").concat([frame, frame.iloc[: spec["rows"]]], ignore_index=True)
        n_rows = len(frame)
    elif op == "empty_file":
        text, expect = "", INVALID
    elif op == "truncate":
        raw = frame.to_csv(index=False)
        text = raw[: int(len(raw) * spec["fraction"])]
        expect = EITHER  # a cut at a row boundary is a shorter, valid file
        n_rows = None
    elif op == "header_only":
        frame, expect = frame.iloc[:0], INVALID
    elif op == "huge_prompt":
        frame.loc[spec["row"], "prompt"] = "x " * 1_000_000  # one 2-million-character prompt
    elif op == "empty_column":
        frame[column] = ""
        expect = INVALID if essential else (VALID if kind in ("response", "oracle") else EITHER)
    elif op == "blank_lines":
        text = frame.to_csv(index=False).replace("\n", "\n\n", 3)
        expect = EITHER
    path = ctx.path()
    if text is None:
        frame.to_csv(path, index=False)
    else:
        path.write_text(text)
    if expect == VALID and spec["entry"] == "load_routerbench" and n_rows is not None and n_rows < 20:
        expect = EITHER  # too few prompts for a split is a clear error
    must = {"models": models, "n_rows": n_rows}
    return path, expect, kwargs, must


def run_loader(ctx: LoaderContext, spec: dict[str, Any]) -> Outcome:
    """One loader probe on a mutated copy of the real sample."""
    from proteus_env.loaders import load_routerbench, load_routerbench_table, read_routerbench

    path, expect, kwargs, must = loader_case(ctx, spec)
    entry = spec["entry"]
    cache = ctx.workdir / "cache"
    if entry == "load_routerbench":
        def call() -> Any:
            return load_routerbench(path, cache_dir=cache, encoder_kwargs={"dim": 8}, **kwargs)
    elif entry == "read_routerbench":
        def call() -> Any:
            return read_routerbench(path, cache_dir=cache, **kwargs)
    else:
        def call() -> Any:
            return load_routerbench_table(path, cache_dir=cache, **kwargs)

    def check(result: Any) -> str | None:
        if list(result.models) != must["models"]:
            return f"model list changed: {list(result.models)} (expected {must['models']})"
        if must["n_rows"] is not None and result.n_queries != must["n_rows"]:
            return f"{result.n_queries} rows, expected {must['n_rows']}"
        arrays = {"scores": result.scores, "costs": result.costs}
        if hasattr(result, "summary"):
            arrays.update({k: v for k, v in result.summary().items() if isinstance(v, float)})
        if hasattr(result, "embeddings"):
            arrays["embeddings"] = result.embeddings
        return _nonfinite(arrays)

    label = f"{entry}: {spec['op']} {spec['kind']}" + (f" = {spec['value']!r}" if "cell" in spec["op"] or spec["op"] == "missing_drop" else "")
    return judge(f"loaders ({entry})", label, call, expect=expect, check=check)


# ---------------------------------------------------------------------------- the router
def tiny_config() -> dict[str, Any]:
    """The packaged training config shrunk to a couple of seconds (as ``tests/conftest.py::tiny_train_config``)."""
    from agents.proteus.config import load_config

    tiny = {"env_kwargs": {"session_length": 16, "benchmark_kwargs": {"n_queries": 3000}},
            "ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "gamma": 0.0, "device": "cpu"},
            "dual": {"n_bins": 3, "max_val_queries": 300}, "checkpoint_every": 0, "calibration_points": 11}
    config = load_config()
    for key, value in tiny.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def train_tiny_router(out_dir: Path) -> Path:
    """Train one tiny router (about two seconds) into ``out_dir``."""
    import torch

    from agents.proteus.train import train

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(config=tiny_config(), out_dir=out_dir, seed=0, timesteps=128, n_envs=2)
    return Path(out_dir)


class RouterContext:
    """A loaded tiny router."""

    def __init__(self, artifact: Path) -> None:
        from agents.proteus.router import ProteusRouter

        self.artifact = Path(artifact)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.router = ProteusRouter.load(artifact)
        self.d = self.router.head.embedding_dim
        self.k = self.router.head.n_models


def router_specs() -> st.SearchStrategy[dict[str, Any]]:
    """``route(queries, tau, prompt_tokens=..., confidence=..., deploy_queries=...)`` with generated arguments."""
    return st.fixed_dictionaries({
        "queries": st.sampled_from(["ok", "one", "nan", "inf", "huge", "big", "wide", "narrow", "empty", "3d", "complex", "text",
                                    "object", "dict", "list", "int", "bool", "scalar", "prompts", "none"]),
        "n": st.integers(1, 6),
        "tokens": st.sampled_from(["ok", "none", "short", "negative", "nan", "huge", "big", "float", "text", "2d", "scalar", "bool", "inf"]),
        "tau": scalars(),
        "confidence": st.one_of(st.none(), scalars()),
        "deploy_queries": st.one_of(st.none(), st.integers(-2, 10**6), st.sampled_from([1.5, "10", True, 10**18])),
        "calibrated": st.sampled_from([True, True, False]),
    })


def _queries(kind: str, n: int, d: int) -> tuple[Any, str]:
    rng = np.random.default_rng(n)
    base = rng.normal(size=(n, d))
    table: dict[str, tuple[Any, str]] = {
        "ok": (base, VALID), "one": (base[0], VALID), "list": (base.tolist(), EITHER), "int": (np.ones((n, d), dtype=int), VALID),
        "nan": (np.where(np.eye(n, d) > 0, np.nan, base), INVALID), "inf": (np.where(np.eye(n, d) > 0, np.inf, base), INVALID),
        "huge": (base * 1e300, EITHER), "big": (base * 1e3, EITHER), "wide": (rng.normal(size=(n, d + 1)), INVALID),
        "narrow": (rng.normal(size=(n, d - 1)), INVALID), "empty": (base[:0], INVALID), "3d": (base[None], INVALID),
        "complex": (base + 1j, INVALID), "text": (np.full((n, d), "a"), INVALID), "object": (np.full((n, d), None), INVALID),
        "dict": ({"a": 1}, INVALID), "bool": (np.ones((n, d), dtype=bool), EITHER), "scalar": (0.5, INVALID),
        "prompts": (["What is 2+2?"] * n, INVALID), "none": (None, INVALID),
    }
    return table[kind]


def _tokens(kind: str, n: int, queries: str) -> tuple[Any, str]:
    rows = 1 if queries == "one" else n
    table: dict[str, tuple[Any, str]] = {
        "ok": (np.full(rows, 80), VALID), "none": (None, INVALID), "short": (np.full(rows + 1, 80), INVALID),
        "negative": (np.full(rows, -3), INVALID), "nan": (np.full(rows, np.nan), INVALID), "inf": (np.full(rows, np.inf), INVALID),
        "huge": (np.full(rows, 1e300), EITHER), "big": (np.full(rows, 1e7), VALID), "float": (np.full(rows, 10.5), EITHER),
        "text": (np.full(rows, "a"), INVALID), "2d": (np.full((rows, 2), 80), INVALID),
        "scalar": (80, VALID if rows == 1 else INVALID), "bool": (np.ones(rows, dtype=bool), EITHER),
    }
    return table[kind]


def _combine(*verdicts: str) -> str:
    return INVALID if INVALID in verdicts else (EITHER if EITHER in verdicts else VALID)


def _confidence_expectation(value: Any) -> str:
    if value is None:
        return VALID
    number = _real_number(value)
    if number is not None:
        return VALID if 0 < number < 1 else INVALID
    return INVALID if not isinstance(value, str) or not (0 < (_parses_finite(value) or 0) < 1) else EITHER


def _check_routing(ctx: RouterContext, n: int | None, tau: float | None = None) -> Callable[[Any], str | None]:
    def check(result: Any) -> str | None:
        if n is not None and len(result.models) != n:
            return f"{len(result.models)} decisions for {n} queries"
        if not set(result.models.tolist()) <= set(ctx.router.models.tolist()):
            return f"unknown models {set(result.models.tolist()) - set(ctx.router.models.tolist())}"
        if not ((result.mu >= 0) & (result.mu <= 1)).all():
            return f"μ outside [0, 1]: {result.mu.tolist()}"
        if tau is not None and result.tau != tau:
            return f"τ echoed as {result.tau}, asked {tau}"
        return _nonfinite({"mu": result.mu, "expected_accuracy": result.expected_accuracy, "expected_cost": result.expected_cost,
                           "tau_input": result.tau_input})
    return check


def run_router(ctx: RouterContext, spec: dict[str, Any]) -> Outcome:
    """One ``ProteusRouter.route`` probe."""
    n = spec["n"]
    queries, expect_q = _queries(spec["queries"], n, ctx.d)
    tokens, expect_t = _tokens(spec["tokens"], n, spec["queries"])
    if spec["queries"] in ("prompts", "dict", "none", "scalar", "3d", "empty", "text", "object"):
        expect_t = EITHER if expect_t == VALID else expect_t
    tau, confidence, deploy = spec["tau"], spec["confidence"], spec["deploy_queries"]
    expect_tau = unit_expectation(tau)
    expect_c = _confidence_expectation(confidence) if spec["calibrated"] else EITHER
    if deploy is None or confidence is None or not spec["calibrated"]:
        expect_d = VALID if deploy is None or isinstance(deploy, int) and not isinstance(deploy, bool) and deploy >= 1 else EITHER
    else:
        expect_d = VALID if isinstance(deploy, int) and not isinstance(deploy, bool) and deploy >= 1 else INVALID
    expect = _combine(expect_q, expect_t, expect_tau, expect_c, expect_d)
    rows = 1 if spec["queries"] == "one" else n

    def call() -> Any:
        return ctx.router.route(queries, tau, prompt_tokens=tokens, confidence=confidence, deploy_queries=deploy,
                                calibrated=spec["calibrated"])

    label = (f"queries={spec['queries']}[{n}] tokens={spec['tokens']} tau={label_of(tau)} confidence={label_of(confidence)} "
             f"deploy_queries={label_of(deploy)} calibrated={spec['calibrated']}")
    tau_value = float(tau) if expect_tau == VALID else None
    return judge("router.route", label, call, expect=expect, check=_check_routing(ctx, rows, tau_value))


def observation_specs() -> st.SearchStrategy[dict[str, Any]]:
    """``route_observations(p_hat, cost_hat, tau)`` with generated predictions."""
    values = st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([-0.5, 1.5, 1e30, -1e-9]))
    return st.fixed_dictionaries({
        "n": st.integers(0, 5), "width": st.sampled_from(["k", "k", "k-1", "k+1", "1d"]), "p_value": st.one_of(st.none(), values),
        "c_value": st.one_of(st.none(), values), "tau": scalars(), "dtype": st.sampled_from(["float64", "float32", "object", "str"]),
    })


def run_observations(ctx: RouterContext, spec: dict[str, Any]) -> Outcome:
    """One ``ProteusRouter.route_observations`` probe."""
    n, k = spec["n"], ctx.k
    width = {"k": k, "k-1": k - 1, "k+1": k + 1, "1d": k}[spec["width"]]
    rng = np.random.default_rng(n)
    p_hat, cost_hat = rng.uniform(size=(n, width)), rng.uniform(size=(n, width))
    expects = [VALID if spec["width"] == "k" and n >= 1 else INVALID]
    if spec["width"] == "1d":
        p_hat, cost_hat = p_hat[0] if n else p_hat.reshape(-1), cost_hat[0] if n else cost_hat.reshape(-1)
    for array, value in ((p_hat, spec["p_value"]), (cost_hat, spec["c_value"])):
        if value is not None and array.size:
            array.flat[0] = value
            expects.append(VALID if 0 <= value <= 1 else INVALID)
    if spec["dtype"] == "str":
        p_hat = p_hat.astype(str)
        expects.append(EITHER)
    elif spec["dtype"] != "float64":
        p_hat = p_hat.astype(spec["dtype"])
    expects.append(unit_expectation(spec["tau"]))
    expect = _combine(*expects)

    def call() -> Any:
        return ctx.router.route_observations(p_hat, cost_hat, spec["tau"])

    label = f"n={n} width={spec['width']} p0={spec['p_value']!r} c0={spec['c_value']!r} dtype={spec['dtype']} tau={label_of(spec['tau'])}"
    return judge("router.route_observations", label, call, expect=expect,
                 check=_check_routing(ctx, n if spec["width"] != "1d" else None))


# ---------------------------------------------------------------------------- artifacts
ARTIFACT_FILES = ("manifest.json", "policy.pt", "policy.json", "lambda_table.json", "calibration.json", "routing_head.npz",
                  "routing_head.json", "benchmark.json", "config.yaml", "summary.json", "model.zip")
#: Files a router never reads to route (changing them with a matching checksum is harmless).
ROUTING_IRRELEVANT = ("model.zip", "config.yaml", "summary.json")

#: Out-of-range edits of the JSON files: (file, description, edit of the parsed value).
VALUE_EDITS: dict[str, tuple[str, Callable[[Any], Any]]] = {}


def _edit(name: str, path: str, value: Any) -> Callable[[Any], Any]:
    def apply(data: Any) -> Any:
        node = data
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _DELETE:
            node.pop(last, None)
        else:
            node[last] = value
        return data
    return apply


_DELETE = object()
VALUE_EDITS = {
    "lambda -5": ("lambda_table.json", _edit("l", "lambdas.0", -5.0)),
    "lambda 1e6": ("lambda_table.json", _edit("l", "lambdas.1", 1e6)),
    "lambda NaN": ("lambda_table.json", _edit("l", "lambdas.0", math.nan)),
    "lambda text": ("lambda_table.json", _edit("l", "lambdas.0", "0.1")),
    "lambda missing": ("lambda_table.json", _edit("l", "lambdas", _DELETE)),
    "lambdas empty": ("lambda_table.json", _edit("l", "lambdas", [])),
    "edges decreasing": ("lambda_table.json", _edit("l", "edges.0", 0.99)),
    "edges -inf": ("lambda_table.json", _edit("l", "edges.0", -math.inf)),
    "edges too few": ("lambda_table.json", _edit("l", "edges", [0.3, 0.5])),
    "calibration accuracy 2": ("calibration.json", _edit("c", "val_accuracy.0", 2.0)),
    "calibration accuracy -1": ("calibration.json", _edit("c", "val_accuracy.3", -1.0)),
    "calibration input 5": ("calibration.json", _edit("c", "tau_inputs.0", 5.0)),
    "calibration inputs unsorted": ("calibration.json", _edit("c", "tau_inputs.0", 0.9)),
    "calibration usd inf": ("calibration.json", _edit("c", "val_usd_per_1k.0", math.inf)),
    "calibration usd -1": ("calibration.json", _edit("c", "val_usd_per_1k.0", -1.0)),
    "calibration n_val 0": ("calibration.json", _edit("c", "n_val", 0)),
    "calibration n_val list": ("calibration.json", _edit("c", "n_val", [225])),
    "calibration n_val text": ("calibration.json", _edit("c", "n_val", "225")),
    "calibration binary text": ("calibration.json", _edit("c", "binary", "yes")),
    "calibration nested": ("calibration.json", _edit("c", "tau_inputs", [[0.5]])),
    "head models reversed": ("routing_head.json", lambda d: {**d, "models": d["models"][::-1]}),
    "head models fewer": ("routing_head.json", lambda d: {**d, "models": d["models"][:-1]}),
    "head gamma -1": ("routing_head.json", _edit("h", "config.gamma", -1)),
    "head config text": ("routing_head.json", _edit("h", "config", "x")),
    "head config missing": ("routing_head.json", _edit("h", "config", _DELETE)),
    "benchmark fingerprint": ("benchmark.json", _edit("b", "fingerprint", "0000")),
    "benchmark split_seed": ("benchmark.json", _edit("b", "env_kwargs.split_seed", 7)),
    "benchmark list": ("benchmark.json", lambda d: []),
    "manifest models reversed": ("manifest.json", lambda d: {**d, "benchmark": {**d["benchmark"], "models": d["benchmark"]["models"][::-1]}}),
    "manifest path escape": ("manifest.json", lambda d: {**d, "files": {**d["files"], "../escape": "0" * 64}}),
    "manifest version 99": ("manifest.json", _edit("m", "format_version", 99)),
    "manifest files list": ("manifest.json", _edit("m", "files", [])),
    "manifest embedding_dim 0": ("manifest.json", _edit("m", "benchmark.embedding_dim", 0)),
    "policy lambda high 1e6": ("policy.json", _edit("p", "observation_space.spaces.lambda.high", [1e6])),
    "policy lambda high inf": ("policy.json", _edit("p", "observation_space.spaces.lambda.high", ["inf"])),
    "policy p_hat high 5": ("policy.json", _edit("p", "observation_space.spaces.p_hat.high", [5.0] * 11)),
    "policy net huge": ("policy.json", _edit("p", "kwargs.net_arch", {"pi": [10**6, 10**6], "vf": [64]})),
    "policy net negative": ("policy.json", _edit("p", "kwargs.net_arch", {"pi": [-1], "vf": [64]})),
    "policy net text": ("policy.json", _edit("p", "kwargs.net_arch", "x")),
    "policy hidden huge": ("policy.json", _edit("p", "kwargs.features_extractor_kwargs.hidden_dim", 10**7)),
    "policy extractor bogus": ("policy.json", _edit("p", "kwargs.features_extractor_kwargs.bogus", 1)),
    "policy beta_epsilon -5": ("policy.json", _edit("p", "kwargs.beta_epsilon", -5)),
    "policy class": ("policy.json", _edit("p", "policy_class", "os.system")),
    "policy activation": ("policy.json", _edit("p", "kwargs.activation_fn", "builtins.eval")),
}
#: Head array edits of ``routing_head.npz``: (array name, kind).
NPZ_EDITS = tuple((name, kind) for name in ("feature_mean", "feature_scale", "correct_weights", "correct_bias", "platt_a", "cost_weights",
                                           "cost_bias", "cost_sd", "log_cost_range", "quality_prior")
                  for kind in ("nan", "huge", "shape", "drop"))
WEIGHT_EDITS = ("nan", "huge", "other keys", "list", "half")


def artifact_specs() -> st.SearchStrategy[dict[str, Any]]:
    """Each file of a trained artifact removed, truncated, malformed or holding out-of-range values (checksums re-signed or not)."""
    damage = st.fixed_dictionaries({"kind": st.just("damage"), "file": st.sampled_from(ARTIFACT_FILES),
                                    "how": st.sampled_from(["remove", "truncate", "garbage", "empty", "directory", "append"]),
                                    "fraction": st.floats(0, 0.99), "resign": st.booleans()})
    values = st.fixed_dictionaries({"kind": st.just("value"), "edit": st.sampled_from(sorted(VALUE_EDITS)), "resign": st.just(True)})
    arrays = st.fixed_dictionaries({"kind": st.just("npz"), "edit": st.sampled_from(NPZ_EDITS), "resign": st.just(True)})
    weights = st.fixed_dictionaries({"kind": st.just("weights"), "edit": st.sampled_from(WEIGHT_EDITS), "resign": st.just(True)})
    return st.one_of(damage, values, values, arrays, weights)


def resign(directory: Path) -> None:
    """Rewrite the manifest's checksums to match the files (a crafted artifact, not a corrupted one)."""
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
        for name in list(files):
            path = directory / name
            if path.is_file():
                files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest_path.write_text(json.dumps(manifest))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # a manifest damaged on purpose stays damaged


def _damage(directory: Path, spec: dict[str, Any]) -> str:
    path = directory / spec["file"]
    data = path.read_bytes()
    how = spec["how"]
    if how == "remove":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(data[: int(len(data) * spec["fraction"])])
    elif how == "garbage":
        path.write_bytes(b"\x00\xff\xfegarbage{[" + data[:7])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "directory":
        path.unlink()
        path.mkdir()
    elif how == "append":
        path.write_bytes(data + b"\n{trailing}")
    if spec["file"] in ROUTING_IRRELEVANT and spec["resign"] and how != "remove" and how != "directory":
        return EITHER
    if how == "append" and spec["resign"] and spec["file"].endswith((".pt", ".npz")):
        return EITHER  # zip readers ignore trailing bytes: the same weights
    return INVALID


def _json_value_edit(directory: Path, spec: dict[str, Any]) -> str:
    name, edit = VALUE_EDITS[spec["edit"]]
    path = directory / name
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return EITHER if spec["edit"] in ("calibration binary text",) else INVALID


def _npz_edit(directory: Path, spec: dict[str, Any]) -> str:
    array_name, kind = spec["edit"]
    path = directory / "routing_head.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    if kind == "nan":
        arrays[array_name] = arrays[array_name] * np.nan
    elif kind == "huge":
        arrays[array_name] = arrays[array_name] + 1e300
    elif kind == "shape":
        arrays[array_name] = np.zeros((3, 3))
    else:
        arrays.pop(array_name)
    np.savez(path, **arrays)
    return EITHER if kind == "huge" else INVALID  # huge but finite parameters are no error; the outputs must stay finite


def _weights_edit(directory: Path, spec: dict[str, Any]) -> str:
    import torch

    path = directory / "policy.pt"
    state = torch.load(path, weights_only=True)
    kind = spec["edit"]
    if kind == "nan":
        state = {k: v * float("nan") for k, v in state.items()}
    elif kind == "huge":
        state = {k: v + 1e30 for k, v in state.items()}
    elif kind == "other keys":
        state = {"a": torch.zeros(3)}
    elif kind == "list":
        state = [1, 2]
    else:
        state = dict(list(state.items())[: len(state) // 2])
    torch.save(state, path)
    return EITHER if kind == "huge" else INVALID


class ArtifactContext:
    """A trained artifact to copy and damage, and a scratch folder."""

    def __init__(self, artifact: Path, workdir: Path) -> None:
        self.artifact = Path(artifact)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.counter = 0


def run_artifact(ctx: ArtifactContext, spec: dict[str, Any]) -> Outcome:
    """Copy the artifact, damage it as ``spec`` says, then ``ProteusRouter.load`` it and route a few queries."""
    from agents.proteus.router import ProteusRouter

    ctx.counter += 1
    directory = ctx.workdir / f"artifact{ctx.counter}"
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(ctx.artifact, directory)
    kind = spec["kind"]
    expect = {"damage": _damage, "value": _json_value_edit, "npz": _npz_edit, "weights": _weights_edit}[kind](directory, spec)
    if spec["resign"]:
        resign(directory)
    target = spec.get("file") or (VALUE_EDITS[spec["edit"]][0] if kind == "value" else
                                  "routing_head.npz" if kind == "npz" else "policy.pt")

    def call() -> Any:
        router = ProteusRouter.load(directory)
        embeddings = np.random.default_rng(0).normal(size=(4, router.head.embedding_dim))
        return router, router.route(embeddings, 0.6, prompt_tokens=np.full(4, 80))

    def check(result: Any) -> str | None:
        router, routed = result
        return _nonfinite({"lambdas": router.lambdas, "mu": routed.mu, "expected_accuracy": routed.expected_accuracy,
                           "expected_cost": routed.expected_cost})

    detail = {"damage": lambda: f"{spec['file']} {spec['how']}", "value": lambda: spec["edit"],
              "npz": lambda: f"routing_head.npz {spec['edit'][0]} {spec['edit'][1]}", "weights": lambda: f"policy.pt {spec['edit']}"}[kind]()
    label = f"{detail}{' (checksums re-signed)' if spec['resign'] else ''}"
    try:
        return judge("artifact", label, call, expect=expect, check=check, names=(target, directory.name))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------- the CLI (subprocesses)
class CliContext:
    """Files the CLI probes point at: a trained router, .npy inputs, the data sample, a scratch folder."""

    def __init__(self, router: Path, workdir: Path) -> None:
        self.router = Path(router)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        d = json.loads((self.router / "manifest.json").read_text())["benchmark"]["embedding_dim"]
        arrays = {"emb": rng.normal(size=(3, d)), "tok": np.full(3, 50), "tok2": np.full(2, 50), "negtok": np.full(3, -5),
                  "wide": np.zeros((3, d + 3)), "nanemb": np.full((3, d), np.nan), "hugeemb": np.full((3, d), 1e300),
                  "complexemb": np.zeros((3, d), complex), "emptyemb": np.zeros((0, d)), "emb3d": np.zeros((2, 3, d)),
                  "textemb": np.full((3, d), "a")}
        for name, array in arrays.items():
            np.save(self.workdir / f"{name}.npy", array)
        np.save(self.workdir / "pickled.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
        (self.workdir / "notnpy.npy").write_text("hello")
        (self.workdir / "afile").write_text("x")
        (self.workdir / "bad.yaml").write_text("ppo: [unclosed\n")
        (self.workdir / "list.yaml").write_text("- 1\n- 2\n")
        (self.workdir / "binary.yaml").write_bytes(b"\x93NUMPY\x00\xff")
        self.counter = 0
        self.home = self.workdir / "home"

    def fill(self, argv: list[str]) -> list[str]:
        """Replace the placeholders of a case."""
        self.counter += 1
        values = {"router": str(self.router), "dir": str(self.workdir), "data": str(SAMPLE_CSV), "out": str(self.workdir / f"out{self.counter}")}
        return [a.format(**values) for a in argv]


#: (argv, expectation, substrings one of which a clear error must name). ``{router}``, ``{dir}``, ``{data}`` and ``{out}`` are filled in.
CLI_CASES: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = (
    # route
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/emb.npy", "--tokens", "{dir}/tok.npy"), VALID, ()),
    (("route", "--router", "{router}", "--tau", "0.6", "--confidence", "0.95", "--embeddings", "{dir}/emb.npy", "--tokens", "{dir}/tok.npy"),
     VALID, ()),
    (("route", "--router", "{router}", "--tau", "0.99", "--confidence", "0.95", "--embeddings", "{dir}/emb.npy", "--tokens", "{dir}/tok.npy"),
     VALID, ()),
    (("route", "--router", "/nonexistent", "--tau", "0.8"), INVALID, ("/nonexistent",)),
    (("route", "--router", "{dir}/afile", "--tau", "0.8", "--embeddings", "{dir}/emb.npy", "--tokens", "{dir}/tok.npy"), INVALID, ("afile",)),
    (("route", "--router", "{dir}", "--tau", "0.8", "--embeddings", "{dir}/emb.npy", "--tokens", "{dir}/tok.npy"), INVALID, ("manifest",)),
    (("route", "--tau", "0.8"), INVALID, ("--router",)),
    (("route", "--router", "{router}"), INVALID, ("--tau",)),
    (("route", "--router", "{router}", "--tau", "0.6"), INVALID, ("route", "prompts", "embeddings")),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/emb.npy"), INVALID, ("--tokens",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--tokens", "{dir}/tok.npy"), INVALID, ("--embeddings",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/emb.npy", "--tokens", "{dir}/tok.npy", "a prompt"), INVALID,
     ("prompt",)),
    (("route", "--router", "{router}", "--tau", "0.6", "hello", "world"), INVALID, ("encoder", "prompt")),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/emb.npy", "--tokens", "{dir}/negtok.npy"), INVALID, ("token",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/wide.npy", "--tokens", "{dir}/tok.npy"), INVALID, ("embedding",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/nanemb.npy", "--tokens", "{dir}/tok.npy"), INVALID, ("embedding",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/hugeemb.npy", "--tokens", "{dir}/tok.npy"), EITHER,
     ("embedding", "cost")),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/complexemb.npy", "--tokens", "{dir}/tok.npy"), INVALID, ("embedding",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/emptyemb.npy", "--tokens", "{dir}/tok.npy"), INVALID,
     ("embedding", "token", "queries")),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/emb3d.npy", "--tokens", "{dir}/tok.npy"), INVALID, ("embedding",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/textemb.npy", "--tokens", "{dir}/tok.npy"), INVALID, ("embedding",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/emb.npy", "--tokens", "{dir}/tok2.npy"), INVALID, ("token",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/pickled.npy", "--tokens", "{dir}/tok.npy"), INVALID, ("pickled.npy",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/notnpy.npy", "--tokens", "{dir}/tok.npy"), INVALID, ("notnpy.npy",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}/missing.npy", "--tokens", "{dir}/tok.npy"), INVALID, ("missing.npy",)),
    (("route", "--router", "{router}", "--tau", "0.6", "--embeddings", "{dir}", "--tokens", "{dir}/tok.npy"), INVALID, ("--embeddings",)),
    # eval
    (("eval", "--out", "{out}"), INVALID, ("--router", "--baselines-only")),
    (("eval", "--router", "{router}", "--baselines-only", "--out", "{out}"), INVALID, ("--baselines-only",)),
    (("eval", "--router", "/nonexistent", "--out", "{out}"), INVALID, ("/nonexistent",)),
    (("eval", "--router", "{router}", "--out", "{out}", "--seeds", "0"), INVALID, ("seeds",)),
    (("eval", "--router", "{router}", "--out", "{out}", "--seeds", "3"), INVALID, ("seeds",)),
    (("eval", "--router", "{router}", "--out", "{out}", "--benchmark", "routerbench"), INVALID, ("benchmark",)),
    (("eval", "--router", "{router}", "--out", "{out}", "--data", "{data}"), INVALID, ("fingerprint", "benchmark", "routerbench")),
    (("eval", "--baselines-only", "--out", "{out}", "--benchmark", "nope"), INVALID, ("nope",)),
    (("eval", "--baselines-only", "--out", "{out}", "--benchmark-arg", "n_queries"), INVALID, ("n_queries",)),
    (("eval", "--baselines-only", "--out", "{out}", "--benchmark-arg", "bogus=1"), INVALID, ("bogus",)),
    (("eval", "--baselines-only", "--out", "{out}", "--benchmark-arg", "n_queries=abc"), INVALID, ("n_queries", "abc")),
    (("eval", "--baselines-only", "--out", "{dir}/afile", "--no-dynamic", "--no-predictive", "--n-boot", "10", "--benchmark-arg", "n_queries=2000"),
     INVALID, ("afile", "--out")),
    (("eval", "--baselines-only", "--out", "{out}", "--window", "0"), INVALID, ("window",)),
    (("eval", "--baselines-only", "--out", "{out}", "--n-boot", "0"), INVALID, ("n_boot", "n-boot")),
    (("eval", "--baselines-only", "--out", "{out}", "--stream-length", "1"), INVALID, ("stream",)),
    (("eval", "--baselines-only", "--out", "{out}", "--data", "{dir}/afile"), INVALID, ("afile",)),
    (("eval", "--baselines-only", "--out", "{out}", "--data", "/nonexistent.csv"), INVALID, ("/nonexistent.csv",)),
    (("eval", "--baselines-only", "--out", "{out}", "--no-dynamic", "--no-predictive", "--n-boot", "10", "--taus", "0.5",
      "--benchmark-arg", "n_queries=2000"), VALID, ()),
    # train
    (("train", "--timesteps", "-5", "--out", "{out}"), INVALID, ("timesteps",)),
    (("train", "--set", "ppo.bogus=1", "--out", "{out}"), INVALID, ("ppo.bogus",)),
    (("train", "--set", "nokey", "--out", "{out}"), INVALID, ("nokey",)),
    (("train", "--set", "ppo.learning_rate=abc", "--out", "{out}"), INVALID, ("learning_rate",)),
    (("train", "--config", "/nonexistent.yaml", "--out", "{out}"), INVALID, ("/nonexistent.yaml",)),
    (("train", "--config", "{dir}/bad.yaml", "--out", "{out}"), INVALID, ("bad.yaml",)),
    (("train", "--config", "{dir}/list.yaml", "--out", "{out}"), INVALID, ("list.yaml",)),
    (("train", "--resume", "/nonexistent", "--out", "{out}"), INVALID, ("/nonexistent",)),
    (("train", "--n-envs", "0", "--out", "{out}"), INVALID, ("n_envs", "n-envs")),
    (("train", "--out", "{dir}/afile", "--timesteps", "64"), INVALID, ("afile",)),
    (("train", "--env", "Proteus-RouterBench-v0", "--data", "/nonexistent.csv", "--out", "{out}"), INVALID, ("/nonexistent.csv",)),
    (("train", "--set", "env_kwargs.session_length=1", "--out", "{out}"), INVALID, ("session_length",)),
    (("train", "--timesteps", "abc"), INVALID, ("--timesteps",)),
    (("train", "--data", "{data}", "--timesteps", "64", "--out", "{out}"), INVALID, ("data_path", "--data")),
    # demo
    (("demo", "--taus", "2"), INVALID, ("--taus",)),
    (("demo", "--taus", "nan", "--fixed-mu-only"), INVALID, ("--taus",)),
    (("demo", "--confidence", "7", "--fixed-mu-only"), INVALID, ("--confidence",)),
    (("demo", "--timesteps", "-1"), INVALID, ("timesteps",)),
    (("demo", "--fixed-mu-only", "--seed", "-1"), INVALID, ("seed",)),
    (("demo", "--fixed-mu-only", "--timesteps", "100"), INVALID, ("--fixed-mu-only", "--timesteps")),
    (("demo", "--fixed-mu-only", "--out", "{out}"), INVALID, ("--fixed-mu-only", "--out")),
    (("demo", "--fixed-mu-only", "--taus", "0.5", "0.6", "--confidence", "none"), VALID, ()),
    # data
    (("data", "info", "--benchmark", "routerbench", "--path", "{data}"), VALID, ()),
    (("data", "info", "--benchmark", "routerbench", "--path", "/nonexistent.csv"), INVALID, ("/nonexistent.csv",)),
    (("data", "info", "--benchmark", "routerbench", "--path", "{dir}/emb.npy"), INVALID, ("emb.npy",)),
    (("data", "info", "--benchmark", "routerbench", "--path", "{dir}/notnpy.npy"), INVALID, ("notnpy.npy",)),
    (("data", "info", "--benchmark", "synthetic", "--path", "x"), INVALID, ("--path", "path")),
    (("data", "info", "--benchmark", "sprout", "--path", "/nonexistent"), INVALID, ("/nonexistent",)),
    (("data", "info", "--benchmark", "routerbench", "--path", "{data}", "--drop-tasks", "zzz"), INVALID, ("zzz",)),
    (("data", "info", "--benchmark", "routerbench", "--path", "{data}", "--variant", "9shot"), INVALID, ("9shot",)),
    (("data", "info", "--benchmark", "nope"), INVALID, ("nope",)),
    (("data", "embed", "routerbench", "--path", "{data}", "--encoder", "nope"), INVALID, ("nope",)),
    (("data", "embed", "routerbench", "--path", "{data}", "--dim", "0"), INVALID, ("dim",)),
    (("data", "download", "nope"), INVALID, ("nope",)),
    (("data",), INVALID, ("info", "download", "embed")),
    (("nope",), INVALID, ("nope",)),
    # sweep (issue 10): every bad input is refused before Ray starts, or at the unreachable address
    (("sweep", "--out", "{out}", "--grid", "ppo.bogus=[1]"), INVALID, ("ppo.bogus",)),
    (("sweep", "--out", "{out}", "--grid", "ppo.learning_rate=[]"), INVALID, ("empty search space",)),
    (("sweep", "--out", "{out}", "--random", "dual.eta=uniform(1, 0)"), INVALID, ("dual.eta",)),
    (("sweep", "--out", "{out}", "--random", "dual.eta=gauss(0, 1)"), INVALID, ("gauss",)),
    (("sweep", "--out", "{out}", "--num-samples", "0"), INVALID, ("num-samples",)),
    (("sweep", "--out", "{out}", "--benchmark", "nope"), INVALID, ("nope",)),
    (("sweep", "--out", "{out}", "--seeds", "-1"), INVALID, ("--seeds",)),
    (("sweep", "--out", "{out}", "--address", "127.0.0.1:9"), INVALID, ("127.0.0.1:9",)),
    (("sweep", "--out", "{out}", "--address", "host:port"), INVALID, ("host:port",)),
    (("sweep", "--out", "{out}", "--address", "127.0.0.1:9", "--num-cpus", "2"), INVALID, ("--num-cpus", "127.0.0.1:9")),
    (("sweep", "--resume", "--out", "{out}"), INVALID, ("sweep",)),
    (("sweep", "--resume", "--out", "{out}", "--grid", "dual.eta=[0.1]"), INVALID, ("--grid",)),
    (("sweep", "--out", "{dir}/afile", "--timesteps", "64"), INVALID, ("afile",)),
    (("sweep", "--out", "{out}", "--timesteps", "0"), INVALID, ("timesteps",)),
    (("sweep", "--out", "{out}", "--cpus-per-trial", "0"), INVALID, ("cpus-per-trial",)),
    (("sweep", "--out", "{out}", "--config", "/nonexistent.yaml"), INVALID, ("/nonexistent.yaml",)),
    (("sweep", "--out", "{out}", "--data", "{data}"), INVALID, ("--data",)),
    (("sweep", "--grid", "dual.eta=[0.1]"), INVALID, ("--out",)),
    # eval --ray (issue 10)
    (("eval", "--baselines-only", "--out", "{out}", "--address", "127.0.0.1:9"), INVALID, ("--address",)),
    (("eval", "--baselines-only", "--out", "{out}", "--ray", "--address", "127.0.0.1:9", "--no-progress"), INVALID, ("127.0.0.1:9",)),
)

#: Values for the generated CLI numbers (``--tau``, ``--confidence``, ``--taus``).
CLI_NUMBERS = ("0.6", "0", "1", "-0.1", "1.5", "nan", "inf", "-inf", "abc", "", "1e-400", "1e400", "0x1", "none", "0.95", " 0.5")


def cli_specs() -> st.SearchStrategy[dict[str, Any]]:
    """A listed CLI case, or ``route`` / ``demo`` with generated numbers."""
    listed = st.builds(lambda i: {"case": i}, st.integers(0, len(CLI_CASES) - 1))
    generated = st.fixed_dictionaries({"command": st.sampled_from(["route", "demo"]), "tau": st.sampled_from(CLI_NUMBERS),
                                       "confidence": st.sampled_from(CLI_NUMBERS)})
    return st.one_of(listed, listed, generated)


def _cli_number_expectation(text: str, *, confidence: bool) -> str:
    if confidence and text.strip().lower() in ("none", "null", "no", "0"):
        return VALID
    value = _parses_finite(text.strip()) if text.strip() else None
    if value is None:
        return INVALID
    if confidence:
        return VALID if 0 < value < 1 else INVALID
    return VALID if 0 <= value <= 1 else INVALID


def cli_case(spec: dict[str, Any]) -> tuple[list[str], str, tuple[str, ...]]:
    """(argv, expectation, names) of a CLI spec."""
    if "argv" in spec:
        return list(spec["argv"]), spec["expect"], tuple(spec["names"])
    if "case" in spec:
        argv, expect, names = CLI_CASES[spec["case"]]
        return list(argv), expect, names
    tau, confidence = spec["tau"], spec["confidence"]
    expect = _combine(_cli_number_expectation(tau, confidence=False), _cli_number_expectation(confidence, confidence=True))
    names = ("tau", "confidence")
    if spec["command"] == "route":
        argv = ["route", "--router", "{router}", f"--tau={tau}", f"--confidence={confidence}", "--embeddings", "{dir}/emb.npy",
                "--tokens", "{dir}/tok.npy"]
    else:
        argv = ["demo", "--fixed-mu-only", f"--taus={tau}", f"--confidence={confidence}"]
    return argv, expect, names


ERROR_LINE = re.compile(r"(?:^|\r)(proteus(?: [\w-]+)*: error: \S.*)", re.MULTILINE)  # a cleared progress bar may end in \r
NON_FINITE = re.compile(r"(?<![\w.])(?:nan|[+-]?inf(?:inity)?)(?![\w.])", re.IGNORECASE)


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY_BOUND, CLI_MEMORY_BOUND))


def cli_command() -> list[str]:
    """How the CLI is started: ``python -m agents.cli``."""
    return [PYTHON, "-m", "agents.cli"]


def _run_in_process(argv: list[str], ctx: CliContext) -> subprocess.CompletedProcess:
    """``agents.cli.main(argv)`` in this process, with its stdout, stderr and exit code captured like a subprocess's."""
    import io

    from agents.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_home, saved_cwd = os.environ.get("PROTEUS_HOME"), os.getcwd()
    os.environ["PROTEUS_HOME"] = str(ctx.home)
    try:
        os.chdir(ctx.workdir)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(), memory_bound():
            warnings.simplefilter("ignore")
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's own errors
                code = exc.code if isinstance(exc.code, int) else 1
            except MemoryError as exc:
                err.write(f"MemoryError: {exc}\n")
                code = 1
    finally:
        os.chdir(saved_cwd)
        if saved_home is None:
            os.environ.pop("PROTEUS_HOME", None)
        else:
            os.environ["PROTEUS_HOME"] = saved_home
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def run_cli(ctx: CliContext, spec: dict[str, Any], *, timeout: float = CLI_TIMEOUT, in_process: bool = False) -> Outcome:
    """Run one CLI case as a subprocess (``python -m agents.cli ...``; ``in_process``: ``agents.cli.main``) and classify its exit."""
    argv, expect, names = cli_case(spec)
    filled = ctx.fill(argv)
    env = {**os.environ, "PROTEUS_HOME": str(ctx.home), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    label = "proteus " + " ".join(argv)
    entry = f"cli {argv[0]}" if argv[0] in ("demo", "train", "sweep", "route", "eval", "data") else "cli (no command)"
    try:
        if in_process:
            done = _run_in_process(filled, ctx)
        else:
            done = subprocess.run(cli_command() + filled, capture_output=True, text=True, timeout=timeout, env=env, cwd=ctx.workdir,
                                  preexec_fn=_limit_memory, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Outcome(entry, label, "traceback", f"no answer within {timeout:.0f} s")
    err = done.stderr
    if "MemoryError" in err or "can't allocate memory" in err or done.returncode in (-9, 137):
        return Outcome(entry, label, "out of memory", err.strip().splitlines()[-1][:300] if err.strip() else f"exit {done.returncode}")
    if "Traceback (most recent call last)" in err:
        last = [line for line in err.strip().splitlines() if line and not line.startswith(" ")]
        return Outcome(entry, label, "traceback", " | ".join(last[-2:])[:300])
    if done.returncode == 0:
        if expect == INVALID:
            return Outcome(entry, label, "silent wrong result", f"exit 0: {done.stdout.strip()[-200:]!r}")
        bad = NON_FINITE.search(done.stdout)
        if bad:
            line = next(line for line in done.stdout.splitlines() if bad.group(0) in line)
            return Outcome(entry, label, "silent wrong result", f"non-finite number in the output: {line.strip()[:200]}")
        return Outcome(entry, label, "correct", done.stdout.strip().splitlines()[0][:160] if done.stdout.strip() else "exit 0")
    match = ERROR_LINE.search(err)
    if done.returncode == 2 and match:
        message = match.group(1)
        if names and not any(n.lower() in message.lower() for n in names):
            return Outcome(entry, label, "traceback", f"error does not name {names}: {message[:300]}")
        if expect == VALID:
            return Outcome(entry, label, "silent wrong result", f"a good input was refused: {message[:300]}")
        return Outcome(entry, label, "clear error", message[:300])
    return Outcome(entry, label, "traceback", f"exit {done.returncode}: {err.strip()[-300:]!r}")


# ---------------------------------------------------------------------------- known findings in files this suite does not fix
@dataclasses.dataclass(frozen=True)
class Finding:
    """A known failure: where it is, and a probe that shows it."""

    key: str
    entry: str
    where: str
    what: str
    probe: Callable[[dict[str, Any]], Outcome]

    def run(self, contexts: dict[str, Any]) -> Outcome:
        """Run the probe; the outcome is filed under this finding's entry point."""
        outcome = self.probe(contexts)
        return dataclasses.replace(outcome, entry=self.entry, label=f"{self.key}: {outcome.label or self.what[:100]}")


def _env_probe(call: Callable[[EnvContext], Any], expect: str = INVALID, check: Callable[[Any], str | None] | None = None,
               names: tuple[str, ...] = ()) -> Callable[[dict[str, Any]], Outcome]:
    def probe(contexts: dict[str, Any]) -> Outcome:
        return judge("finding", "", lambda: call(contexts["env"]), expect=expect, check=check, names=names)
    return probe


def _session_finite(env: Any) -> Any:
    env.reset(seed=0)
    rewards = [env.step(np.array([0.5], dtype=np.float32))[1] for _ in range(3)]
    if not all(math.isfinite(r) for r in rewards):
        raise AssertionError(f"non-finite rewards {rewards}")  # reported as a traceback: an inf reward is never clear
    return rewards


def _loader_probe(mutate: Callable[[Any, LoaderContext], Any], expect: str = INVALID, names: tuple[str, ...] = (),
                  check_models: bool = True, entry: str = "table", bound: int = MEMORY_BOUND) -> Callable[[dict[str, Any]], Outcome]:
    def probe(contexts: dict[str, Any]) -> Outcome:
        from proteus_env.loaders import load_routerbench, load_routerbench_table

        ctx: LoaderContext = contexts["loader"]
        frame = mutate(ctx.frame.copy(), ctx)
        path = ctx.path()
        frame.to_csv(path, index=False)
        if entry == "table":
            def call() -> Any:
                return load_routerbench_table(path, cache_dir=ctx.workdir / "cache")
        else:
            def call() -> Any:
                return load_routerbench(path, cache_dir=ctx.workdir / "cache", encoder_kwargs={"dim": 8})

        def check(table: Any) -> str | None:
            if check_models and list(table.models) != ctx.models:
                return f"model list changed: {len(table.models)} models"
            return _nonfinite({"scores": table.scores, "costs": table.costs,
                               **({k: v for k, v in table.summary().items() if isinstance(v, float)} if hasattr(table, "summary") else {})})
        return judge("finding", "", call, expect=expect, check=check, names=names, bound=bound)
    return probe


def _duplicate(frame: Any, ctx: LoaderContext) -> Any:
    frame = frame.join(frame[["gpt-4-1106-preview"]], rsuffix="__dup")
    frame.columns = [c.replace("__dup", "") for c in frame.columns]
    return frame


def _two_huge_costs(frame: Any, ctx: LoaderContext) -> Any:
    frame.loc[[0, 1], "claude-v2|total_cost"] = "1e308"
    return frame


def _huge_prompt(frame: Any, ctx: LoaderContext) -> Any:
    frame.loc[3, "prompt"] = "x " * 1_000_000
    return frame


def _cli_probe(argv: tuple[str, ...], expect: str, names: tuple[str, ...]) -> Callable[[dict[str, Any]], Outcome]:
    def probe(contexts: dict[str, Any]) -> Outcome:
        return run_cli(contexts["cli"], {"argv": argv, "expect": expect, "names": names}, in_process=contexts.get("in_process", False))
    return probe


#: Open findings (strict xfails in test_findings.py); none at the moment.
FINDINGS: tuple[Finding, ...] = ()

#: Findings fixed since the suite found them: each must now end as a correct result or a clear error.
FIXED_FINDINGS: tuple[Finding, ...] = (
    Finding("env-reset-options-not-a-mapping", "env.reset", "proteus_env/env.py ProteusRoutingEnv.reset",
            "reset(options='tau') raises TypeError 'string indices must be integers'; options=5 raises TypeError",
            _env_probe(lambda c: c.env("mu").unwrapped.reset(options="tau"), names=("options",))),
    Finding("env-split-seed-float", "env constructor", "proteus_env/env.py / proteus_env/synthetic.py (split_seed not checked)",
            "split_seed=1.5 and split_seed='0' raise TypeError from numpy's SeedSequence (in a fresh process; accepted in one that "
            "cached other benchmarks first), split_seed=None raises TypeError, split_seed=-1 raises ValueError 'expected non-negative "
            "integer' without naming split_seed, split_seed=True is accepted as 1",
            _env_probe(lambda c: c.make(split_seed=1.5), names=("split_seed",))),
    Finding("env-step-text-action", "env.step (mu)", "proteus_env/env.py ProteusRoutingEnv._check_mu (the fast path)",
            "step(np.array(['a'])) raises TypeError \"'<=' not supported between instances of 'float' and 'numpy.str_'\" (before: "
            "ValueError 'could not convert string to float'), which does not say it is the action (the other paths say 'Action must be numeric')",
            _env_probe(lambda c: (c.env("mu").reset(seed=0), c.env("mu").step(np.array(["a"]))), names=("action",))),
    Finding("head-config-non-numeric", "env constructor", "proteus_env/routing_head.py HeadConfig.__post_init__",
            "head_config={'gamma': 'abc'} (or None) raises TypeError \"'<=' not supported between instances of 'float' and 'str'\"",
            _env_probe(lambda c: c.make(head_config={"gamma": "abc"}), names=("gamma",))),
    Finding("env-head-config-type", "env constructor", "proteus_env/env.py ProteusRoutingEnv.__init__ (head_config)",
            "head_config='x' raises AttributeError ''str' object has no attribute 'key''",
            _env_probe(lambda c: c.make(head_config="x"), names=("head_config",))),
    Finding("env-weight-schedule-inf", "env constructor", "proteus_env/rewards.py resolve_schedule",
            "a callable cost_weight returning inf is accepted and every reward is -inf",
            _env_probe(lambda c: _session_finite(c.make(cost_weight=lambda tau: math.inf)), names=("cost_weight",))),
    Finding("vector-num-envs", "vector env", "proteus_env/vector.py ProteusVectorEnv.__init__",
            "num_envs=None raises TypeError; num_envs=True is accepted as 1 environment (booleans are refused everywhere else); "
            "num_envs=10**12 is accepted and allocates (MemoryError)",
            _env_probe(lambda c: __import__("proteus_env").ProteusVectorEnv(None, **ENV_BASE), names=("num_envs",))),
    Finding("vector-reset-arguments", "vector env", "proteus_env/vector.py ProteusVectorEnv.reset",
            "reset(options='tau') raises AttributeError; reset(seed=1.5) raises TypeError ''float' object is not iterable'",
            _env_probe(lambda c: __import__("proteus_env").ProteusVectorEnv(2, **ENV_BASE).reset(seed=1.5), names=("seed",))),
)


def finding(key: str) -> Finding:
    """The finding named ``key``."""
    return next(f for f in (*FINDINGS, *FIXED_FINDINGS) if f.key == key)


# ---------------------------------------------------------------------------- drawing a fixed sample
def draw(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """The first ``n`` inputs hypothesis generates from ``strategy`` with ``derandomize=True`` (the same every run).

    Fewer when the strategy has fewer distinct values.
    """
    from hypothesis import HealthCheck, Phase, given, settings

    drawn: list[Any] = []

    @settings(max_examples=n, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(spec: Any) -> None:
        drawn.append(spec)

    collect()
    return drawn


# ---------------------------------------------------------------------------- evaluate_policy (issue 10)
AGENT_ENV = {"benchmark_kwargs": {"n_queries": 2000}, "session_length": 8}
AGENT_SETTINGS = {"seeds": 1, "n_taus": 2, "predictive": False, "dynamic": False, "sessions": False, "n_boot": 20, "progress": False}
#: What a generated callable returns per batch of ``n``: a shape (``n`` stands for the batch) and a fill value.
AGENT_SHAPES = (("n",), ("n", 1), ("n", 2), ("n", 3), (1,), (), ("n", 1, 1))
AGENT_FILLS = (0.5, 0.0, 1.0, 2, -1, 3.7, 10, float("nan"), float("inf"), -float("inf"), "x", None, True)
AGENT_ALGOS = ("PPO", "ppo", " PPO ", "SAC", "DQN", "A2C", "TD3", "XYZ", "", 3, None)
AGENT_SPECS = ("no_such_module_q:act", "os:sep", "math:pi", "json", ":", "a:b:c", "numpy:not_here", "", " : ")


class AgentContext:
    """A tiny PPO zip (trained once) and its environment, for the evaluate_policy probes."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._zip: Path | None = None

    @property
    def zip(self) -> Path:
        if self._zip is None:
            import gymnasium as gym
            from stable_baselines3 import PPO

            import proteus_env  # noqa: F401

            env = gym.make("Proteus-Synthetic-v0", **AGENT_ENV)
            model = PPO("MultiInputPolicy", env, n_steps=32, batch_size=32, n_epochs=1, policy_kwargs={"net_arch": [8]}, seed=0)
            model.learn(32)
            self._zip = self.workdir / "ppo.zip"
            model.save(self._zip)
        return self._zip


def agent_specs() -> st.SearchStrategy[dict[str, Any]]:
    """A callable's output (shape × value × action mode), a zip with an algorithm name, a damaged zip, or a module:function."""
    callables = st.fixed_dictionaries({"kind": st.just("callable"), "mode": st.sampled_from(["mu", "model"]),
                                       "shape": st.sampled_from(AGENT_SHAPES), "fill": st.sampled_from(AGENT_FILLS),
                                       "batched": st.sampled_from([None, True, False])})
    zips = st.fixed_dictionaries({"kind": st.just("zip"), "algo": st.sampled_from(AGENT_ALGOS)})
    damaged = st.fixed_dictionaries({"kind": st.just("damaged"), "damage": st.sampled_from(["truncate", "junk", "no_data", "bad_json"])})
    specs = st.fixed_dictionaries({"kind": st.just("spec"), "spec": st.sampled_from(AGENT_SPECS)})
    return st.one_of(callables, zips, damaged, specs)


def _agent_expectation(spec: dict[str, Any], n_models: int) -> tuple[str, tuple[str, ...]]:
    kind = spec["kind"]
    if kind == "zip":
        ok = isinstance(spec["algo"], str) and spec["algo"].strip().lower() == "ppo"
        return (VALID if ok else INVALID), ("algorithm", "PPO")
    if kind in ("damaged", "spec"):
        return INVALID, ()
    fill, shape = spec["fill"], spec["shape"]
    numeric = isinstance(fill, (int, float)) and fill is not None
    if not numeric or not math.isfinite(float(fill)):
        return INVALID, ("policy",)
    batched = spec["batched"]
    probe_batched = shape and shape[0] == "n"  # what the probe of a batch of 3 concludes
    as_batched = probe_batched if batched is None else batched
    if as_batched:
        good_shape = shape in (("n",), ("n", 1)) if spec["mode"] == "model" else shape in (("n",), ("n", 1))
    else:
        good_shape = shape in ((), (1,)) or (shape == ("n",) and batched is False)
        good_shape = good_shape and shape != ("n",)  # a single observation's answer of batch shape is ambiguous
    if spec["mode"] == "model":
        ok = good_shape and float(fill) == int(float(fill)) and 0 <= float(fill) < n_models
    else:
        ok = good_shape
    return (VALID if ok else EITHER if batched is False and shape == ("n",) else INVALID), ("policy",)


def run_agent(ctx: AgentContext, spec: dict[str, Any]) -> Outcome:
    """One evaluate_policy probe (or load_callable for a module:function)."""
    from agents.evaluation.any_agent import evaluate_policy, load_callable

    expect, names = _agent_expectation(spec, 11)
    kind = spec["kind"]
    if kind == "spec":
        return judge("evaluate_policy", f"spec {spec['spec']!r}", lambda: load_callable(spec["spec"]), expect=INVALID,
                     names=("--policy",))
    if kind == "zip":
        return judge("evaluate_policy", f"zip algo={spec['algo']!r}",
                     lambda: evaluate_policy(ctx.zip, AGENT_ENV, algo=spec["algo"], **AGENT_SETTINGS), expect=expect,
                     check=_agent_check("ppo"), names=names)
    if kind == "damaged":
        path = ctx.workdir / f"damaged_{spec['damage']}.zip"
        _damage_zip(ctx.zip, path, spec["damage"])
        return judge("evaluate_policy", f"damaged zip ({spec['damage']})",
                     lambda: evaluate_policy(path, AGENT_ENV, algo="PPO", **AGENT_SETTINGS), expect=INVALID)

    def policy(obs: dict[str, np.ndarray]) -> Any:
        n = next(iter(obs.values())).shape[0] if spec["batched"] is not False and np.ndim(obs["tau"]) > 1 else 1
        shape = tuple(n if d == "n" else d for d in spec["shape"])
        return np.full(shape, spec["fill"], dtype=object if not isinstance(spec["fill"], (int, float)) else float).tolist() \
            if shape else spec["fill"]

    label = f"callable mode={spec['mode']} shape={spec['shape']} fill={spec['fill']!r} batched={spec['batched']}"
    return judge("evaluate_policy", label,
                 lambda: evaluate_policy(policy, {**AGENT_ENV, "action_mode": spec["mode"]}, name="probe", batched=spec["batched"],
                                         **AGENT_SETTINGS), expect=expect, check=_agent_check("probe"), names=names)


def _agent_check(name: str) -> Callable[[Any], str | None]:
    def check(result: Any) -> str | None:
        summary = result.summary.set_index("router")
        if name not in summary.index:
            return f"no summary row for {name!r}"
        values = summary.loc[name, ["floor_compliance", "usd_per_1k", "normalized_cost"]].to_numpy(dtype=float)
        return None if np.isfinite(values).all() else f"non-finite summary {values.tolist()}"

    return check


def _damage_zip(source: Path, target: Path, damage: str) -> None:
    import zipfile

    raw = source.read_bytes()
    if damage == "truncate":
        target.write_bytes(raw[: len(raw) // 2])
    elif damage == "junk":
        target.write_bytes(b"PK\x03\x04 not really a zip")
    else:
        with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
            for item in src.namelist():
                if item == "data" and damage == "no_data":
                    continue
                dst.writestr(item, b"{not json" if item == "data" else src.read(item))


# ---------------------------------------------------------------------------- the entry points, for the benchmark
# ---------------------------------------------------------------------------- the sweep's search space (issue 10; no Ray needed)
#: (key, values as typed after ``--grid KEY=``, valid?)
SWEEP_GRID = (
    ("ppo.learning_rate", "[0.001, 0.0003]", True), ("ppo.learning_rate", "[]", False), ("ppo.learning_rate", "[abc]", False),
    ("ppo.learning_rate", "[unclosed", False), ("ppo.n_steps", "[64, 128]", True), ("ppo.n_steps", "[1.5]", False),
    ("policy_kwargs.activation_fn", "[relu, tanh]", True), ("policy_kwargs.activation_fn", "[nope]", False),
    ("ppo.learnin_rate", "[0.1]", False), ("", "[1]", False), ("ppo..x", "[1]", False), ("dual.eta", "0.2", True),
    ("env_kwargs.session_length", "[16, 32]", True), ("dual", "[1]", False),
)
#: (key, distribution as typed after ``--random KEY=``, valid?)
SWEEP_RANDOM = (
    ("dual.eta", "loguniform(0.1, 1)", True), ("dual.eta", "loguniform(0, 1)", False), ("dual.eta", "uniform(1, 0)", False),
    ("dual.eta", "normal(0, 1)", False), ("dual.eta", "uniform(a, b)", False), ("dual.eta", "uniform(nan, 1)", False),
    ("dual.eta", "uniform(0.1)", False), ("ppo.n_epochs", "randint(1, 5)", True), ("ppo.n_epochs", "randint(1.5, 5)", False),
    ("policy_kwargs.activation_fn", "choice([relu, tanh])", True), ("policy_kwargs.activation_fn", "choice([])", False),
    ("ppo.learning_rate", "uniform", False), ("ppo.bogus", "uniform(0, 1)", False),
)
SWEEP_SEEDS = (([0], True), ([0, 1, 2], True), ([], False), ([-1], False), ([0, 0], False))
SWEEP_BENCHMARKS = ((["synthetic"], True), (["sprout", "Proteus-RouterBench-v0"], True), (["nope"], False), ([], False))
SWEEP_SAMPLES = ((1, True), (3, True), (0, False), (-2, False))


def sweep_space_specs() -> st.SearchStrategy[dict[str, Any]]:
    """A sweep search space: up to two --grid and one --random options, seeds, benchmarks and a sample count."""
    return st.fixed_dictionaries({
        "grid": st.lists(st.integers(0, len(SWEEP_GRID) - 1), max_size=2),
        "random": st.lists(st.integers(0, len(SWEEP_RANDOM) - 1), max_size=1),
        "seeds": st.integers(0, len(SWEEP_SEEDS) - 1), "benchmarks": st.integers(0, len(SWEEP_BENCHMARKS) - 1),
        "samples": st.integers(0, len(SWEEP_SAMPLES) - 1)})


def run_sweep_space(ctx: Any, spec: dict[str, Any]) -> Outcome:
    """Parse and check one search space as ``proteus sweep`` does before starting Ray."""
    from agents.sweep.space import SearchSpace

    grid = [SWEEP_GRID[i] for i in spec["grid"]]
    random = [SWEEP_RANDOM[i] for i in spec["random"]]
    (seeds, seeds_ok), (benchmarks, benchmarks_ok) = SWEEP_SEEDS[spec["seeds"]], SWEEP_BENCHMARKS[spec["benchmarks"]]
    samples, samples_ok = SWEEP_SAMPLES[spec["samples"]]
    keys = [key for key, _, _ in grid + random]
    valid = (all(ok for _, _, ok in grid + random) and seeds_ok and benchmarks_ok and samples_ok and len(set(keys)) == len(keys))
    options = {"grid": [f"{k}={v}" for k, v, _ in grid], "random": [f"{k}={v}" for k, v, _ in random], "seeds": seeds,
               "benchmarks": benchmarks, "num_samples": samples}
    expected = (math.prod(len(yaml.safe_load(v)) if v.startswith("[") else 1 for _, v, _ in grid) * len(seeds) * len(benchmarks) * samples
                if valid else None)

    def call() -> Any:
        space = SearchSpace.parse(**options)
        space.check()
        return space

    def check(space: Any) -> str | None:
        return None if space.n_trials == expected else f"{space.n_trials} trials, expected {expected}"

    return judge("sweep search space", _short(options), call, expect=VALID if valid else INVALID, check=check)


@dataclasses.dataclass(frozen=True)
class EntryPoint:
    """A row group of the probes table: a strategy of specs and the runner that judges one."""

    name: str
    context: str
    strategy: Callable[[], st.SearchStrategy[Any]]
    runner: Callable[[Any, Any], Outcome]


ENTRY_POINTS: tuple[EntryPoint, ...] = (
    EntryPoint("env.reset", "env", env_reset_specs, run_env_reset),
    EntryPoint("env.step", "env", env_step_specs, run_env_step),
    EntryPoint("env constructor", "env", env_constructor_specs, run_env_constructor),
    EntryPoint("vector env", "env", vector_specs, run_vector),
    EntryPoint("loaders", "loader", loader_specs, run_loader),
    EntryPoint("router.route", "router", router_specs, run_router),
    EntryPoint("router.route_observations", "router", observation_specs, run_observations),
    EntryPoint("artifact", "artifact", artifact_specs, run_artifact),
    EntryPoint("cli", "cli", cli_specs, run_cli),
    EntryPoint("evaluate_policy", "agent", agent_specs, run_agent),
    EntryPoint("sweep search space", "env", sweep_space_specs, run_sweep_space),
)


def make_contexts(workdir: Path, router_dir: Path | None = None) -> dict[str, Any]:
    """Every context the runners need, under ``workdir`` (trains a tiny router unless ``router_dir`` is given)."""
    workdir = Path(workdir)
    router_dir = router_dir or train_tiny_router(workdir / "router")
    return {"env": EnvContext(), "loader": LoaderContext(workdir / "loader"), "router": RouterContext(router_dir),
            "artifact": ArtifactContext(router_dir, workdir / "artifacts"), "cli": CliContext(router_dir, workdir / "cli"),
            "agent": AgentContext(workdir / "agent")}


def scratch_dir(prefix: str = "proteus_probes_") -> Path:
    """A new temporary folder."""
    return Path(tempfile.mkdtemp(prefix=prefix))
