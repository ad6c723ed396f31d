"""Prometheus metrics of the server (one registry per app, exposed at ``GET /metrics``).

Names (all prefixed ``proteus_``):

- ``requests_total{endpoint, tenant, status}``: requests answered, by HTTP status;
- ``routed_total{tenant, model}``: routing decisions per chosen model;
- ``request_latency_seconds{endpoint}``: time from request to response headers, upstream included;
- ``routing_latency_seconds``: time to the routing decision (batching, encoder, policy);
- ``overhead_latency_seconds``: the server's own time per chat completion (total minus upstream wait);
- ``upstream_latency_seconds{model}`` and ``upstream_errors_total{model, code}``;
- ``tenant_tau{tenant}`` (the floor), ``tenant_tau_boost{tenant}``, ``tenant_tau_served{tenant}``;
- ``tenant_running_accuracy{tenant}``, ``tenant_feedback_items{tenant}``;
- ``spend_usd_total{tenant, model, kind}``: ``kind="expected"`` (the router's estimate of each
  routed request) and ``kind="realized"`` (costs reported with feedback).

The ``tenant`` label only takes configured tenant names, ``-`` (no tenant) and ``unknown``.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agents.serving.tenants import TenantState

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServeMetrics:
    """The metric families, registered in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("proteus_requests_total", "Requests answered.", ["endpoint", "tenant", "status"], registry=r)
        self.routed = Counter("proteus_routed_total", "Routing decisions per chosen model.", ["tenant", "model"], registry=r)
        self.request_latency = Histogram("proteus_request_latency_seconds", "Time to the response headers, upstream included.", ["endpoint"],
                                         buckets=_LATENCY_BUCKETS, registry=r)
        self.routing_latency = Histogram("proteus_routing_latency_seconds", "Time to the routing decision.", buckets=_LATENCY_BUCKETS, registry=r)
        self.overhead_latency = Histogram("proteus_overhead_latency_seconds", "The server's own time per chat completion (total minus upstream).",
                                          buckets=_LATENCY_BUCKETS, registry=r)
        self.upstream_latency = Histogram("proteus_upstream_latency_seconds", "Upstream time to response headers.", ["model"],
                                          buckets=_LATENCY_BUCKETS, registry=r)
        self.upstream_errors = Counter("proteus_upstream_errors_total", "Upstream failures.", ["model", "code"], registry=r)
        self.tenant_tau = Gauge("proteus_tenant_tau", "The tenant's configured floor.", ["tenant"], registry=r)
        self.tenant_boost = Gauge("proteus_tenant_tau_boost", "The online controller's boost of the tenant's target.", ["tenant"], registry=r)
        self.tenant_served = Gauge("proteus_tenant_tau_served", "The target the tenant's default requests are routed at.", ["tenant"], registry=r)
        self.tenant_accuracy = Gauge("proteus_tenant_running_accuracy", "Running realized accuracy from feedback.", ["tenant"], registry=r)
        self.tenant_feedback = Gauge("proteus_tenant_feedback_items", "Feedback items received (survives restarts).", ["tenant"], registry=r)
        self.spend = Counter("proteus_spend_usd_total", "USD spend: expected at routing, realized from feedback.", ["tenant", "model", "kind"],
                             registry=r)

    def set_tenant(self, state: TenantState) -> None:
        """Publish one tenant's online state."""
        if state.config is not None:
            self.tenant_tau.labels(state.name).set(state.config.tau)
            self.tenant_served.labels(state.name).set(state.served_tau(state.config.tau))
            self.tenant_boost.labels(state.name).set(state.boost)
        accuracy = state.running_accuracy
        if not math.isnan(accuracy):
            self.tenant_accuracy.labels(state.name).set(accuracy)
        self.tenant_feedback.labels(state.name).set(state.feedback_count)
