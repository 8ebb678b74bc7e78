"""Audit events, written in the transaction of the change they record."""

from __future__ import annotations

from datetime import datetime

from agentreg.domain.principals import Principal
from agentreg.store.interface import AuditEvent, Tx


async def record(
    tx: Tx, actor: Principal, action: str, target: str, now: datetime, **details: object
) -> None:
    await tx.append_audit(
        AuditEvent(
            tenant_id=actor.tenant, at=now, actor=actor.subject, action=action, target=target, details=details
        )
    )
