"""Store behaviour on SQLite and PostgreSQL: rollback, uniqueness, filters, pagination, change signals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from agentreg.store.interface import NewVersion, ResourceQuery
from agentreg.store.sql import SqlStore, SqlTx

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _resource(tx: SqlTx, name: str = "bot", kind: str = "agent", namespace: str = "acme") -> int:
    await tx.ensure_tenant("default", "default", NOW)
    await tx.claim_namespace(namespace, "default", NOW)
    row = await tx.insert_resource("default", kind, namespace, name, NOW)
    return row.id


def _version(
    resource_id: int, version: str, semver_key: str | None, digest: str = "sha256:" + "0" * 64
) -> NewVersion:
    return NewVersion(
        resource_id=resource_id,
        version=version,
        semver_key=semver_key,
        digest=digest,
        document="{}",
        title="t",
        description="d",
        protocol=None,
        warnings=(),
        origin="published",
        published_at=NOW,
        published_by="tester",
    )


async def test_an_error_rolls_back_everything_the_transaction_wrote(store: SqlStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.begin() as tx:
            await _resource(tx)
            raise RuntimeError("boom")
    async with store.read() as tx:
        assert await tx.get_resource("default", "agent", "acme", "bot") is None
        assert await tx.namespace_owner("acme") is None


async def test_versions_differing_only_in_build_metadata_collide(store: SqlStore) -> None:
    async with store.begin() as tx:
        rid = await _resource(tx)
        await tx.insert_version(_version(rid, "1.0.0+a", "1.0.0"))
    with pytest.raises(sa.exc.IntegrityError):
        async with store.begin() as tx:
            await tx.insert_version(_version(rid, "1.0.0+b", "1.0.0"))
    async with store.read() as tx:
        found = await tx.find_version(rid, "1.0.0+b", "1.0.0")
    assert found is not None and found.version == "1.0.0+a"


async def test_non_semver_versions_do_not_collide_on_the_semver_key(store: SqlStore) -> None:
    async with store.begin() as tx:
        rid = await _resource(tx, kind="mcp-server")
        await tx.insert_version(_version(rid, "2025.01", None))
        await tx.insert_version(_version(rid, "2025.02", None))
        assert [v.version for v in await tx.list_versions(rid)] == ["2025.01", "2025.02"]


async def test_label_and_text_filters_run_in_sql(store: SqlStore) -> None:
    async with store.begin() as tx:
        a = await _resource(tx, "alpha")
        b = await _resource(tx, "beta")
        await tx.update_resource(
            a, now=NOW, labels={"team": "x", "tier": "1"}, latest=("1.0.0", "Alpha", "Files Jira tickets")
        )
        await tx.update_resource(b, now=NOW, labels={"team": "y"})
    async with store.read() as tx:
        query = ResourceQuery(readers=("default",), kind="agent", labels=(("team", "x"), ("tier", "1")))
        assert [r.name for r in await tx.list_resources(query)] == ["alpha"]
        assert [
            r.name for r in await tx.list_resources(ResourceQuery(("default",), "agent", text="JIRA"))
        ] == ["alpha"]
        assert [r.name for r in await tx.list_resources(ResourceQuery(("default",), "agent", text="%"))] == []
        assert await tx.list_resources(ResourceQuery(("other-tenant",), "agent")) == []


async def test_keyset_pagination_is_stable(store: SqlStore) -> None:
    async with store.begin() as tx:
        for name in ["e", "a", "d", "b", "c"]:
            await _resource(tx, name)
    seen: list[str] = []
    after = None
    async with store.read() as tx:
        while True:
            page = await tx.list_resources(ResourceQuery(("default",), "agent", after=after, limit=2))
            if not page:
                break
            seen.extend(r.name for r in page)
            after = (page[-1].namespace, page[-1].name)
    assert seen == ["a", "b", "c", "d", "e"]


async def test_audit_events_are_written_in_the_same_transaction(store: SqlStore) -> None:
    from agentreg.store.interface import AuditEvent, AuditQuery

    with pytest.raises(RuntimeError):
        async with store.begin() as tx:
            await tx.append_audit(AuditEvent("default", NOW, "me", "x.y", "t", {"k": 1}))
            raise RuntimeError
    async with store.begin() as tx:
        await tx.append_audit(AuditEvent("default", NOW, "me", "x.z", "t", {"k": 2}))
    async with store.read() as tx:
        assert [e.event.action for e in await tx.list_audit(AuditQuery("default", limit=10))] == ["x.z"]


async def test_change_signal_moves_after_a_committed_change_only(store: SqlStore) -> None:
    signal = store.changes
    for _ in range(50):  # the PostgreSQL listener connects in the background
        if signal.token() == signal.token():
            break
        await asyncio.sleep(0.05)
    before = signal.token()
    async with store.read() as tx:
        await tx.list_resources(ResourceQuery(("default",), "agent"))
    assert signal.token() == before
    async with store.begin() as tx:
        await _resource(tx)
    assert signal.token() != before


async def test_change_signal_sees_commits_from_another_process_connection(
    store: SqlStore, database_url: str
) -> None:
    """A second store object stands in for another replica or process sharing the database."""
    from agentreg.store.factory import create_store

    signal = store.changes
    for _ in range(50):
        if signal.token() == signal.token():
            break
        await asyncio.sleep(0.05)
    before = signal.token()
    other = create_store(database_url)
    try:
        async with other.begin() as tx:
            await _resource(tx, "from-elsewhere")
    finally:
        await other.close()
    for _ in range(100):  # NOTIFY is asynchronous; SQLite's data_version is immediate
        if signal.token() != before:
            break
        await asyncio.sleep(0.01)
    assert signal.token() != before
