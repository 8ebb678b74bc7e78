"""The discovery runner: one leader runs every configured source and keeps the inventory true.

- Sources come from the ``AGENTREG_SOURCES`` file (loaded into the ``sources`` table at start, managed by
  the file) and from the API (``POST /v1/sources``). The leader reads the table every ``poll`` seconds and
  starts, restarts (configuration changed) or stops a runner per source.
- With several replicas on PostgreSQL one leader runs the sources (a session advisory lock, released by the
  server when the leader's connection dies, so another replica takes over within ``poll`` seconds); on SQLite
  the single process leads.
- A runner runs its source until cancelled; a source that fails is restarted after a backoff, and the last
  good rows stay visible with the error on the source's status.
- The leader also takes sync requests (``POST /v1/sources/{name}/sync``), removes orphans past their grace
  period, and relinks rows when the catalog changes (a version published, blocked or retired, a policy
  changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from agentreg.domain.errors import AgentRegError, Invalid
from agentreg.domain.inventory import Claim, ObjectKey, Observation
from agentreg.domain.principals import DEFAULT_TENANT, Principal, Role, member
from agentreg.domain.sources import SourceConfig, SourceType, parse_source, parse_sources
from agentreg.services import audit, clock
from agentreg.services.fetcher import Fetcher
from agentreg.services.publish import ApplyInput, apply
from agentreg.services.reconcile import Reconciler, SyncResult
from agentreg.sources.base import Sink, Source
from agentreg.sources.manifests import document_of
from agentreg.store.interface import Store
from agentreg.store.inventory import SourceStatus, new_source

log = logging.getLogger(__name__)
LEADER_LOCK = "agentreg.discovery"
FILE_ACTOR: Principal = member("config:AGENTREG_SOURCES", DEFAULT_TENANT, Role.TENANT_ADMIN)
MAX_BACKOFF_S = 30.0


def origin_of(config: SourceConfig) -> str:
    """The ``origin`` of versions a (manifests) source publishes."""
    return f"source:{config.name}"


class Enricher(Protocol):
    """Work that follows observations (card fetches, tool introspection)."""

    def observe(self, config: SourceConfig, observations: Sequence[Observation]) -> None: ...
    def forget(self, config: SourceConfig, keys: Sequence[ObjectKey]) -> None: ...
    def stop_source(self, name: str) -> None: ...
    async def run(self, sink_for: Callable[[str], Sink | None]) -> None: ...


SourceFactory = Callable[[SourceConfig, Fetcher], Source]


def build_source(config: SourceConfig, fetcher: Fetcher) -> Source:
    """The source a configuration describes."""
    if config.type is SourceType.MANIFESTS:
        from agentreg.sources.manifests import ManifestSource

        return ManifestSource(config)
    if config.path is not None:
        from agentreg.sources.kubernetes.dump import DumpSource

        return DumpSource(config)
    from agentreg.sources.kubernetes.source import KubernetesSource

    return KubernetesSource(config)


# --- the file --------------------------------------------------------------------------------------------


def read_sources_file(path: Path) -> list[SourceConfig]:
    """The ``AGENTREG_SOURCES`` file; relative paths in it are relative to the file."""
    try:
        raw = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise Invalid.at("/", f"AGENTREG_SOURCES: cannot read {path}: {exc}") from None
    configs = parse_sources(raw)
    base = path.resolve().parent
    fixed: list[SourceConfig] = []
    for config in configs:
        raw_config = dict(config.raw)
        for key in ("kubeconfig", "path", "clientCert", "clientKey", "caFile"):
            value = raw_config.get(key)
            if isinstance(value, str) and not Path(value).is_absolute():
                raw_config[key] = str(base / value)
        anchors = raw_config.get("trustAnchors")
        if isinstance(anchors, list):
            raw_config["trustAnchors"] = [a if Path(a).is_absolute() else str(base / a) for a in anchors]
        fixed.append(parse_source(raw_config))
    return fixed


def demo_sources(examples: Path) -> list[SourceConfig]:
    """``serve --demo``: the cluster dump in ``docs/examples/cluster`` as one source (not under ``examples/``,
    which ``agentreg apply -f examples/`` reads as catalog documents)."""
    cluster = examples.parent / "docs" / "examples" / "cluster"
    if not cluster.is_dir():
        return []
    raw = {
        "name": "demo-cluster",
        "type": "kubernetes",
        "path": str(cluster.resolve()),
        "cluster": "demo",
        "environment": "dev",
        "cardDiscovery": False,
    }
    return [parse_source(raw)]


async def load_file(store: Store, configs: Sequence[SourceConfig]) -> None:
    """Make the file-managed sources in the table exactly ``configs`` (each change audited)."""
    now = clock.now()
    async with store.begin() as tx:
        await tx.lock("sources-file")  # replicas starting together load it one at a time
        wanted = {c.name: c for c in configs}
        for row in await tx.list_sources(None):
            if row.managed_by == "file" and row.name not in wanted:
                await tx.delete_source(row.name)
                await audit.record(
                    tx, FILE_ACTOR, "source.delete", f"source/{row.name}", now, tenant=row.tenant_id
                )
        for config in configs:
            existing = await tx.get_source(config.name)
            if existing is not None and existing.managed_by != "file":
                # Refusing to start would let anyone who can add a source by API stop the registry.
                log.error(
                    "AGENTREG_SOURCES: source %r is taken by an API-managed source; skipped", config.name
                )
                continue
            if config.tenant == DEFAULT_TENANT:
                await tx.ensure_tenant(DEFAULT_TENANT, "Default", now)
            elif await tx.get_tenant(config.tenant) is None:
                raise Invalid.at(
                    "/sources", f"source {config.name!r}: tenant {config.tenant!r} does not exist"
                )
            if (
                existing is not None
                and existing.config == config.to_json()
                and existing.tenant_id == config.tenant
            ):
                continue
            if existing is not None and existing.tenant_id != config.tenant:
                await tx.delete_source(config.name)  # its rows belong to the tenant it served until now
            await tx.put_source(new_source(config, "file", FILE_ACTOR.subject, now))
            await audit.record(
                tx,
                FILE_ACTOR,
                "source.put",
                f"source/{config.name}",
                now,
                tenant=config.tenant,
                type=config.type.value,
            )


# --- one source ------------------------------------------------------------------------------------------


class StoreSink:
    """Applies one source's reports through the reconciler, one at a time, and records its status."""

    def __init__(self, store: Store, config: SourceConfig, enrichers: Sequence[Enricher] = ()) -> None:
        self.store = store
        self.config = config
        self.reconciler = Reconciler(store, config)
        self.enrichers = enrichers
        self.lock = asyncio.Lock()  # one report (or housekeeping pass) at a time
        self._status: dict[str, Any] = {}
        self._details: dict[str, Any] = {}
        self._flushing: asyncio.Task[None] | None = None
        self.last_result: SyncResult | None = None

    async def snapshot(
        self, observations: Sequence[Observation], *, group: str | None = None, kind: str | None = None
    ) -> None:
        async with self.lock:
            if self.config.type is SourceType.MANIFESTS:
                await self._publish(observations)
            result = await self.reconciler.snapshot(observations, group=group, kind=kind)
            self._after(result, observations)
            self.status(last_sync=True)

    async def changed(self, upserts: Sequence[Observation], deletes: Sequence[ObjectKey] = ()) -> None:
        async with self.lock:
            result = await self.reconciler.changed(upserts, deletes)
            self._after(result, upserts)

    async def enrich(self, key: ObjectKey, extra: Mapping[str, Any], claim: Claim | None = None) -> None:
        async with self.lock:
            await self.reconciler.merge_extra(key, dict(extra), claim)

    def status(
        self,
        *,
        state: str | None = None,
        error: str | None = None,
        clear_error: bool = False,
        details: Mapping[str, Any] | None = None,
        last_sync: bool = False,
    ) -> None:
        if state is not None:
            self._status["state"] = state
        if error is not None:
            self._status["error"] = error
            self._status.pop("clear_error", None)
        elif clear_error:
            self._status["clear_error"] = True
            self._status.pop("error", None)
        if details:
            self._details.update(details)
            self._status["details"] = True
        if last_sync:
            self._status["last_sync"] = True
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self.flush())

    async def flush(self) -> None:
        await asyncio.sleep(0)  # gather the reports of this turn into one write
        while self._status:  # reports made while writing are written next
            pending, self._status = self._status, {}
            await self._write(pending)

    async def _write(self, pending: dict[str, Any]) -> None:
        now = clock.now()
        async with self.store.begin(readers=(self.config.tenant,)) as tx:
            counts = await tx.deployment_counts(self.config.name)
            if self.last_result is not None:
                counts.update({f"last.{k}": v for k, v in self.last_result.counts().items()})
            status = SourceStatus(
                state=pending.get("state"),
                last_sync_at=now if pending.get("last_sync") else None,
                error=pending.get("error"),
                clear_error=bool(pending.get("clear_error")),
                counts=counts,
                details=dict(self._details) if pending.get("details") or self.last_result else None,
            )
            await tx.set_source_status(self.config.name, status, now)

    def _after(self, result: SyncResult, observations: Sequence[Observation]) -> None:
        self.last_result = result
        if result.gone:
            for enricher in self.enrichers:
                enricher.forget(self.config, result.gone)
        if result.conflicts:
            self._details["conflicts"] = result.conflicts[:50]
        else:
            self._details.pop("conflicts", None)
        for enricher in self.enrichers:
            enricher.observe(self.config, observations)

    async def _publish(self, observations: Sequence[Observation]) -> None:
        """Publish the manifests' versions not published yet, as this source, into resources it owns."""
        origin = origin_of(self.config)
        # Whoever configured the source entrusted the directory with its tenant's catalog: like a tenant admin
        # applying it, the source claims the tenant's unclaimed namespaces it publishes into.
        actor = member(f"source:{self.config.name}", self.config.tenant, Role.TENANT_ADMIN)
        refused: dict[str, str] = {}
        inputs: list[ApplyInput] = []
        async with self.store.read(readers=(self.config.tenant,)) as tx:
            for index, observation in enumerate(observations):
                document = document_of(observation)
                kind = observation.catalog_kind
                if document is None or kind is None:
                    continue
                metadata = document.get("metadata") or {}
                namespace, name = str(metadata.get("namespace")), str(metadata.get("name"))
                resource = await tx.find_resource((self.config.tenant,), kind.value, namespace, name)
                if resource is not None:
                    versions = await tx.list_versions(resource.id)
                    if any(v.version == metadata.get("version") for v in versions):
                        continue
                    others = {v.origin for v in versions} - {origin}
                    if others:
                        refused[f"{kind.value}/{namespace}/{name}"] = f"owned by {sorted(others)[0]}"
                        continue
                inputs.append(ApplyInput(index, document))
        failures: dict[str, str] = dict(refused)
        if inputs:
            for result in await apply(self.store, actor, inputs, origin=origin):
                if result.error is not None:
                    failures[f"{result.kind}/{result.name}@{result.version}"] = result.error.message
        self._details["publish"] = failures


