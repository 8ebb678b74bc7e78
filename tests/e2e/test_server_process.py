"""End to end: a real `agentreg serve` process, the real CLI and SDK over HTTP, and kill -9 durability."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from agentreg.client import Client
from agentreg.store.factory import create_store
from tests import factories as f
from tests.conftest import _empty

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(BIN / "agentreg"), "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not become ready in 30 s")
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # no graceful shutdown: what was acknowledged must survive
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTREG_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [str(BIN / "agentreg"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def journey(env: dict[str, str]) -> None:
    with server(env) as url:
        applied = cli(url, "apply", "-f", "examples/")
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.count("created") == 6
        assert cli(url, "alias", "set", "mcp-server", "com.acme/github", "stable", "1.4.2").returncode == 0
        listed = json.loads(cli(url, "-o", "json", "get", "agent").stdout)
        assert [a["name"] for a in listed] == ["research-assistant", "support-bot"]
        with Client(url) as client:
            resolved = client.resolve("agent/com.acme/support-bot@1.2.0")
            assert len(resolved.dependencies) == 3  # type: ignore[union-attr]
            # Acknowledged just before the kill: it must be on disk.
            assert client.publish(f.skill("last-write")).result == "created"
        missing = cli(url, "get", "skill", "com.acme/nope")
        assert missing.returncode == 1 and "not found" in missing.stderr
    with server(env) as url, Client(url) as client:
        assert client.get("skill", "com.acme/last-write").versionCount == 1
        assert client.get("mcp-server", "com.acme/github").aliases == {"stable": "1.4.2"}
        assert {r.name for r in client.list("agent")} == {"research-assistant", "support-bot"}
        versions = cli(url, "versions", "mcp-server", "com.acme/github")
        assert versions.returncode == 0 and "stable" in versions.stdout


def test_sqlite_server_survives_kill_9(tmp_path: Path) -> None:
    journey({"AGENTREG_DATA_DIR": str(tmp_path / "data")})


def test_postgres_server_survives_kill_9(pg_url: str) -> None:
    async def empty() -> None:
        store = create_store(pg_url)
        await _empty(store)
        await store.close()

    asyncio.run(empty())
    journey({"AGENTREG_DATABASE_URL": pg_url, "AGENTREG_DATA_DIR": "/nonexistent"})


def test_unreachable_server_is_a_clear_cli_error() -> None:
    result = cli(f"http://127.0.0.1:{free_port()}", "get", "agent")
    assert result.returncode == 3 and "cannot reach the registry" in result.stderr
