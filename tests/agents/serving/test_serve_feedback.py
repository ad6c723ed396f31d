"""Feedback, the online controller, persistence across restarts and crashes, and the `proteus serve` CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from agents.cli import main

from .helpers import KEY_ENV, KEY_VALUE, TIMEOUT, assert_openai_error, upstreams_for

MESSAGES = [{"role": "user", "content": "Prove that the square root of 2 is irrational."}]
DRIFT = {"tau": 0.7, "controller": {"update_every": 4, "eta": 0.5, "max_boost": 0.2, "half_life": 1000}}


def _config(models, url, **tenants):
    return {"upstreams": upstreams_for(models, f"{url}/v1"), "tenants": tenants or {"drift": DRIFT}}


def _serve_ids(client, n, tenant="drift"):
    ids = []
    for _ in range(n):
        response = client.post("/v1/chat/completions", json={"model": "proteus", "messages": MESSAGES}, headers={"X-Proteus-Tenant": tenant})
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    return ids


def _feedback(client, scores):
    return client.post("/v1/feedback", json={"feedback": [{"id": i, "score": s} for i, s in scores]})


def test_feedback_moves_the_running_accuracy_and_raises_the_target_when_the_floor_is_missed(serve, rb_router, rb_models, stub):
    _, url = stub
    with serve(rb_router, _config(rb_models, url)) as (_, client):
        ids = _serve_ids(client, 6)
        before = float(client.post("/v1/chat/completions", json={"model": "proteus", "messages": MESSAGES},
                                   headers={"X-Proteus-Tenant": "drift"}).headers["x-proteus-tau-input"])
        response = _feedback(client, [(i, 0.0) for i in ids[:4]])  # realized accuracy 0 against a 0.7 floor
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["accepted"] == 4 and body["duplicates"] == 0
        (tenant,) = body["tenants"]
        assert tenant["tenant"] == "drift" and tenant["feedback_count"] == 4 and tenant["running_accuracy"] == 0.0
        assert tenant["controller_updates"] == 1 and tenant["boost"] == pytest.approx(0.2) and tenant["tau_served"] == pytest.approx(0.9)
        after = client.post("/v1/chat/completions", json={"model": "proteus", "messages": MESSAGES}, headers={"X-Proteus-Tenant": "drift"})
        assert after.headers["x-proteus-tau"] == "0.7" and float(after.headers["x-proteus-tau-served"]) == pytest.approx(0.9)
        assert float(after.headers["x-proteus-tau-input"]) >= before  # the boosted target asks the policy for at least as much
        metrics = client.get("/metrics").text
        assert 'proteus_tenant_running_accuracy{tenant="drift"} 0.0' in metrics and 'proteus_tenant_feedback_items{tenant="drift"} 4.0' in metrics
        assert 'proteus_tenant_tau_boost{tenant="drift"} 0.2' in metrics
        single = client.post("/v1/feedback", json={"id": ids[4], "score": 1, "cost_usd": 0.002})  # one item, without the list
        assert single.json()["accepted"] == 1 and single.json()["tenants"][0]["realized_cost_usd"] == pytest.approx(0.002)
        assert 'proteus_spend_usd_total{kind="realized"' in client.get("/metrics").text


def test_route_decisions_and_anonymous_requests_take_feedback_too(serve, rb_router, rb_models, stub):
    _, url = stub
    with serve(rb_router, _config(rb_models, url)) as (_, client):
        decided = client.post("/v1/route", json={"input": ["a", "b"]}, headers={"X-Proteus-Tenant": "drift"}).json()["data"]
        anonymous = client.post("/v1/chat/completions", json={"model": "proteus-tau-0.4", "messages": MESSAGES}).json()["id"]
        response = _feedback(client, [(decided[0]["id"], 1.0), (decided[1]["id"], 0.5), (anonymous, 1.0)])
        assert response.status_code == 200 and response.json()["accepted"] == 3
        tenants = {t["tenant"]: t for t in response.json()["tenants"]}
        assert tenants["drift"]["running_accuracy"] == pytest.approx(0.75, abs=1e-3) and tenants["-"]["feedback_count"] == 1
        assert tenants["-"]["boost"] == 0.0 and tenants["-"]["controller"] is None


def test_feedback_errors_record_nothing(serve, rb_router, rb_models, stub):
    _, url = stub
    with serve(rb_router, _config(rb_models, url)) as (_, client):
        first, second = _serve_ids(client, 2)
        error = assert_openai_error(_feedback(client, [(first, 1.0), ("chatcmpl-never-served", 1.0)]), 404, "unknown_request_id")
        assert "chatcmpl-never-served" in error["message"]
        assert client.get("/v1/tenants/drift").json()["feedback_count"] == 0  # the known id of that call was not recorded either
        assert _feedback(client, [(first, 1.0)]).json()["accepted"] == 1
        again = _feedback(client, [(first, 1.0), (second, 0.0)]).json()  # a retry of the same feedback is not counted twice
        assert (again["accepted"], again["duplicates"]) == (1, 1)
        assert_openai_error(_feedback(client, [(first, 0.0)]), 409, "feedback_conflict")
        for bad in ([{"id": first, "score": 1.5}], [{"id": first, "score": "1"}], [{"id": first, "score": True}], [{"id": first}],
                    [{"id": 3, "score": 1.0}], [{"id": first, "score": 1.0}, {"id": first, "score": 1.0}], [], "x", [5],
                    [{"id": first, "score": 1.0, "cost_usd": -1}]):
            assert_openai_error(client.post("/v1/feedback", json={"feedback": bad}), 400, "invalid_feedback")
        assert_openai_error(client.post("/v1/feedback", content=b'{"feedback": [{"id": "x", "score": NaN}]}'), 400, "invalid_feedback")
        assert_openai_error(client.post("/v1/feedback", json={}), 400, "invalid_feedback")
        assert client.get("/v1/tenants/drift").json()["feedback_count"] == 2


def test_tenant_state_and_served_ids_survive_a_restart(serve, rb_router, rb_models, stub, tmp_path):
    _, url = stub
    state = tmp_path / "state.sqlite"
    with serve(rb_router, _config(rb_models, url), state=state) as (_, client):
        ids = _serve_ids(client, 6)
        assert _feedback(client, [(i, 0.0) for i in ids[:4]]).json()["accepted"] == 4
        before = client.get("/v1/tenants/drift").json()
    assert before["boost"] > 0
    with serve(rb_router, _config(rb_models, url), state=state) as (_, client):
        assert client.get("/v1/tenants/drift").json() == before
        assert 'proteus_tenant_feedback_items{tenant="drift"} 4.0' in client.get("/metrics").text
        served = client.post("/v1/chat/completions", json={"model": "proteus", "messages": MESSAGES}, headers={"X-Proteus-Tenant": "drift"})
        assert float(served.headers["x-proteus-tau-served"]) == pytest.approx(0.7 + before["boost"])  # the controller's boost still applies
        response = _feedback(client, [(ids[0], 0.0), (ids[4], 1.0)])  # ids served before the restart
        assert (response.json()["accepted"], response.json()["duplicates"]) == (1, 1)
        assert client.get("/v1/tenants/drift").json()["feedback_count"] == 5


# ---------------------------------------------------------------------- the CLI, as a real process
def _start_cli(router_dir, config_path, state) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, KEY_ENV: KEY_VALUE, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", "import sys; from agents.cli import main; sys.exit(main())", "serve", "--router", str(router_dir),
               "--upstreams", str(config_path), "--state", str(state), "--port", "0", "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "OpenAI-compatible API at " in line:
            url = line.split("API at ")[1].split()[0].removesuffix("/v1")
            with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
                for _ in range(200):
                    try:
                        if client.get("/healthz").status_code == 200:
                            return process, url
                    except httpx.TransportError:
                        time.sleep(0.05)
            break
    process.kill()
    process.wait(timeout=30)
    raise AssertionError(f"`proteus serve` did not start:\n{''.join(lines)}")


@pytest.mark.slow  # two `proteus serve` process start-ups (torch import): about 10 s
def test_accepted_feedback_survives_a_killed_server_process(rb_router_dir, rb_models, stub, tmp_path):
    _, url = stub
    config_path = tmp_path / "upstreams.yaml"
    config_path.write_text(yaml.safe_dump(_config(rb_models, url)))
    state = tmp_path / "state.sqlite"
    process, base = _start_cli(rb_router_dir, config_path, state)
    try:
        with httpx.Client(base_url=base, timeout=TIMEOUT) as client:
            ids = _serve_ids(client, 5)
            assert _feedback(client, [(i, 0.0) for i in ids[:4]]).json()["accepted"] == 4
            before = client.get("/v1/tenants/drift").json()
    finally:
        process.send_signal(signal.SIGKILL)  # no shutdown handler runs
        process.wait(timeout=30)
    process, base = _start_cli(rb_router_dir, config_path, state)
    try:
        with httpx.Client(base_url=base, timeout=TIMEOUT) as client:
            assert client.get("/v1/tenants/drift").json() == before
            response = _feedback(client, [(ids[3], 0.0), (ids[4], 1.0)])  # the last id was served but never scored before the kill
            assert response.status_code == 200 and (response.json()["accepted"], response.json()["duplicates"]) == (1, 1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.filterwarnings("ignore::UserWarning")  # the tiny router is a collapsed policy: loading it warns
def test_cli_user_errors_exit_2_with_a_message(rb_router_dir, rb_models, stub, tmp_path, capsys, monkeypatch):
    _, url = stub
    good = tmp_path / "upstreams.yaml"
    good.write_text(yaml.safe_dump(_config(rb_models, url)))

    def run(*args):
        code = main(["serve", "--router", str(rb_router_dir), "--upstreams", str(good), "--state", str(tmp_path / "s.sqlite"), *args])
        return code, capsys.readouterr().err

    code, err = run("--router", str(tmp_path / "missing"))
    assert code == 2 and err.startswith("proteus serve: error:") and "missing" in err
    code, err = run("--upstreams", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml" in err
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump({"upstreams": {"gpt-5": {"base_url": f"{url}/v1"}}}))
    code, err = run("--upstreams", str(unknown))
    assert code == 2 and "gpt-5" in err and "not models of this router" in err
    monkeypatch.delenv(KEY_ENV)
    code, err = run()
    assert code == 2 and KEY_ENV in err and "not set" in err
    monkeypatch.setenv(KEY_ENV, KEY_VALUE)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        code, err = run("--port", str(busy.getsockname()[1]))
    assert code == 2 and "cannot listen on 127.0.0.1" in err
