"""The /v1 API in process (fast lane included): publish, read, list, versions, errors and ETags."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml

from tests import factories as f

pytestmark = pytest.mark.usefixtures("store")


async def post(
    api: httpx.AsyncClient, plural: str, document: object, content_type: str = "application/json"
) -> httpx.Response:
    body = json.dumps(document) if content_type == "application/json" else yaml.safe_dump(document)
    return await api.post(f"/v1/{plural}", content=body, headers={"content-type": content_type})


def error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]  # type: ignore[no-any-return]


async def test_publish_json_then_yaml_is_created_then_unchanged(api: httpx.AsyncClient) -> None:
    first = await post(api, "skills", f.skill())
    assert first.status_code == 201
    body = first.json()
    assert body["result"] == "created" and body["status"]["digest"].startswith("sha256:")
    assert body["document"]["metadata"] == {"namespace": "com.acme", "name": "triage", "version": "1.0.0"}
    again = await post(api, "skills", f.skill(), "application/yaml")
    assert again.status_code == 200 and again.json()["result"] == "unchanged"


async def test_publish_to_the_wrong_collection_names_the_kind(api: httpx.AsyncClient) -> None:
    response = await post(api, "agents", f.skill())
    assert response.status_code == 422
    assert error(response)["details"] == [
        {"field": "/kind", "issue": "this endpoint takes Agent documents, not Skill"}
    ]


@pytest.mark.parametrize(
    ("mutate", "status", "code", "field"),
    [
        (lambda d: f.with_(d, "/spec/description", ...), 422, "invalid_document", "/spec/description"),
        (lambda d: f.with_(d, "/metadata/version", "1.0"), 422, "invalid_document", "/metadata/version"),
        (lambda d: f.with_(d, "/metadata/name", "bad name"), 422, "invalid_document", "/metadata/name"),
        (
            lambda d: f.with_(d, "/metadata/version", "{{version}}"),
            422,
            "invalid_document",
            "/metadata/version",
        ),
    ],
)
async def test_invalid_documents_get_422_naming_the_field(
    api: httpx.AsyncClient, mutate, status, code, field
) -> None:  # type: ignore[no-untyped-def]
    response = await post(api, "skills", mutate(f.skill()))
    assert response.status_code == status
    body = error(response)
    assert body["code"] == code
    assert field in [d["field"] for d in body["details"]]  # type: ignore[attr-defined]


async def test_conflicting_republish_is_409_naming_the_existing_digest(api: httpx.AsyncClient) -> None:
    digest = (await post(api, "skills", f.skill())).json()["status"]["digest"]
    response = await post(api, "skills", f.with_(f.skill(), "/spec/license", "MIT"))
    assert response.status_code == 409
    assert digest in error(response)["message"]  # type: ignore[operator]


async def test_malformed_bodies_are_400_with_position(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/skills", content=b'{"kind": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error(response)["code"] == "malformed"
    response = await api.post(
        "/v1/skills", content=b"kind: [a\nb: c\n", headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 400 and "line" in error(response)["message"]  # type: ignore[operator]


async def test_unsupported_media_type_is_415(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/skills", content=b"<xml/>", headers={"content-type": "application/xml"})
    assert response.status_code == 415 and error(response)["code"] == "unsupported_media_type"


async def test_bodies_over_one_mebibyte_are_413(api: httpx.AsyncClient) -> None:
    big = f.with_(f.skill(), "/spec/instructions", "x" * (1024 * 1024 + 1))
    response = await post(api, "skills", big)
    assert response.status_code == 413 and error(response)["code"] == "too_large"
    assert (await api.get("/v1/skills")).json()["items"] == []


async def test_unknown_collection_and_resource_are_404(api: httpx.AsyncClient) -> None:
    assert error(await api.get("/v1/widgets"))["code"] == "not_found"
    response = await api.get("/v1/skills/com.acme/nope")
    assert response.status_code == 404 and error(response)["code"] == "not_found"
    response = await api.get("/v1/skills/com.acme/nope/versions/latest")
    assert response.status_code == 404 and error(response)["code"] == "not_found"


async def test_bad_query_parameters_are_422_naming_the_parameter(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/skills", params={"limit": 0})
    assert response.status_code == 422
    assert error(response)["details"][0]["field"] == "/limit"  # type: ignore[index]
    response = await api.get("/v1/skills", params={"cursor": "garbage"})
    assert response.status_code == 422 and error(response)["details"][0]["field"] == "/cursor"  # type: ignore[index]


async def test_version_read_has_an_etag_and_honours_if_none_match(api: httpx.AsyncClient) -> None:
    digest = (await post(api, "skills", f.skill())).json()["status"]["digest"]
    for path in (
        "/v1/skills/com.acme/triage/versions/1.0.0",
        "/v1/skills/com.acme/triage/versions/latest?x=1",
    ):
        response = await api.get(path)
        assert response.status_code == 200
        assert response.headers["etag"] == f'"{digest}"'
        cached = await api.get(path, headers={"if-none-match": response.headers["etag"]})
        assert cached.status_code == 304 and cached.content == b""
    other = await api.get(
        "/v1/skills/com.acme/triage/versions/1.0.0", headers={"if-none-match": '"sha256:other"'}
    )
    assert other.status_code == 200


async def test_resource_and_versions_listing(api: httpx.AsyncClient) -> None:
    for version in ["1.0.0", "2.0.0", "1.10.0", "2.1.0-rc.1"]:
        assert (await post(api, "skills", f.skill(version=version))).status_code == 201
    resource = (await api.get("/v1/skills/com.acme/triage")).json()
    assert resource["latest"]["version"] == "2.0.0" and resource["versionCount"] == 4
    versions = (await api.get("/v1/skills/com.acme/triage/versions")).json()["items"]
    assert [v["version"] for v in versions] == ["2.1.0-rc.1", "2.0.0", "1.10.0", "1.0.0"]
    assert all(
        set(v["status"])
        == {
            "digest",
            "publishedAt",
            "publishedBy",
            "origin",
            "warnings",
            "state",
            "stateChangedAt",
            "blocked",
        }
        | {"block", "deprecation", "redacted"}
        and v["status"]["state"] == "draft"
        and v["status"]["blocked"] is False
        for v in versions
    )


async def test_listing_paginates_across_three_pages_with_filters(api: httpx.AsyncClient) -> None:
    for i in range(7):
        document = f.with_(f.skill(f"s{i}"), "/metadata/labels", {"team": "a" if i % 2 else "b"})
        await post(api, "skills", document)
    names: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/skills", params=params)).json()
        names.extend(item["name"] for item in page["items"])
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == 3 and names == [f"s{i}" for i in range(7)]
    team_a = (await api.get("/v1/skills", params={"label": "team=a"})).json()["items"]
    assert [i["name"] for i in team_a] == ["s1", "s3", "s5"]
    assert [i["name"] for i in (await api.get("/v1/skills", params={"q": "S4 SKILL"})).json()["items"]] == [
        "s4"
    ]
    assert (await api.get("/v1/skills", params={"namespace": "com.other"})).json()["items"] == []


async def test_patch_labels_is_a_merge_patch_outside_the_digest(api: httpx.AsyncClient) -> None:
    digest = (
        await post(api, "skills", f.with_(f.skill(), "/metadata/labels", {"team": "a", "tier": "1"}))
    ).json()["status"]["digest"]
    response = await api.patch(
        "/v1/skills/com.acme/triage",
        content=json.dumps({"labels": {"tier": None, "owner": "bob"}}),
        headers={"content-type": "application/merge-patch+json"},
    )
    assert response.status_code == 200 and response.json()["labels"] == {"owner": "bob", "team": "a"}
    version = (await api.get("/v1/skills/com.acme/triage/versions/1.0.0")).json()
    assert version["document"]["metadata"]["labels"] == {"owner": "bob", "team": "a"}
    assert version["status"]["digest"] == digest
    response = await api.patch("/v1/skills/com.acme/triage", json={"spec": {}})
    assert response.status_code == 422 and error(response)["details"][0]["field"] == "/spec"  # type: ignore[index]


async def test_warnings_are_returned_and_stored(api: httpx.AsyncClient) -> None:
    card = f.card_03()
    del card["protocolVersion"]
    body = (await post(api, "agents", f.agent(card=card))).json()
    assert [w["field"] for w in body["warnings"]] == ["/spec/card/protocolVersion"]
    stored = (await api.get("/v1/agents/com.acme/support-bot/versions/1.0.0")).json()
    assert [w["field"] for w in stored["status"]["warnings"]] == ["/spec/card/protocolVersion"]


async def test_health_readiness_metrics_and_openapi(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "migrations": "ok"}
    await post(api, "skills", f.skill())
    await api.get("/v1/skills/com.acme/triage/versions/1.0.0")
    await api.get("/v1/skills/com.acme/triage/versions/1.0.0")
    metrics = (await api.get("/metrics")).text
    assert 'agentreg_http_requests_total{method="POST",route="/v1/{plural}",status="201"} 1.0' in metrics
    assert 'route="/v1/{plural}/{namespace}/{name}/versions/{selector}",status="200"} 2.0' in metrics
    assert "agentreg_hot_cache_hit_ratio 0.5" in metrics
    spec = (await api.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert "/v1/agents/{namespace}/{name}/versions/{selector}/resolved" in spec["paths"]


async def test_etag_changes_when_labels_shown_in_the_body_change(api: httpx.AsyncClient) -> None:
    await post(api, "skills", f.skill())
    path = "/v1/skills/com.acme/triage/versions/1.0.0"
    before = (await api.get(path)).headers["etag"]
    await api.patch("/v1/skills/com.acme/triage", json={"labels": {"team": "new"}})
    after = await api.get(path, headers={"if-none-match": before})
    assert after.status_code == 200
    assert after.headers["etag"] != before
    assert after.json()["document"]["metadata"]["labels"] == {"team": "new"}
    resolved_path = "/v1/agents/com.acme/bot/versions/latest/resolved"
    await post(api, "agents", f.agent("bot", config={"skills": [{"ref": "com.acme/triage"}]}))
    etag = (await api.get(resolved_path)).headers["etag"]
    assert (await api.get(resolved_path, headers={"if-none-match": etag})).status_code == 304
    await api.patch("/v1/skills/com.acme/triage", json={"labels": {"team": "newer"}})
    assert (await api.get(resolved_path, headers={"if-none-match": etag})).status_code == 200


async def test_hostile_inputs_get_4xx_never_500(api: httpx.AsyncClient) -> None:
    deep = await api.post("/v1/skills", content=b"[" * 100_000, headers={"content-type": "application/json"})
    assert deep.status_code == 400 and error(deep)["code"] == "malformed"
    nul = await post(api, "skills", f.with_(f.skill(), "/spec/instructions", "a\u0000b"))
    assert nul.status_code == 422 and error(nul)["details"][0]["field"] == "/spec/instructions"  # type: ignore[index]
    assert (await api.get("/v1/skills", params={"q": "a\u0000"})).status_code == 422
    assert (await api.get("/v1/skills", params={"namespace": "a\u0000"})).status_code == 422
    assert (await api.get("/v1/skills", params={"label": "a=\u0000"})).status_code == 422
    assert (await api.get("/v1/models/n/m%00/versions/1.0.0")).status_code == 404
    assert (await api.get("/v1/models/n/m%00")).status_code == 404
    bad_json = await api.put(
        "/v1/skills/com.acme/x/aliases/stable", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and error(bad_json)["code"] == "malformed"
    await post(api, "skills", f.skill())
    not_object = await api.patch("/v1/skills/com.acme/triage", json=[])
    assert not_object.status_code == 422 and error(not_object)["details"] == [
        {"field": "", "issue": "the body must be a JSON object"}
    ]


async def test_failed_apply_items_use_the_kind_name(api: httpx.AsyncClient) -> None:
    broken = f.with_(f.mcp_server(), "/spec/description", 7)
    results = (await api.post("/v1/apply", json=[broken])).json()["results"]
    assert results[0]["result"] == "failed" and results[0]["kind"] == "mcp-server"
