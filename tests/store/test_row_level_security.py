"""Row-level security on PostgreSQL (migration 0003): the database scopes a transaction opened with readers.

These statements deliberately leave out the tenant filters the store's own SQL has: what they see is what
the policies allow. PostgreSQL only (SQLite has no RLS); under CI=true an unreachable server fails the run.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import make_url

from agentreg.store import migrate
from agentreg.store.interface import AliasRow, AuditEvent, NewVersion, RefRow
from agentreg.store.postgres import PostgresStore, tenant_list
from agentreg.store.sql import SqlStore, SqlTx


@pytest.fixture
def backend() -> str:
    """Overrides the conftest's both-backends parameter: the ``store`` fixture here is PostgreSQL."""
    return "postgresql"


NOW = datetime(2026, 1, 1, tzinfo=UTC)
# namespace -> (owner, grantees)
NAMESPACES = {
    "a-ns": ("a", ()),
    "b-ns": ("b", ()),
    "b-pub": ("b", ("*",)),
    "b-for-a": ("b", ("a",)),
    "b-for-c": ("b", ("c",)),
}
VISIBLE_TO_A = {"a-ns", "b-pub", "b-for-a"}


def _version(resource_id: int, refs: tuple[RefRow, ...] = (), version: str = "1.0.0") -> NewVersion:
    return NewVersion(
        resource_id=resource_id,
        version=version,
        semver_key=version,
        digest="sha256:" + "0" * 64,
        document="{}",
        title="t",
        description="d",
        protocol=None,
        warnings=(),
        origin="published",
        published_at=NOW,
        published_by="tester",
        refs=refs,
    )


@pytest.fixture
async def seeded(store: SqlStore) -> PostgresStore:
    """Tenants a, b, c; one agent per namespace with a version, a ref, an alias and a label; audit events."""
    assert isinstance(store, PostgresStore)
    async with store.begin() as tx:
        for tenant in ("a", "b", "c"):
            await tx.ensure_tenant(tenant, tenant, NOW)
        for namespace, (owner, grantees) in NAMESPACES.items():
            await tx.claim_namespace(namespace, owner, NOW)
            if grantees:
                await tx.set_grants(namespace, grantees, NOW, "tester")
            resource = await tx.insert_resource(owner, "agent", namespace, "bot", NOW)
            ref = RefRow("/spec/model", "model", namespace, "llm", "1.0.0")
            version = await tx.insert_version(_version(resource.id, (ref,)))
            await tx.set_alias(resource.id, "stable", version.id, NOW, "tester")
            await tx.update_resource(resource.id, now=NOW, labels={"ns": namespace})
            await tx.append_audit(AuditEvent(owner, NOW, "tester", "version.publish", namespace, {}))
    return store


async def _namespaces(tx: SqlTx, sql: str) -> set[str]:
    return set((await tx.run.execute(sa.text(sql))).scalars())


async def _all_views(tx: SqlTx) -> dict[str, set[str]]:
    """Which namespaces' rows each table shows, read with no tenant filter at all."""
    via_resource = "JOIN resources r ON r.id = x.resource_id"
    return {
        "resources": await _namespaces(tx, "SELECT namespace FROM resources"),
        "versions": await _namespaces(tx, f"SELECT r.namespace FROM versions x {via_resource}"),
        "aliases": await _namespaces(tx, f"SELECT r.namespace FROM aliases x {via_resource}"),
        "labels": await _namespaces(tx, f"SELECT r.namespace FROM resource_labels x {via_resource}"),
        "refs": await _namespaces(tx, "SELECT namespace FROM version_refs"),
        "audit": await _namespaces(tx, "SELECT target FROM audit_events"),
    }


async def _current_user(tx: SqlTx) -> str:
    return str((await tx.run.execute(sa.text("SELECT current_user"))).scalar())


async def test_a_scoped_read_sees_only_its_tenants_rows_and_shared_namespaces(seeded: PostgresStore) -> None:
    async with seeded.read(readers=("a",)) as tx:
        assert await _current_user(tx) == "agentreg_tenant"
        views = await _all_views(tx)
        heads = set((await tx.run.execute(sa.text("SELECT tenant_id FROM audit_heads"))).scalars())
        grants = set((await tx.run.execute(sa.text("SELECT namespace FROM namespace_grants"))).scalars())
        namespaces = await _namespaces(tx, "SELECT name FROM namespaces")
    assert seeded.row_security is True
    for table in ("resources", "versions", "aliases", "labels", "refs"):
        assert views[table] == VISIBLE_TO_A, table
    assert views["audit"] == {"a-ns"}  # audit events are the owner's alone, shared or not
    assert heads == {"a"}
    assert grants == {"b-pub", "b-for-a"}  # not b's grant to c
    assert namespaces == set(NAMESPACES)  # one global registry: claims must see every owner


