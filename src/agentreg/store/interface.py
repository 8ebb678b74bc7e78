"""The storage interface the services use. The store never commits on its own and holds no use-case logic."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from agentreg.domain.auditchain import ChainedEvent, Checkpoint, jsonable
from agentreg.domain.errors import FieldIssue
from agentreg.store.evidence import EvidenceTx
from agentreg.store.governance import GovernanceTx
from agentreg.store.inventory import InventoryTx
from agentreg.store.leader import LeaderLock


@dataclass(frozen=True, slots=True)
class Mark:
    """Who did something to an object, when, and why (a block, a redaction)."""

    reason: str
    at: datetime
    by: str


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
    blocked: Mark | None = None


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
    state: str = "draft"
    state_changed_at: datetime | None = None
    state_before: str | None = None  # the state a deprecation left, restored by un-deprecating
    successor: str | None = None
    sunset: datetime | None = None
    blocked: Mark | None = None
    redacted: Mark | None = None


@dataclass(frozen=True, slots=True)
class VersionState:
    """A version's lifecycle status as one write: state and deprecation together."""

    state: str
    changed_at: datetime
    before: str | None = None
    successor: str | None = None
    sunset: datetime | None = None


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
    state: str = "draft"


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
    """One change, as the service records it; the store chains it (seq, prev_hash, hash) on commit."""

    tenant_id: str
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, object]
    request_id: str | None = None
    client_ip: str | None = None
    reason: str | None = None
    before: str | None = None
    after: str | None = None


def chained(event: AuditEvent, seq: int) -> ChainedEvent:
    """The event as the hash chain covers it (details as they read back from storage)."""
    return ChainedEvent(
        tenant=event.tenant_id,
        seq=seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        target=event.target,
        details=jsonable(event.details),
        request_id=event.request_id,
        client_ip=event.client_ip,
        reason=event.reason,
        before=event.before,
        after=event.after,
    )


@dataclass(frozen=True, slots=True)
class StoredAuditEvent:
    id: int
    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    tenant_id: str
    actor: str | None = None
    action: str | None = None
    target: str | None = None  # exact, or a prefix when it ends with "*"
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditHead:
    tenant_id: str
    seq: int
    hash: str
    anchor_seq: int
    anchor_hash: str


@dataclass(frozen=True, slots=True)
class TenantRow:
    id: str
    display_name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NamespaceRow:
    name: str
    tenant_id: str
    created_at: datetime
    grantees: tuple[str, ...]  # "*" means public

    @property
    def public(self) -> bool:
        return "*" in self.grantees


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: str
    tenant_id: str | None
    name: str
    secret_hash: str
    roles: tuple[str, ...]
    scope: dict[str, list[str]]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IdempotentResponse:
    request_hash: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    created_at: datetime


# Which tenants' objects a reader sees besides shared ones: its own tenants, or None for every tenant.
Readers = tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class ResourceQuery:
    readers: Readers
    kind: str
    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    after: tuple[str, str] | None = None  # (namespace, name) of the last item of the previous page
    limit: int = 50
    # A key's scope: only these namespaces / these (namespace, name) pairs, when given.
    only_namespaces: tuple[str, ...] | None = None
    only_names: tuple[tuple[str, str], ...] | None = None


