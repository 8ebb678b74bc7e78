"""Compatibility through the services on both databases: the publish check and the compatibility report.

Versions that break within a major are published out of order (the higher one first), so the publish-time
check has nothing earlier to compare them with whatever the tenant's policy says.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentreg.domain.documents import parse_document
from agentreg.domain.errors import BreakingChange, Conflict, InvalidRequest, NotFound
from agentreg.domain.kinds import Kind
from agentreg.domain.principals import Principal, Role, member
from agentreg.services import redaction
from agentreg.services.compat import WARNING, compatibility, publish_check
from agentreg.services.publish import publish
from agentreg.store.sql import SqlStore
from tests import factories as f

ME = member("alice", "default", Role.TENANT_ADMIN)
OTHER = member("mallory", "other", Role.TENANT_ADMIN)
ROOT = Principal(subject="root", super_admin=True)
NAME = "support-bot"


def skill(skill_id: str) -> dict[str, Any]:
    return {"id": skill_id, "name": skill_id, "description": skill_id, "tags": ["t"]}


def bot(version: str, *skill_ids: str) -> dict[str, Any]:
    return f.agent(NAME, version, card=f.card_03(version, skills=[skill(s) for s in skill_ids]))


async def check(store: SqlStore, document: dict[str, Any], *, refuse: bool) -> tuple[Any, ...]:
    validated = parse_document(document)
    async with store.begin() as tx:
        resource = await tx.get_resource("default", "agent", f.NS, NAME)
        assert resource is not None
        return await publish_check(tx, resource, validated, refuse)


# --- the publish check ---------------------------------------------------------------------------------------


async def test_a_breaking_change_in_the_same_major_is_refused_naming_each_change(store: SqlStore) -> None:
    await publish(store, ME, bot("1.0.0", "answer", "search", "escalate"))
    with pytest.raises(BreakingChange) as caught:
        await check(store, bot("1.1.0", "answer"), refuse=True)
    assert "1.1.0" in caught.value.message
    assert "1.0.0" in caught.value.message
    assert {d.issue for d in caught.value.details} == {
        "skill 'search' was removed",
        "skill 'escalate' was removed",
    }


async def test_a_breaking_change_is_a_prefixed_warning_when_the_policy_only_warns(store: SqlStore) -> None:
    await publish(store, ME, bot("1.0.0", "answer", "search"))
    warnings = await check(store, bot("1.1.0", "answer"), refuse=False)
    assert [(w.field, w.issue) for w in warnings] == [
        ("/spec/card/skills", WARNING + "skill 'search' was removed")
    ]
    assert WARNING == "breaking change without a major version bump: "


async def test_compatible_versions_new_majors_and_first_versions_pass(store: SqlStore) -> None:
    await publish(store, ME, bot("1.0.0", "answer", "search"))
    assert await check(store, bot("1.1.0", "answer", "search", "more"), refuse=True) == ()
    assert await check(store, bot("2.0.0", "answer"), refuse=True) == ()
    assert await check(store, bot("2.1.0", "answer"), refuse=True) == ()  # no 2.x published yet


async def test_the_base_is_the_highest_earlier_version_of_the_major(store: SqlStore) -> None:
    await publish(store, ME, bot("1.0.0", "answer"))
    await publish(store, ME, bot("1.2.0", "answer", "search"))
    await publish(store, ME, bot("1.5.0", "answer", "search", "escalate"))
    await publish(store, ME, bot("2.0.0", "answer", "search", "escalate", "x"))
    # 1.3.0 is compared with 1.2.0: neither the later 1.5.0 nor the other major counts.
    assert await check(store, bot("1.3.0", "answer", "search"), refuse=True) == ()
    with pytest.raises(BreakingChange) as caught:
        await check(store, bot("1.3.0", "answer"), refuse=True)
    assert "with 1.2.0" in caught.value.message


async def test_a_release_is_compared_with_the_previous_release_not_a_pre_release(store: SqlStore) -> None:
    """Pre-releases promise no compatibility: dropping what only an RC had breaks nobody."""
    await publish(store, ME, bot("1.0.0", "answer"))
    await publish(store, ME, bot("1.1.0-rc.1", "answer", "search"))
    assert await check(store, bot("1.1.0", "answer"), refuse=True) == ()
    with pytest.raises(BreakingChange) as caught:
        await check(store, bot("1.2.0", "search"), refuse=True)
    assert "with 1.0.0" in caught.value.message
    # A pre-release is compared with whatever came before it, pre-releases included.
    with pytest.raises(BreakingChange) as caught:
        await check(store, bot("1.1.0-rc.2", "answer"), refuse=True)
    assert "with 1.1.0-rc.1" in caught.value.message


async def test_redacted_versions_are_skipped_as_bases(store: SqlStore) -> None:
    await publish(store, ME, bot("1.0.0", "answer", "search"))
    await publish(store, ME, bot("1.1.0", "answer", "search"))
    await redaction.redact(store, ROOT, Kind.AGENT, f.NS, NAME, "1.1.0", "leaked a token")
    # Against the tombstone everything would look added; 1.0.0 is the base instead.
    with pytest.raises(BreakingChange) as caught:
        await check(store, bot("1.2.0", "answer"), refuse=True)
    assert "with 1.0.0" in caught.value.message


async def test_non_semver_versions_are_not_compared(store: SqlStore) -> None:
    await publish(store, ME, f.mcp_server(version="2024.01"))
    validated = parse_document(f.mcp_server(version="2024.02", packages=[]))
    async with store.begin() as tx:
        resource = await tx.get_resource("default", "mcp-server", f.NS, "github")
        assert resource is not None
        assert await publish_check(tx, resource, validated, True) == ()


# --- the report ----------------------------------------------------------------------------------------------


async def test_the_report_compares_with_the_previous_version_of_the_same_major(store: SqlStore) -> None:
    await publish(store, ME, bot("1.1.0", "answer"))  # out of order: see the module docstring
    await publish(store, ME, bot("1.0.0", "answer", "search"))
    report = await compatibility(store, ME, Kind.AGENT, f.NS, NAME, "1.1.0", None)
    assert (report.version, report.against, report.compatible) == ("1.1.0", "1.0.0", False)
    assert [(b.field, b.issue) for b in report.breaking] == [
        ("/spec/card/skills", "skill 'search' was removed")
    ]
    assert (report.bump, report.version_bump, report.needs_major) == ("major", "minor", True)


async def test_the_report_falls_back_to_the_highest_earlier_version(store: SqlStore) -> None:
    await publish(store, ME, bot("1.0.0", "answer"))
    await publish(store, ME, bot("1.1.0", "answer", "search"))
    await publish(store, ME, bot("2.0.0", "search"))
    report = await compatibility(store, ME, Kind.AGENT, f.NS, NAME, "2.0.0", None)
    assert (report.against, report.compatible, report.bump, report.needs_major) == (
        "1.1.0",
        False,
        "major",
        False,
    )
    additive = await compatibility(store, ME, Kind.AGENT, f.NS, NAME, "1.1.0", None)
    assert (additive.against, additive.compatible, additive.bump) == ("1.0.0", True, "minor")


async def test_the_report_compares_with_any_version_named(store: SqlStore) -> None:
    await publish(store, ME, bot("1.0.0", "answer", "search"))
    await publish(store, ME, bot("1.1.0", "answer", "search", "more"))
    await publish(store, ME, bot("2.0.0", "answer", "more"))
    report = await compatibility(store, ME, Kind.AGENT, f.NS, NAME, "2.0.0", "1.0.0")
    assert report.against == "1.0.0"
    assert [b.issue for b in report.breaking] == ["skill 'search' was removed"]
    same = await compatibility(store, ME, Kind.AGENT, f.NS, NAME, "1.1.0", "1.1.0")
    assert (same.compatible, same.bump, same.version_bump) == (True, "none", "none")


async def test_the_first_version_has_nothing_to_compare_with(store: SqlStore) -> None:
    await publish(store, ME, bot("1.0.0", "answer"))
    report = await compatibility(store, ME, Kind.AGENT, f.NS, NAME, "1.0.0", None)
    assert (report.against, report.compatible, report.breaking, report.bump) == (None, True, (), "none")


async def test_the_report_refuses_bad_or_redacted_comparisons(store: SqlStore) -> None:
    await publish(store, ME, bot("1.0.0", "answer"))
    await publish(store, ME, bot("1.1.0", "answer"))
    with pytest.raises(InvalidRequest) as bad:
        await compatibility(store, ME, Kind.AGENT, f.NS, NAME, "1.1.0", "^1")
    assert bad.value.details[0].field == "/against"
    with pytest.raises(NotFound):
        await compatibility(store, ME, Kind.AGENT, f.NS, NAME, "1.1.0", "0.9.0")
    with pytest.raises(NotFound):
        await compatibility(store, OTHER, Kind.AGENT, f.NS, NAME, "1.1.0", None)
    await redaction.redact(store, ROOT, Kind.AGENT, f.NS, NAME, "1.0.0", "leaked a token")
    with pytest.raises(Conflict):
        await compatibility(store, ME, Kind.AGENT, f.NS, NAME, "1.1.0", "1.0.0")
    # Without ``against`` the redacted version is passed over.
    assert (await compatibility(store, ME, Kind.AGENT, f.NS, NAME, "1.1.0", None)).against is None
