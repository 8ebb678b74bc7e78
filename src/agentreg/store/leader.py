"""Leader election for work one replica must do alone (discovery sources).

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own: when the leader
dies or its connection drops, the server releases the lock and another replica's next ``try_acquire`` wins.
On SQLite there is one process, which always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import asyncpg

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 5.0


class LeaderLock(Protocol):
    async def try_acquire(self) -> bool:
        """Take the lock if it is free (or already ours); never waits for another holder."""

    async def holding(self) -> bool:
        """Whether we still hold it (False once our connection is gone)."""

    async def release(self) -> None: ...


class AlwaysLeader:
    """The single process of an embedded database leads."""

    async def try_acquire(self) -> bool:
        return True

    async def holding(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class AdvisoryLeader:
    """A PostgreSQL session advisory lock on a dedicated connection."""

    def __init__(self, dsn: str, name: str) -> None:
        self.dsn = dsn
        self.name = name
        self._conn: asyncpg.Connection | None = None

    async def try_acquire(self) -> bool:
        if await self.holding():
            return True
        await self._drop()
        try:
            conn = await asyncpg.connect(self.dsn, timeout=CHECK_TIMEOUT_S)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("leader election for %s: cannot connect: %s", self.name, exc)
            return False
        won = False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                won = bool(
                    await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", self.name)
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("leader election for %s failed: %s", self.name, exc)
        finally:
            if not won:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
        if not won:
            return False
        self._conn = conn
        return True

    async def holding(self) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():
            return False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        conn = self._conn
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", self.name)
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
