"""SQL for discovery (sources, inventory rows, introspected tools); mixed into ``SqlTx``.

Nothing here marks the catalog changed: no cached read (versions, configs) depends on the inventory, and the
discovery runner relinks rows when the catalog changes, so its own writes must not look like catalog changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from agentreg.domain.inventory import Link, LinkState, ObjectKey
from agentreg.store import tables as t
from agentreg.store.inventory import (
    BucketEntry,
    DeploymentQuery,
    DeploymentRow,
    LinkUpdate,
    NewDeployment,
    SourceRow,
    SourceStatus,
    ToolsRow,
)

if TYPE_CHECKING:
    from agentreg.store.sql import Runner, SqlStore

_s, _d, _vt = t.sources.c, t.deployments.c, t.version_tools.c
_p = sa.bindparam
CHUNK = 500  # rows per multi-row statement: well under both databases' bound-parameter limits
KEYS_PER_QUERY = 200  # object keys matched by one statement (five parameters each)
_KEY_COLUMNS = (_d.cluster, _d.api_group, _d.runtime_kind, _d.runtime_namespace, _d.runtime_name)
_BUCKET_COLUMNS = (
    _d.id,
    *_KEY_COLUMNS,
    _d.digest,
    _d.orphaned_at,
    _d.link_state,
    _d.ref,
    _d.link_via,
    _d.link_reason,
    _d.resource_id,
    _d.version_id,
    _d.declared_ref,
    _d.claim,
    _d.catalog_kind,
    _d.environment,
)
UPDATE_DEPLOYMENT = (
    sa.update(t.deployments)
    .where(_d.id == _p("b_id"))
    .values(
        api_version=_p("b_api_version"),
        uid=_p("b_uid"),
        environment=_p("b_environment"),
        catalog_kind=_p("b_catalog_kind"),
        title=_p("b_title"),
        observed=_p("b_observed"),
        digest=_p("b_digest"),
        health=_p("b_health"),
        declared_ref=_p("b_declared_ref"),
        claim=_p("b_claim"),
        link_state=_p("b_link_state"),
        ref=_p("b_ref"),
        link_via=_p("b_link_via"),
        link_reason=_p("b_link_reason"),
        resource_id=_p("b_resource_id"),
        version_id=_p("b_version_id"),
        orphaned_at=None,
        observed_at=_p("b_now", type_=t.UTCDateTime()),
    )
)
SET_LINK = (
    sa.update(t.deployments)
    .where(_d.id == _p("b_id"))
    .values(
        link_state=_p("b_link_state"),
        ref=_p("b_ref"),
        link_via=_p("b_link_via"),
        link_reason=_p("b_link_reason"),
        resource_id=_p("b_resource_id"),
        version_id=_p("b_version_id"),
    )
)


def _key(m: sa.RowMapping) -> ObjectKey:
    return ObjectKey(
        m["cluster"], m["api_group"], m["runtime_kind"], m["runtime_namespace"], m["runtime_name"]
    )


def _link(m: sa.RowMapping) -> Link:
    return Link(
        LinkState(m["link_state"]),
        m["ref"],
        m["link_via"],
        m["link_reason"],
        m["resource_id"],
        m["version_id"],
    )


def _link_values(link: Link, prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}link_state": link.state.value,
        f"{prefix}ref": link.ref,
        f"{prefix}link_via": link.via,
        f"{prefix}link_reason": link.reason,
        f"{prefix}resource_id": link.resource_id,
        f"{prefix}version_id": link.version_id,
    }


def _entry(m: sa.RowMapping) -> BucketEntry:
    return BucketEntry(
        id=m["id"],
        key=_key(m),
        digest=m["digest"],
        orphaned_at=m["orphaned_at"],
        link=_link(m),
        declared_ref=m["declared_ref"],
        claim=m["claim"],
        catalog_kind=m["catalog_kind"],
        environment=m["environment"],
    )


def _deployment(m: sa.RowMapping) -> DeploymentRow:
    return DeploymentRow(
        id=m["id"],
        tenant_id=m["tenant_id"],
        source=m["source"],
        key=_key(m),
        api_version=m["api_version"],
        uid=m["uid"],
        environment=m["environment"],
        catalog_kind=m["catalog_kind"],
        title=m["title"],
        observed=json.loads(m["observed"]),
        digest=m["digest"],
        health=m["health"],
        declared_ref=m["declared_ref"],
        claim=m["claim"],
        link=_link(m),
        overlay_labels=json.loads(m["overlay_labels"]),
        overlay_annotations=json.loads(m["overlay_annotations"]),
        orphaned_at=m["orphaned_at"],
        first_seen_at=m["first_seen_at"],
        observed_at=m["observed_at"],
    )


def _source(m: sa.RowMapping) -> SourceRow:
    return SourceRow(
        name=m["name"],
        tenant_id=m["tenant_id"],
        type=m["type"],
        config=json.loads(m["config"]),
        managed_by=m["managed_by"],
        state=m["state"],
        last_sync_at=m["last_sync_at"],
        last_error=m["last_error"],
        error_at=m["error_at"],
        counts=json.loads(m["counts"]),
        details=json.loads(m["details"]),
        sync_requested_at=m["sync_requested_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        created_by=m["created_by"],
    )


def _observation_values(row: NewDeployment) -> dict[str, Any]:
    return {
        "api_version": row.api_version,
        "uid": row.uid,
        "environment": row.environment,
        "catalog_kind": row.catalog_kind,
        "title": row.title,
        "observed": json.dumps(row.observed, separators=(",", ":"), default=str),
        "digest": row.digest,
        "health": row.health,
        "declared_ref": row.declared_ref,
        "claim": row.claim,
        **_link_values(row.link),
    }


def _matching(keys: Sequence[ObjectKey]) -> sa.ColumnElement[bool]:
    """Rows whose key is one of ``keys`` (each an exact match on the unique key's columns)."""
    return sa.or_(
        *(
            sa.and_(
                _d.cluster == k.cluster,
                _d.api_group == k.group,
                _d.runtime_kind == k.kind,
                _d.runtime_namespace == k.namespace,
                _d.runtime_name == k.name,
            )
            for k in keys
        )
    )


def _chunks(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class InventorySql:
    run: Runner
    store: SqlStore

    # --- sources ------------------------------------------------------------------------------------

    async def get_source(self, name: str) -> SourceRow | None:
        found = (await self.run.execute(sa.select(t.sources).where(_s.name == name))).mappings().first()
        return _source(found) if found is not None else None

    async def list_sources(self, tenants: Sequence[str] | None) -> list[SourceRow]:
        statement = sa.select(t.sources).order_by(_s.name)
        if tenants is not None:
            statement = statement.where(_s.tenant_id.in_(list(tenants)))
        return [_source(m) for m in (await self.run.execute(statement)).mappings()]

    async def put_source(self, row: SourceRow) -> bool:
        config = json.dumps(row.config, separators=(",", ":"), sort_keys=True)
        changed = await self.run.execute(
            sa.update(t.sources)
            .where(_s.name == row.name)
            .values(
                tenant_id=row.tenant_id,
                type=row.type,
                config=config,
                managed_by=row.managed_by,
                updated_at=row.updated_at,
            )
        )
        if changed.rowcount:
            return False
        values = {
            "name": row.name,
            "tenant_id": row.tenant_id,
            "type": row.type,
            "config": config,
            "managed_by": row.managed_by,
            "state": row.state,
            "counts": json.dumps(row.counts),
            "details": json.dumps(row.details),
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "created_by": row.created_by,
        }
        await self.run.execute(sa.insert(t.sources), values)
        return True

    async def delete_source(self, name: str) -> int:
        removed = await self.run.execute(sa.delete(t.deployments).where(_d.source == name))
        await self.run.execute(sa.delete(t.sources).where(_s.name == name))
        return int(removed.rowcount or 0)

    async def set_source_status(self, name: str, status: SourceStatus, now: datetime) -> None:
        values: dict[str, Any] = {"updated_at": now}
        if status.state is not None:
            values["state"] = status.state
        if status.last_sync_at is not None:
            values["last_sync_at"] = status.last_sync_at
        if status.error is not None:
            values["last_error"] = status.error
            values["error_at"] = now
        elif status.clear_error:
            values["last_error"] = None
            values["error_at"] = None
        if status.counts is not None:
            values["counts"] = json.dumps(status.counts, sort_keys=True)
        if status.details is not None:
            values["details"] = json.dumps(status.details, sort_keys=True, default=str)
        await self.run.execute(sa.update(t.sources).where(_s.name == name).values(values))

    async def request_sync(self, name: str, at: datetime) -> None:
        await self.run.execute(sa.update(t.sources).where(_s.name == name).values(sync_requested_at=at))

    async def take_sync_requests(self) -> list[str]:
        pending = sa.select(_s.name).where(_s.sync_requested_at.is_not(None))
        names = list((await self.run.execute(pending)).scalars())
        if names:
            await self.run.execute(
                sa.update(t.sources).where(_s.name.in_(names)).values(sync_requested_at=None)
            )
        return names

    # --- inventory rows -----------------------------------------------------------------------------

    async def bucket(
        self, source: str, group: str | None = None, kind: str | None = None
    ) -> list[BucketEntry]:
        statement = sa.select(*_BUCKET_COLUMNS).where(_d.source == source)
        if group is not None:
            statement = statement.where(_d.api_group == group)
        if kind is not None:
            statement = statement.where(_d.runtime_kind == kind)
        return [_entry(m) for m in (await self.run.execute(statement)).mappings()]

    async def bucket_entries(self, source: str, keys: Sequence[ObjectKey]) -> dict[ObjectKey, BucketEntry]:
        found: dict[ObjectKey, BucketEntry] = {}
        for chunk in _chunks(keys, KEYS_PER_QUERY):
            statement = sa.select(*_BUCKET_COLUMNS).where(_d.source == source, _matching(chunk))
            found.update((e.key, e) for e in map(_entry, (await self.run.execute(statement)).mappings()))
        return found

    async def insert_deployments(self, rows: Sequence[NewDeployment]) -> dict[ObjectKey, int]:
        inserted: dict[ObjectKey, int] = {}
        for chunk in _chunks(rows):
            values = [
                {
                    "tenant_id": row.tenant_id,
                    "source": row.source,
                    "cluster": row.key.cluster,
                    "api_group": row.key.group,
                    "runtime_kind": row.key.kind,
                    "runtime_namespace": row.key.namespace,
                    "runtime_name": row.key.name,
                    **_observation_values(row),
                    "first_seen_at": row.now,
                    "observed_at": row.now,
                }
                for row in chunk
            ]
            for m in await self.store.insert_new(self.run, t.deployments, values, (_d.id, *_KEY_COLUMNS)):
                inserted[_key(m)] = m["id"]
        return inserted

    async def owners(self, tenant_id: str, keys: Sequence[ObjectKey]) -> dict[ObjectKey, str]:
        found: dict[ObjectKey, str] = {}
        for chunk in _chunks(keys, KEYS_PER_QUERY):
            statement = sa.select(*_KEY_COLUMNS, _d.source).where(_d.tenant_id == tenant_id, _matching(chunk))
            for m in (await self.run.execute(statement)).mappings():
                found[_key(m)] = m["source"]
        return found

    async def update_deployments(self, rows: Sequence[NewDeployment]) -> None:
        if not rows:
            return
        params = [
            {"b_id": row.id, "b_now": row.now, **{f"b_{k}": v for k, v in _observation_values(row).items()}}
            for row in rows
        ]
        await self.run.execute(UPDATE_DEPLOYMENT, params)

    async def mark_orphaned(self, ids: Sequence[int], at: datetime) -> None:
        for chunk in _chunks(ids):
            await self.run.execute(
                sa.update(t.deployments)
                .where(_d.id.in_(list(chunk)))
                .values(orphaned_at=at, health="unknown")
            )

    async def delete_deployments(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(ids):
            await self.run.execute(sa.delete(t.deployments).where(_d.id.in_(list(chunk))))

    async def extras(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        found: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(ids):
            statement = sa.select(_d.id, _d.observed).where(_d.id.in_(list(chunk)))
            rows: list[Any] = list((await self.run.execute(statement)).all())
            for row_id, observed in rows:
                extra = json.loads(observed).get("extra")
                if extra:
                    found[row_id] = extra
        return found

    async def set_links(self, updates: Sequence[LinkUpdate]) -> None:
        if not updates:
            return
        await self.run.execute(SET_LINK, [{"b_id": u.id, **_link_values(u.link, "b_")} for u in updates])

    async def set_claim(self, deployment_id: int, claim: str | None, link: Link) -> None:
        values = {"claim": claim, **_link_values(link)}
        await self.run.execute(sa.update(t.deployments).where(_d.id == deployment_id).values(values))

    async def list_deployments(self, query: DeploymentQuery) -> list[DeploymentRow]:
        statement = sa.select(t.deployments).where(_d.id > query.after_id).order_by(_d.id).limit(query.limit)
        if query.readers is not None:
            statement = statement.where(_d.tenant_id.in_(list(query.readers)))
        filters: list[tuple[Any, Any]] = [
            (_d.source, query.source),
            (_d.cluster, query.cluster),
            (_d.environment, query.environment),
            (_d.resource_id, query.resource_id),
            (_d.version_id, query.version_id),
            (_d.health, query.health),
            (_d.catalog_kind, query.kind),
        ]
        for column, value in filters:
            if value is not None:
                statement = statement.where(column == value)
        if query.link_states:
            statement = statement.where(_d.link_state.in_(list(query.link_states)))
        if query.orphaned is not None:
            orphan = _d.orphaned_at.is_not(None)
            statement = statement.where(orphan if query.orphaned else sa.not_(orphan))
        return [_deployment(m) for m in (await self.run.execute(statement)).mappings()]

    async def get_deployment(
        self, readers: tuple[str, ...] | None, deployment_id: int
    ) -> DeploymentRow | None:
        statement = sa.select(t.deployments).where(_d.id == deployment_id)
        if readers is not None:
            statement = statement.where(_d.tenant_id.in_(list(readers)))
        found = (await self.run.execute(statement)).mappings().first()
        return _deployment(found) if found is not None else None

    async def set_overlay(
        self, deployment_id: int, labels: dict[str, str], annotations: dict[str, str]
    ) -> None:
        await self.run.execute(
            sa.update(t.deployments)
            .where(_d.id == deployment_id)
            .values(
                overlay_labels=json.dumps(labels, sort_keys=True),
                overlay_annotations=json.dumps(annotations, sort_keys=True),
            )
        )

    async def merge_extra(
        self, deployment_id: int, extra: dict[str, Any], digest: str, now: datetime
    ) -> None:
        current = await self.run.execute(sa.select(_d.observed).where(_d.id == deployment_id))
        text = current.scalar()
        if text is None:
            return
        observed = json.loads(text)
        observed["extra"] = {**observed.get("extra", {}), **extra}
        await self.run.execute(
            sa.update(t.deployments)
            .where(_d.id == deployment_id)
            .values(observed=json.dumps(observed, separators=(",", ":"), default=str), digest=digest)
        )

    async def deployment_counts(self, source: str) -> dict[str, int]:
        counts: dict[str, int] = {"total": 0, "orphaned": 0}
        statement = (
            sa.select(
                _d.link_state, _d.health, (_d.orphaned_at.is_not(None)).label("orphan"), sa.func.count()
            )
            .where(_d.source == source)
            .group_by(_d.link_state, _d.health, _d.orphaned_at.is_not(None))
        )
        rows: list[Any] = list((await self.run.execute(statement)).all())
        for link_state, health, orphan, n in rows:
            counts["total"] += n
            counts[link_state] = counts.get(link_state, 0) + n
            counts[f"health.{health}"] = counts.get(f"health.{health}", 0) + n
            if orphan:
                counts["orphaned"] += n
        return counts

    # --- introspected tools -------------------------------------------------------------------------

    async def get_tools(self, version_id: int) -> ToolsRow | None:
        found = (
            (await self.run.execute(sa.select(t.version_tools).where(_vt.version_id == version_id)))
            .mappings()
            .first()
        )
        if found is None:
            return None
        return ToolsRow(
            found["version_id"],
            found["endpoint"],
            json.loads(found["tools"]),
            found["digest"],
            found["introspected_at"],
            found["error"],
        )

    async def put_tools(self, row: ToolsRow) -> None:
        await self.run.execute(sa.delete(t.version_tools).where(_vt.version_id == row.version_id))
        await self.run.execute(
            sa.insert(t.version_tools),
            {
                "version_id": row.version_id,
                "endpoint": row.endpoint,
                "tools": json.dumps(row.tools, separators=(",", ":")),
                "digest": row.digest,
                "introspected_at": row.introspected_at,
                "error": row.error,
            },
        )
