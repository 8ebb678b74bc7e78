"""promote, readiness, deprecate ... block, approve, evidence, usage and policy, run through ``main()`` like a
shell would (errors: one stderr line and an exit code).

The registry is the in-process app in single-user mode (the caller is the default tenant's admin; approvals
name their approver) behind a TestClient transport under the SDK. Rich draws boxes and wraps lines, so
output is flattened before matching.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from agentreg.api.app import create_app
from agentreg.cli import context
from agentreg.client import Client, UsageReport
from agentreg.config import Settings
from tests import factories as f
from tests.cli.conftest import Run

BASE = "http://agentreg.test"
REF = "skill/com.acme/triage@1.0.0"


def flat(text: str) -> str:
    """Text without Rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", text).split())


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """An SDK client on the same registry the commands talk to (to seed what no command makes)."""
    for name in ("AGENTREG_API_KEY", "AGENTREG_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENTREG_URL", BASE)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    app = create_app(Settings(data_dir=tmp_path / "data"))
    with TestClient(app, base_url=BASE) as http:

        def client(*args: Any, **kwargs: Any) -> Client:
            return Client(*args, http_client=http, **kwargs)

        monkeypatch.setattr(context, "Client", client)
        seeded = client(BASE, api_key="")
        for version in ("1.0.0", "2.0.0"):
            seeded.publish(f.skill(version=version))
        yield seeded


def test_promote_shows_the_readiness_report_until_the_evidence_is_in(registry: Client, run: Run) -> None:
    code, out, err = run("promote", REF, "--reason", "ready")
    assert code == 1 and out == ""
    text = flat(err)
    assert "gates_not_passed" in text and "cannot be promoted to experimental" in text
    assert "GATE STATUS EVIDENCE MISSING" in text
    assert "scan pending" in text and "a security scan (none yet)" in text
    assert "schema pass" in text and "evaluation pending" in text

    code, out, _ = run(
        "evidence", "add", REF, "--suite", "smoke", "--passed", "--score", "0.9", "--metric", "f1=0.8"
    )
    assert code == 0 and "smoke" in out and "passed" in out
    code, out, _ = run("evidence", "add", REF, "--scan", "--scanner", "trivy")
    assert code == 0 and "trivy" in out and "none" in out
    code, out, _ = run("-o", "json", "evidence", "list", REF)
    listed = json.loads(out)
    assert code == 0 and [e["metrics"] for e in listed["evaluations"]] == [{"f1": 0.8}]
    assert [s["findings"] for s in listed["scans"]] == [[]]

    code, out, _ = run("readiness", REF)
    text = flat(out)
    assert code == 0 and "draft → experimental (ready)" in text
    assert "evaluation pass evaluations: smoke (basic, passed, score 0.9)" in text
    code, out, _ = run("promote", REF, "--reason", "smoke suite passed")
    assert code == 0 and "experimental" in flat(out) and "(ready)" in flat(out)
    assert registry.get_version("skill", "com.acme/triage", "1.0.0").status.state == "experimental"

    code, out, _ = run("readiness", REF, "-o", "json")
    report = json.loads(out)
    assert code == 0 and report["target"] == "certified" and report["ready"] is False
    code, out, _ = run("promote", REF, "--reason", "hotfix", "--fast-track", "-o", "yaml")
    assert code == 0 and yaml.safe_load(out)["report"]["fastTracked"] is True


def test_scan_findings_from_options_and_a_file(registry: Client, run: Run, tmp_path: Path) -> None:
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps({"findings": [{"id": "CVE-2", "severity": "critical", "title": "RCE"}]}))
    code, out, _ = run(
        "-o",
        "json",
        "evidence",
        "add",
        REF,
        "--scanner",
        "grype",
        "--finding",
        "CVE-1:HIGH:path: traversal",
        "--findings-file",
        str(findings),
    )
    scan = json.loads(out)
    assert code == 0 and [(f["id"], f["severity"], f["title"]) for f in scan["findings"]] == [
        ("CVE-1", "high", "path: traversal"),
        ("CVE-2", "critical", "RCE"),
    ]
    code, out, _ = run("readiness", REF)
    assert code == 0 and "scan fail" in flat(out) and "CVE-2 (critical)" in flat(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--suite", "s", "--scanner", "t", "--passed"], "--evaluation (with --suite) or --scan"),
        (["--evaluation"], "--suite and --passed or --failed"),
        (["--suite", "s"], "--suite and --passed or --failed"),
        (["--scan"], "a scan needs --scanner"),
        (["--scanner", "t", "--finding", "CVE-1:urgent"], "ID:SEVERITY[:TITLE]"),
        (["--suite", "s", "--passed", "--metric", "novalue"], "NAME=VALUE"),
    ],
)
def test_evidence_add_usage_errors(registry: Client, run: Run, args: list[str], message: str) -> None:
    code, _, err = run("evidence", "add", REF, *args)
    assert code == 2 and message in flat(err)
    assert registry.evaluations("skill", "com.acme/triage", "1.0.0").items == []


