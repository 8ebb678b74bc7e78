"""Evidence over HTTP with real API keys (``AGENTREG_AUTH=required``), on both databases.

Tenant ``alpha`` owns ``com.alpha`` with agent ``bot`` 1.0.0; tenant ``beta`` owns ``org.beta``. Keys are made
through the API as tests need them, named ``<tenant>_<role>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentreg.api.app import create_app
from agentreg.config import Settings
from agentreg.domain.hll import HyperLogLog
from agentreg.domain.usage import LATENCY_BUCKETS
from agentreg.services import identity
from agentreg.store.interface import Store
from tests import factories as f

NS_A, NS_B = "com.alpha", "org.beta"
BOT = f"/v1/agents/{NS_A}/bot/versions/1.0.0"
MISSING = f"/v1/agents/{NS_A}/nosuch/versions/1.0.0"
REF = f"agent/{NS_A}/bot@1.0.0"
EVALUATION = {
    "suite": "helpdesk-qa",
    "level": "basic",
    "score": 0.93,
    "passed": True,
    "metrics": {"accuracy": 0.93, "model": "gpt", "cached": False, "cases": 120},
    "reportUrl": "https://ci.example/reports/42",
}
SCAN = {
    "scanner": "trivy",
    "findings": [
        {"id": "CVE-2026-1", "severity": "high", "title": "prototype pollution"},
        {"id": "CVE-2026-2", "severity": "info", "title": "banner"},
    ],
}


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response


@dataclass
class World:
    client: httpx.AsyncClient
    root: dict[str, str]
    keys: dict[str, dict[str, str]] = field(default_factory=dict)

    async def key(self, who: str, **extra: Any) -> dict[str, str]:
        if who == "root":
            return self.root
        if who not in self.keys:
            tenant, role = who.split("_", 1)
            body = {"name": who, "tenant": tenant, "roles": [role], **extra}
            created = ok(await self.client.post("/v1/keys", json=body, headers=self.root)).json()
            self.keys[who] = bearer(created["key"])
        return self.keys[who]

    async def call(self, who: str, method: str, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.request(method, path, json=json, headers=await self.key(who), **kw)


@pytest.fixture
async def world(store: Store, tmp_path: Path) -> AsyncIterator[World]:
    app = create_app(Settings(auth="required", data_dir=tmp_path), store=store)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agentreg.test")
    created = await identity.bootstrap(store)
    assert created is not None
    w = World(client, bearer(created.secret))
    for tenant, namespace in (("alpha", NS_A), ("beta", NS_B)):
        ok(await client.post("/v1/tenants", json={"id": tenant}, headers=w.root))
        ok(await client.post("/v1/namespaces", json={"name": namespace, "tenant": tenant}, headers=w.root))
    ok(await w.call("root", "POST", "/v1/agents", f.agent("bot", namespace=NS_A)))
    ok(await w.call("root", "POST", "/v1/agents", f.agent("bot", namespace=NS_B)))
    try:
        yield w
    finally:
        await client.aclose()


def fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["error"]["details"]]


# --- evaluations and scans -----------------------------------------------------------------------------------


async def test_an_evaluation_is_attested_and_listed(world: World) -> None:
    created = ok(await world.call("alpha_developer", "POST", BOT + "/evaluations", EVALUATION), 201).json()
    assert {k: created[k] for k in EVALUATION} == EVALUATION
    assert created["id"] and created["createdBy"]
    second = {**EVALUATION, "level": "comprehensive", "score": None, "passed": False, "metrics": {}}
    del second["reportUrl"]
    ok(await world.call("alpha_developer", "POST", BOT + "/evaluations", second), 201)
    listed = ok(await world.call("alpha_analyst", "GET", BOT + "/evaluations")).json()["items"]
    assert [(e["level"], e["score"], e["reportUrl"]) for e in listed] == [
        ("basic", 0.93, "https://ci.example/reports/42"),
        ("comprehensive", None, None),
    ]
    assert listed[0] == created


async def test_a_scan_is_attested_with_a_summary(world: World) -> None:
    created = ok(await world.call("alpha_developer", "POST", BOT + "/scans", SCAN), 201).json()
    assert created["findings"] == SCAN["findings"]
    assert created["summary"] == {"critical": 0, "high": 1, "medium": 0, "low": 0, "info": 1}
    listed = ok(await world.call("alpha_developer", "GET", BOT + "/scans")).json()["items"]
    assert listed == [created]


async def test_evidence_is_immutable(world: World) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        response = await world.call("root", method, BOT + "/evaluations", EVALUATION)
        assert response.status_code == 405, (method, response.text)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/evaluations", {**EVALUATION, "colour": "red"}, "/colour"),
        ("/evaluations", {**EVALUATION, "score": "0.9"}, "/score"),
        ("/evaluations", {**EVALUATION, "score": 1.2}, "/score"),
        ("/evaluations", {**EVALUATION, "passed": 1}, "/passed"),
        ("/evaluations", {**EVALUATION, "level": "deep"}, "/level"),
        ("/evaluations", {**EVALUATION, "suite": ""}, "/suite"),
        ("/evaluations", {**EVALUATION, "suite": "s" * 201}, "/suite"),
        ("/evaluations", {**EVALUATION, "metrics": {"cases": [1, 2]}}, "/metrics/cases"),
        ("/evaluations", {**EVALUATION, "reportUrl": "http://ci.example/r"}, "/reportUrl"),
        ("/evaluations", {**EVALUATION, "reportUrl": "https://x/" + "a" * 2000}, "/reportUrl"),
        ("/evaluations", {k: v for k, v in EVALUATION.items() if k != "passed"}, "/passed"),
        ("/scans", {**SCAN, "extra": 1}, "/extra"),
        (
            "/scans",
            {"scanner": "t", "findings": [{"id": "x", "severity": "urgent", "title": ""}]},
            "/findings/0/severity",
        ),
        (
            "/scans",
            {"scanner": "t", "findings": [{"id": "x", "severity": "low", "cvss": 9}]},
            "/findings/0/cvss",
        ),
        ("/scans", {"scanner": "t", "findings": [{"id": "", "severity": "low"}]}, "/findings/0/id"),
        (
            "/scans",
            {"scanner": "t", "findings": [{"id": "x", "severity": "low", "title": "t" * 501}]},
            "/findings/0/title",
        ),
    ],
)
async def test_a_bad_body_is_refused_naming_the_field(world: World, path: str, body: Any, field: str) -> None:
    response = await world.call("alpha_developer", "POST", BOT + path, body)
    assert field in fields(response)
    assert ok(await world.call("root", "GET", BOT + path)).json()["items"] == []


async def test_a_range_is_not_a_version_to_attest(world: World) -> None:
    response = await world.call(
        "alpha_developer", "POST", f"/v1/agents/{NS_A}/bot/versions/^1/evaluations", EVALUATION
    )
    assert fields(response) == ["/version"]


async def test_a_viewer_cannot_attest_or_read_evidence(world: World) -> None:
    assert (await world.call("alpha_viewer", "POST", BOT + "/evaluations", EVALUATION)).status_code == 403
    assert (await world.call("alpha_viewer", "POST", BOT + "/scans", SCAN)).status_code == 403
    assert (await world.call("alpha_viewer", "GET", BOT + "/evaluations")).status_code == 403
    assert (await world.call("alpha_operator", "POST", BOT + "/scans", SCAN)).status_code == 403


@pytest.mark.parametrize("suffix", ["/evaluations", "/scans", "/usage"])
async def test_another_tenants_version_is_not_found_like_a_missing_one(world: World, suffix: str) -> None:
    for method, body in (("GET", None), ("POST", EVALUATION if suffix == "/evaluations" else SCAN)):
        if suffix == "/usage" and method == "POST":
            continue
        hidden = await world.call("beta_tenant_admin", method, BOT + suffix, body)
        absent = await world.call("beta_tenant_admin", method, MISSING + suffix, body)
        assert hidden.status_code == absent.status_code == 404, hidden.text
        assert hidden.json()["error"]["message"].replace("bot", "X") == absent.json()["error"][
            "message"
        ].replace("nosuch", "X")


async def test_a_key_scoped_to_attesting_one_agent_attests_only_there(world: World) -> None:
    scope = {"actions": ["evidence.attest"], "resources": [f"agent/{NS_A}/bot"]}
    body = {"name": "ci", "tenant": "alpha", "roles": ["developer"], "scope": scope}
    created = ok(await world.client.post("/v1/keys", json=body, headers=world.root)).json()
    ci = bearer(created["key"])
    ok(await world.client.post(BOT + "/evaluations", json=EVALUATION, headers=ci), 201)
    ok(await world.client.post(BOT + "/scans", json=SCAN, headers=ci), 201)
    ok(await world.call("root", "POST", "/v1/skills", f.skill(namespace=NS_A)))
    other = f"/v1/skills/{NS_A}/triage/versions/1.0.0/evaluations"
    assert (await world.client.post(other, json=EVALUATION, headers=ci)).status_code == 403
    assert (await world.client.get(BOT + "/evaluations", headers=ci)).status_code == 403  # not usage.read


async def test_attesting_is_audited(world: World) -> None:
    ok(await world.call("alpha_developer", "POST", BOT + "/evaluations", EVALUATION), 201)
    ok(await world.call("alpha_developer", "POST", BOT + "/scans", SCAN), 201)
    events = ok(await world.call("root", "GET", "/v1/audit", params={"tenant": "alpha"})).json()["items"]
    mine = [e for e in events if e["action"].startswith("evidence.")]
    assert [(e["action"], e["object"]) for e in mine] == [
        ("evidence.evaluation", REF),
        ("evidence.scan", REF),
    ]
    assert mine[0]["details"] == {"suite": "helpdesk-qa", "level": "basic", "score": 0.93, "passed": True}
    assert mine[1]["details"]["summary"]["high"] == 1


# --- usage -------------------------------------------------------------------------------------------------


def usage_item(
    start: datetime, requests: int, errors: int = 0, callers: range = range(0), **extra: Any
) -> dict[str, Any]:
    counts = [0] * LATENCY_BUCKETS
    counts[5] = requests  # (100, 250] ms
    return {
        "ref": REF,
        "bucketStart": start.isoformat().replace("+00:00", "Z"),
        "bucketSeconds": 300,
        "requests": requests,
        "errors": errors,
        "latency": {"counts": counts},
        "callers": {"hll": HyperLogLog.of(f"caller-{i}" for i in callers).to_base64()},
        **extra,
    }


def recent(minutes_ago: int) -> datetime:
    now = datetime.now(UTC)
    aligned = now.replace(second=0, microsecond=0, minute=now.minute - now.minute % 5)
    return aligned - timedelta(minutes=minutes_ago)


async def test_usage_is_idempotent_and_merges_across_reporters(world: World) -> None:
    batch = {"items": [usage_item(recent(10), 40, 2, range(30)), usage_item(recent(5), 60, 0, range(20, 50))]}
    assert ok(await world.call("alpha_operator", "POST", "/v1/usage", batch)).json() == {"accepted": 2}
    once = ok(await world.call("alpha_analyst", "GET", BOT + "/usage")).json()
    ok(await world.call("alpha_operator", "POST", "/v1/usage", batch))
    assert ok(await world.call("alpha_analyst", "GET", BOT + "/usage")).json() == once
    assert (once["requests"], once["errors"], once["errorRate"], once["buckets"]) == (100, 2, 0.02, 2)
    assert abs(once["callers"] - 50) <= 2 and once["reporters"] == 1 and once["window"] == "30d"
    assert 100 < once["latencyMs"]["p50"] <= 250 and once["first"] is not None

    other = {"items": [usage_item(recent(10), 10, 1, range(45, 60))]}
    ok(await world.call("alpha_tenant_admin", "POST", "/v1/usage", other))
    merged = ok(await world.call("alpha_analyst", "GET", BOT + "/usage", params={"window": "1h"})).json()
    assert (merged["requests"], merged["errors"], merged["reporters"], merged["buckets"]) == (110, 3, 2, 3)
    assert abs(merged["callers"] - 60) <= 2


async def test_a_usage_batch_with_one_bad_item_writes_nothing(world: World) -> None:
    items = [usage_item(recent(5 * i), 10) for i in range(5)]
    items[3]["errors"] = 11
    response = await world.call("alpha_operator", "POST", "/v1/usage", {"items": items})
    assert fields(response) == ["/items/3/errors"]
    items[3]["errors"] = 0
    items[1]["ref"] = f"agent/{NS_A}/bot@9.9.9"
    items[4]["ref"] = f"agent/{NS_B}/bot@1.0.0"  # beta's: as missing as 9.9.9
    response = await world.call("alpha_operator", "POST", "/v1/usage", {"items": items})
    assert fields(response) == ["/items/1/ref", "/items/4/ref"]
    details = response.json()["error"]["details"]
    assert details[0]["issue"] == details[1]["issue"]
    assert ok(await world.call("root", "GET", BOT + "/usage")).json()["buckets"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"callers": {"hll": "AAE="}}, "/items/0/callers/hll"),
        ({"callers": {"ids": [hashlib.sha256(b"x").hexdigest(), "nope"]}}, "/items/0/callers/ids/1"),
        ({"bucketSeconds": 61}, "/items/0/bucketSeconds"),
        ({"latency": {"counts": [1] * LATENCY_BUCKETS}}, "/items/0/latency/counts"),
        ({"unknown": True}, "/items/0/unknown"),
    ],
)
async def test_a_bad_usage_field_is_named(world: World, change: dict[str, Any], field: str) -> None:
    item = {**usage_item(recent(5), 10), **change}
    assert fields(await world.call("alpha_operator", "POST", "/v1/usage", {"items": [item]})) == [field]


async def test_reporting_usage_needs_the_right(world: World) -> None:
    batch = {"items": [usage_item(recent(5), 10)]}
    assert (await world.call("alpha_developer", "POST", "/v1/usage", batch)).status_code == 403
    assert (await world.call("alpha_viewer", "GET", BOT + "/usage")).status_code == 403
    assert (await world.call("root", "POST", "/v1/usage", {"items": "no"})).status_code == 422


async def test_a_bad_window_is_refused(world: World) -> None:
    assert fields(await world.call("root", "GET", BOT + "/usage", params={"window": "1y"})) == ["/window"]


async def test_a_usage_batch_must_be_json(world: World) -> None:
    post = world.client.post
    yaml = await post(
        "/v1/usage", content=b"items: []", headers={**world.root, "content-type": "application/yaml"}
    )
    assert yaml.status_code == 415
    broken = await post(
        "/v1/usage", content=b'{"items": [', headers={**world.root, "content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "malformed"
