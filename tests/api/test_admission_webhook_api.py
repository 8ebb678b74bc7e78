"""Publishing and promotion through a tenant's admission webhook, over HTTP on both backends.

The webhook is a real HTTP server on 127.0.0.1 (tests/services/local_http.py), allowed by the app's fetcher
allow-list (``AGENTREG_FETCH_ALLOW``), as an operator would allow an in-cluster admission service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentreg.api.app import create_app
from agentreg.config import Settings
from agentreg.services import fetcher
from agentreg.store.sql import SqlStore
from tests import factories as f
from tests.services.local_http import LocalServer, serve

SKILL = "/v1/skills/com.acme/triage"


@pytest.fixture
def hook() -> Iterator[LocalServer]:
    with serve() as running:
        yield running


@pytest.fixture
async def client(store: SqlStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    before = fetcher.default()
    app = create_app(Settings(data_dir=tmp_path, fetch_allow="127.0.0.1"), store=store)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agentreg.test") as http:
            yield http
    finally:
        fetcher.install(before)


async def put_webhook(client: httpx.AsyncClient, url: str, **options: Any) -> None:
    policy = {"apiVersion": "agentreg.dev/v1", "kind": "Policy", "spec": {"webhook": {"url": url, **options}}}
    response = await client.put("/v1/policy", json=policy)
    assert response.status_code == 200, response.text


async def test_a_denying_webhook_refuses_the_publish_and_nothing_is_written(
    client: httpx.AsyncClient, hook: LocalServer
) -> None:
    assert (await client.post("/v1/skills", json=f.skill(version="1.0.0"))).status_code == 201
    await put_webhook(client, f"{hook.base}/deny")
    refused = await client.post("/v1/skills", json=f.skill(version="1.1.0"))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "policy_denied"
    assert "CVE-2026-1234" in refused.json()["error"]["message"]
    asked = hook.seen[-1].json()
    assert asked["phase"] == "publish" and asked["ref"] == "skill/com.acme/triage@1.1.0"
    assert asked["document"]["metadata"]["version"] == "1.1.0"
    assert (await client.get(f"{SKILL}/versions/1.1.0")).status_code == 404
    # Republishing what exists changes nothing, so the webhook is not asked.
    calls = len(hook.seen)
    assert (await client.post("/v1/skills", json=f.skill(version="1.0.0"))).status_code == 200
    assert len(hook.seen) == calls


async def test_an_allowing_webhook_lets_publish_and_promotion_through(
    client: httpx.AsyncClient, hook: LocalServer
) -> None:
    assert (await client.post("/v1/skills", json=f.skill(version="1.0.0"))).status_code == 201
    await put_webhook(client, f"{hook.base}/allow")
    assert (await client.post("/v1/skills", json=f.skill(version="1.1.0"))).status_code == 201
    promoted = await client.post(
        f"{SKILL}/versions/1.1.0/promote", json={"reason": "hotfix", "fastTrack": True}
    )
    assert promoted.status_code == 200, promoted.text
    phases = [seen.json()["phase"] for seen in hook.seen]
    assert phases == ["publish", "promote"]
    assert hook.seen[-1].json()["targetState"] == "experimental"


async def test_an_unreachable_webhook_follows_the_policys_failure_mode(
    client: httpx.AsyncClient, hook: LocalServer
) -> None:
    assert (await client.post("/v1/skills", json=f.skill(version="1.0.0"))).status_code == 201
    await put_webhook(client, f"{hook.base}/slow?s=2", timeoutMs=200, failure="closed")
    closed = await client.post("/v1/skills", json=f.skill(version="1.1.0"))
    assert closed.status_code == 403 and closed.json()["error"]["code"] == "policy_denied"
    await put_webhook(client, f"{hook.base}/status/500", failure="open")
    opened = await client.post("/v1/skills", json=f.skill(version="1.2.0"))
    assert opened.status_code == 201
    assert any("admission webhook" in w["issue"] for w in opened.json()["warnings"])


async def test_a_denying_webhook_refuses_promotion(client: httpx.AsyncClient, hook: LocalServer) -> None:
    assert (await client.post("/v1/skills", json=f.skill(version="1.0.0"))).status_code == 201
    await put_webhook(client, f"{hook.base}/deny", phases=["promote"])
    refused = await client.post(f"{SKILL}/versions/1.0.0/promote", json={"reason": "x", "fastTrack": True})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "policy_denied"
    assert refused.json()["error"]["decision"]["rules"][0]["id"] == "webhook"
    state = (await client.get(f"{SKILL}/versions/1.0.0")).json()["status"]["state"]
    assert state == "draft"