def test_a_server_refusal_of_evidence_is_one_line(registry: Client, run: Run) -> None:
    code, _, err = run("evidence", "add", REF, "--suite", "s", "--level", "expert", "--passed")
    assert code == 1 and "/level" in err and "invalid_request" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "ref", ["com.acme/triage@1.0.0", "skill/com.acme/triage@^1", "skill/com.acme/triage", "skill/a/b/c@1"]
)
def test_version_commands_need_a_kind_and_an_exact_version(registry: Client, run: Run, ref: str) -> None:
    code, _, err = run("promote", ref, "--reason", "x")
    assert code == 2 and "REF" in flat(err)


def test_deprecate_undeprecate_retire(registry: Client, run: Run) -> None:
    before = datetime.now(UTC)
    code, out, _ = run(
        "-o", "json", "deprecate", REF, "--reason", "superseded", "--successor", "2.0.0", "--sunset", "+30d"
    )
    deprecation = json.loads(out)["status"]["deprecation"]
    sunset = datetime.fromisoformat(deprecation["sunset"])
    assert code == 0 and deprecation["successor"] == "2.0.0"
    assert before + timedelta(days=30) <= sunset <= datetime.now(UTC) + timedelta(days=30)
    code, out, _ = run("undeprecate", REF, "--reason", "2.0 rolled back")
    assert code == 0 and "draft" in flat(out)
    code, _, err = run("deprecate", REF, "--reason", "x", "--sunset", "next tuesday")
    assert code == 2 and "--sunset" in flat(err)
    code, out, _ = run("deprecate", REF, "--reason", "old", "--sunset", "2030-01-01")
    assert code == 0 and "deprecated" in flat(out) and "2030-01-01 00:00:00" in flat(out)
    code, out, _ = run("retire", REF, "--reason", "end of life")
    assert code == 0 and "retired" in flat(out)
    code, _, err = run("undeprecate", REF, "--reason", "oops")
    assert code == 1 and "invalid_transition" in err


def test_block_and_unblock_a_version_or_a_resource(registry: Client, run: Run) -> None:
    code, out, _ = run("block", REF, "--reason", "leaks tokens")
    assert code == 0 and "yes: leaks tokens" in flat(out)
    code, _, err = run("get", "skill", "com.acme/triage@1.0.0")
    assert code == 1 and "(blocked)" in flat(err)
    code, _, err = run("policy", "check", REF)
    assert code == 1
    code, out, _ = run("unblock", REF, "--reason", "rotated")
    assert code == 0 and "no" in flat(out)

    code, out, _ = run("block", "skill/com.acme/triage", "--reason", "malicious upstream")
    assert code == 0 and "skill com.acme/triage yes malicious upstream" in flat(out)
    code, _, err = run("get", "skill", "com.acme/triage@latest")
    assert code == 1 and "blocked" in err
    code, out, _ = run("-o", "json", "unblock", "skill/com.acme/triage", "--reason", "cleared")
    assert code == 0 and json.loads(out).get("blocked") is None
    code, _, _ = run("get", "skill", "com.acme/triage@latest")
    assert code == 0


def test_approve_as_someone_and_list_approvals(registry: Client, run: Run) -> None:
    code, _, err = run("approve", REF, "--as", "anonymous")
    assert code == 1 and "forbidden" in err  # the author never approves
    code, out, _ = run("approve", REF, "--as", "bob", "--comment", "reviewed", "--to", "experimental")
    assert code == 0 and "experimental bob" in flat(out) and "reviewed" in out
    code, out, _ = run("-o", "json", "approvals", REF)
    assert code == 0 and [a["approver"] for a in json.loads(out)] == ["bob"]


