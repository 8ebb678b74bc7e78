"""The fast lane answers exactly what FastAPI answers, and never serves a stale answer after a write."""

from __future__ import annotations

import httpx
import pytest

from agentreg.api.app import AgentRegApp, create_app
from agentreg.config import Settings
from agentreg.store.sql import SqlStore
from tests import factories as f

pytestmark = pytest.mark.usefixtures("store")


@pytest.fixture
async def slow_api(store: SqlStore) -> httpx.AsyncClient:
    app = create_app(Settings(fast_lane=False), store=store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test")


async def test_both_lanes_give_identical_bodies_and_etags(
    api: httpx.AsyncClient, slow_api: httpx.AsyncClient, examples_text: str
) -> None:
    await api.post("/v1/apply", content=examples_text, headers={"content-type": "application/yaml"})
    await api.put("/v1/mcp-servers/com.acme/github/aliases/stable", json={"version": "1.4.2"})
    for path in (
        "/v1/mcp-servers/com.acme/github/versions/stable",
        "/v1/agents/com.acme/support-bot/versions/^1/resolved",
        "/v1/agents/com.acme/research-assistant/versions/latest/resolved",
        "/v1/models/com.acme/nope/versions/latest",
    ):
        fast, slow = await api.get(path), await slow_api.get(path)
        assert fast.status_code == slow.status_code
        if fast.status_code == 200:
            assert fast.content == slow.content
            assert fast.headers["etag"] == slow.headers["etag"]
        else:
            assert fast.json()["error"]["code"] == slow.json()["error"]["code"]


async def test_cached_answers_change_as_soon_as_the_catalog_does(
    api: httpx.AsyncClient, app: AgentRegApp
) -> None:
    path = "/v1/skills/com.acme/triage/versions/latest"
    assert (await api.get(path)).status_code == 404  # a cached negative answer...
    await api.post("/v1/skills", json=f.skill())
    assert (await api.get(path)).json()["document"]["metadata"][
        "version"
    ] == "1.0.0"  # ...dropped by the publish
    assert (await api.get(path)).status_code == 200
    await api.post("/v1/skills", json=f.skill(version="1.1.0"))
    assert (await api.get(path)).json()["document"]["metadata"]["version"] == "1.1.0"
    await api.put("/v1/skills/com.acme/triage/aliases/stable", json={"version": "1.0.0"})
    assert (await api.get("/v1/skills/com.acme/triage/versions/stable")).json()["status"]["digest"]
    await api.put("/v1/skills/com.acme/triage/aliases/stable", json={"version": "1.1.0"})
    stable = (await api.get("/v1/skills/com.acme/triage/versions/stable")).json()
    assert stable["document"]["metadata"]["version"] == "1.1.0"
    await api.patch("/v1/skills/com.acme/triage", json={"labels": {"team": "z"}})
    assert (await api.get(path)).json()["document"]["metadata"]["labels"] == {"team": "z"}
    assert app.fast_lane is not None and len(app.fast_lane.cache) > 0


async def test_writes_from_another_process_invalidate_the_cache(
    api: httpx.AsyncClient, database_url: str
) -> None:
    """A second store stands in for another process (SQLite) or replica (PostgreSQL) writing."""
    import asyncio

    from agentreg.domain.principals import ANONYMOUS
    from agentreg.services.publish import publish
    from agentreg.store.factory import create_store

    await api.post("/v1/skills", json=f.skill())
    path = "/v1/skills/com.acme/triage/versions/latest"
    assert (await api.get(path)).json()["document"]["metadata"]["version"] == "1.0.0"
    other = create_store(database_url)
    try:
        await publish(other, ANONYMOUS, f.skill(version="2.0.0"))
    finally:
        await other.close()
    for _ in range(100):
        if (await api.get(path)).json()["document"]["metadata"]["version"] == "2.0.0":
            break
        await asyncio.sleep(0.01)
    assert (await api.get(path)).json()["document"]["metadata"]["version"] == "2.0.0"


async def test_head_and_request_ids(api: httpx.AsyncClient) -> None:
    await api.post("/v1/skills", json=f.skill())
    path = "/v1/skills/com.acme/triage/versions/1.0.0"
    head = await api.head(path)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    traced = await api.get(path, headers={"x-request-id": "trace-123"})
    assert traced.headers["x-request-id"] == "trace-123"
    long_id = "x" * 300
    for lane_path in (path, path + "?lane=fastapi"):
        assert (await api.get(lane_path, headers={"x-request-id": long_id})).headers[
            "x-request-id"
        ] == "x" * 128
    missing = await api.get("/v1/skills/com.acme/nope/versions/1.0.0", headers={"x-request-id": "trace-404"})
    assert missing.json()["error"]["request_id"] == "trace-404"
    assert (await api.get(path)).headers["x-request-id"] != (await api.get(path)).headers["x-request-id"]


async def test_selector_with_spaces_and_operators_is_url_decoded(api: httpx.AsyncClient) -> None:
    await api.post("/v1/skills", json=f.skill(version="1.5.0"))
    response = await api.get("/v1/skills/com.acme/triage/versions/%3E%3D1.0%20%3C2")
    assert response.status_code == 200 and response.json()["document"]["metadata"]["version"] == "1.5.0"


async def test_an_unexpected_failure_is_a_500_envelope_not_a_crash(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is made to fail at its boundary to observe the fast lane's catch-all."""
    from agentreg.services import selection

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database exploded")

    monkeypatch.setattr(selection, "get_version", broken)
    response = await api.get("/v1/skills/com.acme/triage/versions/1.0.0", headers={"x-request-id": "boom-1"})
    assert response.status_code == 500
    assert response.json()["error"] == {
        "code": "internal",
        "message": "internal server error",
        "details": [],
        "request_id": "boom-1",
    }
    assert "exploded" not in response.text


def test_the_response_cache_is_bounded_in_bytes() -> None:
    from agentreg.api.cache import CachedResponse, ResponseCache

    cache = ResponseCache(max_entries=100, max_bytes=1600)
    for i in range(10):
        cache.put(i, CachedResponse(200, b"x" * 90, (), None, 1))
    cache.put("huge", CachedResponse(200, b"x" * 200, (), None, 1))  # over 1/16 of the budget: not kept
    assert cache.get("huge", 1) is None
    for i in range(30):
        cache.put(f"more{i}", CachedResponse(200, b"x" * 90, (), None, 1))
    assert cache.bytes <= 1600 and len(cache) == cache.bytes // 90
    assert cache.get(0, 1) is None  # the oldest were evicted


async def test_both_lanes_agree_on_unaddressable_names_and_bad_selectors(
    api: httpx.AsyncClient, slow_api: httpx.AsyncClient
) -> None:
    long_name = "n" * 250
    for path, status, code in (
        (f"/v1/skills/com.acme/{long_name}/versions/1.0.0", 404, "not_found"),
        ("/v1/skills/com.acme/x/versions/" + "1" * 300, 422, "invalid_request"),
    ):
        for client in (api, slow_api):
            response = await client.get(path)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code)
