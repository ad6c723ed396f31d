"""Stable-Baselines3 ``model.zip`` files, read without unpickling unless the caller trusts them.

An SB3 zip holds ``policy.pth`` (the policy's state dict: tensors only, which
``torch.load(weights_only=True)`` reads without running code) and ``data``: JSON whose plain
entries (hyperparameters, ``policy_kwargs`` when they are plain values, the PROTEUS dual state)
are readable as they are, but whose other entries (the policy class, the observation and action
spaces, schedules) are cloudpickle blobs. ``ALGO.load`` unpickles them, and unpickling a file runs
whatever code the file says: a zip from elsewhere is code, not data.

So by default nothing is unpickled (:func:`load_policy`):

* the algorithm is identified from plain JSON entries and the policy class's *name*, read from
  the pickle's opcodes with :mod:`pickletools` (a disassembler: it executes nothing), and checked
  against the name the caller gave;
* the policy class is looked up by that name, and only in Stable-Baselines3's (or sb3_contrib's)
  own ``policies`` modules;
* the observation keys and shapes are read from the readable description SB3 stores beside the
  pickled space, and the spaces themselves are the *environment's* (a mismatch is an error);
* ``policy_kwargs`` must be plain values (``net_arch``, ``use_sde``, ...), or an activation
  function named by its torch class; anything else (a custom features extractor, an optimizer
  class) can only be restored by unpickling;
* the weights are loaded with ``torch.load(weights_only=True)`` and ``load_state_dict(strict=True)``.

When a zip needs more than that, the caller may pass ``trust_pickle=True`` (``proteus eval
--trust-pickle``): then ``ALGO.load`` reads it, after the same algorithm check. A file never turns
trust on. Torch and SB3 are imported when a zip is loaded, not when this module is.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import importlib
import importlib.util
import inspect
import io
import json
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

from gymnasium import spaces

#: Algorithm name -> (module defining the class, module of its policies), for Stable-Baselines3.
SB3_ALGORITHMS: dict[str, tuple[str, str]] = {
    "A2C": ("stable_baselines3", "stable_baselines3.common.policies"),
    "DDPG": ("stable_baselines3", "stable_baselines3.td3.policies"),
    "DQN": ("stable_baselines3", "stable_baselines3.dqn.policies"),
    "PPO": ("stable_baselines3", "stable_baselines3.common.policies"),
    "SAC": ("stable_baselines3", "stable_baselines3.sac.policies"),
    "TD3": ("stable_baselines3", "stable_baselines3.td3.policies"),
}
#: The same for sb3_contrib (used when it is installed). Recurrent policies are refused: they need a state.
CONTRIB_ALGORITHMS: dict[str, tuple[str, str]] = {
    "ARS": ("sb3_contrib", "sb3_contrib.ars.policies"),
    "CrossQ": ("sb3_contrib", "sb3_contrib.crossq.policies"),
    "MaskablePPO": ("sb3_contrib", "sb3_contrib.common.maskable.policies"),
    "QRDQN": ("sb3_contrib", "sb3_contrib.qrdqn.policies"),
    "TQC": ("sb3_contrib", "sb3_contrib.tqc.policies"),
    "TRPO": ("sb3_contrib", "stable_baselines3.common.policies"),
}
#: Plain JSON entries of ``data`` that only one algorithm of a shared policy module writes.
_SIGNATURE_KEYS: dict[str, str] = {"PPO": "clip_range", "TRPO": "cg_max_steps"}
#: The file inside an SB3 zip holding the policy's state dict, and the one holding the JSON data.
POLICY_FILE, DATA_FILE = "policy.pth", "data"
#: Activation functions that may be named in ``policy_kwargs`` without unpickling (torch.nn classes).
_ACTIVATIONS = ("ReLU", "Tanh", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Softplus", "Identity", "Mish", "SELU", "CELU")
#: ``'key': Box(low, high, (shape,), dtype)`` / ``Discrete(n)`` in SB3's readable description of a Dict space.
_SPACE_ITEM = re.compile(r"'([^']+)':\s*(Box|Discrete|MultiBinary|MultiDiscrete)\(([^()]*(?:\([^()]*\))?[^()]*)\)")


def contrib_installed() -> bool:
    """Whether sb3_contrib can be imported."""
    return importlib.util.find_spec("sb3_contrib") is not None


def known_algorithms() -> list[str]:
    """Algorithm names accepted by :func:`resolve_algorithm` (sb3_contrib's only when it is installed)."""
    names = list(SB3_ALGORITHMS)
    if contrib_installed():
        names += list(CONTRIB_ALGORITHMS)
    return sorted(names, key=str.lower)


def resolve_algorithm(name: Any) -> str:
    """The canonical spelling of an algorithm name (case-insensitive).

    Raises:
        ValueError: For an unknown name, listing the known ones (and saying when sb3_contrib's
            names need it installed).
    """
    known = known_algorithms()
    if isinstance(name, str):
        for candidate in known:
            if candidate.lower() == name.strip().lower():
                return candidate
        if not contrib_installed() and any(c.lower() == name.strip().lower() for c in CONTRIB_ALGORITHMS):
            raise ValueError(f"Algorithm {name!r} is from sb3_contrib, which is not installed (pip install sb3-contrib); "
                             f"known algorithms: {', '.join(known)}.")
    raise ValueError(f"Unknown algorithm {name!r}; known algorithms: {', '.join(known)}.")


@dataclasses.dataclass(frozen=True)
class ZipContents:
    """What an SB3 zip says about itself, read without unpickling.

    Attributes:
        path: The zip file.
        data: The plain JSON entries of ``data`` (pickled entries keep their readable fields only).
        policy_module: Module of the policy class.
        policy_name: Name of the policy class.
        algorithm: The algorithm that wrote it, as far as the file tells (``None``: unknown).
        observation_keys: ``{key: shape}`` of a Dict observation space, from SB3's description.
    """

    path: Path
    data: dict[str, Any]
    policy_module: str
    policy_name: str
    algorithm: str | None
    observation_keys: dict[str, tuple[int, ...]] | None


def read_zip(path: str | Path) -> ZipContents:
    """Read an SB3 zip's ``data`` and identify its algorithm, executing nothing from the file.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a zip with SB3's ``data`` and ``policy.pth``, or names no policy class.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Policy file {path} does not exist.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [n for n in (DATA_FILE, POLICY_FILE) if n not in names]
            if missing:
                raise ValueError(f"{path} is not a Stable-Baselines3 model zip: it has no {' and no '.join(missing)} "
                                 f"(it holds {sorted(names)[:8]}).")
            data = json.loads(archive.read(DATA_FILE).decode("utf-8"))
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not a zip file (a Stable-Baselines3 model is saved as model.zip).") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: its '{DATA_FILE}' entry is not JSON ({exc}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("policy_class"), dict):
        raise ValueError(f"{path}: its '{DATA_FILE}' entry names no policy class; is it a Stable-Baselines3 model?")
    module, name = _pickled_class_name(data["policy_class"], path)
    return ZipContents(path=path, data=data, policy_module=module, policy_name=name, algorithm=_algorithm_of(module, data),
                       observation_keys=_observation_keys(data.get("observation_space")))


def _pickled_class_name(entry: dict[str, Any], path: Path) -> tuple[str, str]:
    """``(module, name)`` of a class pickled by reference, from the pickle's opcodes (nothing executed)."""
    try:
        ops = list(pickletools.genops(base64.b64decode(entry.get(":serialized:", ""), validate=True)))
    except (binascii.Error, ValueError, TypeError):
        raise ValueError(f"{path}: the policy class entry of '{DATA_FILE}' is not a readable pickle.") from None
    strings: list[str] = []
    for op, arg, _ in ops:
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(str(arg))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            return strings[-2], strings[-1]
        elif op.name == "GLOBAL" and isinstance(arg, str) and " " in arg:
            module, name = arg.split(" ", 1)
            return module, name
    raise ValueError(f"{path}: the policy class is not saved by name (a class defined in a script or notebook); "
                     f"only trust_pickle=True can load it.")


def _algorithm_of(module: str, data: dict[str, Any]) -> str | None:
    """The algorithm that wrote ``data``: its policy module, and for shared modules a signature entry."""
    table = {**SB3_ALGORITHMS, **CONTRIB_ALGORITHMS}
    candidates = [name for name, (_, policies) in table.items() if policies == module]
    if len(candidates) > 1:
        signed = [name for name in candidates if _SIGNATURE_KEYS.get(name) in data]
        if signed:
            return signed[0]
        unsigned = [name for name in candidates if name not in _SIGNATURE_KEYS]
        if module.endswith("td3.policies"):  # DDPG is TD3 with one actor update per step and no target noise clip
            return "DDPG" if data.get("policy_delay") == 1 and data.get("target_noise_clip") == 0.0 else "TD3"
        return unsigned[0] if len(unsigned) == 1 else None
    if candidates:
        return candidates[0]
    if module.startswith("agents.proteus"):
        return "PPO" if "clip_range" in data else None
    return None


def _observation_keys(entry: Any) -> dict[str, tuple[int, ...]] | None:
    """``{key: shape}`` from SB3's readable description of a Dict observation space (``None`` if not a Dict)."""
    if not isinstance(entry, dict) or "Dict" not in str(entry.get(":type:", "")) or not isinstance(entry.get("spaces"), str):
        return None
    out: dict[str, tuple[int, ...]] = {}
    for key, kind, args in _SPACE_ITEM.findall(entry["spaces"]):
        if kind == "Box":
            shape = re.search(r"\(([\d,\s]*)\)", args)
            out[key] = tuple(int(v) for v in shape.group(1).replace(" ", "").split(",") if v) if shape else ()
        else:
            out[key] = ()
    return out


def check_algorithm(contents: ZipContents, algo: str) -> None:
    """Raise if the zip was written by another algorithm than ``algo``.

    Raises:
        ValueError: Naming both algorithms (or the unknown policy class).
    """
    if contents.algorithm is None:
        raise ValueError(f"{contents.path} holds a {contents.policy_module}.{contents.policy_name} policy, which no known "
                         f"algorithm writes; known algorithms: {', '.join(known_algorithms())}.")
    if contents.algorithm != algo:
        raise ValueError(f"{contents.path} holds a {contents.algorithm} model ({contents.policy_module}.{contents.policy_name}), "
                         f"not {algo}: pass the algorithm that trained it (--algo {contents.algorithm}).")


def load_policy(path: str | Path, algo: str, observation_space: spaces.Dict, action_space: spaces.Space, *,
                trust_pickle: bool = False) -> Any:
    """Load the policy of an SB3 zip for the given environment spaces.

    Args:
        path: The ``model.zip``.
        algo: The algorithm that trained it (:func:`known_algorithms`).
        observation_space: The environment's observation space (the policy's keys must be among
            its keys, with the same shapes).
        action_space: The environment's action space.
        trust_pickle: Unpickle the file with ``ALGO.load`` (runs code from the file: only for
            files you trust). Without it, only weights are read (see the module docstring).

    Returns:
        An SB3 ``BasePolicy`` (weights only) or algorithm (trusted), in evaluation mode, with a
        ``predict(obs, deterministic=...)`` method and ``observation_space`` / ``action_space``.

    Raises:
        ValueError: On an unknown algorithm, a zip of another algorithm, spaces that do not
            match, ``policy_kwargs`` or a policy class that only unpickling can restore, or
            weights that do not fit.
        FileNotFoundError: If the file does not exist.
    """
    algo = resolve_algorithm(algo)
    contents = read_zip(path)
    check_algorithm(contents, algo)
    if algo == "MaskablePPO" or "Recurrent" in contents.policy_name:
        raise ValueError(f"{contents.path}: {algo} {contents.policy_name} needs action masks or a recurrent state, which "
                         f"evaluate_policy does not provide.")
    _check_action_space(contents, action_space)
    if trust_pickle:
        module = importlib.import_module((SB3_ALGORITHMS | CONTRIB_ALGORITHMS)[algo][0])
        model = getattr(module, algo).load(contents.path, device="cpu")
        model.policy.set_training_mode(False)
        return model
    policy_space = _policy_observation_space(contents, observation_space)
    policy_class = _policy_class(contents)
    kwargs = _plain_policy_kwargs(contents)
    if "use_sde" in inspect.signature(policy_class.__init__).parameters and "use_sde" not in kwargs and "use_sde" in contents.data:
        kwargs["use_sde"] = bool(contents.data["use_sde"])
    try:
        policy = policy_class(policy_space, action_space, lambda _: 0.0, **kwargs)
    except Exception as exc:  # kwargs come from the file: a malformed net_arch raises KeyError, IndexError, ... deep in SB3
        raise ValueError(f"{contents.path}: cannot rebuild {contents.policy_name} from its plain policy_kwargs {kwargs} "
                         f"({type(exc).__name__}: {exc}); "
                         f"trust_pickle=True loads it with {algo}.load if you trust the file.") from None
    torch = importlib.import_module("torch")
    with zipfile.ZipFile(contents.path) as archive:
        raw = archive.read(POLICY_FILE)
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError for anything but plain tensors
        raise ValueError(f"{contents.path}: {POLICY_FILE} is not a plain state dict of tensors ({type(exc).__name__}); "
                         f"it is refused without trust_pickle=True.") from None
    try:
        policy.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()
        raise ValueError(f"{contents.path}: the {algo} weights do not fit a {contents.policy_name} for this environment's "
                         f"spaces (observation {dict((k, s.shape) for k, s in policy_space.spaces.items())}, action "
                         f"{action_space}): {' '.join(first[:3])[:400]}") from None
    policy.set_training_mode(False)
    return policy


def _policy_observation_space(contents: ZipContents, observation_space: spaces.Dict) -> spaces.Dict:
    """The environment's spaces of the keys the policy was trained on (checked against the zip's description)."""
    keys = contents.observation_keys
    if keys is None:
        raise ValueError(f"{contents.path}: the policy was not trained on the environment's Dict observation (its space is "
                         f"{contents.data.get('observation_space', {}).get(':type:', 'unknown')}).")
    env_spaces = observation_space.spaces
    missing = sorted(set(keys) - set(env_spaces))
    if missing:
        raise ValueError(f"Observation-space mismatch: the policy in {contents.path} observes {sorted(keys)}, but the environment "
                         f"gives no {missing} (it gives {sorted(env_spaces)}); build the environment as it was trained "
                         f"(include_query, budget_usd_per_1k, session_state).")
    wrong = {k: (shape, env_spaces[k].shape) for k, shape in keys.items() if tuple(env_spaces[k].shape) != tuple(shape)}
    if wrong:
        detail = ", ".join(f"{k}: policy {a} vs environment {b}" for k, (a, b) in sorted(wrong.items()))
        raise ValueError(f"Observation-space mismatch between the policy in {contents.path} and the environment ({detail}): "
                         f"another benchmark or model list.")
    return spaces.Dict({k: env_spaces[k] for k in sorted(keys)})


def _policy_class(contents: ZipContents) -> type:
    """The policy class, looked up by name in SB3's or sb3_contrib's own policy modules only."""
    module_name = contents.policy_module
    allowed = {policies for _, policies in (SB3_ALGORITHMS | CONTRIB_ALGORITHMS).values()}
    if module_name not in allowed:
        hint = (" It is a `proteus train` model: evaluate its artifact directory (ProteusRouter.load, proteus eval --router)."
                if module_name.startswith("agents.") else "")
        raise ValueError(f"{contents.path}: its policy class {module_name}.{contents.policy_name} is not one of "
                         f"Stable-Baselines3's; only trust_pickle=True can load it.{hint}")
    cls = getattr(importlib.import_module(module_name), contents.policy_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"{contents.path}: {module_name} has no policy class {contents.policy_name!r}.")
    return cls


def _plain_policy_kwargs(contents: ZipContents) -> dict[str, Any]:
    """``policy_kwargs`` when they are plain values (an activation function may be named by its torch class)."""
    raw = contents.data.get("policy_kwargs") or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{contents.path}: policy_kwargs is {type(raw).__name__}, not a mapping.")
    if ":serialized:" not in raw:
        return dict(raw)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith(":"):
            continue
        match = re.fullmatch(r"<class 'torch\.nn\.modules\.activation\.(\w+)'>", value) if isinstance(value, str) else None
        if key == "activation_fn" and match and match.group(1) in _ACTIVATIONS:
            out[key] = getattr(importlib.import_module("torch.nn"), match.group(1))
        elif isinstance(value, str) and value.startswith("<"):
            raise ValueError(f"{contents.path}: policy_kwargs[{key!r}] is a Python object ({value}) that only unpickling can "
                             f"restore; pass trust_pickle=True (--trust-pickle) if you trust the file.")
        else:
            out[key] = value
    return out


def _check_action_space(contents: ZipContents, action_space: spaces.Space) -> None:
    """Raise if the zip's action space (from its readable description) is not the environment's kind and size."""
    entry = contents.data.get("action_space")
    if not isinstance(entry, dict):
        return
    kind = str(entry.get(":type:", ""))
    saved: str | None = None
    if "Discrete" in kind:
        saved = f"Discrete({entry.get('n')})"
        fits = isinstance(action_space, spaces.Discrete) and str(int(action_space.n)) == str(entry.get("n")).strip()
    elif "Box" in kind:
        saved = f"Box(shape={tuple(entry.get('_shape') or ())})"
        fits = isinstance(action_space, spaces.Box) and tuple(action_space.shape) == tuple(entry.get("_shape") or ())
    else:
        return
    if not fits:
        hint = (" (build the environment with action_mode='model')" if "Discrete" in kind
                else " (build the environment with action_mode='mu', learn_gamma as trained)")
        raise ValueError(f"Action-space mismatch: the policy in {contents.path} acts in {saved}, the environment in "
                         f"{action_space}{hint}.")
