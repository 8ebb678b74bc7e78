"""Redaction over HTTP on both backends: only a super admin replaces a version's spec with a tombstone;
its digest, status and audit trail stay, and every read returns the tombstone from then on.

With ``AGENTREG_AUTH=required`` and real API keys: the bootstrap super-admin key creates tenant ``acme``
(owning ``com.acme``, with an agent at 1.0.0 and 1.1.0) and tenant ``beta``; keys per role are made on
first use. Single-user mode (no authentication) is a tenant admin, never a super admin, so it cannot redact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentreg.api.app import create_app
from agentreg.config import Settings
from agentreg.services import identity
from agentreg.store.interface import Store
from tests import factories as f

NS = "com.acme"
AGENT = f"/v1/agents/{NS}/support-bot"
REASON = "the card leaked an API token in its description"
SECRET = "sk-live-0123456789"


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def leaky(version: str) -> dict[str, Any]:
    card = f.card_03(version, description=f"Answers questions; token {SECRET}")
    return f.agent(version=version, card=card)


@dataclass
class World:
    client: httpx.AsyncClient
    root: dict[str, str]
    keys: dict[str, dict[str, str]] = field(default_factory=dict)

    async def call(self, who: str, method: str, path: str, json: Any = None) -> httpx.Response:
        if who != "root" and who not in self.keys:  # "acme_developer", "beta_tenant_admin", ...
            tenant, role = who.split("_", 1)
            body = {"name": who, "tenant": tenant, "roles": [role]}
            created = await self.client.post("/v1/keys", json=body, headers=self.root)
            assert created.status_code == 201, created.text
            self.keys[who] = bearer(created.json()["key"])
        headers = self.root if who == "root" else self.keys[who]
        return await self.client.request(method, path, json=json, headers=headers)

    async def redact(self, who: str, version: str = "1.0.0", reason: Any = REASON) -> httpx.Response:
        return await self.call(who, "POST", f"{AGENT}/versions/{version}/redact", {"reason": reason})


def ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response


@pytest.fixture
async def world(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    app = create_app(Settings(auth="required", data_dir=tmp_path), store=store)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test")
    created = await identity.bootstrap(store)
    assert created is not None
    w = World(client, bearer(created.secret))
    for tenant in ("acme", "beta"):
        ok(await client.post("/v1/tenants", json={"id": tenant}, headers=w.root))
    ok(await client.post("/v1/namespaces", json={"name": NS, "tenant": "acme"}, headers=w.root))
    for version in ("1.0.0", "1.1.0"):
        ok(await w.call("acme_developer", "POST", "/v1/agents", leaky(version)))
    try:
        yield w
    finally:
        await client.aclose()


async def test_a_super_admin_replaces_the_spec_with_a_tombstone_keeping_the_digest(world: World) -> None:
    before = ok(await world.call("acme_viewer", "GET", f"{AGENT}/versions/1.0.0")).json()
    assert SECRET in str(before["document"])
    redacted = ok(await world.redact("root")).json()
    assert redacted["document"] == {
        "apiVersion": "agentreg.dev/v1",
        "kind": "Agent",
        "metadata": {"namespace": NS, "name": "support-bot", "version": "1.0.0"},
        "spec": {"redacted": True},
    }
    # The digest stays: it is still the digest of what was published, which the tombstone is not.
    assert redacted["status"]["digest"] == before["status"]["digest"]
    assert redacted["status"]["publishedBy"] == before["status"]["publishedBy"]
    whoami = ok(await world.call("root", "GET", "/v1/whoami")).json()
    assert redacted["status"]["redacted"]["reason"] == REASON
    assert redacted["status"]["redacted"]["by"] == whoami["subject"]


async def test_every_read_returns_the_tombstone_afterwards(world: World) -> None:
    original = ok(await world.call("acme_viewer", "GET", f"{AGENT}/versions/1.0.0"))  # warms the fast lane
    ok(await world.redact("root"))
    reads = [
        f"{AGENT}/versions/1.0.0",  # fast lane
        f"{AGENT}/versions/1.0.0?via=fastapi",
        f"{AGENT}/versions/^1.0.0 <1.1.0",
    ]
    for path in reads:
        body = ok(await world.call("acme_viewer", "GET", path)).json()
        assert body["document"]["spec"] == {"redacted": True}, path
        assert body["status"]["digest"] == original.json()["status"]["digest"], path
        assert SECRET not in str(body), path
    # The other version is untouched.
    other = ok(await world.call("acme_viewer", "GET", f"{AGENT}/versions/1.1.0")).json()
    assert SECRET in str(other["document"])


async def test_a_client_holding_the_old_etag_gets_the_tombstone_not_a_304(world: World) -> None:
    original = ok(await world.call("acme_viewer", "GET", f"{AGENT}/versions/1.0.0"))
    ok(await world.redact("root"))
    headers = {**world.keys["acme_viewer"], "if-none-match": original.headers["etag"]}
    again = await world.client.get(f"{AGENT}/versions/1.0.0", headers=headers)
    assert again.status_code == 200, "a cache holding the leaked document would keep serving it"
    assert again.json()["document"]["spec"] == {"redacted": True}


async def test_redaction_is_audited_with_its_reason_and_the_digest(world: World) -> None:
    digest = ok(await world.redact("root")).json()["status"]["digest"]
    events = ok(await world.call("root", "GET", "/v1/audit?tenant=acme&action=version.redact")).json()[
        "items"
    ]
    assert [(e["object"], e["reason"], e["before"]) for e in events] == [
        (f"agent/{NS}/support-bot@1.0.0", REASON, digest)
    ]
    verified = ok(await world.call("root", "GET", "/v1/audit/verify?tenant=acme")).json()
    assert verified["ok"] is True, verified


async def test_redacting_twice_is_a_conflict(world: World) -> None:
    ok(await world.redact("root"))
    again = await world.redact("root", reason="once more")
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "conflict"
    assert "already redacted" in again.json()["error"]["message"]


@pytest.mark.parametrize("who", ["acme_tenant_admin", "acme_developer"])
async def test_only_a_super_admin_can_redact(world: World, who: str) -> None:
    refused = await world.redact(who)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["message"] == "only a super admin can redact"
    body = ok(await world.call(who, "GET", f"{AGENT}/versions/1.0.0")).json()
    assert SECRET in str(body["document"])


async def test_another_tenant_cannot_tell_the_version_exists(world: World) -> None:
    hidden = await world.redact("beta_tenant_admin")
    missing = await world.call(
        "beta_tenant_admin", "POST", f"/v1/agents/{NS}/nosuch-bot/versions/1.0.0/redact", {"reason": REASON}
    )
    assert hidden.status_code == missing.status_code == 404
    assert (
        hidden.json()["error"]["message"].replace("support-bot", "nosuch-bot")
        == (missing.json()["error"]["message"])
    )


async def test_a_missing_version_or_a_selector_is_refused(world: World) -> None:
    assert (await world.redact("root", version="9.9.9")).status_code == 404
    latest = await world.redact("root", version="latest")
    assert latest.status_code == 422, latest.text
    assert latest.json()["error"]["details"][0]["field"] == "/version"


@pytest.mark.parametrize(
    ("body", "issue_field"),
    [
        ({}, "/reason"),
        ({"reason": "  "}, "/reason"),
        ({"reason": "x" * 501}, "/reason"),
        ({"reason": 3}, "/reason"),
    ],
)
async def test_a_reason_is_required_and_nothing_is_written_without_one(
    world: World, body: dict[str, Any], issue_field: str
) -> None:
    refused = await world.call("root", "POST", f"{AGENT}/versions/1.0.0/redact", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"][0]["field"] == issue_field
    assert SECRET in str(ok(await world.call("root", "GET", f"{AGENT}/versions/1.0.0")).json()["document"])
    events = ok(await world.call("root", "GET", "/v1/audit?tenant=acme&action=version.redact")).json()
    assert events["items"] == []


async def test_unknown_body_fields_are_refused(world: World) -> None:
    refused = await world.call(
        "root", "POST", f"{AGENT}/versions/1.0.0/redact", {"reason": REASON, "why": "x"}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"][0]["field"] == "/why"


async def test_a_redacted_version_cannot_be_compared(world: World) -> None:
    ok(await world.redact("root"))
    refused = await world.call("acme_viewer", "GET", f"{AGENT}/versions/1.1.0/compatibility?against=1.0.0")
    assert refused.status_code == 409, refused.text
    # By default the redacted version is passed over: there is nothing else earlier.
    report = ok(await world.call("acme_viewer", "GET", f"{AGENT}/versions/1.1.0/compatibility")).json()
    assert report["against"] is None


async def test_single_user_mode_cannot_redact(api: httpx.AsyncClient) -> None:
    ok(await api.post("/v1/agents", json=leaky("1.0.0")))
    refused = await api.post(f"{AGENT}/versions/1.0.0/redact", json={"reason": REASON})
    assert refused.status_code == 403, refused.text
    assert SECRET in str(ok(await api.get(f"{AGENT}/versions/1.0.0")).json()["document"])
