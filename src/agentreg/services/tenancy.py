"""Tenants and namespaces: create tenants, claim namespaces (global names, like DNS), share them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agentreg.domain.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from agentreg.domain.names import NAMESPACE_RE, check_tenant_id
from agentreg.domain.permissions import Action, authorize
from agentreg.domain.principals import Principal
from agentreg.services import audit
from agentreg.services.access import member_tenant, pick_tenant, readers, sees_namespace
from agentreg.services.views import if_match_holds
from agentreg.store.interface import NamespaceRow, Store, TenantRow, Tx

MAX_GRANTS = 1000


def _now() -> datetime:
    return datetime.now(UTC)


async def create_tenant(
    store: Store, actor: Principal, tenant_id: str, display_name: str | None
) -> TenantRow:
    check_tenant_id(tenant_id, "/id")
    name = display_name if display_name is not None else tenant_id
    if not 1 <= len(name) <= 200 or not name.isprintable():
        raise Invalid.at("/displayName", "1-200 printable characters")
    authorize(actor, Action.TENANT_CREATE, None)
    now = _now()
    async with store.begin() as tx:
        if not await tx.insert_tenant(tenant_id, name, now):
            raise Conflict(f"tenant {tenant_id!r} exists already")
        await audit.record(
            tx, actor, "tenant.create", f"tenant/{tenant_id}", now, tenant=tenant_id, displayName=name
        )
    return TenantRow(tenant_id, name, now)


async def list_tenants(store: Store, actor: Principal) -> list[TenantRow]:
    async with store.read() as tx:
        return await tx.list_tenants(None if actor.super_admin else actor.tenants)


def _check_namespace(name: str, field: str) -> None:
    if not NAMESPACE_RE.fullmatch(name) or name in (".", "..") or len(name) > 200:
        raise Invalid.at(field, "a namespace is 1-200 of a-z, A-Z, 0-9, '.' and '-'")


@dataclass(frozen=True, slots=True)
class Claim:
    namespace: NamespaceRow
    created: bool


async def claim_namespace(store: Store, actor: Principal, name: str, tenant: str | None) -> Claim:
    """Claim an unclaimed namespace. Taken by another tenant is 409: the one place a foreign name shows."""
    _check_namespace(name, "/name")
    now = _now()
    async with store.begin(readers=readers(actor)) as tx:
        tenant = check_tenant_id(pick_tenant(actor, tenant, "to claim it for"), "/tenant")
        await member_tenant(tx, actor, tenant)
        authorize(actor, Action.NAMESPACE_CLAIM, tenant, namespace=name)
        await tx.lock(f"namespace:{name}")
        existing = await tx.get_namespace(name)
        if existing is not None:
            if existing.tenant_id == tenant:
                return Claim(existing, created=False)
            raise Conflict(f"namespace {name!r} is already claimed by another tenant")
        await tx.claim_namespace(name, tenant, now)
        await audit.record(tx, actor, "namespace.claim", f"namespace/{name}", now, tenant=tenant)
    return Claim(NamespaceRow(name, tenant, now, ()), created=True)


def sharing_etag(row: NamespaceRow) -> str:
    return '"' + ";".join(row.grantees) + '"'  # no commas: If-Match lists are comma-separated


async def share_namespace(
    store: Store,
    actor: Principal,
    name: str,
    *,
    public: bool,
    tenants: Sequence[str],
    if_match: str | None = None,
) -> NamespaceRow:
    """Replace who may read ``name`` besides its owner: every tenant (public) and/or named tenants."""
    if len(tenants) > MAX_GRANTS:
        raise Invalid.at("/tenants", f"at most {MAX_GRANTS} tenants")
    for i, grantee in enumerate(tenants):
        check_tenant_id(grantee, f"/tenants/{i}")
    now = _now()
    async with store.begin(readers=readers(actor)) as tx:
        await tx.lock(f"namespace:{name}")
        row = await visible_namespace(tx, actor, name)
        authorize(actor, Action.NAMESPACE_SHARE, row.tenant_id, namespace=name)
        if not if_match_holds(if_match, sharing_etag(row)):
            raise PreconditionFailed(f"the sharing of {name!r} changed since you read it")
        for i, grantee in enumerate(tenants):
            if await tx.get_tenant(grantee) is None:
                raise Invalid.at(f"/tenants/{i}", f"no tenant {grantee!r}")
        grantees = sorted({*(g for g in tenants if g != row.tenant_id), *(["*"] if public else [])})
        if tuple(grantees) == row.grantees:
            return row
        await tx.set_grants(name, grantees, now, actor.subject)
        await audit.record(
            tx,
            actor,
            "namespace.share",
            f"namespace/{name}",
            now,
            tenant=row.tenant_id,
            previous=list(row.grantees),
            grantees=grantees,
        )
    return NamespaceRow(row.name, row.tenant_id, row.created_at, tuple(grantees))


async def visible_namespace(tx: Tx, actor: Principal, name: str) -> NamespaceRow:
    row = await tx.get_namespace(name) if NAMESPACE_RE.fullmatch(name) else None
    if row is None or not sees_namespace(actor, row):
        raise NotFound(f"namespace {name!r} not found")
    return row


def as_seen_by(actor: Principal, row: NamespaceRow) -> NamespaceRow:
    """The owner (and a super admin) sees every grant; another tenant only the grants that concern it."""
    if actor.super_admin or row.tenant_id in actor.memberships:
        return row
    mine = {"*", *actor.tenants}
    return NamespaceRow(row.name, row.tenant_id, row.created_at, tuple(g for g in row.grantees if g in mine))


def _in_scope(actor: Principal, name: str) -> bool:
    scope = actor.scope
    reads = scope.actions is None or Action.READ.value in scope.actions
    return reads and (scope.namespaces is None or name in scope.namespaces)


async def get_namespace(store: Store, actor: Principal, name: str) -> NamespaceRow:
    async with store.read(readers=readers(actor)) as tx:
        row = await visible_namespace(tx, actor, name)
    if not _in_scope(actor, name):
        raise Forbidden(f"this key's scope does not cover namespace {name!r}")
    return as_seen_by(actor, row)


async def list_namespaces(store: Store, actor: Principal) -> list[NamespaceRow]:
    async with store.read(readers=readers(actor)) as tx:
        rows = await tx.list_namespaces(readers(actor))
    return [as_seen_by(actor, row) for row in rows if _in_scope(actor, row.name)]