async def test_the_store_methods_agree_with_the_policies(seeded: PostgresStore) -> None:
    async with seeded.read(readers=("a",)) as tx:
        assert await tx.find_resource(None, "agent", "b-ns", "bot") is None  # SQL unscoped, RLS still
        shared = await tx.find_resource(None, "agent", "b-pub", "bot")
        assert shared is not None
        assert [v.version for v in await tx.list_versions(shared.id)] == ["1.0.0"]
        assert [a.alias for a in await tx.list_aliases(shared.id)] == ["stable"]


async def test_several_readers_and_none(seeded: PostgresStore) -> None:
    async with seeded.read(readers=("a", "c")) as tx:
        assert (await _all_views(tx))["resources"] == {*VISIBLE_TO_A, "b-for-c"}
    async with seeded.read(readers=()) as tx:  # a principal in no tenant: public namespaces only
        assert (await _all_views(tx))["resources"] == {"b-pub"}


async def test_unscoped_transactions_see_everything(seeded: PostgresStore) -> None:
    for opened in (seeded.read(), seeded.begin(), seeded.read(readers=None)):
        async with opened as tx:
            assert await _current_user(tx) != "agentreg_tenant"
            views = await _all_views(tx)
        assert all(seen == set(NAMESPACES) for seen in views.values()), views


async def test_the_scope_ends_with_its_transaction(seeded: PostgresStore) -> None:
    """Pooled connections go back unscoped, whether the scoped transaction committed or failed."""
    for _ in range(3):
        async with seeded.begin(readers=("a",)) as tx:
            await tx.run.execute(sa.text("SELECT 1"))
        with pytest.raises(RuntimeError):
            async with seeded.read(readers=("a",)) as tx:
                raise RuntimeError
    for _ in range(12):  # more than the pool holds
        async with seeded.read() as tx:
            setting = (
                await tx.run.execute(sa.text("SELECT current_setting('agentreg.tenants', true)"))
            ).scalar()
            assert setting in (None, "")
            assert await _current_user(tx) != "agentreg_tenant"
            assert len((await _all_views(tx))["resources"]) == len(NAMESPACES)


async def test_the_tenant_role_without_a_tenant_list_sees_only_public_rows(seeded: PostgresStore) -> None:
    async with seeded.read() as tx:
        await tx.run.execute(sa.text("SET LOCAL ROLE agentreg_tenant"))
        views = await _all_views(tx)
    assert views.pop("audit") == set()
    assert all(seen == {"b-pub"} for seen in views.values()), views


async def test_inserting_a_resource_for_another_tenant_is_refused(seeded: PostgresStore) -> None:
    async with seeded.begin(readers=("a",)) as tx:
        await tx.insert_resource("a", "agent", "a-ns", "mine", NOW)  # its own tenant: allowed
    with pytest.raises(sa.exc.DBAPIError, match="row-level security"):
        async with seeded.begin(readers=("a",)) as tx:
            await tx.insert_resource("b", "agent", "b-ns", "planted", NOW)
    with pytest.raises(sa.exc.DBAPIError, match="row-level security"):
        async with seeded.begin(readers=("a",)) as tx:  # nor into a namespace shared with it
            await tx.insert_resource("b", "agent", "b-for-a", "planted", NOW)
    async with seeded.read() as tx:
        names = await _namespaces(tx, "SELECT namespace || '/' || name FROM resources")
    assert "a-ns/mine" in names
    assert not {n for n in names if n.endswith("/planted")}


async def test_a_granted_namespace_is_readable_but_not_writable(seeded: PostgresStore) -> None:
    async with seeded.read() as tx:
        shared = await tx.find_resource(None, "agent", "b-pub", "bot")
        assert shared is not None
        [version] = await tx.list_versions(shared.id)
    refused = sa.exc.DBAPIError
    async with seeded.begin(readers=("a",)) as tx:
        assert await tx.find_resource(("a",), "agent", "b-pub", "bot") == shared
        # UPDATE and DELETE only find their own tenants' rows: nothing changes, nothing fails.
        updated = await tx.run.execute(
            sa.text("UPDATE resources SET title = 'pwned' WHERE id = :id"), {"id": shared.id}
        )
        deleted = await tx.run.execute(
            sa.text("DELETE FROM aliases WHERE resource_id = :id"), {"id": shared.id}
        )
        assert (updated.rowcount, deleted.rowcount) == (0, 0)
        assert await tx.delete_alias(shared.id, "stable") is False
    for write in (
        lambda tx: tx.insert_version(_version(shared.id, version="2.0.0")),
        lambda tx: tx.set_alias(shared.id, "canary", version.id, NOW, "a-admin"),
        lambda tx: tx.run.execute(
            sa.text("INSERT INTO resource_labels VALUES (:id, 'k', 'v')"), {"id": shared.id}
        ),
        lambda tx: tx.set_grants("b-pub", ["a"], NOW, "a-admin"),
        lambda tx: tx.append_audit(AuditEvent("b", NOW, "a-admin", "forged", "b-pub", {})),
    ):
        with pytest.raises(refused, match="row-level security"):
            async with seeded.begin(readers=("a",)) as tx:
                await write(tx)
    async with seeded.read() as tx:
        after = await tx.find_resource(None, "agent", "b-pub", "bot")
        assert after == shared
        assert await tx.list_aliases(shared.id) == [
            AliasRow(shared.id, "stable", version.id, "1.0.0", NOW, "tester")
        ]
        assert len(await tx.list_versions(shared.id)) == 1
        assert (await tx.get_namespace("b-pub")).grantees == ("*",)  # type: ignore[union-attr]


