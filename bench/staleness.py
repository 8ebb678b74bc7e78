"""How stale can a replica's hot-path cache be on PostgreSQL? (LISTEN/NOTIFY invalidation)

Starts two real `agentreg serve` processes (replicas A and B) on one PostgreSQL database, warms B's cache,
publishes a new version through A, and polls B's `…/versions/latest` until it serves the new version. The
delay from A's acknowledgement to B's first fresh answer is the staleness window. Prints p50/p99/max.

    .venv/bin/python bench/staleness.py [--trials 50] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/agentreg_bench]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
AGENTREG = Path(sys.executable).parent / "agentreg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def replica(database_url: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "AGENTREG_DATABASE_URL": database_url}
    process = subprocess.Popen(
        [str(AGENTREG), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("replica did not start")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


async def recreate(database_url: str) -> None:
    url = make_url(database_url)
    conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await conn.close()


def skill(version: str) -> dict[str, object]:
    return {
        "apiVersion": "agentreg.dev/v1",
        "kind": "Skill",
        "metadata": {"namespace": "com.bench", "name": "stale", "version": version},
        "spec": {"description": "staleness probe", "instructions": "x"},
    }


def measure(a: str, b: str, trials: int) -> list[float]:
    path = "/v1/skills/com.bench/stale/versions/latest"
    delays: list[float] = []
    with httpx.Client(base_url=a) as writer, httpx.Client(base_url=b) as reader:
        writer.post("/v1/skills", json=skill("1.0.0")).raise_for_status()
        for i in range(1, trials + 1):
            version = f"1.0.{i}"
            for _ in range(3):  # warm B's cache on the current answer
                reader.get(path)
            writer.post("/v1/skills", json=skill(version)).raise_for_status()
            acknowledged = time.perf_counter()
            deadline = acknowledged + 5
            while time.perf_counter() < deadline:
                if reader.get(path).json()["document"]["metadata"]["version"] == version:
                    delays.append(time.perf_counter() - acknowledged)
                    break
            else:
                raise RuntimeError(f"replica B never saw {version} within 5 s")
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/agentreg_bench"
    )
    args = parser.parse_args()
    asyncio.run(recreate(args.database_url))
    with ExitStack() as stack:
        a = stack.enter_context(replica(args.database_url))
        b = stack.enter_context(replica(args.database_url))
        delays = sorted(measure(a, b, args.trials))
    ms = [d * 1000 for d in delays]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"trials={len(ms)} staleness after acknowledgement: p50={statistics.median(ms):.2f} ms p99={p99:.2f} ms max={ms[-1]:.2f} ms"
    )
    print("(each figure includes one poll round trip to replica B)")


if __name__ == "__main__":
    main()
