"""The SDK's lifecycle, evidence and governance calls against the in-process app, and ``UsageReport``.

The async client runs on both backends (single-user mode: the caller is the default tenant's admin and
approvals name their approver; redaction needs a super admin, so that test requires authentication). The
sync client goes through a TestClient on SQLite. Time-dependent steps run under ``clock.frozen``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from agentreg.api.app import AgentRegApp, create_app
from agentreg.client import (
    AsyncClient,
    BlockedError,
    CheckOut,
    Client,
    ConflictError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PromoteOut,
    ReadinessOut,
    ResourceOut,
    UnprocessableEntityError,
    UsageReport,
    VersionOut,
)
from agentreg.client._core import link_target
from agentreg.config import Settings
from agentreg.domain.hll import HyperLogLog
from agentreg.domain.usage import histogram, parse_batch
from agentreg.services import clock, identity
from agentreg.store.sql import SqlStore
from tests import factories as f

BASE = "http://agentreg.test"
NAME = "com.acme/triage"
REF = "skill/com.acme/triage@1.0.0"
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
async def registry(app: AgentRegApp) -> AsyncIterator[AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    async with AsyncClient(BASE, http_client=http, api_key="") as client:
        yield client
    await http.aclose()


async def publish(registry: AsyncClient, *versions: str) -> None:
    for version in versions:
        await registry.publish(f.skill(version=version))


async def test_promotion_waits_for_evidence_and_reports_every_gate(registry: AsyncClient) -> None:
    await publish(registry, "1.0.0")
    with pytest.raises(ConflictError) as refused:
        await registry.promote("skill", NAME, "1.0.0", reason="ready")
    assert refused.value.code == "gates_not_passed" and "report" in refused.value.extra
    report = refused.value.report
    assert isinstance(report, ReadinessOut) and report.target == "experimental" and not report.ready
    assert {g.gate: g.status for g in report.gates} == {
        "schema": "pass",
        "evaluation": "pending",
        "scan": "pending",
    }
    assert refused.value.decision is None

    evaluation = await registry.add_evaluation(
        "skill", NAME, "1.0.0", suite="smoke", level="basic", passed=True, score=0.8, metrics={"f1": 0.7}
    )
    assert (evaluation.suite, evaluation.score, evaluation.metrics) == ("smoke", 0.8, {"f1": 0.7})
    finding = {"id": "CVE-1", "severity": "low", "title": "verbose errors"}
    scan = await registry.add_scan("skill", NAME, "1.0.0", scanner="trivy", findings=[finding])
    assert scan.summary["low"] == 1 and scan.findings[0].id == "CVE-1"
    assert [e.id for e in (await registry.evaluations("skill", NAME, "1.0.0")).items] == [evaluation.id]
    assert [s.scanner for s in (await registry.scans("skill", NAME, "1.0.0")).items] == ["trivy"]

    ready = await registry.readiness("skill", NAME, "1.0.0")
    assert ready.ready and {g.status for g in ready.gates} == {"pass"}
    promoted = await registry.promote("skill", NAME, "1.0.0", reason="smoke suite passed")
    assert isinstance(promoted, PromoteOut) and promoted.status.state == "experimental"
    assert promoted.report.fastTracked is False
    with pytest.raises(UnprocessableEntityError) as bad:
        await registry.add_evaluation("skill", NAME, "1.0.0", suite="x", level="expert", passed=True)
    assert bad.value.details[0]["field"] == "/level"


async def test_certification_reads_usage_from_a_usage_report_and_approvals(registry: AsyncClient) -> None:
    with clock.frozen(T0) as frozen:
        await publish(registry, "1.0.0")
        await registry.promote("skill", NAME, "1.0.0", reason="try it", fast_track=True)
        await registry.add_evaluation(
            "skill", NAME, "1.0.0", suite="full", level="comprehensive", score=0.93, passed=True
        )
        frozen.advance(timedelta(days=9))
        report = UsageReport(bucket_seconds=86400)
        first_day = datetime(2026, 11, 3, 1, tzinfo=UTC)
        for day in range(7):
            for i in range(200):
                report.record(
                    REF,
                    latency_ms=900.0 if i < 10 else 120.0,
                    error=i == 0,
                    caller=f"caller-{day + i % 6}",
                    at=first_day + timedelta(days=day, seconds=i),
                )
        items = report.items()
        assert len(items) == 7 and all(item["requests"] == 200 for item in items)
        assert (await registry.report_usage(items)).accepted == 7
        assert (await registry.report_usage(items)).accepted == 7  # idempotent: replaced, not added
        usage = await registry.usage("skill", NAME, "1.0.0", window="30d")
        assert (usage.requests, usage.errors, usage.buckets, usage.reporters) == (1400, 7, 7, 1)
        assert 11 <= usage.callers <= 13 and usage.latencyMs.p95 is not None
        gates = {g.gate: g.status for g in (await registry.readiness("skill", NAME, "1.0.0")).gates}
        assert gates == {
            "evaluation": "pass",
            "usage": "pass",
            "errorRate": "pass",
            "latency": "pass",
            "findings": "pass",
            "approvals": "pending",
        }
        with pytest.raises(PermissionDeniedError):  # the author ("anonymous" here) never approves
            await registry.approve("skill", NAME, "1.0.0", approver="anonymous")
        approval = await registry.approve("skill", NAME, "1.0.0", approver="bob", comment="looks good")
        assert (approval.target, approval.approver, approval.comment) == ("certified", "bob", "looks good")
        assert [a.approver for a in (await registry.approvals("skill", NAME, "1.0.0")).items] == ["bob"]
        certified = await registry.promote("skill", NAME, "1.0.0", reason="all gates passed")
        assert certified.status.state == "certified"


async def test_deprecation_retirement_and_gone_aliases(registry: AsyncClient) -> None:
    with clock.frozen(T0) as frozen:
        await publish(registry, "1.0.0", "1.1.0", "2.0.0")
        sunset = T0 + timedelta(days=30)
        deprecated = await registry.deprecate(
            "skill", NAME, "1.1.0", reason="superseded", successor="2.0.0", sunset=sunset
        )
        assert isinstance(deprecated, VersionOut) and deprecated.status.deprecation is not None
        assert deprecated.status.deprecation.successor == "2.0.0"
        assert deprecated.status.deprecation.sunset == sunset
        await registry.set_alias("skill", NAME, "stable", "1.1.0")
        frozen.advance(timedelta(days=31))
        with pytest.raises(GoneError) as gone:
            await registry.get_version("skill", NAME, "stable")
        assert gone.value.status_code == 410 and gone.value.code == "gone"
        assert gone.value.successor == f"/v1/skills/{NAME}/versions/2.0.0"
        undone = await registry.undeprecate("skill", NAME, "1.1.0", reason="2.0 rolled back")
        assert undone.status.state == "draft" and undone.status.deprecation is None
        await registry.deprecate("skill", NAME, "1.1.0", reason="old")
        retired = await registry.retire("skill", NAME, "1.1.0", reason="end of life")
        assert retired.status.state == "retired"
        with pytest.raises(ConflictError) as final:
            await registry.undeprecate("skill", NAME, "1.1.0", reason="oops")
        assert final.value.code == "invalid_transition"


async def test_blocking_versions_and_resources(registry: AsyncClient) -> None:
    await publish(registry, "1.0.0", "1.1.0")
    blocked = await registry.block("skill", NAME, "1.1.0", reason="leaks tokens")
    assert isinstance(blocked, VersionOut) and blocked.status.blocked
    assert blocked.status.block is not None and blocked.status.block.reason == "leaks tokens"
    with pytest.raises(BlockedError) as refused:
        await registry.get_version("skill", NAME, "1.1.0")
    assert refused.value.status_code == 423 and refused.value.code == "blocked"
    assert (await registry.get_version("skill", NAME)).document["metadata"]["version"] == "1.0.0"
    admin_read = await registry.get_version("skill", NAME, "1.1.0", include_blocked=True)
    assert admin_read.status.blocked
    check = await registry.check("skill/com.acme/triage@1.1.0")
    assert isinstance(check, CheckOut) and not check.allowed
    assert check.rules[0].id == "lifecycle.blocked"
    await registry.unblock("skill", NAME, "1.1.0", reason="rotated")
    assert (await registry.get_version("skill", NAME)).document["metadata"]["version"] == "1.1.0"

    resource = await registry.block("skill", NAME, reason="malicious upstream")
    assert isinstance(resource, ResourceOut) and resource.blocked is not None
    with pytest.raises(BlockedError):
        await registry.get_version("skill", NAME, "^1")
    await registry.unblock("skill", NAME, reason="cleared")
    await registry.get_version("skill", NAME, "^1")
    with pytest.raises(NotFoundError):
        await registry.block("skill", "com.acme/missing", "1.0.0", reason="x")


async def test_policy_environments_exemptions_and_denials(registry: AsyncClient) -> None:
    policy_yaml = """\
