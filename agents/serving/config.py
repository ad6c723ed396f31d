"""The serving configuration: ``upstreams.yaml`` (upstreams, tenants, the online controller).

One YAML file configures ``proteus serve``::

    upstreams:                          # required: benchmark model name -> OpenAI-compatible endpoint
      gpt-4-1106-preview:
        base_url: http://127.0.0.1:9001/v1
        model: gpt-4                    # the id sent upstream (default: the benchmark name)
        api_key_env: OPENAI_API_KEY     # optional: the key is read from this variable, never stored
        timeout: 60                     # optional: seconds per upstream request (default 60)

    tenants:                            # optional
      acme:
        tau: 0.80                       # the tenant's default accuracy floor
        confidence: 0.95                # optional: calibrate so τ holds at this one-sided confidence level
        controller: {eta: 0.2}          # optional: overrides of the `controller:` defaults below
    default_tenant: acme                # optional: tenant of requests without X-Proteus-Tenant

    controller:                         # optional: defaults of every tenant's online controller
      kind: gradient                    # gradient (projected dual ascent) or pid
      eta: 0.5                          # step of `gradient`
      pid_gains: [0.4, 0.05, 0.1]       # (k_p, k_i, k_d) of `pid`
      max_boost: 0.25                   # the largest amount the controller may add to a tenant's τ
      update_every: 25                  # one controller update per this many feedback items
      half_life: 500                    # running accuracy: exponential average, half-life in items

Only the models listed under ``upstreams`` are ever chosen by the router. Every check raises a
``ValueError`` naming the file, the key and the value.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from proteus_env._validation import check_number, parse_confidence

#: Tenant names: short, label-safe (they are Prometheus label values and HTTP header values).
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Pseudo-tenant of requests that name no tenant (their feedback is tracked, no controller runs).
ANONYMOUS = "-"

_TOP_KEYS = frozenset({"upstreams", "tenants", "default_tenant", "controller"})
_UPSTREAM_KEYS = frozenset({"base_url", "model", "api_key_env", "timeout"})
_TENANT_KEYS = frozenset({"tau", "confidence", "margin", "controller"})  # margin: an alias of confidence
_CONTROLLER_KEYS = frozenset({"kind", "eta", "pid_gains", "max_boost", "update_every", "half_life"})


@dataclasses.dataclass(frozen=True)
class UpstreamConfig:
    """One OpenAI-compatible endpoint serving one benchmark model.

    Attributes:
        name: The benchmark model name (as the router knows it).
        base_url: The endpoint's base URL, up to and including ``/v1``.
        model: The model id sent upstream.
        api_key_env: Name of the environment variable holding the API key (``None``: no key).
        timeout: Seconds allowed per upstream request.
    """

    name: str
    base_url: str
    model: str
    api_key_env: str | None = None
    timeout: float = 60.0

    def api_key(self) -> str | None:
        """The API key, read from the environment now (never kept in the config).

        Raises:
            ValueError: If ``api_key_env`` names a variable that is not set.
        """
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ValueError(f"Upstream {self.name!r}: environment variable {self.api_key_env} (api_key_env) is not set.")
        return key


@dataclasses.dataclass(frozen=True)
class ControllerConfig:
    """Settings of a tenant's online controller (one multiplier, read as a τ boost).

    Attributes:
        kind: ``"gradient"`` (projected dual ascent) or ``"pid"``.
        eta: Step size of ``"gradient"``.
        pid_gains: ``(k_p, k_i, k_d)`` of ``"pid"``.
        max_boost: Upper bound of the boost added to the tenant's τ (the controller's λ_max).
        update_every: Feedback items per controller update.
        half_life: Half-life, in feedback items, of the running accuracy.
    """

    kind: str = "gradient"
    eta: float = 0.5
    pid_gains: tuple[float, float, float] = (0.4, 0.05, 0.1)
    max_boost: float = 0.25
    update_every: int = 25
    half_life: float = 500.0


@dataclasses.dataclass(frozen=True)
class TenantConfig:
    """A tenant: its default floor, optional confidence level and controller settings."""

    name: str
    tau: float
    confidence: float | None
    controller: ControllerConfig


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """Everything ``upstreams.yaml`` says.

    Attributes:
        upstreams: Benchmark model name -> its upstream.
        tenants: Tenant name -> its settings.
        default_tenant: Tenant of requests without ``X-Proteus-Tenant`` (``None``: anonymous).
        controller: The controller defaults (what tenants without overrides use).
        source: Where the configuration came from (for messages).
    """

    upstreams: dict[str, UpstreamConfig]
    tenants: dict[str, TenantConfig] = dataclasses.field(default_factory=dict)
    default_tenant: str | None = None
    controller: ControllerConfig = dataclasses.field(default_factory=ControllerConfig)
    source: str = "<config>"

    def check_models(self, router_models: list[str] | tuple[str, ...]) -> None:
        """Check that every upstream names a model of the router.

        Raises:
            ValueError: Naming the unknown models and listing the router's.
        """
        unknown = sorted(set(self.upstreams) - set(router_models))
        if unknown:
            raise ValueError(f"{self.source}: upstreams {unknown} are not models of this router; its models are {list(router_models)}.")


def load_config(path: str | Path) -> ServeConfig:
    """Read and check ``upstreams.yaml``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: On malformed YAML or any invalid key or value, naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Upstreams file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, source=str(path))


