"""The files of a trained PROTEUS router, written atomically and read without running code.

An artifact is one directory::

    manifest.json              format version, package version, benchmark identity, sha256 of every file below
    policy.pt                  the policy's weights (``torch.save`` of its ``state_dict``; read with ``weights_only=True``)
    policy.json                the policy's constructor arguments (spaces, architecture) as JSON
    lambda_table.json          λ per τ-bin and the bin edges (the dual state)
    calibration.json           validation accuracy of the deterministic policy per τ input
    routing_head.npz / .json   the routing head (arrays without pickle, settings)
    benchmark.json             the benchmark's identity (name, fingerprint, sizes, env kwargs)
    config.yaml                the resolved training configuration
    summary.json               timesteps, wall time, final validation figures
    encoder/                   the fitted text encoder (benchmarks with prompts only)
    model.zip                  SB3's model, optimizer state included: read only by ``proteus train --resume``
    checkpoints/               periodic SB3 checkpoints and their ``checksums.json`` (not part of the artifact)

:func:`write_artifact` stages every file in a temporary directory next to the target, writes the
manifest last and renames the directory into place. :func:`read_artifact` checks that every file
the manifest lists is present and unchanged, parses the JSON and checks the values it reads; a
:class:`~agents.proteus.router.ProteusRouter` is then rebuilt from ``policy.json`` and
``policy.pt``. Nothing is unpickled: ``model.zip`` (whose ``data`` entry SB3 deserializes with
cloudpickle) is opened only by :meth:`Artifact.verified_model_zip` for ``--resume``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch as th
import yaml
from gymnasium import spaces
from stable_baselines3.common.callbacks import CheckpointCallback
from torch import nn

from agents.proteus.calibration import TauCalibration
from agents.proteus.config import ACTIVATION_FUNCTIONS
from agents.proteus.policies import BetaActorCriticPolicy, ProteusFeaturesExtractor, check_unit_box
from proteus_env.benchmark import parse_model_names
from proteus_env.encoders import Encoder, load_encoder
from proteus_env.routing_head import RoutingHead

#: Identifies the files of this module; ``format_version`` changes when the layout does.
FORMAT = "proteus-router"
FORMAT_VERSION = 1
CHECKPOINT_FORMAT = "proteus-checkpoints"
#: The checksum record of a checkpoint directory.
CHECKPOINT_RECORD = "checksums.json"

MANIFEST = "manifest.json"
POLICY_WEIGHTS = "policy.pt"
POLICY_SPEC = "policy.json"
LAMBDA_TABLE = "lambda_table.json"
CALIBRATION = "calibration.json"
HEAD_ARRAYS = "routing_head.npz"
HEAD_META = "routing_head.json"
BENCHMARK = "benchmark.json"
CONFIG = "config.yaml"
SUMMARY = "summary.json"
MODEL_ZIP = "model.zip"
ENCODER_DIR = "encoder"
CHECKPOINTS_DIR = "checkpoints"
#: Files every artifact holds (and its manifest lists).
REQUIRED_FILES: tuple[str, ...] = (POLICY_WEIGHTS, POLICY_SPEC, LAMBDA_TABLE, CALIBRATION, HEAD_ARRAYS, HEAD_META, BENCHMARK)
#: Top-level names that belong to an artifact (replaced as a whole when a new one is written).
ARTIFACT_ENTRIES: frozenset[str] = frozenset({MANIFEST, *REQUIRED_FILES, CONFIG, SUMMARY, MODEL_ZIP, ENCODER_DIR})

#: Classes ``policy.json`` may name, by name: nothing else can be instantiated from it.
_ACTIVATIONS: dict[str, type[nn.Module]] = {cls.__name__: cls for cls in ACTIVATION_FUNCTIONS.values()}
_FEATURE_EXTRACTORS: dict[str, type[nn.Module]] = {"ProteusFeaturesExtractor": ProteusFeaturesExtractor}
_OPTIMIZERS: dict[str, type[th.optim.Optimizer]] = {"Adam": th.optim.Adam, "AdamW": th.optim.AdamW, "SGD": th.optim.SGD,
                                                    "RMSprop": th.optim.RMSprop}
_POLICY_KWARGS = ("net_arch", "activation_fn", "ortho_init", "features_extractor_class", "features_extractor_kwargs",
                  "share_features_extractor", "normalize_images", "optimizer_class", "optimizer_kwargs", "beta_epsilon")
_DTYPES = ("float32", "float64")
#: Bounds on the network described by ``policy.json``: widths and depths beyond them are refused
#: before anything is allocated (a typo or a crafted file must not ask for terabytes).
MAX_LAYER_WIDTH = 4096
MAX_LAYERS = 16
_SHA256 = re.compile(r"[0-9a-f]{64}")


# ---------------------------------------------------------------------------- small helpers
def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_version() -> str:
    """The installed version of the ``proteus-routing-gym`` distribution (``"unknown"`` if not installed)."""
    try:
        return metadata.version("proteus-routing-gym")
    except metadata.PackageNotFoundError:
        return "unknown"


def _parse_json(data: bytes, source: Path) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{source} is not valid JSON: {exc}") from None


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, default=str))


def _mapping(value: Any, what: str, source: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{source}: {what} must be a JSON object, got {type(value).__name__}.")
    return value


def _finite_array(value: Any, what: str, source: Path) -> np.ndarray:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{source}: {what} must be a JSON list of numbers, got {value!r}.")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: {what} must be a list of numbers, got {value!r}.") from None
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        raise ValueError(f"{source}: {what} must be a non-empty list of finite numbers, got {value!r}.")
    return array


def benchmark_identity(benchmark: Any, split_seed: int) -> dict[str, Any]:
    """The manifest's benchmark identity of a :class:`~proteus_env.Benchmark` split with ``split_seed``.

    ``models`` are the models the router routes between; ``dropped_models`` those of the data left
    out by a model subset (``models=`` / ``exclude_models=``), empty when every model was kept.
    """
    return {"name": benchmark.name, "fingerprint": benchmark.fingerprint(), "split_seed": int(split_seed),
            "models": list(benchmark.models), "embedding_dim": int(benchmark.embedding_dim),
            "dropped_models": [str(m) for m in benchmark.metadata.get("dropped_models") or []]}


def check_model_subset(trained: Sequence[str], models: Sequence[str] | str | None = None,
                       exclude_models: Sequence[str] | str | None = None, *, router: str | Path = "the router") -> None:
    """Refuse a requested model subset that is not the one a router was trained on.

    A router routes between the models it was trained on; ``models`` / ``exclude_models`` given
    with a router may only restate that subset (in any order).

    Args:
        trained: The router's models (:attr:`Artifact.models`).
        models: The requested models, or ``None``.
        exclude_models: The requested exclusions, or ``None``.
        router: The artifact, for the message.

    Raises:
        ValueError: Naming the request, the artifact and the models it was trained on.
    """
    keep, drop = parse_model_names(models, "models"), parse_model_names(exclude_models, "exclude_models")
    if keep is None and drop is None:
        return
    wanted = [m for m in (keep if keep is not None else trained) if m not in (drop or ())]
    if set(wanted) != set(trained):
        raise ValueError(f"The model subset asked for (models={list(keep) if keep else None}, exclude_models="
                         f"{list(drop) if drop else None}) conflicts with router artifact {router}, which was trained on the models "
                         f"{list(trained)}: a router routes between the models it was trained on. Drop --models / --exclude-models "
                         f"(the artifact's subset is used), or train a router on that subset.")


def same_data(recorded: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    """Whether two benchmark identities name the same data and split (name, fingerprint, split seed)."""
    return all(recorded.get(key) == expected.get(key) for key in ("name", "fingerprint", "split_seed"))


# ---------------------------------------------------------------------------- spaces and the policy as JSON
def _bound_to_json(values: np.ndarray) -> list[float | str]:
    if np.isnan(values).any():
        raise ValueError("A Box bound is NaN; it cannot be stored.")
    return [v if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in values.astype(np.float64).reshape(-1).tolist()]


def _bound_from_json(values: Any, shape: tuple[int, ...], dtype: str, where: str) -> np.ndarray:
    if not isinstance(values, list) or len(values) != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"{where} must be a list of {int(np.prod(shape))} numbers.")
    out = []
    for v in values:
        if v in ("inf", "-inf"):
            out.append(float(v))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
        else:
            raise ValueError(f"{where} holds {v!r}, not a number.")
    return np.asarray(out, dtype=dtype).reshape(shape)


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A ``Box`` or a ``Dict`` of ``Box`` as JSON (bounds flattened; ±inf as strings).

    Raises:
        ValueError: For any other space, or a Box with another dtype than float32/float64.
    """
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {key: space_to_json(sub) for key, sub in space.spaces.items()}}
    if isinstance(space, spaces.Box):
        dtype = np.dtype(space.dtype).name
        if dtype not in _DTYPES:
            raise ValueError(f"Cannot store a Box of dtype {dtype} (only {_DTYPES}).")
        return {"type": "Box", "shape": list(space.shape), "dtype": dtype,
                "low": _bound_to_json(space.low), "high": _bound_to_json(space.high)}
    raise ValueError(f"Cannot store a {type(space).__name__} space as JSON (Box or Dict of Box only).")


