"""The Kubernetes source: list + watch every mapped kind of one cluster, and report to the reconciler.

One session (a client, discovery, one list/watch loop per kind and namespace) runs until it fails or a resync
is asked for; then a new one starts (after a backoff, on failure). Within a session each loop lists (in pages),
hands the reconciler a snapshot of its kind, then watches from the list's resourceVersion with bookmarks;
``410 Gone`` lists again, a dropped stream watches again from the last resourceVersion after a jittered
exponential backoff (capped at 30 s). Watch events are batched (200 ms or 500 events) into one
``Sink.changed`` call. A kind the cluster does not serve is reported in the source's status details.

The source keeps the last observation of every object: a namespace's re-list is reported as the snapshot of
the whole kind (a per-namespace snapshot would orphan the other namespaces' objects), and a Service change
re-maps the annotated workloads of its namespace (their endpoint is the Service selecting their pods).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from agentreg.domain.inventory import ObjectKey, Observation
from agentreg.domain.sources import SourceConfig
from agentreg.sources.base import Sink
from agentreg.sources.kubernetes.client import Gone, KubeClient, KubeError
from agentreg.sources.kubernetes.dump import DumpSource
from agentreg.sources.kubernetes.kinds import SERVICES, KindSpec, Services, selected, service_view

Connect = Callable[[SourceConfig], Awaitable[KubeClient]]
_NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, ValueError)


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential with jitter: half to all of ``base * 2**attempt``, at most ``cap``."""
    return float(min(cap, base * (2**attempt)) * random.uniform(0.5, 1.0))


async def discover(client: KubeClient, kinds: tuple[KindSpec, ...]) -> dict[KindSpec, str | None]:
    """The version of each kind the cluster serves (the first of the kind's preferred ones), or None."""
    groups = (await client.get("/apis")).get("groups") or []
    served = {g.get("name"): {v.get("version") for v in g.get("versions") or []} for g in groups}
    resources: dict[str, set[str]] = {}
    found: dict[KindSpec, str | None] = {}
    for spec in kinds:
        found[spec] = None
        for version in spec.versions:
            if version not in served.get(spec.group, set()):
                continue
            group_version = f"{spec.group}/{version}"
            if group_version not in resources:
                try:
                    listing = await client.get(f"/apis/{group_version}")
                except KubeError as exc:
                    if exc.code != 404:
                        raise
                    listing = {}
                resources[group_version] = {
                    r.get("kind") for r in listing.get("resources") or [] if "/" not in str(r.get("name"))
                }
            if spec.kind in resources[group_version]:
                found[spec] = version
                break
    return found


@dataclass
class _Loop:
    """One list/watch loop's bookkeeping."""

    spec: KindSpec
    version: str
    namespace: str | None
    listed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.spec.name}{where}"


