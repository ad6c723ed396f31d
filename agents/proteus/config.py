"""The typed training configuration of ``proteus train``: :class:`TrainConfig` and its sections.

The dataclasses below hold the defaults. ``agents/proteus/configs/default.yaml`` (rl-zoo style:
one block per environment id, ``default`` for any other) documents them and may override them;
``proteus train --config FILE`` and ``--set KEY=VALUE`` override them further. Every key is
checked: an unknown one (a typo such as ``tau_headrom``) is a ``ValueError`` that names the key
and the closest valid one, and a value of the wrong type is a ``ValueError`` that names the key.

    config = load_train_config("Proteus-RouterBench-v0")      # a TrainConfig
    config.ppo.learning_rate, config.dual.n_bins
    raw = load_config()                                        # the same, as a plain dict
    apply_override(raw, "dual.eta=0.2")
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Union

import yaml
from torch import nn

from agents.proteus.calibration import DEFAULT_CALIBRATION_POINTS

#: The environment id ``proteus train`` uses unless told otherwise.
DEFAULT_ENV_ID = "Proteus-Synthetic-v0"
#: The packaged YAML, relative to the ``agents.proteus`` package.
DEFAULT_CONFIG_RESOURCE = "configs/default.yaml"
#: Activation functions a config may name (``policy_kwargs.activation_fn``).
ACTIVATION_FUNCTIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


@dataclasses.dataclass
class PPOConfig:
    """Keyword arguments of SB3's :class:`~stable_baselines3.PPO` (same names and meaning).

    ``gamma`` is 0: the observation does not depend on earlier actions (each query is routed on its
    own), so future rewards are independent of the current action and γ = 0 gives the unbiased,
    lowest-variance policy gradient of this contextual-bandit-shaped CMDP.
    """

    n_steps: int = 256
    batch_size: int = 256
    n_epochs: int = 10
    learning_rate: float = 0.001
    gamma: float = 0.0
    gae_lambda: float = 1.0
    clip_range: float = 0.2
    clip_range_vf: float | None = None
    normalize_advantage: bool = True
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    device: str = "cpu"


@dataclasses.dataclass
class FeaturesExtractorConfig:
    """Keyword arguments of :class:`~agents.proteus.policies.ProteusFeaturesExtractor`."""

    hidden_dim: int = 64
    n_layers: int = 1


@dataclasses.dataclass
class PolicyConfig:
    """Constructor arguments of :class:`~agents.proteus.policies.BetaActorCriticPolicy`.

    Attributes:
        net_arch: Actor and critic MLPs after the features extractor (SB3 format).
        activation_fn: Their activation, by name (a key of :data:`ACTIVATION_FUNCTIONS`).
        ortho_init: SB3's orthogonal initialization.
        share_features_extractor: One features extractor for actor and critic.
        features_extractor_kwargs: The λ-gated query network.
        beta_epsilon: Clamp margin of the Beta log-probability.
    """

    net_arch: dict[str, list[int]] | list[int] = dataclasses.field(default_factory=lambda: {"pi": [64, 64], "vf": [64, 64]})
    activation_fn: str = "tanh"
    ortho_init: bool = True
    share_features_extractor: bool = True
    features_extractor_kwargs: FeaturesExtractorConfig = dataclasses.field(default_factory=FeaturesExtractorConfig)
    beta_epsilon: float = 1e-6

    def __post_init__(self) -> None:
        if self.activation_fn not in ACTIVATION_FUNCTIONS:
            raise ValueError(f"policy_kwargs.activation_fn must be one of {sorted(ACTIVATION_FUNCTIONS)}, got {self.activation_fn!r}.")

    def to_sb3(self) -> dict[str, Any]:
        """The ``policy_kwargs`` handed to SB3 (the activation as a class)."""
        kwargs = dataclasses.asdict(self)
        kwargs["activation_fn"] = ACTIVATION_FUNCTIONS[self.activation_fn]
        return kwargs


@dataclasses.dataclass
class DualConfig:
    """Keyword arguments of :class:`callbacks.lagrangian.LagrangianDualCallback` (same names and meaning)."""

    n_bins: int = 9
    mode: str = "per_bin"
    eta: float = 0.4
    lambda_max: float = 10.0
    lambda_init: float | str = "frontier"
    update_every: int = 1
    controller: str = "gradient"
    pid_gains: list[float] = dataclasses.field(default_factory=lambda: [0.4, 0.05, 0.1])
    pid_ema_alphas: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0])
    max_val_queries: int | None = 4000


@dataclasses.dataclass
class TrainConfig:
    """Everything ``proteus train`` needs besides the environment id, the seed and the paths.

    Attributes:
        n_timesteps: Training transitions.
        n_envs: Parallel training environments.
        vec_env: ``"dummy"`` or ``"subproc"``.
        env_kwargs: Keyword arguments of the environment (checked by the environment itself).
        ppo: PPO's hyperparameters.
        policy_kwargs: The policy's architecture.
        dual: The Lagrangian dual callback.
        checkpoint_every: Transitions between checkpoints (0: none).
        tau_headroom: Train on targets up to this much above the feasible top of the τ range as
            well (0: the env's range as is); the validation calibration picks the τ input later.
        calibration_points: Policy τ inputs measured on validation for the τ calibration map.
        torch_threads: Torch threads during training (0: torch's default).
    """

    n_timesteps: int = 300_000
    n_envs: int = 4
    vec_env: str = "dummy"
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=lambda: {
        "session_length": 100, "quality_weight": "zero", "cost_weight": "one", "reward_normalization": "one_plus_lambda",
        "train_holdout": 0.1})
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    policy_kwargs: PolicyConfig = dataclasses.field(default_factory=PolicyConfig)
    dual: DualConfig = dataclasses.field(default_factory=DualConfig)
    checkpoint_every: int = 100_000
    tau_headroom: float = 0.0
    calibration_points: int = DEFAULT_CALIBRATION_POINTS
    torch_threads: int = 1

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, source: str | None = None) -> TrainConfig:
        """Build a config from a (possibly partial) nested mapping; missing keys keep their defaults.

        Args:
            data: The mapping, e.g. one block of the YAML.
            source: Where it came from, for error messages (a file name).

        Raises:
            ValueError: On an unknown key (naming it and the closest valid key) or a value of the
                wrong type (naming the key).
        """
        try:
            return _build(cls, {} if data is None else data, "")
        except ValueError as exc:
            if source is None:
                raise
            raise ValueError(f"{source}: {exc}") from None

    @classmethod
    def coerce(cls, config: TrainConfig | Mapping[str, Any] | None) -> TrainConfig:
        """``config`` itself (copied) if it is a :class:`TrainConfig`, else :meth:`from_dict` of it."""
        if isinstance(config, TrainConfig):
            return copy.deepcopy(config)
        return cls.from_dict(config)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain nested dicts (YAML-safe)."""
        return dataclasses.asdict(self)

    def with_overrides(self, assignments: typing.Iterable[str]) -> TrainConfig:
        """A copy with ``KEY.SUBKEY=VALUE`` assignments applied (see :func:`apply_override`)."""
        data = self.to_dict()
        for assignment in assignments:
            apply_override(data, assignment)
        return TrainConfig.from_dict(data)


# ---------------------------------------------------------------------------- reading the YAML
def load_config(env_id: str = DEFAULT_ENV_ID, path: str | Path | None = None) -> dict[str, Any]:
    """The resolved config for ``env_id`` as a plain dict (every key present, defaults filled in).

    Reads the rl-zoo style YAML (the packaged default unless ``path``), picks ``env_id``'s block
    (or ``default``), checks it against :class:`TrainConfig` and returns :meth:`TrainConfig.to_dict`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not valid YAML, is not a mapping, has neither ``env_id`` nor
            ``default``, or holds an unknown key or a value of the wrong type (naming the file).
    """
    return load_train_config(env_id, path).to_dict()


def load_train_config(env_id: str = DEFAULT_ENV_ID, path: str | Path | None = None) -> TrainConfig:
    """Like :func:`load_config`, as a :class:`TrainConfig`."""
    block, source = _read_block(env_id, path)
    return TrainConfig.from_dict(block, source=source)


def _read_block(env_id: str, path: str | Path | None) -> tuple[dict[str, Any], str]:
    if path is None:
        text = resources.files("agents.proteus").joinpath(DEFAULT_CONFIG_RESOURCE).read_text()
        source = f"agents/proteus/{DEFAULT_CONFIG_RESOURCE}"
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Config file {path} does not exist.")
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"Config file {source} is not a text (UTF-8 YAML) file.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"Config file {source} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"Config file {source} must hold a mapping of environment ids to settings.")
    block = data.get(env_id, data.get("default"))
    if not isinstance(block, dict):
        raise ValueError(f"Config file {source} has no block for {env_id!r} and no 'default' block.")
    return copy.deepcopy(block), f"config file {source}"


def apply_override(config: dict[str, Any] | TrainConfig, assignment: str) -> None:
    """Apply ``KEY.SUBKEY=VALUE`` (VALUE parsed as YAML) to ``config`` in place.

    The key must name a field of :class:`TrainConfig` (or lie inside a free-form mapping such as
    ``env_kwargs``), and the value must have the field's type.

    Raises:
        ValueError: If ``assignment`` has no ``=``, names an unknown key (the message names the
            closest valid key), or gives a value of the wrong type.
    """
    if "=" not in assignment:
        raise ValueError(f"Override {assignment!r} must look like key.subkey=value.")
    key, raw = assignment.split("=", 1)
    parts = [part.strip() for part in key.strip().split(".")]
    if not all(parts):
        raise ValueError(f"Override {assignment!r} has an empty key part.")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"Override {assignment!r}: the value is not valid YAML: {exc}") from None
    annotation = _annotation_at(parts)
    if annotation is not None:
        value = _coerce(value, annotation, ".".join(parts))
        if dataclasses.is_dataclass(value):
            value = dataclasses.asdict(value)
    if isinstance(config, TrainConfig):
        data = config.to_dict()
        _set_path(data, parts)(value)
        updated = TrainConfig.from_dict(data)
        for field in dataclasses.fields(TrainConfig):
            setattr(config, field.name, getattr(updated, field.name))
        return
    _set_path(config, parts)(value)
    TrainConfig.from_dict(config)  # the whole config still valid (e.g. a known activation name)


