"""Discovery as users see it: sources (configured by API or by the ``AGENTREG_SOURCES`` file) and the inventory
rows they own (``/v1/deployments``).

Rows are written by the reconciler only; the one user write on a row is its overlay (labels and
annotations laid over what was observed). A source's name is global (one leader runs every source), so a
name another tenant uses is a conflict, the one place a foreign source shows; otherwise another tenant's
sources and rows are not found.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentreg.domain.documents import check_annotations, check_labels
from agentreg.domain.errors import Conflict, Forbidden, Invalid, InvalidRequest, NotFound, PreconditionFailed
from agentreg.domain.health import Health
from agentreg.domain.inventory import LinkState
from agentreg.domain.kinds import Kind, parse_kind
from agentreg.domain.names import check_tenant_id
from agentreg.domain.permissions import Action, authorize, scope_allows
from agentreg.domain.principals import Principal
from agentreg.domain.sources import SourceType, files_under, parse_source
from agentreg.services import audit, clock
from agentreg.services.access import member_tenant, pick_tenant, readers, visible_resource
from agentreg.services.resources import merge_patch
from agentreg.services.views import if_match_holds
from agentreg.store.interface import Store, Tx
from agentreg.store.inventory import DeploymentQuery, DeploymentRow, SourceRow, new_source

FILE_MANAGED = "file"
API_MANAGED = "api"
MAX_PAGE = 500


def _stamp(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _etag(prefix: str, body: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f'"{prefix}-{digest[:24]}"'


# --- views ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceView:
    row: SourceRow
    counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        row = self.row
        error = {"message": row.last_error, "at": _stamp(row.error_at)} if row.last_error else None
        return {
            "name": row.name,
            "type": row.type,
            "tenant": row.tenant_id,
            "managedBy": row.managed_by,
            "config": row.config,
            "state": row.state,
            "lastSyncAt": _stamp(row.last_sync_at),
            "error": error,
            "counts": self.counts,
            "details": row.details,
        }


@dataclass(frozen=True, slots=True)
class DeploymentView:
    row: DeploymentRow

    def to_json(self) -> dict[str, Any]:
        row = self.row
        observed = row.observed
        extra: Mapping[str, Any] = observed.get("extra") or {}
        link = row.link
        return {
            "id": row.id,
            "source": row.source,
            "cluster": row.key.cluster,
            "environment": row.environment,
            "object": {
                "apiVersion": row.api_version,
                "kind": row.key.kind,
                "namespace": row.key.namespace,
                "name": row.key.name,
                "uid": row.uid,
            },
            "kind": row.catalog_kind,
            "title": row.title,
            "health": row.health,
            "healthReason": observed.get("healthReason") or "",
            "link": {"state": link.state.value, "ref": link.ref, "via": link.via, "reason": link.reason},
            "drift": link.state is LinkState.DRIFT,
            "unregistered": link.state is LinkState.UNREGISTERED,
            "orphaned": row.orphaned_at is not None,
            "orphanedAt": _stamp(row.orphaned_at),
            "firstSeenAt": _stamp(row.first_seen_at),
            "observedAt": _stamp(row.observed_at),
            "labels": {**(observed.get("labels") or {}), **row.overlay_labels},
            "annotations": {**(observed.get("annotations") or {}), **row.overlay_annotations},
            "overlay": {"labels": row.overlay_labels, "annotations": row.overlay_annotations},
            "spec": observed.get("spec") or {},
            "status": observed.get("status") or {},
            "endpoint": observed.get("endpoint"),
            "card": extra.get("card"),
            "conditions": list(extra.get("conditions") or []),
            "identity": extra.get("identity"),
            "tools": extra.get("tools"),
        }

    @property
    def etag(self) -> str:
        """Changes with anything the row shows (an observation, a relink, a fetched card, the overlay)."""
        return _etag("d", self.to_json())


# --- sources --------------------------------------------------------------------------------------------


def _check_read_scope(actor: Principal) -> None:
    if actor.scope.actions is not None and Action.READ.value not in actor.scope.actions:
        raise Forbidden("this key's scope does not cover reading")


async def _view(tx: Tx, row: SourceRow) -> SourceView:
    return SourceView(row, {**row.counts, **await tx.deployment_counts(row.name)})


async def _visible_source(tx: Tx, actor: Principal, name: str) -> SourceRow:
    row = await tx.get_source(name)
    if row is None or not (actor.super_admin or row.tenant_id in actor.memberships):
        raise NotFound(f"source {name!r} not found")
    return row


def _api_managed(row: SourceRow, verb: str) -> None:
    if row.managed_by == FILE_MANAGED:
        raise Conflict(
            f"source {row.name!r} is configured in the AGENTREG_SOURCES file; {verb} it there, not by API"
        )


async def list_sources(store: Store, actor: Principal) -> list[SourceView]:
    _check_read_scope(actor)
    async with store.read(readers=readers(actor)) as tx:
        return [await _view(tx, row) for row in await tx.list_sources(readers(actor))]


async def get_source(store: Store, actor: Principal, name: str) -> SourceView:
    _check_read_scope(actor)
    async with store.read(readers=readers(actor)) as tx:
        return await _view(tx, await _visible_source(tx, actor, name))


async def put_source(
    store: Store,
    actor: Principal,
    body: Any,
    name: str | None = None,
    *,
    create_only: bool = False,
    files_root: str | None = None,
) -> tuple[SourceView, bool]:
    """Create or replace an API-managed source; (its view, whether it was created).

    ``name`` is the one in the URL (the body's must agree, or be absent); ``create_only`` refuses to replace;
    files the source names (kubeconfig, directories, certificates) must lie under ``files_root``.
    """
    if not isinstance(body, Mapping):
        raise Invalid.at("/", "a source must be an object")
    raw = dict(body)
    if name is not None and raw.setdefault("name", name) != name:
        raise Invalid.at("/name", f"must be {name!r}, the name in the URL (or be left out)")
    given_tenant = raw.get("tenant")
    tenant = pick_tenant(actor, given_tenant if isinstance(given_tenant, str) else None, "the source is for")
    raw.setdefault("tenant", tenant)
    config = parse_source(raw)  # every problem named before anything is opened
    # Each tenant's files live in its own directory under the root, so no tenant can name another's.
    config = files_under(config, os.path.join(files_root, config.tenant) if files_root else None)
    if config.in_cluster and not actor.super_admin:
        # The registry's own service account would watch the cluster for one tenant.
        raise Invalid.at(
            "/inCluster",
            "only a super admin, or the AGENTREG_SOURCES file, may watch the registry's own cluster",
        )
    tenant = check_tenant_id(config.tenant, "/tenant")
    now = clock.now()
    # Unscoped: the name is global, and a source of another tenant must be seen to be refused (a 409, not
    # a primary-key violation); the actor's rights are checked here instead of by row-level security.
    async with store.begin() as tx:
        if tenant not in actor.memberships:
            await member_tenant(tx, actor, tenant)
        authorize(actor, Action.DISCOVERY_MANAGE, tenant)
        if config.type is SourceType.MANIFESTS:
            # A manifests source publishes, and claims the tenant's namespaces it publishes into.
            authorize(actor, Action.PUBLISH, tenant)
            authorize(actor, Action.NAMESPACE_CLAIM, tenant)
        await tx.ensure_tenant(tenant, tenant, now)
        await tx.lock(f"source:{config.name}")
        existing = await tx.get_source(config.name)
        if existing is not None:
            if existing.tenant_id != tenant:
                raise Conflict(f"the source name {config.name!r} is taken; choose another")
            _api_managed(existing, "change")
            if create_only:
                raise Conflict(
                    f"source {config.name!r} exists already; PUT /v1/sources/{config.name} to replace it"
                )
        row = new_source(config, API_MANAGED, actor.subject, now)
        created = await tx.put_source(row)
        await audit.record(
            tx,
            actor,
            "source.put",
            f"source/{config.name}",
            now,
            tenant=tenant,
            created=created,
            config=config.to_json(),
        )
        stored = await tx.get_source(config.name)
        assert stored is not None
        return await _view(tx, stored), created


async def delete_source(store: Store, actor: Principal, name: str) -> int:
    """Remove an API-managed source and every row it owns; the number of rows removed."""
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        await tx.lock(f"source:{name}")
        row = await _visible_source(tx, actor, name)
        authorize(actor, Action.DISCOVERY_MANAGE, row.tenant_id)
        _api_managed(row, "remove")
        removed = await tx.delete_source(name)
        await audit.record(
            tx, actor, "source.delete", f"source/{name}", now, tenant=row.tenant_id, rowsRemoved=removed
        )
    return removed


async def request_sync(store: Store, actor: Principal, name: str) -> SourceView:
    """Ask the discovery leader to re-list the source now (it picks the request up on its next tick)."""
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        row = await _visible_source(tx, actor, name)
        authorize(actor, Action.DISCOVERY_MANAGE, row.tenant_id)
        await tx.request_sync(name, now)
        await audit.record(tx, actor, "source.sync", f"source/{name}", now, tenant=row.tenant_id)
        return await _view(tx, row)


# --- deployments ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeploymentFilters:
    resource: str | None = None  # kind/namespace/name
    cluster: str | None = None
    environment: str | None = None
    source: str | None = None
    health: str | None = None
    drift: bool = False
    unregistered: bool = False
    orphaned: bool | None = None
    kind: str | None = None


def encode_cursor(after_id: int) -> str:
    return base64.urlsafe_b64encode(f"d:{after_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "d" or not number.isdigit():
        raise InvalidRequest.at("/cursor", "is not a cursor this server issued")
    return int(number)


def _resource_parts(text: str) -> tuple[Kind, str, str]:
    parts = text.split("/")
    if len(parts) != 3 or not all(parts):
        raise InvalidRequest.at("/resource", f"{text!r} must look like kind/namespace/name")
    try:
        kind = parse_kind(parts[0], "/resource")
    except Invalid as exc:
        raise InvalidRequest(exc.message, exc.details) from None
    return kind, parts[1], parts[2]


def _link_target(row: DeploymentRow) -> tuple[str | None, str | None]:
    """(namespace, kind/namespace/name) of the resource a row runs, for key scopes."""
    if not row.link.ref:
        return None, None
    path = row.link.ref.partition("@")[0]
    parts = path.split("/")
    return (parts[1], path) if len(parts) == 3 else (None, None)


def _covers(actor: Principal, row: DeploymentRow, action: Action = Action.READ) -> bool:
    """A key scoped to namespaces or resources covers only rows linked to one of them."""
    namespace, resource = _link_target(row)
    return scope_allows(actor.scope, action, namespace, resource)


def _query(filters: DeploymentFilters) -> DeploymentQuery:
    if filters.health is not None and filters.health not in {h.value for h in Health}:
        raise InvalidRequest.at("/health", f"must be one of {', '.join(h.value for h in Health)}")
    kind = None
    if filters.kind is not None:
        try:
            kind = parse_kind(filters.kind, "/kind").value
        except Invalid as exc:
            raise InvalidRequest(exc.message, exc.details) from None
    states = tuple(
        state.value
        for state, wanted in (
            (LinkState.DRIFT, filters.drift),
            (LinkState.UNREGISTERED, filters.unregistered),
        )
        if wanted
    )
    return DeploymentQuery(
        readers=None,
        source=filters.source,
        cluster=filters.cluster,
        environment=filters.environment,
        link_states=states,
        health=filters.health,
        orphaned=filters.orphaned,
        kind=kind,
    )


async def list_deployments(
    store: Store,
    actor: Principal,
    filters: DeploymentFilters = DeploymentFilters(),
    *,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[DeploymentView], str | None]:
    """A page of the rows the actor's tenants own, in id order; ``drift`` and ``unregistered`` together
    give the rows with either flag."""
    _check_read_scope(actor)
    limit = max(1, min(limit, MAX_PAGE))
    base = _query(filters)
    after = decode_cursor(cursor) if cursor else 0
    async with store.read(readers=readers(actor)) as tx:
        resource_id = None
        if filters.resource is not None:
            kind, namespace, name = _resource_parts(filters.resource)
            resource_id = (await visible_resource(tx, actor, kind, namespace, name)).id
        query = DeploymentQuery(
            readers=readers(actor),
            source=base.source,
            cluster=base.cluster,
            environment=base.environment,
            resource_id=resource_id,
            link_states=base.link_states,
            health=base.health,
            orphaned=base.orphaned,
            kind=base.kind,
            after_id=after,
            limit=limit + 1,
        )
        rows = await tx.list_deployments(query)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    # A scoped key's page may come out short; the cursor still moves past everything read.
    return [DeploymentView(r) for r in page if _covers(actor, r)], next_cursor


async def deployments_of_resource(
    store: Store, actor: Principal, kind: Kind, namespace: str, name: str, *, limit: int = MAX_PAGE
) -> list[DeploymentView]:
    """Where a resource runs: the rows of the actor's tenants linked to it (drifted ones included)."""
    filters = DeploymentFilters(resource=f"{kind.value}/{namespace}/{name}")
    views: list[DeploymentView] = []
    cursor: str | None = None
    while True:
        page, cursor = await list_deployments(store, actor, filters, limit=limit, cursor=cursor)
        views.extend(page)
        if cursor is None:
            return views


async def _visible_deployment(tx: Tx, actor: Principal, deployment_id: int) -> DeploymentRow:
    row = await tx.get_deployment(readers(actor), deployment_id)
    if row is None:
        raise NotFound(f"deployment {deployment_id} not found")
    if not _covers(actor, row):
        raise Forbidden(f"this key's scope does not cover deployment {deployment_id}")
    return row


async def get_deployment(store: Store, actor: Principal, deployment_id: int) -> DeploymentView:
    _check_read_scope(actor)
    async with store.read(readers=readers(actor)) as tx:
        return DeploymentView(await _visible_deployment(tx, actor, deployment_id))


async def set_overlay(
    store: Store,
    actor: Principal,
    deployment_id: int,
    labels: Any = None,
    annotations: Any = None,
    if_match: str | None = None,
) -> DeploymentView:
    """Merge-patch the labels and annotations laid over what a row's source observed (the overlay wins)."""
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        await tx.lock(f"deployment:{deployment_id}")
        row = await _visible_deployment(tx, actor, deployment_id)
        namespace, resource = _link_target(row)
        authorize(actor, Action.DEPLOYMENT_MANAGE, row.tenant_id, namespace=namespace, resource=resource)
        current = DeploymentView(row)
        if not if_match_holds(if_match, current.etag):
            raise PreconditionFailed(
                f"deployment {deployment_id} changed since you read it (ETag {current.etag})"
            )
        new_labels = row.overlay_labels
        new_annotations = row.overlay_annotations
        if labels is not None:
            new_labels = check_labels(merge_patch(row.overlay_labels, labels, "/labels"))
        if annotations is not None:
            new_annotations = check_annotations(
                merge_patch(row.overlay_annotations, annotations, "/annotations")
            )
        await tx.set_overlay(deployment_id, new_labels, new_annotations)
        patch = {k: v for k, v in (("labels", labels), ("annotations", annotations)) if v is not None}
        await audit.record(
            tx,
            actor,
            "deployment.annotate",
            f"deployment/{deployment_id}",
            now,
            tenant=row.tenant_id,
            source=row.source,
            object=str(row.key),
            patch=patch,
        )
        updated = await tx.get_deployment(readers(actor), deployment_id)
        assert updated is not None
        return DeploymentView(updated)
