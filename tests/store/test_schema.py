"""The Alembic chain creates exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from agentreg.store.migrate import head_revision
from agentreg.store.postgres import PostgresStore
from agentreg.store.sql import SqlStore
from agentreg.store.sqlite import SQLiteStore
from agentreg.store.tables import metadata


async def test_migrations_match_the_declared_tables(store: SqlStore) -> None:
    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, metadata))

    if isinstance(store, PostgresStore):
        async with store.engine.connect() as conn:
            differences = await conn.run_sync(diff)
    else:
        assert isinstance(store, SQLiteStore)
        with store.engine.connect() as sync_conn:
            differences = diff(sync_conn)
    assert differences == []


async def test_database_is_at_the_head_revision(store: SqlStore) -> None:
    assert await store.migration_revision() == head_revision()
