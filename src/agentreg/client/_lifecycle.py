"""The requests of lifecycle, evidence and governance calls, built for both clients (like ``_core.Operations``).

Every per-version call addresses a version as ``(kind, "namespace/name", "1.2.0")``, the way
``get_version`` does, with an exact version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from agentreg.api import schemas as s
from agentreg.api import schemas_compat as sc
from agentreg.api import schemas_evidence as se
from agentreg.api import schemas_lifecycle as sl
from agentreg.api import schemas_policy as sp
from agentreg.client._core import Call, RequestBuilder, document_body, resource_path
from agentreg.domain.kinds import Kind

MAX_USAGE_BATCH = 1000  # reports per POST /v1/usage


def _time(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def policy_etag(value: sp.PolicyOut | int | str | None) -> str | None:
    """An If-Match value for a policy: from the policy as read, its revision, or an ETag as sent."""
    if isinstance(value, sp.PolicyOut):
        value = value.revision
    if isinstance(value, int):
        return f'"p-{value}"'
    if value is not None and value != "*" and not value.startswith(('"', 'W/"')):
        return f'"{value}"'
    return value


def _tenant(tenant: str | None) -> dict[str, str] | None:
    return {"tenant": tenant} if tenant else None


def _finding(finding: Mapping[str, Any] | se.FindingIn) -> dict[str, Any]:
    return finding.model_dump() if isinstance(finding, se.FindingIn) else dict(finding)


class LifecycleOperations:
    """Lifecycle moves, readiness, approvals, evidence, usage, compatibility, redaction and the policy."""

    def __init__(self, builder: RequestBuilder) -> None:
        self.b = builder

    def _post(
        self, kind: str | Kind, name: str, version: str, tail: str, body: Any, model: type[Any]
    ) -> Call:
        path = resource_path(kind, name, "versions", version, tail)
        return Call(self.b.build("POST", path, json_body=body), model)

    def _get(
        self,
        kind: str | Kind,
        name: str,
        version: str,
        tail: str,
        model: type[Any],
        params: Any = None,
    ) -> Call:
        path = resource_path(kind, name, "versions", version, tail)
        return Call(self.b.build("GET", path, params=params), model)

    # --- lifecycle ----------------------------------------------------------------------------------------

    def promote(
        self, kind: str | Kind, name: str, version: str, reason: str, to: str | None, fast_track: bool
    ) -> Call:
        body: dict[str, Any] = {"reason": reason, "fastTrack": fast_track}
        if to is not None:
            body["to"] = to
        return self._post(kind, name, version, "promote", body, sl.PromoteOut)

    def readiness(self, kind: str | Kind, name: str, version: str, to: str | None) -> Call:
        return self._get(kind, name, version, "readiness", sl.ReadinessOut, {"to": to} if to else None)

    def deprecate(
        self,
        kind: str | Kind,
        name: str,
        version: str,
        reason: str,
        successor: str | None,
        sunset: datetime | str | None,
    ) -> Call:
        body: dict[str, Any] = {"reason": reason}
        if successor is not None:
            body["successor"] = successor
        if sunset is not None:
            body["sunset"] = _time(sunset)
        return self._post(kind, name, version, "deprecate", body, s.VersionOut)

    def move(self, kind: str | Kind, name: str, version: str, action: str, reason: str) -> Call:
        """``undeprecate``, ``retire``, ``block`` or ``unblock`` a version: a reason is all they take."""
        return self._post(kind, name, version, action, {"reason": reason}, s.VersionOut)

    def block_resource(self, kind: str | Kind, name: str, blocked: bool, reason: str) -> Call:
        path = resource_path(kind, name, "block" if blocked else "unblock")
        return Call(self.b.build("POST", path, json_body={"reason": reason}), s.ResourceOut)

    def approve(
        self,
        kind: str | Kind,
        name: str,
        version: str,
        to: str | None,
        comment: str,
        approver: str | None,
    ) -> Call:
        body: dict[str, Any] = {"comment": comment}
        if to is not None:
            body["to"] = to
        if approver is not None:
            body["approver"] = approver
        return self._post(kind, name, version, "approvals", body, sl.ApprovalOut)

    def approvals(self, kind: str | Kind, name: str, version: str) -> Call:
        return self._get(kind, name, version, "approvals", sl.ApprovalList)

    def compatibility(self, kind: str | Kind, name: str, version: str, against: str | None) -> Call:
        params = {"against": against} if against else None
        return self._get(kind, name, version, "compatibility", sc.CompatOut, params)

    def redact(self, kind: str | Kind, name: str, version: str, reason: str) -> Call:
        return self._post(kind, name, version, "redact", {"reason": reason}, s.VersionOut)

    # --- evidence -----------------------------------------------------------------------------------------

    def add_evaluation(
        self,
        kind: str | Kind,
        name: str,
        version: str,
        suite: str,
        level: str,
        passed: bool,
        score: float | None,
        metrics: Mapping[str, Any] | None,
        report_url: str | None,
    ) -> Call:
        body: dict[str, Any] = {"suite": suite, "level": level, "passed": passed}
        if score is not None:
            body["score"] = score
        if metrics:
            body["metrics"] = dict(metrics)
        if report_url is not None:
            body["reportUrl"] = report_url
        return self._post(kind, name, version, "evaluations", body, se.EvaluationOut)

    def evaluations(self, kind: str | Kind, name: str, version: str) -> Call:
        return self._get(kind, name, version, "evaluations", se.EvaluationList)

    def add_scan(
        self,
        kind: str | Kind,
        name: str,
        version: str,
        scanner: str,
        findings: Sequence[Mapping[str, Any] | se.FindingIn],
    ) -> Call:
        body = {"scanner": scanner, "findings": [_finding(f) for f in findings]}
        return self._post(kind, name, version, "scans", body, se.ScanOut)

    def scans(self, kind: str | Kind, name: str, version: str) -> Call:
        return self._get(kind, name, version, "scans", se.ScanList)

    def report_usage(self, items: Sequence[Mapping[str, Any]]) -> Call:
        body = {"items": [dict(item) for item in items]}
        return Call(self.b.build("POST", "/v1/usage", json_body=body), se.UsageAccepted)

    def usage(self, kind: str | Kind, name: str, version: str, window: str) -> Call:
        return self._get(kind, name, version, "usage", se.UsageOut, {"window": window})

    # --- governance ---------------------------------------------------------------------------------------

    def check(self, ref: str, environment: str | None) -> Call:
        body: dict[str, Any] = {"ref": ref}
        if environment is not None:
            body["environment"] = environment
        return Call(self.b.build("POST", "/v1/governance/check", json_body=body), sl.CheckOut)

    def get_policy(self, tenant: str | None) -> Call:
        return Call(self.b.build("GET", "/v1/policy", params=_tenant(tenant)), sp.PolicyOut)

    def put_policy(
        self, document: Any, tenant: str | None, if_match: sp.PolicyOut | int | str | None
    ) -> Call:
        content, content_type = document_body(document)
        etag = policy_etag(if_match)
        request = self.b.build(
            "PUT",
            "/v1/policy",
            params=_tenant(tenant),
            content=content,
            content_type=content_type,
            headers={"if-match": etag} if etag else None,
        )
        return Call(request, sp.PolicyOut)

    def policy_revisions(self, tenant: str | None) -> Call:
        return Call(
            self.b.build("GET", "/v1/policy/revisions", params=_tenant(tenant)), sp.PolicyRevisionList
        )

    def exemptions(self, tenant: str | None) -> Call:
        return Call(self.b.build("GET", "/v1/policy/exemptions", params=_tenant(tenant)), sp.ExemptionList)

    def add_exemption(
        self,
        resource: str,
        rules: Sequence[str],
        reason: str,
        expires_at: datetime | str,
        tenant: str | None,
    ) -> Call:
        if isinstance(rules, str):
            rules = [rules]
        body = {"resource": resource, "rules": list(rules), "reason": reason, "expiresAt": _time(expires_at)}
        request = self.b.build("POST", "/v1/policy/exemptions", params=_tenant(tenant), json_body=body)
        return Call(request, sp.ExemptionOut)

    def delete_exemption(self, exemption_id: str, tenant: str | None) -> Call:
        path = "/v1/policy/exemptions/" + quote(exemption_id, safe="")
        return Call(self.b.build("DELETE", path, params=_tenant(tenant)), None)