def space_from_json(data: Any, where: str = "space") -> spaces.Space:
    """Rebuild a space written by :func:`space_to_json`.

    Raises:
        ValueError: If ``data`` is not such a space, naming ``where``.
    """
    if not isinstance(data, dict) or data.get("type") not in ("Box", "Dict"):
        raise ValueError(f"{where} must be a JSON object with type 'Box' or 'Dict'.")
    if data["type"] == "Dict":
        entries = data.get("spaces")
        if not isinstance(entries, dict) or not entries:
            raise ValueError(f"{where}.spaces must be a non-empty JSON object.")
        return spaces.Dict({str(key): space_from_json(sub, f"{where}.{key}") for key, sub in entries.items()})
    shape = data.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise ValueError(f"{where}.shape must be a list of positive integers, got {shape!r}.")
    dtype = data.get("dtype")
    if dtype not in _DTYPES:
        raise ValueError(f"{where}.dtype must be one of {_DTYPES}, got {dtype!r}.")
    low = _bound_from_json(data.get("low"), tuple(shape), dtype, f"{where}.low")
    high = _bound_from_json(data.get("high"), tuple(shape), dtype, f"{where}.high")
    if not (low <= high).all():
        raise ValueError(f"{where}: low must not exceed high.")
    return spaces.Box(low=low, high=high, shape=tuple(shape), dtype=np.dtype(dtype))


