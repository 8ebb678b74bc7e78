"""SDK exceptions: one per HTTP status, each carrying the server's error code, message and details."""

from __future__ import annotations

from typing import Any


class AgentRegClientError(Exception):
    """Base of every exception the SDK raises."""


class APIConnectionError(AgentRegClientError):
    """The registry could not be reached."""


class APIError(AgentRegClientError):
    """The registry answered with an error envelope."""

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
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.details = details or []
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        return f"{self.message} ({self.code}, HTTP {self.status_code})"


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


class PreconditionFailedError(APIError):
    status_code = 412


class PayloadTooLargeError(APIError):
    status_code = 413


class UnsupportedMediaTypeError(APIError):
    status_code = 415


class UnprocessableEntityError(APIError):
    status_code = 422


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
        PreconditionFailedError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        UnprocessableEntityError,
        RateLimitedError,
    )
}
