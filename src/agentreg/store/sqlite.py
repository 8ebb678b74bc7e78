"""SQLite: WAL with synchronous=FULL, statements run synchronously on the event loop.

Why synchronous: a statement against SQLite's page cache takes microseconds, while a hop to a worker
thread (aiosqlite) costs ~300 µs, which made a publish of six statements cost ~3 ms. A transaction here
never awaits real I/O between its statements, so it runs to its end without yielding; the event loop is
held for the statements and the commit's fsync (~0.4 ms), never for a lock wait:

- writers in this process queue on an ``asyncio.Lock``; ``BEGIN IMMEDIATE`` is tried with no busy
  timeout and, if another *process* holds the write lock, retried after an ``asyncio.sleep``;
- readers never wait for writers in WAL mode (a short busy timeout covers rare WAL recovery);
- WAL checkpoints run in a worker thread every half second while writers wait (``wal_autocheckpoint``
  is off for loop connections, so no commit stalls the loop on one), and on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

from agentreg.store.interface import Readers
from agentreg.store.leader import AlwaysLeader
from agentreg.store.sql import Runner, SqlStore, SqlTx

WRITE_LOCK_TIMEOUT_S = 10.0
READ_BUSY_TIMEOUT_MS = 100
CHECKPOINT_EVERY_S = 0.5
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
log = logging.getLogger(__name__)


class SyncRunner:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    async def execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        return self.conn.execute(statement, params)


class DataVersionSignal:
    """``PRAGMA data_version`` on a private connection changes whenever any other connection commits.

    That makes cached answers exact across processes sharing the file, at a cost of a few microseconds.
    """

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")
        self._cursor = self._conn.cursor()

    def token(self) -> int:
        row = self._cursor.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def close(self) -> None:
        self._conn.close()


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    cursor.close()


def sqlite_path(url: str) -> str:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("agentreg needs a SQLite file, not an in-memory database")
    return database


class SQLiteStore(SqlStore):
    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # AUTOCOMMIT: the driver issues no implicit BEGIN/COMMIT; this store issues them itself.
        self.engine = sa.create_engine(
            f"sqlite+pysqlite:///{self.path}", isolation_level="AUTOCOMMIT", pool_size=8, max_overflow=8
        )
        event.listen(self.engine, "connect", _on_connect)
        self._signal: DataVersionSignal | None = None
        self._write_lock = asyncio.Lock()
        self._checkpointer: asyncio.Task[None] | None = None
        self.commits = 0

    @property
    def changes(self) -> DataVersionSignal:
        if self._signal is None:
            self._signal = DataVersionSignal(self.path)
        return self._signal

    async def start(self) -> None:
        if self._checkpointer is None:
            self._checkpointer = asyncio.create_task(self._checkpoint_forever())

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
            self._checkpointer = None
        await asyncio.to_thread(self._checkpoint)
        if self._signal is not None:
            self._signal.close()
            self._signal = None
        self.engine.dispose()

    async def _checkpoint_forever(self) -> None:
        """Checkpoint what was committed since last time, holding our write lock.

        A checkpoint racing continuous writers never catches up, so the WAL would never restart and would
        grow without bound; with no writer of ours running it completes, and the next writer restarts the
        WAL from its beginning. Writers wait for it (a few ms every half second under full load).
        """
        checkpointed = 0
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            if self.commits == checkpointed:
                continue
            try:
                async with self._write_lock:
                    checkpointed = self.commits
                    await asyncio.to_thread(self._checkpoint)
            except sqlite3.Error as exc:  # a busy database only delays the next checkpoint
                log.warning("WAL checkpoint failed: %s", exc)

    def _checkpoint(self) -> None:
        with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            conn.execute("PRAGMA busy_timeout=1000")
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @asynccontextmanager
    async def begin(self, *, readers: Readers = None) -> AsyncIterator[SqlTx]:
        """``readers`` is accepted and ignored: SQLite has no row-level security, the SQL filters scope."""
        async with self._write_lock:
            with self.engine.connect() as conn:
                await self._begin_immediate(conn)
                tx = SqlTx(SyncRunner(conn), self)
                try:
                    yield tx
                    await tx.flush_audit()
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
                self.commits += 1

    async def _begin_immediate(self, conn: sa.Connection) -> None:
        deadline = time.monotonic() + WRITE_LOCK_TIMEOUT_S
        delay = 0.001
        conn.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            while True:
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    return
                except sa.exc.OperationalError as exc:
                    if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                        raise
                await asyncio.sleep(delay)  # another process is writing: wait without holding the loop
                delay = min(delay * 2, 0.05)
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")

    @asynccontextmanager
    async def read(self, *, readers: Readers = None) -> AsyncIterator[SqlTx]:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            try:
                yield SqlTx(SyncRunner(conn), self)
            finally:
                conn.exec_driver_sql("ROLLBACK")

    def leader_lock(self, name: str) -> AlwaysLeader:
        return AlwaysLeader()

    async def lock(self, run: Runner, key: str) -> None:
        """BEGIN IMMEDIATE already serializes every writer."""

    def dialect_insert(self, table: sa.Table) -> Any:
        return sqlite_insert(table)
