"""Evidence services on both databases: attesting, usage ingest and rollup, and the gates' snapshot."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentreg.domain import gates
from agentreg.domain.errors import Forbidden, Invalid, InvalidRequest, NotFound
from agentreg.domain.evidence import Level
from agentreg.domain.kinds import Kind
from agentreg.domain.lifecycle import State
from agentreg.domain.principals import ANONYMOUS as ME
from agentreg.domain.principals import DEFAULT_TENANT, Role, member
from agentreg.services import clock, evidence, usage
from agentreg.services.evidence import VersionAddress
from agentreg.services.publish import publish
from agentreg.store.evidence import ApprovalRow
from agentreg.store.interface import AuditQuery, Mark, Tx, VersionRow, VersionState
from agentreg.store.sql import SqlStore
from tests import factories as f

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BOT = VersionAddress(Kind.AGENT, f.NS, "support-bot", "1.0.0")
REF = f"agent/{f.NS}/support-bot@1.0.0"
GATEWAY = member("gateway-1", DEFAULT_TENANT, Role.OPERATOR)
OTHER_GATEWAY = member("gateway-2", DEFAULT_TENANT, Role.OPERATOR)
DEVELOPER = member("dev", DEFAULT_TENANT, Role.DEVELOPER)
STRANGER = member("eve", "elsewhere", Role.TENANT_ADMIN, Role.OPERATOR)


@pytest.fixture(autouse=True)
def frozen_clock() -> Any:
    with clock.frozen(NOW) as frozen:
        yield frozen


@pytest.fixture
async def bot(store: SqlStore) -> None:
    await publish(store, ME, f.agent())


def report(
    hours_ago: int, requests: int, errors: int = 0, *, callers: range = range(0), **extra: Any
) -> dict[str, Any]:
    start = NOW - timedelta(hours=hours_ago)
    counts = [0] * 14
    counts[4] = requests  # (50, 100] ms
    return {
        "ref": REF,
        "bucketStart": start.isoformat(),
        "bucketSeconds": 3600,
        "requests": requests,
        "errors": errors,
        "latency": {"counts": counts},
        "callers": {"ids": [hashlib.sha256(f"user-{i}".encode()).hexdigest() for i in callers]},
        **extra,
    }


async def rollup(store: SqlStore, window: str = "30d") -> usage.UsageView:
    return await usage.usage_of(store, ME, BOT.kind, BOT.namespace, BOT.name, BOT.version, window)


async def audit_actions(store: SqlStore) -> list[tuple[str, str, dict[str, Any]]]:
    async with store.read() as tx:
        events = await tx.list_audit(AuditQuery(DEFAULT_TENANT, limit=100))
    return [(e.event.action, e.event.target, dict(e.event.details)) for e in events]


# --- evaluations and scans -----------------------------------------------------------------------------------


async def test_evaluations_are_stored_listed_and_audited(store: SqlStore, bot: None) -> None:
    first = await evidence.add_evaluation(
        store,
        DEVELOPER,
        BOT,
        suite="qa",
        level="basic",
        score=None,
        passed=True,
        metrics={"f1": 0.91},
        report_url=None,
    )
    second = await evidence.add_evaluation(
        store,
        ME,
        BOT,
        suite="qa",
        level="comprehensive",
        score=0.8,
        passed=False,
        metrics={},
        report_url="https://ci.example/r/2",
    )
    assert (first.created_by, first.created_at, first.metrics) == ("dev", NOW, {"f1": 0.91})
    assert await evidence.list_evaluations(store, ME, BOT) == [first, second]
    events = [e for e in await audit_actions(store) if e[0] == "evidence.evaluation"]
    assert events == [
        ("evidence.evaluation", REF, {"suite": "qa", "level": "basic", "score": None, "passed": True}),
        (
            "evidence.evaluation",
            REF,
            {"suite": "qa", "level": "comprehensive", "score": 0.8, "passed": False},
        ),
    ]


async def test_scans_are_stored_with_their_findings_and_audited_with_a_summary(
    store: SqlStore, bot: None
) -> None:
    findings = [
        {"id": "CVE-1", "severity": "critical", "title": "remote code execution"},
        {"id": "CVE-2", "severity": "low", "title": ""},
    ]
    scan = await evidence.add_scan(store, ME, BOT, scanner="trivy", findings=findings)
    assert [dict(x) for x in scan.findings] == findings
    assert await evidence.list_scans(store, ME, BOT) == [scan]
    (event,) = [e for e in await audit_actions(store) if e[0] == "evidence.scan"]
    assert event[2] == {
        "scanner": "trivy",
        "summary": {"critical": 1, "high": 0, "medium": 0, "low": 1, "info": 0},
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metrics": {"f1": float("inf")}}, "/metrics/f1"),
        ({"metrics": {"a/b": [1]}}, "/metrics/a~1b"),
        ({"metrics": {f"m{i}": i for i in range(101)}}, "/metrics"),
        ({"report_url": "http://ci.example/r"}, "/reportUrl"),
        ({"report_url": "https://"}, "/reportUrl"),
        ({"suite": ""}, "/suite"),
        ({"level": "thorough"}, "/level"),
        ({"score": 1.5}, "/score"),
    ],
)
async def test_a_bad_evaluation_is_refused_naming_the_field(
    store: SqlStore, bot: None, changes: dict[str, Any], field: str
) -> None:
    values: dict[str, Any] = {
        "suite": "qa",
        "level": "basic",
        "score": 0.5,
        "passed": True,
        "metrics": {},
        "report_url": None,
    }
    with pytest.raises(Invalid) as exc:
        await evidence.add_evaluation(store, ME, BOT, **{**values, **changes})
    assert exc.value.details[0].field == field
    assert await evidence.list_evaluations(store, ME, BOT) == []


async def test_a_bad_finding_is_refused_naming_the_field(store: SqlStore, bot: None) -> None:
    findings = [{"id": "ok", "severity": "low", "title": ""}, {"id": "x", "severity": "severe", "title": ""}]
    with pytest.raises(Invalid) as exc:
        await evidence.add_scan(store, ME, BOT, scanner="trivy", findings=findings)
    assert exc.value.details[0].field == "/findings/1/severity"


async def test_evidence_names_one_existing_exact_version(store: SqlStore, bot: None) -> None:
    with pytest.raises(InvalidRequest) as exc:
        await evidence.list_evaluations(store, ME, VersionAddress(Kind.AGENT, f.NS, "support-bot", "^1"))
    assert exc.value.details[0].field == "/version"
    with pytest.raises(NotFound):
        await evidence.list_scans(store, ME, VersionAddress(Kind.AGENT, f.NS, "support-bot", "9.9.9"))


async def test_attesting_needs_the_right_and_another_tenant_sees_nothing(store: SqlStore, bot: None) -> None:
    args: dict[str, Any] = {
        "suite": "qa",
        "level": "basic",
        "score": None,
        "passed": True,
        "metrics": {},
        "report_url": None,
    }
    with pytest.raises(Forbidden):
        await evidence.add_evaluation(store, GATEWAY, BOT, **args)  # operators report usage, not evidence
    with pytest.raises(NotFound):
        await evidence.add_evaluation(store, STRANGER, BOT, **args)
    with pytest.raises(Forbidden):
        await evidence.list_scans(store, member("v", DEFAULT_TENANT, Role.VIEWER), BOT)


# --- usage -------------------------------------------------------------------------------------------------


async def test_the_same_batch_twice_gives_the_same_rollup(store: SqlStore, bot: None) -> None:
    batch = {"items": [report(3, 10, 1, callers=range(5)), report(2, 20, callers=range(3, 9))]}
    assert await usage.report(store, GATEWAY, batch) == 2
    once = await rollup(store)
    assert await usage.report(store, GATEWAY, batch) == 2
    twice = await rollup(store)
    assert once == twice
    assert (twice.summary.requests, twice.summary.errors, twice.summary.callers, twice.buckets) == (
        30,
        1,
        9,
        2,
    )


async def test_a_resent_bucket_replaces_the_earlier_report(store: SqlStore, bot: None) -> None:
    await usage.report(store, GATEWAY, {"items": [report(1, 10)]})
    await usage.report(store, GATEWAY, {"items": [report(1, 4)]})
    assert (await rollup(store)).summary.requests == 4


async def test_reports_from_several_reporters_merge(store: SqlStore, bot: None) -> None:
    await usage.report(store, GATEWAY, {"items": [report(2, 10, 1, callers=range(0, 60))]})
    await usage.report(store, OTHER_GATEWAY, {"items": [report(2, 30, 2, callers=range(40, 100))]})
    view = await rollup(store)
    summary = view.summary
    assert (summary.requests, summary.errors, summary.reporters, view.buckets) == (40, 3, 2, 2)
    assert abs(summary.callers - 100) <= 3
    assert summary.first == NOW - timedelta(hours=2) and summary.last == NOW - timedelta(hours=1)
    assert summary.p50_ms is not None and 50 < summary.p50_ms <= 100


async def test_a_batch_with_one_bad_item_writes_nothing(store: SqlStore, bot: None) -> None:
    with pytest.raises(Invalid) as exc:
        await usage.report(store, GATEWAY, {"items": [report(2, 10), report(1, 5, errors=6)]})
    assert [d.field for d in exc.value.details] == ["/items/1/errors"]
    unknown = {**report(1, 5), "ref": f"agent/{f.NS}/support-bot@2.0.0"}
    with pytest.raises(Invalid) as exc:
        await usage.report(store, GATEWAY, {"items": [report(2, 10), unknown]})
    assert [d.field for d in exc.value.details] == ["/items/1/ref"]
    assert (await rollup(store)).buckets == 0


async def test_another_tenants_version_looks_missing_and_reporting_needs_the_right(
    store: SqlStore, bot: None
) -> None:
    with pytest.raises(Invalid) as exc:
        await usage.report(store, STRANGER, {"items": [report(1, 5)]})
    assert [(d.field, d.issue) for d in exc.value.details] == [("/items/0/ref", usage.NO_SUCH_VERSION)]
    with pytest.raises(Forbidden):
        await usage.report(store, DEVELOPER, {"items": [report(1, 5)]})
    assert (await rollup(store)).buckets == 0


async def test_usage_is_not_audited(store: SqlStore, bot: None) -> None:
    before = await audit_actions(store)
    await usage.report(store, GATEWAY, {"items": [report(1, 5)]})
    assert await audit_actions(store) == before


async def test_the_window_bounds_the_rollup(store: SqlStore, bot: None) -> None:
    await usage.report(store, GATEWAY, {"items": [report(24 * 40, 100), report(30, 10), report(1, 1)]})
    assert (await rollup(store, "90d")).summary.requests == 111
    assert (await rollup(store, "30d")).summary.requests == 11
    assert (await rollup(store, "12h")).summary.requests == 1
    with pytest.raises(InvalidRequest):
        await rollup(store, "1y")


async def bot_version(tx: Tx) -> VersionRow:
    resource = await tx.find_resource(None, "agent", f.NS, "support-bot")
    assert resource is not None
    version = await tx.find_version(resource.id, "1.0.0", "1.0.0")
    assert version is not None
    return version


# --- the gates' snapshot -----------------------------------------------------------------------------------


async def test_gather_collects_everything_the_gates_read(store: SqlStore, bot: None) -> None:
    await evidence.add_evaluation(
        store, DEVELOPER, BOT, suite="qa", level="basic", score=0.9, passed=True, metrics={}, report_url=None
    )
    await evidence.add_scan(
        store, DEVELOPER, BOT, scanner="trivy", findings=[{"id": "c", "severity": "critical", "title": ""}]
    )
    await evidence.add_scan(
        store, DEVELOPER, BOT, scanner="trivy", findings=[{"id": "l", "severity": "low", "title": ""}]
    )
    await usage.report(store, GATEWAY, {"items": [report(24 * 10, 100, 5), report(2, 50, callers=range(20))]})
    async with store.begin() as tx:
        version = await bot_version(tx)
        await tx.insert_approval(ApprovalRow(version.id, "certified", "bob", ("developer",), "", NOW))
        snapshot = await evidence.gather(tx, version, {7, 30}, NOW)
    assert snapshot.author == "anonymous" and snapshot.warnings == version.warnings
    assert [e.suite for e in snapshot.evaluations] == ["qa"] and len(snapshot.scans) == 2
    assert [a.approver for a in snapshot.approvals] == ["bob"]
    assert (snapshot.usage[7].requests, snapshot.usage[30].requests, snapshot.usage[30].errors) == (
        50,
        150,
        5,
    )
    report_ = gates.readiness(gates.DEFAULT_GATES, State.EXPERIMENTAL, snapshot, NOW)
    assert {g.gate: g.status for g in report_.gates} == {
        "schema": gates.Status.PASS,
        "evaluation": gates.Status.PASS,
        "scan": gates.Status.PASS,  # the later trivy scan closed the critical finding
    }
    summary = evidence.evidence_summary(snapshot)
    assert summary["scans"] == [
        {"scanner": "trivy", "critical": 0, "high": 0, "medium": 0, "low": 1, "info": 0}
    ]
    assert summary["evaluations"] == [{"suite": "qa", "level": Level.BASIC, "score": 0.9, "passed": True}]
    assert summary["usage"]["requests"] == 150 and summary["usage"]["errorRate"] == pytest.approx(5 / 150)
    assert summary["usage"]["callers"] == 20 and summary["usage"]["p95Ms"] == pytest.approx(97.5, abs=0.5)
    assert summary["approvals"] == 1


async def test_a_snapshot_without_usage_windows_reads_no_usage(store: SqlStore, bot: None) -> None:
    async with store.read() as tx:
        version = await bot_version(tx)
        snapshot = await evidence.gather(tx, version, set(), NOW)
    assert snapshot.usage == {} and snapshot.evaluations == []
    assert evidence.evidence_summary(snapshot) == {
        "evaluations": [],
        "scans": [],
        "usage": {"requests": 0, "errors": 0, "errorRate": 0.0, "callers": 0, "p95Ms": 0.0},
        "approvals": 0,
    }


async def test_blocked_and_retired_versions_still_take_evidence_and_usage(store: SqlStore, bot: None) -> None:
    async with store.begin() as tx:
        version = await bot_version(tx)
        await tx.set_version_block(version.id, Mark("compromised", NOW, "admin"))
        await tx.set_version_state(version.id, VersionState("retired", NOW))
    scan = await evidence.add_scan(store, ME, BOT, scanner="trivy", findings=[])
    assert await evidence.list_scans(store, ME, BOT) == [scan]
    assert await usage.report(store, GATEWAY, {"items": [report(1, 5)]}) == 1
    assert (await rollup(store)).summary.requests == 5
