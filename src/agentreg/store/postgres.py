"""PostgreSQL: asyncpg, advisory transaction locks, ON CONFLICT upserts, LISTEN/NOTIFY cache invalidation."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from agentreg.store.interface import Readers
from agentreg.store.leader import AdvisoryLeader
from agentreg.store.sql import Runner, SqlStore, SqlTx

CHANNEL = "agentreg_changes"
# Migration 0003 gives this role row-level security policies; scoped transactions run as it.
TENANT_ROLE = "agentreg_tenant"
RECHECK_ROW_SECURITY_S = 60.0
log = logging.getLogger(__name__)

# Whether scoped transactions can switch to the tenant role: it exists, we may become it, and RLS is on.
ROW_SECURITY_INSTALLED = sa.text(
    "SELECT coalesce(bool_and(pg_has_role(current_user, r.oid, 'MEMBER')), false)"
    " AND coalesce((SELECT c.relrowsecurity FROM pg_class c WHERE c.oid = to_regclass('resources')), false)"
    " FROM pg_roles r WHERE r.rolname = :role"
)
# One round trip, first in the transaction; both settings end with it (is_local), so pooled connections
# go back as the application's role with no tenant list.
SCOPE = sa.text("SELECT set_config('role', :role, true), set_config('agentreg.tenants', :tenants, true)")


def tenant_list(readers: tuple[str, ...]) -> str:
    """The ``agentreg.tenants`` setting: comma-separated (tenant ids never hold a comma or are "*")."""
    for tenant in readers:
        if "," in tenant or tenant == "*":
            raise ValueError(f"not a tenant id: {tenant!r}")
    return ",".join(readers)


class AsyncRunner:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        return await self.conn.execute(statement, params)


class NotifySignal:
    """Counts change notifications from every replica (and this process's own commits).

    While the listener is disconnected the token changes on every call, so nothing cached is trusted.
    """

    def __init__(self, instance: str) -> None:
        self.count = 0
        self.listening = False
        self.instance = instance
        self._unique = itertools.count(start=1 << 62)

    def token(self) -> int:
        return self.count if self.listening else next(self._unique)

    def bump(self, *_args: Any) -> None:
        self.count += 1

    def notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        # Our own commits already bumped the count when they committed.
        if payload != self.instance:
            self.count += 1


class PostgresStore(SqlStore):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        self._dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._signal = NotifySignal(os.urandom(8).hex())
        self._listener: asyncpg.Connection | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.row_security: bool | None = None  # learned on the first scoped transaction
        self._recheck_at = 0.0

    @property
    def changes(self) -> NotifySignal:
        return self._signal

    async def _scope(self, conn: AsyncConnection, readers: Readers) -> None:
        """Run the rest of the transaction as the tenant role, seeing what ``readers`` may see (RLS)."""
        if readers is None:
            return
        tenants = tenant_list(readers)
        if not self.row_security and time.monotonic() >= self._recheck_at:
            await self._check_row_security(conn)
        if self.row_security:
            await conn.execute(SCOPE, {"role": TENANT_ROLE, "tenants": tenants})

    async def _check_row_security(self, conn: AsyncConnection) -> None:
        """Learn whether migration 0003 installed RLS; if not, ask again a minute later (it may run meanwhile)."""
        installed = bool(await conn.scalar(ROW_SECURITY_INSTALLED, {"role": TENANT_ROLE}))
        if not installed and self.row_security is None:
            log.warning(
                "row-level security is not installed (role %s, its membership or its policies are missing,"
                " see migration 0003): tenant scoping relies on the SQL filters alone",
                TENANT_ROLE,
            )
        self.row_security = installed
        self._recheck_at = time.monotonic() + RECHECK_ROW_SECURITY_S

    @asynccontextmanager
    async def begin(self, *, readers: Readers = None) -> AsyncIterator[SqlTx]:
        async with self.engine.connect() as conn:
            async with conn.begin():
                await self._scope(conn, readers)
                tx = SqlTx(AsyncRunner(conn), self)
                yield tx
                await tx.flush_audit()
                if tx.changed:
                    # Delivered to every listener only when this transaction commits.
                    await conn.execute(
                        sa.text("SELECT pg_notify(:channel, :instance)"),
                        {"channel": CHANNEL, "instance": self._signal.instance},
                    )
            if tx.changed:
                self._signal.bump()  # our own next read must not wait for the notification's round trip

    @asynccontextmanager
    async def read(self, *, readers: Readers = None) -> AsyncIterator[SqlTx]:
        async with self.engine.connect() as conn, conn.begin():
            await self._scope(conn, readers)
            yield SqlTx(AsyncRunner(conn), self)

    async def start(self) -> None:
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keep_listening())

    async def _keep_listening(self) -> None:
        delay = 0.1
        while True:
            try:
                lost = asyncio.Event()
                conn = await asyncpg.connect(self._dsn)
                conn.add_termination_listener(lambda _conn, event=lost: event.set())
                await conn.add_listener(CHANNEL, self._signal.notified)
                self._listener = conn
                self._signal.listening = True
                self._signal.bump()  # anything may have changed while we were not listening
                delay = 0.1
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be restarting; keep trying
                log.warning("change listener disconnected: %s", exc)
            self._signal.listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
            self._keeper = None
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        await self.engine.dispose()

    def leader_lock(self, name: str) -> AdvisoryLeader:
        return AdvisoryLeader(self._dsn, name)

    async def lock(self, run: Runner, key: str) -> None:
        await run.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})

    def dialect_insert(self, table: sa.Table) -> Any:
        return pg_insert(table)
