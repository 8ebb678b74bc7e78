"""Typed domain errors; the API maps each class to one HTTP status and error code.

AgentRegError
├── Malformed          the request body cannot be parsed at all (bad JSON/YAML, wrong media type)
├── Invalid            parsed, but fails validation; carries field-level details
│   └── BreakingChange     a breaking change without a major version bump (tenant policy refuses it)
├── NotFound           no such object (or it belongs to a tenant the caller cannot see)
├── Conflict           the change contradicts stored state (same version, other content)
│   ├── InvalidTransition  the lifecycle move is not allowed from the version's state
│   ├── GatesNotPassed     a promotion's gates did not pass (the readiness report rides along)
│   └── NotAdmitted        no version the selector picks is admitted in the environment
├── Blocked            the version or resource is blocked (kill switch)
├── Gone               the version is retired (or past its sunset); the successor is linked
├── PolicyDenied       the tenant's governance policy refuses it (the decision rides along)
├── PreconditionFailed an If-Match precondition did not hold
├── TooLarge           the body exceeds the size limit
├── Unauthenticated    no or bad credentials
├── Forbidden          authenticated, but not allowed
└── RateLimited        too many requests; retry after ``retry_after`` seconds
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One problem with one field; ``field`` is an RFC 6901 JSON pointer into the input."""

    field: str
    issue: str


class AgentRegError(Exception):
    """Base of every error agentreg raises on purpose."""

    def __init__(
        self, message: str, details: Sequence[FieldIssue] = (), extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: tuple[FieldIssue, ...] = tuple(details)
        # More of the answer, rendered into the error object beside code and message (e.g. "report").
        self.extra: Mapping[str, Any] = extra or {}


class Malformed(AgentRegError):
    """The input could not be parsed."""


class Invalid(AgentRegError):
    """The input parsed but is not valid; ``details`` names every field at fault."""

    @classmethod
    def at(cls, field: str, issue: str) -> Self:
        return cls.of([FieldIssue(field, issue)])

    @classmethod
    def of(cls, problems: Sequence[FieldIssue]) -> Self:
        """All the problems, summarized by the first: "/spec/x: is required (and 2 more)"."""
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return cls(f"{first.field or '/'}: {first.issue}{more}", problems)


class BreakingChange(Invalid):
    """A version breaks compatibility with the previous one of its major; ``details`` names each change."""


class InvalidRequest(Invalid):
    """A request parameter (not a document) is invalid."""


class Unsupported(AgentRegError):
    """The body's media type is not one this endpoint accepts."""


class NotFound(AgentRegError):
    """The object does not exist or is not visible to the caller."""


class Conflict(AgentRegError):
    """The request contradicts what is stored."""


class Unresolved(Conflict):
    """A ref in a stored spec cannot be resolved to a version now."""


class InvalidTransition(Conflict):
    """The lifecycle move is not allowed from the version's current state."""


class GatesNotPassed(Conflict):
    """A promotion's gates did not all pass; ``extra["report"]`` is the readiness report."""


class NotAdmitted(Conflict):
    """The environment's policy admits no version the selector picks; ``extra["decision"]`` says why."""


class Blocked(AgentRegError):
    """The version or its resource is blocked by a tenant admin."""


class Gone(AgentRegError):
    """The version is retired (or deprecated past its sunset); ``successor`` is a path to use instead."""

    def __init__(self, message: str, successor: str | None = None) -> None:
        super().__init__(message)
        self.successor = successor


class PolicyDenied(AgentRegError):
    """The tenant's governance policy refuses the change; ``extra["decision"]`` lists the rules."""


class PreconditionFailed(AgentRegError):
    """An If-Match precondition did not hold."""


class TooLarge(AgentRegError):
    """The request body is larger than allowed."""


class Unauthenticated(AgentRegError):
    """Credentials are missing or invalid."""


class Forbidden(AgentRegError):
    """The caller may not do this."""


class RateLimited(AgentRegError):
    """Too many requests from one principal or client address."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