class KubernetesSource:
    """Discovers one cluster (``config.kubeconfig``/``context``, ``inCluster``, or a dump at ``path``)."""

    def __init__(
        self,
        config: SourceConfig,
        *,
        connect: Connect = KubeClient.connect,
        batch_window_s: float = 0.2,
        batch_max: int = 500,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        watch_timeout_s: int = 300,
    ) -> None:
        self.config = config
        self._connect = connect
        self._batch_window = batch_window_s
        self._batch_max = batch_max
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._watch_timeout = watch_timeout_s
        self._kinds = selected(config.kinds)
        self._state: dict[tuple[str, str], dict[ObjectKey, Observation]] = {}
        # The scopes (namespaces, or None for all) of each kind listed so far: a kind's snapshot waits for all.
        self._listed: dict[tuple[str, str], set[str | None]] = {}
        self._workloads: dict[ObjectKey, tuple[KindSpec, Mapping[str, Any]]] = {}
        self._services: dict[str, dict[str, Mapping[str, Any]]] = {}
        self._kind_status: dict[str, str] = {}
        self._failing: dict[str, str] = {}
        self._resync = asyncio.Event()
        self._dump: DumpSource | None = None
        self._sink: Sink | None = None
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def resync(self) -> None:
        if self._dump is not None:
            self._dump.resync()
        self._resync.set()

    async def run(self, sink: Sink) -> None:
        if self.config.path:
            self._dump = DumpSource(self.config)
            await self._dump.run(sink)
            return
        self._sink = sink
        periodic = asyncio.create_task(self._periodic()) if self.config.resync_s > 0 else None
        attempt = 0
        try:
            while True:
                self._resync.clear()
                try:
                    await self._session(sink)
                    attempt = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # any failure: report, back off, start a new session
                    sink.status(error=f"{type(exc).__name__}: {exc}"[:500])
                    await self._sleep_or_resync(backoff(attempt, *self._backoff))
                    attempt += 1
        finally:
            if periodic is not None:
                periodic.cancel()

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.config.resync_s)
            self.resync()

    async def _sleep_or_resync(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._resync.wait(), seconds)

    async def _session(self, sink: Sink) -> None:
        """One connection's discovery and watches; returns when a resync is asked for."""
        client = await self._connect(self.config)
        tasks: list[asyncio.Task[Any]] = []
        try:
            versions = await discover(client, self._kinds)
            self._kind_status = {
                spec.name: f"watching {version}" if version else "not installed"
                for spec, version in versions.items()
            }
            sink.status(state="syncing", details={"kinds": dict(self._kind_status)})
            self._queue = asyncio.Queue()
            tasks.append(asyncio.create_task(self._consume(sink)))
            resync = asyncio.create_task(self._resync.wait())
            tasks.append(resync)
            scopes: list[str | None] = list(self.config.namespaces) or [None]
            served = [(spec, version) for spec, version in versions.items() if version is not None]
            if any(spec.uses_services for spec, _ in served):
                # Services first, so workloads get their endpoint in their first snapshot
                service_loops = [_Loop(SERVICES, "v1", ns) for ns in scopes]
                tasks.extend(asyncio.create_task(self._loop(client, loop)) for loop in service_loops)
                listed = asyncio.gather(*(loop.listed.wait() for loop in service_loops))
                await asyncio.wait([listed, *tasks], return_when=asyncio.FIRST_COMPLETED)
                listed.cancel()
                self._raise_finished(tasks, resync)
                if resync.done():
                    return
            loops = [_Loop(spec, version, ns) for spec, version in served for ns in scopes]
            tasks.extend(asyncio.create_task(self._loop(client, loop)) for loop in loops)
            tasks.append(asyncio.create_task(self._announce_ready(loops)))
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            self._raise_finished(tasks, resync)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()

    @staticmethod
    def _raise_finished(tasks: list[asyncio.Task[Any]], resync: asyncio.Task[Any]) -> None:
        for task in tasks:
            if task.done() and task is not resync and not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]

    async def _announce_ready(self, loops: list[_Loop]) -> None:
        await asyncio.gather(*(loop.listed.wait() for loop in loops))
        await self._queue.put(("ready",))
        await asyncio.Event().wait()  # keep the session's task set stable

    async def _loop(self, client: KubeClient, loop: _Loop) -> None:
        """List, then watch from the list's resourceVersion; re-list on 410; back off on errors."""
        base, cap = self._backoff
        path = loop.spec.path(loop.version, loop.namespace)
        selector = None if loop.spec is SERVICES else self.config.label_selector
        version: str | None = None
        attempt = 0
        while True:
            try:
                if version is None:
                    items, version = await client.list(path, selector)
                    await self._replace(loop, items)
                    loop.listed.set()
                    self._recovered(loop)
                async for event in client.watch(path, version, selector, self._watch_timeout):
                    version = await self._event(loop, event) or version
                    attempt = 0
                self._recovered(loop)
            except Gone:
                version = None  # compacted past what we saw: list again, no backoff
            except KubeError as exc:
                if exc.code == 404 and loop.spec is not SERVICES:
                    self._set_kind_status(loop.spec.name, "not installed")
                self._failed(loop, f"{loop.name}: {exc}")
                version = None if exc.code in (403, 404) else version
                await asyncio.sleep(backoff(attempt, base, cap))
                attempt += 1
            except _NETWORK_ERRORS as exc:
                self._failed(loop, f"{loop.name}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(backoff(attempt, base, cap))
                attempt += 1

    # --- state ---------------------------------------------------------------------------------------

    def _services_view(self) -> Services:
        return Services(self._services)

    async def _replace(self, loop: _Loop, items: list[dict[str, Any]]) -> None:
        """A (re-)list of one kind in one scope: replace what we knew there, then snapshot the kind."""
        spec, namespace = loop.spec, loop.namespace
        if spec is SERVICES:
            if namespace is None:
                self._services.clear()
            else:
                self._services.pop(namespace, None)
            for item in items:
                meta = item.get("metadata") or {}
                self._services.setdefault(str(meta.get("namespace", "")), {})[str(meta.get("name"))] = (
                    service_view(item)
                )
            await self._remap(None if namespace is None else {namespace})
            return
        state = self._state.setdefault((spec.group, spec.kind), {})
        for key in [k for k in state if namespace is None or k.namespace == namespace]:
            del state[key]
            self._workloads.pop(key, None)
        services = self._services_view()
        for item in items:
            found = spec.map(item, self.config.cluster, services)
            if found is not None:
                state[found.key] = found
                if spec.uses_services:
                    self._workloads[found.key] = (spec, item)
        self._set_kind_status(spec.name, f"watching {loop.version}")
        self._listed.setdefault((spec.group, spec.kind), set()).add(namespace)
        await self._queue.put(("snapshot", spec))

    async def _event(self, loop: _Loop, event: Mapping[str, Any]) -> str | None:
        kind = event.get("type")
        raw = event.get("object") or {}
        if kind == "ERROR":
            code = int(raw.get("code") or 500)
            message = str(raw.get("message") or raw)
            raise Gone(code, message) if code == 410 else KubeError(code, message)
        meta = raw.get("metadata") or {}
        version = meta.get("resourceVersion")
        if kind == "BOOKMARK":
            return str(version) if version else None
        spec = loop.spec
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name", ""))
        if spec is SERVICES:
            if kind == "DELETED":
                self._services.get(namespace, {}).pop(name, None)
            else:
                self._services.setdefault(namespace, {})[name] = service_view(raw)
            await self._remap({namespace})
            return str(version) if version else None
        raw.setdefault("apiVersion", f"{spec.group}/{loop.version}")
        state = self._state.setdefault((spec.group, spec.kind), {})
        key = ObjectKey(self.config.cluster, spec.group, spec.kind, namespace, name)
        found = None if kind == "DELETED" else spec.map(raw, self.config.cluster, self._services_view())
        if found is None:
            if key in state:  # deleted, or no longer annotated agentreg.dev/kind
                del state[key]
                self._workloads.pop(key, None)
                await self._queue.put(("delete", key))
        else:
            state[key] = found
            if spec.uses_services:
                self._workloads[key] = (spec, raw)
            await self._queue.put(("upsert", found))
        return str(version) if version else None

    async def _remap(self, namespaces: set[str] | None) -> None:
        """Re-map annotated workloads whose endpoint may have changed with their namespace's Services."""
        services = self._services_view()
        for key, (spec, raw) in list(self._workloads.items()):
            if namespaces is not None and key.namespace not in namespaces:
                continue
            state = self._state.get((spec.group, spec.kind), {})
            before = state.get(key)
            found = spec.map(raw, self.config.cluster, services)
            if found is not None and (before is None or before.endpoint != found.endpoint):
                state[key] = found
                await self._queue.put(("upsert", found))

    # --- status --------------------------------------------------------------------------------------

    def _set_kind_status(self, name: str, text: str) -> None:
        if self._kind_status.get(name) != text:
            self._kind_status[name] = text
            if self._sink is not None:
                self._sink.status(details={"kinds": dict(self._kind_status)})

    def _failed(self, loop: _Loop, message: str) -> None:
        self._failing[loop.name] = message
        if self._sink is not None:
            self._sink.status(error=message[:500])

    def _recovered(self, loop: _Loop) -> None:
        if self._failing.pop(loop.name, None) is not None and not self._failing and self._sink is not None:
            self._sink.status(clear_error=True)

    # --- the one consumer: keeps snapshots and changes in order, batches changes ----------------------

    async def _consume(self, sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self._queue.get()
            if item[0] in ("upsert", "delete"):
                pending: dict[ObjectKey, Observation | None] = {}
                self._add(pending, item)
                deadline = loop.time() + self._batch_window
                held: tuple[Any, ...] | None = None
                while len(pending) < self._batch_max and held is None:
                    if self._queue.empty():
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        await asyncio.sleep(min(0.02, remaining))
                        continue
                    following = self._queue.get_nowait()
                    if following[0] in ("upsert", "delete"):
                        self._add(pending, following)
                    else:
                        held = following
                upserts = [o for o in pending.values() if o is not None]
                deletes = [k for k, o in pending.items() if o is None]
                await sink.changed(upserts, deletes)
                if held is None:
                    continue
                item = held
            await self._control(sink, item)

    @staticmethod
    def _add(pending: dict[ObjectKey, Observation | None], item: tuple[Any, ...]) -> None:
        if item[0] == "upsert":
            pending[item[1].key] = item[1]
        else:
            pending[item[1]] = None

    async def _control(self, sink: Sink, item: tuple[Any, ...]) -> None:
        if item[0] == "snapshot":
            spec: KindSpec = item[1]
            scopes: set[str | None] = set(self.config.namespaces) or {None}
            if not scopes <= self._listed.get((spec.group, spec.kind), set()):
                return  # a namespace not listed yet would look empty: its rows would become orphans
            observations = list(self._state.get((spec.group, spec.kind), {}).values())
            await sink.snapshot(observations, group=spec.group, kind=spec.kind)
        elif item[0] == "ready":
            counts = {f"{group}/{kind}": len(objects) for (group, kind), objects in self._state.items()}
            sink.status(state="ready", clear_error=not self._failing, details={"objects": counts})
