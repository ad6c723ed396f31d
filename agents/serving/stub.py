"""A stub OpenAI-compatible upstream, and a uvicorn server run on a thread (for tests, benchmarks, demos).

The stub answers ``POST [/<mode>]/v1/chat/completions`` at once with a fixed completion naming the
model it was asked for (streamed as server-sent events when ``"stream": true``). The optional
path prefix picks a behaviour, to exercise the server's error handling:

- ``ok`` (or no prefix): answer at once;
- ``slow-<seconds>``: sleep that long first (``slow`` alone: 5 s);
- ``fail``: 500 with an OpenAI error body;
- ``garbage``: 200 with a body that is not JSON;
- ``reject``: 400 with an OpenAI error body;
- ``cut``: when streaming, one event then the connection breaks.

``GET /stats`` returns the request counts per mode and model, the number of client connections
seen, and the last ``Authorization`` header (so a test can check the API key is forwarded).

Run one from a shell: ``python -m agents.serving.stub --port 9001``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class StubUpstream:
    """The stub as a raw ASGI app (no framework: it should cost next to nothing per request)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.last_authorization: str | None = None
        self.last_body: dict[str, Any] | None = None
        self.requests = 0
        self.connections: set[tuple[str, int]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope["path"]
        if scope["method"] == "GET" and path == "/stats":
            await _send(send, 200, json.dumps({"requests": self.requests, "connections": len(self.connections), "counts": dict(self.counts),
                                               "last_authorization": self.last_authorization, "last_body": self.last_body}).encode())
            return
        if scope["method"] != "POST" or not path.endswith("/v1/chat/completions"):
            await _send(send, 404, _error("not found", "not_found"))
            return
        mode = path[: -len("/v1/chat/completions")].strip("/") or "ok"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        model = str(request.get("model"))
        self.requests += 1
        if scope.get("client"):
            self.connections.add(tuple(scope["client"]))
        self.counts[f"{mode}:{model}"] += 1
        self.last_body = request
        self.last_authorization = dict(scope["headers"]).get(b"authorization", b"").decode() or None
        if mode.startswith("slow"):
            await asyncio.sleep(float(mode.partition("-")[2] or 5.0))
        elif mode == "fail":
            await _send(send, 500, _error("the stub upstream failed on purpose", "stub_failure"))
            return
        elif mode == "garbage":
            await _send(send, 200, b"<html>not json</html>", content_type=b"text/html")
            return
        elif mode == "reject":
            await _send(send, 400, _error("max_tokens is too large for the stub", "invalid_request_error"))
            return
        if request.get("stream"):
            await self._stream(send, model, cut=mode == "cut")
        else:
            await _send(send, 200, json.dumps(_completion(model, self.requests)).encode())

    async def _stream(self, send: Send, model: str, *, cut: bool) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        created = int(time.time())
        pieces = [{"role": "assistant", "content": ""}, {"content": "stub "}, {"content": f"answer from {model}"}]
        for i, delta in enumerate(pieces):
            chunk = {"id": f"stub-{self.requests}", "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            await send({"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(), "more_body": True})
            if cut and i == 0:
                raise ConnectionAbortedError("the stub cut the stream on purpose")
        final = {"id": f"stub-{self.requests}", "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await send({"type": "http.response.body", "body": f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode(), "more_body": False})


def _completion(model: str, n: int) -> dict[str, Any]:
    return {"id": f"stub-{n}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"stub answer from {model}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}}


def _error(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}).encode()


async def _send(send: Send, status: int, body: bytes, *, content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class ThreadedServer:
    """A uvicorn server for ``app`` on a thread, listening on ``host:port`` (port 0: a free one).

    Use as a context manager, or :meth:`start` / :meth:`stop`. The socket is bound before the
    thread starts, so the port is known and reserved at once.

    Args:
        app: The ASGI app.
        host: Address to listen on.
        port: Port (0: any free port).
        log_level: uvicorn's log level.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.host, self.port = self.socket.getsockname()[:2]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True, name=f"uvicorn-{self.port}")

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ThreadedServer:
        """Start serving; returns once the server accepts connections.

        Raises:
            RuntimeError: If it did not start within ``timeout`` seconds (or its startup failed).
        """
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server on {self.url} did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down gracefully (the app's shutdown runs) and wait for the thread."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.socket.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the stub upstream in the foreground."""
    import uvicorn

    parser = argparse.ArgumentParser(description="A stub OpenAI-compatible upstream (answers at once).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args(argv)
    uvicorn.run(StubUpstream(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
