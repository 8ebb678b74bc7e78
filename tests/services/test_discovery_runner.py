"""The discovery runner on a real store: the sources file, the manifests (GitOps) source end to end, sync
requests, failing sources, and leader hand-over between two processes' stores on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentreg.domain.errors import Invalid
from agentreg.domain.inventory import LinkState
from agentreg.domain.principals import ANONYMOUS
from agentreg.domain.sources import SourceConfig, parse_source
from agentreg.services import discovery
from agentreg.services.fetcher import Fetcher
from agentreg.services.publish import publish
from agentreg.sources.base import Sink
from agentreg.store.factory import create_store
from agentreg.store.interface import AuditQuery
from agentreg.store.inventory import DeploymentQuery, DeploymentRow, SourceRow
from agentreg.store.sql import SqlStore
from tests import factories


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within} s: {check}")
        await asyncio.sleep(0.05)


async def all_rows(store: SqlStore) -> list[DeploymentRow]:
    async with store.read() as tx:
        return await tx.list_deployments(DeploymentQuery(readers=None, limit=1000))


async def source_row(store: SqlStore, name: str) -> SourceRow | None:
    async with store.read() as tx:
        return await tx.get_source(name)


@pytest.fixture
async def running(store: SqlStore) -> AsyncIterator[Callable[..., discovery.Discovery]]:
    tasks: list[asyncio.Task[None]] = []

    def start(**kwargs: Any) -> discovery.Discovery:
        runner = discovery.Discovery(store, Fetcher(), poll_s=0.05, **kwargs)
        tasks.append(asyncio.create_task(runner.run()))
        return runner

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def write(directory: Path, name: str, *documents: dict[str, Any]) -> None:
    (directory / name).parent.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(yaml.safe_dump_all(documents))


def manifests(path: Path, name: str = "catalog") -> SourceConfig:
    return parse_source({"name": name, "type": "manifests", "path": str(path), "interval": "50ms"})


def test_the_sources_file_resolves_paths_next_to_it_and_names_bad_fields(tmp_path: Path) -> None:
    good = tmp_path / "sources.yaml"
    good.write_text(
        yaml.safe_dump(
            {
                "sources": [
                    {
                        "name": "prod-eu",
                        "type": "kubernetes",
                        "kubeconfig": "kube/config",
                        "environment": "prod",
                    },
                    {"name": "catalog", "type": "manifests", "path": "./catalog"},
                ]
            }
        )
    )
    configs = discovery.read_sources_file(good)
    assert configs[0].kubeconfig == str(tmp_path / "kube/config") and configs[0].cluster == "prod-eu"
    assert configs[1].path == str(tmp_path / "catalog")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"sources": [{"name": "X", "type": "kubernetes"}, {"name": "a", "type": "ftp"}]})
    )
    with pytest.raises(Invalid) as caught:
        discovery.read_sources_file(bad)
    fields = {d.field for d in caught.value.details}
    assert {"/sources/0/name", "/sources/0/kubeconfig", "/sources/1/type"} <= fields


async def test_loading_the_file_adds_changes_and_removes_file_managed_sources(
    store: SqlStore, tmp_path: Path
) -> None:
    a, b = manifests(tmp_path / "a", "a"), manifests(tmp_path / "b", "b")
    await discovery.load_file(store, [a, b])
    await discovery.load_file(store, [a, b])  # unchanged: no new events
    await discovery.load_file(store, [manifests(tmp_path / "c", "a")])
    async with store.read() as tx:
        names = [s.name for s in await tx.list_sources(None)]
        events = await tx.list_audit(AuditQuery(tenant_id="default", target="source/*"))
    assert names == ["a"]
    assert [(e.event.action, e.event.target) for e in events] == [
        ("source.put", "source/a"),
        ("source.put", "source/b"),
        ("source.delete", "source/b"),
        ("source.put", "source/a"),
    ]


async def test_a_manifest_directory_is_published_and_reconciled_on_change(
    store: SqlStore, tmp_path: Path, running: Callable[..., discovery.Discovery]
) -> None:
    root = tmp_path / "catalog"
    write(root, "mcp.yaml", factories.mcp_server("github", "1.0.0"))
    write(root, "agents/bot.yaml", factories.agent("bot", "1.0.0"), factories.agent("bot", "1.1.0"))
    await discovery.load_file(store, [manifests(root)])
    running()
    found = await eventually(lambda: _rows_when(store, 3))
    assert {r.link.state for r in found} == {LinkState.LINKED}
    assert {r.link.ref for r in found} == {
        "mcp-server/com.acme/github@1.0.0",
        "agent/com.acme/bot@1.0.0",
        "agent/com.acme/bot@1.1.0",
    }
    async with store.read() as tx:
        resource = await tx.find_resource(None, "agent", "com.acme", "bot")
        assert resource is not None
        assert {v.origin for v in await tx.list_versions(resource.id)} == {"source:catalog"}
    # A file removed: its versions stay published (immutable), its rows become orphans.
    (root / "agents/bot.yaml").unlink()
    await eventually(lambda: _orphans(store, 2))
    source = await eventually(lambda: _counted(store, "catalog", "orphaned", 2))
    assert source.counts["total"] == 3 and source.state == "ready"


async def test_a_manifest_never_publishes_into_a_resource_someone_else_owns(
    store: SqlStore, tmp_path: Path, running: Callable[..., discovery.Discovery]
) -> None:
    await publish(store, ANONYMOUS, factories.agent("bot", "1.0.0"))
    root = tmp_path / "catalog"
    write(root, "bot.yaml", factories.agent("bot", "2.0.0"))
    write(root, "broken.yaml", {"kind": "Agent", "metadata": {"name": "x"}})
    await discovery.load_file(store, [manifests(root)])
    running()
    found = await eventually(lambda: _rows_when(store, 1))
    assert found[0].link.state is LinkState.DRIFT
    source = await eventually(lambda: _with_details(store, "catalog"))
    assert source.details["publish"] == {"agent/com.acme/bot": "owned by published"}
    assert "broken.yaml#0" in source.details["files"]
    assert source.state == "degraded" and "could not be read" in (source.last_error or "")


class FailingSource:
    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.runs = 0
        self.resyncs = 0

    def resync(self) -> None:
        self.resyncs += 1

    async def run(self, sink: Sink) -> None:
        self.runs += 1
        if self.runs == 1:
            raise ConnectionError("the API server is unreachable")
        sink.status(state="ready", clear_error=True)
        await asyncio.Event().wait()


async def test_a_failing_source_is_restarted_and_sync_requests_reach_it(
    store: SqlStore,
    tmp_path: Path,
    running: Callable[..., discovery.Discovery],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(discovery, "MAX_BACKOFF_S", 0.1)
    made: list[FailingSource] = []

    def build(config: SourceConfig, _fetcher: Fetcher) -> FailingSource:
        made.append(FailingSource(config))
        return made[-1]

    await discovery.load_file(store, [manifests(tmp_path, "flaky")])
    runner = running(build=build)
    failed = await eventually(lambda: _state(store, "flaky", "failed"), 5)
    assert "unreachable" in (failed.last_error or "")
    ready = await eventually(lambda: _state(store, "flaky", "ready"), 10)
    assert ready.last_error is None and made[0].runs == 2
    async with store.begin() as tx:
        await tx.request_sync("flaky", ready.updated_at)
    await eventually(lambda: _true(made[0].resyncs == 1))
    assert runner.leading


async def test_only_one_of_two_replicas_leads_and_the_other_takes_over(pg_url: str, tmp_path: Path) -> None:
    """Two stores on one PostgreSQL database stand for two replicas; closing the leader's lock connection
    stands for the leader dying."""
    one, two = create_store(pg_url), create_store(pg_url)
    await one.start()
    await two.start()
    first = discovery.Discovery(one, Fetcher(), build=lambda c, _f: FailingSource(c), poll_s=0.05)
    second = discovery.Discovery(two, Fetcher(), build=lambda c, _f: FailingSource(c), poll_s=0.05)
    tasks = [asyncio.create_task(first.run())]
    try:
        await eventually(lambda: _true(first.leading))
        tasks.append(asyncio.create_task(second.run()))
        await asyncio.sleep(0.5)
        assert first.leading and not second.leading
        tasks[0].cancel()  # the leader stops: its lock is released with its connection
        await asyncio.gather(tasks[0], return_exceptions=True)
        await eventually(lambda: _true(second.leading))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await one.close()
        await two.close()


async def test_a_dead_leader_connection_hands_over(pg_url: str) -> None:
    one, two = create_store(pg_url), create_store(pg_url)
    lock_a, lock_b = one.leader_lock("handover-test"), two.leader_lock("handover-test")
    try:
        assert await lock_a.try_acquire()
        assert not await lock_b.try_acquire()
        conn = lock_a._conn  # type: ignore[attr-defined]
        assert conn is not None
        conn.terminate()  # the leader's process dies: the server drops its session and its lock
        assert not await lock_a.holding()
        assert await lock_b.try_acquire()
        assert not await lock_a.try_acquire()
    finally:
        await lock_a.release()
        await lock_b.release()
        await one.close()
        await two.close()


async def _rows_when(store: SqlStore, count: int) -> list[DeploymentRow] | None:
    found = await all_rows(store)
    return found if len(found) == count else None


async def _orphans(store: SqlStore, count: int) -> bool:
    return sum(r.orphaned_at is not None for r in await all_rows(store)) == count


async def _with_details(store: SqlStore, name: str) -> SourceRow | None:
    row = await source_row(store, name)
    return row if row is not None and "publish" in row.details and "files" in row.details else None


async def _state(store: SqlStore, name: str, state: str) -> SourceRow | None:
    row = await source_row(store, name)
    return row if row is not None and row.state == state else None


async def _counted(store: SqlStore, name: str, count: str, value: int) -> SourceRow | None:
    row = await source_row(store, name)
    return row if row is not None and row.counts.get(count) == value else None


async def _true(value: bool) -> bool:
    return value
