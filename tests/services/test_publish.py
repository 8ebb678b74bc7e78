"""Publishing through the services on both databases: idempotency, immutability, audit, atomicity."""

from __future__ import annotations

import asyncio

import pytest

from agentreg.domain.errors import Conflict, Invalid, NotFound
from agentreg.domain.principals import Principal, Role, member
from agentreg.services import catalog
from agentreg.services.publish import ApplyInput, apply, publish
from agentreg.store.interface import AuditQuery
from agentreg.store.sql import SqlStore
from tests import factories as f

ME = member("alice", "default", Role.TENANT_ADMIN)
OTHER = member("mallory", "other", Role.TENANT_ADMIN)


async def audit_actions(store: SqlStore, principal: Principal = ME) -> list[str]:
    tenant = principal.home_tenant
    assert tenant is not None
    async with store.read() as tx:
        return [e.event.action for e in await tx.list_audit(AuditQuery(tenant, limit=100))]


async def test_publish_creates_then_is_idempotent(store: SqlStore) -> None:
    first = await publish(store, ME, f.skill())
    again = await publish(store, ME, f.skill())
    assert (first.result, again.result) == ("created", "unchanged")
    assert first.view.version.digest == again.view.version.digest
    assert await audit_actions(store) == ["version.publish"]


async def test_publish_rejects_the_same_version_with_other_content(store: SqlStore) -> None:
    first = await publish(store, ME, f.skill())
    with pytest.raises(Conflict) as caught:
        await publish(store, ME, f.with_(f.skill(), "/spec/license", "MIT"))
    assert first.view.version.digest in caught.value.message
    assert caught.value.details[0].field == "/metadata/version"


async def test_versions_differing_only_in_build_metadata_conflict(store: SqlStore) -> None:
    await publish(store, ME, f.skill(version="1.0.0+build.1"))
    with pytest.raises(Conflict):
        await publish(store, ME, f.skill(version="1.0.0+build.2"))


async def test_invalid_documents_write_nothing(store: SqlStore) -> None:
    with pytest.raises(Invalid):
        await publish(store, ME, f.with_(f.skill(), "/spec/description", ...))
    async with store.read() as tx:
        assert await tx.namespace_owner("com.acme") is None
    assert await audit_actions(store) == []


async def test_a_conflict_after_claiming_leaves_no_trace(store: SqlStore) -> None:
    await publish(store, ME, f.skill())
    with pytest.raises(Conflict):
        await publish(store, ME, f.with_(f.skill(), "/spec/instructions", "changed"))
    views, _ = await catalog.list_resources(store, ME, f.skill_kind())
    assert [v.version_count for v in views] == [1]
    assert await audit_actions(store) == ["version.publish"]


async def test_another_tenants_namespace_is_not_found(store: SqlStore) -> None:
    await publish(store, ME, f.skill())
    with pytest.raises(NotFound):
        await publish(store, OTHER, f.skill(version="2.0.0"))
    with pytest.raises(NotFound):
        await catalog.get_resource(store, OTHER, f.skill_kind(), "com.acme", "triage")


async def test_concurrent_identical_publishes_create_exactly_one_version(store: SqlStore) -> None:
    results = await asyncio.gather(*(publish(store, ME, f.skill()) for _ in range(8)))
    assert sorted(r.result for r in results) == ["created"] + ["unchanged"] * 7
    assert await audit_actions(store) == ["version.publish"]


async def test_concurrent_distinct_versions_all_land(store: SqlStore) -> None:
    await asyncio.gather(*(publish(store, ME, f.skill(version=f"1.0.{i}")) for i in range(10)))
    _, versions = await catalog.list_versions(store, ME, f.skill_kind(), "com.acme", "triage")
    assert [v.version for v in versions] == [f"1.0.{i}" for i in range(9, -1, -1)]


async def test_resource_shows_its_latest_version_and_merged_labels(store: SqlStore) -> None:
    await publish(store, ME, f.with_(f.skill(version="2.0.0"), "/metadata/labels", {"team": "a"}))
    await publish(store, ME, f.with_(f.skill(version="1.5.0"), "/metadata/labels", {"tier": "1"}))
    view = await catalog.get_resource(store, ME, f.skill_kind(), "com.acme", "triage")
    assert view.latest is not None and view.latest.version == "2.0.0"
    assert view.resource.labels == {"team": "a", "tier": "1"}
    assert view.version_count == 2


async def test_apply_publishes_referenced_documents_first_and_isolates_failures(store: SqlStore) -> None:
    agent = f.agent(config={"model": {"ref": "com.acme/llama@^1"}, "skills": [{"ref": "com.acme/triage"}]})
    bad = f.with_(f.skill("broken"), "/spec/description", ...)
    items = [ApplyInput(i, doc) for i, doc in enumerate([agent, bad, f.model(), f.skill()])]
    results = await apply(store, ME, items)
    assert [(r.index, r.result) for r in results] == [
        (0, "created"),
        (1, "failed"),
        (2, "created"),
        (3, "created"),
    ]
    assert results[0].warnings == ()  # its refs were satisfied by documents of the same batch
    actions = await audit_actions(store)
    assert actions == ["version.publish"] * 3


async def test_apply_dry_run_writes_nothing(store: SqlStore) -> None:
    results = await apply(store, ME, [ApplyInput(0, f.skill()), ApplyInput(1, f.model())], dry_run=True)
    assert [r.result for r in results] == ["valid", "valid"]
    views, _ = await catalog.list_resources(store, ME, f.skill_kind())
    assert views == []
    await publish(store, ME, f.skill())
    again = await apply(
        store,
        ME,
        [ApplyInput(0, f.skill()), ApplyInput(1, f.with_(f.skill(), "/spec/license", "X"))],
        dry_run=True,
    )
    assert [r.result for r in again] == ["unchanged", "failed"]


async def test_publishing_with_an_unresolvable_ref_warns(store: SqlStore) -> None:
    outcome = await publish(store, ME, f.agent(config={"mcpServers": [{"ref": "com.acme/github@^9"}]}))
    assert [w.field for w in outcome.warnings] == ["/spec/config/mcpServers/0/ref"]
    assert outcome.view.version.warnings == ()  # reference warnings are not stored: refs resolve when read


async def test_concurrent_claims_by_two_tenants_leave_one_owner(store: SqlStore) -> None:
    async def attempt(principal: Principal, name: str) -> str:
        try:
            await publish(store, principal, f.skill(name))
        except NotFound:
            return "refused"
        return "published"

    outcomes = await asyncio.gather(*(attempt(ME if i % 2 else OTHER, f"s{i}") for i in range(8)))
    async with store.read() as tx:
        owner = await tx.namespace_owner("com.acme")
    winner = ME if owner == ME.home_tenant else OTHER
    expected = ["published" if (ME if i % 2 else OTHER) == winner else "refused" for i in range(8)]
    assert outcomes == expected
    views, _ = await catalog.list_resources(store, OTHER if winner is ME else ME, f.skill_kind())
    assert views == []
