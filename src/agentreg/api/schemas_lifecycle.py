"""Wire models of lifecycle moves, readiness, approvals and the governance check."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from agentreg.api.schemas import VersionOut, Wire
from agentreg.domain.names import ENVIRONMENT_PATTERN

StateName = Literal["draft", "experimental", "certified", "deprecated", "retired"]
Reason = Field(min_length=1, max_length=500, description="why (required, at most 500 characters)")


class Strict(Wire):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class PromoteIn(Strict):
    to: StateName | None = Field(default=None, description="the next tier (default: the next one)")
    reason: str = Reason
    fastTrack: bool = Field(default=False, description="past failing gates (tenant admin; recorded)")


class DeprecateIn(Strict):
    reason: str = Reason
    successor: str | None = Field(
        default=None, max_length=500, description="a version of this resource, or kind/namespace/name@version"
    )
    sunset: datetime | None = Field(default=None, description="when resolution stops picking it (RFC 3339)")


class ReasonIn(Strict):
    reason: str = Reason


class ApproveIn(Strict):
    to: StateName | None = Field(default=None, description="the tier approved for (default: the next one)")
    comment: str = Field(default="", max_length=500)
    approver: str | None = Field(
        default=None, max_length=200, description="single-user mode only: who approves, by name"
    )


class GateOut(Wire):
    gate: str
    status: Literal["pass", "fail", "pending"]
    evidence: dict[str, Any]
    missing: str | None = None
    config: dict[str, Any] = {}


class ReadinessOut(Wire):
    ref: str
    state: StateName
    target: StateName
    ready: bool
    fastTracked: bool = False
    gates: list[GateOut]


class PromoteOut(VersionOut):
    report: ReadinessOut


class ApprovalOut(Wire):
    target: StateName
    approver: str
    roles: list[str]
    comment: str
    createdAt: datetime


class ApprovalList(Wire):
    items: list[ApprovalOut]


class CheckIn(Strict):
    ref: str = Field(min_length=1, max_length=700, description="kind/namespace/name[@selector]")
    environment: str | None = Field(default=None, pattern=f"^{ENVIRONMENT_PATTERN}$")


class RuleOut(Wire):
    id: str
    effect: Literal["hard", "soft"]
    result: Literal["pass", "fail", "warn", "exempted"]
    message: str


class ExemptionUsed(Wire):
    id: str
    resource: str
    rules: list[str]
    reason: str
    approvedBy: str
    expiresAt: datetime


class CheckOut(Wire):
    allowed: bool
    ref: str
    environment: str | None = None
    resolvedVersion: str | None = None
    state: StateName | None = None
    rules: list[RuleOut]
    exemptions: list[ExemptionUsed] = []
