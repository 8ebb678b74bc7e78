"""Mutable resource metadata: labels and annotations (outside every version's digest)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from agentreg.domain.documents import check_annotations, check_labels
from agentreg.domain.errors import Invalid, PreconditionFailed
from agentreg.domain.kinds import Kind
from agentreg.domain.permissions import Action
from agentreg.domain.principals import Principal
from agentreg.services import audit
from agentreg.services.access import readers
from agentreg.services.catalog import find_resource, get_resource
from agentreg.services.views import ResourceView, if_match_holds
from agentreg.store.interface import Store


def merge_patch(current: dict[str, str], patch: Any, field: str) -> dict[str, str]:
    """JSON Merge Patch (RFC 7396) on a string map: ``null`` removes a key."""
    if not isinstance(patch, Mapping):
        raise Invalid.at(field, "must be an object")
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def update_metadata(
    store: Store,
    actor: Principal,
    kind: Kind,
    namespace: str,
    name: str,
    patch: dict[str, Any],
    *,
    if_match: str | None = None,
) -> ResourceView:
    unknown = [k for k in patch if k not in ("labels", "annotations")]
    if unknown:
        raise Invalid.at(
            f"/{unknown[0]}", "only labels and annotations can change; publish a new version instead"
        )
    now = datetime.now(UTC)
    async with store.begin(readers=readers(actor)) as tx:
        await tx.lock(f"resource:{kind.value}/{namespace}/{name}")
        resource = await find_resource(tx, actor, kind, namespace, name, Action.ANNOTATE)
        if if_match is not None:
            current = ResourceView(
                resource, None, resource.version_count, tuple(await tx.list_aliases(resource.id))
            )
            if not if_match_holds(if_match, current.etag):
                raise PreconditionFailed(
                    f"{kind.value} {namespace}/{name} changed since you read it (ETag {current.etag})"
                )
        labels = annotations = None
        if "labels" in patch:
            labels = check_labels(merge_patch(resource.labels, patch["labels"], "/labels"))
        if "annotations" in patch:
            annotations = check_annotations(
                merge_patch(resource.annotations, patch["annotations"], "/annotations")
            )
        await tx.update_resource(resource.id, now=now, labels=labels, annotations=annotations)
        await audit.record(
            tx,
            actor,
            "resource.update",
            f"{kind.value}/{namespace}/{name}",
            now,
            tenant=resource.tenant_id,
            patch=patch,
        )
    return await get_resource(store, actor, kind, namespace, name)