def _set_path(config: dict[str, Any], parts: list[str]) -> typing.Callable[[Any], None]:
    target = config
    for i, part in enumerate(parts[:-1]):
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        if not isinstance(child, dict):
            raise ValueError(f"Cannot set {'.'.join(parts)}: {'.'.join(parts[: i + 1])} is not a mapping.")
        target = child

    def assign(value: Any) -> None:
        target[parts[-1]] = value

    return assign


# ---------------------------------------------------------------------------- checking
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown_key(key: str, valid: typing.Iterable[str], prefix: str) -> ValueError:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"did you mean {prefix + close[0]!r}?" if close else f"valid keys{' of ' + prefix.rstrip('.') if prefix else ''}: {', '.join(valid)}"
    return ValueError(f"Unknown config key {prefix + key!r} ({hint}).")


def _annotation_at(parts: list[str]) -> Any:
    """The type annotation of the field at ``parts``, or ``None`` inside a free-form mapping."""
    cls: Any = TrainConfig
    prefix = ""
    for i, part in enumerate(parts):
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            return None  # inside a dict-typed field: free-form
        hints = _hints(cls)
        if part not in hints:
            raise _unknown_key(part, hints, prefix)
        annotation = hints[part]
        if i == len(parts) - 1:
            return annotation
        cls = annotation
        prefix += part + "."
    return None


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        what = f"Config key {prefix.rstrip('.')!r}" if prefix else "The config"
        raise ValueError(f"{what} must be a mapping, got {data!r}.")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or key not in hints:
            raise _unknown_key(str(key), hints, prefix)
        kwargs[key] = _coerce(value, hints[key], prefix + key)
    return cls(**kwargs)


