"""SDK exceptions: one per HTTP status, each carrying the server's error code, message and details.

::

    AgentRegClientError
    ├── APIConnectionError          the registry could not be reached
    └── APIError                    an error envelope: code, message, details, request_id, extra
        ├── BadRequestError             400
        ├── AuthenticationError         401
        ├── PermissionDeniedError       403 (``policy_denied``: ``.decision`` says which rules refused)
        ├── NotFoundError               404
        ├── ConflictError               409 (``gates_not_passed``: ``.report``; ``not_admitted``: ``.decision``)
        ├── GoneError                   410 (``.successor``: the successor version's URL, when there is one)
        ├── PreconditionFailedError     412
        ├── PayloadTooLargeError        413
        ├── UnsupportedMediaTypeError   415
        ├── UnprocessableEntityError    422
        ├── BlockedError                423 (the version or its resource is blocked)
        ├── RateLimitedError            429 (``.retry_after``)
        └── InternalServerError         5xx
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agentreg.api.schemas_lifecycle import ReadinessOut
from agentreg.api.schemas_policy import DecisionOut

M = TypeVar("M", bound=BaseModel)
_ENVELOPE_KEYS = frozenset({"code", "message", "details", "request_id"})


class AgentRegClientError(Exception):
    """Base of every exception the SDK raises."""


class APIConnectionError(AgentRegClientError):
    """The registry could not be reached."""


class APIError(AgentRegClientError):
    """The registry answered with an error envelope.

    ``extra`` holds the error object's other fields as sent (``report``, ``decision``); ``report`` and
    ``decision`` read them as typed models.
    """

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str,
        details: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
        body: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.details = details or []
        self.request_id = request_id
        self.body = body
        self.extra: dict[str, Any] = extra or {}

    def __str__(self) -> str:
        return f"{self.message} ({self.code}, HTTP {self.status_code})"

    @property
    def report(self) -> ReadinessOut | None:
        """A refused promotion's readiness report (``gates_not_passed``): every gate, its evidence, what is missing."""
        return _model(ReadinessOut, self.extra.get("report"))

    @property
    def decision(self) -> DecisionOut | None:
        """The policy decision behind ``policy_denied`` or ``not_admitted``: every rule's result."""
        return _model(DecisionOut, self.extra.get("decision"))


def _model(model: type[M], value: Any) -> M | None:
    if not isinstance(value, dict):
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None  # a shape this SDK does not know: ``extra`` still holds it as sent


def extra_fields(error: dict[str, Any]) -> dict[str, Any]:
    """The fields of an error object besides the envelope's own."""
    return {k: v for k, v in error.items() if k not in _ENVELOPE_KEYS}


class BadRequestError(APIError):
    status_code = 400


class AuthenticationError(APIError):
    status_code = 401


class PermissionDeniedError(APIError):
    status_code = 403


class NotFoundError(APIError):
    status_code = 404


class ConflictError(APIError):
    status_code = 409


class GoneError(APIError):
    """A retired version, or one past its sunset, reached through an alias; ``successor`` is the URL of the
    version that replaces it (from the ``Link: <…>; rel="successor-version"`` header), when there is one."""

    status_code = 410
    successor: str | None = None


class PreconditionFailedError(APIError):
    status_code = 412


class PayloadTooLargeError(APIError):
    status_code = 413


class UnsupportedMediaTypeError(APIError):
    status_code = 415


class UnprocessableEntityError(APIError):
    status_code = 422


class BlockedError(APIError):
    """The version (or its whole resource) is blocked: the kill switch. Admins may still read it with
    ``include_blocked=True``."""

    status_code = 423


class RateLimitedError(APIError):
    """Too many requests: wait ``retry_after`` seconds (from the Retry-After header, when sent)."""

    status_code = 429
    retry_after: float | None = None


class InternalServerError(APIError):
    status_code = 500


BY_STATUS: dict[int, type[APIError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        GoneError,
        PreconditionFailedError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        UnprocessableEntityError,
        BlockedError,
        RateLimitedError,
    )
}
