"""Tenant scoping for every service: what a principal can see (else 404) and may change (else 403)."""

from __future__ import annotations

from agentreg.domain.errors import Forbidden, Invalid, NotFound
from agentreg.domain.kinds import Kind
from agentreg.domain.names import is_addressable
from agentreg.domain.permissions import Action, authorize, scope_allows
from agentreg.domain.principals import Principal
from agentreg.store.interface import NamespaceRow, Readers, ResourceRow, Tx


def readers(actor: Principal) -> Readers:
    """The tenants whose objects ``actor`` sees besides shared ones (None: every tenant)."""
    return None if actor.super_admin else actor.tenants


def pick_tenant(actor: Principal, tenant: str | None, what: str) -> str:
    """The tenant named, or the actor's only one; 422 on ``/tenant`` when that is ambiguous."""
    if tenant is None:
        tenant = actor.home_tenant
        if tenant is None:
            raise Invalid.at("/tenant", f"name the tenant {what} (you belong to several, or to none)")
    return tenant


async def member_tenant(tx: Tx, actor: Principal, tenant: str) -> None:
    """404 unless ``tenant`` exists and the actor belongs to it (a super admin to every tenant)."""
    if (not actor.super_admin and tenant not in actor.memberships) or await tx.get_tenant(tenant) is None:
        raise NotFound(f"tenant {tenant!r} not found")


def sees_namespace(actor: Principal, row: NamespaceRow) -> bool:
    """Owned by one of the actor's tenants, shared with one of them or with everyone; all, for a super admin."""
    return (
        actor.super_admin
        or row.tenant_id in actor.memberships
        or bool(set(row.grantees) & {"*", *actor.tenants})
    )


def resource_path(resource: ResourceRow) -> str:
    return f"{resource.kind}/{resource.namespace}/{resource.name}"


async def visible_resource(
    tx: Tx, actor: Principal, kind: Kind, namespace: str, name: str, action: Action = Action.READ
) -> ResourceRow:
    """The resource if ``actor`` can see it (404 otherwise, whoever owns it), authorized for ``action``."""
    resource = (
        await tx.find_resource(readers(actor), kind.value, namespace, name)
        if is_addressable(namespace, name)
        else None
    )
    if resource is None:
        raise NotFound(f"{kind.value} {namespace}/{name} not found")
    authorize_on(actor, action, resource)
    return resource


def authorize_on(actor: Principal, action: Action, resource: ResourceRow) -> None:
    if action is Action.READ:
        # Reading needs visibility (checked in SQL) and a key scope that covers it, not a role in the owner.
        if not scope_allows(actor.scope, action, resource.namespace, resource_path(resource)):
            raise Forbidden(f"this key's scope does not cover reading {resource_path(resource)}")
        return
    authorize(
        actor, action, resource.tenant_id, namespace=resource.namespace, resource=resource_path(resource)
    )
