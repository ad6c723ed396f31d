"""One Ray instance per command: a local one sized to the cores, or a cluster at ``--address``.

    with ray_session(address=None, num_cpus=2):      # a fresh local instance on this machine
        ...                                          # Ray Tune, Ray tasks
    with ray_session(address="10.0.0.5:6379"):      # the cluster started there with `ray start --head`
        ...

Used by ``proteus sweep`` and ``proteus eval --ray``. Ray is optional (the ``[ray]`` extra): it
is imported when a session starts, with an :class:`ImportError` saying how to install it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from typing import Any

from proteus_env.ray_support import require_ray

#: Seconds to wait for a TCP connection to ``--address`` before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0
#: Default port of ``ray start --head`` (the GCS) and of the Ray Client server (``ray://``).
DEFAULT_PORTS = {"": 6379, "ray://": 10001}


def default_num_cpus() -> int:
    """The cores this process may use (its CPU affinity where the OS tells it, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def split_address(address: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a Ray address ``HOST:PORT`` or ``ray://HOST:PORT`` (default ports filled in).

    Raises:
        ValueError: If the address is empty or its port is not a number in [1, 65535].
    """
    text = str(address).strip()
    scheme = "ray://" if text.startswith("ray://") else ""
    rest = text[len(scheme):]
    if not rest:
        raise ValueError(f"--address {address!r} is empty: give HOST:PORT of the cluster's head (`ray start --head` prints it).")
    host, _, port_text = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not port_text:
        return scheme, rest, DEFAULT_PORTS[scheme]
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not host or not 1 <= port <= 65535:
        raise ValueError(f"--address {address!r} is not HOST:PORT (port in 1..65535), e.g. 192.168.0.10:6379 or ray://192.168.0.10:10001.")
    return scheme, host.strip("[]"), port


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast when nothing listens at ``address`` (Ray itself retries for minutes).

    Raises:
        ValueError: Naming the address and what to do when no TCP connection opens within ``timeout``.
    """
    _, host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"cannot reach a Ray cluster at {address} ({host}:{port}: {reason}). Start one there with "
                         f"`ray start --head --port={port}`, or leave out --address to run on this machine.") from None


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None, feature: str = "this command",
                verbose: bool = False) -> Iterator[Any]:
    """Connect to Ray for the block, and disconnect (stopping a local instance) after it.

    Args:
        address: ``None``: start a new local instance on this machine (never attach to another
            one by accident); ``"auto"``: the cluster this machine belongs to; else ``HOST:PORT``
            (the head of ``ray start --head``) or ``ray://HOST:PORT`` (Ray Client). When this
            process is already connected (``ray.init`` called by the caller), that session is
            used as it is and left running (an address is still checked for reachability).
        num_cpus: CPUs of the local instance (default: this machine's cores); not allowed with
            ``address`` (a cluster has its own).
        feature: What needs Ray, for the error when it is not installed.
        verbose: Forward the workers' output to this terminal.

    Yields:
        The ``ray`` module.

    Raises:
        ImportError: If Ray is not installed (saying how to install it).
        ValueError: If ``address`` is malformed or unreachable (naming it), or ``num_cpus`` is bad
            or combined with ``address``.
    """
    ray = require_ray(feature)
    if num_cpus is not None and (isinstance(num_cpus, bool) or int(num_cpus) != num_cpus or num_cpus < 1):
        raise ValueError(f"--num-cpus must be a positive integer, got {num_cpus!r}.")
    if address is not None and num_cpus is not None:
        raise ValueError("--num-cpus sizes a local Ray instance; a cluster at --address has its own CPUs (leave --num-cpus out).")
    if address is not None and address != "auto":
        check_reachable(address)
    if ray.is_initialized():  # a caller's own session (a notebook, a test fixture): use it, leave it running
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": verbose, "logging_level": "info" if verbose else "warning"}
    if address is None:
        kwargs.update(address="local", num_cpus=int(num_cpus or default_num_cpus()))
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise ValueError(f"cannot connect to a Ray cluster at {address}: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
