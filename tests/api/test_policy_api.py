"""/v1/policy over HTTP on both databases: documents in JSON and YAML, ETags, revisions, exemptions, who may.

With ``AGENTREG_AUTH=required`` and real API keys: tenant ``alpha`` (an admin and a developer key) and
``beta`` (an admin key), plus single-user mode, where the one user is the default tenant's admin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agentreg.api.app import create_app
from agentreg.config import Settings
from agentreg.services import identity
from agentreg.store.interface import Store

POLICY_YAML = """\
apiVersion: agentreg.dev/v1
kind: Policy
spec:
  compatibility: {breaking: refuse}
  deny:
    - {name: "com.evil/*", versions: "<2.0.0", reason: CVE-2026-1234}
  environments:
    prod: {states: [certified], minAgeDays: 7}
  rules:
    - id: has-description
      expression: "has(document.spec.description)"
      effect: soft
      message: describe it
"""


class Keys:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.headers: dict[str, dict[str, str]] = {}

    async def call(self, who: str, method: str, path: str, **options: Any) -> httpx.Response:
        headers = {**self.headers[who], **options.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **options)


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


@pytest.fixture
async def keys(store: Store, tmp_path: Path) -> AsyncIterator[Keys]:
    app = create_app(Settings(auth="required", data_dir=tmp_path), store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test"
    ) as client:
        created = await identity.bootstrap(store)
        assert created is not None
        k = Keys(client)
        k.headers["root"] = bearer(created.secret)
        for tenant in ("alpha", "beta"):
            assert (await k.call("root", "POST", "/v1/tenants", json={"id": tenant})).status_code == 201
        for who, tenant, role in (
            ("alpha_admin", "alpha", "tenant_admin"),
            ("alpha_dev", "alpha", "developer"),
            ("beta_admin", "beta", "tenant_admin"),
        ):
            body = {"name": who, "tenant": tenant, "roles": [role]}
            response = await k.call("root", "POST", "/v1/keys", json=body)
            assert response.status_code == 201, response.text
            k.headers[who] = bearer(response.json()["key"])
        yield k


YAML = {"content-type": "application/yaml"}


async def test_put_yaml_then_get_with_etags(keys: Keys) -> None:
    put = await keys.call("alpha_admin", "PUT", "/v1/policy", content=POLICY_YAML, headers=YAML)
    assert put.status_code == 200, put.text
    assert put.headers["etag"] == '"p-1"'
    body = put.json()
    assert (body["tenant"], body["revision"]) == ("alpha", 1)
    assert body["updatedBy"] and body["updatedAt"]
    assert body["document"] == yaml.safe_load(POLICY_YAML)
    effective = body["effective"]["spec"]
    assert effective["compatibility"] == {"breaking": "refuse"}
    assert effective["environments"]["prod"] == {
        "states": ["certified"],
        "minAgeDays": 7,
        "allowPastSunset": False,
    }
    assert effective["lifecycle"]["gates"]["certified"]["approvals"] == {
        "count": 1,
        "roles": ["tenant_admin", "developer"],
    }
    assert effective["quotas"] == {"maxResourcesPerNamespace": None, "maxVersionsPerNamespace": None}

    got = await keys.call("alpha_dev", "GET", "/v1/policy")
    assert got.status_code == 200 and got.headers["etag"] == '"p-1"'
    assert got.json()["document"] == body["document"]
    cached = await keys.call("alpha_dev", "GET", "/v1/policy", headers={"if-none-match": '"p-1"'})
    assert cached.status_code == 304


async def test_if_match_and_revisions(keys: Keys) -> None:
    first = await keys.call("alpha_admin", "PUT", "/v1/policy", content=POLICY_YAML, headers=YAML)
    document = first.json()["document"]
    document["spec"]["compatibility"]["breaking"] = "warn"
    stale = await keys.call("alpha_admin", "PUT", "/v1/policy", json=document, headers={"if-match": '"p-0"'})
    assert stale.status_code == 412
    second = await keys.call("alpha_admin", "PUT", "/v1/policy", json=document, headers={"if-match": '"p-1"'})
    assert second.status_code == 200 and second.headers["etag"] == '"p-2"'
    same = await keys.call("alpha_admin", "PUT", "/v1/policy", json=document)
    assert same.json()["revision"] == 2
    revisions = (await keys.call("alpha_dev", "GET", "/v1/policy/revisions")).json()
    assert revisions["tenant"] == "alpha"
    assert [r["revision"] for r in revisions["items"]] == [2, 1]
    assert revisions["items"][1]["document"]["spec"]["compatibility"] == {"breaking": "refuse"}
    assert revisions["items"][0]["digest"].startswith("sha256:")


async def test_an_invalid_policy_names_every_field(keys: Keys) -> None:
    document = {
        "apiVersion": "agentreg.dev/v1",
        "kind": "Policy",
        "spec": {
            "environments": {"prod": {"states": ["retired"]}},
            "rules": [{"id": "r", "expression": "size("}],
            "extra": 1,
        },
    }
    response = await keys.call("alpha_admin", "PUT", "/v1/policy", json=document)
    assert response.status_code == 422
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert fields == ["/spec/extra", "/spec/environments/prod/states/0", "/spec/rules/0/expression"]
    assert (await keys.call("alpha_admin", "GET", "/v1/policy")).json()["revision"] == 0


async def test_who_may_read_and_write(keys: Keys) -> None:
    denied = await keys.call("alpha_dev", "PUT", "/v1/policy", content=POLICY_YAML, headers=YAML)
    assert denied.status_code == 403
    await keys.call("alpha_admin", "PUT", "/v1/policy", content=POLICY_YAML, headers=YAML)
    for method, path in (("GET", "/v1/policy?tenant=alpha"), ("GET", "/v1/policy/revisions?tenant=alpha")):
        hidden = await keys.call("beta_admin", method, path)
        missing = await keys.call("beta_admin", method, path.replace("alpha", "omega"))
        assert hidden.status_code == missing.status_code == 404
    foreign_put = await keys.call(
        "beta_admin", "PUT", "/v1/policy?tenant=alpha", content=POLICY_YAML, headers=YAML
    )
    assert foreign_put.status_code == 404
    assert (await keys.call("beta_admin", "GET", "/v1/policy")).json()["revision"] == 0
    assert (await keys.call("root", "GET", "/v1/policy?tenant=alpha")).json()["revision"] == 1
    ambiguous = await keys.call("root", "GET", "/v1/policy")
    assert ambiguous.status_code == 422 and ambiguous.json()["error"]["details"][0]["field"] == "/tenant"


async def test_exemptions_over_http(keys: Keys) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {
        "resource": "agent/com.alpha/bot@^1",
        "rules": ["cel.*"],
        "reason": "migration",
        "expiresAt": expires,
    }
    assert (await keys.call("alpha_dev", "POST", "/v1/policy/exemptions", json=body)).status_code == 403
    created = await keys.call("alpha_admin", "POST", "/v1/policy/exemptions", json=body)
    assert created.status_code == 201, created.text
    exemption = created.json()
    assert exemption["active"] is True and exemption["tenant"] == "alpha"
    assert exemption["rules"] == ["cel.*"] and exemption["resource"] == "agent/com.alpha/bot@^1"
    listed = (await keys.call("alpha_dev", "GET", "/v1/policy/exemptions")).json()["items"]
    assert [e["id"] for e in listed] == [exemption["id"]]
    assert (await keys.call("beta_admin", "GET", "/v1/policy/exemptions")).json()["items"] == []
    path = f"/v1/policy/exemptions/{exemption['id']}"
    assert (await keys.call("beta_admin", "DELETE", path + "?tenant=alpha")).status_code == 404
    assert (await keys.call("alpha_admin", "DELETE", path)).status_code == 204
    assert (await keys.call("alpha_admin", "DELETE", path)).status_code == 404

    audit = (await keys.call("alpha_admin", "GET", "/v1/audit?tenant=alpha")).json()["items"]
    assert [e["action"] for e in audit if e["action"].startswith("policy.")] == [
        "policy.exemption.add",
        "policy.exemption.delete",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"resource": "com.alpha/bot"}, "/resource"),
        ({"rules": ["lifecycle.blocked"]}, "/rules/0"),
        ({"reason": ""}, "/reason"),
        ({"expiresAt": "2020-01-01T00:00:00Z"}, "/expiresAt"),
        ({"expiresAt": "soon"}, "/expiresAt"),
        ({"surprise": True}, "/surprise"),
    ],
)
async def test_bad_exemptions_are_422_naming_the_field(
    keys: Keys, change: dict[str, Any], field: str
) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {
        "resource": "agent/com.alpha/bot",
        "rules": ["*"],
        "reason": "why",
        "expiresAt": expires,
        **change,
    }
    response = await keys.call("alpha_admin", "POST", "/v1/policy/exemptions", json=body)
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["error"]["details"]]


async def test_policy_changes_are_audited(keys: Keys) -> None:
    await keys.call("alpha_admin", "PUT", "/v1/policy", content=POLICY_YAML, headers=YAML)
    events = (await keys.call("alpha_admin", "GET", "/v1/audit?tenant=alpha")).json()["items"]
    update = next(e for e in events if e["action"] == "policy.update")
    assert update["object"] == "policy/alpha" and update["details"]["revision"] == 1
    assert update["after"].startswith("sha256:") and update["before"] is None


async def test_single_user_mode_manages_the_default_tenants_policy(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/policy")).json()["revision"] == 0
    put = await api.put("/v1/policy", content=POLICY_YAML, headers=YAML)
    assert put.status_code == 200, put.text
    assert put.json()["tenant"] == "default"
    assert (await api.get("/v1/policy")).headers["etag"] == '"p-1"'
