"""A process that dies mid-mutation leaves neither the change nor its audit event (both databases).

A change and its audit event are written in one transaction: the service writes the resource and version
rows and queues the event; the store chains and inserts the event and moves the tenant's chain head just
before COMMIT. Here a child process (``sys.executable -c``) publishes through the real service functions
against the real database and calls ``os._exit(1)`` inside the transaction, before COMMIT, at one of two
points:

* ``after-flush``: ``SqlTx.flush_audit`` has run, so the version, the chained event and the moved head are
  all written (the child counts them, inside its transaction, and prints the counts), and only COMMIT is
  left;
* ``before-audit``: the version row is written but ``audit.record`` has not queued the event yet.

No ``finally``, no ROLLBACK, no connection close: the database sees the process vanish. Afterwards the
parent finds neither the version nor the event, the chain head where it was, verification (against the
signed checkpoint taken before the crash) passing, and the next publish continuing the chain without a gap.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from agentreg.domain.principals import ANONYMOUS
from agentreg.services import auditlog
from agentreg.services.auditlog import AuditFiles, Checkpointer, load_signer
from agentreg.services.publish import publish
from agentreg.store import migrate
from agentreg.store.factory import create_store
from agentreg.store.interface import AuditQuery
from agentreg.store.sql import SqlStore
from tests import factories as f
from tests.conftest import _empty

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys

    import sqlalchemy as sa

    from agentreg.domain.principals import ANONYMOUS
    from agentreg.services import audit, publish
    from agentreg.store.factory import create_store
    from agentreg.store.sql import SqlTx

    url, point, document = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

    async def counts(tx):
        found = {}
        for table in ("versions", "audit_events"):
            found[table] = (await tx.run.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar()
        found["head"] = (await tx.run.execute(sa.text("SELECT max(seq) FROM audit_heads"))).scalar()
        return found

    async def die(tx):
        print(json.dumps({"point": point, "inside": await counts(tx)}), flush=True)
        os._exit(1)  # no rollback, no close: the process is simply gone

    if point == "after-flush":
        flush = SqlTx.flush_audit

        async def flush_then_die(self):
            await flush(self)
            await die(self)

        SqlTx.flush_audit = flush_then_die
    else:
        async def record_after_death(tx, *args, **kwargs):
            await die(tx)

        audit.record = record_after_death

    async def main():
        store = create_store(url)
        await store.start()
        await publish.publish(store, ANONYMOUS, document)
        print("committed", flush=True)  # never reached

    asyncio.run(main())
    """
)


@pytest.fixture(params=["sqlite", "postgresql"])
def crash_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database: a new SQLite file, or the worker's PostgreSQL database (emptied by the test)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
        migrate.upgrade_sync(url)
        return url
    return str(request.getfixturevalue("pg_url"))


async def _counts(store: SqlStore) -> tuple[int, int, int]:
    async with store.read() as tx:
        versions = (await tx.run.execute(sa.text("SELECT count(*) FROM versions"))).scalar()
        events = (await tx.run.execute(sa.text("SELECT count(*) FROM audit_events"))).scalar()
        head = await tx.audit_head("default")
    assert head is not None
    return int(versions or 0), int(events or 0), head.seq


@pytest.mark.parametrize("point", ["after-flush", "before-audit"])
async def test_a_crash_mid_mutation_leaves_neither_change_nor_event(
    crash_db: str, point: str, tmp_path: Path
) -> None:
    store = create_store(crash_db)
    await _empty(store)
    await store.start()
    try:
        files = AuditFiles(tmp_path / "audit")
        checkpointer = Checkpointer(store, load_signer(files, None), files)
        for n in range(3):
            await publish(store, ANONYMOUS, f.skill(f"before{n}"))
        [checkpoint] = await checkpointer.checkpoint()
        assert checkpoint.seq == 3
        before = await _counts(store)
        assert before == (3, 3, 3)

        doomed = f.skill("doomed", "9.9.9")
        child = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", CHILD, crash_db, point, json.dumps(doomed)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert child.returncode == 1, child.stderr
        assert "committed" not in child.stdout
        report = json.loads(child.stdout.strip().splitlines()[-1])
        # inside its transaction, the child had written the version (and, after the flush, event and head)
        inside = report["inside"]
        assert inside["versions"] == 4
        if point == "after-flush":
            assert (inside["audit_events"], inside["head"]) == (4, 4)
        else:
            assert (inside["audit_events"], inside["head"]) == (3, 3)

        assert await _counts(store) == before
        async with store.read() as tx:
            assert await tx.get_resource("default", "skill", f.NS, "doomed") is None
            targets = [e.event.target for e in await tx.list_audit(AuditQuery("default"))]
        assert not any("doomed" in t for t in targets)
        result = await auditlog.verify(store, "default", files)
        assert result.ok, result.problem
        assert (result.head_seq, result.checkpoints) == (3, 1)

        # the chain goes on from where it was: no gap where the lost event would have been
        again = await publish(store, ANONYMOUS, doomed)
        assert again.result == "created"
        assert await _counts(store) == (4, 4, 4)
        async with store.read() as tx:
            last = (await tx.list_audit(AuditQuery("default", after_seq=3)))[0]
        assert (last.seq, last.event.target) == (4, "skill/com.acme/doomed@9.9.9")
        assert (await auditlog.verify(store, "default", files)).ok
    finally:
        await store.close()
