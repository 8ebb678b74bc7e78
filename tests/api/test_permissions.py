"""Every role against every /v1 endpoint that has a permission today: allowed (2xx) or forbidden (403).

Real API keys over HTTP with ``AGENTREG_AUTH=required``: the bootstrap super-admin key creates a tenant,
claims its namespace, publishes and creates one key per tenant role, all through the API.

The full matrix (7 roles x 18 endpoints) runs on SQLite only, against one world built once per module
(and per xdist worker) in a private database, so it stays fast; every cell sets up what it consumes
(a fresh alias to delete, a fresh key to revoke, fresh names to claim). A sample of cells runs on both
backends through the ordinary ``store`` fixture (``test_sample_on_every_backend``).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from agentreg.api.app import create_app
from agentreg.config import Settings
from agentreg.services import identity
from agentreg.store import migrate
from agentreg.store.factory import create_store
from agentreg.store.interface import Store
from tests import factories as f

TENANT = "acme"
NS = "com.acme"
ROLES = ("super_admin", "tenant_admin", "developer", "operator", "analyst", "auditor", "viewer")
EVERYONE = frozenset(ROLES)

# Which roles may do each action, written out by hand (see tests/unit/test_permissions.py for every action).
MAY: dict[str, frozenset[str]] = {
    "catalog.read": EVERYONE,
    "version.publish": frozenset({"super_admin", "tenant_admin", "developer"}),
    "resource.annotate": frozenset({"super_admin", "tenant_admin", "developer"}),
    "alias.write": frozenset({"super_admin", "tenant_admin", "developer"}),
    "audit.read": frozenset({"super_admin", "tenant_admin", "auditor"}),
    "namespace.claim": frozenset({"super_admin", "tenant_admin"}),
    "namespace.share": frozenset({"super_admin", "tenant_admin"}),
    "key.manage": frozenset({"super_admin", "tenant_admin"}),
    "tenant.create": frozenset({"super_admin"}),
}


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


@dataclass
class World:
    client: httpx.AsyncClient
    root: dict[str, str]
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"


async def ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response


async def build_world(store: Store, data_dir: Path) -> World:
    """Tenant ``acme`` owning ``com.acme`` with a skill, an MCP server, an agent using both, and 7 keys."""
    app = create_app(Settings(auth="required", data_dir=data_dir), store=store)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test")
    created = await identity.bootstrap(store)
    assert created is not None
    world = World(client, bearer(created.secret))
    root = world.root
    await ok(await client.post("/v1/tenants", json={"id": TENANT}, headers=root))
    await ok(await client.post("/v1/namespaces", json={"name": NS, "tenant": TENANT}, headers=root))
    await ok(await client.post("/v1/skills", json=f.skill(), headers=root))
    await ok(await client.post("/v1/mcp-servers", json=f.mcp_server(), headers=root))
    config = {
        "mcpServers": [{"ref": f"mcp-server/{NS}/github@1.0.0"}],
        "skills": [{"ref": f"skill/{NS}/triage@^1"}],
    }
    await ok(await client.post("/v1/agents", json=f.agent("bot", config=config), headers=root))
    world.keys["super_admin"] = root
    for role in ROLES[1:]:
        body = {"name": f"{role} key", "tenant": TENANT, "roles": [role]}
        key = (await ok(await client.post("/v1/keys", json=body, headers=root))).json()
        world.keys[role] = bearer(key["key"])
    return world


# --- one call per endpoint: (world, the caller's headers) -> the status that decides allowed or not -------

Call = Callable[[World, dict[str, str]], Awaitable[int]]


async def get_version(w: World, h: dict[str, str]) -> int:
    return (await w.client.get(f"/v1/skills/{NS}/triage/versions/1.0.0", headers=h)).status_code


async def get_resource(w: World, h: dict[str, str]) -> int:
    return (await w.client.get(f"/v1/skills/{NS}/triage", headers=h)).status_code


async def list_resources(w: World, h: dict[str, str]) -> int:
    response = await w.client.get("/v1/skills", params={"namespace": NS}, headers=h)
    if response.status_code == 200:
        assert "triage" in [i["name"] for i in response.json()["items"]], response.text
    return response.status_code


async def get_resolved(w: World, h: dict[str, str]) -> int:
    response = await w.client.get(f"/v1/agents/{NS}/bot/versions/latest/resolved", headers=h)
    if response.status_code == 200:
        assert len(response.json()["dependencies"]) == 2
    return response.status_code


async def resolve_refs(w: World, h: dict[str, str]) -> int:
    response = await w.client.post("/v1/resolve", json={"refs": [f"skill/{NS}/triage@1.0.0"]}, headers=h)
    if response.status_code != 200:
        return response.status_code
    (item,) = response.json()["results"]
    return 200 if item["error"] is None else 403 if item["error"]["code"] == "forbidden" else 500


async def publish(w: World, h: dict[str, str]) -> int:
    return (await w.client.post("/v1/skills", json=f.skill(w.unique("pub-")), headers=h)).status_code


async def apply(w: World, h: dict[str, str]) -> int:
    response = await w.client.post("/v1/apply", json=[f.skill(w.unique("app-"))], headers=h)
    if response.status_code not in (200, 207):
        return response.status_code
    (item,) = response.json()["results"]
    if item["result"] == "created":
        assert response.status_code == 200
        return 200
    assert response.status_code == 207, response.text
    return 403 if item["error"]["code"] == "forbidden" else 500


async def annotate(w: World, h: dict[str, str]) -> int:
    patch = {"labels": {"touched": w.unique("v")}}
    return (
        await w.client.patch(
            f"/v1/skills/{NS}/triage",
            json=patch,
            headers={**h, "content-type": "application/merge-patch+json"},
        )
    ).status_code


async def alias_put(w: World, h: dict[str, str]) -> int:
    alias = w.unique("put-")
    return (
        await w.client.put(f"/v1/skills/{NS}/triage/aliases/{alias}", json={"version": "1.0.0"}, headers=h)
    ).status_code


async def alias_delete(w: World, h: dict[str, str]) -> int:
    path = f"/v1/skills/{NS}/triage/aliases/{w.unique('del-')}"
    await ok(await w.client.put(path, json={"version": "1.0.0"}, headers=w.root))
    return (await w.client.delete(path, headers=h)).status_code


async def audit_list(w: World, h: dict[str, str]) -> int:
    return (await w.client.get("/v1/audit", params={"tenant": TENANT}, headers=h)).status_code


async def audit_verify(w: World, h: dict[str, str]) -> int:
    response = await w.client.get("/v1/audit/verify", params={"tenant": TENANT}, headers=h)
    if response.status_code == 200:
        assert response.json()["ok"] is True
    return response.status_code


async def claim(w: World, h: dict[str, str]) -> int:
    body = {"name": w.unique("org.claimed-"), "tenant": TENANT}
    return (await w.client.post("/v1/namespaces", json=body, headers=h)).status_code


async def share(w: World, h: dict[str, str]) -> int:
    body = {"public": False, "tenants": []}
    return (await w.client.put(f"/v1/namespaces/{NS}/sharing", json=body, headers=h)).status_code


async def key_create(w: World, h: dict[str, str]) -> int:
    body = {"name": w.unique("made-"), "tenant": TENANT, "roles": ["viewer"]}
    return (await w.client.post("/v1/keys", json=body, headers=h)).status_code


async def key_list(w: World, h: dict[str, str]) -> int:
    return (await w.client.get("/v1/keys", params={"tenant": TENANT}, headers=h)).status_code


async def key_revoke(w: World, h: dict[str, str]) -> int:
    body = {"name": w.unique("doomed-"), "tenant": TENANT, "roles": ["viewer"]}
    victim = (await ok(await w.client.post("/v1/keys", json=body, headers=w.root))).json()
    response = await w.client.delete(f"/v1/keys/{victim['id']}", headers=h)
    after = await w.client.get("/v1/whoami", headers=bearer(victim["key"]))
    assert after.status_code == (401 if response.status_code == 200 else 200)
    return response.status_code


async def tenant_create(w: World, h: dict[str, str]) -> int:
    return (await w.client.post("/v1/tenants", json={"id": w.unique("t-")}, headers=h)).status_code


ENDPOINTS: dict[str, tuple[str, Call]] = {
    "GET version": ("catalog.read", get_version),
    "GET resource": ("catalog.read", get_resource),
    "GET list": ("catalog.read", list_resources),
    "GET resolved": ("catalog.read", get_resolved),
    "POST resolve": ("catalog.read", resolve_refs),
    "POST publish": ("version.publish", publish),
    "POST apply": ("version.publish", apply),
    "PATCH resource": ("resource.annotate", annotate),
    "PUT alias": ("alias.write", alias_put),
    "DELETE alias": ("alias.write", alias_delete),
    "GET audit": ("audit.read", audit_list),
    "GET audit/verify": ("audit.read", audit_verify),
    "POST namespaces": ("namespace.claim", claim),
    "PUT sharing": ("namespace.share", share),
    "POST keys": ("key.manage", key_create),
    "GET keys": ("key.manage", key_list),
    "DELETE keys": ("key.manage", key_revoke),
    "POST tenants": ("tenant.create", tenant_create),
}
CELLS = [(role, endpoint) for endpoint in ENDPOINTS for role in ROLES]


def expected_status(role: str, endpoint: str) -> str:
    action, _ = ENDPOINTS[endpoint]
    return "allowed" if role in MAY[action] else "forbidden"


def outcome(status: int) -> str:
    return "allowed" if 200 <= status < 300 else "forbidden" if status == 403 else f"unexpected {status}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """One SQLite database and world for this module (on this worker), separate from the shared ones."""
    directory = tmp_path_factory.mktemp("permissions")
    url = f"sqlite+aiosqlite:///{directory / 'agentreg.db'}"
    await migrate.upgrade(url)
    store = create_store(url)
    await store.start()
    try:
        the_world = await build_world(store, directory)
        yield the_world
        await the_world.client.aclose()
    finally:
        await store.close()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("role", "endpoint"), CELLS, ids=[f"{e}-{r}" for r, e in CELLS])
async def test_cell(world: World, role: str, endpoint: str) -> None:
    _, call = ENDPOINTS[endpoint]
    status = await call(world, world.keys[role])
    assert outcome(status) == expected_status(role, endpoint)


def test_every_tested_action_names_a_real_permission() -> None:
    from agentreg.domain.permissions import Action

    assert set(MAY) <= {a.value for a in Action}
    assert {action for action, _ in ENDPOINTS.values()} == set(MAY)


SAMPLE = [
    ("developer", "POST publish"),
    ("viewer", "POST publish"),
    ("operator", "PUT alias"),
    ("auditor", "GET audit"),
    ("analyst", "GET audit"),
    ("tenant_admin", "POST keys"),
    ("developer", "DELETE keys"),
    ("viewer", "GET resolved"),
    ("tenant_admin", "POST tenants"),
    ("super_admin", "POST tenants"),
]


@pytest.mark.parametrize(("role", "endpoint"), SAMPLE, ids=[f"{e}-{r}" for r, e in SAMPLE])
async def test_sample_on_every_backend(store: Store, tmp_path: Path, role: str, endpoint: str) -> None:
    world = await build_world(store, tmp_path)
    try:
        _, call = ENDPOINTS[endpoint]
        assert outcome(await call(world, world.keys[role])) == expected_status(role, endpoint)
    finally:
        await world.client.aclose()
