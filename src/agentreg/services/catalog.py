"""Reading the catalog: resources, their versions, and the version a selector picks."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

from agentreg.domain import resolution
from agentreg.domain.errors import Forbidden, Invalid, InvalidRequest, NotFound
from agentreg.domain.kinds import Kind
from agentreg.domain.names import NAMESPACE_RE, Selector, SelectorType, parse_selector
from agentreg.domain.permissions import Action
from agentreg.domain.principals import Principal
from agentreg.services.access import readers, visible_resource
from agentreg.services.views import ResourceView
from agentreg.store.interface import ResourceQuery, ResourceRow, Store, Tx, VersionRow


def encode_cursor(namespace: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([namespace, name]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        namespace, name = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidRequest.at("/cursor", "is not a cursor this server issued") from None
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise InvalidRequest.at("/cursor", "is not a cursor this server issued")
    return namespace, name


def parse_label_filters(filters: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for text in filters:
        key, sep, value = text.partition("=")
        if not sep or not key or "\x00" in text:
            raise InvalidRequest.at("/label", f"label filter {text!r} must look like key=value")
        pairs.append((key, value))
    return tuple(pairs)


async def list_resources(
    store: Store,
    actor: Principal,
    kind: Kind,
    *,
    namespace: str | None = None,
    labels: Sequence[str] = (),
    text: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[ResourceView], str | None]:
    if namespace is not None and not NAMESPACE_RE.fullmatch(namespace):
        raise InvalidRequest.at("/namespace", "is not a valid namespace")
    if text is not None and "\x00" in text:
        raise InvalidRequest.at("/q", "must not contain NUL characters")
    scope = actor.scope
    if scope.actions is not None and Action.READ.value not in scope.actions:
        raise Forbidden("this key's scope does not cover reading the catalog")
    only_names: tuple[tuple[str, str], ...] | None = None
    if scope.resources is not None:  # kind/namespace/name, validated when the key was made
        prefix = f"{kind.value}/"
        pairs = []
        for resource in sorted(scope.resources):
            if resource.startswith(prefix):
                namespace, _, name = resource[len(prefix) :].partition("/")
                pairs.append((namespace, name))
        only_names = tuple(pairs)
    query = ResourceQuery(
        readers=readers(actor),
        only_namespaces=tuple(sorted(scope.namespaces)) if scope.namespaces is not None else None,
        only_names=only_names,
        kind=kind.value,
        namespace=namespace,
        labels=parse_label_filters(labels),
        text=text or None,
        after=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    async with store.read(readers=query.readers) as tx:
        rows = await tx.list_resources(query)
        page = rows[:limit]
        latest = await tx.latest_versions(page)
    views = [ResourceView(resource=r, latest=latest.get(r.id), version_count=r.version_count) for r in page]
    next_cursor = encode_cursor(page[-1].namespace, page[-1].name) if len(rows) > limit else None
    return views, next_cursor


async def find_resource(
    tx: Tx, actor: Principal, kind: Kind, namespace: str, name: str, action: Action = Action.READ
) -> ResourceRow:
    return await visible_resource(tx, actor, kind, namespace, name, action)


async def get_resource(store: Store, actor: Principal, kind: Kind, namespace: str, name: str) -> ResourceView:
    async with store.read(readers=readers(actor)) as tx:
        resource = await find_resource(tx, actor, kind, namespace, name)
        latest = await tx.latest_versions([resource])
        aliases = await tx.list_aliases(resource.id)
    return ResourceView(resource, latest.get(resource.id), resource.version_count, tuple(aliases))


async def list_versions(
    store: Store, actor: Principal, kind: Kind, namespace: str, name: str
) -> tuple[ResourceRow, list[VersionRow]]:
    async with store.read(readers=readers(actor)) as tx:
        resource = await find_resource(tx, actor, kind, namespace, name)
        versions = await tx.list_versions(resource.id)
    return resource, resolution.newest_first(versions)


async def select_version(tx: Tx, resource: ResourceRow, selector: Selector) -> VersionRow:
    if selector.type == SelectorType.LATEST and resource.latest_version is not None:
        latest = await tx.find_version(resource.id, resource.latest_version, None)
        if latest is not None:
            return latest
    versions = await tx.list_versions(resource.id)
    aliases: dict[str, str] = {}
    if selector.type == SelectorType.ALIAS:
        aliases = {a.alias: a.version for a in await tx.list_aliases(resource.id)}
    chosen = resolution.select(versions, aliases, selector)
    if chosen is None:
        full = f"{resource.kind} {resource.namespace}/{resource.name}"
        if selector.type == SelectorType.ALIAS:
            raise NotFound(f"{full} has no alias or version {selector.text!r}")
        raise NotFound(f"no version of {full} matches {selector.text!r}")
    return chosen


async def exact_version(tx: Tx, resource: ResourceRow, text: str) -> VersionRow:
    """The version ``text`` names exactly (lifecycle moves and evidence name one version, never a range)."""
    selector = request_selector(text)
    if selector.type not in (SelectorType.EXACT, SelectorType.LITERAL):
        raise InvalidRequest.at("/version", "name an exact version here, not a range, an alias or 'latest'")
    return await select_version(tx, resource, selector)


async def version_of(
    tx: Tx, actor: Principal, kind: Kind, namespace: str, name: str, version: str, action: Action
) -> tuple[ResourceRow, VersionRow]:
    """A visible resource and one exact version of it, authorized for ``action`` (404 if unseen, 403 if not
    allowed)."""
    resource = await find_resource(tx, actor, kind, namespace, name, action)
    return resource, await exact_version(tx, resource, version)


def version_path(resource: ResourceRow, version: str) -> str:
    """``kind/namespace/name@version``: how audit events and reports name a version."""
    return f"{resource.kind}/{resource.namespace}/{resource.name}@{version}"


def request_selector(text: str) -> Selector:
    """A selector from a request path: a bad one is a bad request, not a bad document."""
    try:
        return parse_selector(text, "/selector")
    except Invalid as exc:
        raise InvalidRequest(exc.message, exc.details) from None
