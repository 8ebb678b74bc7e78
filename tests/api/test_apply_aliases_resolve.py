"""/v1/apply, aliases, the active config and batch resolution over HTTP."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests import factories as f

pytestmark = pytest.mark.usefixtures("store")


async def apply(api: httpx.AsyncClient, text: str, dry_run: bool = False) -> httpx.Response:
    params = {"dryRun": "true"} if dry_run else {}
    return await api.post(
        "/v1/apply", content=text, params=params, headers={"content-type": "application/yaml"}
    )


async def test_apply_examples_then_resolve_the_active_config(
    api: httpx.AsyncClient, examples_text: str
) -> None:
    response = await apply(api, examples_text)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["result"] for r in results] == ["created"] * 6
    assert [r["index"] for r in results] == list(range(6))
    unresolved = await api.get("/v1/agents/com.acme/support-bot/versions/1.2.0/resolved")
    assert unresolved.status_code == 409
    assert unresolved.json()["error"]["code"] == "unresolved_ref"
    assert unresolved.json()["error"]["details"][0]["field"] == "/spec/config/mcpServers/0/ref"
    put = await api.put("/v1/mcp-servers/com.acme/github/aliases/stable", json={"version": "1.4.2"})
    assert put.status_code == 200 and put.json()["version"] == "1.4.2"
    resolved = await api.get("/v1/agents/com.acme/support-bot/versions/latest/resolved")
    assert resolved.status_code == 200
    deps = {d["field"]: (d["kind"], d["name"], d["version"]) for d in resolved.json()["dependencies"]}
    assert deps == {
        "/spec/config/model/ref": ("model", "llama-3-8b", "1.0.0"),
        "/spec/config/mcpServers/0/ref": ("mcp-server", "github", "1.4.2"),
        "/spec/config/skills/0/ref": ("skill", "ticket-triage", "1.1.0"),
    }
    again = await apply(api, examples_text)
    assert [r["result"] for r in again.json()["results"]] == ["unchanged"] * 6


async def test_apply_reports_each_failure_and_answers_207(api: httpx.AsyncClient) -> None:
    good = yaml.safe_dump(f.skill())
    invalid = yaml.safe_dump(f.with_(f.skill("other"), "/spec/description", ...))
    text = f"{good}---\nkind: [unclosed\n---\n{invalid}---\n{yaml.safe_dump(f.model())}"
    response = await apply(api, text)
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["result"] for r in results] == ["created", "failed", "failed", "created"]
    # PyYAML notices the unclosed bracket where that document ends: the line after it, in stream numbering.
    unclosed_line = text.splitlines().index("kind: [unclosed") + 1
    assert results[1]["error"]["code"] == "malformed"
    assert f"line {unclosed_line + 1}, column 1" in results[1]["error"]["message"]
    assert results[2]["error"]["code"] == "invalid_document"
    assert results[2]["error"]["details"] == [{"field": "/spec/description", "issue": "is required"}]
    assert results[2]["name"] == "com.acme/other"


async def test_apply_dry_run_validates_and_writes_nothing(api: httpx.AsyncClient, examples_text: str) -> None:
    response = await apply(api, examples_text, dry_run=True)
    assert [r["result"] for r in response.json()["results"]] == ["valid"] * 6
    assert (await api.get("/v1/agents")).json()["items"] == []


async def test_apply_takes_a_json_array(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/apply", json=[f.skill(), f.model()])
    assert [r["result"] for r in response.json()["results"]] == ["created", "created"]


async def test_apply_body_over_ten_mebibytes_is_413(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/apply", content=b"x" * (10 * 1024 * 1024 + 1), headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 413


async def test_alias_lifecycle_and_errors(api: httpx.AsyncClient) -> None:
    await apply(api, yaml.safe_dump(f.skill()) + "---\n" + yaml.safe_dump(f.skill(version="1.1.0")))
    base = "/v1/skills/com.acme/triage/aliases"
    assert (await api.put(f"{base}/stable", json={"version": "1.0.0"})).status_code == 200
    got = await api.get(f"{base}/stable")
    assert got.json()["version"] == "1.0.0" and got.headers["etag"] == '"1.0.0"'
    stale = await api.put(f"{base}/stable", json={"version": "1.1.0"}, headers={"if-match": '"0.1.0"'})
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "precondition_failed"
    moved = await api.put(f"{base}/stable", json={"version": "1.1.0"}, headers={"if-match": '"1.0.0"'})
    assert moved.status_code == 200
    assert [a["alias"] for a in (await api.get(base)).json()["items"]] == ["stable"]
    assert (await api.get("/v1/skills/com.acme/triage")).json()["aliases"] == {"stable": "1.1.0"}
    bad = await api.put(f"{base}/latest", json={"version": "1.0.0"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "/alias"
    missing = await api.put(f"{base}/canary", json={"version": "9.9.9"})
    assert missing.status_code == 404
    extra = await api.put(f"{base}/canary", json={"version": "1.0.0", "note": "x"})
    assert extra.status_code == 422 and extra.json()["error"]["code"] == "invalid_request"
    assert (await api.delete(f"{base}/stable")).status_code == 204
    assert (await api.delete(f"{base}/stable")).status_code == 404


async def test_batch_resolve(api: httpx.AsyncClient) -> None:
    await apply(api, yaml.safe_dump(f.skill()))
    response = await api.post(
        "/v1/resolve", json={"refs": ["skill/com.acme/triage@^1", "skill/com.acme/missing"]}
    )
    results = response.json()["results"]
    assert results[0]["version"] == "1.0.0" and results[0]["document"]["kind"] == "Skill"
    assert results[1]["error"]["code"] == "not_found"
    assert (await api.post("/v1/resolve", json={"refs": []})).status_code == 422
