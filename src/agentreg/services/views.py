"""What the services return: stored rows joined into the shapes every interface renders."""

from __future__ import annotations

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