apiVersion: agentreg.dev/v1
kind: Policy
spec:
  deny:
    - {name: "com.acme/legacy", versions: "<2.0.0", reason: end of support}
  environments:
    prod: {states: [certified]}
"""
    assert (await registry.get_policy()).revision == 0
    put = await registry.put_policy(policy_yaml)
    assert put.revision == 1 and put.document["spec"]["environments"]["prod"] == {"states": ["certified"]}
    read = await registry.get_policy()
    document = dict(read.document)
    with pytest.raises(PreconditionFailedError):
        await registry.put_policy(document, if_match=0)
    assert (await registry.put_policy(document, if_match=read)).revision == 1  # same document: no change
    assert [r.revision for r in (await registry.policy_revisions()).items] == [1]

    with pytest.raises(PermissionDeniedError) as denied:
        await registry.publish(f.skill("legacy"))
    assert denied.value.code == "policy_denied"
    decision = denied.value.decision
    assert decision is not None and not decision.allowed
    assert any(r.id == "deny.0" and r.result == "fail" for r in decision.rules)

    expires = datetime.now(UTC) + timedelta(days=30)
    exemption = await registry.add_exemption(
        "skill/com.acme/legacy", ["deny.0"], "migration in progress", expires
    )
    assert exemption.active and exemption.rules == ["deny.0"]
    await registry.publish(f.skill("legacy"))
    assert [e.id for e in (await registry.exemptions()).items] == [exemption.id]
    await registry.delete_exemption(exemption.id)
    assert (await registry.exemptions()).items == []
    with pytest.raises(NotFoundError):
        await registry.delete_exemption(exemption.id)

    await publish(registry, "1.0.0")
    with pytest.raises(ConflictError) as not_admitted:
        await registry.get_version("skill", NAME, "latest", environment="prod")
    assert not_admitted.value.code == "not_admitted" and not_admitted.value.decision is not None
    check = await registry.check("skill/com.acme/triage@^1", environment="prod")
    assert not check.allowed and check.environment == "prod" and check.resolvedVersion is None
    assert [r.id for r in check.rules if r.result == "fail"] == ["environment.prod.state"]
    await registry.promote("skill", NAME, "1.0.0", reason="x", to="experimental", fast_track=True)
    await registry.promote("skill", NAME, "1.0.0", reason="x", to="certified", fast_track=True)
    prod = await registry.get_version("skill", NAME, "latest", environment="prod")
    assert prod.status.state == "certified"
    resolved = await registry.resolve("skill/com.acme/triage@^1", environment="prod")
    assert resolved.document["metadata"]["version"] == "1.0.0"
    assert (await registry.check("skill/com.acme/triage@^1", environment="prod")).allowed


async def test_compatibility_of_a_version(registry: AsyncClient) -> None:
    def skill(skill_id: str) -> dict[str, Any]:
        return {"id": skill_id, "name": skill_id, "description": skill_id, "tags": ["t"]}

    def bot(version: str, *ids: str) -> dict[str, Any]:
        return f.agent(version=version, card=f.card_03(version, skills=[skill(i) for i in ids]))

    await registry.publish(bot("1.1.0", "answer"))
    await registry.publish(bot("1.0.0", "answer", "search"))
    report = await registry.compatibility("agent", "com.acme/support-bot", "1.1.0")
    assert (report.against, report.compatible, report.requiredBump) == ("1.0.0", False, "major")
    assert report.breaking and report.needsMajor
    same = await registry.compatibility("agent", "com.acme/support-bot", "1.1.0", against="1.1.0")
    assert same.compatible and same.breaking == []


@pytest.fixture
async def authenticated(store: SqlStore, tmp_path: Path) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    """(super admin, developer of tenant acme owning com.acme)."""
    app = create_app(Settings(auth="required", data_dir=tmp_path), store=store)
    created = await identity.bootstrap(store)
    assert created is not None
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http,
        AsyncClient(BASE, http_client=http, api_key=created.secret) as root,
    ):
        await root.create_tenant("acme")
        await root.claim_namespace("com.acme", tenant="acme")
        key = await root.create_key("dev", ["developer"], tenant="acme")
        async with AsyncClient(BASE, http_client=http, api_key=key.key) as developer:
            yield root, developer


async def test_only_a_super_admin_redacts(authenticated: tuple[AsyncClient, AsyncClient]) -> None:
    root, developer = authenticated
    await developer.publish(f.skill())
    with pytest.raises(PermissionDeniedError):
        await developer.redact("skill", NAME, "1.0.0", reason="leaked a token")
    redacted = await root.redact("skill", NAME, "1.0.0", reason="leaked a token")
    assert redacted.document["spec"] == {"redacted": True}
    assert redacted.status.redacted is not None and redacted.status.redacted.reason == "leaked a token"


@pytest.fixture
def sync_registry(tmp_data_dir: Path) -> Iterator[Client]:
    app = create_app(Settings(data_dir=tmp_data_dir))
    with TestClient(app, base_url=BASE) as http, Client(BASE, http_client=http, api_key="") as client:
        yield client


def test_sync_client_lifecycle_evidence_and_policy(sync_registry: Client) -> None:
    registry = sync_registry
    registry.publish(f.skill(version="1.0.0"))
    with pytest.raises(ConflictError) as refused:
        registry.promote("skill", NAME, "1.0.0", reason="ready")
    assert refused.value.report is not None and not refused.value.report.ready
    registry.add_evaluation("skill", NAME, "1.0.0", suite="smoke", level="basic", passed=True)
    registry.add_scan("skill", NAME, "1.0.0", scanner="trivy", findings=[])
    assert registry.readiness("skill", NAME, "1.0.0", to="experimental").ready
    assert registry.promote("skill", NAME, "1.0.0", reason="ok").status.state == "experimental"
    assert registry.approve("skill", NAME, "1.0.0", approver="bob").approver == "bob"
    assert len(registry.approvals("skill", NAME, "1.0.0").items) == 1

    report = UsageReport(bucket_seconds=60)
    report.record(REF, 12.0, caller="a")
    assert registry.report_usage(report.items()).accepted == 1
    assert registry.usage("skill", NAME, "1.0.0", window="1h").requests == 1

    registry.block("skill", NAME, "1.0.0", reason="incident")
    with pytest.raises(BlockedError):
        registry.get_version("skill", NAME, "1.0.0")
    assert not registry.check(REF).allowed
    registry.unblock("skill", NAME, "1.0.0", reason="resolved")
    assert registry.get_version("skill", NAME, "1.0.0", environment="dev").status.state == "experimental"

    policy = registry.put_policy({"apiVersion": "agentreg.dev/v1", "kind": "Policy", "spec": {}})
    assert registry.get_policy().revision == policy.revision == 1
    exemption = registry.add_exemption(
        "skill/com.acme/triage", ["cel.*"], "why", datetime.now(UTC) + timedelta(days=1)
    )
    assert [e.id for e in registry.exemptions().items] == [exemption.id]
    registry.delete_exemption(exemption.id)


def test_lifecycle_names_are_exported() -> None:
    import agentreg.client

    wanted = {
        "BlockedError",
        "GoneError",
        "UsageReport",
        "PromoteOut",
        "ReadinessOut",
        "CheckOut",
        "PolicyOut",
    }
    assert wanted <= set(agentreg.client.__all__)
    assert agentreg.client.BlockedError.status_code == 423 and agentreg.client.GoneError.status_code == 410


# --- UsageReport, without a server -----------------------------------------------------------------------


def test_usage_report_items_are_what_the_server_parses() -> None:
    report = UsageReport(bucket_seconds=300)
    at = datetime(2026, 11, 2, 9, 31, 15, tzinfo=UTC)
    for i, latency in enumerate((3.0, 7.5, 120.0, 70000.0)):
        report.record(REF, latency, error=i == 3, caller=f"user-{i % 2}", at=at + timedelta(seconds=i))
    report.record("agent/com.acme/bot@2.0.0", 50.0, at=at + timedelta(minutes=5))
    items = report.items()
    assert [(i["ref"], i["bucketStart"]) for i in items] == [
        ("agent/com.acme/bot@2.0.0", "2026-11-02T09:35:00+00:00"),
        (REF, "2026-11-02T09:30:00+00:00"),
    ]
    parsed = parse_batch({"items": items}, at + timedelta(hours=1))
    triage = parsed[1]
    assert (triage.requests, triage.errors, triage.bucket_seconds) == (4, 1, 300)
    assert triage.latency == histogram([3.0, 7.5, 120.0, 70000.0])
    assert HyperLogLog.from_bytes(triage.callers).estimate() == 2
    assert "callers" not in items[0]  # nobody named: no sketch


def test_usage_report_forgets_only_buckets_that_ended_and_were_sent_in_full() -> None:
    report = UsageReport(bucket_seconds=60)
    at = datetime(2026, 11, 2, 9, 30, 10, tzinfo=UTC)
    report.record(REF, 1.0, at=at)
    report.record(REF, 1.0, at=at + timedelta(minutes=1))
    items = report.items()
    report.record(REF, 1.0, at=at)  # late traffic in the first bucket after the snapshot
    report.forget_sent(items, now=at + timedelta(minutes=5))
    assert len(report) == 1 and report.items()[0]["requests"] == 2  # kept: it changed since
    report.forget_sent(report.items(), now=at + timedelta(seconds=20))
    assert len(report) == 1  # not over yet
    report.forget_sent(report.items(), now=at + timedelta(minutes=5))
    assert len(report) == 0


@pytest.mark.parametrize(
    "ref", ["com.acme/triage@1.0.0", "skill/com.acme/triage", "skill/com.acme/triage@^1", "skill/x@1.0.0"]
)
def test_usage_report_needs_a_kind_and_an_exact_version(ref: str) -> None:
    with pytest.raises(ValueError):
        UsageReport().record(ref, 1.0)


def test_usage_report_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        UsageReport(bucket_seconds=120)
    for latency in (-1.0, float("nan")):
        with pytest.raises(ValueError):
            UsageReport().record(REF, latency)
    with pytest.raises(ValueError):
        UsageReport().record(REF, 1.0, at=datetime(2026, 1, 1))  # no time zone


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=50))
def test_usage_report_latencies_fall_in_the_same_buckets_as_the_domain_histogram(
    latencies: list[float],
) -> None:
    report = UsageReport(bucket_seconds=60)
    at = datetime(2026, 11, 2, tzinfo=UTC)
    for latency in latencies:
        report.record(REF, latency, at=at)
    counts = report.items()[0]["latency"]["counts"] if latencies else [0] * len(histogram([]))
    assert tuple(counts) == histogram(latencies)


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ('</v1/skills/a/b/versions/2.0.0>; rel="successor-version"', "/v1/skills/a/b/versions/2.0.0"),
        (
            '<https://x/a>; rel="next", <https://x/b>; rel="predecessor-version successor-version"',
            "https://x/b",
        ),
        ("<https://x/a>; rel=successor-version", "https://x/a"),
        ('<https://x/a>; rel="next"', None),
        ("garbage", None),
        (None, None),
    ],
)
def test_link_target(header: str | None, target: str | None) -> None:
    assert link_target(header, "successor-version") == target