def _describe(annotation: Any) -> str:
    if annotation is type(None):
        return "null"
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(annotation))
    origin = typing.get_origin(annotation)
    if origin is not None:
        return {dict: "a mapping", list: "a list"}.get(origin, str(annotation))
    if dataclasses.is_dataclass(annotation):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping"}.get(annotation, str(annotation))


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """``value`` checked against ``annotation`` (numbers given as strings, like ``1e-3``, are parsed)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return copy.deepcopy(value)
    if origin in (Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ValueError:
                continue
        raise ValueError(f"Config key {key!r} must be {_describe(annotation)}, got {value!r}.")
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return copy.deepcopy(value)
        return _build(annotation, value, key + ".")
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        number = _number(value)
        if number is not None and float(number).is_integer():
            return int(number)
    elif annotation is float:
        number = _number(value)
        if number is not None:
            return float(number)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif origin is dict or annotation is dict:
        if isinstance(value, Mapping):
            key_type, value_type = typing.get_args(annotation) or (str, Any)
            return {k: _coerce(v, value_type, f"{key}.{k}") for k, v in value.items()}
    elif origin is list:
        if isinstance(value, (list, tuple)):
            (item_type,) = typing.get_args(annotation)
            return [_coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"Config key {key!r} must be {_describe(annotation)}, got {value!r}.")


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            return None
    return None
