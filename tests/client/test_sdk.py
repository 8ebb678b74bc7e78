"""The SDK against the in-process app: typed results, cursor-following lists, typed errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import agentreg.client
from agentreg.api.app import AgentRegApp, create_app
from agentreg.client import (
    AsyncClient,
    Client,
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    ResolvedOut,
    UnprocessableEntityError,
    VersionOut,
)
from agentreg.config import Settings
from tests import factories as f

BASE = "http://agentreg.test"


@pytest.fixture
async def aclient(app: AgentRegApp) -> AsyncIterator[AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    async with AsyncClient(BASE, http_client=http) as client:
        yield client
    await http.aclose()


@pytest.fixture
def sync_client(tmp_data_dir: Path) -> Iterator[Client]:
    """The sync client needs a sync transport: TestClient runs the app (and its own SQLite store) in a thread."""
    app = create_app(Settings(data_dir=tmp_data_dir))
    with TestClient(app, base_url=BASE) as http, Client(BASE, http_client=http) as client:
        yield client


async def test_async_client_round_trip(aclient: AsyncClient, examples_text: str) -> None:
    applied = await aclient.apply(examples_text)
    assert [r.result for r in applied.results] == ["created"] * 6
    await aclient.set_alias("mcp-server", "com.acme/github", "stable", "1.4.2")
    resolved = await aclient.resolve("agent/com.acme/support-bot@1.x")
    assert isinstance(resolved, ResolvedOut)
    assert {d.name for d in resolved.dependencies} == {"llama-3-8b", "github", "ticket-triage"}
    version = await aclient.resolve("mcp-server/com.acme/github@stable")
    assert isinstance(version, VersionOut) and version.document["metadata"]["version"] == "1.4.2"
    names = [r.name async for r in aclient.list("mcp-servers", page_size=1)]
    assert names == ["github", "weather"]
    versions = await aclient.versions("MCPServer", "com.acme/github")
    assert [v.version for v in versions.items] == ["1.4.2"]


async def test_async_client_raises_typed_errors(aclient: AsyncClient) -> None:
    await aclient.publish(f.skill())
    with pytest.raises(ConflictError) as conflict:
        await aclient.publish(f.with_(f.skill(), "/spec/license", "MIT"))
    assert conflict.value.code == "conflict" and conflict.value.status_code == 409
    assert conflict.value.request_id
    with pytest.raises(UnprocessableEntityError) as invalid:
        await aclient.publish(f.with_(f.skill(), "/spec/description", ...))
    assert invalid.value.details == [{"field": "/spec/description", "issue": "is required"}]
    with pytest.raises(NotFoundError):
        await aclient.get("skill", "com.acme/missing")
    with pytest.raises(PreconditionFailedError):
        await aclient.set_alias("skill", "com.acme/triage", "stable", "1.0.0", if_match="0.0.1")


def test_sync_client_round_trip(sync_client: Client) -> None:
    for i in range(5):
        assert sync_client.publish(f.skill(f"s{i}")).result == "created"
    assert sync_client.publish(f.skill("s0")).result == "unchanged"
    assert [r.name for r in sync_client.list("skill", page_size=2)] == [f"s{i}" for i in range(5)]
    assert sync_client.get("skills", "com.acme/s3").latest.version == "1.0.0"  # type: ignore[union-attr]
    sync_client.set_alias("skill", "com.acme/s3", "prod", "1.0.0")
    assert sync_client.get_version("skill", "com.acme/s3", "prod").status.digest.startswith("sha256:")
    sync_client.delete_alias("skill", "com.acme/s3", "prod")
    with pytest.raises(NotFoundError):
        sync_client.get_version("skill", "com.acme/s3", "prod")
    updated = sync_client.update_metadata("skill", "com.acme/s3", labels={"team": "x"})
    assert updated.labels == {"team": "x"}


def test_unreachable_registry_raises_a_connection_error() -> None:
    with Client("http://127.0.0.1:9", timeout=1) as client, pytest.raises(agentreg.client.APIConnectionError):
        client.get("skill", "com.acme/x")


def test_exported_members() -> None:
    exported = set(agentreg.client.__all__)
    assert {"Client", "AsyncClient", "APIError", "NotFoundError", "ConflictError", "VersionOut"} <= exported
    for name in exported:
        assert getattr(agentreg.client, name) is not None
    assert not any(name.startswith("_") for name in exported)


def test_importing_the_sdk_does_not_import_the_server() -> None:
    code = "import sys, agentreg.client; print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'sqlalchemy', 'starlette', 'alembic', 'uvicorn'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
