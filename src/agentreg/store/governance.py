"""Storage of governance: each tenant's policy document (every revision kept) and its exemptions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PolicyRow:
    tenant_id: str
    revision: int
    document: str  # canonical JSON of the policy document as accepted
    digest: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class ExemptionRow:
    id: str
    tenant_id: str
    resource: str  # kind/namespace/name, optionally @version-range
    rules: tuple[str, ...]  # rule ids it exempts
    reason: str
    approved_by: str
    expires_at: datetime
    created_at: datetime


class GovernanceTx(Protocol):
    async def current_policy(self, tenant_id: str) -> PolicyRow | None:
        """The highest revision, or None when the tenant never set one (the defaults apply)."""

    async def insert_policy(self, row: PolicyRow) -> None: ...
    async def list_policies(self, tenant_id: str) -> list[PolicyRow]:
        """Every revision, newest first."""

    async def insert_exemption(self, row: ExemptionRow) -> None: ...
    async def delete_exemption(self, tenant_id: str, exemption_id: str) -> ExemptionRow | None:
        """Remove and return it; None if the tenant has no such exemption."""

    async def list_exemptions(self, tenant_id: str) -> list[ExemptionRow]: ...
    async def namespace_counts(self, namespace: str) -> tuple[int, int]:
        """(resources, versions) in ``namespace``, for quotas."""