def parse_config(data: Any, *, source: str = "<config>") -> ServeConfig:
    """Check a parsed configuration mapping and build a :class:`ServeConfig`.

    Raises:
        ValueError: On any invalid key or value, naming it.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: expected a mapping with an `upstreams:` section, got {type(data).__name__}.")
    _no_unknown(data, _TOP_KEYS, source)
    upstreams_data = data.get("upstreams")
    if not isinstance(upstreams_data, Mapping) or not upstreams_data:
        raise ValueError(f"{source}: `upstreams:` must map at least one benchmark model name to {{base_url: ..., model: ...}}.")
    upstreams = {str(name): _upstream(str(name), spec, source) for name, spec in upstreams_data.items()}
    controller = _controller(data.get("controller") or {}, ControllerConfig(), f"{source}: controller")
    tenants_data = data.get("tenants") or {}
    if not isinstance(tenants_data, Mapping):
        raise ValueError(f"{source}: `tenants:` must map tenant names to {{tau: ...}}, got {tenants_data!r}.")
    tenants = {str(name): _tenant(str(name), spec, controller, source) for name, spec in tenants_data.items()}
    default_tenant = data.get("default_tenant")
    if default_tenant is not None and str(default_tenant) not in tenants:
        raise ValueError(f"{source}: default_tenant {default_tenant!r} is not one of the tenants {sorted(tenants)}.")
    return ServeConfig(upstreams=upstreams, tenants=tenants, default_tenant=None if default_tenant is None else str(default_tenant),
                       controller=controller, source=source)


def _no_unknown(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in set(data) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}.")


def _upstream(name: str, spec: Any, source: str) -> UpstreamConfig:
    where = f"{source}: upstreams.{name}"
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a mapping with `base_url:`, got {spec!r}.")
    _no_unknown(spec, _UPSTREAM_KEYS, where)
    base_url = spec.get("base_url")
    if not isinstance(base_url, str) or not re.match(r"^https?://[^/\s]+", base_url):
        raise ValueError(f"{where}.base_url must be an http(s) URL such as http://127.0.0.1:9001/v1, got {base_url!r}.")
    model = spec.get("model", name)
    if not isinstance(model, str) or not model:
        raise ValueError(f"{where}.model must be a non-empty string (the id sent upstream), got {model!r}.")
    key_env = spec.get("api_key_env")
    if key_env is not None and (not isinstance(key_env, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key_env)):
        raise ValueError(f"{where}.api_key_env must name an environment variable, got {key_env!r}.")
    timeout = _number(spec.get("timeout", 60.0), f"{where}.timeout", low=0.0, low_open=True)
    return UpstreamConfig(name=name, base_url=base_url.rstrip("/"), model=model, api_key_env=key_env, timeout=timeout)


def _tenant(name: str, spec: Any, controller: ControllerConfig, source: str) -> TenantConfig:
    where = f"{source}: tenants.{name}"
    if not TENANT_NAME.match(name):
        raise ValueError(f"{where}: tenant names are 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit).")
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a mapping with `tau:`, got {spec!r}.")
    _no_unknown(spec, _TENANT_KEYS, where)
    if "tau" not in spec:
        raise ValueError(f"{where}.tau (the tenant's default accuracy floor in [0, 1]) is missing.")
    tau = _number(spec["tau"], f"{where}.tau", high=1.0)
    if "confidence" in spec and "margin" in spec:
        raise ValueError(f"{where}: give `confidence` or its alias `margin`, not both.")
    key = "margin" if "margin" in spec else "confidence"
    confidence = parse_confidence(spec.get(key), f"{where}.{key}")
    settings = _controller(spec.get("controller") or {}, controller, f"{where}.controller")
    return TenantConfig(name=name, tau=tau, confidence=confidence, controller=settings)


def _controller(spec: Any, base: ControllerConfig, where: str) -> ControllerConfig:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a mapping, got {spec!r}.")
    _no_unknown(spec, _CONTROLLER_KEYS, where)
    kind = spec.get("kind", base.kind)
    if kind not in ("gradient", "pid"):
        raise ValueError(f"{where}.kind must be 'gradient' or 'pid', got {kind!r}.")
    gains = spec.get("pid_gains", base.pid_gains)
    if not isinstance(gains, (list, tuple)) or len(gains) != 3:
        raise ValueError(f"{where}.pid_gains must be [k_p, k_i, k_d], got {gains!r}.")
    update_every = spec.get("update_every", base.update_every)
    if isinstance(update_every, bool) or not isinstance(update_every, int) or update_every < 1:
        raise ValueError(f"{where}.update_every must be a positive integer, got {update_every!r}.")
    return ControllerConfig(
        kind=kind,
        eta=_number(spec.get("eta", base.eta), f"{where}.eta", low=0.0, low_open=True),
        pid_gains=tuple(_number(g, f"{where}.pid_gains", low=0.0) for g in gains),  # type: ignore[arg-type]
        max_boost=_number(spec.get("max_boost", base.max_boost), f"{where}.max_boost", high=1.0),
        update_every=update_every,
        half_life=_number(spec.get("half_life", base.half_life), f"{where}.half_life", low=0.0, low_open=True, high=math.inf),
    )


def _number(value: Any, where: str, *, low: float = 0.0, high: float = math.inf, low_open: bool = False, high_open: bool = False) -> float:
    """:func:`proteus_env._validation.check_number` (booleans refused), lower bound 0 by default."""
    return check_number(value, where, low=low, high=high, low_open=low_open, high_open=high_open)
