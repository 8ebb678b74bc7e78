"""Lifecycle over HTTP, on both backends: gates and readiness, promotion, deprecation and sunset, retirement,
the kill switch everywhere at once, and resolution per environment (fast lane and FastAPI agreeing).

Single-user mode (the caller is the default tenant's admin; approvals name their approver). Time-dependent
behaviour runs under ``clock.frozen``: services and the response cache read that clock.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from agentreg.domain.usage import histogram
from agentreg.services import clock
from tests import factories as f

SKILL = "/v1/skills/com.acme/triage"
AGENT = "/v1/agents/com.acme/support-bot"
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def v(path: str, version: str, tail: str = "") -> str:
    return f"{path}/versions/{version}{tail}"


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def publish(api: httpx.AsyncClient, *versions: str) -> None:
    for version in versions:
        await ok(await api.post("/v1/skills", json=f.skill(version=version)), 201)


async def evidence_for_experimental(api: httpx.AsyncClient, version: str) -> None:
    await ok(
        await api.post(
            v(SKILL, version, "/evaluations"), json={"suite": "smoke", "level": "basic", "passed": True}
        ),
        201,
    )
    await ok(await api.post(v(SKILL, version, "/scans"), json={"scanner": "trivy", "findings": []}), 201)


async def promote(api: httpx.AsyncClient, version: str, **body: Any) -> httpx.Response:
    return await api.post(v(SKILL, version, "/promote"), json={"reason": "ready", **body})


async def force(api: httpx.AsyncClient, version: str, *states: str) -> None:
    """Fast-track a version through tiers (the caller is a tenant admin in single-user mode)."""
    for state in states:
        await ok(await promote(api, version, to=state, fastTrack=True))


async def test_a_new_version_is_a_draft_and_promotion_waits_for_its_gates(api: httpx.AsyncClient) -> None:
    await publish(api, "1.0.0")
    version = await ok(await api.get(v(SKILL, "1.0.0")))
    assert version["status"]["state"] == "draft" and version["status"]["blocked"] is False
    refused = await promote(api, "1.0.0")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "gates_not_passed"
    gates = {g["gate"]: g for g in error["report"]["gates"]}
    assert {k: g["status"] for k, g in gates.items()} == {
        "schema": "pass",
        "evaluation": "pending",
        "scan": "pending",
    }
    assert gates["scan"]["missing"] == "a security scan (none yet)"
    assert error["report"]["target"] == "experimental" and error["report"]["ready"] is False
    assert (await ok(await api.get(v(SKILL, "1.0.0"))))["status"]["state"] == "draft"  # nothing moved

    await evidence_for_experimental(api, "1.0.0")
    readiness = await ok(await api.get(v(SKILL, "1.0.0", "/readiness")))
    assert readiness["ready"] is True and {g["status"] for g in readiness["gates"]} == {"pass"}
    promoted = await ok(await promote(api, "1.0.0"))
    assert promoted["status"]["state"] == "experimental" and promoted["report"]["fastTracked"] is False
    events = (await ok(await api.get("/v1/audit", params={"action": "version.promote"})))["items"]
    assert events[-1]["reason"] == "ready" and events[-1]["details"]["toState"] == "experimental"


async def test_a_failing_gate_reports_what_is_wrong(api: httpx.AsyncClient) -> None:
    await publish(api, "1.0.0")
    await ok(
        await api.post(
            v(SKILL, "1.0.0", "/evaluations"), json={"suite": "smoke", "level": "basic", "passed": False}
        ),
        201,
    )
    finding = {"id": "CVE-1", "severity": "critical", "title": "remote code execution"}
    await ok(
        await api.post(v(SKILL, "1.0.0", "/scans"), json={"scanner": "trivy", "findings": [finding]}), 201
    )
    report = await ok(await api.get(v(SKILL, "1.0.0", "/readiness"), params={"to": "experimental"}))
    gates = {g["gate"]: g for g in report["gates"]}
    assert gates["evaluation"]["status"] == "fail" and gates["scan"]["status"] == "fail"
    assert gates["scan"]["evidence"]["open"][0]["id"] == "CVE-1"
    assert "critical" in gates["scan"]["missing"]


async def test_fast_track_passes_failing_gates_and_is_recorded(api: httpx.AsyncClient) -> None:
    await publish(api, "1.0.0")
    promoted = await ok(await promote(api, "1.0.0", fastTrack=True, reason="hotfix for incident 42"))
    assert promoted["status"]["state"] == "experimental" and promoted["report"]["fastTracked"] is True
    event = (await ok(await api.get("/v1/audit", params={"action": "version.promote"})))["items"][-1]
    assert event["details"]["fastTrack"] is True and event["reason"] == "hotfix for incident 42"
    assert event["details"]["gates"] == {"schema": "pass", "evaluation": "pending", "scan": "pending"}


async def test_promotion_names_only_the_next_tier(api: httpx.AsyncClient) -> None:
    await publish(api, "1.0.0")
    response = await promote(api, "1.0.0", to="certified", fastTrack=True)
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_transition"
    for body, field in (({"to": "certified"}, "/reason"), ({"reason": "x", "fast": True}, "/fast")):
        response = await api.post(v(SKILL, "1.0.0", "/promote"), json=body)
        assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == field
    response = await api.post(v(SKILL, "^1", "/promote"), json={"reason": "x"})
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "/version"


async def test_certification_reads_usage_and_approvals(api: httpx.AsyncClient) -> None:
    with clock.frozen(T0) as frozen:
        await publish(api, "1.0.0")
        await evidence_for_experimental(api, "1.0.0")
        await ok(await promote(api, "1.0.0"))
        await ok(
            await api.post(
                v(SKILL, "1.0.0", "/evaluations"),
                json={"suite": "full", "level": "comprehensive", "score": 0.93, "passed": True},
            ),
            201,
        )
        frozen.advance(timedelta(days=9))
        callers = [hashlib.sha256(f"caller-{i}".encode()).hexdigest() for i in range(12)]
        items = [
            {
                "ref": "skill/com.acme/triage@1.0.0",
                "bucketStart": (datetime(2026, 11, 3, tzinfo=UTC) + timedelta(days=day)).isoformat(),
                "bucketSeconds": 86400,
                "requests": 200,
                "errors": 1,
                "latency": {"counts": list(histogram([120.0] * 190 + [900.0] * 10))},
                "callers": {"ids": callers[day : day + 6]},
            }
            for day in range(7)
        ]
        await ok(await api.post("/v1/usage", json={"items": items}))
        report = await ok(await api.get(v(SKILL, "1.0.0", "/readiness")))
        gates = {g["gate"]: g["status"] for g in report["gates"]}
        assert gates == {
            "evaluation": "pass",
            "usage": "pass",
            "errorRate": "pass",
            "latency": "pass",
            "findings": "pass",
            "approvals": "pending",
        }
        # The author never approves (single-user mode: approvals are by name; the author is "anonymous").
        response = await api.post(v(SKILL, "1.0.0", "/approvals"), json={"approver": "anonymous"})
        assert response.status_code == 403
        assert (await api.post(v(SKILL, "1.0.0", "/approvals"), json={})).status_code == 422
        approval = await ok(await api.post(v(SKILL, "1.0.0", "/approvals"), json={"approver": "bob"}), 201)
        assert approval["target"] == "certified" and approval["approver"] == "bob"
        twice = await api.post(v(SKILL, "1.0.0", "/approvals"), json={"approver": "bob"})
        assert twice.status_code == 409
        certified = await ok(await promote(api, "1.0.0"))
        assert certified["status"]["state"] == "certified"


async def test_deprecation_names_a_successor_and_a_sunset_and_reads_say_so(api: httpx.AsyncClient) -> None:
    with clock.frozen(T0) as frozen:
        await publish(api, "1.0.0", "1.1.0", "2.0.0")
        sunset = T0 + timedelta(days=30)
        for successor, field in (("9.9.9", "/successor"), ("1.1.0", None)):
            response = await api.post(
                v(SKILL, "1.1.0", "/deprecate"),
                json={"reason": "superseded by 2.0", "successor": successor, "sunset": sunset.isoformat()},
            )
            if field is not None:
                assert (
                    response.status_code == 422 and response.json()["error"]["details"][0]["field"] == field
                )
        response = await api.post(
            v(SKILL, "1.1.0", "/deprecate"),
            json={"reason": "superseded by 2.0", "successor": "2.0.0", "sunset": sunset.isoformat()},
        )
        body = await ok(response)
        assert body["status"]["deprecation"] == {
            "since": T0.isoformat().replace("+00:00", "Z"),
            "successor": "2.0.0",
            "sunset": sunset.isoformat().replace("+00:00", "Z"),
        }
        for query in ("", "?includeBlocked=false"):  # the fast lane, then FastAPI
            read = await api.get(v(SKILL, "1.1.0") + query)
            assert read.headers["deprecation"] == f"@{int(T0.timestamp())}"
            assert read.headers["sunset"] == "Wed, 02 Dec 2026 09:30:00 GMT"
            assert read.headers["link"] == f'<{v(SKILL, "2.0.0")}>; rel="successor-version"'
        await ok(await api.put(f"{SKILL}/aliases/stable", json={"version": "1.1.0"}))
        assert (await ok(await api.get(v(SKILL, "^1"))))["document"]["metadata"]["version"] == "1.1.0"
        # Past the sunset, ranges skip it and the alias answers 410 with the successor; no write happened.
        frozen.advance(timedelta(days=31))
        assert (await ok(await api.get(v(SKILL, "^1"))))["document"]["metadata"]["version"] == "1.0.0"
        gone = await api.get(v(SKILL, "stable"))
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "gone"
        assert gone.headers["link"] == f'<{v(SKILL, "2.0.0")}>; rel="successor-version"'
        assert (await ok(await api.get(v(SKILL, "1.1.0"))))["status"][
            "state"
        ] == "deprecated"  # exact still reads
        undone = await ok(
            await api.post(v(SKILL, "1.1.0", "/undeprecate"), json={"reason": "2.0 rolled back"})
        )
        assert undone["status"]["state"] == "draft" and undone["status"]["deprecation"] is None


async def test_retired_versions_are_skipped_and_final(api: httpx.AsyncClient) -> None:
    await publish(api, "1.0.0", "1.1.0")
    await ok(await api.put(f"{SKILL}/aliases/stable", json={"version": "1.1.0"}))
    await ok(await api.post(v(SKILL, "1.1.0", "/deprecate"), json={"reason": "old", "successor": "1.0.0"}))
    retired = await ok(await api.post(v(SKILL, "1.1.0", "/retire"), json={"reason": "end of life"}))
    assert retired["status"]["state"] == "retired"
    assert (await ok(await api.get(v(SKILL, "latest"))))["document"]["metadata"]["version"] == "1.0.0"
    assert (await ok(await api.get(v(SKILL, "1.1.0"))))["status"]["state"] == "retired"
    gone = await api.get(v(SKILL, "stable"))
    assert gone.status_code == 410 and gone.headers["link"].startswith(f"<{v(SKILL, '1.0.0')}>")
    again = await api.post(v(SKILL, "1.1.0", "/undeprecate"), json={"reason": "oops"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    assert (await api.post(v(SKILL, "1.1.0", "/retire"), json={})).status_code == 422


async def test_blocking_a_version_takes_effect_everywhere_at_once(api: httpx.AsyncClient) -> None:
    await publish(api, "1.0.0", "1.1.0")
    await ok(await api.post("/v1/mcp-servers", json=f.mcp_server()), 201)
    await ok(
        await api.post("/v1/agents", json=f.agent(config={"skills": [{"ref": "com.acme/triage@1.1.0"}]})), 201
    )
    await ok(await api.put(f"{SKILL}/aliases/stable", json={"version": "1.1.0"}))
    assert (await api.get(v(SKILL, "1.1.0"))).status_code == 200  # cached by the fast lane now
    blocked = await ok(await api.post(v(SKILL, "1.1.0", "/block"), json={"reason": "leaks tokens"}))
    assert blocked["status"]["blocked"] is True and blocked["status"]["block"]["reason"] == "leaks tokens"
    for path in (v(SKILL, "1.1.0"), v(SKILL, "stable"), v(AGENT, "1.0.0", "/resolved")):
        response = await api.get(path)
        assert response.status_code in (423, 409), (path, response.text)
        assert "blocked" in response.text
    assert (await api.get(v(SKILL, "1.1.0"))).json()["error"]["code"] == "blocked"
    assert (await ok(await api.get(v(SKILL, "latest"))))["document"]["metadata"]["version"] == "1.0.0"
    assert (await ok(await api.get(v(SKILL, "1.1.0") + "?includeBlocked=true")))["status"]["blocked"] is True
    check = await ok(await api.post("/v1/governance/check", json={"ref": "skill/com.acme/triage@stable"}))
    assert check["allowed"] is False and check["rules"][0]["id"] == "lifecycle.blocked"
    assert (await api.post(v(SKILL, "1.1.0", "/unblock"), json={"reason": "rotated"})).status_code == 200
    assert (await api.get(v(SKILL, "stable"))).status_code == 200
    assert (await api.post(v(SKILL, "1.1.0", "/unblock"), json={"reason": "again"})).status_code == 409


async def test_blocking_a_resource_blocks_every_version(api: httpx.AsyncClient) -> None:
    await publish(api, "1.0.0", "1.1.0")
    resource = await ok(await api.post(f"{SKILL}/block", json={"reason": "malicious upstream"}))
    assert resource["blocked"]["reason"] == "malicious upstream"
    for selector in ("1.0.0", "latest", "^1"):
        assert (await api.get(v(SKILL, selector))).status_code == 423
    listed = (await ok(await api.get(f"{SKILL}/versions")))["items"]
    assert all(item["status"]["blocked"] for item in listed)
    await ok(await api.post(f"{SKILL}/unblock", json={"reason": "cleared by security"}))
    assert (await api.get(v(SKILL, "latest"))).status_code == 200
    actions = [e["action"] for e in (await ok(await api.get("/v1/audit")))["items"]]
    assert actions[-2:] == ["resource.block", "resource.unblock"]


async def test_an_environment_resolves_among_the_versions_it_admits(api: httpx.AsyncClient) -> None:
    policy = {
        "apiVersion": "agentreg.dev/v1",
        "kind": "Policy",
        "spec": {
            "environments": {
                "prod": {"states": ["certified"], "minAgeDays": 7},
                "dev": {"states": ["draft", "experimental", "certified"]},
            }
        },
    }
    with clock.frozen(T0) as frozen:
        await publish(api, "1.0.0", "1.1.0")
        await ok(await api.put("/v1/policy", json=policy))
        await force(api, "1.0.0", "experimental", "certified")
        for query in ("?environment=prod", "?environment=prod&includeBlocked=false"):
            refused = await api.get(v(SKILL, "latest") + query)  # certified, but younger than 7 days
            assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_admitted"
        dev = await ok(await api.get(v(SKILL, "latest") + "?environment=dev"))
        assert dev["document"]["metadata"]["version"] == "1.1.0"
        frozen.advance(timedelta(days=8))  # no write: the cached refusal expires on time
        prod = await ok(await api.get(v(SKILL, "latest") + "?environment=prod"))
        assert prod["document"]["metadata"]["version"] == "1.0.0"
        exact = await api.get(v(SKILL, "1.1.0") + "?environment=prod")
        assert exact.status_code == 409
        check = await ok(
            await api.post(
                "/v1/governance/check", json={"ref": "skill/com.acme/triage@^1", "environment": "prod"}
            )
        )
        assert (
            check["allowed"] is True and check["resolvedVersion"] == "1.0.0" and check["state"] == "certified"
        )
        assert {r["id"] for r in check["rules"]} >= {"environment.prod.state", "environment.prod.minAge"}
        bad = await api.get(v(SKILL, "latest") + "?environment=Prod!")
        assert bad.status_code == 422


@pytest.mark.parametrize(
    "path", ["/v1/skills/com.acme/nope/versions/1.0.0/promote", v(SKILL, "9.9.9", "/promote")]
)
async def test_moves_on_unknown_versions_are_not_found(api: httpx.AsyncClient, path: str) -> None:
    await publish(api, "1.0.0")
    response = await api.post(path, json={"reason": "x"})
    assert response.status_code == 404
