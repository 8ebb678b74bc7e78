"""The SDK's identity and audit calls against the in-process app with authentication required."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from agentreg.api.app import AgentRegApp, create_app
from agentreg.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    CreatedKeyOut,
    NotFoundError,
    PreconditionFailedError,
    RateLimitedError,
)
from agentreg.config import Settings
from agentreg.services import identity
from agentreg.store.sql import SqlStore

BASE = "http://agentreg.test"


@pytest.fixture
def auth_app(store: SqlStore, tmp_path: Path) -> AgentRegApp:
    return create_app(Settings(auth="required", data_dir=tmp_path), store=store)


@pytest.fixture
async def http(auth_app: AgentRegApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=auth_app), base_url=BASE) as client:
        yield client


@pytest.fixture
async def admin(store: SqlStore, http: httpx.AsyncClient) -> AsyncIterator[AsyncClient]:
    created = await identity.bootstrap(store)
    assert created is not None
    async with AsyncClient(BASE, http_client=http, api_key=created.secret) as client:
        yield client


async def test_tenants_namespaces_and_sharing(admin: AsyncClient) -> None:
    me = await admin.whoami()
    assert me.superAdmin and me.kind == "service" and me.authentication == "required"
    acme = await admin.create_tenant("acme", "Acme Corp")
    assert (acme.id, acme.displayName) == ("acme", "Acme Corp")
    await admin.create_tenant("beta")
    assert {t.id for t in (await admin.list_tenants()).items} >= {"acme", "beta"}

    claimed = await admin.claim_namespace("com.acme", tenant="acme")
    assert (claimed.tenant, claimed.public, claimed.sharedWith) == ("acme", False, [])
    read = await admin.get_namespace("com.acme")
    shared = await admin.share_namespace("com.acme", public=True, tenants=["beta"], if_match=read)
    assert shared.public and shared.sharedWith == ["beta"]
    with pytest.raises(PreconditionFailedError):  # ``read`` is stale now
        await admin.share_namespace("com.acme", tenants=[], if_match=read)
    private = await admin.share_namespace("com.acme", if_match=shared)
    assert not private.public and private.sharedWith == []
    assert [n.name for n in (await admin.list_namespaces()).items] == ["com.acme"]
    with pytest.raises(NotFoundError):
        await admin.get_namespace("org.missing")


async def test_keys_create_use_list_revoke(admin: AsyncClient, http: httpx.AsyncClient) -> None:
    await admin.create_tenant("acme")
    await admin.claim_namespace("com.acme", tenant="acme")
    expires = datetime.now(UTC) + timedelta(days=1)
    created = await admin.create_key(
        "ci", ["developer"], tenant="acme", scope={"namespaces": ["com.acme"]}, expires_at=expires
    )
    assert isinstance(created, CreatedKeyOut) and created.key.startswith("agr_")
    assert created.tenant == "acme" and created.scope == {"namespaces": ["com.acme"]}

    async with AsyncClient(BASE, http_client=http, token=created.key) as ci:
        me = await ci.whoami()
        assert me.subject == f"key:{created.id}" and me.tenants == {"acme": ["developer"]}
        assert me.scope == {"namespaces": ["com.acme"]} and me.expiresAt is not None
        listed = await admin.list_keys("acme")
        assert [k.id for k in listed.items] == [created.id]
        assert "key" not in listed.items[0].model_dump()  # never the secret again
        revoked = await admin.revoke_key(created.id)
        assert revoked.revokedAt is not None
        with pytest.raises(AuthenticationError) as denied:
            await ci.whoami()
        assert denied.value.status_code == 401 and "revoked" in denied.value.message

    async with AsyncClient(BASE, http_client=http, api_key="") as anonymous:
        with pytest.raises(AuthenticationError):
            await anonymous.whoami()


async def test_audit_pages_export_verify_checkpoint(admin: AsyncClient, http: httpx.AsyncClient) -> None:
    await admin.create_tenant("acme")
    await admin.claim_namespace("com.acme", tenant="acme")
    for name in ("a", "b", "c"):
        await admin.create_key(name, ["viewer"], tenant="acme")

    events = [e async for e in admin.audit("acme", limit=2)]  # several pages
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.action for e in events].count("key.create") == 3
    keys = [e async for e in admin.audit(tenant="acme", action="key.*", limit=1)]
    assert [e.action for e in keys] == ["key.create"] * 3
    assert [e.details["name"] for e in keys] == ["a", "b", "c"]
    later = [e async for e in admin.audit("acme", since=events[1].at)]
    assert later and all(e.at >= events[1].at for e in later)

    exported = [e async for e in admin.audit_export("acme")]
    assert [(e.seq, e.hash) for e in exported] == [(e.seq, e.hash) for e in events]
    assert [e.seq async for e in admin.audit_export("acme", action="key.*")] == [k.seq for k in keys]

    verified = await admin.audit_verify("acme")
    assert verified.ok and verified.events == len(events) and verified.headSeq == events[-1].seq
    assert verified.firstBad is None
    checkpoints = await admin.audit_checkpoint("acme")
    assert [(c.tenant, c.seq) for c in checkpoints.items] == [("acme", events[-1].seq)]
    assert (await admin.audit_verify("acme")).checkpoints >= 1

    await admin.create_tenant("beta")
    outsider = await admin.create_key("auditor", ["auditor"], tenant="beta")
    async with AsyncClient(BASE, http_client=http, api_key=outsider.key) as beta:
        assert (await beta.audit_verify()).tenant == "beta"  # its only tenant by default
        with pytest.raises(NotFoundError):
            await beta.audit_verify("acme")
        with pytest.raises(NotFoundError):
            [e async for e in beta.audit_export("acme")]


@pytest.fixture
def sync_admin(tmp_data_dir: Path) -> Iterator[Client]:
    secret = identity.new_secret()
    app = create_app(Settings(auth="required", data_dir=tmp_data_dir, bootstrap_key=secret))
    with TestClient(app, base_url=BASE) as http, Client(BASE, http_client=http, api_key=secret) as client:
        yield client


def test_sync_client_identity_and_audit(sync_admin: Client) -> None:
    assert sync_admin.whoami().superAdmin
    sync_admin.create_tenant("acme")
    assert [t.id for t in sync_admin.list_tenants().items] == ["acme"]
    sync_admin.claim_namespace("com.acme", "acme")
    assert sync_admin.share_namespace("com.acme", tenants=[], if_match="*").sharedWith == []
    key = sync_admin.create_key("bot", ["viewer"], tenant="acme", scope={"actions": ["catalog.read"]})
    assert [k.name for k in sync_admin.list_keys(tenant="acme").items] == ["bot"]
    assert sync_admin.revoke_key(key.id).revokedAt is not None
    events = list(sync_admin.audit("acme", limit=1))
    assert [e.action for e in events][-3:] == ["namespace.claim", "key.create", "key.revoke"]
    assert [e.hash for e in sync_admin.audit_export("acme")] == [e.hash for e in events]
    assert sync_admin.audit_verify("acme").ok
    assert sync_admin.audit_checkpoint("acme").items[0].tenant == "acme"


def _recording(seen: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"subject": "x", "kind": "service", "tenants": {}, "authentication": "required"}
        return httpx.Response(200, json=body)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_credentials_come_from_arguments_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTREG_TOKEN", raising=False)
    seen: list[httpx.Request] = []
    monkeypatch.setenv("AGENTREG_API_KEY", "agr_from_env")
    with Client(BASE, http_client=_recording(seen)) as client:
        client.whoami()
    with Client(BASE, http_client=_recording(seen), token="tok") as client:
        client.whoami()
    with Client(BASE, http_client=_recording(seen), api_key="") as client:  # "" means none at all
        client.whoami()
    assert [r.headers.get("authorization") for r in seen] == ["Bearer agr_from_env", "Bearer tok", None]
    with pytest.raises(ValueError, match="not both"):
        Client(BASE, api_key="a", token="b")
    monkeypatch.setenv("AGENTREG_TOKEN", "tok")
    with pytest.raises(ValueError, match="not both"):
        AsyncClient(BASE)


def test_rate_limited_error_carries_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "rate_limited", "message": "too many requests"}}
        return httpx.Response(429, json=body, headers={"retry-after": "7"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with Client(BASE, http_client=http) as client, pytest.raises(RateLimitedError) as limited:
        client.whoami()
    assert limited.value.status_code == 429 and limited.value.retry_after == 7.0


def test_rate_limited_by_the_server(tmp_data_dir: Path) -> None:
    secret = identity.new_secret()
    settings = Settings(auth="required", data_dir=tmp_data_dir, bootstrap_key=secret, rate_limit="1/m:1")
    with (
        TestClient(create_app(settings), base_url=BASE) as http,
        Client(BASE, http_client=http, api_key=secret) as client,
    ):
        client.whoami()
        with pytest.raises(RateLimitedError) as limited:
            client.whoami()
    assert limited.value.retry_after is not None and limited.value.retry_after >= 1
    assert json.loads(json.dumps(limited.value.body))["error"]["code"]
