"""Wire models of governance: the tenant's policy, its revisions and exemptions, and admission decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from agentreg.api.schemas import Wire


class PolicyOut(Wire):
    tenant: str
    revision: int = Field(description="0 while the tenant has never set a policy (the defaults apply)")
    document: dict[str, Any] = Field(description="the policy document as it was put")
    effective: dict[str, Any] = Field(description="the policy in effect, every default filled in")
    updatedAt: datetime | None = None
    updatedBy: str | None = None


class PolicyRevisionOut(Wire):
    revision: int
    digest: str
    document: dict[str, Any]
    createdAt: datetime
    createdBy: str


class PolicyRevisionList(Wire):
    tenant: str
    items: list[PolicyRevisionOut]


class ExemptionIn(Wire):
    model_config = ConfigDict(extra="forbid")
    resource: str = Field(
        max_length=500, description="kind/namespace/name, optionally @range: agent/com.acme/bot@^1"
    )
    rules: list[str] = Field(
        description="rule ids it exempts (deny.0, cel.my-rule, environment.prod.minAge) or globs"
    )
    reason: str
    expiresAt: datetime = Field(description="RFC 3339, in the future, at most a year ahead")


class ExemptionOut(Wire):
    id: str
    tenant: str
    resource: str
    rules: list[str]
    reason: str
    approvedBy: str
    expiresAt: datetime
    createdAt: datetime
    active: bool


class ExemptionList(Wire):
    items: list[ExemptionOut]


class RuleResultOut(Wire):
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


class DecisionOut(Wire):
    """An admission decision (``services.governance.decision_json``)."""

    allowed: bool
    rules: list[RuleResultOut]
    exemptions: list[ExemptionUsed] = []