def _class_name(cls: Any, allowed: Mapping[str, Any], what: str) -> str | None:
    if cls is None:
        return None
    for name, candidate in allowed.items():
        if cls is candidate:
            return name
    raise ValueError(f"Cannot store {what} {getattr(cls, '__name__', cls)!r} in policy.json (known: {sorted(allowed)}).")


def _jsonable_kwargs(kwargs: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (kwargs or {}).items():
        if isinstance(value, type) and issubclass(value, nn.Module):
            value = _class_name(value, _ACTIVATIONS, "activation")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(f"Cannot store {what}[{key!r}] = {value!r} in policy.json.") from None
        out[key] = value
    return out


def policy_spec(policy: BetaActorCriticPolicy) -> dict[str, Any]:
    """The JSON of ``policy.json``: what :func:`build_policy` needs to rebuild ``policy``'s network.

    Raises:
        ValueError: If the policy uses a class or argument that cannot be named in JSON.
    """
    if type(policy) is not BetaActorCriticPolicy:
        raise ValueError(f"Only BetaActorCriticPolicy can be stored, got {type(policy).__name__}.")
    params = policy._get_constructor_parameters()
    kwargs = {
        "net_arch": params["net_arch"],
        "activation_fn": _class_name(params["activation_fn"], _ACTIVATIONS, "activation"),
        "ortho_init": bool(params["ortho_init"]),
        "features_extractor_class": _class_name(params["features_extractor_class"], _FEATURE_EXTRACTORS, "features extractor"),
        "features_extractor_kwargs": _jsonable_kwargs(params["features_extractor_kwargs"], "features_extractor_kwargs"),
        "share_features_extractor": bool(policy.share_features_extractor),
        "normalize_images": bool(params["normalize_images"]),
        "optimizer_class": _class_name(params["optimizer_class"], _OPTIMIZERS, "optimizer"),
        "optimizer_kwargs": _jsonable_kwargs(params["optimizer_kwargs"], "optimizer_kwargs"),
        "beta_epsilon": float(params["beta_epsilon"]),
    }
    return {"policy_class": "BetaActorCriticPolicy", "observation_space": space_to_json(policy.observation_space),
            "action_space": space_to_json(policy.action_space), "kwargs": kwargs}


def check_policy_spec(spec: Any, source: Path) -> dict[str, Any]:
    """Check the structure of ``policy.json`` (the spaces and the known keyword arguments).

    Raises:
        ValueError: Naming ``source`` and what is wrong.
    """
    spec = _mapping(spec, "the policy spec", source)
    if spec.get("policy_class") != "BetaActorCriticPolicy":
        raise ValueError(f"{source}: policy_class must be 'BetaActorCriticPolicy', got {spec.get('policy_class')!r}.")
    try:
        observation_space = space_from_json(spec.get("observation_space"), "observation_space")
        action_space = space_from_json(spec.get("action_space"), "action_space")
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    if not isinstance(observation_space, spaces.Dict) or not {"p_hat", "cost_hat", "tau", "lambda"} <= set(observation_space.spaces):
        raise ValueError(f"{source}: observation_space must be a Dict with p_hat, cost_hat, tau and lambda.")
    try:
        check_unit_box(action_space)
    except ValueError as exc:
        raise ValueError(f"{source}: action_space: {exc}") from None
    kwargs = _mapping(spec.get("kwargs", {}), "kwargs", source)
    unknown = sorted(set(kwargs) - set(_POLICY_KWARGS))
    if unknown:
        raise ValueError(f"{source}: unknown policy arguments {unknown} (known: {list(_POLICY_KWARGS)}).")
    for key, allowed in (("activation_fn", _ACTIVATIONS), ("features_extractor_class", _FEATURE_EXTRACTORS),
                         ("optimizer_class", _OPTIMIZERS)):
        if kwargs.get(key) is not None and kwargs[key] not in allowed:
            raise ValueError(f"{source}: {key} must be one of {sorted(allowed)}, got {kwargs[key]!r}.")
    extractor_kwargs = _mapping(kwargs.get("features_extractor_kwargs") or {}, "kwargs.features_extractor_kwargs", source)
    activation = extractor_kwargs.get("activation_fn")
    if activation is not None and activation not in _ACTIVATIONS:
        raise ValueError(f"{source}: features_extractor_kwargs.activation_fn must be one of {sorted(_ACTIVATIONS)}, got {activation!r}.")
    _check_network_size(kwargs.get("net_arch"), extractor_kwargs, source)
    return spec


def _check_network_size(net_arch: Any, extractor_kwargs: Mapping[str, Any], source: Path) -> None:
    """Refuse layer widths and depths outside [1, MAX_LAYER_WIDTH] and [0, MAX_LAYERS] before the network is built."""
    def width(value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LAYER_WIDTH:
            raise ValueError(f"{source}: {where} must be an integer in [1, {MAX_LAYER_WIDTH}], got {value!r}.")

    def layers(value: Any, where: str) -> None:
        if not isinstance(value, list) or len(value) > MAX_LAYERS:
            raise ValueError(f"{source}: {where} must be a list of at most {MAX_LAYERS} layer widths, got {value!r}.")
        for i, item in enumerate(value):
            width(item, f"{where}[{i}]")

    if net_arch is not None:
        if isinstance(net_arch, dict):
            unknown = sorted(set(net_arch) - {"pi", "vf"})
            if unknown:
                raise ValueError(f"{source}: kwargs.net_arch has unknown keys {unknown} (known: ['pi', 'vf']).")
            for key, value in net_arch.items():
                layers(value, f"kwargs.net_arch.{key}")
        else:
            layers(net_arch, "kwargs.net_arch")
    if "hidden_dim" in extractor_kwargs:
        width(extractor_kwargs["hidden_dim"], "kwargs.features_extractor_kwargs.hidden_dim")
    n_layers = extractor_kwargs.get("n_layers", 1)
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 0 <= n_layers <= MAX_LAYERS:
        raise ValueError(f"{source}: kwargs.features_extractor_kwargs.n_layers must be an integer in [0, {MAX_LAYERS}], got {n_layers!r}.")


def build_policy(spec: Mapping[str, Any], *, device: str | th.device = "cpu", source: Path | str = POLICY_SPEC) -> BetaActorCriticPolicy:
    """A fresh :class:`BetaActorCriticPolicy` (untrained weights) from :func:`policy_spec`'s JSON.

    Raises:
        ValueError: If the spec is malformed or the policy rejects its arguments, naming ``source``.
    """
    source = Path(source)
    spec = check_policy_spec(dict(spec), source)
    kwargs = dict(spec.get("kwargs", {}))
    for key, allowed in (("activation_fn", _ACTIVATIONS), ("features_extractor_class", _FEATURE_EXTRACTORS),
                         ("optimizer_class", _OPTIMIZERS)):
        if kwargs.get(key) is not None:
            kwargs[key] = allowed[kwargs[key]]
    extractor_kwargs = dict(kwargs.get("features_extractor_kwargs") or {})
    if extractor_kwargs.get("activation_fn") is not None:
        extractor_kwargs["activation_fn"] = _ACTIVATIONS[extractor_kwargs["activation_fn"]]
    kwargs["features_extractor_kwargs"] = extractor_kwargs
    try:
        policy = BetaActorCriticPolicy(space_from_json(spec["observation_space"]), space_from_json(spec["action_space"]),
                                       lambda _: 0.0, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: cannot build the policy: {exc}") from None
    return policy.to(device)


def load_policy_weights(policy: BetaActorCriticPolicy, data: bytes, source: Path | str = POLICY_WEIGHTS) -> None:
    """Load a ``state_dict`` saved with ``torch.save`` into ``policy`` (``weights_only=True``: tensors, no code).

    Raises:
        ValueError: If the bytes are not such a state dict or do not fit the network, naming ``source``.
    """
    try:
        state = th.load(io.BytesIO(data), map_location=policy.device, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        raise ValueError(f"{source} is not a readable weights-only state dict: {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(v, th.Tensor) for v in state.values()):
        raise ValueError(f"{source} must hold a state dict of tensors.")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(th.isfinite(tensor).all()):
            raise ValueError(f"{source}: weight {name!r} holds NaN or infinite values (the training diverged); retrain.")
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{source} does not fit the network of policy.json: {exc}") from None
    policy.set_training_mode(False)


# ---------------------------------------------------------------------------- writing
def write_artifact(
    path: str | Path,
    *,
    model: Any,
    lambda_state: Mapping[str, Any],
    head: RoutingHead,
    calibration: TauCalibration,
    benchmark: Mapping[str, Any],
    identity: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
    encoder: Encoder | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a trained router's artifact to ``path`` atomically.

    Every file is written into a temporary directory next to ``path``, the manifest last, and the
    directory is then renamed into place. An existing artifact at ``path`` is replaced only with
    ``overwrite=True``; other entries of an existing directory (``checkpoints/``, TensorBoard
    logs, ...) are kept.

    Args:
        path: The artifact directory.
        model: The trained SB3 model (its policy must be a :class:`BetaActorCriticPolicy`).
        lambda_state: The dual state (``LagrangianDualCallback.state()``).
        head: The routing head the policy was trained with.
        calibration: The validation τ calibration.
        benchmark: The manifest's benchmark identity (:func:`benchmark_identity`).
        identity: The content of ``benchmark.json`` (name, fingerprint, sizes, env kwargs).
        config: The resolved training configuration (``config.yaml``).
        summary: Training figures (``summary.json``).
        encoder: The benchmark's fitted text encoder, if it has one.
        overwrite: Replace an existing artifact at ``path``.

    Returns:
        The artifact directory (absolute).

    Raises:
        ValueError: If ``path`` holds an artifact and ``overwrite`` is false, or is (a parent of)
            the working directory.
        NotADirectoryError: If ``path`` exists and is not a directory.
    """
    target = Path(path).resolve()
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"Artifact path {target} exists and is not a directory.")
    if Path.cwd().resolve().is_relative_to(target):
        raise ValueError(f"Artifact path {target} is the working directory or one of its parents: choose a directory of its own.")
    if target.is_dir() and not overwrite and any((target / name).exists() for name in ARTIFACT_ENTRIES):
        raise ValueError(f"{target} already holds a router artifact; pass overwrite=True to replace it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        th.save(model.policy.state_dict(), stage / POLICY_WEIGHTS)
        _write_json(stage / POLICY_SPEC, policy_spec(model.policy))
        model.save(stage / MODEL_ZIP)
        _write_json(stage / LAMBDA_TABLE, dict(lambda_state))
        head.save(stage)
        calibration.save(stage / CALIBRATION)
        _write_json(stage / BENCHMARK, dict(identity))
        if config is not None:
            (stage / CONFIG).write_text(yaml.safe_dump(dict(config), sort_keys=False))
        if summary is not None:
            _write_json(stage / SUMMARY, dict(summary))
        if encoder is not None:
            encoder.save(stage / ENCODER_DIR)
        files = {path.relative_to(stage).as_posix(): sha256_file(path) for path in sorted(stage.rglob("*")) if path.is_file()}
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": package_version(),
                    "benchmark": dict(benchmark), "files": files}
        _write_json(stage / MANIFEST, manifest)
        _publish(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return target


def _publish(stage: Path, target: Path) -> None:
    """Rename ``stage`` to ``target``; keep the entries of an old ``target`` that are not artifact files."""
    if not target.exists():
        os.replace(stage, target)
        return
    backup = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
    os.replace(target, backup)
    os.replace(stage, target)
    old_entries = set(ARTIFACT_ENTRIES)
    try:
        old_manifest = json.loads((backup / MANIFEST).read_text())
        old_entries |= {PurePosixPath(name).parts[0] for name in old_manifest.get("files", {})}
    except (OSError, ValueError, AttributeError, TypeError, IndexError):
        pass
    for entry in backup.iterdir():
        if entry.name not in old_entries and not (target / entry.name).exists():
            os.replace(entry, target / entry.name)
    shutil.rmtree(backup, ignore_errors=True)


# ---------------------------------------------------------------------------- reading
@dataclasses.dataclass(frozen=True)
class Artifact:
    """A verified artifact directory: every listed file present and unchanged, its values checked.

    Attributes:
        path: The directory.
        manifest: ``manifest.json``.
        benchmark: The manifest's benchmark identity (name, fingerprint, split_seed, models, embedding_dim).
        identity: ``benchmark.json`` (name, fingerprint, sizes, metadata, env kwargs, τ range).
        policy_spec: ``policy.json``.
        lambda_state: ``lambda_table.json`` (``lambdas`` and ``edges`` checked).
        calibration: ``calibration.json``.
        head: The routing head.
        config: ``config.yaml`` (``None`` if the artifact has none).
        summary: ``summary.json`` (``None`` if the artifact has none).
    """

    path: Path
    manifest: dict[str, Any]
    benchmark: dict[str, Any]
    identity: dict[str, Any]
    policy_spec: dict[str, Any]
    lambda_state: dict[str, Any]
    calibration: TauCalibration
    head: RoutingHead
    config: dict[str, Any] | None
    summary: dict[str, Any] | None

    @property
    def files(self) -> dict[str, str]:
        """Relative path -> sha256 of every file of the artifact."""
        return dict(self.manifest["files"])

    @property
    def split_seed(self) -> int:
        """The split seed the router was trained on."""
        return int(self.benchmark["split_seed"])

    @property
    def models(self) -> list[str]:
        """The model names, in the routing head's order."""
        return list(self.benchmark["models"])

    @property
    def dropped_models(self) -> list[str]:
        """The data's models left out by the training run's model subset (empty: every model was used)."""
        return list(self.benchmark.get("dropped_models") or [])

    def read_verified(self, name: str) -> bytes:
        """The bytes of one listed file, checked against the manifest once more.

        Raises:
            FileNotFoundError: If the manifest does not list it or it is gone.
            ValueError: If its checksum no longer matches.
        """
        return _read_verified(self.path, name, self.manifest["files"])

    def load_policy(self, device: str | th.device = "cpu") -> BetaActorCriticPolicy:
        """The trained policy, rebuilt from ``policy.json`` and ``policy.pt`` (in evaluation mode)."""
        policy = build_policy(self.policy_spec, device=device, source=self.path / POLICY_SPEC)
        load_policy_weights(policy, self.read_verified(POLICY_WEIGHTS), self.path / POLICY_WEIGHTS)
        return policy

    def load_encoder(self) -> Encoder | None:
        """The benchmark's fitted text encoder, or ``None`` when the artifact has none."""
        if f"{ENCODER_DIR}/encoder.json" not in self.manifest["files"]:
            return None
        for name in self.manifest["files"]:
            if name.startswith(f"{ENCODER_DIR}/"):
                self.read_verified(name)
        try:
            return load_encoder(self.path / ENCODER_DIR)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise ValueError(f"{self.path / ENCODER_DIR}: cannot load the text encoder: {exc}") from None

    def verified_model_zip(self) -> Path:
        """The path of ``model.zip`` after checking its checksum (for ``proteus train --resume``).

        Loading it with SB3 unpickles its ``data`` entry: only resume from artifacts you trust.

        Raises:
            FileNotFoundError: If the artifact has no ``model.zip``.
            ValueError: If its checksum does not match the manifest.
        """
        if MODEL_ZIP not in self.manifest["files"]:
            raise FileNotFoundError(f"{self.path / MODEL_ZIP} is missing: this artifact holds no SB3 model to resume from.")
        self.read_verified(MODEL_ZIP)
        return self.path / MODEL_ZIP


def is_artifact(path: str | Path) -> bool:
    """Whether ``path`` is a directory with an artifact manifest (not whether it is intact: see :func:`read_artifact`)."""
    return (Path(path) / MANIFEST).is_file()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check ``manifest.json`` of the artifact at ``path`` (the files themselves are not checked).

    Raises:
        FileNotFoundError: If ``path`` or its manifest does not exist.
        ValueError: If the manifest is not valid JSON or not a manifest of this format.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"Router artifact {path} does not exist or is not a directory.")
    source = path / MANIFEST
    if not source.is_file():
        legacy = " (it holds a model.zip from before manifests: retrain it; pickled models are never loaded)" if (path / MODEL_ZIP).is_file() else ""
        raise FileNotFoundError(f"{source} is missing: {path} is not a `proteus train` artifact{legacy}.")
    manifest = _mapping(_parse_json(source.read_bytes(), source), "the manifest", source)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{source}: format must be {FORMAT!r}, got {manifest.get('format')!r}.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{source}: format_version must be a positive integer, got {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(f"{source}: format_version {version} is newer than this package reads ({FORMAT_VERSION}); upgrade proteus.")
    files = _mapping(manifest.get("files"), "files", source)
    for name, digest in files.items():
        parts = PurePosixPath(name).parts
        if (not name or name.startswith("/") or "\\" in name or ".." in parts or name == MANIFEST
                or parts[0] == CHECKPOINTS_DIR or not isinstance(digest, str) or not _SHA256.fullmatch(digest)):
            raise ValueError(f"{source}: bad file entry {name!r}: {digest!r}.")
    for name in REQUIRED_FILES:
        if name not in files:
            raise ValueError(f"{source} does not list {name}: the artifact is incomplete.")
    benchmark = _mapping(manifest.get("benchmark"), "benchmark", source)
    checks = {"name": lambda v: isinstance(v, str) and v, "fingerprint": lambda v: isinstance(v, str) and v,
              "split_seed": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "models": lambda v: isinstance(v, list) and v and all(isinstance(m, str) for m in v) and len(set(v)) == len(v),
              "embedding_dim": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1}
    for key, check in checks.items():
        if not check(benchmark.get(key)):
            raise ValueError(f"{source}: benchmark.{key} is missing or invalid ({benchmark.get(key)!r}).")
    dropped = benchmark.get("dropped_models", [])
    if not (isinstance(dropped, list) and all(isinstance(m, str) for m in dropped) and not set(dropped) & set(benchmark["models"])):
        raise ValueError(f"{source}: benchmark.dropped_models must be a list of model names not among benchmark.models, got {dropped!r}.")
    return manifest


def _read_verified(root: Path, name: str, files: Mapping[str, str]) -> bytes:
    if name not in files:
        raise FileNotFoundError(f"{root / name} is not listed in {root / MANIFEST}.")
    path = root / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (listed in {root / MANIFEST}).")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != files[name]:
        raise ValueError(f"{path} does not match its checksum in {root / MANIFEST}: the file was modified or corrupted.")
    return data


def read_artifact(path: str | Path) -> Artifact:
    """Read and verify an artifact directory written by :func:`write_artifact`.

    Checks, in order: the manifest; that every file it lists is present and matches its sha256;
    that the JSON files parse; and the values read: λ finite and within [0, λ_max] of the
    policy's observation space, λ-bin edges finite and strictly increasing, the calibration's τ
    inputs in [0, 1] and increasing, and the same model list in the manifest, the routing head,
    ``benchmark.json`` and the policy's observation space. No file is unpickled.

    Raises:
        FileNotFoundError: If the directory, its manifest or a listed file is missing (naming it).
        ValueError: If a file was modified (checksum), does not parse, or holds a bad value,
            naming the file.
    """
    root = Path(path)
    manifest = read_manifest(root)
    files = manifest["files"]
    contents = {name: _read_verified(root, name, files) for name in files}
    benchmark = manifest["benchmark"]
    models, k = list(benchmark["models"]), len(benchmark["models"])

    spec = check_policy_spec(_parse_json(contents[POLICY_SPEC], root / POLICY_SPEC), root / POLICY_SPEC)
    observation = space_from_json(spec["observation_space"])
    for key in ("p_hat", "cost_hat"):
        if observation[key].shape != (k,):
            raise ValueError(f"{root / POLICY_SPEC}: observation_space.{key} has shape {observation[key].shape}; "
                             f"the manifest lists {k} models.")
    if "query" in observation.spaces and observation["query"].shape != (benchmark["embedding_dim"],):
        raise ValueError(f"{root / POLICY_SPEC}: observation_space.query has shape {observation['query'].shape}; "
                         f"the embeddings have {benchmark['embedding_dim']} columns.")
    for key in ("p_hat", "cost_hat", "tau"):
        box = observation[key]
        if not (np.all(box.low == 0.0) and np.all(box.high == 1.0)):
            raise ValueError(f"{root / POLICY_SPEC}: observation_space.{key} must be the box [0, 1], got [{box.low.min()}, {box.high.max()}].")
    lambda_max = float(np.asarray(observation["lambda"].high).reshape(-1)[0])
    recorded_env = _mapping_or_empty(_mapping_or_empty(_parse_json(contents[BENCHMARK], root / BENCHMARK)).get("env_kwargs"))
    recorded_max = recorded_env.get("lambda_max")
    differs = (isinstance(recorded_max, (int, float)) and not isinstance(recorded_max, bool)
               and not math.isclose(lambda_max, recorded_max, rel_tol=1e-6, abs_tol=1e-9))
    if not (math.isfinite(lambda_max) and lambda_max > 0) or differs:
        expected = "" if recorded_max is None else f" (benchmark.json records lambda_max={recorded_max!r})"
        raise ValueError(f"{root / POLICY_SPEC}: observation_space.lambda must be bounded by a finite lambda_max > 0{expected}, "
                         f"got high={lambda_max}.")

    source = root / LAMBDA_TABLE
    state = _mapping(_parse_json(contents[LAMBDA_TABLE], source), "the dual state", source)
    lambdas = _finite_array(state.get("lambdas"), "lambdas", source)
    if (lambdas < 0).any() or (lambdas > lambda_max).any():
        raise ValueError(f"{source}: every λ must lie in [0, {lambda_max:g}] (the policy's lambda_max), got {lambdas.tolist()}.")
    edges = _finite_array(state.get("edges"), "edges", source)
    if edges.shape != (lambdas.size + 1,) or not (np.diff(edges) > 0).all():
        raise ValueError(f"{source}: edges must be {lambdas.size + 1} strictly increasing numbers, got {edges.tolist()}.")

    source = root / CALIBRATION
    calibration = TauCalibration.from_dict(_parse_json(contents[CALIBRATION], source), source=source)

    source = root / HEAD_META
    head_meta = _mapping(_parse_json(contents[HEAD_META], source), "the routing head settings", source)
    if head_meta.get("models") != models:
        raise ValueError(f"{source}: models {head_meta.get('models')!r} differ from the manifest's {models!r}.")
    try:
        head = RoutingHead.load(root)
    except (KeyError, TypeError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{root / HEAD_ARRAYS}: cannot load the routing head: {type(exc).__name__}: {exc}") from None
    _check_head_arrays(head, k, int(benchmark["embedding_dim"]), root / HEAD_ARRAYS)
    if list(head.models) != models or head.embedding_dim != benchmark["embedding_dim"]:
        raise ValueError(f"{root / HEAD_ARRAYS}: the routing head has {head.n_models} models and {head.embedding_dim} "
                         f"embedding columns; the manifest says {k} and {benchmark['embedding_dim']}.")

    source = root / BENCHMARK
    identity = _mapping(_parse_json(contents[BENCHMARK], source), "the benchmark identity", source)
    for key in ("name", "fingerprint", "models"):
        if key in identity and identity[key] != benchmark[key]:
            raise ValueError(f"{source}: {key} {identity[key]!r} differs from the manifest's {benchmark[key]!r}.")
    env_kwargs = _mapping(identity.get("env_kwargs") or {}, "env_kwargs", source)
    seed = env_kwargs.get("split_seed", benchmark["split_seed"])
    if seed != benchmark["split_seed"]:
        raise ValueError(f"{source}: env_kwargs.split_seed {seed!r} differs from the manifest's {benchmark['split_seed']!r}.")

    config = None
    if CONFIG in contents:
        try:
            config = yaml.safe_load(contents[CONFIG].decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"{root / CONFIG} is not valid YAML: {exc}") from None
        config = _mapping(config, "the configuration", root / CONFIG)
    summary = None
    if SUMMARY in contents:
        summary = _mapping(_parse_json(contents[SUMMARY], root / SUMMARY), "the summary", root / SUMMARY)
    return Artifact(path=root, manifest=manifest, benchmark=dict(benchmark), identity=identity, policy_spec=spec,
                    lambda_state=state, calibration=calibration, head=head, config=config, summary=summary)


def _mapping_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _check_head_arrays(head: RoutingHead, k: int, d: int, source: Path) -> None:
    """Check the routing head's arrays: the shapes the benchmark implies, finite values, and their ranges.

    Raises:
        ValueError: Naming ``source``, the array and what is wrong.
    """
    width = d + 1  # the embedding and log1p(prompt tokens)
    # A non-linear predictor (trees, MLP) replaces the linear weights, which are then (0, K).
    correct_rows = width if getattr(head, "correct_model", None) is None else 0
    cost_rows = width if getattr(head, "cost_model", None) is None else 0
    shapes = {"feature_mean": (width,), "feature_scale": (width,), "correct_weights": (correct_rows, k), "correct_bias": (k,),
              "platt_a": (k,), "platt_c": (k,), "cost_weights": (cost_rows, k), "cost_bias": (k,), "cost_sd": (k,),
              "log_cost_range": (2,), "quality_prior": (k,), "train_mean_score": (k,)}
    for name, shape in shapes.items():
        array = np.asarray(getattr(head, name))
        if array.shape != shape:
            raise ValueError(f"{source}: `{name}` has shape {array.shape}; {k} models and {d} embedding columns need {shape}.")
        if array.dtype.kind not in "iuf" or not np.isfinite(array).all():
            raise ValueError(f"{source}: `{name}` must hold finite numbers; it holds {array.ravel()[:4].tolist()}...")
    if (np.asarray(head.feature_scale) <= 0).any():
        raise ValueError(f"{source}: `feature_scale` must be > 0, got {np.asarray(head.feature_scale).min()!r}.")
    if (np.asarray(head.cost_sd) < 0).any():
        raise ValueError(f"{source}: `cost_sd` must be >= 0, got {np.asarray(head.cost_sd).min()!r}.")
    low, high = (float(v) for v in head.log_cost_range)
    if not low < high:
        raise ValueError(f"{source}: `log_cost_range` must be two increasing log-USD values, got [{low}, {high}].")
    for name in ("quality_prior", "train_mean_score"):
        array = np.asarray(getattr(head, name))
        if ((array < 0) | (array > 1)).any():
            raise ValueError(f"{source}: `{name}` must lie in [0, 1], got {array.tolist()}.")
    # Finite but extreme parameters: the predictions for typical queries (the feature mean, and one
    # standard deviation either side in every column) must be finite too.
    mean, scale = np.asarray(head.feature_mean, dtype=np.float64), np.asarray(head.feature_scale, dtype=np.float64)
    for sign in (0.0, 1.0, -1.0):
        features = mean + sign * scale
        with np.errstate(all="ignore"):
            tokens = np.array([max(float(np.expm1(features[-1])), 0.0)])
            try:
                predicted = head.predict_with_usd(features[None, :-1], tokens)
            except ValueError as exc:
                raise ValueError(f"{source}: the routing head cannot predict for a typical query: {exc}") from None
        for what, values in zip(("p_hat", "cost_hat", "USD cost"), predicted, strict=True):
            if not np.isfinite(values).all():
                model = head.models[int(np.flatnonzero(~np.isfinite(values).reshape(-1))[0]) % len(head.models)]
                raise ValueError(f"{source}: the routing head predicts a non-finite {what} for model {model!r} on a typical query "
                                 f"(its parameters are out of range).")


# ---------------------------------------------------------------------------- checkpoints
class ChecksummedCheckpointCallback(CheckpointCallback):
    """SB3's ``CheckpointCallback`` that also records each checkpoint's sha256 and benchmark identity.

    The record is ``checksums.json`` in the checkpoint directory, so that ``proteus train --resume
    CHECKPOINT.zip`` can verify a checkpoint before SB3 loads it.

    The dual state rides in the zip (the model attribute ``proteus_dual_state``).

    Args:
        save_freq: Callback calls (vector-env steps) between checkpoints.
        save_path: The checkpoint directory.
        benchmark: The benchmark identity of the run (:func:`benchmark_identity`).
        name_prefix: File names are ``{name_prefix}_{num_timesteps}_steps.zip``.
    """

    def __init__(self, save_freq: int, save_path: str | Path, benchmark: Mapping[str, Any], name_prefix: str = "model") -> None:
        super().__init__(save_freq=max(1, int(save_freq)), save_path=str(save_path), name_prefix=name_prefix)
        self.benchmark = dict(benchmark)

    def _on_step(self) -> bool:
        keep_going = super()._on_step()
        if self.n_calls % self.save_freq == 0:
            record_checkpoint(Path(self._checkpoint_path(extension="zip")), self.benchmark)
        return keep_going


def record_checkpoint(zip_path: Path, benchmark: Mapping[str, Any]) -> None:
    """Add ``zip_path``'s sha256 and the run's benchmark identity to its directory's ``checksums.json``."""
    source = zip_path.parent / CHECKPOINT_RECORD
    manifest: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, "files": {}}
    if source.is_file():
        try:
            old = json.loads(source.read_text())
            if isinstance(old, dict) and isinstance(old.get("files"), dict):
                manifest["files"] = old["files"]
        except ValueError:
            pass
    manifest["files"][zip_path.name] = {"sha256": sha256_file(zip_path), "benchmark": dict(benchmark)}
    tmp = source.with_name(f".{CHECKPOINT_RECORD}.{uuid.uuid4().hex[:8]}")
    _write_json(tmp, manifest)
    os.replace(tmp, source)


def verify_checkpoint(zip_path: str | Path) -> dict[str, Any]:
    """Check a checkpoint ``.zip`` against its directory's ``checksums.json``; return its benchmark identity.

    Raises:
        FileNotFoundError: If the zip does not exist.
        ValueError: If there is no record of it, or its checksum does not match.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise FileNotFoundError(f"Checkpoint {zip_path} does not exist.")
    source = zip_path.parent / CHECKPOINT_RECORD
    if not source.is_file():
        raise ValueError(f"{zip_path} has no checksum record ({source} is missing): refusing to unpickle an unverified model.")
    manifest = _mapping(_parse_json(source.read_bytes(), source), "the checkpoint manifest", source)
    if manifest.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{source}: format must be {CHECKPOINT_FORMAT!r}, got {manifest.get('format')!r}.")
    entry = _mapping(manifest.get("files"), "files", source).get(zip_path.name)
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise ValueError(f"{zip_path} has no checksum record in {source}: refusing to unpickle an unverified model.")
    if sha256_file(zip_path) != entry["sha256"]:
        raise ValueError(f"{zip_path} does not match its checksum in {source}: the file was modified or corrupted.")
    return _mapping(entry.get("benchmark"), "benchmark", source)
