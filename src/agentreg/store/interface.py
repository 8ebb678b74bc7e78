"""The storage interface the services use. The store never commits on its own and holds no use-case logic."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from agentreg.domain.errors import FieldIssue


@dataclass(frozen=True, slots=True)
class ResourceRow:
    id: int
    tenant_id: str
    kind: str
    namespace: str
    name: str
    title: str
    description: str
    labels: dict[str, str]
    annotations: dict[str, str]
    latest_version: str | None
    version_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class VersionRow:
    """A version without its document (cheap to list)."""

    id: int
    resource_id: int
    version: str
    semver_key: str | None
    digest: str
    title: str
    description: str
    protocol: str | None
    warnings: tuple[FieldIssue, ...]
    origin: str
    published_at: datetime
    published_by: str


@dataclass(frozen=True, slots=True)
class NewVersion:
    resource_id: int
    version: str
    semver_key: str | None
    digest: str
    document: str
    title: str
    description: str
    protocol: str | None
    warnings: tuple[FieldIssue, ...]
    origin: str
    published_at: datetime
    published_by: str
    refs: tuple[RefRow, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class RefRow:
    field: str
    kind: str
    namespace: str
    name: str
    selector: str


@dataclass(frozen=True, slots=True)
class AliasRow:
    resource_id: int
    alias: str
    version_id: int
    version: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class AuditEvent:
    tenant_id: str
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, object]
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceQuery:
    tenant_id: str
    kind: str
    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    after: tuple[str, str] | None = None  # (namespace, name) of the last item of the previous page
    limit: int = 50


class Tx(Protocol):
    """One open transaction. Every method runs inside it; the caller commits by leaving ``begin()``."""

    async def lock(self, key: str) -> None:
        """Serialize writers on ``key`` until the transaction ends."""

    async def namespace_owner(self, namespace: str) -> str | None: ...
    async def ensure_tenant(self, tenant_id: str, display_name: str, now: datetime) -> None: ...
    async def claim_namespace(self, namespace: str, tenant_id: str, now: datetime) -> None: ...

    async def get_resource(
        self, tenant_id: str, kind: str, namespace: str, name: str
    ) -> ResourceRow | None: ...
    async def insert_resource(
        self, tenant_id: str, kind: str, namespace: str, name: str, now: datetime
    ) -> ResourceRow: ...
    async def update_resource(
        self,
        resource_id: int,
        *,
        now: datetime,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        latest: tuple[str, str, str] | None = None,
        added_version: bool = False,
    ) -> None:
        """Change what is given; ``latest`` is (version, title, description); ``added_version`` counts one more."""

    async def list_resources(self, query: ResourceQuery) -> list[ResourceRow]: ...

    async def list_versions(self, resource_id: int) -> list[VersionRow]: ...
    async def latest_versions(self, resources: Sequence[ResourceRow]) -> dict[int, VersionRow]: ...
    async def find_version(
        self, resource_id: int, version: str, semver_key: str | None
    ) -> VersionRow | None: ...
    async def version_document(self, version_id: int) -> str: ...
    async def insert_version(self, new: NewVersion) -> VersionRow: ...

    async def list_aliases(self, resource_id: int) -> list[AliasRow]: ...
    async def set_alias(
        self, resource_id: int, alias: str, version_id: int, now: datetime, actor: str
    ) -> None: ...
    async def delete_alias(self, resource_id: int, alias: str) -> bool: ...

    async def append_audit(self, event: AuditEvent) -> None: ...
    async def list_audit(self, tenant_id: str, limit: int) -> list[AuditEvent]: ...

    def mark_changed(self) -> None:
        """Note that catalog state changed, so caches everywhere are invalidated when this commits."""


class ChangeSignal(Protocol):
    """A cheap, synchronous token that differs after any committed catalog change (from any process)."""

    def token(self) -> int: ...


class Store(Protocol):
    dialect: str

    def begin(self) -> AbstractAsyncContextManager[Tx]:
        """A read-write transaction, committed on success and rolled back on error."""

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A read-only transaction."""

    @property
    def changes(self) -> ChangeSignal: ...

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def migration_revision(self) -> str | None: ...
