"""Governance through the services on both databases: policy revisions, exemptions, the publish checks.

The clock is frozen wherever expiry matters (``services.clock``), so nothing here waits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentreg.domain.errors import Forbidden, Invalid, NotFound, PolicyDenied, PreconditionFailed
from agentreg.domain.lifecycle import State
from agentreg.domain.policy import DEFAULT_POLICY, Candidate
from agentreg.domain.principals import Principal, Role, member
from agentreg.services import clock, governance
from agentreg.services.publish import publish
from agentreg.store.interface import AuditQuery
from agentreg.store.sql import SqlStore
from tests import factories as f

ADMIN = member("alice", "acme", Role.TENANT_ADMIN)
DEVELOPER = member("dave", "acme", Role.DEVELOPER)
VIEWER = member("vera", "acme", Role.VIEWER)
STRANGER = member("mallory", "other", Role.TENANT_ADMIN)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def policy(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "agentreg.dev/v1", "kind": "Policy", "spec": spec}


@pytest.fixture(autouse=True)
async def tenants(store: SqlStore) -> None:
    async with store.begin() as tx:
        for tenant in ("acme", "other"):
            await tx.insert_tenant(tenant, tenant, NOW)


async def actions(store: SqlStore, tenant: str = "acme") -> list[str]:
    async with store.read() as tx:
        return [e.event.action for e in await tx.list_audit(AuditQuery(tenant, limit=100))]


async def load(store: SqlStore, tenant: str = "acme") -> governance.TenantPolicy:
    async with store.read() as tx:
        return await governance.load(tx, tenant, clock.now())


# --- the policy document ---------------------------------------------------------------------------------


async def test_a_tenant_without_a_policy_has_the_defaults(store: SqlStore) -> None:
    view = await governance.get_policy(store, VIEWER, None)
    assert (view.tenant, view.revision, view.policy, view.updated_by) == ("acme", 0, DEFAULT_POLICY, None)
    loaded = await load(store)
    assert (loaded.revision, loaded.policy, loaded.exemptions) == (0, DEFAULT_POLICY, ())


async def test_put_creates_revisions_and_audits_each(store: SqlStore) -> None:
    first = await governance.put_policy(
        store, ADMIN, policy(compatibility={"breaking": "refuse"}), None, None
    )
    assert (first.revision, first.etag, first.updated_by) == (1, '"p-1"', "alice")
    assert first.policy.refuse_breaking
    second = await governance.put_policy(store, ADMIN, policy(), "acme", '"p-1"')
    assert second.revision == 2 and not second.policy.refuse_breaking
    async with store.read() as tx:
        events = [e.event for e in await tx.list_audit(AuditQuery("acme", action="policy.update"))]
        revisions = await tx.list_policies("acme")
    assert [e.details["revision"] for e in events] == [1, 2]
    assert events[0].before is None and events[1].before == events[0].after
    assert [r.revision for r in revisions] == [2, 1]
    assert events[1].after == revisions[0].digest


async def test_putting_the_same_document_again_changes_nothing(store: SqlStore) -> None:
    document = policy(quotas={"maxResourcesPerNamespace": 5})
    await governance.put_policy(store, ADMIN, document, None, None)
    # Key order and whitespace do not matter: the canonical JSON is compared.
    again = await governance.put_policy(store, ADMIN, dict(reversed(list(document.items()))), None, None)
    assert again.revision == 1
    assert await actions(store) == ["policy.update"]


async def test_if_match_must_name_the_current_revision(store: SqlStore) -> None:
    await governance.put_policy(store, ADMIN, policy(), None, '"p-0"')
    with pytest.raises(PreconditionFailed):
        await governance.put_policy(store, ADMIN, policy(quotas={}), None, '"p-0"')
    assert (await governance.put_policy(store, ADMIN, policy(quotas={}), None, "*")).revision == 2


async def test_an_invalid_policy_writes_nothing(store: SqlStore) -> None:
    with pytest.raises(Invalid) as caught:
        await governance.put_policy(
            store, ADMIN, policy(rules=[{"id": "r", "expression": "1 +"}]), None, None
        )
    assert caught.value.details[0].field == "/spec/rules/0/expression"
    assert (await load(store)).revision == 0
    assert await actions(store) == []


@pytest.mark.parametrize("who", [DEVELOPER, VIEWER])
async def test_only_policy_managers_may_put(store: SqlStore, who: Principal) -> None:
    with pytest.raises(Forbidden):
        await governance.put_policy(store, who, policy(), None, None)
    assert (await governance.get_policy(store, who, None)).revision == 0


async def test_another_tenants_policy_is_not_found(store: SqlStore) -> None:
    await governance.put_policy(store, ADMIN, policy(), None, None)
    with pytest.raises(NotFound):
        await governance.get_policy(store, STRANGER, "acme")
    with pytest.raises(NotFound):
        await governance.put_policy(store, STRANGER, policy(), "acme", None)
    with pytest.raises(NotFound):
        await governance.get_policy(store, ADMIN, "nosuch")
    with pytest.raises(NotFound):
        await governance.list_exemptions(store, STRANGER, "acme")


async def test_load_parses_a_revision_once(store: SqlStore) -> None:
    await governance.put_policy(
        store, ADMIN, policy(environments={"prod": {"states": ["certified"]}}), None, None
    )
    first, second = await load(store), await load(store)
    assert first.revision == 1 and first.policy.environments["prod"].states == (State.CERTIFIED,)
    assert first.policy is second.policy


# --- exemptions ----------------------------------------------------------------------------------------------


def exemption(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resource": "agent/com.acme/bot@^1",
        "rules": ["cel.*"],
        "reason": "migration until Q3",
        "expiresAt": NOW + timedelta(days=30),
    }
    body.update(overrides)
    return body


async def test_exemptions_are_added_listed_expire_and_are_deleted(store: SqlStore) -> None:
    with clock.frozen(NOW) as frozen:
        added = await governance.add_exemption(store, ADMIN, exemption(), None)
        row = added.row
        assert (row.approved_by, row.rules, row.tenant_id) == ("alice", ("cel.*",), "acme")
        assert len(row.id) == 16 and int(row.id, 16) >= 0
        assert [e.id for e in (await load(store)).exemptions] == [row.id]
        frozen.advance(timedelta(days=30))  # expiry is exclusive: expired at the instant it names
        assert (await load(store)).exemptions == ()
        listed = await governance.list_exemptions(store, VIEWER, None)
        assert [(v.row.id, v.active) for v in listed] == [(row.id, False)]
        deleted = await governance.delete_exemption(store, ADMIN, row.id, None)
        assert deleted.id == row.id
    assert await governance.list_exemptions(store, ADMIN, None) == []
    assert await actions(store) == ["policy.exemption.add", "policy.exemption.delete"]
    with pytest.raises(NotFound):
        await governance.delete_exemption(store, ADMIN, row.id, None)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"resource": "com.acme/bot"}, "/resource"),
        ({"rules": []}, "/rules"),
        ({"rules": ["lifecycle.blocked"]}, "/rules/0"),
        ({"reason": " "}, "/reason"),
        ({"expiresAt": NOW - timedelta(seconds=1)}, "/expiresAt"),
        ({"expiresAt": NOW + timedelta(days=367)}, "/expiresAt"),
        ({"expiresAt": datetime(2026, 4, 1)}, "/expiresAt"),  # no time zone
        ({"expiresAt": "next week"}, "/expiresAt"),
    ],
)
async def test_bad_exemptions_name_the_field(store: SqlStore, overrides: dict[str, Any], field: str) -> None:
    with clock.frozen(NOW), pytest.raises(Invalid) as caught:
        await governance.add_exemption(store, ADMIN, exemption(**overrides), None)
    assert [d.field for d in caught.value.details] == [field]
    assert await actions(store) == []


async def test_exemptions_need_policy_manage_and_stay_in_their_tenant(store: SqlStore) -> None:
    with clock.frozen(NOW):
        with pytest.raises(Forbidden):
            await governance.add_exemption(store, DEVELOPER, exemption(), None)
        row = (await governance.add_exemption(store, ADMIN, exemption(), None)).row
        with pytest.raises(NotFound):
            await governance.delete_exemption(store, STRANGER, row.id, "acme")
        with pytest.raises(NotFound):
            await governance.delete_exemption(store, STRANGER, row.id, None)  # not in "other"
        assert await governance.list_exemptions(store, STRANGER, None) == []


# --- checks at publish -----------------------------------------------------------------------------------------


def candidate(name: str = "triage", version: str = "2.0.0", **extra: Any) -> Candidate:
    values: dict[str, Any] = {
        "kind": "skill",
        "namespace": "com.acme",
        "name": name,
        "version": version,
        "state": State.DRAFT,
        "published_at": NOW,
        "labels": {},
    }
    values.update(extra)
    return Candidate(**values)


async def checks(store: SqlStore, c: Candidate) -> tuple[Any, ...]:
    async with store.read() as tx:
        tenant_policy = await governance.load(tx, "acme", NOW)
        return await governance.publish_checks(tx, tenant_policy, c, NOW)


async def test_quotas_count_the_resource_or_version_being_added(store: SqlStore) -> None:
    await publish(store, ADMIN, f.skill("triage"))
    await publish(store, ADMIN, f.skill("triage", "1.1.0"))
    quotas = {"maxResourcesPerNamespace": 1, "maxVersionsPerNamespace": 3}
    await governance.put_policy(store, ADMIN, policy(quotas=quotas), None, None)
    assert await checks(store, candidate("triage", "2.0.0")) == ()  # a 3rd version of the one resource
    with pytest.raises(PolicyDenied) as caught:
        await checks(store, candidate("other", "1.0.0"))
    assert [d.field for d in caught.value.details] == ["/metadata/namespace"]
    assert "holds 1 resources" in caught.value.details[0].issue
    await publish(store, ADMIN, f.skill("triage", "2.0.0"))
    with pytest.raises(PolicyDenied) as full:
        await checks(store, candidate("triage", "3.0.0"))
    assert "holds 3 versions" in full.value.details[0].issue


async def test_deny_and_hard_rules_refuse_with_the_decision(store: SqlStore) -> None:
    document = policy(
        deny=[{"name": "com.acme/tri*", "versions": "<3.0.0", "reason": "CVE-2026-1234"}],
        rules=[{"id": "labelled", "expression": "'team' in resource.labels", "message": "label the team"}],
    )
    await governance.put_policy(store, ADMIN, document, None, None)
    with pytest.raises(PolicyDenied) as caught:
        await checks(store, candidate())
    assert caught.value.message.startswith(
        "the tenant's policy refuses this version: CVE-2026-1234 (and 1 more)"
    )
    decision = caught.value.extra["decision"]
    assert decision["allowed"] is False
    failed = {r["id"]: r for r in decision["rules"] if r["result"] == "fail"}
    assert set(failed) == {"deny.0", "cel.labelled"}
    assert failed["cel.labelled"] == {
        "id": "cel.labelled",
        "effect": "hard",
        "result": "fail",
        "message": "label the team",
    }
    assert await checks(store, candidate(version="3.0.0", labels={"team": "core"})) == ()


async def test_soft_rules_warn_and_exemptions_admit(store: SqlStore) -> None:
    document = policy(
        deny=[{"name": "com.acme/*"}],
        rules=[{"id": "described", "expression": "false", "effect": "soft", "message": "describe it"}],
    )
    await governance.put_policy(store, ADMIN, document, None, None)
    with clock.frozen(NOW - timedelta(days=1)):
        await governance.add_exemption(
            store, ADMIN, exemption(resource="skill/com.acme/triage", rules=["deny.0"]), None
        )
    warnings = await checks(store, candidate())
    assert [w.issue for w in warnings] == ["policy rule cel.described: describe it"]
    with pytest.raises(PolicyDenied):
        await checks(store, candidate("other"))


async def test_rules_of_other_phases_do_not_apply_at_publish(store: SqlStore) -> None:
    rules = [{"id": "certified-only", "expression": "version.state == 'certified'", "phases": ["resolve"]}]
    await governance.put_policy(store, ADMIN, policy(rules=rules), None, None)
    assert await checks(store, candidate()) == ()


async def test_a_member_whose_tenant_has_no_row_yet_reads_defaults_and_creates_it_by_writing(
    store: SqlStore,
) -> None:
    newcomer = member("nina", "fresh", Role.TENANT_ADMIN)  # e.g. single-user mode before any publish
    assert (await governance.get_policy(store, newcomer, None)).revision == 0
    assert (await governance.put_policy(store, newcomer, policy(), None, None)).revision == 1
    async with store.read() as tx:
        assert await tx.get_tenant("fresh") is not None
