"""The one place that knows HTTP statuses: domain errors → status + error code, and the error envelope."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from agentreg.api.ratelimit import retry_after_header
from agentreg.domain.errors import (
    AgentRegError,
    Blocked,
    BreakingChange,
    Conflict,
    FieldIssue,
    Forbidden,
    GatesNotPassed,
    Gone,
    Invalid,
    InvalidRequest,
    InvalidTransition,
    Malformed,
    NotAdmitted,
    NotFound,
    PolicyDenied,
    PreconditionFailed,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unresolved,
    Unsupported,
)

log = logging.getLogger("agentreg.api")

# Most specific first: the first class in an error's MRO that is listed here decides.
ERRORS: dict[type[AgentRegError], tuple[int, str]] = {
    Malformed: (400, "malformed"),
    Unauthenticated: (401, "unauthenticated"),
    Forbidden: (403, "forbidden"),
    NotFound: (404, "not_found"),
    PolicyDenied: (403, "policy_denied"),
    Gone: (410, "gone"),
    Blocked: (423, "blocked"),
    Unresolved: (409, "unresolved_ref"),
    InvalidTransition: (409, "invalid_transition"),
    GatesNotPassed: (409, "gates_not_passed"),
    NotAdmitted: (409, "not_admitted"),
    Conflict: (409, "conflict"),
    PreconditionFailed: (412, "precondition_failed"),
    TooLarge: (413, "too_large"),
    Unsupported: (415, "unsupported_media_type"),
    RateLimited: (429, "rate_limited"),
    InvalidRequest: (422, "invalid_request"),
    BreakingChange: (422, "breaking_change"),
    Invalid: (422, "invalid_document"),
}
_HTTP_CODES = {400: "malformed", 404: "not_found", 405: "method_not_allowed", 406: "not_acceptable"}


def status_and_code(error: AgentRegError) -> tuple[int, str]:
    for cls in type(error).__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    return 500, "internal"


def error_payload(
    code: str,
    message: str,
    details: tuple[FieldIssue, ...] | list[FieldIssue],
    request_id: str | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, object]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": [{"field": d.field, "issue": d.issue} for d in details],
            "request_id": request_id,
            **(extra or {}),
        }
    }


def error_headers(error: AgentRegError) -> dict[str, str]:
    """Headers an error answer carries besides the envelope (how to authenticate, when to retry)."""
    if isinstance(error, Unauthenticated):
        return {"www-authenticate": 'Bearer realm="agentreg"'}
    if isinstance(error, RateLimited):
        return {"retry-after": retry_after_header(error.retry_after)}
    if isinstance(error, Gone) and error.successor is not None:
        return {"link": f'<{error.successor}>; rel="successor-version"'}
    return {}


def error_body(error: AgentRegError, request_id: str | None) -> tuple[int, bytes]:
    status, code = status_and_code(error)
    payload = error_payload(code, error.message, error.details, request_id, error.extra)
    return status, json.dumps(payload, default=str).encode()


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _json(status: int, payload: dict[str, object], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(payload, status_code=status, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgentRegError)
    status, code = status_and_code(exc)
    payload = error_payload(code, exc.message, exc.details, request_id_of(request), exc.extra)
    return _json(status, payload, error_headers(exc) or None)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        malformed = Malformed("the body is not valid JSON")
        return _json(400, error_payload("malformed", malformed.message, [], request_id_of(request)))
    details = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ())]
        where = location[0] if location else "request"
        path = "/" + "/".join(location[1:]) if len(location) > 1 else ""
        field = f"{path}" if where == "body" else f"/{location[-1]}" if location else ""
        details.append(FieldIssue(field, f"{error.get('msg', 'invalid')} (in {where})"))
    message = details[0].field + ": " + details[0].issue if details else "invalid request"
    return _json(422, error_payload("invalid_request", message, details, request_id_of(request)))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return _json(
        exc.status_code, error_payload(code, message, [], request_id_of(request)), dict(exc.headers or {})
    )


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client closed the connection mid-request; nobody will read this answer.
    log.debug("client disconnected", extra={"request_id": request_id_of(request)})
    return Response(status_code=499)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Never leak internals: the log has the traceback, the client gets the request id to quote.
    log.exception("unhandled error", extra={"request_id": request_id_of(request)})
    return _json(500, error_payload("internal", "internal server error", [], request_id_of(request)))


def install(app: FastAPI) -> None:
    app.add_exception_handler(AgentRegError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
