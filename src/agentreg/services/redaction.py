"""Redaction: a super admin replaces the document of a version that leaked a secret with a tombstone.

Published versions never change, except this way: the tombstone keeps the version's identity, and its
digest (of the original content), status and audit trail stay, so what was published remains on record
without what it leaked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agentreg.domain.digest import canonical_json
from agentreg.domain.documents import API_VERSION
from agentreg.domain.errors import Conflict, Forbidden
from agentreg.domain.kinds import Kind
from agentreg.domain.lifecycle import check_reason
from agentreg.domain.permissions import Action
from agentreg.domain.principals import Principal
from agentreg.services import audit, clock
from agentreg.services.access import authorize_on, readers
from agentreg.services.catalog import exact_version, find_resource, version_path
from agentreg.services.views import VersionView
from agentreg.store.interface import Mark, Store


async def redact(
    store: Store, actor: Principal, kind: Kind, namespace: str, name: str, version: str, reason: object
) -> VersionView:
    """Replace the version's spec with ``{"redacted": true}``; 409 if it is redacted already."""
    why = check_reason(reason)
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        await tx.lock(f"resource:{kind.value}/{namespace}/{name}")
        resource = await find_resource(tx, actor, kind, namespace, name)  # 404 before 403: existence hides
        if not actor.super_admin:
            raise Forbidden("only a super admin can redact")
        authorize_on(actor, Action.LIFECYCLE_ADMIN, resource)  # a scoped key must cover it too
        row = await exact_version(tx, resource, version)
        target = version_path(resource, row.version)
        if row.redacted is not None:
            raise Conflict(f"{target} is already redacted")
        stored = json.loads(await tx.version_document(row.id))
        document = tombstone(stored, kind, namespace, name, row.version)
        mark = Mark(why, now, actor.subject)
        await tx.redact_version(row.id, document, mark)
        await audit.record(
            tx, actor, "version.redact", target, now, tenant=resource.tenant_id, reason=why, before=row.digest
        )
    return VersionView(resource, replace(row, redacted=mark), document)


def tombstone(stored: Mapping[str, Any], kind: Kind, namespace: str, name: str, version: str) -> str:
    """The stored document's identity with ``spec: {"redacted": true}``, as canonical JSON like every stored
    document (the envelope values come from the stored document when it has them)."""
    metadata = stored.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    identity = {
        "apiVersion": stored.get("apiVersion", API_VERSION),
        "kind": stored.get("kind", kind.envelope),
        "metadata": {
            "namespace": metadata.get("namespace", namespace),
            "name": metadata.get("name", name),
            "version": metadata.get("version", version),
        },
        "spec": {"redacted": True},
    }
    return canonical_json(identity).decode()