def test_usage_of_a_version(registry: Client, run: Run) -> None:
    report = UsageReport(bucket_seconds=60)
    for i in range(10):
        report.record(REF, 40.0 if i else 3000.0, error=i == 0, caller=f"user-{i % 3}")
    registry.report_usage(report.items())
    code, out, _ = run("usage", REF, "--window", "1h")
    text = flat(out)
    assert code == 0 and "requests 10" in text and "errors 1 (10.00%)" in text and "callers ~3" in text
    code, out, _ = run("-o", "json", "usage", REF)
    assert code == 0 and json.loads(out)["window"] == "30d"
    code, _, err = run("usage", REF, "--window", "1y")
    assert code == 1 and "/window" in err


POLICY = """\
apiVersion: agentreg.dev/v1
kind: Policy
spec:
  deny:
    - {name: "com.acme/legacy", versions: "<2.0.0", reason: end of support}
  environments:
    prod: {states: [certified]}
"""


def test_policy_apply_get_revisions(registry: Client, run: Run, tmp_path: Path) -> None:
    code, out, err = run("policy", "get")
    assert code == 0 and "has no policy" in err and yaml.safe_load(out)["spec"] == {}
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    code, out, _ = run("policy", "apply", "-f", str(path))
    assert code == 0 and "default 1" in flat(out)
    code, out, err = run("policy", "get")
    assert code == 0 and yaml.safe_load(out) == yaml.safe_load(POLICY) and "revision 1" in err
    code, out, _ = run("policy", "get", "-o", "json", "--effective")
    assert code == 0 and json.loads(out)["spec"]["environments"]["prod"]["states"] == ["certified"]
    code, _, err = run("policy", "apply", "-f", "-", "--if-match", "0", input=POLICY.replace("<2", "<3"))
    assert code == 1 and "precondition_failed" in err
    code, out, _ = run("policy", "apply", "-f", "-", "--if-match", "1", input=POLICY.replace("<2", "<3"))
    assert code == 0 and "default 2" in flat(out)
    code, out, _ = run("-o", "json", "policy", "revisions")
    assert code == 0 and [r["revision"] for r in json.loads(out)] == [2, 1]


def test_policy_check_exit_codes_and_exemptions(registry: Client, run: Run) -> None:
    registry.put_policy(POLICY)
    code, out, _ = run("policy", "check", "skill/com.acme/triage@^1", "--environment", "prod")
    text = flat(out)
    assert code == 1 and "refused" in text and "environment.prod.state hard fail" in text
    registry.promote("skill", "com.acme/triage", "1.0.0", reason="x", fast_track=True)
    registry.promote("skill", "com.acme/triage", "1.0.0", reason="x", fast_track=True)
    code, out, _ = run("policy", "check", "skill/com.acme/triage@^1", "-e", "prod")
    assert code == 0 and "→ 1.0.0 (certified) in prod: allowed" in flat(out)
    code, out, _ = run("-o", "json", "policy", "check", "skill/com.acme/triage@2.0.0", "-e", "prod")
    assert code == 1 and json.loads(out)["allowed"] is False

    code, _, err = run("apply", "-f", "-", input=yaml.safe_dump(f.skill("legacy")))
    assert code == 1
    code, out, _ = run(
        "-o",
        "json",
        "policy",
        "exempt",
        "--resource",
        "skill/com.acme/legacy",
        "--rule",
        "deny.0",
        "--reason",
        "migration in progress",
        "--expires",
        "+30d",
    )
    exemption = json.loads(out)
    assert code == 0 and exemption["active"] and exemption["rules"] == ["deny.0"]
    code, out, _ = run("apply", "-f", "-", input=yaml.safe_dump(f.skill("legacy")))
    assert code == 0 and "created" in out
    code, out, _ = run("policy", "exemptions")
    assert code == 0 and exemption["id"] in out and "migration in progress" in flat(out)
    code, _, _ = run("policy", "unexempt", exemption["id"])
    assert code == 0
    code, out, _ = run("-o", "json", "policy", "exemptions")
    assert code == 0 and json.loads(out) == []
    code, _, err = run("policy", "unexempt", exemption["id"])
    assert code == 1 and "not_found" in err
    code, _, err = run(
        "policy", "exempt", "--resource", "x", "--rule", "r", "--reason", "y", "--expires", "soon"
    )
    assert code == 2 and "--expires" in flat(err)


def test_compatibility_and_redact(registry: Client, run: Run) -> None:
    code, out, _ = run("compatibility", "skill/com.acme/triage@2.0.0")
    assert code == 0 and "2.0.0" in out
    code, _, err = run("redact", REF, "--reason", "leaked a token")
    assert code == 1 and "super admin" in err  # single-user mode is never a super admin
