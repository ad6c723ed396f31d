"""``proteus serve``: an OpenAI-compatible HTTP server in front of a trained PROTEUS router.

Endpoints:

- ``POST /v1/chat/completions``: the standard OpenAI request. The accuracy target τ is, first
  found first: the ``X-Proteus-Tau`` header, a model name ``proteus-tau-<τ>``, or the default of
  the tenant named by ``X-Proteus-Tenant`` (or of ``default_tenant``). The router picks a model
  among those with an upstream; the request is forwarded (streamed as server-sent events when
  ``"stream": true``) with the upstream's model id. The answer names the model that served it:
  the ``x-proteus-model`` header and the response's ``model`` field (the benchmark model name);
  its ``id`` is the server's request id, the one to send feedback for.
- ``POST /v1/route``: routing decisions only, for a batch of prompts (or embeddings).
- ``POST /v1/feedback``: realized scores of served request ids; they update each tenant's running
  accuracy and online controller (:mod:`agents.serving.tenants`), durably, before the answer.
- ``GET /v1/tenants``, ``GET /v1/tenants/{name}``: each tenant's floor, boost and running accuracy.
- ``GET /v1/models``, ``GET /metrics`` (Prometheus), ``GET /healthz``.

Errors are answered in OpenAI's format (:mod:`agents.serving.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response, StreamingResponse

from agents.proteus.router import ProteusRouter
from agents.serving.config import ANONYMOUS, ServeConfig, load_config
from agents.serving.errors import ApiError, install_error_handlers
from agents.serving.metrics import ServeMetrics
from agents.serving.routing import Decision, RouteBatcher, ServingRouter
from agents.serving.store import ServedRecord, Store
from agents.serving.tenants import TenantState
from agents.serving.upstream import UpstreamPool, relay_sse

log = logging.getLogger("proteus.serve")

#: The model names that mean "let the router choose".
ROUTER_MODEL = "proteus"
_TAU_MODEL = re.compile(r"^proteus-tau-(.*)$")


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """Limits and upkeep of the server.

    Attributes:
        max_body_bytes: Largest request body accepted (413 above).
        max_route_batch: Most queries in one ``/v1/route`` call.
        max_feedback_items: Most items in one ``/v1/feedback`` call.
        retention_days: Served-request ids older than this are forgotten (feedback for them: 404).
        prune_interval_s: How often old ids are pruned.
    """

    max_body_bytes: int = 8 * 1024 * 1024
    max_route_batch: int = 1024
    max_feedback_items: int = 10_000
    retention_days: float = 30.0
    prune_interval_s: float = 3600.0


class ProteusServer:
    """The server's state and handlers (one per app).

    Args:
        router: A loaded router, or its artifact directory.
        config: The configuration, or the path of ``upstreams.yaml``.
        state_path: The SQLite state file.
        settings: Limits and upkeep.

    Raises:
        FileNotFoundError: If the router or configuration is missing.
        ValueError: On an invalid configuration, upstreams naming unknown models, or an unset API key variable.
    """

    def __init__(self, router: ProteusRouter | str | Path, config: ServeConfig | str | Path, state_path: str | Path,
                 settings: ServeSettings | None = None) -> None:
        self.config = config if isinstance(config, ServeConfig) else load_config(config)
        self.router = router if isinstance(router, ProteusRouter) else ProteusRouter.load(router)
        self.config.check_models([str(m) for m in self.router.head.models])
        self.settings = settings or ServeSettings()
        self.serving = ServingRouter(self.router, list(self.config.upstreams))
        self.batcher = RouteBatcher(self.serving)
        self.store = Store(state_path)
        self.metrics = ServeMetrics()
        self.pool: UpstreamPool | None = None
        self.tenants: dict[str, TenantState] = {}
        self.started = time.time()
        self._feedback_lock: asyncio.Lock | None = None
        self._prune_task: asyncio.Task[None] | None = None
        for upstream in self.config.upstreams.values():
            upstream.api_key()  # fail now (not on the first request) when a key variable is unset

    # ------------------------------------------------------------------ lifecycle
    async def startup(self) -> None:
        """Open the state file, restore tenant states, open the upstream pool."""
        saved = await self.store.open()
        tenants: dict[str, TenantState] = {}
        for name in {*self.config.tenants, ANONYMOUS, *saved}:
            config = self.config.tenants.get(name)
            if name in saved:
                state, warning = TenantState.from_dict(name, config, saved[name], self.config.controller)
                if warning:
                    log.warning(warning)
            else:
                state = TenantState.new(name, config, self.config.controller)
            tenants[name] = state
            self.metrics.set_tenant(state)
        self.tenants = tenants
        self.pool = UpstreamPool(self.config.upstreams)
        self.warm_up()
        self._feedback_lock = asyncio.Lock()
        await self.store.prune(self.settings.retention_days * 86400.0)
        self._prune_task = asyncio.create_task(self._prune_forever())
        log.info("proteus serve: routing among %s; %d tenants; state in %s", self.serving.allowed, len(self.config.tenants), self.store.path)

    def warm_up(self) -> None:
        """Route one dummy query, so the first request does not pay for lazy initialisation."""
        if self.serving.has_encoder:
            self.serving.decide_texts(["warm up"], [0.5], [None])
        else:
            self.serving.decide(np.zeros((1, self.serving.embedding_dim)), np.ones(1), [0.5], [None])

    async def shutdown(self) -> None:
        """Close the pool and the state file (pending rows are written first)."""
        if self._prune_task is not None:
            self._prune_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prune_task
        if self.pool is not None:
            await self.pool.close()
        await asyncio.get_running_loop().run_in_executor(None, self.batcher.close)
        await self.store.close()

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.prune_interval_s)
            try:
                await self.store.prune(self.settings.retention_days * 86400.0)
            except Exception:  # keep serving; the next round retries
                log.exception("pruning old request ids failed")

    # ------------------------------------------------------------------ request helpers
    async def read_json(self, request: Request) -> dict[str, Any]:
        """The request body as a JSON object (400 when malformed, 413 when too large)."""
        limit = self.settings.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise ApiError(413, f"Request body of {length} bytes is larger than the {limit} bytes accepted.", code="body_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"Request body is larger than the {limit} bytes accepted.", code="body_too_large")
            chunks.append(chunk)
        try:
            data = json.loads(b"".join(chunks))
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, f"Malformed JSON in the request body: {exc}", code="invalid_json") from None
        if not isinstance(data, dict):
            raise ApiError(400, f"The request body must be a JSON object, got {type(data).__name__}.", code="invalid_json")
        return data

    def resolve_tenant(self, request: Request) -> TenantState:
        """The tenant named by ``X-Proteus-Tenant`` (or ``default_tenant``, or the anonymous one); 404 if unknown."""
        name = request.headers.get("x-proteus-tenant")
        if name is None:
            name = self.config.default_tenant or ANONYMOUS
        else:
            name = name.strip()
            if name not in self.config.tenants:
                raise ApiError(404, f"Unknown tenant {name[:64]!r} (X-Proteus-Tenant): it is not configured in {Path(self.config.source).name}.",
                               code="unknown_tenant", param="X-Proteus-Tenant")
        return self.tenants[name]

    def resolve_tau(self, request: Request, model: Any, tenant: TenantState, body_tau: Any = None) -> tuple[float, str]:
        """The requested floor and where it came from: body ``tau``, ``X-Proteus-Tau``, model ``proteus-tau-<τ>``, or the tenant's default."""
        if body_tau is not None:
            return _check_tau(body_tau, "tau"), "body"
        header = request.headers.get("x-proteus-tau")
        if header is not None:
            return _check_tau(header, "X-Proteus-Tau"), "header"
        if model is not None and model != ROUTER_MODEL:
            if not isinstance(model, str):
                raise ApiError(400, f"`model` must be a string, got {model!r}.", code="invalid_model", param="model")
            match = _TAU_MODEL.match(model)
            if match is None:
                raise ApiError(404, f"The model {model[:100]!r} is not served here: ask for {ROUTER_MODEL!r} (the target comes from X-Proteus-Tau or "
                               "the tenant) or 'proteus-tau-<τ>', e.g. 'proteus-tau-0.85'.", code="model_not_found", param="model")
            return _check_tau(match.group(1), "model"), "model"
        if tenant.config is None:
            raise ApiError(400, "No accuracy target: send X-Proteus-Tau, ask for model 'proteus-tau-<τ>', or name a tenant with X-Proteus-Tenant.",
                           code="missing_tau")
        return tenant.config.tau, "tenant"

    def served(self, tenant: TenantState, tau: float) -> tuple[float, float | None]:
        """The target to route at (with the tenant's boost) and the calibration confidence level."""
        if tenant.config is None:
            return tau, None
        return tenant.served_tau(tau), tenant.config.confidence

    def record(self, request_id: str, endpoint: str, tenant: TenantState, tau: float, decision: Decision) -> asyncio.Future[None]:
        """Queue the decision's row; count it in the metrics."""
        self.metrics.routed.labels(tenant.name, decision.model).inc()
        if math.isfinite(decision.expected_cost_usd):
            self.metrics.spend.labels(tenant.name, decision.model, "expected").inc(max(decision.expected_cost_usd, 0.0))
        return self.store.record(ServedRecord(id=request_id, tenant=tenant.name, created=time.time(), endpoint=endpoint, tau=tau,
                                              tau_served=decision.tau_served, tau_input=decision.tau_input, model=decision.model,
                                              expected_accuracy=decision.expected_accuracy, expected_cost_usd=decision.expected_cost_usd))

    @staticmethod
    async def persisted(future: asyncio.Future[None], request_id: str) -> None:
        """Wait for a served row's commit; a failed write is logged (the answer still goes out)."""
        try:
            await future
        except Exception:
            log.exception("could not store served request %s: feedback for it will be refused", request_id)

    # ------------------------------------------------------------------ handlers
    async def chat_completions(self, request: Request, labels: dict[str, str]) -> Response:
        """``POST /v1/chat/completions``."""
        start = time.perf_counter()
        body = await self.read_json(request)
        tenant = self.resolve_tenant(request)
        labels["tenant"] = tenant.name
        tau, source = self.resolve_tau(request, body.get("model"), tenant)
        text = _prompt_text(body.get("messages"))
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise ApiError(400, f"`stream` must be true or false, got {stream!r}.", code="invalid_stream", param="stream")
        tau_served, confidence = self.served(tenant, tau)
        if not self.serving.has_encoder:
            raise ApiError(400, self._no_encoder_message(), code="router_needs_embeddings")
        try:
            decision = await self.batcher.route(text, tau_served, confidence)
        except ValueError as exc:
            raise ApiError(400, f"Cannot route this request: {exc}", code="routing_failed") from None
        routed = time.perf_counter()
        self.metrics.routing_latency.observe(routed - start)
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        written = self.record(request_id, "chat", tenant, tau, decision)
        assert self.pool is not None
        upstream = self.pool[decision.model]
        payload = {**body, "model": upstream.config.model}
        headers = {"x-proteus-model": decision.model, "x-proteus-upstream-model": upstream.config.model, "x-proteus-request-id": request_id,
                   "x-proteus-tenant": tenant.name, "x-proteus-tau": f"{tau:.6g}", "x-proteus-tau-source": source,
                   "x-proteus-tau-served": f"{tau_served:.6g}", "x-proteus-tau-input": f"{decision.tau_input:.6g}",
                   "x-proteus-reachable": "true" if decision.reachable else "false"}
        proteus_info = {"tenant": tenant.name, "tau": tau, "tau_source": source, "tau_served": tau_served, "tau_input": decision.tau_input,
                        "reachable": decision.reachable, "mu": decision.mu, "expected_accuracy": decision.expected_accuracy,
                        "expected_cost_usd": decision.expected_cost_usd}
        try:
            if stream:
                response = await self.pool.open_stream(upstream, payload)
            else:
                data, response = await self.pool.complete(upstream, payload)
        except ApiError as exc:
            self.metrics.upstream_errors.labels(decision.model, exc.code or "error").inc()
            await self.persisted(written, request_id)
            await self.store.forget(request_id)
            raise
        upstream_s = time.perf_counter() - routed
        self.metrics.upstream_latency.labels(decision.model).observe(upstream_s)
        await self.persisted(written, request_id)
        overhead_s = time.perf_counter() - start - upstream_s
        self.metrics.overhead_latency.observe(overhead_s)
        headers["server-timing"] = f"route;dur={(routed - start) * 1e3:.3f}, upstream;dur={upstream_s * 1e3:.3f}, overhead;dur={overhead_s * 1e3:.3f}"
        if stream:
            def rewrite(event: dict[str, Any]) -> None:
                event["id"] = request_id
                event["model"] = decision.model

            return StreamingResponse(relay_sse(upstream, response, rewrite), media_type="text/event-stream",
                                     headers={**headers, "cache-control": "no-cache"})
        proteus_info["upstream_id"] = data.get("id")
        data["id"] = request_id
        data["model"] = decision.model
        data["proteus"] = proteus_info
        return Response(_dumps(data), media_type="application/json", headers=headers)

    async def route(self, request: Request, labels: dict[str, str]) -> Response:
        """``POST /v1/route``: decisions for a batch of prompts or embeddings."""
        start = time.perf_counter()
        body = await self.read_json(request)
        tenant = self.resolve_tenant(request)
        labels["tenant"] = tenant.name
        tau, source = self.resolve_tau(request, body.get("model"), tenant, body.get("tau"))
        tau_served, confidence = self.served(tenant, tau)
        has_input, has_embeddings = body.get("input") is not None, body.get("embeddings") is not None
        if has_input == has_embeddings:
            raise ApiError(400, "Send exactly one of `input` (a prompt or a list of prompts) and `embeddings` (with `prompt_tokens`).",
                           code="invalid_input", param="input")
        try:
            if has_input:
                texts = body["input"]
                texts = [texts] if isinstance(texts, str) else texts
                if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
                    raise ApiError(400, "`input` must be a prompt or a non-empty list of prompts (strings).", code="invalid_input", param="input")
                self._check_batch(len(texts), "input")
                if not self.serving.has_encoder:
                    raise ApiError(400, self._no_encoder_message(), code="router_needs_embeddings", param="input")
                decisions = await self.batcher.run(self.serving.decide_texts, texts, [tau_served] * len(texts), [confidence] * len(texts))
            else:
                embeddings, tokens = self._embeddings(body)
                decisions = await self.batcher.run(self.serving.decide, embeddings, tokens, [tau_served] * len(tokens), [confidence] * len(tokens))
        except ValueError as exc:
            raise ApiError(400, f"Cannot route this request: {exc}", code="routing_failed") from None
        self.metrics.routing_latency.observe(time.perf_counter() - start)
        data, writes = [], []
        for i, decision in enumerate(decisions):
            request_id = f"route-{uuid.uuid4().hex}"
            writes.append(self.record(request_id, "route", tenant, tau, decision))
            assert self.pool is not None
            data.append({"index": i, "id": request_id, "model": decision.model, "upstream_model": self.pool[decision.model].config.model,
                         "mu": decision.mu, "expected_accuracy": decision.expected_accuracy, "expected_cost_usd": decision.expected_cost_usd})
        for future in {id(w): w for w in writes}.values():
            await self.persisted(future, "(route batch)")
        first = decisions[0]
        return _json({"object": "list", "tenant": tenant.name, "tau": tau, "tau_source": source, "tau_served": tau_served,
                      "confidence": confidence,
                      "tau_input": first.tau_input, "reachable": first.reachable, "max_reachable": self.serving.max_reachable, "data": data})

    async def feedback(self, request: Request, labels: dict[str, str]) -> Response:
        """``POST /v1/feedback``: realized scores of served request ids."""
        body = await self.read_json(request)
        items = self._feedback_items(body)
        assert self._feedback_lock is not None
        async with self._feedback_lock:  # one feedback batch at a time: lookups and commits cannot interleave
            stored = await self.store.lookup([request_id for request_id, _, _ in items])
            unknown = [request_id for request_id, _, _ in items if request_id not in stored]
            if unknown:
                shown = ", ".join(repr(u[:80]) for u in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
                raise ApiError(404, f"Unknown request id(s) {shown}: not served by this server (or older than the retention period); "
                               "no feedback of this call was recorded.", code="unknown_request_id", param="feedback")
            fresh: list[tuple[str, float, float | None]] = []
            duplicates = 0
            for request_id, score, cost in items:
                previous = stored[request_id].score
                if previous is None:
                    fresh.append((request_id, score, cost))
                elif abs(previous - score) <= 1e-9:
                    duplicates += 1  # the same feedback again (a client retry): already counted
                else:
                    raise ApiError(409, f"Request {request_id!r} already has feedback score {previous:g}; it cannot be changed to {score:g}. "
                                   "No feedback of this call was recorded.", code="feedback_conflict", param="feedback")
            by_tenant: dict[str, list[tuple[float, float, float | None]]] = {}
            for request_id, score, cost in fresh:
                row = stored[request_id]
                by_tenant.setdefault(row.tenant, []).append((score, row.tau, cost))
            new_states = {}
            for name, tenant_items in by_tenant.items():
                state = self.tenants.get(name) or TenantState.new(name, self.config.tenants.get(name), self.config.controller)
                new_states[name] = state.with_feedback(tenant_items)
            if fresh:
                try:
                    await self.store.commit_feedback(fresh, {name: state.to_dict() for name, state in new_states.items()})
                except RuntimeError as exc:
                    raise ApiError(409, f"Feedback conflict: {exc}; no feedback of this call was recorded.", code="feedback_conflict") from None
            for name, state in new_states.items():  # durable: now it takes effect
                self.tenants[name] = state
                self.metrics.set_tenant(state)
            for request_id, _, cost in fresh:
                if cost is not None:
                    row = stored[request_id]
                    self.metrics.spend.labels(row.tenant, row.model, "realized").inc(cost)
        labels["tenant"] = next(iter(new_states), "-") if len(new_states) == 1 else "-"
        return _json({"object": "feedback", "accepted": len(fresh), "duplicates": duplicates,
                      "tenants": [self.tenants[name].summary() for name in new_states]})

    async def tenant_summaries(self, request: Request, labels: dict[str, str]) -> Response:
        """``GET /v1/tenants``."""
        return _json({"object": "list", "data": [self.tenants[name].summary() for name in sorted(self.tenants)]})

    async def tenant_summary(self, request: Request, labels: dict[str, str]) -> Response:
        """``GET /v1/tenants/{name}``."""
        name = request.path_params["name"]
        if name not in self.tenants:
            raise ApiError(404, f"Unknown tenant {name[:64]!r}.", code="unknown_tenant", param="name")
        labels["tenant"] = name if name in self.config.tenants else "-"
        return _json(self.tenants[name].summary())

    async def models(self, request: Request, labels: dict[str, str]) -> Response:
        """``GET /v1/models``: the router's model names (what clients ask for)."""
        created = int(self.started)
        return _json({"object": "list", "data": [{"id": ROUTER_MODEL, "object": "model", "created": created, "owned_by": "proteus",
                                                  "proteus": {"routes_among": self.serving.allowed, "max_reachable": self.serving.max_reachable}}]})

    async def healthz(self, request: Request, labels: dict[str, str]) -> Response:
        """``GET /healthz``."""
        return _json({"status": "ok", "router": self.router.identity.get("name"), "models": self.serving.allowed,
                      "tenants": sorted(self.config.tenants), "uptime_s": round(time.time() - self.started, 3)})

    def metrics_text(self) -> Response:
        """``GET /metrics``."""
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------ parsing
    def _no_encoder_message(self) -> str:
        name = self.router.identity.get("name", "unknown")
        return (f"This router has no text encoder (it was trained on benchmark {name!r}, which has no prompts): "
                f"it cannot route chat messages; use /v1/route with `embeddings` ({self.serving.embedding_dim} numbers each) and `prompt_tokens`.")

    def _check_batch(self, n: int, param: str) -> None:
        if n > self.settings.max_route_batch:
            raise ApiError(400, f"At most {self.settings.max_route_batch} queries per call, got {n}.", code="batch_too_large", param=param)

    def _embeddings(self, body: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        rows, tokens = body.get("embeddings"), body.get("prompt_tokens")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
            raise ApiError(400, "`embeddings` must be a non-empty list of lists of numbers.", code="invalid_input", param="embeddings")
        self._check_batch(len(rows), "embeddings")
        if not isinstance(tokens, list) or len(tokens) != len(rows):
            raise ApiError(400, f"`prompt_tokens` must be a list of {len(rows)} numbers (one per embedding).", code="invalid_input",
                           param="prompt_tokens")
        try:
            embeddings = np.array(rows, dtype=np.float64)
            token_array = np.array(tokens, dtype=np.float64)
        except (TypeError, ValueError):
            raise ApiError(400, "`embeddings` and `prompt_tokens` must hold numbers only.", code="invalid_input", param="embeddings") from None
        if embeddings.ndim != 2 or embeddings.shape[1] != self.serving.embedding_dim:
            raise ApiError(400, f"Each embedding must have {self.serving.embedding_dim} numbers.", code="invalid_input", param="embeddings")
        return embeddings, token_array

    def _feedback_items(self, body: dict[str, Any]) -> list[tuple[str, float, float | None]]:
        raw = body.get("feedback", [body] if "id" in body else None)
        if not isinstance(raw, list) or not raw:
            raise ApiError(400, 'Send {"feedback": [{"id": <request id>, "score": <realized score in [0, 1]>, "cost_usd": <optional>}, ...]}.',
                           code="invalid_feedback", param="feedback")
        if len(raw) > self.settings.max_feedback_items:
            raise ApiError(400, f"At most {self.settings.max_feedback_items} feedback items per call, got {len(raw)}.", code="invalid_feedback",
                           param="feedback")
        items, seen = [], set()
        for i, item in enumerate(raw):
            where = f"feedback[{i}]"
            if not isinstance(item, dict):
                raise ApiError(400, f"{where} must be an object with `id` and `score`.", code="invalid_feedback", param=where)
            request_id = item.get("id")
            if not isinstance(request_id, str) or not request_id:
                raise ApiError(400, f"{where}.id must be the id of a served request (a string).", code="invalid_feedback", param=f"{where}.id")
            if request_id in seen:
                raise ApiError(400, f"{where}.id {request_id!r} appears twice in this call.", code="invalid_feedback", param=f"{where}.id")
            seen.add(request_id)
            score = _number(item.get("score"), f"{where}.score", high=1.0)
            cost = item.get("cost_usd")
            if cost is not None:
                cost = _number(cost, f"{where}.cost_usd", high=math.inf)
            items.append((request_id, score, cost))
        return items


def create_app(router: ProteusRouter | str | Path, config: ServeConfig | str | Path, *, state_path: str | Path,
               settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app of ``proteus serve`` (run it with uvicorn).

    Args:
        router: A loaded router or its artifact directory.
        config: The configuration or the path of ``upstreams.yaml``.
        state_path: The SQLite state file (created if missing).
        settings: Limits and upkeep.

    Raises:
        FileNotFoundError: If the router or the configuration file is missing.
        ValueError: On an invalid configuration, upstreams naming models the router does not know,
            or an ``api_key_env`` that is not set.
    """
    server = ProteusServer(router, config, state_path, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.startup()
        try:
            yield
        finally:
            await server.shutdown()

    app = FastAPI(title="proteus serve", description="An OpenAI-compatible router with per-tenant accuracy targets.", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    install_error_handlers(app)
    metrics = server.metrics

    def endpoint(name: str, handler: Callable[[Request, dict[str, str]], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            start = time.perf_counter()
            labels = {"tenant": "unknown"}
            try:
                response = await handler(request, labels)
            except ApiError as exc:
                response = exc.response()
            except Exception as exc:  # a bug, not the client's fault: answer 500 and keep serving
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                response = ApiError(500, f"Internal server error ({type(exc).__name__}); the server keeps running. See its log.",
                                    code="internal_error").response()
            metrics.requests.labels(name, labels["tenant"], str(response.status_code)).inc()
            metrics.request_latency.labels(name).observe(time.perf_counter() - start)
            return response

        run.__name__ = f"proteus_{name}"
        return run

    app.add_api_route("/v1/chat/completions", endpoint("chat", server.chat_completions), methods=["POST"])
    app.add_api_route("/v1/route", endpoint("route", server.route), methods=["POST"])
    app.add_api_route("/v1/feedback", endpoint("feedback", server.feedback), methods=["POST"])
    app.add_api_route("/v1/tenants", endpoint("tenants", server.tenant_summaries), methods=["GET"])
    app.add_api_route("/v1/tenants/{name}", endpoint("tenants", server.tenant_summary), methods=["GET"])
    app.add_api_route("/v1/models", endpoint("models", server.models), methods=["GET"])
    app.add_api_route("/healthz", endpoint("healthz", server.healthz), methods=["GET"])
    app.add_api_route("/metrics", lambda: server.metrics_text(), methods=["GET"])
    return app


# ---------------------------------------------------------------------- helpers
def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value, separators=(",", ":"), ensure_ascii=False), status_code=status, media_type="application/json")


def _check_tau(value: Any, param: str) -> float:
    if isinstance(value, bool):
        raise ApiError(400, f"τ ({param}) must be a number in [0, 1], got {value!r}.", code="invalid_tau", param=param)
    try:
        tau = float(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"τ ({param}) must be a number in [0, 1], got {str(value)[:50]!r}.", code="invalid_tau", param=param) from None
    if not 0.0 <= tau <= 1.0:  # also NaN
        raise ApiError(400, f"τ ({param}) must lie in [0, 1], got {tau}.", code="invalid_tau", param=param)
    return tau


def _number(value: Any, param: str, *, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"{param} must be a number, got {value!r}.", code="invalid_feedback", param=param)
    number = float(value)
    if not (0.0 <= number <= high) or math.isinf(number):
        raise ApiError(400, f"{param} must lie in [0, {high:g}], got {value!r}.", code="invalid_feedback", param=param)
    return number


def _prompt_text(messages: Any) -> str:
    """The text the router sees: every message's text content, in order, one per line."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "`messages` must be a non-empty list of {role, content} objects.", code="invalid_messages", param="messages")
    parts = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(400, f"messages[{i}] must be an object with `role` and `content`.", code="invalid_messages", param=f"messages[{i}]")
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # content parts: keep the text ones
            parts.extend(str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text")
        elif content is not None:
            raise ApiError(400, f"messages[{i}].content must be a string or a list of content parts.", code="invalid_messages",
                           param=f"messages[{i}].content")
    return "\n".join(parts)
