"""`proteus serve` over HTTP: routing, streaming, the OpenAI client, /v1/route, metrics, and the request errors.

One server (uvicorn on a thread, a free 127.0.0.1 port) with a stub upstream for every model.
"""

from __future__ import annotations

import json

import httpx
import pytest

from agents.serving import create_app, parse_config
from agents.serving.stub import ThreadedServer

from .helpers import KEY_VALUE, TIMEOUT, assert_openai_error, upstreams_for

MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def server(rb_router, rb_models, stub, tmp_path_factory):
    """``(server, client, stub)``: a server routing among every model, each sent to the stub."""
    upstream, url = stub
    config = parse_config({"upstreams": upstreams_for(rb_models, f"{url}/v1"),
                           "tenants": {"acme": {"tau": 0.7}, "careful": {"tau": 0.6, "confidence": 0.95}}}, source="upstreams.yaml")
    app = create_app(rb_router, config, state_path=tmp_path_factory.mktemp("state") / "state.sqlite")
    with ThreadedServer(app) as running, httpx.Client(base_url=running.url, timeout=TIMEOUT) as client:
        yield running, client, upstream


def chat(client, *, headers=None, **body):
    return client.post("/v1/chat/completions", json={"model": "proteus", "messages": MESSAGES, **body}, headers=headers or {})


# ---------------------------------------------------------------------- routing
def test_chat_completion_is_routed_forwarded_and_names_its_model(server, rb_models):
    _, client, upstream = server
    response = chat(client, headers={"X-Proteus-Tau": "0.55"})
    assert response.status_code == 200, response.text
    body = response.json()
    model = response.headers["x-proteus-model"]
    assert model in rb_models and body["model"] == model
    assert body["id"] == response.headers["x-proteus-request-id"] and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"]["content"] == f"stub answer from {model}-up"  # the upstream got its own model id
    assert upstream.last_body["model"] == f"{model}-up" and upstream.last_body["messages"] == MESSAGES
    assert upstream.last_authorization == f"Bearer {KEY_VALUE}"  # the key, from the environment variable
    assert response.headers["x-proteus-tau"] == "0.55" and response.headers["x-proteus-tau-source"] == "header"
    info = body["proteus"]
    assert info["tau"] == 0.55 and 0 <= info["mu"] <= 1 and 0 <= info["expected_accuracy"] <= 1 and info["upstream_id"].startswith("stub-")
    assert "route;dur=" in response.headers["server-timing"]


def test_target_from_header_model_name_or_tenant(server):
    _, client, _ = server
    by_model = chat(client, model="proteus-tau-0.85")
    assert by_model.status_code == 200 and by_model.headers["x-proteus-tau"] == "0.85" and by_model.headers["x-proteus-tau-source"] == "model"
    by_tenant = chat(client, headers={"X-Proteus-Tenant": "acme"})
    assert by_tenant.headers["x-proteus-tau"] == "0.7" and by_tenant.headers["x-proteus-tau-source"] == "tenant"
    assert by_tenant.headers["x-proteus-tenant"] == "acme"
    header_wins = chat(client, model="proteus-tau-0.85", headers={"X-Proteus-Tau": "0.3", "X-Proteus-Tenant": "acme"})
    assert header_wins.headers["x-proteus-tau"] == "0.3" and header_wins.headers["x-proteus-tau-source"] == "header"


def test_a_higher_target_never_gets_a_lower_policy_input(server):
    _, client, _ = server
    inputs = [float(chat(client, headers={"X-Proteus-Tau": str(tau)}).headers["x-proteus-tau-input"]) for tau in (0.1, 0.4, 0.7, 0.95)]
    assert inputs == sorted(inputs)
    unreachable = chat(client, headers={"X-Proteus-Tau": "0.999"})
    assert unreachable.status_code == 200 and unreachable.headers["x-proteus-reachable"] == "false"


def test_streaming_is_passed_through_as_server_sent_events(server):
    _, client, _ = server
    with client.stream("POST", "/v1/chat/completions", json={"model": "proteus-tau-0.6", "messages": MESSAGES, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        model, request_id = response.headers["x-proteus-model"], response.headers["x-proteus-request-id"]
        data = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]" and len(data) == 5
    events = [json.loads(d) for d in data[:-1]]
    assert all(e["model"] == model and e["id"] == request_id and e["object"] == "chat.completion.chunk" for e in events)
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events) == f"stub answer from {model}-up"


