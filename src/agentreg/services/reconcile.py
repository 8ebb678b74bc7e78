"""The reconciler: applies what a source observed to the inventory, and keeps rows linked to the catalog.

A source never touches the store. It hands the reconciler either a full snapshot of what it sees (of one
object kind, or of everything) or incremental changes; the reconciler applies them in one transaction:

- rows are keyed by (cluster, group, kind, namespace, name) within the source's tenant; a source writes only
  rows it owns (its *bucket*), so a key another source owns is reported as a conflict, never overwritten;
- an unchanged observation (same digest, same link) costs no write;
- an object a source no longer emits (missing from a snapshot, or deleted) is marked *orphan*, and removed
  once it has been orphaned for the source's grace period (``sweep``);
- each row is linked to the published version it runs (``agentreg.dev/ref``, else the runtime's claim),
  flagged *drift* when that version was never published or its environment's policy does not admit it, and
  *unregistered* when nothing links a catalog-kind object at all.

A batch that adds, orphans, removes or relinks rows writes one audit event (``discovery.sync``); changes of
observed status and health alone are telemetry, like heartbeats, and are not audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from agentreg.domain.errors import AgentRegError
from agentreg.domain.health import Health
from agentreg.domain.inventory import (
    Claim,
    Link,
    LinkState,
    ObjectKey,
    Observation,
    observed_digest,
    parse_declared_ref,
    trim,
)
from agentreg.domain.kinds import Kind
from agentreg.domain.names import parse_ref, parse_selector
from agentreg.domain.policy import Phase
from agentreg.domain.principals import Principal, Role, member
from agentreg.domain.sources import SourceConfig
from agentreg.domain.standing import Standing, standing
from agentreg.services import audit, clock
from agentreg.services.catalog import select_version
from agentreg.services.selection import Reading, decide, facts
from agentreg.store.interface import ResourceQuery, ResourceRow, Store, Tx, VersionRow
from agentreg.store.inventory import BucketEntry, LinkUpdate, NewDeployment


def source_principal(config: SourceConfig) -> Principal:
    """Who a source acts as: a service in its tenant (it publishes only through the manifests source)."""
    return member(f"source:{config.name}", config.tenant, Role.OPERATOR, Role.DEVELOPER)


@dataclass
class SyncResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    orphaned: int = 0
    removed: int = 0
    relinked: int = 0
    conflicts: list[dict[str, str]] = field(default_factory=list)
    gone: list[ObjectKey] = field(default_factory=list)  # keys orphaned by this batch

    @property
    def audited(self) -> bool:
        return bool(self.added or self.orphaned or self.removed or self.relinked)

    def counts(self) -> dict[str, int]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "orphaned": self.orphaned,
            "removed": self.removed,
            "relinked": self.relinked,
            "conflicts": len(self.conflicts),
        }


# What enrichment (card sync, tool introspection) adds to a row's ``extra``: a new observation of the object
# replaces what the source saw, not what was learned about it since.
ENRICHMENTS = ("card", "conditions", "identity", "tools")


async def _keep_enrichments(tx: Tx, rows: list[NewDeployment]) -> list[NewDeployment]:
    if not rows:
        return rows
    stored = await tx.extras([row.id for row in rows])
    kept: list[NewDeployment] = []
    for row in rows:
        learned = {k: v for k, v in stored.get(row.id, {}).items() if k in ENRICHMENTS}
        extra = row.observed.get("extra") or {}
        missing = {k: v for k, v in learned.items() if k not in extra}
        if missing:
            row = replace(row, observed={**row.observed, "extra": {**extra, **missing}})
        kept.append(row)
    return kept


def _claim_text(claim: Claim | None) -> str | None:
    if claim is None:
        return None
    return f"{claim.name}@{claim.version}" if claim.version else claim.name


class Linker:
    """Links rows to published versions within one transaction, looking each (resource, version) up once."""

    def __init__(self, tx: Tx, tenant: str, now: datetime) -> None:
        self.tx = tx
        self.tenant = tenant
        self.reading = Reading(now=now)
        self._resources: dict[tuple[str, str, str], ResourceRow | None] = {}
        self._versions: dict[tuple[int, str], VersionRow | None] = {}
        self._by_name: dict[tuple[str, str], list[ResourceRow]] = {}
        self._admitted: dict[tuple[int, str | None], str | None] = {}

    async def link(
        self, declared: str | None, claim: str | None, kind_text: str | None, environment: str | None
    ) -> Link:
        kind = Kind(kind_text) if kind_text else None
        if declared:
            return await self._declared(declared, kind, environment)
        if claim:
            return await self._claimed(claim, kind, environment)
        if kind is not None:
            return Link(LinkState.UNREGISTERED, reason="no agentreg.dev/ref annotation and no claim to match")
        return Link(LinkState.NONE)

    async def _declared(self, text: str, kind: Kind | None, environment: str | None) -> Link:
        try:
            ref = parse_declared_ref(text, kind)
        except AgentRegError as exc:
            return Link(LinkState.DRIFT, via="annotation", reason=f"malformed ref: {exc.message}")
        ref_kind = ref.kind or kind
        if ref_kind is None:
            return Link(LinkState.DRIFT, via="annotation", reason=f"{text!r} does not say which kind it is")
        resource = await self._resource(ref_kind, ref.namespace, ref.name)
        return await self._version(
            resource, ref_kind, ref.full_name, ref.selector.text, "annotation", environment
        )

    async def _claimed(self, text: str, kind: Kind | None, environment: str | None) -> Link:
        name, _, version = text.partition("@")
        if kind is None:
            return Link(LinkState.NONE, reason=f"claims {text!r}")
        if "/" in name:
            try:
                ref = parse_ref(name, default_kind=kind)
            except AgentRegError:
                return Link(
                    LinkState.UNREGISTERED, via="claim", reason=f"claims {text!r}, not a catalog name"
                )
            resource = await self._resource(kind, ref.namespace, ref.name)
        else:
            resource = await self._unique_by_name(kind, name)
        if resource is None:
            return Link(
                LinkState.UNREGISTERED, via="claim", reason=f"claims {text!r}, which is not in the catalog"
            )
        full = f"{resource.namespace}/{resource.name}"
        if not version:
            return Link(
                LinkState.LINKED, f"{kind.value}/{full}", "claim", "the runtime names no version", resource.id
            )
        return await self._version(resource, kind, full, version, "claim", environment)

    async def _version(
        self,
        resource: ResourceRow | None,
        kind: Kind,
        full: str,
        version_text: str,
        via: str,
        environment: str | None,
    ) -> Link:
        ref = f"{kind.value}/{full}@{version_text}"
        if resource is None:
            return Link(LinkState.DRIFT, ref, via, f"{kind.value} {full} was never published")
        key = (resource.id, version_text)
        if key not in self._versions:
            try:
                found: VersionRow | None = await select_version(
                    self.tx, resource, parse_selector(version_text)
                )
            except AgentRegError:
                found = None
            self._versions[key] = found
        version = self._versions[key]
        if version is None:
            return Link(LinkState.DRIFT, ref, via, f"version {version_text} was never published", resource.id)
        ref = f"{kind.value}/{full}@{version.version}"
        refusal = await self._refusal(resource, version, environment)
        if refusal is not None:
            return Link(LinkState.DRIFT, ref, via, refusal, resource.id, version.id)
        return Link(LinkState.LINKED, ref, via, "", resource.id, version.id)

    async def _refusal(
        self, resource: ResourceRow, version: VersionRow, environment: str | None
    ) -> str | None:
        """Why ``version`` may not run in ``environment`` now (its standing, then the policy); None if it may."""
        key = (version.id, environment)
        if key not in self._admitted:
            status = standing(facts(resource, version), self.reading.now)
            if status is not Standing.ACTIVE:
                why: str | None = f"version {version.version} is {status.value}"
            else:
                policy = await self.reading.policy(self.tx, resource.tenant_id)
                decision = await decide(
                    self.tx,
                    policy,
                    resource,
                    version,
                    phase=Phase.RESOLVE,
                    now=self.reading.now,
                    environment=environment,
                )
                failed = [f"{r.id}: {r.message}" for r in decision.rules if r.result == "fail"]
                where = f"environment {environment!r}" if environment else "the tenant's policy"
                why = None if decision.allowed else f"not admitted in {where}: " + "; ".join(failed)
            self._admitted[key] = why
        return self._admitted[key]

    async def _resource(self, kind: Kind, namespace: str, name: str) -> ResourceRow | None:
        key = (kind.value, namespace, name)
        if key not in self._resources:
            self._resources[key] = await self.tx.find_resource((self.tenant,), kind.value, namespace, name)
        return self._resources[key]

    async def _unique_by_name(self, kind: Kind, name: str) -> ResourceRow | None:
        """The one resource of ``kind`` named ``name`` the tenant sees in any namespace (None if not exactly one)."""
        key = (kind.value, name)
        if key not in self._by_name:
            query = ResourceQuery(readers=(self.tenant,), kind=kind.value, text=name, limit=50)
            self._by_name[key] = [r for r in await self.tx.list_resources(query) if r.name == name]
        found = self._by_name[key]
        return found[0] if len(found) == 1 else None


class Reconciler:
    """Applies one source's observations; every call is one transaction."""

    def __init__(self, store: Store, config: SourceConfig) -> None:
        self.store = store
        self.config = config
        self.actor = source_principal(config)

    @property
    def tenant(self) -> str:
        return self.config.tenant

    async def snapshot(
        self, observations: Sequence[Observation], *, group: str | None = None, kind: str | None = None
    ) -> SyncResult:
        """Everything the source sees (of ``group``/``kind`` when given): rows it owns that are missing become
        orphans; orphans seen again are restored."""
        now = clock.now()
        result = SyncResult()
        async with self.store.begin(readers=(self.tenant,)) as tx:
            owned = {e.key: e for e in await tx.bucket(self.config.name, group, kind)}
            await self._upsert(tx, observations, owned, now, result)
            seen = {o.key for o in observations}
            missing = [e for k, e in owned.items() if k not in seen and e.orphaned_at is None]
            await tx.mark_orphaned([e.id for e in missing], now)
            result.orphaned = len(missing)
            result.gone = [e.key for e in missing]
            await self._audit(tx, result, now, "snapshot", group=group, kind=kind)
        return result

    async def changed(self, upserts: Sequence[Observation], deletes: Sequence[ObjectKey] = ()) -> SyncResult:
        """Incremental changes: objects added or modified, and objects gone (orphaned, removed after grace)."""
        now = clock.now()
        result = SyncResult()
        async with self.store.begin(readers=(self.tenant,)) as tx:
            keys = list({o.key for o in upserts} | set(deletes))
            owned = await tx.bucket_entries(self.config.name, keys)
            await self._upsert(tx, upserts, owned, now, result)
            gone = [k for k in deletes if k in owned and owned[k].orphaned_at is None]
            await tx.mark_orphaned([owned[k].id for k in gone], now)
            result.orphaned = len(gone)
            result.gone = gone
            await self._audit(tx, result, now, "watch")
        return result

    async def sweep(self) -> int:
        """Remove rows orphaned for longer than the grace period."""
        now = clock.now()
        cutoff = now - timedelta(seconds=self.config.orphan_grace_s)
        result = SyncResult()
        async with self.store.begin(readers=(self.tenant,)) as tx:
            expired = [
                e.id
                for e in await tx.bucket(self.config.name)
                if e.orphaned_at is not None and e.orphaned_at <= cutoff
            ]
            await tx.delete_deployments(expired)
            result.removed = len(expired)
            await self._audit(tx, result, now, "sweep")
        return result.removed

    async def relink(self) -> int:
        """Link this source's rows again (a version was published, blocked or retired, or the policy changed)."""
        now = clock.now()
        result = SyncResult()
        async with self.store.begin(readers=(self.tenant,)) as tx:
            linker = Linker(tx, self.tenant, now)
            updates: list[LinkUpdate] = []
            for entry in await tx.bucket(self.config.name):
                link = await linker.link(
                    entry.declared_ref, entry.claim, entry.catalog_kind, entry.environment
                )
                if link != entry.link:
                    updates.append(LinkUpdate(entry.id, link))
            await tx.set_links(updates)
            result.relinked = len(updates)
            await self._audit(tx, result, now, "relink")
        return result.relinked

    async def merge_extra(self, key: ObjectKey, extra: dict[str, Any], claim: Claim | None = None) -> bool:
        """Record an enrichment of one row (a fetched card, introspected tools); a claim relinks the row."""
        now = clock.now()
        async with self.store.begin(readers=(self.tenant,)) as tx:
            entry = (await tx.bucket_entries(self.config.name, [key])).get(key)
            if entry is None:
                return False
            await tx.merge_extra(entry.id, extra, entry.digest, now)
            new_claim = _claim_text(claim) if claim is not None else entry.claim
            if claim is not None and new_claim != entry.claim:
                linker = Linker(tx, self.tenant, now)
                link = await linker.link(entry.declared_ref, new_claim, entry.catalog_kind, entry.environment)
                await tx.set_claim(entry.id, new_claim, link)
                if (link.state, link.ref) != (entry.link.state, entry.link.ref):
                    result = SyncResult(relinked=1)
                    await self._audit(tx, result, now, "card")
        return True

    async def _upsert(
        self,
        tx: Tx,
        observations: Sequence[Observation],
        owned: dict[ObjectKey, BucketEntry],
        now: datetime,
        result: SyncResult,
    ) -> None:
        linker = Linker(tx, self.tenant, now)
        inserts: list[NewDeployment] = []
        updates: list[NewDeployment] = []
        for observation in observations:
            entry = owned.get(observation.key)
            row = await self._row(linker, observation, now, entry)
            if entry is None:
                inserts.append(row)
            elif entry.digest != row.digest or entry.link != row.link or entry.orphaned_at is not None:
                updates.append(row)
                if entry.link.state != row.link.state or entry.link.ref != row.link.ref:
                    result.relinked += 1
                if entry.orphaned_at is not None:
                    result.added += 1  # back from orphan
                else:
                    result.updated += 1
            else:
                result.unchanged += 1
        await tx.update_deployments(await _keep_enrichments(tx, updates))
        if inserts:
            inserted = await tx.insert_deployments(inserts)
            result.added += len(inserted)
            refused = [row.key for row in inserts if row.key not in inserted]
            if refused:
                owners = await tx.owners(self.tenant, refused)
                for key in refused:
                    owner = owners.get(key, "another source")
                    result.conflicts.append({"object": str(key), "owner": owner})

    async def _row(
        self, linker: Linker, observation: Observation, now: datetime, entry: BucketEntry | None
    ) -> NewDeployment:
        claim = _claim_text(observation.claim)
        if claim is None and entry is not None:
            claim = (
                entry.claim
            )  # learned by enrichment (a fetched card): kept until the source claims otherwise
        kind = observation.catalog_kind.value if observation.catalog_kind else None
        environment = self.config.environment
        link = await linker.link(observation.declared_ref, claim, kind, environment)
        observed = observation.to_json()
        digest = observed_digest(observed)  # of what was observed, before large fields are trimmed
        observed["spec"] = trim(observation.spec)
        observed["status"] = trim(observation.status)
        return NewDeployment(
            tenant_id=self.tenant,
            source=self.config.name,
            key=observation.key,
            api_version=observation.api_version,
            uid=observation.uid,
            environment=environment,
            catalog_kind=kind,
            title=observation.title,
            observed=observed,
            digest=digest,
            health=observation.health.value
            if isinstance(observation.health, Health)
            else str(observation.health),
            declared_ref=observation.declared_ref,
            claim=claim,
            link=link,
            now=now,
            id=entry.id if entry is not None else 0,
        )

    async def _audit(self, tx: Tx, result: SyncResult, now: datetime, how: str, **scope: Any) -> None:
        if not result.audited:
            return
        details: dict[str, object] = {k: v for k, v in result.counts().items() if v}
        details.update({k: v for k, v in scope.items() if v})
        if result.conflicts:
            details["conflictingObjects"] = result.conflicts[:20]
        await audit.record(
            tx,
            self.actor,
            "discovery.sync",
            f"source/{self.config.name}",
            now,
            tenant=self.tenant,
            mode=how,
            counts=details,
        )
