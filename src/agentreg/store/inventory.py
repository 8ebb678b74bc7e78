"""Storage of discovery: sources and their status, inventory rows (deployments), introspected tools."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from agentreg.domain.inventory import Link, ObjectKey
from agentreg.domain.sources import SourceConfig


@dataclass(frozen=True, slots=True)
class SourceRow:
    name: str
    tenant_id: str
    type: str
    config: dict[str, Any]
    managed_by: str  # file | api
    state: str  # pending | syncing | ready | degraded | failed | standby
    last_sync_at: datetime | None
    last_error: str | None
    error_at: datetime | None
    counts: dict[str, int]
    details: dict[str, Any]
    sync_requested_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: str


def new_source(config: SourceConfig, managed_by: str, by: str, now: datetime) -> SourceRow:
    """The row of a source just configured (by the file or the API): pending, nothing synced yet."""
    return SourceRow(
        name=config.name,
        tenant_id=config.tenant,
        type=config.type.value,
        config=config.to_json(),
        managed_by=managed_by,
        state="pending",
        last_sync_at=None,
        last_error=None,
        error_at=None,
        counts={},
        details={},
        sync_requested_at=None,
        created_at=now,
        updated_at=now,
        created_by=by,
    )


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """What a source's runner reports; None leaves a field as it is (``clear_error`` empties the error)."""

    state: str | None = None
    last_sync_at: datetime | None = None
    error: str | None = None
    clear_error: bool = False
    counts: dict[str, int] | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class BucketEntry:
    """What the reconciler needs of a row it owns, without the observation itself."""

    id: int
    key: ObjectKey
    digest: str
    orphaned_at: datetime | None
    link: Link
    declared_ref: str | None
    claim: str | None
    catalog_kind: str | None
    environment: str | None


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    id: int
    tenant_id: str
    source: str
    key: ObjectKey
    api_version: str
    uid: str
    environment: str | None
    catalog_kind: str | None
    title: str
    observed: dict[str, Any]
    digest: str
    health: str
    declared_ref: str | None
    claim: str | None
    link: Link
    overlay_labels: dict[str, str]
    overlay_annotations: dict[str, str]
    orphaned_at: datetime | None
    first_seen_at: datetime
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class NewDeployment:
    """A row to insert or to overwrite the observation of (``id`` 0 to insert)."""

    tenant_id: str
    source: str
    key: ObjectKey
    api_version: str
    uid: str
    environment: str | None
    catalog_kind: str | None
    title: str
    observed: dict[str, Any]
    digest: str
    health: str
    declared_ref: str | None
    claim: str | None
    link: Link
    now: datetime
    id: int = 0


@dataclass(frozen=True, slots=True)
class DeploymentQuery:
    readers: tuple[str, ...] | None
    source: str | None = None
    cluster: str | None = None
    environment: str | None = None
    resource_id: int | None = None
    version_id: int | None = None
    link_states: tuple[str, ...] = ()
    health: str | None = None
    orphaned: bool | None = None
    kind: str | None = None  # catalog kind
    after_id: int = 0
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ToolsRow:
    version_id: int
    endpoint: str
    tools: list[dict[str, Any]]
    digest: str
    introspected_at: datetime
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LinkUpdate:
    id: int
    link: Link
    extra: dict[str, Any] = field(default_factory=dict)


class InventoryTx(Protocol):
    async def get_source(self, name: str) -> SourceRow | None: ...
    async def list_sources(self, tenants: Sequence[str] | None) -> list[SourceRow]: ...
    async def put_source(self, row: SourceRow) -> bool:
        """Insert, or replace its configuration (keeping its status); True if it was inserted."""

    async def delete_source(self, name: str) -> int:
        """Remove the source and every row it owns; the number of rows removed."""

    async def set_source_status(self, name: str, status: SourceStatus, now: datetime) -> None: ...
    async def request_sync(self, name: str, at: datetime) -> None: ...
    async def take_sync_requests(self) -> list[str]:
        """Names with a pending sync request, clearing the requests."""

    async def bucket(
        self, source: str, group: str | None = None, kind: str | None = None
    ) -> list[BucketEntry]:
        """The rows ``source`` owns (of one group/kind when given)."""

    async def bucket_entries(self, source: str, keys: Sequence[ObjectKey]) -> dict[ObjectKey, BucketEntry]:
        """The rows ``source`` owns among ``keys`` (those it does not own are left out)."""

    async def insert_deployments(self, rows: Sequence[NewDeployment]) -> dict[ObjectKey, int]:
        """Insert the rows whose key is free in their tenant; the ids of those inserted (a key another
        source owns is skipped, not overwritten)."""

    async def owners(self, tenant_id: str, keys: Sequence[ObjectKey]) -> dict[ObjectKey, str]:
        """Which source owns each of ``keys`` that is owned."""

    async def update_deployments(self, rows: Sequence[NewDeployment]) -> None:
        """Overwrite the observation (and link) of rows by id; clears their orphan mark."""

    async def mark_orphaned(self, ids: Sequence[int], at: datetime) -> None: ...
    async def delete_deployments(self, ids: Sequence[int]) -> None: ...
    async def extras(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The observation's ``extra`` of each row (what enrichment recorded)."""

    async def set_links(self, updates: Sequence[LinkUpdate]) -> None: ...
    async def set_claim(self, deployment_id: int, claim: str | None, link: Link) -> None: ...
    async def list_deployments(self, query: DeploymentQuery) -> list[DeploymentRow]: ...
    async def get_deployment(
        self, readers: tuple[str, ...] | None, deployment_id: int
    ) -> DeploymentRow | None: ...
    async def set_overlay(
        self, deployment_id: int, labels: dict[str, str], annotations: dict[str, str]
    ) -> None: ...
    async def merge_extra(
        self, deployment_id: int, extra: dict[str, Any], digest: str, now: datetime
    ) -> None:
        """Set keys of the observation's ``extra`` (a fetched card, introspected tools)."""

    async def deployment_counts(self, source: str) -> dict[str, int]:
        """Rows of ``source`` by link state and health, plus total and orphaned."""

    async def get_tools(self, version_id: int) -> ToolsRow | None: ...
    async def put_tools(self, row: ToolsRow) -> None: ...