def test_the_openai_client_works_against_the_server(server, rb_models):
    openai = pytest.importorskip("openai")
    running, _, _ = server
    client = openai.OpenAI(base_url=f"{running.url}/v1", api_key="unused", default_headers={"X-Proteus-Tenant": "acme"}, timeout=TIMEOUT,
                           max_retries=0)
    completion = client.chat.completions.create(model="proteus", messages=MESSAGES)
    assert completion.model in rb_models and completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.content == f"stub answer from {completion.model}-up"
    chunks = list(client.chat.completions.create(model="proteus-tau-0.8", messages=MESSAGES, stream=True))
    assert chunks and {c.model for c in chunks} <= set(rb_models) and len({c.id for c in chunks}) == 1
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="proteus-tau-1.5", messages=MESSAGES)
    assert caught.value.code == "invalid_tau"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert [m.id for m in client.models.list()] == ["proteus"]


def test_route_endpoint_decides_a_batch_without_calling_upstreams(server, prompts, rb_models):
    _, client, upstream = server
    before = upstream.requests
    response = client.post("/v1/route", json={"input": prompts[:8], "tau": 0.6})
    assert response.status_code == 200, response.text
    body = response.json()
    assert upstream.requests == before
    assert body["tau"] == 0.6 and body["tau_source"] == "body" and isinstance(body["reachable"], bool) and len(body["data"]) == 8
    for i, decision in enumerate(body["data"]):
        assert decision["index"] == i and decision["model"] in rb_models and decision["upstream_model"] == f"{decision['model']}-up"
        assert decision["id"].startswith("route-") and 0 <= decision["mu"] <= 1 and decision["expected_cost_usd"] > 0
    single = client.post("/v1/route", json={"input": prompts[0]}, headers={"X-Proteus-Tenant": "careful"})
    assert single.status_code == 200 and single.json()["confidence"] == 0.95 and single.json()["tau"] == 0.6
    assert single.json()["tau_input"] >= client.post("/v1/route", json={"input": prompts[0], "tau": 0.6}).json()["tau_input"]


def test_healthz_models_tenants_and_metrics(server, rb_models):
    _, client, _ = server
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and sorted(health["models"]) == sorted(rb_models) and health["tenants"] == ["acme", "careful"]
    chat(client, headers={"X-Proteus-Tenant": "acme"})
    tenants = {t["tenant"]: t for t in client.get("/v1/tenants").json()["data"]}
    assert tenants["acme"]["tau"] == 0.7 and tenants["acme"]["boost"] == 0.0 and tenants["acme"]["tau_served"] == 0.7
    assert client.get("/v1/tenants/acme").json()["tenant"] == "acme"
    assert_openai_error(client.get("/v1/tenants/nobody"), 404, "unknown_tenant")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for needle in ('proteus_requests_total{endpoint="chat",status="200",tenant="acme"}', 'proteus_routed_total{model="',
                   'proteus_request_latency_seconds_bucket{endpoint="chat"', "proteus_routing_latency_seconds_count",
                   'proteus_tenant_tau{tenant="acme"} 0.7', 'proteus_tenant_tau_served{tenant="acme"} 0.7', 'proteus_tenant_tau_boost{tenant="acme"}',
                   'proteus_spend_usd_total{kind="expected",model="', "proteus_upstream_latency_seconds_bucket", "proteus_overhead_latency_seconds"):
        assert needle in text, needle


def test_the_api_key_is_never_shown(server):
    _, client, _ = server
    for path in ("/healthz", "/v1/tenants", "/metrics", "/v1/models"):
        assert KEY_VALUE not in client.get(path).text


# ---------------------------------------------------------------------- request errors
@pytest.mark.parametrize(("content", "code"), [
    (b"{not json", "invalid_json"),
    (b"", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b"[" * 100_000, "invalid_json"),
])
def test_malformed_json_is_a_400(server, content, code):
    _, client, _ = server
    for path in ("/v1/chat/completions", "/v1/route", "/v1/feedback"):
        assert_openai_error(client.post(path, content=content, headers={"content-type": "application/json"}), 400, code)


@pytest.mark.parametrize("tau", ["1.5", "-0.1", "nan", "abc", "inf", ""])
def test_tau_outside_the_unit_interval_is_a_400(server, tau):
    _, client, _ = server
    error = assert_openai_error(chat(client, headers={"X-Proteus-Tau": tau}), 400, "invalid_tau")
    assert error["param"] == "X-Proteus-Tau"
    assert_openai_error(chat(client, model=f"proteus-tau-{tau}"), 400, "invalid_tau")
    assert_openai_error(client.post("/v1/route", json={"input": "x"}, headers={"X-Proteus-Tau": tau}), 400, "invalid_tau")
    assert_openai_error(client.post("/v1/route", json={"input": "x", "tau": tau}), 400, "invalid_tau")


