"""Request safety through the whole app: OIDC users, rate limits, Idempotency-Key, If-Match, strict bodies,
security headers — on both lanes where both serve the route."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import RSAKey

from agentreg.api.app import create_app
from agentreg.config import Settings
from agentreg.services import identity
from agentreg.services.oidc import OidcConfig, OidcVerifier, parse_role_map
from agentreg.store.sql import SqlStore
from tests import factories as f
from tests.services.test_oidc import AUDIENCE, NOW, ROLE_MAP, LocalIssuer

HOT = "/v1/skills/com.acme/triage/versions/1.0.0"


def client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test")  # type: ignore[arg-type]


@pytest.fixture
async def single_user(store: SqlStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client(create_app(Settings(data_dir=tmp_path), store=store)) as api:
        yield api


async def test_security_headers_on_both_lanes_and_on_errors(single_user: httpx.AsyncClient) -> None:
    assert (await single_user.post("/v1/skills", json=f.skill())).status_code == 201
    for path in (HOT, "/v1/skills/com.acme/triage", "/v1/skills/com.acme/nope/versions/1", "/v1/nowhere"):
        response = await single_user.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
        assert "default-src 'none'" in response.headers["content-security-policy"], path


async def test_idempotency_key_replays_the_stored_answer_and_refuses_another_body(
    single_user: httpx.AsyncClient,
) -> None:
    headers = {"idempotency-key": "publish-triage-1"}
    first = await single_user.post("/v1/skills", json=f.skill(), headers=headers)
    again = await single_user.post("/v1/skills", json=f.skill(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"]
    other = await single_user.post("/v1/skills", json=f.skill(version="2.0.0"), headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    fresh = await single_user.post(
        "/v1/skills", json=f.skill(version="2.0.0"), headers={"idempotency-key": "k2"}
    )
    assert fresh.status_code == 201
    too_long = await single_user.post("/v1/skills", json=f.skill(), headers={"idempotency-key": "x" * 300})
    assert too_long.status_code == 422


async def test_if_match_on_patch_and_alias_delete(single_user: httpx.AsyncClient) -> None:
    await single_user.post("/v1/skills", json=f.skill())
    resource = await single_user.get("/v1/skills/com.acme/triage")
    etag = resource.headers["etag"]
    patched = await single_user.patch(
        "/v1/skills/com.acme/triage", json={"labels": {"team": "a"}}, headers={"if-match": etag}
    )
    assert patched.status_code == 200 and patched.headers["etag"] != etag
    stale = await single_user.patch(
        "/v1/skills/com.acme/triage", json={"labels": {"team": "b"}}, headers={"if-match": etag}
    )
    assert stale.status_code == 412
    assert (await single_user.get("/v1/skills/com.acme/triage")).json()["labels"] == {"team": "a"}
    await single_user.put("/v1/skills/com.acme/triage/aliases/stable", json={"version": "1.0.0"})
    wrong = await single_user.delete(
        "/v1/skills/com.acme/triage/aliases/stable", headers={"if-match": '"9.9.9"'}
    )
    assert wrong.status_code == 412
    right = await single_user.delete(
        "/v1/skills/com.acme/triage/aliases/stable", headers={"if-match": '"1.0.0"'}
    )
    assert right.status_code == 204


async def test_identity_bodies_are_strict(single_user: httpx.AsyncClient) -> None:
    as_text = await single_user.post(
        "/v1/namespaces", content=b'{"name": "x"}', headers={"content-type": "text/plain"}
    )
    assert as_text.status_code == 415
    typo = await single_user.post("/v1/namespaces", json={"name": "com.x", "tennant": "default"})
    assert typo.status_code == 422 and typo.json()["error"]["details"][0]["field"] == "/tennant"
    deep = b'{"name": ' + b"[" * 100 + b"]" * 100 + b"}"
    assert (
        await single_user.post("/v1/namespaces", content=deep, headers={"content-type": "application/json"})
    ).status_code in (400, 422)
    assert (
        await single_user.post("/v1/namespaces", content=b"{", headers={"content-type": "application/json"})
    ).status_code == 400


async def test_rate_limits_answer_429_with_retry_after_on_both_lanes(store: SqlStore, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit_ip="3/m:3")
    async with client(create_app(settings, store=store)) as api:
        answers = [await api.get(path) for path in (HOT, "/v1/skills", HOT, "/v1/skills")]
    assert [a.status_code for a in answers][:3] == [404, 200, 404]
    assert answers[3].status_code == 429
    assert int(answers[3].headers["retry-after"]) >= 1
    assert answers[3].json()["error"]["code"] == "rate_limited"


async def test_failed_authentication_is_throttled_per_address(store: SqlStore, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth="required", auth_failure_limit="1/m:3")
    created = await identity.bootstrap(store)
    assert created is not None
    async with client(create_app(settings, store=store)) as api:
        guesses = [
            await api.get("/v1/skills", headers={"authorization": f"Bearer agr_{'A' * 42}{i}"})
            for i in range(5)
        ]
        assert [g.status_code for g in guesses] == [401, 401, 401, 429, 429]
        # Even the right key waits out the penalty from this address.
        right = await api.get("/v1/whoami", headers={"authorization": f"Bearer {created.secret}"})
        assert right.status_code == 429 and right.headers["retry-after"]


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    server = LocalIssuer()
    server.published = [RSAKey.generate_key(2048, {"kid": "k1"})]
    yield server
    server.stop()


async def test_oidc_users_get_roles_from_their_groups(
    store: SqlStore, tmp_path: Path, issuer: LocalIssuer
) -> None:
    config = OidcConfig(issuer=issuer.url, audience=AUDIENCE, role_map=parse_role_map(json.dumps(ROLE_MAP)))
    verifier = OidcVerifier(config, clock=lambda: NOW)
    app = create_app(Settings(data_dir=tmp_path, auth="required"), store=store, oidc=verifier)
    key = issuer.published[0]
    developer = issuer.token(key, "RS256", sub="dana", groups=["acme-devs"], preferred_username="dana")
    reader = issuer.token(key, "RS256", sub="gus", groups=["globex-readers"])
    async with client(app) as api:
        me = (await api.get("/v1/whoami", headers={"authorization": f"Bearer {developer}"})).json()
        assert (
            me["kind"] == "user" and me["tenants"] == {"acme": ["developer"]} and me["displayName"] == "dana"
        )
        root = (
            await api.get(
                "/v1/whoami",
                headers={"authorization": f"Bearer {issuer.token(key, 'RS256', groups=['root'])}"},
            )
        ).json()
        assert root["superAdmin"] is True
        now = datetime.now(UTC)
        async with store.begin() as tx:
            await tx.ensure_tenant("acme", "acme", now)
            await tx.claim_namespace("com.acme", "acme", now)
        published = await api.post(
            "/v1/skills", json=f.skill(), headers={"authorization": f"Bearer {developer}"}
        )
        assert published.status_code == 201, published.text
        hidden = await api.get(HOT, headers={"authorization": f"Bearer {reader}"})
        assert hidden.status_code == 404
        forged = developer[:-4] + ("AAAA" if not developer.endswith("AAAA") else "BBBB")
        assert (await api.get(HOT, headers={"authorization": f"Bearer {forged}"})).status_code == 401


async def test_a_created_key_is_never_replayed_from_the_idempotency_store(
    store: SqlStore, tmp_path: Path
) -> None:
    created = await identity.bootstrap(store)
    assert created is not None
    headers = {"authorization": f"Bearer {created.secret}", "idempotency-key": "make-ci-key"}
    body = {"name": "ci", "tenant": "acme", "roles": ["developer"]}
    async with client(create_app(Settings(data_dir=tmp_path, auth="required"), store=store)) as api:
        assert (
            await api.post(
                "/v1/tenants", json={"id": "acme"}, headers={"authorization": headers["authorization"]}
            )
        ).status_code == 201
        first = await api.post("/v1/keys", json=body, headers=headers)
        assert first.status_code == 201 and first.json()["key"].startswith("agr_")
        again = await api.post("/v1/keys", json=body, headers=headers)
        assert again.status_code == 409 and "agr_" not in again.text
        listed = await api.get(
            "/v1/keys", params={"tenant": "acme"}, headers={"authorization": headers["authorization"]}
        )
        assert len(listed.json()["items"]) == 1
    async with store.read() as tx:
        stored = await tx.get_idempotent(f"key:{created.row.id}", "make-ci-key")
    assert stored is not None and b"agr_" not in stored.body


async def test_auth_config_is_public(store: SqlStore, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        auth="required",
        oidc_issuer="https://id.example",
        oidc_audience="agentreg",
        oidc_client_id="cli",
    )
    async with client(create_app(settings, store=store)) as api:
        config = await api.get("/v1/auth/config")
    assert config.status_code == 200
    assert config.json() == {
        "authentication": "required",
        "issuer": "https://id.example",
        "audience": "agentreg",
        "clientId": "cli",
    }
