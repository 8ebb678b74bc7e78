"""What the current request is, for audit events: set by the API, read by ``services.audit``."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestInfo:
    request_id: str | None = None
    client_ip: str | None = None


NO_REQUEST = RequestInfo()
current_request: ContextVar[RequestInfo] = ContextVar("agentreg_request", default=NO_REQUEST)
