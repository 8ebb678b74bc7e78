"""Audit events, written in the transaction of the change they record (chained by the store on commit)."""

from __future__ import annotations

from datetime import datetime

from agentreg.domain.principals import Principal
from agentreg.services.context import current_request
from agentreg.store.interface import AuditEvent, Tx

MAX_REASON = 500


async def record(
    tx: Tx,
    actor: Principal,
    action: str,
    target: str,
    now: datetime,
    *,
    tenant: str,
    reason: str | None = None,
    before: str | None = None,
    after: str | None = None,
    **details: object,
) -> None:
    """One event in ``tenant``'s chain: the tenant whose catalog state changed, not the actor's."""
    request = current_request.get()
    await tx.append_audit(
        AuditEvent(
            tenant_id=tenant,
            at=now,
            actor=actor.subject,
            action=action,
            target=target,
            details=details,
            request_id=request.request_id,
            client_ip=request.client_ip,
            reason=reason,
            before=before,
            after=after,
        )
    )
