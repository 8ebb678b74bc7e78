"""MCP tool introspection over HTTP, against a real ``mcp`` SDK server on loopback, on both databases.

The process-wide fetcher is replaced by one that allow-lists 127.0.0.1/32 (and put back afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentreg.api.app import AgentRegApp
from agentreg.services import fetcher
from tests import factories as f
from tests.services.test_introspect import LOOPBACK, McpServer, serving

VERSION = f"/v1/mcp-servers/{f.NS}/github/versions/1.0.0"


@pytest.fixture(autouse=True)
def loopback_fetcher(app: AgentRegApp) -> Iterator[None]:
    """After the app is built (``create_app`` installs the fetcher its settings describe)."""
    previous = fetcher.default()
    fetcher.install(fetcher.Fetcher(LOOPBACK))
    try:
        yield
    finally:
        fetcher.install(previous)


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpServer]:
    with serving() as server:
        yield server


async def publish(api: httpx.AsyncClient, **spec: Any) -> None:
    response = await api.post("/v1/mcp-servers", json=f.mcp_server(**spec))
    assert response.status_code in (200, 201), response.text


async def test_introspect_then_read_the_tools(api: httpx.AsyncClient, mcp: McpServer) -> None:
    await publish(api, remotes=[{"type": "streamable-http", "url": mcp.url}])

    posted = await api.post(f"{VERSION}/introspect")
    read = await api.get(f"{VERSION}/tools")

    assert posted.status_code == 200, posted.text
    body = posted.json()
    assert body["endpoint"] == mcp.url and body["error"] is None and len(body["digest"]) == 64
    assert [t["name"] for t in body["tools"]] == [f"tool_{i}" for i in range(5)]
    assert body["tools"][0]["inputSchema"]["required"] == ["query"]
    assert read.status_code == 200 and read.json() == body
    audit = await api.get("/v1/audit", params={"action": "version.introspect"})
    assert audit.status_code == 200, audit.text
    [event] = audit.json()["items"]
    assert event["object"] == f"mcp-server/{f.NS}/github@1.0.0" and event["details"]["tools"] == 5
    assert event["requestId"]


async def test_tools_never_introspected_are_a_clear_404(api: httpx.AsyncClient, mcp: McpServer) -> None:
    await publish(api, remotes=[{"type": "streamable-http", "url": mcp.url}])

    response = await api.get(f"{VERSION}/tools")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and "has not been introspected" in error["message"]


async def test_a_refused_endpoint_is_recorded_as_the_error(api: httpx.AsyncClient) -> None:
    await publish(api, remotes=[{"type": "streamable-http", "url": "https://169.254.169.254/mcp"}])

    response = await api.post(f"{VERSION}/introspect")

    assert response.status_code == 200
    assert response.json()["tools"] == [] and "link-local" in response.json()["error"]


async def test_a_version_without_a_remote_is_a_conflict(api: httpx.AsyncClient) -> None:
    await publish(api)

    response = await api.post(f"{VERSION}/introspect")

    assert response.status_code == 409
    assert "no streamable-http remote" in response.json()["error"]["message"]


async def test_unknown_versions_are_404(api: httpx.AsyncClient) -> None:
    for response in (
        await api.post(f"/v1/mcp-servers/{f.NS}/nosuch/versions/1.0.0/introspect"),
        await api.get(f"/v1/mcp-servers/{f.NS}/nosuch/versions/1.0.0/tools"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
