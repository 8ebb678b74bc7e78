"""What the services return: stored rows joined into the shapes every interface renders."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from agentreg.domain.errors import FieldIssue
from agentreg.domain.kinds import Kind
from agentreg.store.interface import AliasRow, ResourceRow, VersionRow


@dataclass(frozen=True, slots=True)
class VersionView:
    resource: ResourceRow
    version: VersionRow
    stored_document: str

    @property
    def kind(self) -> Kind:
        return Kind(self.resource.kind)

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.stored_document)
        if self.resource.labels:
            document["metadata"]["labels"] = self.resource.labels
        if self.resource.annotations:
            document["metadata"]["annotations"] = self.resource.annotations
        return document


@dataclass(frozen=True, slots=True)
class ResourceView:
    resource: ResourceRow
    latest: VersionRow | None
    version_count: int
    aliases: tuple[AliasRow, ...] = ()

    @property
    def etag(self) -> str:
        """Changes whenever the resource does: publishes and metadata changes move ``updated_at``, and the
        aliases are hashed in (moving one does not touch the resource row)."""
        r = self.resource
        aliases = sorted((a.alias, a.version) for a in self.aliases)
        basis = json.dumps([r.id, r.updated_at.isoformat(), self.version_count, aliases]).encode()
        return '"r-' + hashlib.sha256(basis).hexdigest()[:24] + '"'


def if_match_holds(if_match: str | None, etag: str) -> bool:
    """An ``If-Match`` header (absent, ``*``, or a list of tags) against the current ETag.

    Strong comparison (RFC 9110): a weak tag (``W/"…"``) never matches.
    """
    if if_match is None:
        return True
    tags = [t.strip() for t in if_match.split(",")]
    return "*" in tags or etag in tags


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    result: str  # created | unchanged | valid
    view: VersionView
    warnings: tuple[FieldIssue, ...]


@dataclass(frozen=True, slots=True)
class Dependency:
    field: str
    ref: str
    view: VersionView
    dependencies: tuple[Dependency, ...] = ()


@dataclass(frozen=True, slots=True)
class ResolvedView:
    root: VersionView
    dependencies: tuple[Dependency, ...]


@dataclass(frozen=True, slots=True)
class VersionAddress:
    """Which version, as a request names it (``version`` must be exact)."""

    kind: Kind
    namespace: str
    name: str
    version: str
