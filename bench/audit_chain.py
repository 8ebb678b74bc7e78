"""How fast are audited mutations, and how long does verifying the audit hash chain take?

In process, through the real services: publishes N new skill versions (each one transaction with its
chained audit event; `--concurrency` publishes in flight at once, distinct names), signs a checkpoint, then
times `services.auditlog.verify` (read every event page by page, re-hash the chain, check the checkpoint
signatures from the database and the file). Reports mutations/s, verify time and events/s verified, and
splits verify into reading and hashing. Runs on SQLite (a temp file) and, if reachable, PostgreSQL (a
scratch database created on the server and dropped afterwards).

    .venv/bin/python bench/audit_chain.py [--mutations 10000] [--concurrency 16] [--rounds 3]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from agentreg.domain.auditchain import StoredEvent, verify_chain
from agentreg.domain.principals import ANONYMOUS
from agentreg.services import auditlog
from agentreg.services.auditlog import AuditFiles, Checkpointer, load_signer
from agentreg.services.publish import publish
from agentreg.store import migrate
from agentreg.store.factory import create_store
from agentreg.store.interface import AuditQuery
from agentreg.store.sql import chained

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SCRATCH = "agentreg_bench_audit"
TENANT = "default"


@dataclass
class Result:
    backend: str
    mutations: int
    publish_s: float
    verify_s: list[float]
    read_s: float
    hash_s: float

    @property
    def verify_median(self) -> float:
        return statistics.median(self.verify_s)


def skill(n: int) -> dict[str, object]:
    return {
        "apiVersion": "agentreg.dev/v1",
        "kind": "Skill",
        "metadata": {"namespace": "com.bench", "name": f"s{n}", "version": "1.0.0"},
        "spec": {"description": f"skill {n}", "instructions": "Do the thing."},
    }


async def run(
    backend: str, url: str, data_dir: Path, mutations: int, concurrency: int, rounds: int
) -> Result:
    store = create_store(url)
    await store.start()
    try:
        files = AuditFiles(data_dir / "audit")
        checkpointer = Checkpointer(store, load_signer(files, None), files)
        queue = iter(range(mutations))

        async def writer() -> None:
            for n in queue:
                outcome = await publish(store, ANONYMOUS, skill(n))
                assert outcome.result == "created"

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(concurrency)))
        publish_s = time.perf_counter() - started
        [checkpoint] = await checkpointer.checkpoint()
        assert checkpoint.seq == mutations, checkpoint

        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            result = await auditlog.verify(store, TENANT, files)
            times.append(time.perf_counter() - started)
            assert result.ok and result.events == mutations and result.checkpoints == 1, result

        # the two halves of verify: reading the log, and re-hashing it
        started = time.perf_counter()
        events = [
            StoredEvent(r.id, chained(r.event, r.seq), r.prev_hash, r.hash)
            async for r in auditlog.export_events(store, AuditQuery(TENANT))
        ]
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        checked = verify_chain(TENANT, events, [checkpoint], auditlog.public_keys(files))
        hash_s = time.perf_counter() - started
        assert checked.ok
        return Result(backend, mutations, publish_s, times, read_s, hash_s)
    finally:
        await store.close()


async def _admin(base: str, statement: str) -> None:
    url = make_url(base)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def bench_postgres(base: str, args: argparse.Namespace, data_dir: Path) -> Result | None:
    try:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
        asyncio.run(_admin(base, f'CREATE DATABASE "{SCRATCH}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"PostgreSQL at {base} is unreachable, skipped: {exc}")
        return None
    url = make_url(base).set(database=SCRATCH).render_as_string(hide_password=False)
    try:
        migrate.upgrade_sync(url)
        return asyncio.run(run("postgresql", url, data_dir, args.mutations, args.concurrency, args.rounds))
    finally:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))


def report(r: Result) -> None:
    verify = r.verify_median
    print(
        f"{r.backend:<10} {r.mutations:>7} mutations in {r.publish_s:6.2f} s = {r.mutations / r.publish_s:7.0f}/s"
        f" | verify {verify * 1000:7.0f} ms (median of {len(r.verify_s)}, min {min(r.verify_s) * 1000:.0f})"
        f" = {r.mutations / verify:8.0f} events/s"
        f" | read {r.read_s * 1000:.0f} ms + hash {r.hash_s * 1000:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutations", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16, help="publishes in flight at once")
    parser.add_argument("--rounds", type=int, default=3, help="verify runs (the median is reported)")
    parser.add_argument("--database-url", default=DEFAULT_PG, help="PostgreSQL server (a scratch DB is made)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="agentreg-bench-audit-") as tmp:
        sqlite_dir = Path(tmp) / "sqlite"
        sqlite_dir.mkdir()
        url = f"sqlite+aiosqlite:///{sqlite_dir / 'agentreg.db'}"
        migrate.upgrade_sync(url)
        results.append(
            asyncio.run(run("sqlite", url, sqlite_dir, args.mutations, args.concurrency, args.rounds))
        )
        report(results[-1])
        if not args.no_postgres:
            pg = bench_postgres(args.database_url, args, Path(tmp) / "postgres")
            if pg is not None:
                results.append(pg)
                report(pg)
    print(f"(concurrency {args.concurrency}; verify = read all events + re-hash + check 1 checkpoint)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
