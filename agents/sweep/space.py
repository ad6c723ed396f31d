"""The search space of ``proteus sweep``: config overrides × split seeds × benchmarks, checked before Ray starts.

    space = SearchSpace.parse(grid=["ppo.learning_rate=[0.001, 0.0003]"], random=["dual.eta=loguniform(0.1, 1)"],
                              seeds=[0, 1], benchmarks=["synthetic"], num_samples=4)
    space.n_trials          # 2 (grid) × 2 (seeds) × 1 (benchmark) × 4 (samples) = 16
    space.to_tune()         # Ray Tune's param_space

The keys are those of ``proteus train --set`` (dotted paths into :class:`~agents.proteus.config.TrainConfig`);
every grid value and every distribution's range is checked against the config before any trial
runs, so a typo fails at once with the key and its closest valid spelling.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from agents.proteus.config import TrainConfig, load_train_config
from proteus_env.registration import ENV_IDS

#: Random-search distributions: name -> (Ray Tune function name, number of arguments).
DISTRIBUTIONS: dict[str, tuple[str, int | None]] = {
    "uniform": ("uniform", 2),
    "loguniform": ("loguniform", 2),
    "randint": ("randint", 2),
    "choice": ("choice", 1),
}
_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*\((.*)\)\s*$", re.S)


def resolve_benchmarks(names: Sequence[str]) -> list[str]:
    """Environment ids of benchmark names (``synthetic``, ``routerbench``, ``sprout``) or ids, in order, without duplicates.

    Raises:
        ValueError: On an unknown benchmark, listing the known names and ids; on an empty list.
    """
    by_name = {str(kwargs["benchmark"]).lower(): env_id for env_id, kwargs in ENV_IDS.items()}
    ids: list[str] = []
    for name in names:
        key = str(name).strip()
        env_id = key if key in ENV_IDS else by_name.get(key.lower())
        if env_id is None:
            raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(sorted(by_name))} (or the ids {', '.join(sorted(ENV_IDS))}).")
        if env_id not in ids:
            ids.append(env_id)
    if not ids:
        raise ValueError("empty search space: no benchmark given (e.g. --benchmark synthetic).")
    return ids


def override_string(key: str, value: Any) -> str:
    """``KEY=VALUE`` as ``proteus train --set`` takes it (the value in JSON, which is YAML)."""
    return f"{key}={json.dumps(value)}"


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A random-search distribution of one key: ``uniform(a, b)``, ``loguniform(a, b)``, ``randint(a, b)`` (b excluded), ``choice([...])``."""

    name: str
    args: tuple[Any, ...]

    @classmethod
    def parse(cls, text: str, key: str) -> Distribution:
        """Parse ``name(args)``; the arguments are YAML.

        Raises:
            ValueError: Naming the key on an unknown distribution, a wrong number of arguments or a bad range.
        """
        match = _CALL.match(str(text))
        if not match:
            raise ValueError(f"--random {key}={text!r}: expected DIST(ARGS), one of " + ", ".join(f"{n}(...)" for n in DISTRIBUTIONS) + ".")
        name = match.group(1).lower()
        if name not in DISTRIBUTIONS:
            raise ValueError(f"--random {key}: unknown distribution {match.group(1)!r}; known: {', '.join(DISTRIBUTIONS)}.")
        try:
            args = yaml.safe_load(f"[{match.group(2)}]")
        except yaml.YAMLError:
            raise ValueError(f"--random {key}={text!r}: the arguments are not valid YAML.") from None
        dist = cls(name, tuple(args))
        dist.check(key)
        return dist

    def check(self, key: str) -> None:
        """Raise ``ValueError`` (naming ``key``) unless the arguments define a non-empty range."""
        _, n_args = DISTRIBUTIONS[self.name]
        if len(self.args) != n_args:
            raise ValueError(f"--random {key}: {self.name} takes {n_args} argument(s), got {len(self.args)}.")
        if self.name == "choice":
            options = self.args[0]
            if not isinstance(options, list) or not options:
                raise ValueError(f"empty search space: --random {key}=choice(...) needs a non-empty list, got {options!r}.")
            return
        low, high = self.args
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
            raise ValueError(f"--random {key}: {self.name} needs two finite numbers, got {list(self.args)}.")
        if not low < high:
            raise ValueError(f"empty search space: --random {key}={self.name}({low}, {high}) needs low < high.")
        if self.name == "loguniform" and low <= 0:
            raise ValueError(f"--random {key}: loguniform needs 0 < low, got {low}.")
        if self.name == "randint" and not (float(low).is_integer() and float(high).is_integer()):
            raise ValueError(f"--random {key}: randint needs integers, got {list(self.args)}.")

    def examples(self) -> list[Any]:
        """Values the distribution can draw, to check against the config (its ends, or every option)."""
        if self.name == "choice":
            return list(self.args[0])
        low, high = self.args
        return [int(low), int(high) - 1] if self.name == "randint" else [low, high]

    def to_tune(self, tune: Any) -> Any:
        """The Ray Tune sampler."""
        function = getattr(tune, DISTRIBUTIONS[self.name][0])
        if self.name == "randint":
            return function(int(self.args[0]), int(self.args[1]))
        return function(*self.args)

    def describe(self) -> str:
        """``name(args)`` as written."""
        return f"{self.name}({', '.join(json.dumps(a) for a in self.args)})"


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """What ``proteus sweep`` varies.

    Attributes:
        grid: Key -> the values to try (every combination, Tune's ``grid_search``).
        random: Key -> a :class:`Distribution` (``num_samples`` draws).
        seeds: Split seeds (a grid axis: every configuration on every seed).
        env_ids: Environment ids (a grid axis).
        num_samples: Draws of the random keys (repeats of the grid when there are none).
    """

    grid: dict[str, list[Any]]
    random: dict[str, Distribution]
    seeds: list[int]
    env_ids: list[str]
    num_samples: int = 1

    @classmethod
    def parse(cls, *, grid: Iterable[str] = (), random: Iterable[str] = (), seeds: Sequence[int] = (0,),
              benchmarks: Sequence[str] = ("synthetic",), num_samples: int = 1) -> SearchSpace:
        """The space of ``--grid KEY=[V1, V2]`` and ``--random KEY=DIST(ARGS)`` options (values YAML).

        Raises:
            ValueError: On a malformed option, a key given twice, an empty list or range ("empty
                search space"), a negative or repeated seed, an unknown benchmark, or ``num_samples < 1``.
        """
        grid_values: dict[str, list[Any]] = {}
        for assignment in grid:
            key, raw = _split(assignment, "--grid")
            try:
                values = yaml.safe_load(raw)
            except yaml.YAMLError:
                raise ValueError(f"--grid {assignment!r}: the values are not valid YAML (write KEY=[V1, V2]).") from None
            if not isinstance(values, list):
                values = [values]
            if not values:
                raise ValueError(f"empty search space: --grid {key} has no values (write {key}=[V1, V2]).")
            if key in grid_values:
                raise ValueError(f"--grid {key} is given twice; list every value in one option ({key}=[V1, V2]).")
            grid_values[key] = values
        dists: dict[str, Distribution] = {}
        for assignment in random:
            key, raw = _split(assignment, "--random")
            if key in grid_values or key in dists:
                raise ValueError(f"{key} is given twice (in --grid and --random, or twice in --random).")
            dists[key] = Distribution.parse(raw, key)
        if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
            raise ValueError(f"empty search space: --num-samples must be a positive integer, got {num_samples!r}.")
        seed_list = [int(s) for s in seeds]
        if not seed_list:
            raise ValueError("empty search space: no split seed given (e.g. --seeds 0 1 2).")
        if any(s < 0 for s in seed_list) or len(set(seed_list)) != len(seed_list):
            raise ValueError(f"--seeds must be distinct non-negative integers, got {seed_list}.")
        return cls(grid_values, dists, seed_list, resolve_benchmarks(benchmarks), int(num_samples))

    @property
    def keys(self) -> list[str]:
        """The varied config keys, grid first."""
        return [*self.grid, *self.random]

    @property
    def n_trials(self) -> int:
        """Trials the sweep runs: grid combinations × seeds × benchmarks × samples."""
        return math.prod(len(v) for v in self.grid.values()) * len(self.seeds) * len(self.env_ids) * self.num_samples

    def check(self, base_overrides: Sequence[str] = (), config_path: str | None = None) -> None:
        """Apply every grid value and every distribution's example values to each benchmark's config.

        Raises:
            ValueError: Naming the option, e.g. an unknown key with its closest valid spelling, or a
                value of the wrong type.
        """
        for env_id in self.env_ids:
            base = load_train_config(env_id, config_path).with_overrides(base_overrides)
            for key, values in self.grid.items():
                for value in values:
                    _check(base, key, value, "--grid")
            for key, dist in self.random.items():
                for value in dist.examples():
                    _check(base, key, value, "--random")

    def to_tune(self, tune: Any) -> dict[str, Any]:
        """Ray Tune's ``param_space``: ``overrides`` (one entry per key), ``seed`` and ``env_id``."""
        overrides: dict[str, Any] = {key: tune.grid_search(list(values)) for key, values in self.grid.items()}
        overrides.update({key: dist.to_tune(tune) for key, dist in self.random.items()})
        return {"overrides": overrides, "seed": tune.grid_search(list(self.seeds)), "env_id": tune.grid_search(list(self.env_ids))}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (``sweep.json``)."""
        return {"grid": self.grid, "random": {k: d.describe() for k, d in self.random.items()}, "seeds": self.seeds,
                "env_ids": self.env_ids, "num_samples": self.num_samples}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Inverse of :meth:`to_dict`."""
        return cls.parse(grid=[override_string(k, v) for k, v in dict(data.get("grid", {})).items()],
                         random=[f"{k}={v}" for k, v in dict(data.get("random", {})).items()],
                         seeds=list(data.get("seeds", [0])), benchmarks=list(data.get("env_ids", ["synthetic"])),
                         num_samples=int(data.get("num_samples", 1)))


def _split(assignment: str, flag: str) -> tuple[str, str]:
    if "=" not in str(assignment):
        raise ValueError(f"{flag} {assignment!r} must look like KEY=VALUES, e.g. ppo.learning_rate=[0.001, 0.0003].")
    key, raw = str(assignment).split("=", 1)
    key = key.strip()
    if not key or not all(part.strip() for part in key.split(".")):
        raise ValueError(f"{flag} {assignment!r} has an empty key.")
    return key, raw


def _check(base: TrainConfig, key: str, value: Any, flag: str) -> None:
    try:
        base.with_overrides([override_string(key, value)])
    except ValueError as exc:
        raise ValueError(f"{flag} {key}: {exc}") from None
