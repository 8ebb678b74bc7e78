"""Sources and inventory rows through the services on both databases.

Rows are written by the real ``Reconciler`` from ``Observation``s, as a running source would; the services
under test are what users call: sources (API- and file-managed), the deployments list and its filters,
"where does it run", and the overlay.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentreg.domain.errors import Conflict, Forbidden, Invalid, InvalidRequest, NotFound, PreconditionFailed
from agentreg.domain.health import Health
from agentreg.domain.inventory import REF_ANNOTATION, ObjectKey, Observation
from agentreg.domain.kinds import Kind
from agentreg.domain.principals import Principal, Role, member
from agentreg.domain.sources import parse_source
from agentreg.services import clock, inventory
from agentreg.services.inventory import DeploymentFilters
from agentreg.services.publish import publish
from agentreg.services.reconcile import Reconciler
from agentreg.store.interface import AuditQuery, Store
from agentreg.store.inventory import new_source
from agentreg.store.sql import SqlStore
from tests import factories as f

ADMIN = member("alice", "acme", Role.TENANT_ADMIN)
OPERATOR = member("otto", "acme", Role.OPERATOR)
DEVELOPER = member("dave", "acme", Role.DEVELOPER)
VIEWER = member("vera", "acme", Role.VIEWER)
STRANGER = member("mallory", "other", Role.TENANT_ADMIN)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SOURCE: dict[str, Any] = {
    "name": "prod-eu",
    "type": "kubernetes",
    "path": "objects",
    "cluster": "prod-eu",
    "environment": "prod",
}


def put_source(*args: Any, **kwargs: Any) -> Any:
    """The service as the API calls it on a server whose AGENTREG_SOURCES_ROOT is ``/``."""
    kwargs.setdefault("files_root", "/")
    return inventory.put_source(*args, **kwargs)


def agent_object(name: str, ref: str | None = None, **fields: Any) -> Observation:
    annotations = {REF_ANNOTATION: ref} if ref else {}
    return Observation(
        key=ObjectKey("prod-eu", "kagent.dev", "Agent", "team-a", name),
        api_version="kagent.dev/v1alpha2",
        uid=f"uid-{name}",
        catalog_kind=Kind.AGENT,
        title=name,
        spec={"description": name},
        status={"ready": True},
        labels={"app": name, "tier": "observed"},
        annotations=annotations,
        health=Health.PASSING,
        endpoint=f"http://{name}.team-a:8080",
        **fields,
    )


PROVIDER = Observation(
    key=ObjectKey("prod-eu", "kagent.dev", "ModelProviderConfig", "team-a", "openai"),
    api_version="kagent.dev/v1alpha2",
    uid="uid-openai",
    title="openai",
    health=Health.WARNING,
)


async def seed(
    store: Store, actor: Principal = ADMIN, config: dict[str, Any] | None = None
) -> dict[str, int]:
    """A published agent and a source with a linked, a drifted, an unregistered, a non-catalog and an
    orphaned row; returns their ids by name."""
    await publish(store, actor, f.agent())
    view, _ = await put_source(store, actor, dict(config or SOURCE))
    reconciler = Reconciler(store, parse_source({**view.row.config}))
    card = {"card": {"name": "Support Bot"}, "digest": "sha256:ab", "url": "http://linked.team-a:8080"}
    linked = agent_object("linked", "com.acme/support-bot@1.0.0", extra={"card": card, "conditions": []})
    objects = [
        linked,
        agent_object("drifted", "com.acme/support-bot@9.9.9"),
        agent_object("shadow"),
        PROVIDER,
        agent_object("gone", "com.acme/support-bot@1.0.0"),
    ]
    result = await reconciler.snapshot(objects)
    assert result.added == 5, result
    await reconciler.snapshot(objects[:-1])  # "gone" is no longer emitted: an orphan
    async with store.read() as tx:
        rows = await tx.list_deployments(inventory._query(DeploymentFilters()))
    return {r.key.name: r.id for r in rows}


@pytest.fixture(autouse=True)
async def tenants(store: SqlStore) -> None:
    async with store.begin() as tx:
        for tenant in ("acme", "other"):
            await tx.insert_tenant(tenant, tenant, NOW)


async def actions(store: Store, tenant: str = "acme") -> list[str]:
    async with store.read() as tx:
        return [e.event.action for e in await tx.list_audit(AuditQuery(tenant, limit=100))]


# --- sources ---------------------------------------------------------------------------------------------


async def test_an_operator_creates_a_source_in_its_home_tenant_and_members_see_it(store: SqlStore) -> None:
    view, created = await put_source(store, OPERATOR, SOURCE)
    assert created and view.row.tenant_id == "acme" and view.row.managed_by == "api"
    body = view.to_json()
    assert body["config"]["tenant"] == "acme" and body["config"]["cluster"] == "prod-eu"
    assert body["state"] == "pending" and body["error"] is None and body["counts"]["total"] == 0
    assert [v.row.name for v in await inventory.list_sources(store, VIEWER)] == ["prod-eu"]
    assert (await inventory.get_source(store, VIEWER, "prod-eu")).row.type == "kubernetes"
    assert await inventory.list_sources(store, STRANGER) == []
    with pytest.raises(NotFound):
        await inventory.get_source(store, STRANGER, "prod-eu")
    assert "source.put" in await actions(store)


async def test_replacing_a_source_keeps_its_status_and_says_it_was_not_created(store: SqlStore) -> None:
    await put_source(store, ADMIN, SOURCE)
    view, created = await put_source(store, ADMIN, {**SOURCE, "environment": "staging"}, "prod-eu")
    assert not created and view.row.config["environment"] == "staging"
    with pytest.raises(Conflict, match="exists already"):
        await put_source(store, ADMIN, SOURCE, create_only=True)


async def test_only_tenant_admins_and_operators_manage_sources(store: SqlStore) -> None:
    for actor in (DEVELOPER, VIEWER):
        with pytest.raises(Forbidden):
            await put_source(store, actor, SOURCE)
    await put_source(store, ADMIN, SOURCE)
    for call in (inventory.request_sync, inventory.delete_source):
        with pytest.raises(Forbidden):
            await call(store, VIEWER, "prod-eu")
    with pytest.raises(NotFound):  # another tenant's source: not found, never forbidden
        await inventory.delete_source(store, STRANGER, "prod-eu")
    with pytest.raises(NotFound):
        await put_source(store, ADMIN, {**SOURCE, "name": "x", "tenant": "other"})


async def test_a_name_used_by_another_tenant_is_a_conflict(store: SqlStore) -> None:
    await put_source(store, STRANGER, SOURCE)
    with pytest.raises(Conflict, match="taken"):
        await put_source(store, ADMIN, SOURCE)


async def test_bad_source_configuration_names_the_field(store: SqlStore) -> None:
    with pytest.raises(Invalid) as caught:
        await put_source(store, ADMIN, {"name": "Bad Name", "type": "kubernetes", "inCluster": "yes"})
    fields = {d.field for d in caught.value.details}
    assert {"/name", "/inCluster"} <= fields
    with pytest.raises(Invalid) as caught:
        await put_source(store, ADMIN, SOURCE, "other-name")
    assert caught.value.details[0].field == "/name"


async def test_a_file_managed_source_cannot_be_changed_or_removed_by_api(store: SqlStore) -> None:
    config = parse_source({**SOURCE, "tenant": "acme"})
    async with store.begin() as tx:
        await tx.put_source(new_source(config, "file", "config:AGENTREG_SOURCES", NOW))
    for call in (
        put_source(store, ADMIN, SOURCE, "prod-eu"),
        inventory.delete_source(store, ADMIN, "prod-eu"),
    ):
        with pytest.raises(Conflict, match="AGENTREG_SOURCES"):
            await call
    view = await inventory.request_sync(store, OPERATOR, "prod-eu")  # a sync is no change of configuration
    assert view.row.managed_by == "file"
    async with store.begin() as tx:
        assert await tx.take_sync_requests() == ["prod-eu"]
    assert "source.sync" in await actions(store)


async def test_deleting_a_source_removes_its_rows_and_is_audited(store: SqlStore) -> None:
    await seed(store)
    assert await inventory.delete_source(store, OPERATOR, "prod-eu") == 5
    views, _ = await inventory.list_deployments(store, ADMIN)
    assert views == []
    assert "source.delete" in await actions(store)


async def test_a_sources_counts_come_from_its_rows(store: SqlStore) -> None:
    await seed(store)
    counts = (await inventory.get_source(store, VIEWER, "prod-eu")).counts
    assert counts["total"] == 5 and counts["orphaned"] == 1
    assert (counts["linked"], counts["drift"], counts["unregistered"], counts["none"]) == (2, 1, 1, 1)


# --- deployments -----------------------------------------------------------------------------------------


async def test_rows_render_the_object_its_link_and_its_flags(store: SqlStore) -> None:
    ids = await seed(store)
    body = (await inventory.get_deployment(store, VIEWER, ids["linked"])).to_json()
    assert body["object"] == {
        "apiVersion": "kagent.dev/v1alpha2",
        "kind": "Agent",
        "namespace": "team-a",
        "name": "linked",
        "uid": "uid-linked",
    }
    assert (body["source"], body["cluster"], body["environment"], body["kind"]) == (
        "prod-eu",
        "prod-eu",
        "prod",
        "agent",
    )
    assert body["link"] == {
        "state": "linked",
        "ref": "agent/com.acme/support-bot@1.0.0",
        "via": "annotation",
        "reason": "",
    }
    assert not (body["drift"] or body["unregistered"] or body["orphaned"])
    assert body["card"]["digest"] == "sha256:ab" and body["conditions"] == []
    assert body["endpoint"] == "http://linked.team-a:8080" and body["health"] == "passing"
    drifted = (await inventory.get_deployment(store, VIEWER, ids["drifted"])).to_json()
    assert drifted["drift"] and "never published" in drifted["link"]["reason"]
    gone = (await inventory.get_deployment(store, VIEWER, ids["gone"])).to_json()
    assert gone["orphaned"] and gone["orphanedAt"] is not None and gone["health"] == "unknown"


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        (DeploymentFilters(), {"linked", "drifted", "shadow", "openai", "gone"}),
        (DeploymentFilters(drift=True), {"drifted"}),
        (DeploymentFilters(unregistered=True), {"shadow"}),
        (DeploymentFilters(drift=True, unregistered=True), {"drifted", "shadow"}),
        (DeploymentFilters(orphaned=True), {"gone"}),
        (DeploymentFilters(orphaned=False, kind="agent"), {"linked", "drifted", "shadow"}),
        (DeploymentFilters(health="warning"), {"openai"}),
        (DeploymentFilters(cluster="prod-eu", environment="prod", source="prod-eu"), None),
        (DeploymentFilters(cluster="elsewhere"), set()),
        (DeploymentFilters(resource="agent/com.acme/support-bot", orphaned=False), {"linked", "drifted"}),
    ],
)
async def test_deployments_filter(
    store: SqlStore, filters: DeploymentFilters, names: set[str] | None
) -> None:
    ids = await seed(store)
    views, cursor = await inventory.list_deployments(store, VIEWER, filters)
    assert cursor is None
    assert {v.row.key.name for v in views} == (names if names is not None else set(ids))


async def test_bad_filters_name_the_parameter(store: SqlStore) -> None:
    for filters, field in (
        (DeploymentFilters(health="green"), "/health"),
        (DeploymentFilters(kind="robot"), "/kind"),
        (DeploymentFilters(resource="com.acme/support-bot"), "/resource"),
    ):
        with pytest.raises(InvalidRequest) as caught:
            await inventory.list_deployments(store, VIEWER, filters)
        assert caught.value.details[0].field == field
    with pytest.raises(InvalidRequest):
        await inventory.list_deployments(store, VIEWER, cursor="nonsense")
    with pytest.raises(NotFound):
        await inventory.list_deployments(store, VIEWER, DeploymentFilters(resource="agent/com.acme/nosuch"))


async def test_pages_follow_the_cursor(store: SqlStore) -> None:
    ids = await seed(store)
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        views, cursor = await inventory.list_deployments(store, VIEWER, limit=2, cursor=cursor)
        seen += [v.row.id for v in views]
        pages += 1
        if cursor is None:
            break
    assert seen == sorted(ids.values()) and pages == 3


async def test_another_tenants_rows_are_not_found(store: SqlStore) -> None:
    ids = await seed(store)
    views, _ = await inventory.list_deployments(store, STRANGER)
    assert views == []
    with pytest.raises(NotFound):
        await inventory.get_deployment(store, STRANGER, ids["linked"])
    with pytest.raises(NotFound):
        await inventory.set_overlay(store, STRANGER, ids["linked"], {"team": "x"})


async def test_where_a_resource_runs(store: SqlStore) -> None:
    await seed(store)
    views = await inventory.deployments_of_resource(store, VIEWER, Kind.AGENT, "com.acme", "support-bot")
    assert {v.row.key.name for v in views} == {"linked", "drifted", "gone"}
    with pytest.raises(NotFound):
        await inventory.deployments_of_resource(store, STRANGER, Kind.AGENT, "com.acme", "support-bot")


async def test_the_overlay_wins_over_observed_labels_and_is_audited(store: SqlStore) -> None:
    ids = await seed(store)
    before = await inventory.get_deployment(store, VIEWER, ids["linked"])
    view = await inventory.set_overlay(
        store,
        OPERATOR,
        ids["linked"],
        {"tier": "gold", "team": "a"},
        {"note": "pinned"},
        if_match=before.etag,
    )
    body = view.to_json()
    assert body["labels"] == {"app": "linked", "tier": "gold", "team": "a"}
    assert body["overlay"] == {"labels": {"tier": "gold", "team": "a"}, "annotations": {"note": "pinned"}}
    assert body["annotations"][REF_ANNOTATION] == "com.acme/support-bot@1.0.0"
    assert view.etag != before.etag
    with pytest.raises(PreconditionFailed):
        await inventory.set_overlay(store, OPERATOR, ids["linked"], {"x": "y"}, if_match=before.etag)
    removed = await inventory.set_overlay(store, ADMIN, ids["linked"], {"tier": None})
    assert removed.to_json()["labels"]["tier"] == "observed"
    assert "deployment.annotate" in await actions(store)


async def test_the_overlay_survives_a_new_observation(store: SqlStore) -> None:
    ids = await seed(store)
    await inventory.set_overlay(store, OPERATOR, ids["linked"], {"team": "a"})
    config = parse_source({**SOURCE, "tenant": "acme"})
    changed = replace(agent_object("linked", "com.acme/support-bot@1.0.0"), health=Health.CRITICAL)
    await Reconciler(store, config).changed([changed])
    body = (await inventory.get_deployment(store, VIEWER, ids["linked"])).to_json()
    assert body["health"] == "critical" and body["labels"]["team"] == "a"


async def test_overlay_needs_deployment_manage_and_valid_labels(store: SqlStore) -> None:
    ids = await seed(store)
    for actor in (VIEWER, DEVELOPER):
        with pytest.raises(Forbidden):
            await inventory.set_overlay(store, actor, ids["linked"], {"team": "a"})
    with pytest.raises(Invalid) as caught:
        await inventory.set_overlay(store, OPERATOR, ids["linked"], {"bad key!": "x"})
    assert caught.value.details[0].field == "/labels/bad key!"
    with pytest.raises(Invalid) as caught:
        await inventory.set_overlay(store, OPERATOR, ids["linked"], None, {"n": 3})
    assert caught.value.details[0].field == "/annotations/n"


async def test_a_frozen_clock_stamps_source_writes(store: SqlStore) -> None:
    with clock.frozen(NOW):
        view, _ = await put_source(store, ADMIN, SOURCE)
    assert view.row.created_at == NOW


async def test_api_sources_name_server_files_only_under_the_sources_root(
    store: SqlStore, tmp_path: Path
) -> None:
    with pytest.raises(Invalid) as caught:
        await inventory.put_source(store, ADMIN, SOURCE)
    assert [d.field for d in caught.value.details] == ["/path"]
    assert "only allowed in the AGENTREG_SOURCES file" in caught.value.details[0].issue
    body = {**SOURCE, "path": "../etc", "clientCert": "certs/tls.crt", "clientKey": "/etc/shadow"}
    with pytest.raises(Invalid) as caught:
        await inventory.put_source(store, ADMIN, body, files_root=str(tmp_path))
    assert sorted(d.field for d in caught.value.details) == ["/clientKey", "/path"]
    inside = {**SOURCE, "path": "clusters/prod"}
    view, _ = await inventory.put_source(store, ADMIN, inside, files_root=str(tmp_path))
    assert view.row.config["path"].endswith(
        f"{tmp_path.name}/acme/clusters/prod"
    )  # in its tenant's directory
