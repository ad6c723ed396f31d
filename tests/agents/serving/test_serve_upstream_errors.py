"""Upstream failures: refused connections, timeouts, 5xx, non-JSON bodies, rejected requests, broken streams."""

from __future__ import annotations

import json
import socket
import sqlite3

import pytest

from .helpers import assert_openai_error, upstreams_for

MESSAGES = [{"role": "user", "content": "Write a haiku about routers."}]


def _closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more: connections are refused


@pytest.mark.parametrize(("where", "code", "says", "stream"), [
    ("refused", "upstream_unavailable", "failed", False),
    ("refused", "upstream_unavailable", "failed", True),
    ("slow-2", "upstream_timeout", "timed out after 0.3 s", False),
    ("slow-2", "upstream_timeout", "timed out after 0.3 s", True),
    ("fail", "upstream_error", "answered 500", False),
    ("fail", "upstream_error", "answered 500", True),
    ("garbage", "upstream_bad_response", "not JSON", False),  # (streamed, lines that are not JSON pass through unchanged)
])
def test_an_upstream_that_fails_is_a_502_naming_it(serve, rb_router, rb_models, stub, where, code, says, stream):
    _, url = stub
    base_url = _closed_port_url() if where == "refused" else f"{url}/{where}/v1"
    with serve(rb_router, {"upstreams": upstreams_for(rb_models, base_url, timeout=0.3)}) as (_, client):
        response = client.post("/v1/chat/completions", json={"model": "proteus-tau-0.6", "messages": MESSAGES, "stream": stream})
        error = assert_openai_error(response, 502, code)
        name = response.headers["x-proteus-upstream"]
        assert name in rb_models and f"upstream {name!r}" in error["message"] and says in error["message"], error
        assert "x-proteus-request-id" not in response.headers
        metrics = client.get("/metrics").text
        assert f'proteus_upstream_errors_total{{code="{code}",model="{name}"}} 1.0' in metrics
        assert 'proteus_requests_total{endpoint="chat",status="502",tenant="-"} 1.0' in metrics
        assert client.get("/healthz").json()["status"] == "ok"  # the server keeps serving


def test_an_upstream_rejecting_the_request_keeps_its_4xx_status(serve, rb_router, rb_models, stub):
    _, url = stub
    with serve(rb_router, {"upstreams": upstreams_for(rb_models, f"{url}/reject/v1")}) as (_, client):
        response = client.post("/v1/chat/completions", json={"model": "proteus-tau-0.6", "messages": MESSAGES})
        error = assert_openai_error(response, 400, "upstream_rejected")
        assert "max_tokens is too large for the stub" in error["message"] and response.headers["x-proteus-upstream"] in error["message"]


def test_a_stream_broken_midway_ends_with_an_error_event(serve, rb_router, rb_models, stub):
    _, url = stub
    with serve(rb_router, {"upstreams": upstreams_for(rb_models, f"{url}/cut/v1")}) as (_, client):
        with client.stream("POST", "/v1/chat/completions", json={"model": "proteus-tau-0.6", "messages": MESSAGES, "stream": True}) as response:
            assert response.status_code == 200  # the status line was sent before the upstream broke
            model = response.headers["x-proteus-model"]
            events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
        assert events[0]["model"] == model and "choices" in events[0]
        assert "error" in events[-1] and f"upstream {model!r}" in events[-1]["error"]["message"]
        assert client.get("/healthz").json()["status"] == "ok"


def test_failed_requests_cannot_be_scored(serve, rb_router, rb_models, stub, tmp_path):
    _, url = stub
    with serve(rb_router, {"upstreams": upstreams_for(rb_models, f"{url}/fail/v1")}, state=tmp_path / "state.sqlite") as (_, client):
        assert client.post("/v1/chat/completions", json={"model": "proteus-tau-0.6", "messages": MESSAGES}).status_code == 502
        ok = client.post("/v1/route", json={"input": "x", "tau": 0.5}).json()["data"][0]["id"]  # decisions alone are recorded
        with sqlite3.connect(tmp_path / "state.sqlite", timeout=10) as db:
            assert [row[0] for row in db.execute("SELECT id FROM requests")] == [ok]  # the failed request's id was forgotten
