"""The reconciler on a real store (both backends): ownership, orphaning and grace, links, drift, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentreg.domain.health import Health
from agentreg.domain.inventory import REF_ANNOTATION, Claim, LinkState, ObjectKey, Observation
from agentreg.domain.kinds import Kind
from agentreg.domain.principals import ANONYMOUS
from agentreg.domain.sources import SourceConfig, parse_source
from agentreg.services import clock, discovery, governance, lifecycle
from agentreg.services.publish import publish
from agentreg.services.reconcile import Reconciler
from agentreg.services.views import VersionAddress
from agentreg.store.interface import AuditQuery
from agentreg.store.inventory import DeploymentQuery, DeploymentRow
from agentreg.store.sql import SqlStore
from tests import factories

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def config(name: str = "prod-eu", **extra: Any) -> SourceConfig:
    raw = {"name": name, "type": "kubernetes", "path": "/nonexistent", "environment": "prod", **extra}
    return parse_source(raw)


def agent_object(
    name: str,
    *,
    ref: str | None = None,
    claim: Claim | None = None,
    health: Health = Health.PASSING,
    cluster: str = "prod-eu",
    generation: int = 1,
) -> Observation:
    return Observation(
        key=ObjectKey(cluster, "kagent.dev", "Agent", "agents", name),
        api_version="kagent.dev/v1alpha2",
        uid=f"uid-{name}",
        catalog_kind=Kind.AGENT,
        title=name,
        spec={"description": name},
        status={"observedGeneration": generation},
        annotations={REF_ANNOTATION: ref} if ref else {},
        health=health,
        claim=claim,
        revision=str(generation),
    )


def pool(name: str) -> Observation:
    return Observation(
        key=ObjectKey("prod-eu", "inference.networking.k8s.io", "InferencePool", "llm", name),
        api_version="inference.networking.k8s.io/v1",
    )


@pytest.fixture
async def source(store: SqlStore) -> Reconciler:
    cfg = config()
    await discovery.load_file(store, [cfg, config("other")])
    return Reconciler(store, cfg)


async def rows(store: SqlStore, **filters: Any) -> dict[str, DeploymentRow]:
    async with store.read() as tx:
        found = await tx.list_deployments(DeploymentQuery(readers=None, **filters))
    return {row.key.name: row for row in found}


async def sync_events(store: SqlStore) -> list[dict[str, Any]]:
    async with store.read() as tx:
        events = await tx.list_audit(AuditQuery(tenant_id="default", action="discovery.sync"))
    return [dict(e.event.details) for e in events]


async def test_a_snapshot_adds_rows_and_an_unchanged_one_writes_nothing(
    store: SqlStore, source: Reconciler
) -> None:
    first = await source.snapshot([agent_object("a"), agent_object("b"), pool("p")])
    assert (first.added, first.updated, first.unchanged) == (3, 0, 0)
    again = await source.snapshot([agent_object("a"), agent_object("b"), pool("p")])
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    found = await rows(store)
    assert found["a"].observed["spec"] == {"description": "a"}
    assert found["a"].health == "passing" and found["a"].environment == "prod"
    assert found["p"].link.state is LinkState.NONE
    assert len(await sync_events(store)) == 1  # the unchanged snapshot wrote no audit event


async def test_missing_objects_become_orphans_and_go_after_the_grace_period(
    store: SqlStore, source: Reconciler
) -> None:
    with clock.frozen(T0) as frozen:
        await source.snapshot([agent_object("a"), agent_object("b")])
        result = await source.snapshot([agent_object("a")])
        assert result.orphaned == 1
        found = await rows(store)
        assert found["b"].orphaned_at == T0 and found["b"].health == "unknown"
        assert set(await rows(store, orphaned=False)) == {"a"}
        frozen.advance(timedelta(seconds=599))
        assert await source.sweep() == 0
        frozen.advance(timedelta(seconds=2))
        assert await source.sweep() == 1
    assert set(await rows(store)) == {"a"}


async def test_an_orphan_seen_again_is_restored(store: SqlStore, source: Reconciler) -> None:
    await source.snapshot([agent_object("a")])
    await source.changed([], [agent_object("a").key])
    assert (await rows(store))["a"].orphaned_at is not None
    result = await source.changed([agent_object("a", generation=2)])
    assert result.added == 1
    row = (await rows(store))["a"]
    assert row.orphaned_at is None and row.observed["revision"] == "2"


async def test_a_snapshot_of_one_kind_leaves_other_kinds_alone(store: SqlStore, source: Reconciler) -> None:
    await source.snapshot([agent_object("a"), pool("p")])
    await source.snapshot([], group="kagent.dev", kind="Agent")
    found = await rows(store)
    assert found["a"].orphaned_at is not None and found["p"].orphaned_at is None


async def test_a_source_never_overwrites_another_sources_object(store: SqlStore, source: Reconciler) -> None:
    other = Reconciler(store, config("other"))
    await source.snapshot([agent_object("a", health=Health.PASSING)])
    result = await other.snapshot([agent_object("a", health=Health.CRITICAL), agent_object("z")])
    assert result.added == 1
    assert result.conflicts == [{"object": str(agent_object("a").key), "owner": "prod-eu"}]
    found = await rows(store)
    assert found["a"].source == "prod-eu" and found["a"].health == "passing"
    assert found["z"].source == "other"


async def test_links_drift_and_unregistered(store: SqlStore, source: Reconciler) -> None:
    await publish(store, ANONYMOUS, factories.agent("support-bot", "1.2.0"))
    await source.snapshot(
        [
            agent_object("linked", ref="com.acme/support-bot@1.2.0"),
            agent_object("unpublished", ref="com.acme/support-bot@9.9.9"),
            agent_object("unknown", ref="com.acme/nothing@1.0.0"),
            agent_object("malformed", ref="not a ref"),
            agent_object("range", ref="com.acme/support-bot@^1.0"),
            agent_object("shadow"),
            agent_object("claimed", claim=Claim("support-bot", "1.2.0")),
            agent_object("claims-unknown", claim=Claim("ghost", "1.0.0")),
        ]
    )
    found = await rows(store)
    linked = found["linked"].link
    assert linked.state is LinkState.LINKED and linked.ref == "agent/com.acme/support-bot@1.2.0"
    assert linked.via == "annotation" and linked.version_id is not None
    assert found["unpublished"].link.state is LinkState.DRIFT
    assert "never published" in found["unpublished"].link.reason
    assert found["unknown"].link.state is LinkState.DRIFT
    assert found["malformed"].link.state is LinkState.DRIFT and "malformed" in found["malformed"].link.reason
    assert found["range"].link.state is LinkState.DRIFT and "exact version" in found["range"].link.reason
    assert found["shadow"].link.state is LinkState.UNREGISTERED
    assert found["claimed"].link.state is LinkState.LINKED and found["claimed"].link.via == "claim"
    assert found["claims-unknown"].link.state is LinkState.UNREGISTERED
    assert set(await rows(store, link_states=("drift",))) == {"unpublished", "unknown", "malformed", "range"}


async def test_a_version_the_environment_does_not_admit_is_drift(store: SqlStore, source: Reconciler) -> None:
    await publish(store, ANONYMOUS, factories.agent("support-bot", "1.2.0"))
    policy = {
        "apiVersion": "agentreg.dev/v1",
        "kind": "Policy",
        "spec": {"environments": {"prod": {"states": ["certified"]}}},
    }
    await governance.put_policy(store, ANONYMOUS, policy, None, None)
    await source.snapshot([agent_object("a", ref="com.acme/support-bot@1.2.0")])
    link = (await rows(store))["a"].link
    assert link.state is LinkState.DRIFT and "environment 'prod'" in link.reason


async def test_relink_follows_the_catalog(store: SqlStore, source: Reconciler) -> None:
    await source.snapshot([agent_object("a", ref="com.acme/support-bot@1.2.0")])
    assert (await rows(store))["a"].link.state is LinkState.DRIFT
    await publish(store, ANONYMOUS, factories.agent("support-bot", "1.2.0"))
    assert await source.relink() == 1
    assert (await rows(store))["a"].link.state is LinkState.LINKED
    at = VersionAddress(Kind.AGENT, "com.acme", "support-bot", "1.2.0")
    await lifecycle.block_version(store, ANONYMOUS, at, reason="CVE", blocked=True)
    assert await source.relink() == 1
    link = (await rows(store))["a"].link
    assert link.state is LinkState.DRIFT and "blocked" in link.reason
    assert await source.relink() == 0


async def test_a_card_claim_learned_later_links_the_row(store: SqlStore, source: Reconciler) -> None:
    await publish(store, ANONYMOUS, factories.agent("support-bot", "1.2.0"))
    await source.snapshot([agent_object("a")])
    assert (await rows(store))["a"].link.state is LinkState.UNREGISTERED
    card = {"name": "support-bot", "version": "1.2.0"}
    assert await source.merge_extra(
        agent_object("a").key, {"card": card}, Claim("com.acme/support-bot", "1.2.0")
    )
    row = (await rows(store))["a"]
    assert row.link.state is LinkState.LINKED and row.observed["extra"]["card"] == card
    # A new observation of the object keeps what enrichment learned only until the source re-reports it.
    assert not await source.merge_extra(agent_object("nope").key, {"card": card})


async def test_each_batch_that_changes_the_inventory_writes_one_audit_event(
    store: SqlStore, source: Reconciler
) -> None:
    await source.snapshot([agent_object(str(i)) for i in range(5)])
    await source.changed([agent_object("0", health=Health.CRITICAL)])  # health alone: telemetry
    await source.changed([agent_object("new")], [agent_object("1").key])
    events = await sync_events(store)
    assert [e["counts"] for e in events] == [{"added": 5}, {"added": 1, "orphaned": 1}]
    assert {e["mode"] for e in events} == {"snapshot", "watch"}


async def test_rows_are_tenant_scoped(store: SqlStore, source: Reconciler) -> None:
    await source.snapshot([agent_object("a")])
    async with store.read(readers=("someone-else",)) as tx:
        assert await tx.list_deployments(DeploymentQuery(readers=("someone-else",))) == []
    async with store.read(readers=("default",)) as tx:
        assert len(await tx.list_deployments(DeploymentQuery(readers=("default",)))) == 1


async def test_what_enrichment_learned_survives_a_new_observation(
    store: SqlStore, source: Reconciler
) -> None:
    await publish(store, ANONYMOUS, factories.agent("support-bot", "1.2.0"))
    await source.snapshot([agent_object("a")])
    card = {"name": "support-bot", "version": "1.2.0"}
    await source.merge_extra(agent_object("a").key, {"card": card}, Claim("com.acme/support-bot", "1.2.0"))
    await source.changed([agent_object("a", health=Health.CRITICAL, generation=2)])
    row = (await rows(store))["a"]
    assert row.health == "critical" and row.observed["revision"] == "2"
    assert row.observed["extra"]["card"] == card and row.link.state is LinkState.LINKED
    result = await source.snapshot([])
    assert result.gone == [agent_object("a").key]


async def test_a_strictly_bound_agent_whose_peer_is_outside_its_trust_domain_is_denied(
    store: SqlStore, source: Reconciler
) -> None:
    from agentreg.services.selection import check

    await publish(store, ANONYMOUS, factories.agent("support-bot", "1.2.0"))
    await source.snapshot([agent_object("a", ref="com.acme/support-bot@1.2.0")])
    ref = "agent/com.acme/support-bot@1.2.0"
    assert (await check(store, ANONYMOUS, ref, "prod")).allowed
    unbound = {
        "type": "IdentityBound",
        "status": "False",
        "reason": "TrustDomainMismatch",
        "message": "peer spiffe://evil.example/agent is not in prod.acme.org",
    }
    identity = {
        "spiffeId": "spiffe://evil.example/agent",
        "expected": "prod.acme.org",
        "bound": False,
        "strict": True,
    }
    await source.merge_extra(agent_object("a").key, {"conditions": [unbound], "identity": identity})
    denied = await check(store, ANONYMOUS, ref, "prod")
    assert not denied.allowed
    rule = denied.decision["rules"][-1]
    assert rule["id"] == "identity.strictBinding" and "evil.example" in rule["message"]
    assert (await check(store, ANONYMOUS, ref, "staging")).allowed  # no deployment of it there
