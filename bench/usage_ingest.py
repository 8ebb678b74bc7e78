"""Usage ingest benchmark: rows/s through ``POST /v1/usage`` into PostgreSQL, against a bare HTTP baseline.

Usage (from the repository root):
    .venv/bin/python bench/usage_ingest.py [--rounds 3] [--duration 10] [--clients 4]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/agentreg_bench_usage]

One agentreg server (``agentreg serve`` on a freshly created PostgreSQL database, single-user mode) runs pinned
to CPU 0, as does the bare app of ``read_path.py`` (no routing, no parsing, no database). This script, pinned to
CPU 1, publishes a few versions, then in each round posts batches of 1000 usage reports (every row a new
(version, minute bucket), each with a latency histogram and three hashed caller ids) from ``--clients``
concurrent connections for ``--duration`` seconds, and afterwards posts the same number of the same-size
bodies to the bare app at the same concurrency: the HTTP floor for that traffic. Rounds alternate which goes
first; the report gives medians. At the end it checks every row is stored (the rollups add up).
Target (printed, never asserted): at least 5,000 rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

import asyncpg
import httpx
from read_path import LOAD_CPU, Processes, Server, processes, start_bare
from sqlalchemy.engine import make_url

BATCH = 1000
VERSIONS = 10
CALLERS_PER_ROW = 3
TARGET_ROWS_PER_S = 5000.0
NAMESPACE, NAME = "com.bench", "usage-probe"
DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/agentreg_bench_usage"
AGENTREG = os.path.join(os.path.dirname(sys.executable), "agentreg")
# Every request's latency, spread over the fixed buckets like a plausible service.
LATENCY_SHAPE = (0, 2, 10, 30, 25, 15, 8, 5, 3, 1, 1, 0, 0, 0)


@dataclass
class Run:
    target: str
    requests: int
    seconds: float
    failures: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.requests * BATCH / self.seconds


class Batches:
    """Request bodies of BATCH reports, every row a (version, minute) never reported before in this run."""

    def __init__(self) -> None:
        self.numbers = count()
        self.base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
        self.refs = [f"skill/{NAMESPACE}/{NAME}@1.0.{v}" for v in range(VERSIONS)]
        pool = [hashlib.sha256(f"caller-{i}".encode()).hexdigest() for i in range(1000)]
        self.callers = [
            ",".join(f'"{pool[(i + j) % len(pool)]}"' for j in range(CALLERS_PER_ROW)) for i in range(997)
        ]

    def next(self) -> bytes:
        first = next(self.numbers) * BATCH
        items = []
        for n in range(first, first + BATCH):
            requests = 100 + n % 7
            counts = list(LATENCY_SHAPE)
            counts[4] += requests - sum(LATENCY_SHAPE)
            start = self.base - timedelta(minutes=n // VERSIONS)
            items.append(
                f'{{"ref":"{self.refs[n % VERSIONS]}","bucketStart":"{start:%Y-%m-%dT%H:%M:%SZ}",'
                f'"bucketSeconds":60,"requests":{requests},"errors":{n % 3},'
                f'"latency":{{"counts":[{",".join(map(str, counts))}]}},'
                f'"callers":{{"ids":[{self.callers[n % len(self.callers)]}]}}}}'
            )
        return ('{"items":[' + ",".join(items) + "]}").encode()


async def load(base: str, bodies: Batches, clients: int, *, duration: float | None, total: int | None) -> Run:
    """POST batches from ``clients`` connections for ``duration`` seconds, or ``total`` requests in all."""
    sent = 0
    failures: list[str] = []
    deadline = time.perf_counter() + duration if duration is not None else None
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while (deadline is None or time.perf_counter() < deadline) and (total is None or sent < total):
            sent += 1
            response = await http.post(
                base + "/v1/usage", content=bodies.next(), headers={"content-type": "application/json"}
            )
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:200]}")

    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return Run(base, sent, elapsed, failures)


async def recreate(database_url: str) -> None:
    url = make_url(database_url)
    conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await conn.close()


def start_agentreg_on(procs: Processes, database_url: str) -> Server:
    data_dir = procs.workdir / "data"
    data_dir.mkdir()
    env = {**os.environ, "AGENTREG_DATABASE_URL": database_url, "AGENTREG_DATA_DIR": str(data_dir)}
    env.pop("AGENTREG_AUTH", None)
    return procs.start(
        "agentreg", [AGENTREG, "serve", "--port", "{port}", "--log-level", "warning"], env, "/healthz"
    )


def publish_versions(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for v in range(VERSIONS):
            document = {
                "apiVersion": "agentreg.dev/v1",
                "kind": "Skill",
                "metadata": {"namespace": NAMESPACE, "name": NAME, "version": f"1.0.{v}"},
                "spec": {"description": "usage probe", "instructions": "x"},
            }
            http.post("/v1/skills", json=document).raise_for_status()


def stored_buckets(base: str) -> int:
    with httpx.Client(base_url=base, timeout=60) as http:
        total = 0
        for v in range(VERSIONS):
            path = f"/v1/skills/{NAMESPACE}/{NAME}/versions/1.0.{v}/usage"
            response = http.get(path, params={"window": "90d"})
            response.raise_for_status()
            total += int(response.json()["buckets"])
        return total


def benchmark(database_url: str, rounds: int, duration: int, clients: int) -> tuple[list[Run], list[Run]]:
    asyncio.run(recreate(database_url))
    ours: list[Run] = []
    bare: list[Run] = []
    with processes() as procs:
        server = start_agentreg_on(procs, database_url)
        floor = start_bare(procs, len(b'{"accepted":1000}'))
        publish_versions(server.base)
        bodies = Batches()
        warm_up = asyncio.run(load(server.base, bodies, clients, duration=2, total=None))
        for rnd in range(rounds):
            order = ["ours", "bare"] if rnd % 2 == 0 else ["bare", "ours"]
            for which in order:
                if which == "ours":
                    run = asyncio.run(load(server.base, bodies, clients, duration=duration, total=None))
                    ours.append(run)
                else:
                    # As many POSTs as agentreg answered in its last round (or a first guess), same bodies.
                    total = ours[-1].requests if ours else max(1, int(duration * TARGET_ROWS_PER_S / BATCH))
                    run = asyncio.run(load(floor.base, bodies, clients, duration=None, total=total))
                    bare.append(run)
                flag = f"  !! {len(run.failures)} failures: {run.failures[0]}" if run.failures else ""
                print(
                    f"  round {rnd + 1} {which:<4} {run.requests:>5} POSTs in {run.seconds:6.2f} s "
                    f"= {run.rows_per_s:>9.0f} rows/s{flag}",
                    flush=True,
                )
        posted = (warm_up.requests + sum(r.requests for r in ours)) * BATCH
        stored = stored_buckets(server.base)
        print(f"  rows posted to agentreg (warm-up included): {posted}; stored: {stored}", flush=True)
        if stored != posted:
            ours[-1].failures.append(f"{posted - stored} rows posted but not stored")
        if server.proc.poll() is not None:
            raise RuntimeError(f"agentreg died during the run:\n{server.log_tail()}")
    return ours, bare


def report(ours: list[Run], bare: list[Run], rounds: int, duration: int, clients: int) -> list[str]:
    ours_rate = statistics.median(r.rows_per_s for r in ours)
    bare_rate = statistics.median(r.rows_per_s for r in bare)
    failures = sum(len(r.failures) for r in ours + bare)
    verdict = "PASS" if ours_rate >= TARGET_ROWS_PER_S else "MISS"
    return [
        f"Medians of {rounds} round(s) x {duration}s, {clients} clients, {BATCH} rows per POST; "
        f"server on CPU 0, this script on CPU {LOAD_CPU}, PostgreSQL unpinned.",
        "",
        "| target | rows/s | rows/s min-max | POSTs/s |",
        "|---|---|---|---|",
        f"| agentreg POST /v1/usage | {ours_rate:.0f} | {min(r.rows_per_s for r in ours):.0f}-"
        f"{max(r.rows_per_s for r in ours):.0f} | {ours_rate / BATCH:.1f} |",
        f"| bare app, same bodies | {bare_rate:.0f} | {min(r.rows_per_s for r in bare):.0f}-"
        f"{max(r.rows_per_s for r in bare):.0f} | {bare_rate / BATCH:.1f} |",
        "",
        f"  {verdict}  ingest {ours_rate:.0f} rows/s (target >= {TARGET_ROWS_PER_S:.0f}); "
        f"{ours_rate / bare_rate * 100:.0f} % of the bare HTTP floor; failures: {failures}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per round (default 10)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent connections (default 4)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE, help="recreated from scratch")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration < 1 or args.clients < 1:
        parser.error("--rounds, --duration and --clients must be positive")
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(LOAD_CPU)})
    started = time.monotonic()
    try:
        ours, bare = benchmark(args.database_url, args.rounds, args.duration, args.clients)
    except KeyboardInterrupt:
        print("interrupted; subprocesses stopped", file=sys.stderr)
        return 130
    print()
    print("\n".join(report(ours, bare, args.rounds, args.duration, args.clients)))
    print(f"\n(total {time.monotonic() - started:.0f}s)")
    return 1 if any(r.failures for r in ours + bare) else 0


if __name__ == "__main__":
    sys.exit(main())