async def test_a_scoped_writer_works_in_its_own_tenant(seeded: PostgresStore) -> None:
    """What a tenant's writes touch (labels, versions, refs, aliases, audit chain) all pass the policies."""
    async with seeded.begin(readers=("a",)) as tx:
        resource = await tx.get_resource("a", "agent", "a-ns", "bot")
        assert resource is not None
        ref = RefRow("/spec/x", "agent", "b-pub", "bot", "1.0.0")
        new = await tx.insert_version(_version(resource.id, (ref,), version="2.0.0"))
        await tx.update_resource(
            resource.id, now=NOW, labels={"tier": "1"}, latest=("2.0.0", "T", "D"), added_version=True
        )
        await tx.set_alias(resource.id, "stable", new.id, NOW, "a-admin")
        await tx.set_grants("a-ns", ["*"], NOW, "a-admin")
        await tx.append_audit(AuditEvent("a", NOW, "a-admin", "alias.set", "a-ns", {}))
    async with seeded.read(readers=("c",)) as tx:  # now public, so c reads it
        seen = await tx.find_resource(None, "agent", "a-ns", "bot")
        assert seen is not None and seen.latest_version == "2.0.0" and seen.labels == {"tier": "1"}
        assert [a.version for a in await tx.list_aliases(seen.id)] == ["2.0.0"]


def test_tenant_lists_refuse_what_is_not_a_tenant_id() -> None:
    assert tenant_list(("a", "b-2")) == "a,b-2"
    for bad in (("a,b",), ("*",)):
        with pytest.raises(ValueError):
            tenant_list(bad)


async def _recreate(base_url: str, name: str, *, drop_only: bool = False) -> None:
    url = make_url(base_url)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def test_the_migration_downgrades_and_upgrades_again(pg_url: str) -> None:
    name = f"{make_url(pg_url).database}_rls"
    await _recreate(pg_url, name)
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    policies = "SELECT count(*) FROM pg_policies WHERE schemaname = current_schema()"
    secured = (
        "SELECT count(*) FROM pg_class WHERE relrowsecurity AND relnamespace = current_schema()::regnamespace"
    )
    try:
        found = []
        for target in ("head", "0002", "head"):
            if target == "head":
                await migrate.upgrade(url)
            else:
                await asyncio.to_thread(command.downgrade, migrate.alembic_config(url), target)
            store = PostgresStore(url)
            try:
                # Without the policies (at 0002) a scoped transaction still works, scoped by SQL alone.
                async with store.read(readers=("a",)) as tx:
                    counts = [(await tx.run.execute(sa.text(q))).scalar() for q in (policies, secured)]
                    found.append((*counts, await _current_user(tx) == "agentreg_tenant", store.row_security))
            finally:
                await store.close()
        assert found == [(72, 21, True, True), (0, 0, False, False), (72, 21, True, True)]
    finally:
        await _recreate(pg_url, name, drop_only=True)


async def test_scoped_transactions_never_touch_idempotency_keys_or_make_foreign_tenants(
    seeded: PostgresStore,
) -> None:
    with pytest.raises(sa.exc.DBAPIError, match="permission denied"):
        async with seeded.read(readers=("a",)) as tx:
            await tx.run.execute(sa.text("SELECT count(*) FROM idempotency_keys"))
    async with seeded.begin(readers=("a",)) as tx:
        await tx.ensure_tenant("a", "a", NOW)  # its own: allowed (a no-op here)
    with pytest.raises(sa.exc.DBAPIError, match="row-level security"):
        async with seeded.begin(readers=("a",)) as tx:
            await tx.ensure_tenant("intruder", "intruder", NOW)
