"""Helpers shared by the `proteus serve` tests (constants, config builders, error checks)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

REPO_ROOT = Path(__file__).resolve().parents[3]
ROUTERBENCH_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "routerbench" / "routerbench_0shot_sample365.csv"
#: The API key the stub upstreams expect (read by the server from this variable).
KEY_ENV = "PROTEUS_TEST_UPSTREAM_KEY"
KEY_VALUE = "sk-test-not-a-real-key-0123456789"
#: Every HTTP call of the tests is bounded by this.
TIMEOUT = 20.0


def upstreams_for(models: list[str], base_url: str, **extra: Any) -> dict[str, dict[str, Any]]:
    """An ``upstreams:`` section sending every model to ``base_url`` with the id ``<name>-up``."""
    return {m: {"base_url": base_url, "model": f"{m}-up", "api_key_env": KEY_ENV, **extra} for m in models}


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Check an error answer: the status and OpenAI's ``{"error": {message, type, param, code}}``; returns the error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"]), body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
