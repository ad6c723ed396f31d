"""Connecting to Ray: addresses are parsed and checked before Ray's own (minutes-long) retries."""

from __future__ import annotations

import socket

import pytest

from agents.ray_cluster import check_reachable, ray_session, split_address


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_split_address():
    assert split_address("10.0.0.5:6379") == ("", "10.0.0.5", 6379)
    assert split_address("ray://head:10001") == ("ray://", "head", 10001)
    assert split_address("head") == ("", "head", 6379)
    for bad in ("", "head:port", "head:0", ":6379"):
        with pytest.raises(ValueError, match="address"):
            split_address(bad)


def test_an_unreachable_address_is_named_at_once():
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(ValueError, match=f"cannot reach a Ray cluster at {address}.*ray start --head"):
        check_reachable(address, timeout=2)


def test_ray_session_checks_the_address_before_starting_ray():
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(ValueError, match=address), ray_session(address):
        pass
    with pytest.raises(ValueError, match="--num-cpus"), ray_session("127.0.0.1:6379", num_cpus=2):
        pass
