"""Forwarding chat completions to the chosen model's OpenAI-compatible upstream (httpx, async).

A few pooled :class:`httpx.AsyncClient` instances serve every upstream, taken in turn: httpcore's
pool scans its connections quadratically on every request (measured: at 64 requests in flight,
two thirds of the server's CPU went to that scan with one client), so connections are spread over
several small pools instead of one large one. API keys are read from the
environment variables named in ``upstreams.yaml`` when the pool is built and live only in the
request headers kept in memory; they are never written anywhere nor shown in an error.

Failures are reported as :class:`~agents.serving.errors.ApiError` with status 502 naming the
upstream: connection failures, timeouts, 5xx answers, and bodies that are not JSON. An upstream's
4xx answer about the request itself (400, 413, 422) keeps its status and the upstream's message,
prefixed with the upstream's name; other 4xx answers (401, 403, 404, 429 ...) are problems of the
server's configuration or capacity, not of the client's request, and become 502 too.
"""

from __future__ import annotations

import itertools
import json
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from agents.serving.config import UpstreamConfig
from agents.serving.errors import ApiError

#: Upstream statuses passed through to the client (the request itself was rejected).
PASS_THROUGH_STATUSES = frozenset({400, 413, 422})


class Upstream:
    """One upstream endpoint (``base_url``, the model id sent, headers with the key)."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self.name = config.name
        self.url = f"{config.base_url}/chat/completions"
        key = config.api_key()
        self.headers = {"content-type": "application/json"}
        if key is not None:
            self.headers["authorization"] = f"Bearer {key}"
        self.timeout = httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0))

    def describe(self) -> str:
        """``'name' (model 'id' at base_url)`` for messages (never the key)."""
        return f"upstream {self.name!r} (model {self.config.model!r} at {self.config.base_url})"


class UpstreamPool:
    """The upstreams by benchmark model name, sharing one HTTP client.

    Args:
        configs: The upstreams of ``upstreams.yaml``.
        max_connections: Connection limit of each pool.
        pools: Number of HTTP clients (connection pools) used in turn.

    Raises:
        ValueError: If an upstream's ``api_key_env`` is not set.
    """

    def __init__(self, configs: dict[str, UpstreamConfig], *, max_connections: int = 64, pools: int = 32) -> None:
        self.upstreams = {name: Upstream(config) for name, config in configs.items()}
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        tls = ssl.create_default_context()  # one context for every pool (each costs ~50 ms to build)
        self.clients = [httpx.AsyncClient(limits=limits, verify=tls, http2=False, follow_redirects=False) for _ in range(pools)]
        self._turn = itertools.cycle(self.clients)

    @property
    def client(self) -> httpx.AsyncClient:
        """The next pooled client, in turn."""
        return next(self._turn)

    def __getitem__(self, name: str) -> Upstream:
        return self.upstreams[name]

    async def close(self) -> None:
        """Close the pooled connections."""
        for client in self.clients:
            await client.aclose()

    async def complete(self, upstream: Upstream, payload: dict[str, Any]) -> tuple[dict[str, Any], httpx.Response]:
        """POST a non-streaming completion; returns the parsed JSON and the response.

        Raises:
            ApiError: 502 (or the passed-through 4xx) naming the upstream.
        """
        try:
            response = await self.client.post(upstream.url, content=_dumps(payload), headers=upstream.headers, timeout=upstream.timeout)
        except httpx.TimeoutException:
            raise _timeout(upstream) from None
        except httpx.HTTPError as exc:
            raise _unreachable(upstream, exc) from None
        if response.status_code >= 300:
            raise _status_error(upstream, response.status_code, response.content)
        try:
            data = json.loads(response.content)
        except ValueError:
            raise ApiError(502, f"{upstream.describe()} answered {response.status_code} with a body that is not JSON.", code="upstream_bad_response",
                           headers={"x-proteus-upstream": upstream.name}) from None
        if not isinstance(data, dict):
            raise ApiError(502, f"{upstream.describe()} answered with JSON that is not an object.", code="upstream_bad_response",
                           headers={"x-proteus-upstream": upstream.name})
        return data, response

    async def open_stream(self, upstream: Upstream, payload: dict[str, Any]) -> httpx.Response:
        """Start a streaming completion; returns the open response (status checked, body unread).

        The caller must consume it with :func:`relay_sse` (which closes it) or ``aclose`` it.

        Raises:
            ApiError: 502 (or the passed-through 4xx) naming the upstream, before any byte is sent.
        """
        client = self.client
        request = client.build_request("POST", upstream.url, content=_dumps(payload), headers=upstream.headers, timeout=upstream.timeout)
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException:
            raise _timeout(upstream) from None
        except httpx.HTTPError as exc:
            raise _unreachable(upstream, exc) from None
        if response.status_code >= 300:
            try:
                body = await response.aread()
            except httpx.HTTPError:
                body = b""
            finally:
                await response.aclose()
            raise _status_error(upstream, response.status_code, body)
        return response


async def relay_sse(upstream: Upstream, response: httpx.Response, rewrite: Callable[[dict[str, Any]], None]) -> AsyncIterator[bytes]:
    """Pass an upstream's server-sent events through, rewriting each JSON ``data:`` event.

    Lines are relayed as they arrive; ``rewrite`` edits each parsed event in place (the response's
    ``id`` and ``model``); ``data: [DONE]`` and lines that are not JSON pass unchanged. A failure
    mid-stream (the status line was already sent) ends the stream with an OpenAI ``error`` event
    naming the upstream.

    Args:
        upstream: The upstream (for messages).
        response: The open streaming response of :meth:`UpstreamPool.open_stream`.
        rewrite: Edits one parsed event in place.
    """
    try:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                data = line[5:].strip()
                if data and data != "[DONE]":
                    try:
                        event = json.loads(data)
                    except ValueError:
                        event = None
                    if isinstance(event, dict):
                        rewrite(event)
                        line = "data: " + _dumps(event).decode()
            yield (line + "\n").encode()
    except httpx.TimeoutException:
        yield _sse_error(_timeout(upstream))
    except httpx.HTTPError as exc:
        yield _sse_error(_unreachable(upstream, exc))
    finally:
        await response.aclose()


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _sse_error(error: ApiError) -> bytes:
    return b"data: " + _dumps(error.body()) + b"\n\n"


def _timeout(upstream: Upstream) -> ApiError:
    return ApiError(502, f"{upstream.describe()} timed out after {upstream.config.timeout:g} s.", code="upstream_timeout",
                    headers={"x-proteus-upstream": upstream.name})


def _unreachable(upstream: Upstream, exc: Exception) -> ApiError:
    reason = str(exc) or type(exc).__name__
    return ApiError(502, f"{upstream.describe()} failed: {reason}.", code="upstream_unavailable", headers={"x-proteus-upstream": upstream.name})


def _status_error(upstream: Upstream, status: int, body: bytes) -> ApiError:
    detail = body[:500].decode("utf-8", "replace")
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict) and parsed["error"].get("message"):
            detail = str(parsed["error"]["message"])
    except ValueError:
        pass
    headers = {"x-proteus-upstream": upstream.name}
    if status in PASS_THROUGH_STATUSES:
        return ApiError(status, f"{upstream.describe()} rejected the request ({status}): {detail}", code="upstream_rejected", headers=headers)
    return ApiError(502, f"{upstream.describe()} answered {status}: {detail}", code="upstream_error", headers=headers)
