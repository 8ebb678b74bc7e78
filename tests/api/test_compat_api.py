"""GET /v1/{plural}/{namespace}/{name}/versions/{version}/compatibility on both backends.

Versions that break within a major are published higher one first, so publishing them never trips the
publish-time check (that is the tenant policy's business, tested with it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentreg.api.app import create_app
from agentreg.config import Settings
from agentreg.domain.compat import PUBLISHER_PROVIDED, TOOLS
from agentreg.services import identity
from agentreg.store.interface import Store
from tests import factories as f

NS = f.NS
AGENT = f"/v1/agents/{NS}/support-bot"


def skill(skill_id: str) -> dict[str, Any]:
    return {"id": skill_id, "name": skill_id, "description": skill_id, "tags": ["t"]}


def bot(version: str, *skill_ids: str, **card: Any) -> dict[str, Any]:
    return f.agent(version=version, card=f.card_03(version, skills=[skill(s) for s in skill_ids], **card))


def ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response


async def publish(api: httpx.AsyncClient, plural: str, *documents: dict[str, Any]) -> None:
    for document in documents:
        ok(await api.post(f"/v1/{plural}", json=document))


async def test_a_breaking_version_shows_each_change_and_the_bump_it_needs(api: httpx.AsyncClient) -> None:
    await publish(
        api,
        "agents",
        bot("1.1.0", "answer", url="https://agents.example/v2"),
        bot("1.0.0", "answer", "search", defaultOutputModes=["text/plain", "application/json"]),
    )
    report = ok(await api.get(f"{AGENT}/versions/1.1.0/compatibility")).json()
    assert report == {
        "version": "1.1.0",
        "against": "1.0.0",
        "compatible": False,
        "requiredBump": "major",
        "versionBump": "minor",
        "needsMajor": True,
        "breaking": [
            {
                "field": "/spec/card/url",
                "issue": "the endpoint URL changed from 'https://agents.example/support' to "
                "'https://agents.example/v2'",
            },
            {"field": "/spec/card/skills", "issue": "skill 'search' was removed"},
            {
                "field": "/spec/card/defaultOutputModes",
                "issue": "default output mode 'application/json' was removed",
            },
        ],
    }


async def test_an_additive_version_is_compatible_and_needs_a_minor(api: httpx.AsyncClient) -> None:
    await publish(api, "agents", bot("1.0.0", "answer"), bot("1.1.0", "answer", "search"))
    report = ok(await api.get(f"{AGENT}/versions/1.1.0/compatibility")).json()
    assert (report["against"], report["compatible"], report["requiredBump"], report["needsMajor"]) == (
        "1.0.0",
        True,
        "minor",
        False,
    )
    assert report["breaking"] == []


async def test_against_names_the_version_to_compare_with(api: httpx.AsyncClient) -> None:
    await publish(
        api,
        "agents",
        bot("1.0.0", "answer", "search"),
        bot("1.1.0", "answer", "search", "x"),
        bot("2.0.0", "x"),
    )
    default = ok(await api.get(f"{AGENT}/versions/2.0.0/compatibility")).json()
    assert default["against"] == "1.1.0"  # no earlier 2.x: the highest earlier version
    assert {b["issue"] for b in default["breaking"]} == {
        "skill 'answer' was removed",
        "skill 'search' was removed",
    }
    assert (default["versionBump"], default["needsMajor"]) == ("major", False)
    named = ok(await api.get(f"{AGENT}/versions/2.0.0/compatibility", params={"against": "1.0.0"})).json()
    assert named["against"] == "1.0.0"
    assert {b["issue"] for b in named["breaking"]} == {
        "skill 'answer' was removed",
        "skill 'search' was removed",
    }


async def test_the_first_version_has_nothing_to_compare_with(api: httpx.AsyncClient) -> None:
    await publish(api, "agents", bot("1.0.0", "answer"))
    report = ok(await api.get(f"{AGENT}/versions/1.0.0/compatibility")).json()
    assert report == {
        "version": "1.0.0",
        "against": None,
        "compatible": True,
        "requiredBump": "none",
        "versionBump": "none",
        "needsMajor": False,
        "breaking": [],
    }


async def test_mcp_server_packages_remotes_and_tools(api: httpx.AsyncClient) -> None:
    remotes = [{"type": "streamable-http", "url": "https://mcp.acme.example/mcp"}]
    meta = {PUBLISHER_PROVIDED: {"tools": [{"name": "search"}, {"name": "create_issue"}]}}
    await publish(
        api,
        "mcp-servers",
        f.mcp_server(version="1.0.0", remotes=remotes, _meta=meta),
        f.mcp_server(
            version="2.0.0", packages=[], _meta={PUBLISHER_PROVIDED: {"tools": [{"name": "search"}]}}
        ),
    )
    report = ok(await api.get(f"/v1/mcp-servers/{NS}/github/versions/2.0.0/compatibility")).json()
    assert report["breaking"] == [
        {"field": "/spec/packages", "issue": "package npm '@acme/github' was removed"},
        {
            "field": "/spec/remotes",
            "issue": "remote streamable-http 'https://mcp.acme.example/mcp' was removed",
        },
        {"field": TOOLS, "issue": "tool 'create_issue' was removed"},
    ]


async def test_models_break_when_the_provider_changes(api: httpx.AsyncClient) -> None:
    await publish(
        api, "models", f.model(version="1.0.0"), f.with_(f.model(version="2.0.0"), "/spec/provider", "openai")
    )
    report = ok(await api.get(f"/v1/models/{NS}/llama/versions/2.0.0/compatibility")).json()
    assert report["breaking"] == [
        {"field": "/spec/provider", "issue": "provider changed from 'vllm' to 'openai'"}
    ]


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        (f"{AGENT}/versions/1.0.0/compatibility?against=^1", 422, "/against"),
        (f"{AGENT}/versions/1.0.0/compatibility?against=stable", 422, "/against"),
        (f"{AGENT}/versions/latest/compatibility", 422, "/version"),
        (f"{AGENT}/versions/1.0.0/compatibility?against=0.9.0", 404, None),
        (f"{AGENT}/versions/3.0.0/compatibility", 404, None),
        (f"/v1/agents/{NS}/nosuch/versions/1.0.0/compatibility", 404, None),
    ],
)
async def test_bad_comparisons_are_refused(
    api: httpx.AsyncClient, path: str, status: int, field: str | None
) -> None:
    await publish(api, "agents", bot("1.0.0", "answer"))
    refused = await api.get(path)
    assert refused.status_code == status, refused.text
    if field is not None:
        assert refused.json()["error"]["details"][0]["field"] == field


# --- with authentication -------------------------------------------------------------------------------------


@pytest.fixture
async def secured(
    store: Store, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, dict[str, str]]]]:
    """Tenant ``acme`` owns the agent; keys: ``viewer`` in acme, ``other`` a tenant admin of ``beta``."""
    app = create_app(Settings(auth="required", data_dir=tmp_path), store=store)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test")
    created = await identity.bootstrap(store)
    assert created is not None
    root = {"authorization": f"Bearer {created.secret}"}
    for tenant in ("acme", "beta"):
        ok(await client.post("/v1/tenants", json={"id": tenant}, headers=root))
    ok(await client.post("/v1/namespaces", json={"name": NS, "tenant": "acme"}, headers=root))
    for document in (bot("1.0.0", "answer", "search"), bot("2.0.0", "answer")):
        ok(await client.post("/v1/agents", json=document, headers=root))
    keys = {}
    for who, tenant, role in (("viewer", "acme", "viewer"), ("other", "beta", "tenant_admin")):
        body = {"name": who, "tenant": tenant, "roles": [role]}
        key = ok(await client.post("/v1/keys", json=body, headers=root)).json()
        keys[who] = {"authorization": f"Bearer {key['key']}"}
    try:
        yield client, keys
    finally:
        await client.aclose()


async def test_any_reader_sees_the_report_and_another_tenant_sees_nothing(
    secured: tuple[httpx.AsyncClient, dict[str, dict[str, str]]],
) -> None:
    client, keys = secured
    path = f"{AGENT}/versions/2.0.0/compatibility"
    report = ok(await client.get(path, headers=keys["viewer"])).json()
    assert report["breaking"] == [{"field": "/spec/card/skills", "issue": "skill 'search' was removed"}]
    hidden = await client.get(path, headers=keys["other"])
    missing = await client.get(
        f"/v1/agents/{NS}/nosuch-bot/versions/2.0.0/compatibility", headers=keys["other"]
    )
    assert hidden.status_code == missing.status_code == 404
    assert (await client.get(path)).status_code == 401
