"""End to end with authentication on: a real `agentreg serve` process (AGENTREG_AUTH=required), bootstrap
key from the environment, two tenants, scoped keys, sharing, idempotent POSTs, audit checkpoint and verify."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_server_process import ROOT, server

pytestmark = pytest.mark.e2e


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def examples_yaml() -> str:
    return "\n---\n".join(p.read_text() for p in sorted((ROOT / "examples").glob("*.yaml")))


def test_two_tenants_with_keys_sharing_and_a_verified_audit_trail(tmp_path: Path) -> None:
    root_key = "agr_" + secrets.token_urlsafe(32)
    env = {
        "AGENTREG_AUTH": "required",
        "AGENTREG_BOOTSTRAP_KEY": root_key,
        "AGENTREG_DATA_DIR": str(tmp_path),
    }
    with server(env) as url, httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
        anonymous = http.get("/v1/agents")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.headers["x-content-type-options"] == "nosniff"

        root = bearer(root_key)
        assert http.get("/v1/whoami", headers=root).json()["superAdmin"] is True
        for tenant in ("acme", "beta"):
            assert http.post("/v1/tenants", json={"id": tenant}, headers=root).status_code == 201
        admin = http.post(
            "/v1/keys", json={"name": "acme-admin", "tenant": "acme", "roles": ["tenant_admin"]}, headers=root
        )
        assert admin.status_code == 201 and admin.headers["cache-control"] == "no-store"
        acme_admin = bearer(admin.json()["key"])
        beta = bearer(
            http.post(
                "/v1/keys", json={"name": "beta-viewer", "tenant": "beta", "roles": ["viewer"]}, headers=root
            ).json()["key"]
        )

        assert http.post("/v1/namespaces", json={"name": "com.acme"}, headers=acme_admin).status_code == 201
        assert (
            http.post("/v1/namespaces", json={"name": "com.acme", "tenant": "beta"}, headers=root).status_code
            == 409
        )
        developer = http.post(
            "/v1/keys",
            json={"name": "ci", "roles": ["developer"], "scope": {"namespaces": ["com.acme"]}},
            headers=acme_admin,
        ).json()
        ci = bearer(developer["key"])

        applied = http.post(
            "/v1/apply", content=examples_yaml(), headers={**ci, "content-type": "application/yaml"}
        )
        assert applied.status_code == 200, applied.text
        assert {r["result"] for r in applied.json()["results"]} == {"created"}

        hot = "/v1/agents/com.acme/support-bot/versions/latest"
        assert http.get(hot, headers=ci).status_code == 200
        hidden = http.get(hot, headers=beta)
        missing = http.get("/v1/agents/com.acme/no-such-bot/versions/latest", headers=beta)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["error"]["message"].replace("support-bot", "X") == missing.json()["error"][
            "message"
        ].replace("no-such-bot", "X")

        shared = http.put("/v1/namespaces/com.acme/sharing", json={"public": True}, headers=acme_admin)
        assert shared.status_code == 200 and shared.json()["public"] is True
        assert http.get(hot, headers=beta).status_code == 200
        skill = http.get("/v1/skills/com.acme/ticket-triage/versions/latest", headers=ci).json()["document"]
        skill["metadata"]["version"] = "9.0.0"
        assert http.post("/v1/skills", json=skill, headers=beta).status_code == 403

        idempotent = {**ci, "idempotency-key": "release-9"}
        first = http.post("/v1/skills", json=skill, headers=idempotent)
        again = http.post("/v1/skills", json=skill, headers=idempotent)
        assert first.status_code == again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
        skill["metadata"]["version"] = "9.0.1"
        assert http.post("/v1/skills", json=skill, headers=idempotent).status_code == 422

        events = http.get("/v1/audit", params={"action": "version.*"}, headers=acme_admin).json()["items"]
        assert len(events) == 7 and {e["actor"] for e in events} == {f"key:{developer['id']}"}
        assert all(e["clientIp"] == "127.0.0.1" and e["requestId"] for e in events)
        assert http.get("/v1/audit", headers=ci).status_code == 403
        assert http.post("/v1/audit/checkpoints", headers=acme_admin).status_code == 201
        verified = http.get("/v1/audit/verify", headers=acme_admin).json()
        assert verified["ok"] is True and verified["checkpoints"] >= 1, verified
        assert (tmp_path / "audit" / "checkpoints.jsonl").read_text().count('"tenant": "acme"') >= 1

        assert http.delete(f"/v1/keys/{developer['id']}", headers=acme_admin).status_code == 200
        assert http.get(hot, headers=ci).status_code == 401
