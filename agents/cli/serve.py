"""``proteus serve``: run a trained router as an OpenAI-compatible HTTP server (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import logging
import socket


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``proteus serve``."""
    parser = subparsers.add_parser("serve", help="serve a trained router behind an OpenAI-compatible HTTP API",
                                   description="Serve a trained router: POST /v1/chat/completions, /v1/route, /v1/feedback; GET /metrics, /healthz. "
                                               "Needs the `serve` extra: pip install -e '.[serve]'.")
    parser.add_argument("--router", required=True, help="artifact directory of `proteus train`")
    parser.add_argument("--upstreams", required=True, help="YAML file: upstreams (and optional tenants, default_tenant, controller)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--state", default="proteus-serve-state.sqlite",
                        help="SQLite file of served request ids and tenant state (default ./proteus-serve-state.sqlite)")
    parser.add_argument("--retention-days", type=float, default=30.0, help="forget served request ids older than this (default 30)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"], help="log level (default info)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from agents.serving import ServeSettings, create_app
    except ImportError as exc:
        raise ImportError(f"`proteus serve` needs the serve extra ({exc.name} is missing): pip install -e '.[serve]'") from None
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}.")
    if not args.retention_days > 0:
        raise ValueError(f"--retention-days must be > 0, got {args.retention_days}.")
    try:  # the policy is tiny: one intra-op thread is faster than a pool (and leaves the other core to the HTTP work)
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover  (torch is a core dependency)
        pass
    app = create_app(args.router, args.upstreams, state_path=args.state, settings=ServeSettings(retention_days=args.retention_days))
    try:  # bind now: a busy port is a user error, reported like the others
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    except OSError as exc:
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = app.state.server
    host, port = sock.getsockname()[:2]
    print(f"proteus serve: {len(server.serving.allowed)} models with upstreams {server.serving.allowed}; "
          f"tenants {sorted(server.config.tenants) or 'none'}; state {args.state}", flush=True)
    print(f"proteus serve: OpenAI-compatible API at http://{host}:{port}/v1 (Ctrl-C stops)", flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, access_log=not args.no_access_log, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