class Tx(EvidenceTx, GovernanceTx, InventoryTx, Protocol):
    """One open transaction. Every method runs inside it; the caller commits by leaving ``begin()``."""

    async def lock(self, key: str) -> None:
        """Serialize writers on ``key`` until the transaction ends."""

    async def namespace_owner(self, namespace: str) -> str | None: ...
    async def ensure_tenant(self, tenant_id: str, display_name: str, now: datetime) -> None: ...
    async def claim_namespace(self, namespace: str, tenant_id: str, now: datetime) -> None: ...

    async def get_resource(self, tenant_id: str, kind: str, namespace: str, name: str) -> ResourceRow | None:
        """The resource owned by ``tenant_id`` (writers, who act in the owning tenant)."""

    async def find_resource(
        self, readers: Readers, kind: str, namespace: str, name: str
    ) -> ResourceRow | None:
        """The resource if ``readers`` may see it: one of their tenants owns it, or its namespace is shared."""

    async def get_tenant(self, tenant_id: str) -> TenantRow | None: ...
    async def insert_tenant(self, tenant_id: str, display_name: str, now: datetime) -> bool:
        """Create a tenant; False if it exists."""

    async def list_tenants(self, ids: Sequence[str] | None) -> list[TenantRow]: ...
    async def get_namespace(self, name: str) -> NamespaceRow | None: ...
    async def list_namespaces(self, readers: Readers) -> list[NamespaceRow]: ...
    async def set_grants(self, namespace: str, grantees: Sequence[str], now: datetime, by: str) -> None:
        """Replace who besides the owner may read ``namespace``."""

    async def insert_api_key(self, key: ApiKeyRow) -> None: ...
    async def api_key_by_hash(self, secret_hash: str) -> ApiKeyRow | None: ...
    async def get_api_key(self, key_id: str) -> ApiKeyRow | None: ...
    async def list_api_keys(self, tenant_id: str | None) -> list[ApiKeyRow]: ...
    async def revoke_api_key(self, key_id: str, now: datetime) -> None: ...
    async def touch_api_key(self, key_id: str, now: datetime) -> None: ...

    async def get_idempotent(self, principal: str, key: str) -> IdempotentResponse | None: ...
    async def put_idempotent(self, principal: str, key: str, response: IdempotentResponse) -> None: ...
    async def prune_idempotent(self, before: datetime) -> int: ...
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

    async def set_version_state(self, version_id: int, state: VersionState) -> None: ...
    async def set_version_block(self, version_id: int, mark: Mark | None) -> None: ...
    async def set_resource_block(self, resource_id: int, mark: Mark | None) -> None: ...
    async def redact_version(self, version_id: int, document: str, mark: Mark) -> None:
        """Replace the stored document (a leaked secret); digest, status and audit trail stay."""

    async def list_aliases(self, resource_id: int) -> list[AliasRow]: ...
    async def set_alias(
        self, resource_id: int, alias: str, version_id: int, now: datetime, actor: str
    ) -> None: ...
    async def delete_alias(self, resource_id: int, alias: str) -> bool: ...

    async def append_audit(self, event: AuditEvent) -> None:
        """Queue an event; it is chained and written last, just before the transaction commits."""

    async def list_audit(self, query: AuditQuery) -> list[StoredAuditEvent]: ...
    async def audit_head(self, tenant_id: str) -> AuditHead | None: ...
    async def audit_tenants(self) -> list[str]: ...
    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None: ...
    async def list_checkpoints(self, tenant_id: str) -> list[Checkpoint]: ...
    async def prune_audit(self, tenant_id: str, through_seq: int) -> int:
        """Delete events up to ``through_seq`` (retention), anchoring the chain at the last one deleted."""

    def mark_changed(self) -> None:
        """Note that catalog state changed, so caches everywhere are invalidated when this commits."""


class ChangeSignal(Protocol):
    """A cheap, synchronous token that differs after any committed catalog change (from any process)."""

    def token(self) -> int: ...


class Store(Protocol):
    dialect: str

    def begin(self, *, readers: Readers = None) -> AbstractAsyncContextManager[Tx]:
        """A read-write transaction, committed on success and rolled back on error.

        ``readers`` scopes it to those tenants in the database as well (row-level security on PostgreSQL):
        it may read what they see and write only their rows. None: no such scoping (system work).
        """

    def read(self, *, readers: Readers = None) -> AbstractAsyncContextManager[Tx]:
        """A read-only transaction (``readers`` as for ``begin``)."""

    @property
    def changes(self) -> ChangeSignal: ...

    def leader_lock(self, name: str) -> LeaderLock:
        """A lock only one process holds at a time, across every replica sharing the database."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def migration_revision(self) -> str | None: ...
