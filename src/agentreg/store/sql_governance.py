"""SQL for governance (policy revisions, exemptions, quota counts); mixed into ``SqlTx``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from agentreg.store import tables as t
from agentreg.store.governance import ExemptionRow, PolicyRow

if TYPE_CHECKING:
    from agentreg.store.sql import Runner, SqlStore

_po, _ex = t.policies.c, t.policy_exemptions.c
_p = sa.bindparam
CURRENT_POLICY = (
    sa.select(t.policies).where(_po.tenant_id == _p("tenant_id")).order_by(_po.revision.desc()).limit(1)
)


def _policy(m: sa.RowMapping) -> PolicyRow:
    return PolicyRow(
        m["tenant_id"], m["revision"], m["document"], m["digest"], m["created_at"], m["created_by"]
    )


def _exemption(m: sa.RowMapping) -> ExemptionRow:
    return ExemptionRow(
        id=m["id"],
        tenant_id=m["tenant_id"],
        resource=m["resource"],
        rules=tuple(json.loads(m["rules"])),
        reason=m["reason"],
        approved_by=m["approved_by"],
        expires_at=m["expires_at"],
        created_at=m["created_at"],
    )


class GovernanceSql:
    run: Runner
    store: SqlStore

    if TYPE_CHECKING:

        def mark_changed(self) -> None: ...

    async def current_policy(self, tenant_id: str) -> PolicyRow | None:
        row = (await self.run.execute(CURRENT_POLICY, {"tenant_id": tenant_id})).mappings().first()
        return _policy(row) if row is not None else None

    async def insert_policy(self, row: PolicyRow) -> None:
        values = {
            "tenant_id": row.tenant_id,
            "revision": row.revision,
            "document": row.document,
            "digest": row.digest,
            "created_at": row.created_at,
            "created_by": row.created_by,
        }
        await self.run.execute(sa.insert(t.policies), values)
        self.mark_changed()

    async def list_policies(self, tenant_id: str) -> list[PolicyRow]:
        statement = sa.select(t.policies).where(_po.tenant_id == tenant_id).order_by(_po.revision.desc())
        return [_policy(m) for m in (await self.run.execute(statement)).mappings()]

    async def insert_exemption(self, row: ExemptionRow) -> None:
        values = {
            "id": row.id,
            "tenant_id": row.tenant_id,
            "resource": row.resource,
            "rules": json.dumps(list(row.rules)),
            "reason": row.reason,
            "approved_by": row.approved_by,
            "expires_at": row.expires_at,
            "created_at": row.created_at,
        }
        await self.run.execute(sa.insert(t.policy_exemptions), values)
        self.mark_changed()

    async def delete_exemption(self, tenant_id: str, exemption_id: str) -> ExemptionRow | None:
        where = (_ex.tenant_id == tenant_id, _ex.id == exemption_id)
        row = (await self.run.execute(sa.select(t.policy_exemptions).where(*where))).mappings().first()
        if row is None:
            return None
        await self.run.execute(sa.delete(t.policy_exemptions).where(*where))
        self.mark_changed()
        return _exemption(row)

    async def list_exemptions(self, tenant_id: str) -> list[ExemptionRow]:
        statement = (
            sa.select(t.policy_exemptions).where(_ex.tenant_id == tenant_id).order_by(_ex.created_at, _ex.id)
        )
        return [_exemption(m) for m in (await self.run.execute(statement)).mappings()]

    async def namespace_counts(self, namespace: str) -> tuple[int, int]:
        r, v = t.resources.c, t.versions.c
        statement = (
            sa.select(sa.func.count(sa.distinct(r.id)), sa.func.count(v.id))
            .select_from(t.resources.outerjoin(t.versions, v.resource_id == r.id))
            .where(r.namespace == namespace)
        )
        counts: Any = (await self.run.execute(statement)).one()
        return int(counts[0]), int(counts[1])
