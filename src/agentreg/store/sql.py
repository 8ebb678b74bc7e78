"""The SQLAlchemy Core implementation of the store; dialect modules override only what differs.

``SqlTx`` issues every statement through a ``Runner``: an async connection on PostgreSQL (asyncpg), a
synchronous one on SQLite (see ``sqlite.py`` for why), so the SQL is written once for both.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from agentreg.domain.auditchain import GENESIS, Checkpoint, chain_hash
from agentreg.domain.errors import FieldIssue
from agentreg.store import tables as t
from agentreg.store.interface import (
    AliasRow,
    ApiKeyRow,
    AuditEvent,
    AuditHead,
    AuditQuery,
    ChangeSignal,
    IdempotentResponse,
    Mark,
    NamespaceRow,
    NewVersion,
    Readers,
    ResourceQuery,
    ResourceRow,
    StoredAuditEvent,
    TenantRow,
    VersionRow,
    VersionState,
    chained,
)
from agentreg.store.leader import LeaderLock
from agentreg.store.sql_evidence import EvidenceSql
from agentreg.store.sql_governance import GovernanceSql
from agentreg.store.sql_inventory import InventorySql

_VERSION_COLUMNS = [c for c in t.versions.c if c.name != "document"]
_r, _v, _a, _n = t.resources.c, t.versions.c, t.aliases.c, t.namespaces.c
_p = sa.bindparam

# Statements are built once: building one costs ~125 µs, several times what executing it costs.
GET_RESOURCE = sa.select(t.resources).where(
    _r.tenant_id == _p("tenant_id"),
    _r.kind == _p("kind"),
    _r.namespace == _p("namespace"),
    _r.name == _p("name"),
)
_g = t.namespace_grants.c


def _visible(
    tenant: sa.ColumnElement[str], namespace: sa.ColumnElement[str], tenants: Any, grantees: Any
) -> sa.ColumnElement[bool]:
    """Owned by one of the reader's ``tenants``, or in a namespace shared with one of them or with all ("*").

    ``grantees`` is ``tenants`` plus "*"; both are lists, or expanding bind parameters in prebuilt statements.
    """
    shared = sa.select(_g.namespace).where(_g.grantee.in_(grantees)).scalar_subquery()
    return sa.or_(tenant.in_(tenants), namespace.in_(shared))


_RESOURCE_KEY = (_r.kind == _p("kind"), _r.namespace == _p("namespace"), _r.name == _p("name"))
FIND_VISIBLE = sa.select(t.resources).where(
    *_RESOURCE_KEY,
    _visible(_r.tenant_id, _r.namespace, _p("tenants", expanding=True), _p("grantees", expanding=True)),
)
FIND_ANY = sa.select(t.resources).where(*_RESOURCE_KEY)
NAMESPACE_OWNER = sa.select(_n.tenant_id).where(_n.name == _p("name"))
INSERT_RESOURCE = sa.insert(t.resources).returning(t.resources)
UPDATE_RESOURCE = (
    sa.update(t.resources)
    .where(_r.id == _p("b_id"))
    .values(
        updated_at=_p("b_now", type_=t.UTCDateTime()),
        labels=sa.func.coalesce(_p("b_labels", type_=sa.Text()), _r.labels),
        annotations=sa.func.coalesce(_p("b_annotations", type_=sa.Text()), _r.annotations),
        latest_version=sa.func.coalesce(_p("b_latest_version", type_=sa.String()), _r.latest_version),
        title=sa.func.coalesce(_p("b_title", type_=sa.Text()), _r.title),
        description=sa.func.coalesce(_p("b_description", type_=sa.Text()), _r.description),
        version_count=_r.version_count + _p("b_added", type_=sa.Integer()),
    )
)
DELETE_LABELS = sa.delete(t.resource_labels).where(t.resource_labels.c.resource_id == _p("resource_id"))
INSERT_LABELS = sa.insert(t.resource_labels)
LIST_VERSIONS = sa.select(*_VERSION_COLUMNS).where(_v.resource_id == _p("resource_id")).order_by(_v.id)
FIND_VERSION = sa.select(*_VERSION_COLUMNS).where(
    _v.resource_id == _p("resource_id"), _v.version == _p("version")
)
# A SemVer version's key (the version without build metadata) identifies it: one indexed equality, no OR.
FIND_SEMVER = sa.select(*_VERSION_COLUMNS).where(
    _v.resource_id == _p("resource_id"), _v.semver_key == _p("semver_key")
)
VERSION_DOCUMENT = sa.select(_v.document).where(_v.id == _p("id"))
INSERT_VERSION = sa.insert(t.versions).returning(*_VERSION_COLUMNS)
INSERT_REFS = sa.insert(t.version_refs)
LIST_ALIASES = (
    sa.select(_a.resource_id, _a.alias, _a.version_id, _v.version, _a.updated_at, _a.updated_by)
    .join(t.versions, _v.id == _a.version_id)
    .where(_a.resource_id == _p("resource_id"))
    .order_by(_a.alias)
)
UPDATE_ALIAS = (
    sa.update(t.aliases)
    .where(_a.resource_id == _p("b_resource_id"), _a.alias == _p("b_alias"))
    .values(
        version_id=_p("b_version_id"),
        updated_at=_p("b_updated_at", type_=t.UTCDateTime()),
        updated_by=_p("b_updated_by"),
    )
)
INSERT_ALIAS = sa.insert(t.aliases)
DELETE_ALIAS = sa.delete(t.aliases).where(_a.resource_id == _p("resource_id"), _a.alias == _p("alias"))
INSERT_AUDIT = sa.insert(t.audit_events)


_e = t.audit_events.c
AUDIT_HEAD = sa.select(t.audit_heads).where(t.audit_heads.c.tenant_id == _p("tenant_id"))
AUDIT_HEAD_FOR_UPDATE = AUDIT_HEAD.with_for_update()
SET_AUDIT_HEAD = (
    sa.update(t.audit_heads)
    .where(t.audit_heads.c.tenant_id == _p("b_tenant_id"))
    .values(seq=_p("b_seq"), hash=_p("b_hash"))
)
LIST_GRANTS = sa.select(_g.grantee).where(_g.namespace == _p("namespace")).order_by(_g.grantee)
_k = t.api_keys.c
KEY_BY_HASH = sa.select(t.api_keys).where(_k.secret_hash == _p("secret_hash"))
KEY_BY_ID = sa.select(t.api_keys).where(_k.id == _p("id"))
TOUCH_KEY = (
    sa.update(t.api_keys).where(_k.id == _p("b_id")).values(last_used_at=_p("b_now", type_=t.UTCDateTime()))
)
_i = t.idempotency_keys.c
GET_IDEMPOTENT = sa.select(t.idempotency_keys).where(_i.principal == _p("principal"), _i.key == _p("key"))


class Runner(Protocol):
    async def execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult[Any]: ...


def _warnings_out(text: str) -> tuple[FieldIssue, ...]:
    return tuple(FieldIssue(w["field"], w["issue"]) for w in json.loads(text))


def _warnings_in(warnings: Sequence[FieldIssue]) -> str:
    return json.dumps([{"field": w.field, "issue": w.issue} for w in warnings])


def _version_row(m: sa.RowMapping) -> VersionRow:
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
        state=m["state"],
        state_changed_at=m["state_changed_at"],
        state_before=m["state_before"],
        successor=m["successor"],
        sunset=m["sunset"],
        blocked=mark_out(m["blocked"]),
        redacted=mark_out(m["redacted"]),
    )


def _resource_row(m: sa.RowMapping) -> ResourceRow:
    return ResourceRow(
        id=m["id"],
        tenant_id=m["tenant_id"],
        kind=m["kind"],
        namespace=m["namespace"],
        name=m["name"],
        title=m["title"],
        description=m["description"],
        labels=json.loads(m["labels"]),
        annotations=json.loads(m["annotations"]),
        latest_version=m["latest_version"],
        version_count=m["version_count"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        blocked=mark_out(m["blocked"]),
    )


def mark_in(mark: Mark | None) -> str | None:
    if mark is None:
        return None
    return json.dumps({"reason": mark.reason, "at": mark.at.isoformat(), "by": mark.by})


def mark_out(text: str | None) -> Mark | None:
    if text is None:
        return None
    m = json.loads(text)
    return Mark(m["reason"], datetime.fromisoformat(m["at"]), m["by"])


def _api_key_row(m: sa.RowMapping) -> ApiKeyRow:
    return ApiKeyRow(
        id=m["id"],
        tenant_id=m["tenant_id"],
        name=m["name"],
        secret_hash=m["secret_hash"],
        roles=tuple(json.loads(m["roles"])),
        scope=json.loads(m["scope"]),
        created_at=m["created_at"],
        created_by=m["created_by"],
        expires_at=m["expires_at"],
        last_used_at=m["last_used_at"],
        revoked_at=m["revoked_at"],
    )


def _stored_event(m: sa.RowMapping) -> StoredAuditEvent:
    event = AuditEvent(
        tenant_id=m["tenant_id"],
        at=m["at"],
        actor=m["actor"],
        action=m["action"],
        target=m["target"],
        details=json.loads(m["details"]),
        request_id=m["request_id"],
        client_ip=m["client_ip"],
        reason=m["reason"],
        before=m["before_digest"],
        after=m["after_digest"],
    )
    return StoredAuditEvent(m["id"], m["seq"], event, m["prev_hash"], m["hash"])


def _map_json(value: dict[str, str]) -> str:
    return json.dumps(dict(sorted(value.items())))


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlTx(EvidenceSql, GovernanceSql, InventorySql):
    """A transaction on one connection; the store commits or rolls it back."""

    def __init__(self, run: Runner, store: SqlStore) -> None:
        self.run = run
        self.store = store
        self.changed = False
        self.pending_audit: list[AuditEvent] = []

    def mark_changed(self) -> None:
        self.changed = True

    async def _first(self, statement: sa.Executable, **params: Any) -> sa.RowMapping | None:
        return (await self.run.execute(statement, params)).mappings().first()

    async def _scalar(self, statement: sa.Executable, **params: Any) -> Any:
        return (await self.run.execute(statement, params)).scalar()

    async def lock(self, key: str) -> None:
        await self.store.lock(self.run, key)

    async def ensure_tenant(self, tenant_id: str, display_name: str, now: datetime) -> None:
        await self.store.insert_ignore(
            self.run, t.tenants, {"id": tenant_id, "display_name": display_name, "created_at": now}
        )

    async def namespace_owner(self, namespace: str) -> str | None:
        owner: str | None = await self._scalar(NAMESPACE_OWNER, name=namespace)
        return owner

    async def claim_namespace(self, namespace: str, tenant_id: str, now: datetime) -> None:
        await self.store.insert_ignore(
            self.run, t.namespaces, {"name": namespace, "tenant_id": tenant_id, "created_at": now}
        )
        self.mark_changed()

    async def get_resource(self, tenant_id: str, kind: str, namespace: str, name: str) -> ResourceRow | None:
        row = await self._first(GET_RESOURCE, tenant_id=tenant_id, kind=kind, namespace=namespace, name=name)
        return _resource_row(row) if row is not None else None

    async def find_resource(
        self, readers: Readers, kind: str, namespace: str, name: str
    ) -> ResourceRow | None:
        if readers is None:
            row = await self._first(FIND_ANY, kind=kind, namespace=namespace, name=name)
        else:
            row = await self._first(
                FIND_VISIBLE,
                kind=kind,
                namespace=namespace,
                name=name,
                tenants=list(readers),
                grantees=[*readers, "*"],
            )
        return _resource_row(row) if row is not None else None

    async def get_tenant(self, tenant_id: str) -> TenantRow | None:
        row = await self._first(sa.select(t.tenants).where(t.tenants.c.id == tenant_id))
        return TenantRow(row["id"], row["display_name"], row["created_at"]) if row is not None else None

    async def insert_tenant(self, tenant_id: str, display_name: str, now: datetime) -> bool:
        await self.lock(f"tenant:{tenant_id}")  # two concurrent creations: one wins, the other sees it
        if await self.get_tenant(tenant_id) is not None:
            return False
        await self.ensure_tenant(tenant_id, display_name, now)
        return True

    async def list_tenants(self, ids: Sequence[str] | None) -> list[TenantRow]:
        statement = sa.select(t.tenants).order_by(t.tenants.c.id)
        if ids is not None:
            statement = statement.where(t.tenants.c.id.in_(list(ids)))
        rows = (await self.run.execute(statement)).mappings()
        return [TenantRow(m["id"], m["display_name"], m["created_at"]) for m in rows]

    async def get_namespace(self, name: str) -> NamespaceRow | None:
        row = await self._first(sa.select(t.namespaces).where(_n.name == name))
        if row is None:
            return None
        grantees = (await self.run.execute(LIST_GRANTS, {"namespace": name})).scalars().all()
        return NamespaceRow(row["name"], row["tenant_id"], row["created_at"], tuple(grantees))

    async def list_namespaces(self, readers: Readers) -> list[NamespaceRow]:
        statement = sa.select(t.namespaces).order_by(_n.name)
        if readers is not None:
            statement = statement.where(_visible(_n.tenant_id, _n.name, list(readers), [*readers, "*"]))
        rows = list((await self.run.execute(statement)).mappings())
        grants: dict[str, list[str]] = {}
        if rows:
            names = [m["name"] for m in rows]
            grant_rows = await self.run.execute(
                sa.select(_g.namespace, _g.grantee).where(_g.namespace.in_(names)).order_by(_g.grantee)
            )
            for m in grant_rows.mappings():
                grants.setdefault(m["namespace"], []).append(m["grantee"])
        return [
            NamespaceRow(m["name"], m["tenant_id"], m["created_at"], tuple(grants.get(m["name"], ())))
            for m in rows
        ]

    async def set_grants(self, namespace: str, grantees: Sequence[str], now: datetime, by: str) -> None:
        await self.run.execute(sa.delete(t.namespace_grants).where(_g.namespace == namespace))
        if grantees:
            rows = [
                {"namespace": namespace, "grantee": g, "granted_at": now, "granted_by": by}
                for g in sorted(set(grantees))
            ]
            await self.run.execute(sa.insert(t.namespace_grants), rows)
        self.mark_changed()

    async def insert_api_key(self, key: ApiKeyRow) -> None:
        values = {
            "id": key.id,
            "tenant_id": key.tenant_id,
            "name": key.name,
            "secret_hash": key.secret_hash,
            "roles": json.dumps(list(key.roles)),
            "scope": json.dumps(key.scope, sort_keys=True),
            "created_at": key.created_at,
            "created_by": key.created_by,
            "expires_at": key.expires_at,
            "last_used_at": key.last_used_at,
            "revoked_at": key.revoked_at,
        }
        await self.run.execute(sa.insert(t.api_keys), values)

    async def api_key_by_hash(self, secret_hash: str) -> ApiKeyRow | None:
        row = await self._first(KEY_BY_HASH, secret_hash=secret_hash)
        return _api_key_row(row) if row is not None else None

    async def get_api_key(self, key_id: str) -> ApiKeyRow | None:
        row = await self._first(KEY_BY_ID, id=key_id)
        return _api_key_row(row) if row is not None else None

    async def list_api_keys(self, tenant_id: str | None) -> list[ApiKeyRow]:
        statement = sa.select(t.api_keys).order_by(_k.created_at, _k.id)
        statement = statement.where(
            _k.tenant_id.is_(None) if tenant_id is None else _k.tenant_id == tenant_id
        )
        return [_api_key_row(m) for m in (await self.run.execute(statement)).mappings()]

    async def revoke_api_key(self, key_id: str, now: datetime) -> None:
        await self.run.execute(sa.update(t.api_keys).where(_k.id == key_id).values(revoked_at=now))
        self.mark_changed()  # cached authentications everywhere re-check their keys

    async def touch_api_key(self, key_id: str, now: datetime) -> None:
        await self.run.execute(TOUCH_KEY, {"b_id": key_id, "b_now": now})

    async def get_idempotent(self, principal: str, key: str) -> IdempotentResponse | None:
        row = await self._first(GET_IDEMPOTENT, principal=principal, key=key)
        if row is None:
            return None
        headers = [(str(k), str(v)) for k, v in json.loads(row["headers"])]
        return IdempotentResponse(row["request_hash"], row["status"], headers, row["body"], row["created_at"])

    async def put_idempotent(self, principal: str, key: str, response: IdempotentResponse) -> None:
        values = {
            "principal": principal,
            "key": key,
            "request_hash": response.request_hash,
            "status": response.status,
            "headers": json.dumps(response.headers),
            "body": response.body,
            "created_at": response.created_at,
        }
        await self.store.insert_ignore(self.run, t.idempotency_keys, values)

    async def prune_idempotent(self, before: datetime) -> int:
        result = await self.run.execute(sa.delete(t.idempotency_keys).where(_i.created_at < before))
        return int(result.rowcount or 0)

    async def insert_resource(
        self, tenant_id: str, kind: str, namespace: str, name: str, now: datetime
    ) -> ResourceRow:
        values = {"tenant_id": tenant_id, "kind": kind, "namespace": namespace, "name": name}
        row = (
            (await self.run.execute(INSERT_RESOURCE, {**values, "created_at": now, "updated_at": now}))
            .mappings()
            .one()
        )
        self.mark_changed()
        return _resource_row(row)

    async def update_resource(
        self,
        resource_id: int,
        *,
        now: datetime,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        latest: tuple[str, str, str] | None = None,
        added_version: bool = False,
    ) -> None:
        version, title, description = latest if latest is not None else (None, None, None)
        params = {
            "b_id": resource_id,
            "b_now": now,
            "b_labels": _map_json(labels) if labels is not None else None,
            "b_annotations": _map_json(annotations) if annotations is not None else None,
            "b_latest_version": version,
            "b_title": title,
            "b_description": description,
            "b_added": 1 if added_version else 0,
        }
        await self.run.execute(UPDATE_RESOURCE, params)
        if labels is not None:
            await self.run.execute(DELETE_LABELS, {"resource_id": resource_id})
            if labels:
                rows = [{"resource_id": resource_id, "key": k, "value": v} for k, v in labels.items()]
                await self.run.execute(INSERT_LABELS, rows)
        self.mark_changed()

    async def list_resources(self, query: ResourceQuery) -> list[ResourceRow]:
        r = t.resources.c
        statement = sa.select(t.resources).where(r.kind == query.kind)
        if query.readers is not None:
            readers = list(query.readers)
            statement = statement.where(_visible(r.tenant_id, r.namespace, readers, [*readers, "*"]))
        if query.namespace is not None:
            statement = statement.where(r.namespace == query.namespace)
        if query.only_namespaces is not None:
            statement = statement.where(r.namespace.in_(list(query.only_namespaces)))
        if query.only_names is not None:
            pairs = list(query.only_names)
            statement = statement.where(sa.tuple_(r.namespace, r.name).in_(pairs) if pairs else sa.false())
        label = t.resource_labels.c
        for key, value in query.labels:
            statement = statement.where(
                sa.exists().where(label.resource_id == r.id, label.key == key, label.value == value)
            )
        if query.text:
            pattern = f"%{escape_like(query.text.lower())}%"
            statement = statement.where(
                sa.or_(
                    sa.func.lower(r.namespace + "/" + r.name).like(pattern, escape="\\"),
                    sa.func.lower(r.title).like(pattern, escape="\\"),
                    sa.func.lower(r.description).like(pattern, escape="\\"),
                )
            )
        if query.after is not None:
            statement = statement.where(sa.tuple_(r.namespace, r.name) > sa.tuple_(*query.after))
        statement = statement.order_by(r.namespace, r.name).limit(query.limit)
        return [_resource_row(m) for m in (await self.run.execute(statement)).mappings()]

    async def list_versions(self, resource_id: int) -> list[VersionRow]:
        rows = await self.run.execute(LIST_VERSIONS, {"resource_id": resource_id})
        return [_version_row(m) for m in rows.mappings()]

    async def latest_versions(self, resources: Sequence[ResourceRow]) -> dict[int, VersionRow]:
        wanted = [(r.id, r.latest_version) for r in resources if r.latest_version is not None]
        if not wanted:
            return {}
        v = t.versions.c
        statement = sa.select(*_VERSION_COLUMNS).where(sa.tuple_(v.resource_id, v.version).in_(wanted))
        return {m["resource_id"]: _version_row(m) for m in (await self.run.execute(statement)).mappings()}

    async def find_version(self, resource_id: int, version: str, semver_key: str | None) -> VersionRow | None:
        """The version ``version`` names; with a SemVer key, whatever its build metadata."""
        if semver_key is None:
            row = await self._first(FIND_VERSION, resource_id=resource_id, version=version)
        else:
            row = await self._first(FIND_SEMVER, resource_id=resource_id, semver_key=semver_key)
        return _version_row(row) if row is not None else None

    async def version_document(self, version_id: int) -> str:
        document: str = await self._scalar(VERSION_DOCUMENT, id=version_id)
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
            "state": new.state,
            "state_changed_at": new.published_at,
        }
        row = _version_row((await self.run.execute(INSERT_VERSION, values)).mappings().one())
        if new.refs:
            refs = [
                {
                    "version_id": row.id,
                    "field": r.field,
                    "kind": r.kind,
                    "namespace": r.namespace,
                    "name": r.name,
                    "selector": r.selector,
                }
                for r in new.refs
            ]
            await self.run.execute(INSERT_REFS, refs)
        self.mark_changed()
        return row

    async def set_version_state(self, version_id: int, state: VersionState) -> None:
        values = {
            "state": state.state,
            "state_changed_at": state.changed_at,
            "state_before": state.before,
            "successor": state.successor,
            "sunset": state.sunset,
        }
        await self.run.execute(sa.update(t.versions).where(_v.id == version_id).values(**values))
        self.mark_changed()

    async def set_version_block(self, version_id: int, mark: Mark | None) -> None:
        await self.run.execute(sa.update(t.versions).where(_v.id == version_id).values(blocked=mark_in(mark)))
        self.mark_changed()

    async def set_resource_block(self, resource_id: int, mark: Mark | None) -> None:
        await self.run.execute(
            sa.update(t.resources).where(_r.id == resource_id).values(blocked=mark_in(mark))
        )
        self.mark_changed()

    async def redact_version(self, version_id: int, document: str, mark: Mark) -> None:
        await self.run.execute(
            sa.update(t.versions).where(_v.id == version_id).values(document=document, redacted=mark_in(mark))
        )
        self.mark_changed()

    async def list_aliases(self, resource_id: int) -> list[AliasRow]:
        rows = await self.run.execute(LIST_ALIASES, {"resource_id": resource_id})
        return [
            AliasRow(
                m["resource_id"], m["alias"], m["version_id"], m["version"], m["updated_at"], m["updated_by"]
            )
            for m in rows.mappings()
        ]

    async def set_alias(
        self, resource_id: int, alias: str, version_id: int, now: datetime, actor: str
    ) -> None:
        values = {
            "resource_id": resource_id,
            "alias": alias,
            "version_id": version_id,
            "updated_at": now,
            "updated_by": actor,
        }
        updated = await self.run.execute(UPDATE_ALIAS, {f"b_{k}": v for k, v in values.items()})
        if updated.rowcount == 0:
            await self.run.execute(INSERT_ALIAS, values)
        self.mark_changed()

    async def delete_alias(self, resource_id: int, alias: str) -> bool:
        deleted = await self.run.execute(DELETE_ALIAS, {"resource_id": resource_id, "alias": alias})
        self.mark_changed()
        return bool(deleted.rowcount)

    async def append_audit(self, event: AuditEvent) -> None:
        self.pending_audit.append(event)

    async def flush_audit(self) -> None:
        """Chain and write queued events. Runs last in the transaction: the head lock is the last lock taken."""
        if not self.pending_audit:
            return
        by_tenant: dict[str, list[AuditEvent]] = {}
        for event in self.pending_audit:
            by_tenant.setdefault(event.tenant_id, []).append(event)
        self.pending_audit = []
        for tenant in sorted(by_tenant):  # one order everywhere, so two transactions never wait on each other
            head = await self._first(AUDIT_HEAD_FOR_UPDATE, tenant_id=tenant)
            if head is None:
                await self.store.insert_ignore(
                    self.run, t.audit_heads, {"tenant_id": tenant, "seq": 0, "hash": GENESIS}
                )
                head = await self._first(AUDIT_HEAD_FOR_UPDATE, tenant_id=tenant)
                assert head is not None
            seq, prev = int(head["seq"]), str(head["hash"])
            rows = []
            for event in by_tenant[tenant]:
                seq += 1
                digest = chain_hash(prev, chained(event, seq))
                rows.append(
                    {
                        "tenant_id": tenant,
                        "seq": seq,
                        "at": event.at,
                        "actor": event.actor,
                        "action": event.action,
                        "target": event.target,
                        "details": json.dumps(event.details, sort_keys=True, default=str),
                        "request_id": event.request_id,
                        "client_ip": event.client_ip,
                        "reason": event.reason,
                        "before_digest": event.before,
                        "after_digest": event.after,
                        "prev_hash": prev,
                        "hash": digest,
                    }
                )
                prev = digest
            await self.run.execute(INSERT_AUDIT, rows)
            await self.run.execute(SET_AUDIT_HEAD, {"b_tenant_id": tenant, "b_seq": seq, "b_hash": prev})

    async def list_audit(self, query: AuditQuery) -> list[StoredAuditEvent]:
        statement = sa.select(t.audit_events).where(_e.tenant_id == query.tenant_id, _e.seq > query.after_seq)
        if query.actor is not None:
            statement = statement.where(_e.actor == query.actor)
        if query.action is not None:
            if query.action.endswith("*"):
                statement = statement.where(_e.action.startswith(query.action[:-1], autoescape=True))
            else:
                statement = statement.where(_e.action == query.action)
        if query.target is not None:
            if query.target.endswith("*"):
                statement = statement.where(_e.target.startswith(query.target[:-1], autoescape=True))
            else:
                statement = statement.where(_e.target == query.target)
        if query.since is not None:
            statement = statement.where(_e.at >= query.since)
        if query.until is not None:
            statement = statement.where(_e.at < query.until)
        statement = statement.order_by(_e.seq).limit(query.limit)
        return [_stored_event(m) for m in (await self.run.execute(statement)).mappings()]

    async def audit_head(self, tenant_id: str) -> AuditHead | None:
        row = await self._first(AUDIT_HEAD, tenant_id=tenant_id)
        if row is None:
            return None
        return AuditHead(tenant_id, row["seq"], row["hash"], row["anchor_seq"], row["anchor_hash"])

    async def audit_tenants(self) -> list[str]:
        heads = t.audit_heads.c
        return list((await self.run.execute(sa.select(heads.tenant_id).order_by(heads.tenant_id))).scalars())

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        values = {
            "tenant_id": checkpoint.tenant,
            "seq": checkpoint.seq,
            "hash": checkpoint.hash,
            "at": checkpoint.at,
            "key_id": checkpoint.key_id,
            "signature": checkpoint.signature,
        }
        await self.run.execute(sa.insert(t.audit_checkpoints), values)

    async def list_checkpoints(self, tenant_id: str) -> list[Checkpoint]:
        c = t.audit_checkpoints.c
        statement = sa.select(t.audit_checkpoints).where(c.tenant_id == tenant_id).order_by(c.seq, c.id)
        return [
            Checkpoint(m["tenant_id"], m["seq"], m["hash"], m["at"], m["key_id"], m["signature"])
            for m in (await self.run.execute(statement)).mappings()
        ]

    async def prune_audit(self, tenant_id: str, through_seq: int) -> int:
        last = await self._first(sa.select(_e.hash).where(_e.tenant_id == tenant_id, _e.seq == through_seq))
        if last is None:
            return 0
        deleted = await self.run.execute(
            sa.delete(t.audit_events).where(_e.tenant_id == tenant_id, _e.seq <= through_seq)
        )
        heads = t.audit_heads.c
        await self.run.execute(
            sa.update(t.audit_heads)
            .where(heads.tenant_id == tenant_id)
            .values(anchor_seq=through_seq, anchor_hash=last["hash"])
        )
        return int(deleted.rowcount or 0)


class SqlStore(ABC):
    """What every dialect store provides; ``SqlTx`` holds the shared SQL."""

    dialect = "sql"

    @property
    @abstractmethod
    def changes(self) -> ChangeSignal:
        """The dialect's signal that catalog state changed."""

    @abstractmethod
    def begin(self, *, readers: Readers = None) -> AbstractAsyncContextManager[SqlTx]:
        """A read-write transaction, committed on success and rolled back on error (see ``Store.begin``)."""

    @abstractmethod
    def read(self, *, readers: Readers = None) -> AbstractAsyncContextManager[SqlTx]:
        """A read-only transaction (one consistent snapshot)."""

    @abstractmethod
    async def lock(self, run: Runner, key: str) -> None:
        """Serialize writers on ``key`` until the transaction ends."""

    @abstractmethod
    def leader_lock(self, name: str) -> LeaderLock: ...

    @abstractmethod
    def dialect_insert(self, table: sa.Table) -> Any:
        """The dialect's ``INSERT`` for ``table``, which has ``ON CONFLICT`` (SQLite and PostgreSQL alike)."""

    async def insert_ignore(self, run: Runner, table: sa.Table, values: dict[str, Any]) -> None:
        """Insert a row unless its primary key already exists."""
        await run.execute(self.dialect_insert(table).values(values).on_conflict_do_nothing())

    async def insert_new(
        self,
        run: Runner,
        table: sa.Table,
        rows: list[dict[str, Any]],
        returning: Sequence[sa.ColumnElement[Any]],
    ) -> list[sa.RowMapping]:
        """Insert the rows whose unique keys are free (others are skipped); the inserted ones' ``returning``."""
        if not rows:
            return []
        # executemany with RETURNING: SQLAlchemy batches it (insertmanyvalues) with one cached compilation.
        statement = self.dialect_insert(table).on_conflict_do_nothing().returning(*returning)
        return list((await run.execute(statement, rows)).mappings())

    @abstractmethod
    async def start(self) -> None:
        """Open what the store needs beyond its connections (listeners, background work)."""

    @abstractmethod
    async def close(self) -> None: ...

    async def ping(self) -> None:
        async with self.read() as tx:
            await tx.run.execute(sa.text("SELECT 1"))

    async def migration_revision(self) -> str | None:
        try:
            async with self.read() as tx:
                revision: str | None = (
                    await tx.run.execute(sa.text("SELECT version_num FROM alembic_version"))
                ).scalar()
        except sa.exc.DBAPIError:
            return None
        return revision