def test_request_errors_are_4xx_in_openai_format(server):
    _, client, _ = server
    assert_openai_error(chat(client, headers={"X-Proteus-Tenant": "nobody"}), 404, "unknown_tenant")
    assert_openai_error(client.post("/v1/route", json={"input": "x"}, headers={"X-Proteus-Tenant": "nobody"}), 404, "unknown_tenant")
    assert_openai_error(chat(client), 400, "missing_tau")  # no header, plain "proteus", no tenant, no default tenant
    assert_openai_error(chat(client, model="gpt-4", headers={"X-Proteus-Tau": "x"}), 400, "invalid_tau")
    assert_openai_error(chat(client, model="gpt-4"), 404, "model_not_found")
    assert_openai_error(chat(client, model=7), 400, "invalid_model")
    assert_openai_error(chat(client, model="proteus-tau-0.5", messages=[]), 400, "invalid_messages")
    assert_openai_error(chat(client, model="proteus-tau-0.5", messages="hello"), 400, "invalid_messages")
    assert_openai_error(chat(client, model="proteus-tau-0.5", messages=[{"role": "user", "content": 5}]), 400, "invalid_messages")
    assert_openai_error(chat(client, model="proteus-tau-0.5", stream="yes"), 400, "invalid_stream")
    assert_openai_error(client.post("/v1/route", json={"tau": 0.5}), 400, "invalid_input")
    assert_openai_error(client.post("/v1/route", json={"tau": 0.5, "input": [1, 2]}), 400, "invalid_input")
    assert_openai_error(client.post("/v1/route", json={"tau": 0.5, "input": ["x"] * 1025}), 400, "batch_too_large")
    assert_openai_error(client.post("/v1/route", json={"tau": 0.5, "embeddings": [[0.0] * 3], "prompt_tokens": [5]}), 400, "invalid_input")
    assert_openai_error(client.get("/v1/chat/completions"), 405, "method_not_allowed")
    assert_openai_error(client.get("/v2/anything"), 404, "not_found")
    assert_openai_error(client.post("/v1/chat/completions", content=b"x" * (9 * 1024 * 1024)), 413, "body_too_large")
    assert client.get("/healthz").json()["status"] == "ok"  # still serving


def test_a_router_without_text_encoder_routes_embeddings(serve, synthetic_router, stub):
    _, url = stub
    models = [str(m) for m in synthetic_router.head.models]
    dim = synthetic_router.head.embedding_dim
    with serve(synthetic_router, {"upstreams": upstreams_for(models[:2], f"{url}/v1")}) as (_, client):
        response = client.post("/v1/route", json={"embeddings": [[0.1] * dim, [-0.2] * dim], "prompt_tokens": [20, 300], "tau": 0.5})
        assert response.status_code == 200, response.text
        assert [d["model"] in models[:2] for d in response.json()["data"]] == [True, True]  # only models with an upstream
        error = assert_openai_error(chat(client, model="proteus-tau-0.5"), 400, "router_needs_embeddings")
        assert f"{dim} numbers" in error["message"]
        assert_openai_error(client.post("/v1/route", json={"input": "text", "tau": 0.5}), 400, "router_needs_embeddings")
        for bad in ({"embeddings": [[0.1] * (dim + 1)], "prompt_tokens": [5]}, {"embeddings": [[0.1] * dim], "prompt_tokens": [5, 6]},
                    {"embeddings": [["a"] * dim], "prompt_tokens": [5]}, {"embeddings": [[float("nan")] * dim], "prompt_tokens": [5]},
                    {"embeddings": [[0.1] * dim], "prompt_tokens": [-5]}, {"embeddings": [], "prompt_tokens": []}):
            response = client.post("/v1/route", content=json.dumps({**bad, "tau": 0.5}), headers={"content-type": "application/json"})
            assert_openai_error(response, 400)


def test_an_internal_error_is_a_500_and_the_server_keeps_serving(serve, rb_router, rb_models, stub, monkeypatch):
    _, url = stub
    with serve(rb_router, {"upstreams": upstreams_for(rb_models, f"{url}/v1")}) as (server, client):
        serving = server.server.config.app.state.server.serving

        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(serving, "decide_texts", broken)
        assert_openai_error(chat(client, model="proteus-tau-0.5"), 500, "internal_error")
        assert_openai_error(client.post("/v1/route", json={"input": "x", "tau": 0.5}), 500, "internal_error")
        monkeypatch.undo()
        assert chat(client, model="proteus-tau-0.5").status_code == 200
        assert 'proteus_requests_total{endpoint="chat",status="500",tenant="-"} 1.0' in client.get("/metrics").text
