"""SQLite: WAL with synchronous=FULL, one writer at a time (BEGIN IMMEDIATE), and a data_version change probe."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from agentreg.store.sql import SqlStore, SqlTx

BUSY_TIMEOUT_MS = 10_000


class DataVersionSignal:
    """``PRAGMA data_version`` on a private connection changes whenever any other connection commits.

    That makes cached answers exact across processes sharing the file, at a cost of a few microseconds.
    """

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._cursor = self._conn.cursor()

    def token(self) -> int:
        row = self._cursor.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def close(self) -> None:
        self._conn.close()


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (the driver's implicit transactions are unreliable).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _on_begin(conn: sa.Connection) -> None:
    # Writers take the write lock up front so two writers never deadlock upgrading a read lock.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("agentreg_write") else "BEGIN")


class SQLiteStore(SqlStore):
    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        engine = create_async_engine(url, pool_size=8, max_overflow=8)
        event.listen(engine.sync_engine, "connect", _on_connect)
        event.listen(engine.sync_engine, "begin", _on_begin)
        super().__init__(engine)
        database = engine.url.database
        if not database or database == ":memory:":
            raise ValueError("agentreg needs a SQLite file, not an in-memory database")
        self.path = database
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        self._signal: DataVersionSignal | None = None
        # One writer per process waits here instead of spinning in SQLite's busy handler.
        self._write_lock = asyncio.Lock()

    @property
    def changes(self) -> DataVersionSignal:
        if self._signal is None:
            self._signal = DataVersionSignal(self.path)
        return self._signal

    async def close(self) -> None:
        if self._signal is not None:
            self._signal.close()
            self._signal = None
        await super().close()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[SqlTx]:
        async with self._write_lock, super().begin() as tx:
            yield tx

    async def _prepare_write(self, conn: AsyncConnection) -> AsyncConnection:
        return await conn.execution_options(agentreg_write=True)

    async def insert_ignore(self, conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> None:
        await conn.execute(sqlite_insert(table).values(values).on_conflict_do_nothing())
