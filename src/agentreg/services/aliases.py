"""Aliases: movable, audited pointers from a name (``stable``, ``canary``) to one version."""

from __future__ import annotations

from datetime import UTC, datetime

from agentreg.domain.errors import Invalid, NotFound, PreconditionFailed
from agentreg.domain.kinds import Kind
from agentreg.domain.names import SelectorType, check_alias, parse_selector
from agentreg.domain.permissions import Action
from agentreg.domain.principals import Principal
from agentreg.services import audit
from agentreg.services.access import readers
from agentreg.services.catalog import find_resource, select_version
from agentreg.store.interface import AliasRow, Store


async def list_aliases(
    store: Store, actor: Principal, kind: Kind, namespace: str, name: str
) -> list[AliasRow]:
    async with store.read(readers=readers(actor)) as tx:
        resource = await find_resource(tx, actor, kind, namespace, name)
        return await tx.list_aliases(resource.id)


async def get_alias(
    store: Store, actor: Principal, kind: Kind, namespace: str, name: str, alias: str
) -> AliasRow:
    for row in await list_aliases(store, actor, kind, namespace, name):
        if row.alias == alias:
            return row
    raise NotFound(f"{kind.value} {namespace}/{name} has no alias {alias!r}")


async def set_alias(
    store: Store,
    actor: Principal,
    kind: Kind,
    namespace: str,
    name: str,
    alias: str,
    version: str,
    *,
    if_match: str | None = None,
) -> AliasRow:
    """Point ``alias`` at an existing exact version. ``if_match`` is the version it must point at now."""
    check_alias(alias)
    selector = parse_selector(version, "/version")
    if selector.type not in (SelectorType.EXACT, SelectorType.LITERAL):
        raise Invalid.at("/version", "an alias points at an exact version, not a range, alias or 'latest'")
    now = datetime.now(UTC)
    async with store.begin(readers=readers(actor)) as tx:
        await tx.lock(f"resource:{kind.value}/{namespace}/{name}")
        resource = await find_resource(tx, actor, kind, namespace, name, Action.ALIAS)
        target = await select_version(tx, resource, selector)
        current = {a.alias: a for a in await tx.list_aliases(resource.id)}.get(alias)
        if if_match is not None and if_match != "*" and (current is None or current.version != if_match):
            now_at = current.version if current else "nothing"
            raise PreconditionFailed(f"alias {alias!r} points at {now_at}, not {if_match}")
        if current is not None and current.version_id == target.id:
            return current
        await tx.set_alias(resource.id, alias, target.id, now, actor.subject)
        await audit.record(
            tx,
            actor,
            "alias.set",
            f"{kind.value}/{namespace}/{name}",
            now,
            alias=alias,
            tenant=resource.tenant_id,
            version=target.version,
            previous=current.version if current else None,
        )
    return AliasRow(resource.id, alias, target.id, target.version, now, actor.subject)


async def delete_alias(
    store: Store,
    actor: Principal,
    kind: Kind,
    namespace: str,
    name: str,
    alias: str,
    *,
    if_match: str | None = None,
) -> None:
    """Remove ``alias``; ``if_match`` is the version it must point at now."""
    now = datetime.now(UTC)
    async with store.begin(readers=readers(actor)) as tx:
        await tx.lock(f"resource:{kind.value}/{namespace}/{name}")
        resource = await find_resource(tx, actor, kind, namespace, name, Action.ALIAS)
        current = {a.alias: a for a in await tx.list_aliases(resource.id)}.get(alias)
        if current is None:
            raise NotFound(f"{kind.value} {namespace}/{name} has no alias {alias!r}")
        if if_match is not None and if_match != "*" and current.version != if_match:
            raise PreconditionFailed(f"alias {alias!r} points at {current.version}, not {if_match}")
        await tx.delete_alias(resource.id, alias)
        await audit.record(
            tx,
            actor,
            "alias.delete",
            f"{kind.value}/{namespace}/{name}",
            now,
            tenant=resource.tenant_id,
            alias=alias,
            version=current.version,
        )
