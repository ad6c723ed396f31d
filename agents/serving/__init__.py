"""``proteus serve``: a trained router behind an OpenAI-compatible HTTP API, with per-tenant SLA targets and live feedback.

    from agents.serving import create_app
    app = create_app("artifacts/proteus", "upstreams.yaml", state_path="proteus-serve.sqlite")
    # uvicorn.run(app, host="127.0.0.1", port=8000)

Needs the ``serve`` extra (``pip install -e ".[serve]"``): FastAPI, uvicorn, httpx, prometheus-client.
"""

from agents.serving.app import ProteusServer, ServeSettings, create_app
from agents.serving.config import ServeConfig, load_config, parse_config

__all__ = ["ProteusServer", "ServeConfig", "ServeSettings", "create_app", "load_config", "parse_config"]