class Runner:
    """Runs one source, restarting it after a failure with exponential backoff."""

    def __init__(
        self, store: Store, config: SourceConfig, source: Source, enrichers: Sequence[Enricher]
    ) -> None:
        self.config = config
        self.source = source
        self.sink = StoreSink(store, config, enrichers)
        self.task: asyncio.Task[None] | None = None
        self.stored: tuple[Any, ...] = ()  # the table's (config, tenant, created at) it was started from

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"source:{self.config.name}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.sink.flush()

    async def _run(self) -> None:
        delay = 1.0
        while True:
            started = time.monotonic()
            try:
                self.sink.status(state="syncing")
                await self.source.run(self.sink)
                error = "the source stopped"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a source's failure must never take the runner down
                log.exception("source %s failed", self.config.name)
                error = f"{type(exc).__name__}: {exc}"
            self.sink.status(state="failed", error=error)
            if time.monotonic() - started > 60:
                delay = 1.0
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, MAX_BACKOFF_S)


# --- the leader ------------------------------------------------------------------------------------------


@dataclass
class Discovery:
    store: Store
    fetcher: Fetcher
    build: SourceFactory = build_source
    enrichers: Sequence[Enricher] = ()
    poll_s: float = 2.0
    sweep_s: float = 30.0
    relink_s: float = 5.0
    runners: dict[str, Runner] = field(default_factory=dict)
    leading: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """Look at the sources table now (a source was added, changed or asked to sync in this process)."""
        self._wake.set()

    async def run(self) -> None:
        lock = self.store.leader_lock(LEADER_LOCK)
        extra = [asyncio.create_task(e.run(self.sink_for)) for e in self.enrichers]
        try:
            while True:
                if await lock.try_acquire():
                    self.leading = True
                    log.info("discovery: this process leads")
                    try:
                        await self._lead(lock)
                    finally:
                        self.leading = False
                        await self._stop_all()
                await asyncio.sleep(self.poll_s)
        finally:
            for task in extra:
                task.cancel()
            await asyncio.gather(*extra, return_exceptions=True)
            with contextlib.suppress(Exception):
                await lock.release()

    def sink_for(self, name: str) -> Sink | None:
        runner = self.runners.get(name)
        return runner.sink if runner is not None else None

    async def _lead(self, lock: Any) -> None:
        last_sweep = last_relink = time.monotonic()
        token = self.store.changes.token()
        while await lock.holding():
            try:
                await self._sync_runners()
                async with self.store.begin() as tx:
                    requested = await tx.take_sync_requests()
                for name in requested:
                    if name in self.runners:
                        self.runners[name].source.resync()
                now = time.monotonic()
                if now - last_sweep >= self.sweep_s:
                    last_sweep = now
                    for runner in list(self.runners.values()):
                        await self._quietly(runner.sink.reconciler.sweep, runner)
                current = self.store.changes.token()
                if current != token and now - last_relink >= self.relink_s:
                    token, last_relink = current, now
                    for runner in list(self.runners.values()):
                        await self._quietly(runner.sink.reconciler.relink, runner)
            except Exception:  # a database hiccup must not end discovery: the next turn tries again
                log.exception("discovery: housekeeping failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()

    async def _quietly(self, work: Callable[[], Awaitable[object]], runner: Runner) -> None:
        """Housekeeping on one source's rows, serialized with what the source itself applies."""
        try:
            async with runner.sink.lock:
                await work()
        except AgentRegError as exc:
            runner.sink.status(error=exc.message)
        except Exception as exc:
            log.exception("source %s: housekeeping failed", runner.config.name)
            runner.sink.status(error=f"{type(exc).__name__}: {exc}")

    async def _sync_runners(self) -> None:
        async with self.store.read() as tx:
            rows = {row.name: row for row in await tx.list_sources(None)}
        for name in [n for n in self.runners if n not in rows]:
            await self._stop(name)
        for name, row in rows.items():
            runner = self.runners.get(name)
            if runner is not None and runner.stored == (row.config, row.tenant_id, row.created_at):
                continue
            if runner is not None:
                await self._stop(name)
            try:
                config = parse_source({**row.config, "name": name, "tenant": row.tenant_id})
                source = self.build(config, self.fetcher)
            except Exception as exc:
                log.warning("source %s cannot start: %s", name, exc)
                message = exc.message if isinstance(exc, AgentRegError) else f"{type(exc).__name__}: {exc}"
                async with self.store.begin() as tx:
                    status = SourceStatus(state="failed", error=message)
                    await tx.set_source_status(name, status, clock.now())
                continue
            runner = Runner(self.store, config, source, self.enrichers)
            runner.stored = (row.config, row.tenant_id, row.created_at)
            self.runners[name] = runner
            runner.start()

    async def _stop(self, name: str) -> None:
        runner = self.runners.pop(name)
        for enricher in self.enrichers:
            enricher.stop_source(name)
        await runner.stop()

    async def _stop_all(self) -> None:
        for name in list(self.runners):
            await self._stop(name)
