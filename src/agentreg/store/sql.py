"""The SQLAlchemy Core implementation of the store; dialect modules override only what differs."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agentreg.domain.errors import FieldIssue
from agentreg.store import tables as t
from agentreg.store.interface import (
    AliasRow,
    AuditEvent,
    ChangeSignal,
    NewVersion,
    ResourceQuery,
    ResourceRow,
    VersionRow,
)

_VERSION_COLUMNS = [c for c in t.versions.c if c.name != "document"]


def _warnings_out(text: str) -> tuple[FieldIssue, ...]:
    return tuple(FieldIssue(w["field"], w["issue"]) for w in json.loads(text))


def _warnings_in(warnings: Sequence[FieldIssue]) -> str:
    return json.dumps([{"field": w.field, "issue": w.issue} for w in warnings])


def _version_row(row: sa.Row[Any]) -> VersionRow:
    m = row._mapping
    return VersionRow(
        id=m["id"],
        resource_id=m["resource_id"],
        version=m["version"],
        semver_key=m["semver_key"],
        digest=m["digest"],
        title=m["title"],
        description=m["description"],
        protocol=m["protocol"],
        warnings=_warnings_out(m["warnings"]),
        origin=m["origin"],
        published_at=m["published_at"],
        published_by=m["published_by"],
    )


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlTx:
    """A transaction on one connection; the store commits or rolls it back."""

    def __init__(self, conn: AsyncConnection, store: SqlStore) -> None:
        self.conn = conn
        self.store = store
        self.changed = False

    def mark_changed(self) -> None:
        self.changed = True

    async def lock(self, key: str) -> None:
        await self.store.lock(self.conn, key)

    async def ensure_tenant(self, tenant_id: str, display_name: str, now: datetime) -> None:
        exists = await self.conn.scalar(sa.select(t.tenants.c.id).where(t.tenants.c.id == tenant_id))
        if exists is None:
            await self.store.insert_ignore(
                self.conn, t.tenants, {"id": tenant_id, "display_name": display_name, "created_at": now}
            )

    async def namespace_owner(self, namespace: str) -> str | None:
        owner: str | None = await self.conn.scalar(
            sa.select(t.namespaces.c.tenant_id).where(t.namespaces.c.name == namespace)
        )
        return owner

    async def claim_namespace(self, namespace: str, tenant_id: str, now: datetime) -> None:
        await self.store.insert_ignore(
            self.conn, t.namespaces, {"name": namespace, "tenant_id": tenant_id, "created_at": now}
        )
        self.mark_changed()

    async def get_resource(self, tenant_id: str, kind: str, namespace: str, name: str) -> ResourceRow | None:
        r = t.resources.c
        row = (
            await self.conn.execute(
                sa.select(t.resources).where(
                    r.tenant_id == tenant_id, r.kind == kind, r.namespace == namespace, r.name == name
                )
            )
        ).first()
        if row is None:
            return None
        labels = await self._labels([row.id])
        return self._resource(row, labels.get(row.id, {}))

    async def insert_resource(
        self, tenant_id: str, kind: str, namespace: str, name: str, now: datetime
    ) -> ResourceRow:
        values = {
            "tenant_id": tenant_id,
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "title": "",
            "description": "",
            "annotations": "{}",
            "created_at": now,
            "updated_at": now,
        }
        new_id = (
            await self.conn.execute(sa.insert(t.resources).values(values).returning(t.resources.c.id))
        ).scalar_one()
        self.mark_changed()
        return ResourceRow(
            id=new_id,
            tenant_id=tenant_id,
            kind=kind,
            namespace=namespace,
            name=name,
            title="",
            description="",
            labels={},
            annotations={},
            created_at=now,
            updated_at=now,
        )

    async def update_resource(
        self,
        resource_id: int,
        *,
        now: datetime,
        title: str | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> None:
        values: dict[str, Any] = {"updated_at": now}
        if title is not None:
            values["title"] = title
        if description is not None:
            values["description"] = description
        if annotations is not None:
            values["annotations"] = json.dumps(annotations, sort_keys=True)
        await self.conn.execute(sa.update(t.resources).where(t.resources.c.id == resource_id).values(values))
        if labels is not None:
            await self.conn.execute(
                sa.delete(t.resource_labels).where(t.resource_labels.c.resource_id == resource_id)
            )
            if labels:
                await self.conn.execute(
                    sa.insert(t.resource_labels),
                    [{"resource_id": resource_id, "key": k, "value": v} for k, v in labels.items()],
                )
        self.mark_changed()

    async def list_resources(self, query: ResourceQuery) -> list[ResourceRow]:
        r = t.resources.c
        stmt = sa.select(t.resources).where(r.tenant_id == query.tenant_id, r.kind == query.kind)
        if query.namespace is not None:
            stmt = stmt.where(r.namespace == query.namespace)
        for key, value in query.labels:
            label = t.resource_labels.c
            stmt = stmt.where(
                sa.exists().where(label.resource_id == r.id, label.key == key, label.value == value)
            )
        if query.text:
            pattern = f"%{escape_like(query.text.lower())}%"
            stmt = stmt.where(
                sa.or_(
                    sa.func.lower(r.namespace + "/" + r.name).like(pattern, escape="\\"),
                    sa.func.lower(r.title).like(pattern, escape="\\"),
                    sa.func.lower(r.description).like(pattern, escape="\\"),
                )
            )
        if query.after is not None:
            stmt = stmt.where(sa.tuple_(r.namespace, r.name) > sa.tuple_(*query.after))
        stmt = stmt.order_by(r.namespace, r.name).limit(query.limit)
        rows = (await self.conn.execute(stmt)).all()
        labels = await self._labels([row.id for row in rows])
        return [self._resource(row, labels.get(row.id, {})) for row in rows]

    async def version_counts(self, resource_ids: Sequence[int]) -> dict[int, int]:
        if not resource_ids:
            return {}
        v = t.versions.c
        rows = await self.conn.execute(
            sa.select(v.resource_id, sa.func.count())
            .where(v.resource_id.in_(resource_ids))
            .group_by(v.resource_id)
        )
        return {row[0]: row[1] for row in rows}

    async def _labels(self, resource_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        if not resource_ids:
            return {}
        lb = t.resource_labels.c
        rows = await self.conn.execute(
            sa.select(lb.resource_id, lb.key, lb.value).where(lb.resource_id.in_(resource_ids))
        )
        result: dict[int, dict[str, str]] = {}
        for resource_id, key, value in rows:
            result.setdefault(resource_id, {})[key] = value
        return result

    @staticmethod
    def _resource(row: sa.Row[Any], labels: dict[str, str]) -> ResourceRow:
        m = row._mapping
        return ResourceRow(
            id=m["id"],
            tenant_id=m["tenant_id"],
            kind=m["kind"],
            namespace=m["namespace"],
            name=m["name"],
            title=m["title"],
            description=m["description"],
            labels=dict(sorted(labels.items())),
            annotations=json.loads(m["annotations"]),
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )

    async def list_versions(self, resource_id: int) -> list[VersionRow]:
        rows = await self.conn.execute(
            sa.select(*_VERSION_COLUMNS)
            .where(t.versions.c.resource_id == resource_id)
            .order_by(t.versions.c.id)
        )
        return [_version_row(row) for row in rows]

    async def latest_versions(self, resource_ids: Sequence[int]) -> dict[int, list[VersionRow]]:
        if not resource_ids:
            return {}
        rows = await self.conn.execute(
            sa.select(*_VERSION_COLUMNS)
            .where(t.versions.c.resource_id.in_(resource_ids))
            .order_by(t.versions.c.id)
        )
        result: dict[int, list[VersionRow]] = {}
        for row in rows:
            version = _version_row(row)
            result.setdefault(version.resource_id, []).append(version)
        return result

    async def find_version(self, resource_id: int, version: str, semver_key: str | None) -> VersionRow | None:
        v = t.versions.c
        match = (
            v.version == version
            if semver_key is None
            else sa.or_(v.version == version, v.semver_key == semver_key)
        )
        row = (
            await self.conn.execute(sa.select(*_VERSION_COLUMNS).where(v.resource_id == resource_id, match))
        ).first()
        return _version_row(row) if row is not None else None

    async def version_document(self, version_id: int) -> str:
        document: str = (
            await self.conn.execute(sa.select(t.versions.c.document).where(t.versions.c.id == version_id))
        ).scalar_one()
        return document

    async def insert_version(self, new: NewVersion) -> VersionRow:
        values = {
            "resource_id": new.resource_id,
            "version": new.version,
            "semver_key": new.semver_key,
            "digest": new.digest,
            "document": new.document,
            "title": new.title,
            "description": new.description,
            "protocol": new.protocol,
            "warnings": _warnings_in(new.warnings),
            "origin": new.origin,
            "published_at": new.published_at,
            "published_by": new.published_by,
        }
        new_id = (
            await self.conn.execute(sa.insert(t.versions).values(values).returning(t.versions.c.id))
        ).scalar_one()
        if new.refs:
            await self.conn.execute(
                sa.insert(t.version_refs),
                [
                    {
                        "version_id": new_id,
                        "field": ref.field,
                        "kind": ref.kind,
                        "namespace": ref.namespace,
                        "name": ref.name,
                        "selector": ref.selector,
                    }
                    for ref in new.refs
                ],
            )
        self.mark_changed()
        return VersionRow(
            id=new_id,
            resource_id=new.resource_id,
            version=new.version,
            semver_key=new.semver_key,
            digest=new.digest,
            title=new.title,
            description=new.description,
            protocol=new.protocol,
            warnings=new.warnings,
            origin=new.origin,
            published_at=new.published_at,
            published_by=new.published_by,
        )

    async def list_aliases(self, resource_id: int) -> list[AliasRow]:
        a, v = t.aliases.c, t.versions.c
        rows = await self.conn.execute(
            sa.select(a.resource_id, a.alias, a.version_id, v.version, a.updated_at, a.updated_by)
            .join(t.versions, v.id == a.version_id)
            .where(a.resource_id == resource_id)
            .order_by(a.alias)
        )
        return [AliasRow(*row) for row in rows]

    async def set_alias(
        self, resource_id: int, alias: str, version_id: int, now: datetime, actor: str
    ) -> None:
        a = t.aliases.c
        updated = await self.conn.execute(
            sa.update(t.aliases)
            .where(a.resource_id == resource_id, a.alias == alias)
            .values(version_id=version_id, updated_at=now, updated_by=actor)
        )
        if updated.rowcount == 0:
            await self.conn.execute(
                sa.insert(t.aliases).values(
                    resource_id=resource_id,
                    alias=alias,
                    version_id=version_id,
                    updated_at=now,
                    updated_by=actor,
                )
            )
        self.mark_changed()

    async def delete_alias(self, resource_id: int, alias: str) -> bool:
        a = t.aliases.c
        deleted = await self.conn.execute(
            sa.delete(t.aliases).where(a.resource_id == resource_id, a.alias == alias)
        )
        self.mark_changed()
        return bool(deleted.rowcount)

    async def append_audit(self, event: AuditEvent) -> None:
        await self.conn.execute(
            sa.insert(t.audit_events).values(
                tenant_id=event.tenant_id,
                at=event.at,
                actor=event.actor,
                action=event.action,
                target=event.target,
                details=json.dumps(event.details, sort_keys=True, default=str),
                request_id=event.request_id,
            )
        )

    async def list_audit(self, tenant_id: str, limit: int) -> list[AuditEvent]:
        e = t.audit_events.c
        rows = await self.conn.execute(
            sa.select(t.audit_events).where(e.tenant_id == tenant_id).order_by(e.id.desc()).limit(limit)
        )
        return [
            AuditEvent(
                tenant_id=row.tenant_id,
                at=row.at,
                actor=row.actor,
                action=row.action,
                target=row.target,
                details=json.loads(row.details),
                request_id=row.request_id,
            )
            for row in rows
        ]


class SqlStore(ABC):
    """Shared engine handling; subclasses supply locks, upserts and the change signal."""

    dialect = "sql"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    @abstractmethod
    def changes(self) -> ChangeSignal:
        """The dialect's signal that catalog state changed."""

    async def lock(self, conn: AsyncConnection, key: str) -> None:
        """Dialects override; the default relies on the transaction's own write serialization."""

    @abstractmethod
    async def insert_ignore(self, conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> None:
        """Insert a row unless its primary key already exists."""

    async def start(self) -> None:
        """Open what the store needs beyond the pool (listeners, probes)."""

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[SqlTx]:
        async with self.engine.connect() as conn:
            conn = await self._prepare_write(conn)
            async with conn.begin():
                tx = SqlTx(conn, self)
                yield tx
                if tx.changed:
                    await self._before_commit(tx)
            if tx.changed:
                self._after_commit()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTx]:
        async with self.engine.connect() as conn, conn.begin():
            yield SqlTx(conn, self)

    async def _prepare_write(self, conn: AsyncConnection) -> AsyncConnection:
        return conn

    async def _before_commit(self, tx: SqlTx) -> None:
        """Dialect hook run inside a transaction that changed the catalog, just before it commits."""

    def _after_commit(self) -> None:
        """Dialect hook run after a change committed."""

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def migration_revision(self) -> str | None:
        async with self.engine.connect() as conn:
            try:
                revision: str | None = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            except sa.exc.DBAPIError:
                return None
        return revision
