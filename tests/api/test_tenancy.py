"""Tenancy over HTTP: another tenant's objects are not found (never forbidden), sharing, claims, key limits.

With ``AGENTREG_AUTH=required`` and real API keys. Tenant ``alpha`` owns ``com.alpha`` (a skill with an
alias, an MCP server and an agent using both); ``beta`` owns ``org.beta``; ``gamma`` owns nothing.
A hidden object must answer exactly what a missing one does: same status, same headers, same body once
the names are swapped. The missing names have the same length as the real ones (``com.alpha`` /
``com.omega``, ``triage`` / ``nosuch``) and every request sends the same X-Request-Id, so even
Content-Length must match. Runs on both backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentreg.api.app import AgentRegApp, create_app
from agentreg.config import Settings
from agentreg.services import identity
from agentreg.store.interface import Store
from tests import factories as f

A, B, C = "alpha", "beta", "gamma"
NS_A, NS_B = "com.alpha", "org.beta"
MISSING_NS = "com.omega"  # same length as NS_A
MISSING_TENANT = "omega"  # same length as A
REQUEST_ID = "tenancy-test"


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}", "x-request-id": REQUEST_ID}


@dataclass
class World:
    app: AgentRegApp
    client: httpx.AsyncClient
    store: Store
    root: dict[str, str]
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)

    async def call(
        self, who: str, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        if who != "root" and who not in self.keys:  # keys are made on first use: each costs a write
            tenant, role = who.split("_")
            key = await self.make_key(tenant, ["tenant_admin" if role == "admin" else role])
            self.keys[who], self.key_ids[who] = bearer(key["key"]), key["id"]
        auth = self.root if who == "root" else self.keys[who]
        return await self.client.request(method, path, json=json, headers={**auth, **(headers or {})})

    async def make_key(self, tenant: str | None, roles: list[str], **extra: Any) -> dict[str, Any]:
        body = {"name": f"{tenant}-{'-'.join(roles)}", "tenant": tenant, "roles": roles, **extra}
        response = await self.client.post("/v1/keys", json=body, headers=self.root)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def share(self, namespace: str, public: bool = False, tenants: tuple[str, ...] = ()) -> None:
        body = {"public": public, "tenants": list(tenants)}
        response = await self.client.put(f"/v1/namespaces/{namespace}/sharing", json=body, headers=self.root)
        assert response.status_code == 200, response.text


def ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response


def agent_using(namespace: str, name: str = "bot", **refs: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if "mcp" in refs:
        config["mcpServers"] = [{"ref": refs["mcp"]}]
    if "skill" in refs:
        config["skills"] = [{"ref": refs["skill"]}]
    return f.agent(name, namespace=namespace, config=config)


@pytest.fixture
async def world(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    app = create_app(Settings(auth="required", data_dir=tmp_path), store=store)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test")
    created = await identity.bootstrap(store)
    assert created is not None
    w = World(app, client, store, bearer(created.secret))
    for tenant in (A, B, C):
        ok(await client.post("/v1/tenants", json={"id": tenant}, headers=w.root))
    for namespace, tenant in ((NS_A, A), (NS_B, B)):
        ok(await client.post("/v1/namespaces", json={"name": namespace, "tenant": tenant}, headers=w.root))
    ok(await w.call("alpha_admin", "POST", "/v1/skills", f.skill(namespace=NS_A)))
    ok(await w.call("alpha_admin", "POST", "/v1/mcp-servers", f.mcp_server(namespace=NS_A)))
    bot = agent_using(NS_A, mcp=f"mcp-server/{NS_A}/github@1.0.0", skill=f"skill/{NS_A}/triage@^1")
    ok(await w.call("alpha_admin", "POST", "/v1/agents", bot))
    ok(await w.call("alpha_admin", "PUT", f"/v1/skills/{NS_A}/triage/aliases/stable", {"version": "1.0.0"}))
    try:
        yield w
    finally:
        await client.aclose()


# --- hidden is indistinguishable from missing ----------------------------------------------------------------

# (method, path, body); {ns}, {name}, {tenant} and {key} are filled with a real foreign object or a missing one.
HIDDEN: list[tuple[str, str, Any]] = [
    ("GET", "/v1/skills/{ns}/{name}", None),
    ("PATCH", "/v1/skills/{ns}/{name}", {"labels": {"x": "y"}}),
    ("GET", "/v1/skills/{ns}/{name}/versions", None),
    ("GET", "/v1/skills/{ns}/{name}/versions/1.0.0", None),  # fast lane
    ("GET", "/v1/skills/{ns}/{name}/versions/latest", None),  # fast lane
    ("GET", "/v1/skills/{ns}/{name}/versions/stable", None),  # fast lane, alias
    ("GET", "/v1/skills/{ns}/{name}/versions/^1", None),  # fast lane, range
    ("GET", "/v1/skills/{ns}/{name}/versions/1.0.0?via=fastapi", None),  # query string: FastAPI
    ("HEAD", "/v1/skills/{ns}/{name}/versions/1.0.0", None),
    ("HEAD", "/v1/skills/{ns}/{name}/versions/stable", None),
    ("GET", "/v1/agents/{ns}/bot/versions/latest/resolved", None),  # fast lane
    ("GET", "/v1/agents/{ns}/bot/versions/1.0.0/resolved?via=fastapi", None),
    ("HEAD", "/v1/agents/{ns}/bot/versions/latest/resolved", None),
    ("GET", "/v1/mcp-servers/{ns}/github/versions/1.0.0", None),
    ("GET", "/v1/skills/{ns}/{name}/aliases", None),
    ("GET", "/v1/skills/{ns}/{name}/aliases/stable", None),
    ("PUT", "/v1/skills/{ns}/{name}/aliases/canary", {"version": "1.0.0"}),
    ("DELETE", "/v1/skills/{ns}/{name}/aliases/stable", None),
    ("GET", "/v1/namespaces/{ns}", None),
    ("PUT", "/v1/namespaces/{ns}/sharing", {"public": True, "tenants": []}),
    ("GET", "/v1/keys?tenant={tenant}", None),
    ("POST", "/v1/keys", {"name": "x", "tenant": "{tenant}", "roles": ["viewer"]}),
    ("DELETE", "/v1/keys/{key}", None),
    ("GET", "/v1/audit?tenant={tenant}", None),
    ("GET", "/v1/audit/verify?tenant={tenant}", None),
    ("POST", "/v1/audit/checkpoints?tenant={tenant}", None),
    ("POST", "/v1/namespaces", {"name": "org.new", "tenant": "{tenant}"}),
]
REAL = {"ns": NS_A, "name": "triage", "tenant": A}


def fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def normalized(response: httpx.Response, values: dict[str, str]) -> tuple[int, dict[str, str], str]:
    text = response.text
    for placeholder, value in values.items():
        text = text.replace(value, "{" + placeholder + "}")
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "server")}
    return response.status_code, headers, text


@pytest.mark.parametrize("who", ["beta_admin", "beta_developer"])
async def test_another_tenants_objects_look_exactly_like_missing_ones(world: World, who: str) -> None:
    real = {**REAL, "key": world.key_ids["alpha_admin"]}
    missing_ns = {**real, "ns": MISSING_NS, "tenant": MISSING_TENANT, "key": "k0123456789abcdef"}
    missing_name = {**real, "name": "nosuch"}
    assert len(real["key"]) == len(missing_ns["key"])
    problems = []
    for method, path, body in HIDDEN:
        for other in (missing_ns, missing_name):
            if other is missing_name and "{name}" not in path:
                continue
            hidden = await world.call(who, method, fill(path, real), fill(body, real))
            absent = await world.call(who, method, fill(path, other), fill(body, other))
            if hidden.status_code != 404:
                problems.append(f"{method} {path}: {hidden.status_code} {hidden.text}")
            elif normalized(hidden, real) != normalized(absent, other):
                problems.append(
                    f"{method} {path}: hidden {normalized(hidden, real)} != missing {normalized(absent, other)}"
                )
    assert not problems, "\n".join(problems)
    # The owner still has all of it.
    ok(await world.call("alpha_developer", "GET", f"/v1/skills/{NS_A}/triage/versions/stable"))


async def test_publishing_into_another_tenants_namespace_looks_like_an_unclaimed_one(world: World) -> None:
    """A developer cannot claim, so an unclaimed namespace and a foreign one must read the same."""
    for kind, document in (("skills", f.skill), ("models", f.model)):
        hidden = await world.call("beta_developer", "POST", f"/v1/{kind}", document(namespace=NS_A))
        absent = await world.call("beta_developer", "POST", f"/v1/{kind}", document(namespace=MISSING_NS))
        assert hidden.status_code == 404, hidden.text
        assert normalized(hidden, {"ns": NS_A}) == normalized(absent, {"ns": MISSING_NS})
    # A tenant admin publishing there is refused the same way (not 403, not a claim).
    assert (await world.call("beta_admin", "POST", "/v1/skills", f.skill(namespace=NS_A))).status_code == 404


async def test_apply_and_batch_resolve_hide_other_tenants(world: World) -> None:
    for who in ("beta_developer", "beta_admin"):
        resolved = await world.call(
            who,
            "POST",
            "/v1/resolve",
            {"refs": [f"skill/{NS_A}/triage@1.0.0", f"skill/{MISSING_NS}/triage@1.0.0"]},
        )
        hidden, absent = ok(resolved).json()["results"]
        assert hidden["error"]["code"] == "not_found"
        assert hidden["error"]["message"].replace(NS_A, "{ns}") == absent["error"]["message"].replace(
            MISSING_NS, "{ns}"
        )
    applied = await world.call(
        "beta_developer",
        "POST",
        "/v1/apply",
        [f.skill(namespace=NS_A, version="2.0.0"), f.skill(namespace=MISSING_NS, version="2.0.0")],
    )
    assert applied.status_code == 207
    hidden, absent = applied.json()["results"]
    assert hidden["error"]["code"] == absent["error"]["code"] == "not_found"
    assert hidden["error"]["message"].replace(NS_A, "{ns}") == absent["error"]["message"].replace(
        MISSING_NS, "{ns}"
    )
    dry = await world.client.post(
        "/v1/apply",
        params={"dryRun": "true"},
        json=[f.skill(namespace=NS_A)],
        headers=world.keys["beta_developer"],
    )
    assert dry.json()["results"][0]["error"]["code"] == "not_found"


async def test_lists_only_show_what_the_tenant_can_see(world: World) -> None:
    ok(await world.call("beta_admin", "POST", "/v1/skills", f.skill(namespace=NS_B)))
    listed = ok(await world.call("beta_admin", "GET", "/v1/skills")).json()["items"]
    assert [(i["namespace"], i["name"]) for i in listed] == [(NS_B, "triage")]
    assert ok(await world.call("beta_admin", "GET", f"/v1/skills?namespace={NS_A}")).json()["items"] == []
    namespaces = ok(await world.call("beta_admin", "GET", "/v1/namespaces")).json()["items"]
    assert [n["name"] for n in namespaces] == [NS_B]
    tenants = ok(await world.call("beta_admin", "GET", "/v1/tenants")).json()["items"]
    assert [t["id"] for t in tenants] == [B]
    everything = ok(await world.call("root", "GET", "/v1/skills")).json()["items"]
    assert {i["namespace"] for i in everything} == {NS_A, NS_B}


# --- sharing ------------------------------------------------------------------------------------------------

VERSION = f"/v1/skills/{NS_A}/triage/versions/1.0.0"
RESOLVED = f"/v1/agents/{NS_A}/bot/versions/latest/resolved"


async def test_a_public_namespace_is_readable_by_every_tenant(world: World) -> None:
    await world.share(NS_A, public=True)
    for who in ("beta_developer", "gamma_admin", "gamma_developer"):
        ok(await world.call(who, "GET", VERSION))
        ok(await world.call(who, "GET", VERSION + "?via=fastapi"))
        assert (await world.call(who, "HEAD", VERSION)).status_code == 200
        assert len(ok(await world.call(who, "GET", RESOLVED)).json()["dependencies"]) == 2
        ok(await world.call(who, "GET", f"/v1/namespaces/{NS_A}"))
        listed = ok(await world.call(who, "GET", "/v1/skills")).json()["items"]
        assert (NS_A, "triage") in [(i["namespace"], i["name"]) for i in listed]


async def test_a_named_grant_is_readable_by_that_tenant_only(world: World) -> None:
    await world.share(NS_A, tenants=(B,))
    ok(await world.call("beta_developer", "GET", VERSION))
    ok(await world.call("beta_developer", "GET", RESOLVED))
    ok(await world.call("beta_developer", "GET", f"/v1/skills/{NS_A}/triage"))
    for path in (VERSION, RESOLVED, f"/v1/skills/{NS_A}/triage", f"/v1/namespaces/{NS_A}"):
        assert (await world.call("gamma_admin", "GET", path)).status_code == 404, path
    seen = ok(await world.call("beta_admin", "GET", f"/v1/namespaces/{NS_A}")).json()
    assert seen["tenant"] == A and seen["sharedWith"] == [B] and seen["public"] is False


@pytest.mark.parametrize("grant", ["public", "named"])
async def test_a_grant_never_allows_writes(world: World, grant: str) -> None:
    await world.share(NS_A, public=grant == "public", tenants=(B,) if grant == "named" else ())
    writes: list[tuple[str, str, Any]] = [
        ("POST", "/v1/skills", f.skill(namespace=NS_A, version="9.0.0")),
        ("PATCH", f"/v1/skills/{NS_A}/triage", {"labels": {"x": "y"}}),
        ("PUT", f"/v1/skills/{NS_A}/triage/aliases/canary", {"version": "1.0.0"}),
        ("DELETE", f"/v1/skills/{NS_A}/triage/aliases/stable", None),
        ("PUT", f"/v1/namespaces/{NS_A}/sharing", {"public": True, "tenants": []}),
    ]
    for who in ("beta_admin", "beta_developer"):
        for method, path, body in writes:
            response = await world.call(who, method, path, body)
            assert response.status_code == 403, (who, method, path, response.text)
        applied = await world.call(who, "POST", "/v1/apply", [f.skill(namespace=NS_A, version="9.0.0")])
        assert applied.json()["results"][0]["error"]["code"] == "forbidden"
    # Claiming a namespace someone else holds is a conflict, shared or not.
    assert (await world.call("beta_admin", "POST", "/v1/namespaces", {"name": NS_A})).status_code == 409
    ok(await world.call("alpha_developer", "GET", f"/v1/skills/{NS_A}/triage/versions/stable"))


async def test_revoking_a_grant_hides_the_namespace_again_and_the_cache_follows(world: World) -> None:
    await world.share(NS_A, tenants=(B,))
    for _ in range(2):  # the second answer comes from the fast lane's cache
        ok(await world.call("beta_developer", "GET", VERSION))
        ok(await world.call("beta_developer", "GET", RESOLVED))
        assert (await world.call("beta_developer", "HEAD", VERSION)).status_code == 200
    await world.share(NS_A)  # nobody
    for path in (VERSION, RESOLVED, f"/v1/skills/{NS_A}/triage", f"/v1/namespaces/{NS_A}"):
        response = await world.call("beta_developer", "GET", path)
        assert response.status_code == 404, (path, response.text)
    assert (await world.call("beta_developer", "HEAD", VERSION)).status_code == 404
    resolved = await world.call("beta_developer", "POST", "/v1/resolve", {"refs": [f"skill/{NS_A}/triage"]})
    assert resolved.json()["results"][0]["error"]["code"] == "not_found"
    # Public then private again, read through the cache in between.
    await world.share(NS_A, public=True)
    ok(await world.call("gamma_developer", "GET", VERSION))
    ok(await world.call("gamma_developer", "GET", VERSION))
    await world.share(NS_A)
    assert (await world.call("gamma_developer", "GET", VERSION)).status_code == 404


async def test_refs_into_a_shared_namespace_resolve_and_into_a_hidden_one_do_not(world: World) -> None:
    await world.client.post(
        "/v1/namespaces", json={"name": "com.alpha.private", "tenant": A}, headers=world.root
    )
    ok(
        await world.call(
            "alpha_admin", "POST", "/v1/mcp-servers", f.mcp_server("vault", namespace="com.alpha.private")
        )
    )
    await world.share(NS_A, tenants=(B,))
    shared = agent_using(NS_B, "uses-shared", mcp=f"mcp-server/{NS_A}/github@1.0.0")
    hidden = agent_using(NS_B, "uses-hidden", mcp="mcp-server/com.alpha.private/vault@1.0.0")
    missing = agent_using(NS_B, "uses-missing", mcp="mcp-server/com.alpha.nothing/vault@1.0.0")
    for document in (shared, hidden, missing):
        ok(await world.call("beta_developer", "POST", "/v1/agents", document))
    for path in ("/v1/agents/org.beta/uses-shared/versions/latest/resolved",) * 2:
        resolved = ok(await world.call("beta_developer", "GET", path)).json()
        (dependency,) = resolved["dependencies"]
        assert (dependency["namespace"], dependency["name"], dependency["version"]) == (
            NS_A,
            "github",
            "1.0.0",
        )
    for fast in ("", "?via=fastapi"):
        path = f"/v1/agents/org.beta/uses-hidden/versions/latest/resolved{fast}"
        unresolved = await world.call("beta_developer", "GET", path)
        assert unresolved.status_code == 409, unresolved.text
        assert unresolved.json()["error"]["code"] == "unresolved_ref"
        gone = await world.call("beta_developer", "GET", path.replace("hidden", "missing"))
        assert unresolved.json()["error"]["details"][0]["issue"].replace(
            "com.alpha.private", "{ns}"
        ) == gone.json()["error"]["details"][0]["issue"].replace("com.alpha.nothing", "{ns}")
    # Revoking the grant unresolves the ref, straight away, through the cache.
    await world.share(NS_A)
    after = await world.call(
        "beta_developer", "GET", "/v1/agents/org.beta/uses-shared/versions/latest/resolved"
    )
    assert after.status_code == 409, after.text


# --- claims ---------------------------------------------------------------------------------------------------


async def test_claims(world: World) -> None:
    taken = await world.call("beta_admin", "POST", "/v1/namespaces", {"name": NS_A})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
    assert (await world.call("alpha_admin", "POST", "/v1/namespaces", {"name": NS_A})).status_code == 200
    fresh = await world.call("beta_admin", "POST", "/v1/namespaces", {"name": "org.beta.fresh"})
    assert fresh.status_code == 201 and fresh.json()["tenant"] == B
    again = await world.call("beta_admin", "POST", "/v1/namespaces", {"name": "org.beta.fresh"})
    assert again.status_code == 200
    assert (
        await world.call("alpha_admin", "POST", "/v1/namespaces", {"name": "org.beta.fresh"})
    ).status_code == 409
    # A developer may not claim, but a foreign name is still a conflict only for those who may claim.
    assert (
        await world.call("beta_developer", "POST", "/v1/namespaces", {"name": "org.other"})
    ).status_code == 403


# --- key scopes, revocation, expiry, authentication -----------------------------------------------------------


async def test_a_key_scoped_to_one_namespace_cannot_publish_to_another(world: World) -> None:
    ok(
        await world.client.post(
            "/v1/namespaces", json={"name": "com.alpha.y", "tenant": A}, headers=world.root
        )
    )
    key = await world.make_key(A, ["developer"], scope={"namespaces": [NS_A]})
    scoped = bearer(key["key"])
    ok(await world.client.post("/v1/skills", json=f.skill("x", namespace=NS_A), headers=scoped))
    refused = await world.client.post(
        "/v1/skills", json=f.skill("y", namespace="com.alpha.y"), headers=scoped
    )
    assert refused.status_code == 403, refused.text
    unclaimed = await world.client.post(
        "/v1/skills", json=f.skill("z", namespace="com.alpha.z"), headers=scoped
    )
    assert unclaimed.status_code == 404, unclaimed.text


async def test_a_read_only_scoped_key_cannot_publish(world: World) -> None:
    key = await world.make_key(A, ["developer"], scope={"actions": ["catalog.read"]})
    scoped = bearer(key["key"])
    ok(await world.client.get(VERSION, headers=scoped))
    refused = await world.client.post(
        "/v1/skills", json=f.skill(version="2.0.0", namespace=NS_A), headers=scoped
    )
    assert refused.status_code == 403, refused.text
    alias = await world.client.put(
        f"/v1/skills/{NS_A}/triage/aliases/canary", json={"version": "1.0.0"}, headers=scoped
    )
    assert alias.status_code == 403


async def test_a_revoked_key_is_refused_at_once_on_both_lanes(world: World) -> None:
    key = await world.make_key(A, ["developer"])
    auth = bearer(key["key"])
    for _ in range(2):  # cached by the authenticator
        ok(await world.client.get(VERSION, headers=auth))
        ok(await world.client.get(f"/v1/skills/{NS_A}/triage", headers=auth))
    ok(await world.client.delete(f"/v1/keys/{key['id']}", headers=world.root))
    for path in (VERSION, f"/v1/skills/{NS_A}/triage", "/v1/whoami"):
        response = await world.client.get(path, headers=auth)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await world.client.head(VERSION, headers=auth)).status_code == 401


async def test_a_key_revoked_through_another_replica_is_refused_within_a_second(
    world: World, tmp_path: Path
) -> None:
    """Two apps on one database: the other replica re-checks a cached key once it is a second old.

    (On the replica that revoked it the key stops at once; see the test above. The clock is faked.)
    """
    other = create_app(Settings(auth="required", data_dir=tmp_path / "other"), store=world.store)
    now = [1000.0]
    other.authenticator.keys.clock = lambda: now[0]
    replica = httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://agentreg.test")
    async with replica:
        key = await world.make_key(A, ["developer"])
        auth = bearer(key["key"])
        ok(await replica.get(VERSION, headers=auth))
        ok(await replica.get("/v1/whoami", headers=auth))
        ok(await world.client.delete(f"/v1/keys/{key['id']}", headers=world.root))
        await asyncio.sleep(0.05)  # PostgreSQL: let the change notification arrive
        now[0] += 1.01
        assert (await replica.get("/v1/whoami", headers=auth)).status_code == 401
        assert (await replica.get(VERSION, headers=auth)).status_code == 401


async def test_an_expired_key_is_refused(world: World) -> None:
    created = await identity.create_key(
        world.store,
        identity.principal_of(
            await _key_row(world, world.key_ids["alpha_admin"])  # the tenant admin creates it
        ),
        name="short-lived",
        tenant=A,
        roles=["developer"],
        expires_at=datetime.now(UTC) + timedelta(seconds=0.6),
    )
    auth = bearer(created.secret)
    ok(await world.client.get(VERSION, headers=auth))
    ok(await world.client.get("/v1/whoami", headers=auth))  # now cached
    await asyncio.sleep(0.7)
    for path in (VERSION, "/v1/whoami"):
        response = await world.client.get(path, headers=auth)
        assert response.status_code == 401, response.text
        assert "expired" in response.json()["error"]["message"]
        assert response.headers["www-authenticate"].startswith("Bearer")
    past = await world.client.post(
        "/v1/keys",
        json={"name": "past", "tenant": A, "roles": ["viewer"], "expiresAt": "2000-01-01T00:00:00Z"},
        headers=world.root,
    )
    assert past.status_code == 422


async def _key_row(world: World, key_id: str) -> Any:
    async with world.store.read() as tx:
        return await tx.get_api_key(key_id)


async def test_no_credentials_is_401_with_a_challenge(store: Store, tmp_path: Path) -> None:
    app = create_app(Settings(auth="required", data_dir=tmp_path), store=store)
    paths = [
        VERSION,
        VERSION + "?via=fastapi",
        RESOLVED,
        f"/v1/skills/{NS_A}/triage",
        "/v1/skills",
        "/v1/whoami",
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test"
    ) as api:
        bad = ({"authorization": "Bearer agr_" + "x" * 43}, {"authorization": "Basic Zm9vOmJhcg=="})
        for path in paths:
            # Failed authentications are throttled per address (10 in a burst): bad ones on two paths only.
            for headers in ({}, *(bad if path in (VERSION, "/v1/whoami") else ())):
                response = await api.get(path, headers=headers)
                assert response.status_code == 401, (path, headers, response.text)
                assert response.json()["error"]["code"] == "unauthenticated"
                assert response.headers["www-authenticate"] == 'Bearer realm="agentreg"'
            head = await api.head(VERSION)
            assert head.status_code == 401 and head.headers["www-authenticate"] == 'Bearer realm="agentreg"'
        assert (await api.post("/v1/skills", json=f.skill(namespace=NS_A))).status_code == 401
        assert (await api.post("/v1/namespaces", json={"name": NS_A})).status_code == 401


async def test_single_user_mode_needs_no_credentials(store: Store, tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path), store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test"
    ) as api:
        assert (await api.post("/v1/skills", json=f.skill())).status_code == 201
        assert (await api.get(f"/v1/skills/{f.NS}/triage/versions/1.0.0")).status_code == 200
        assert (await api.get(f"/v1/skills/{f.NS}/triage/versions/1.0.0?x=1")).status_code == 200
        me = (await api.get("/v1/whoami")).json()
        assert me["subject"] == "anonymous" and me["tenants"] == {"default": ["tenant_admin"]}
        assert (
            await api.get("/v1/whoami", headers={"authorization": "Bearer agr_" + "x" * 43})
        ).status_code == 401


async def test_a_shared_reader_resolves_under_the_owners_policy(world: World) -> None:
    """The owner's policy decides how its shared resources resolve, for every reader (on PostgreSQL, row-level
    security lets a grantee read the owner's policy rows; the API still shows the document to members only)."""
    await world.share(NS_A, tenants=(B,))
    policy = {
        "apiVersion": "agentreg.dev/v1",
        "kind": "Policy",
        "spec": {
            "environments": {"prod": {"states": ["certified"]}},
            "deny": [{"name": f"{NS_A}/triage", "versions": "<1.0.1"}],
        },
    }
    ok(await world.call("alpha_admin", "PUT", "/v1/policy", policy))
    for who in ("alpha_developer", "beta_developer"):
        for query in ("?environment=prod", "?environment=prod&via=fastapi"):
            refused = await world.call(who, "GET", f"/v1/mcp-servers/{NS_A}/github/versions/latest{query}")
            assert refused.status_code == 409, (who, refused.text)
            assert refused.json()["error"]["code"] == "not_admitted"
        denied = await world.call(who, "GET", f"/v1/skills/{NS_A}/triage/versions/latest")
        assert denied.status_code == 409 and "deny.0" in denied.text, (who, denied.text)
        check = ok(await world.call(who, "POST", "/v1/governance/check", {"ref": f"skill/{NS_A}/triage@^1"}))
        assert check.json()["allowed"] is False
    assert (await world.call("beta_admin", "GET", "/v1/policy?tenant=alpha")).status_code == 404
