"""The SDK's discovery calls against the in-process app: sources and deployments.

Single-user mode (the caller is the default tenant's admin). Rows are written by the real ``Reconciler``
(``tests.services.test_inventory_service.seed``). The async client runs on both backends; the sync client
talks to a real uvicorn server on loopback (SQLite), with the discovery runner off so nothing but the seed writes rows.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from agentreg.api.app import AgentRegApp, create_app
from agentreg.client import (
    AsyncClient,
    Client,
    DeploymentOut,
    NotFoundError,
    PreconditionFailedError,
    SourceOut,
    UnprocessableEntityError,
)
from agentreg.client._discovery import deployment_params
from agentreg.config import Settings
from agentreg.domain.principals import Role, member
from agentreg.store import migrate
from agentreg.store.factory import create_store
from agentreg.store.interface import Store
from tests.services.test_inventory_service import seed

BASE = "http://agentreg.test"
ADMIN = member("admin", "default", Role.TENANT_ADMIN)


@pytest.fixture
def app(store: Store) -> AgentRegApp:
    return create_app(Settings(sources_root=Path("/")), store=store)


@pytest.fixture
async def registry(app: AgentRegApp, store: Store) -> AsyncIterator[tuple[AsyncClient, dict[str, int]]]:
    ids = await seed(store, ADMIN)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    async with AsyncClient(BASE, http_client=http, api_key="") as client:
        yield client, ids
    await http.aclose()


async def test_async_sources(registry: tuple[AsyncClient, dict[str, int]]) -> None:
    client, _ = registry
    [source] = await client.sources()
    assert isinstance(source, SourceOut) and source.name == "prod-eu" and source.counts["total"] == 5
    made = await client.put_source({"name": "lab", "type": "manifests", "path": "catalog"})
    assert made.tenant == "default" and made.managedBy == "api"
    replaced = await client.put_source("type: manifests\npath: other\n", name="lab")
    assert replaced.config["path"] == "/default/other"
    assert (await client.sync_source("lab")).name == "lab"
    assert (await client.source("lab")).config["path"] == "/default/other"
    await client.delete_source("lab")
    with pytest.raises(NotFoundError):
        await client.source("lab")
    with pytest.raises(UnprocessableEntityError) as caught:
        await client.put_source({"name": "bad", "type": "kubernetes"})
    assert caught.value.details[0]["field"] == "/kubeconfig"
    with pytest.raises(ValueError):
        await client.put_source({"type": "manifests", "path": "x"})


async def test_async_deployments(registry: tuple[AsyncClient, dict[str, int]]) -> None:
    client, ids = registry
    every = [d async for d in client.deployments(page_size=2)]
    assert [d.id for d in every] == sorted(ids.values())
    drifted = [d.object.name async for d in client.deployments(drift=True, unregistered=True)]
    assert sorted(drifted) == ["drifted", "shadow"]
    live = [d.object.name async for d in client.deployments(orphaned=False, kind="agent", cluster="prod-eu")]
    assert sorted(live) == ["drifted", "linked", "shadow"]
    one = await client.deployment(ids["linked"])
    assert isinstance(one, DeploymentOut) and one.link.state == "linked" and one.card is not None
    runs = await client.resource_deployments("agent", "com.acme/support-bot")
    assert {d.object.name for d in runs} == {"linked", "drifted", "gone"}
    annotated = await client.annotate_deployment(
        ids["linked"], labels={"tier": "gold"}, annotations={"n": "1"}
    )
    assert annotated.labels["tier"] == "gold" and annotated.overlay.annotations == {"n": "1"}
    with pytest.raises(PreconditionFailedError):
        await client.annotate_deployment(ids["linked"], labels={"tier": None}, if_match='"d-stale"')
    with pytest.raises(NotFoundError):
        await client.deployment(10**9)


def test_deployment_params_leave_out_what_is_not_asked() -> None:
    params = deployment_params(
        {"drift": True, "unregistered": False, "orphaned": False, "cluster": None}, 50, "c"
    )
    assert params == [("drift", "true"), ("orphaned", "false"), ("limit", "50"), ("cursor", "c")]
    with pytest.raises(TypeError):
        deployment_params({"colour": "red"}, 50, None)


@contextmanager
def serving(data_dir: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """The app served by uvicorn on 127.0.0.1 in a thread (a real HTTP server: Starlette's TestClient speaks
    httpx2 here, the SDK httpx), seeded first; yields (base URL, seeded row ids)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, discovery=False, sources_root=Path("/"))

    async def seeded() -> dict[str, int]:
        await migrate.upgrade(settings.effective_database_url)
        store = create_store(settings.effective_database_url)
        await store.start()
        try:
            return await seed(store, ADMIN)
        finally:
            await store.close()

    ids = asyncio.run(seeded())
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", ids
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def sync_registry(tmp_path: Path) -> Iterator[tuple[Client, dict[str, int]]]:
    with serving(tmp_path / "data") as (base, ids), Client(base, api_key="") as client:
        yield client, ids


def test_sync_client(sync_registry: tuple[Client, dict[str, int]]) -> None:
    client, ids = sync_registry
    assert [s.name for s in client.sources()] == ["prod-eu"]
    assert client.sync_source("prod-eu").name == "prod-eu"
    with pytest.raises(NotFoundError):  # a tenant the caller is not in
        client.put_source({"name": "prod-eu", "type": "manifests", "path": "x", "tenant": "nosuch"})
    assert {d.object.name for d in client.deployments(unregistered=True)} == {"shadow"}
    assert [d.id for d in client.deployments(page_size=1)] == sorted(ids.values())
    assert client.deployment(ids["openai"]).link.state == "none"
    assert client.annotate_deployment(ids["openai"], labels={"team": "ml"}).labels == {"team": "ml"}
    assert len(client.resource_deployments("agent", "com.acme/support-bot")) == 3
    client.delete_source("prod-eu")
    assert client.sources() == []
