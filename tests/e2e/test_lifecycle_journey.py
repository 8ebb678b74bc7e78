"""End to end, authentication on: a version's journey from draft to certified on a real `agentreg serve`
process, with real evidence calls (evaluations, a scan, a gateway's usage), a tenant policy, the author's
own approval refused and a second key's counted, then the admission check a gateway makes, and the kill
switch. The same journey as the README's "Lifecycle and governance" section."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agentreg.domain.usage import histogram
from tests import factories as f
from tests.e2e.test_server_process import ROOT, server

pytestmark = pytest.mark.e2e
AGENT = "/v1/agents/com.acme/support-bot/versions/1.0.0"

# The README's policy, so the README's journey and this test cannot drift apart.
POLICY = yaml.safe_load((ROOT / "docs" / "examples" / "policy.yaml").read_text())


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def check(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def usage_items(now: datetime) -> list[dict[str, Any]]:
    """Eight days of a gateway's daily buckets: 160 requests a day from 25 callers, 1 error a day."""
    callers = [hashlib.sha256(f"user-{i}".encode()).hexdigest() for i in range(25)]
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        {
            "ref": "agent/com.acme/support-bot@1.0.0",
            "bucketStart": (today - timedelta(days=day)).isoformat(),
            "bucketSeconds": 86400,
            "requests": 160,
            "errors": 1,
            "latency": {"counts": list(histogram([180.0] * 150 + [1400.0] * 10))},
            "callers": {"ids": callers},
        }
        for day in range(1, 9)
    ]


def test_draft_to_certified_with_real_evidence_and_two_people(tmp_path: Path) -> None:
    root_key = "agr_" + secrets.token_urlsafe(32)
    env = {
        "AGENTREG_AUTH": "required",
        "AGENTREG_BOOTSTRAP_KEY": root_key,
        "AGENTREG_DATA_DIR": str(tmp_path),
    }
    with server(env) as url, httpx.Client(base_url=url, timeout=10) as http:
        root = bearer(root_key)
        check(http.post("/v1/tenants", json={"id": "acme"}, headers=root), 201)

        def key(name: str, role: str, **scope: Any) -> dict[str, str]:
            body = {"name": name, "tenant": "acme", "roles": [role], **scope}
            return bearer(check(http.post("/v1/keys", json=body, headers=root), 201)["key"])

        admin, dev, gateway = key("alice", "tenant_admin"), key("bob-ci", "developer"), key("gw", "operator")
        check(http.post("/v1/namespaces", json={"name": "com.acme"}, headers=admin), 201)
        check(http.put("/v1/policy", json=POLICY, headers=admin))
        published = check(http.post("/v1/agents", json=f.agent(), headers=dev), 201)
        assert published["status"]["state"] == "draft"

        # draft -> experimental: a basic evaluation and a clean scan, attested by the developer's CI key.
        refused = http.post(f"{AGENT}/promote", json={"reason": "first cut"}, headers=dev)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "gates_not_passed"
        evaluation = {"suite": "a2a-conformance", "level": "basic", "score": 1.0, "passed": True}
        check(http.post(f"{AGENT}/evaluations", json=evaluation, headers=dev), 201)
        check(http.post(f"{AGENT}/scans", json={"scanner": "trivy", "findings": []}, headers=dev), 201)
        promoted = check(http.post(f"{AGENT}/promote", json={"reason": "passes smoke tests"}, headers=dev))
        assert promoted["status"]["state"] == "experimental"

        # experimental -> certified: a comprehensive evaluation, real traffic, and someone else's approval.
        full = {"suite": "support-evals", "level": "comprehensive", "score": 0.91, "passed": True}
        check(http.post(f"{AGENT}/evaluations", json=full, headers=dev), 201)
        assert check(http.post("/v1/usage", json={"items": usage_items(datetime.now(UTC))}, headers=gateway))
        assert (
            http.post("/v1/usage", json={"items": usage_items(datetime.now(UTC))}, headers=dev).status_code
            == 403
        )
        usage = check(http.get(f"{AGENT}/usage", params={"window": "30d"}, headers=dev))
        assert usage["requests"] == 1280 and 24 <= usage["callers"] <= 26
        report = check(http.get(f"{AGENT}/readiness", headers=dev))
        assert {g["gate"]: g["status"] for g in report["gates"]}["approvals"] == "pending"
        assert [g["gate"] for g in report["gates"] if g["status"] != "pass"] == ["approvals"]
        own = http.post(f"{AGENT}/approvals", json={"comment": "lgtm"}, headers=dev)
        assert own.status_code == 403 and "author" in own.json()["error"]["message"]
        check(http.post(f"{AGENT}/approvals", json={"comment": "reviewed the evals"}, headers=admin), 201)
        certified = check(http.post(f"{AGENT}/promote", json={"reason": "meets the bar"}, headers=dev))
        assert certified["status"]["state"] == "certified" and certified["report"]["ready"] is True

        # What a gateway asks on its hot path: the active config in prod, and may it run there.
        prod = http.get(
            "/v1/agents/com.acme/support-bot/versions/latest/resolved?environment=prod", headers=gateway
        )
        assert prod.status_code == 200 and prod.json()["status"]["state"] == "certified"
        verdict = check(
            http.post(
                "/v1/governance/check",
                json={"ref": "agent/com.acme/support-bot@^1", "environment": "prod"},
                headers=gateway,
            )
        )
        assert verdict["allowed"] is True and verdict["resolvedVersion"] == "1.0.0"
        assert {r["id"]: r["result"] for r in verdict["rules"]}["cel.described"] == "pass"

        # The kill switch: one call, and every read and check says no.
        assert http.post(f"{AGENT}/block", json={"reason": "leaks tokens"}, headers=dev).status_code == 403
        check(http.post(f"{AGENT}/block", json={"reason": "leaks tokens"}, headers=admin))
        assert http.get(AGENT, headers=gateway).status_code == 423
        assert http.get(AGENT + "?environment=prod", headers=gateway).status_code == 423
        blocked = check(
            http.post("/v1/governance/check", json={"ref": "agent/com.acme/support-bot@^1"}, headers=gateway)
        )
        assert blocked["allowed"] is False

        actions = [e["action"] for e in check(http.get("/v1/audit", headers=admin))["items"]]
        assert actions.count("version.promote") == 2 and "version.approve" in actions
        assert actions[-1] == "version.block" and "policy.update" in actions
        assert check(http.get("/v1/audit/verify", headers=admin))["ok"] is True
