"""Shared fixtures: one migrated database per backend and xdist worker, emptied before each test.

PostgreSQL is the real server at AGENTREG_TEST_DATABASE_URL (default postgres@127.0.0.1:5432/test); each
worker gets its own database cloned by name (test_gw0, ...). Under CI=true an unreachable PostgreSQL fails
the run instead of skipping its tests.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from agentreg.api.app import AgentRegApp, create_app
from agentreg.config import Settings
from agentreg.store import migrate
from agentreg.store.factory import create_store
from agentreg.store.sql import SqlStore
from agentreg.store.tables import metadata


def _testclient_speaks_httpx() -> None:
    """Bind Starlette's TestClient to ``httpx``, which the SDK speaks (tests hand it to ``Client(http_client=)``).

    The TestClient picks ``httpx2`` whenever it is importable, and the ``mcp`` SDK (tool introspection)
    installs it; hiding it while ``starlette.testclient`` is first imported keeps the TestClient on httpx.
    """
    if "starlette.testclient" in sys.modules:
        return
    saved = sys.modules.get("httpx2")
    sys.modules["httpx2"] = None  # type: ignore[assignment]
    try:
        import starlette.testclient  # noqa: F401
    finally:
        if saved is None:
            del sys.modules["httpx2"]
        else:
            sys.modules["httpx2"] = saved


_testclient_speaks_httpx()


DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgresql"]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


async def _fresh_pg_database(base_url: str, name: str) -> None:
    """Drop and recreate the worker's database, so every run migrates from nothing."""
    url = make_url(base_url)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
        timeout=5,
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> str:
    base = os.environ.get("AGENTREG_TEST_DATABASE_URL", DEFAULT_PG)
    name = f"{make_url(base).database}_{_worker()}"
    try:
        asyncio.run(_fresh_pg_database(base, name))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL at {base} is unreachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade_sync(url)
    return url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp(f"sqlite-{_worker()}") / "agentreg.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade_sync(url)
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url"))


async def _empty(store: SqlStore) -> None:
    async with store.begin() as tx:
        if store.dialect == "postgresql":
            names = ", ".join(t.name for t in metadata.sorted_tables)
            await tx.run.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                await tx.run.execute(table.delete())


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """A started store on an empty, migrated database (both backends)."""
    the_store = create_store(database_url)
    await _empty(the_store)
    await the_store.start()
    try:
        yield the_store
    finally:
        await the_store.close()


@pytest.fixture
def app(store: SqlStore) -> AgentRegApp:
    return create_app(Settings(), store=store)


@pytest.fixture
async def api(app: AgentRegApp) -> AsyncIterator[httpx.AsyncClient]:
    """The whole ASGI app (fast lane included) in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agentreg.test") as client:
        yield client


@pytest.fixture
def examples_text() -> str:
    return "\n---\n".join(p.read_text() for p in sorted(EXAMPLES.glob("*.yaml")))


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
