"""/v1/sources and /v1/deployments over HTTP, with ``AGENTREG_AUTH=required`` and real API keys.

Tenant ``acme`` owns a published agent and a source whose rows the real ``Reconciler`` wrote (linked, drifted,
unregistered, a non-catalog object and an orphan); ``other`` is a stranger. Runs on both backends.
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
from agentreg.domain.sources import parse_source
from agentreg.services import identity
from agentreg.store.interface import AuditQuery, Store
from agentreg.store.inventory import new_source
from tests.services.test_inventory_service import NOW, SOURCE, seed

KEYS = {
    "admin": ("acme", "tenant_admin"),
    "operator": ("acme", "operator"),
    "developer": ("acme", "developer"),
    "viewer": ("acme", "viewer"),
    "stranger": ("other", "tenant_admin"),
}


@dataclass
class World:
    client: httpx.AsyncClient
    store: Store
    root: dict[str, str]
    ids: dict[str, int] = field(default_factory=dict)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)

    async def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if who not in self.keys:
            tenant, role = KEYS[who]
            body = {"name": who, "tenant": tenant, "roles": [role]}
            made = await self.client.post("/v1/keys", json=body, headers=self.root)
            assert made.status_code == 201, made.text
            self.keys[who] = {"authorization": f"Bearer {made.json()['key']}"}
        headers = {**self.keys[who], **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def world(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    app = create_app(
        Settings(auth="required", data_dir=tmp_path, discovery=False, sources_root=Path("/")), store=store
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test")
    created = await identity.bootstrap(store)
    assert created is not None
    root = {"authorization": f"Bearer {created.secret}"}
    for tenant in ("acme", "other"):
        response = await client.post("/v1/tenants", json={"id": tenant}, headers=root)
        assert response.status_code == 201, response.text
    w = World(client, store, root)
    w.ids = await seed(store)
    try:
        yield w
    finally:
        await client.aclose()


def names(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["object"]["name"] for item in response.json()["items"]}


# --- sources ---------------------------------------------------------------------------------------------


async def test_members_list_sources_with_status_and_counts(world: World) -> None:
    response = await world.call("viewer", "GET", "/v1/sources")
    assert response.status_code == 200, response.text
    [source] = response.json()["items"]
    assert (source["name"], source["tenant"], source["managedBy"], source["type"]) == (
        "prod-eu",
        "acme",
        "api",
        "kubernetes",
    )
    assert source["counts"]["total"] == 5 and source["counts"]["drift"] == 1 and source["error"] is None
    assert (await world.call("stranger", "GET", "/v1/sources")).json()["items"] == []
    one = await world.call("viewer", "GET", "/v1/sources/prod-eu")
    assert one.status_code == 200 and one.headers["etag"]


async def test_an_operator_creates_replaces_syncs_and_deletes_a_source(world: World) -> None:
    manifests = {"name": "lab", "type": "manifests", "path": "catalog"}
    refused = await world.call("operator", "POST", "/v1/sources", json=manifests)
    assert refused.status_code == 403  # a manifests source publishes: an operator may not
    in_cluster = {"name": "lab", "type": "kubernetes", "inCluster": True}
    refused = await world.call("admin", "POST", "/v1/sources", json=in_cluster)
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "/inCluster"
    body = {"name": "lab", "type": "kubernetes", "kubeconfig": "kubeconfig"}
    created = await world.call("operator", "POST", "/v1/sources", json=body)
    assert created.status_code == 201, created.text
    assert (
        created.json()["config"]["kubeconfig"] == "/acme/kubeconfig"
    )  # under the root, in its tenant's directory
    assert created.json()["tenant"] == "acme" and created.json()["state"] == "pending"
    again = await world.call("operator", "POST", "/v1/sources", json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    replaced = await world.call("operator", "PUT", "/v1/sources/lab", json={**body, "resync": "30s"})
    assert replaced.status_code == 200 and replaced.json()["config"]["resync"] == "30s"
    yaml_body = "type: manifests\npath: other\n"
    put_new = await world.call(
        "admin", "PUT", "/v1/sources/lab2", content=yaml_body, headers={"content-type": "application/yaml"}
    )
    assert put_new.status_code == 201 and put_new.json()["name"] == "lab2"
    synced = await world.call("operator", "POST", "/v1/sources/lab/sync")
    assert synced.status_code == 202 and synced.json()["name"] == "lab"
    assert (await world.call("operator", "DELETE", "/v1/sources/lab")).status_code == 204
    assert (await world.call("viewer", "GET", "/v1/sources/lab")).status_code == 404
    async with world.store.read() as tx:
        events = [e.event.action for e in await tx.list_audit(AuditQuery("acme", limit=100))]
    assert {"source.put", "source.sync", "source.delete"} <= set(events)


@pytest.mark.parametrize("who", ["viewer", "developer"])
async def test_readers_may_not_manage_sources(world: World, who: str) -> None:
    for method, path, body in (
        ("POST", "/v1/sources", {"name": "lab", "type": "manifests", "path": "srv"}),
        ("PUT", "/v1/sources/prod-eu", SOURCE),
        ("POST", "/v1/sources/prod-eu/sync", None),
        ("DELETE", "/v1/sources/prod-eu", None),
    ):
        response = await world.call(who, method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)


async def test_another_tenants_source_is_not_found_and_its_name_is_taken(world: World) -> None:
    for method, path in (
        ("GET", "/v1/sources/prod-eu"),
        ("POST", "/v1/sources/prod-eu/sync"),
        ("DELETE", "/v1/sources/prod-eu"),
    ):
        hidden = await world.call("stranger", method, path)
        missing = await world.call("stranger", method, path.replace("prod-eu", "nosuch"))
        assert hidden.status_code == missing.status_code == 404
        assert (
            hidden.json()["error"]["message"].replace("prod-eu", "nosuch")
            == missing.json()["error"]["message"]
        )
    taken = await world.call("stranger", "PUT", "/v1/sources/prod-eu", json=SOURCE)
    assert taken.status_code == 409 and "acme" not in taken.text


async def test_bad_source_configuration_is_a_422_naming_the_field(world: World) -> None:
    response = await world.call(
        "operator", "POST", "/v1/sources", json={"name": "lab", "type": "kubernetes", "allowCIDRs": ["nope"]}
    )
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert {"/allowCIDRs/0", "/kubeconfig"} <= fields
    mismatch = await world.call("operator", "PUT", "/v1/sources/lab", json={**SOURCE, "name": "other"})
    assert mismatch.status_code == 422 and mismatch.json()["error"]["details"][0]["field"] == "/name"


async def test_a_file_managed_source_refuses_api_changes(world: World) -> None:
    config = parse_source({"name": "from-file", "type": "manifests", "path": "srv", "tenant": "acme"})
    async with world.store.begin() as tx:
        await tx.put_source(new_source(config, "file", "config:AGENTREG_SOURCES", NOW))
    put = await world.call("admin", "PUT", "/v1/sources/from-file", json={"type": "manifests", "path": "x"})
    delete = await world.call("admin", "DELETE", "/v1/sources/from-file")
    for response in (put, delete):
        assert response.status_code == 409 and "AGENTREG_SOURCES" in response.json()["error"]["message"]
    listed = await world.call("viewer", "GET", "/v1/sources/from-file")
    assert listed.json()["managedBy"] == "file"
    assert (await world.call("operator", "POST", "/v1/sources/from-file/sync")).status_code == 202


# --- deployments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"linked", "drifted", "shadow", "openai", "gone"}),
        ("?drift=true", {"drifted"}),
        ("?unregistered=true", {"shadow"}),
        ("?drift=true&unregistered=true", {"drifted", "shadow"}),
        ("?orphaned=true", {"gone"}),
        ("?orphaned=false&kind=agent", {"linked", "drifted", "shadow"}),
        ("?health=warning", {"openai"}),
        (
            "?cluster=prod-eu&environment=prod&source=prod-eu&kind=agent",
            {"linked", "drifted", "shadow", "gone"},
        ),
        ("?environment=dev", set()),
        ("?resource=agent/com.acme/support-bot", {"linked", "drifted", "gone"}),
    ],
)
async def test_deployments_filters(world: World, query: str, expected: set[str]) -> None:
    assert names(await world.call("viewer", "GET", "/v1/deployments" + query)) == expected


async def test_bad_deployment_filters_name_the_parameter(world: World) -> None:
    for query, where in (
        ("?health=green", "/health"),
        ("?kind=robot", "/kind"),
        ("?resource=support-bot", "/resource"),
        ("?cursor=garbage", "/cursor"),
    ):
        response = await world.call("viewer", "GET", "/v1/deployments" + query)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == where
    unknown = await world.call("viewer", "GET", "/v1/deployments?resource=agent/com.acme/nosuch")
    assert unknown.status_code == 404


async def test_deployments_page_by_cursor(world: World) -> None:
    seen: list[int] = []
    url = "/v1/deployments?limit=2"
    while True:
        page = (await world.call("viewer", "GET", url)).json()
        seen += [item["id"] for item in page["items"]]
        if not page["nextCursor"]:
            break
        url = f"/v1/deployments?limit=2&cursor={page['nextCursor']}"
    assert seen == sorted(world.ids.values())


async def test_one_deployment_and_where_a_resource_runs(world: World) -> None:
    response = await world.call("viewer", "GET", f"/v1/deployments/{world.ids['linked']}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["link"]["state"] == "linked" and body["object"]["kind"] == "Agent" and body["card"]
    again = await world.call(
        "viewer",
        "GET",
        f"/v1/deployments/{world.ids['linked']}",
        headers={"if-none-match": response.headers["etag"]},
    )
    assert again.status_code == 304
    runs = await world.call("viewer", "GET", "/v1/agents/com.acme/support-bot/deployments")
    assert names(runs) == {"linked", "drifted", "gone"}
    assert (
        await world.call("stranger", "GET", "/v1/agents/com.acme/support-bot/deployments")
    ).status_code == 404
    assert (await world.call("stranger", "GET", f"/v1/deployments/{world.ids['linked']}")).status_code == 404
    assert names(await world.call("stranger", "GET", "/v1/deployments")) == set()
    assert (await world.call("viewer", "GET", "/v1/deployments/999999")).status_code == 404


async def test_overlay_patch_with_if_match(world: World) -> None:
    path = f"/v1/deployments/{world.ids['linked']}"
    etag = (await world.call("operator", "GET", path)).headers["etag"]
    patched = await world.call(
        "operator", "PATCH", path, json={"labels": {"tier": "gold"}}, headers={"if-match": etag}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["labels"]["tier"] == "gold" and patched.json()["overlay"]["labels"] == {
        "tier": "gold"
    }
    assert patched.headers["etag"] != etag
    assert (await world.call("operator", "GET", path)).headers["etag"] == patched.headers["etag"]
    stale = await world.call(
        "operator", "PATCH", path, json={"labels": {"x": "y"}}, headers={"if-match": etag}
    )
    assert stale.status_code == 412
    assert (await world.call("viewer", "PATCH", path, json={"labels": {"x": "y"}})).status_code == 403
    assert (await world.call("stranger", "PATCH", path, json={"labels": {"x": "y"}})).status_code == 404
    bad = await world.call("operator", "PATCH", path, json={"spec": {}})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "/spec"
    bad_label = await world.call("operator", "PATCH", path, json={"labels": {"no way": "x"}})
    assert (
        bad_label.status_code == 422 and bad_label.json()["error"]["details"][0]["field"] == "/labels/no way"
    )
