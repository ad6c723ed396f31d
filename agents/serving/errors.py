"""Errors in OpenAI's format: ``{"error": {"message", "type", "param", "code"}}`` with a 4xx/5xx status.

Every error the server returns goes through :class:`ApiError` (or is converted into one by the
handlers :func:`install_error_handlers` registers), so clients such as the ``openai`` package
raise their usual exceptions (``BadRequestError``, ``NotFoundError``, ``APIStatusError`` ...).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("proteus.serve")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "invalid_request_error",
          405: "invalid_request_error", 409: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error",
          422: "invalid_request_error", 500: "server_error", 502: "upstream_error", 503: "server_error"}


class ApiError(Exception):
    """An error answered in OpenAI's format.

    Args:
        status: HTTP status.
        message: What went wrong, naming the value or upstream.
        code: A short machine-readable code (``invalid_tau``, ``unknown_tenant`` ...).
        param: The request field at fault, if any.
        error_type: OpenAI's ``type`` (by default derived from the status).
        headers: Extra response headers.
    """

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None, error_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.error_type = error_type or _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        """The HTTP response."""
        return Response(json.dumps(self.body(), ensure_ascii=False), status_code=self.status, media_type="application/json", headers=self.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error (ours, Starlette's 404/405, validation, unexpected) in OpenAI's format."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return ApiError(exc.status_code, message, code=code, headers=dict(exc.headers or {})).response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return ApiError(400, f"Invalid request: {exc.errors()}", code="invalid_request").response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        message = f"Internal server error ({type(exc).__name__}); the server keeps running. See its log."
        return ApiError(500, message, code="internal_error").response()
