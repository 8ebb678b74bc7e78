"""The asynchronous client (the same operations as ``Client``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from agentreg.api import schemas as s
from agentreg.api import schemas_compat as sc
from agentreg.api import schemas_evidence as se
from agentreg.api import schemas_lifecycle as sl
from agentreg.api import schemas_policy as sp
from agentreg.client._core import (
    DEFAULT_TIMEOUT,
    Call,
    Operations,
    RequestBuilder,
    audit_line,
    audit_params,
    default_credential,
    raise_for_error,
    read,
)
from agentreg.client._discovery import AsyncDiscoveryMixin
from agentreg.client._lifecycle import MAX_USAGE_BATCH, LifecycleOperations
from agentreg.client.errors import APIConnectionError
from agentreg.domain.kinds import Kind
from agentreg.domain.names import parse_ref


class AsyncClient(AsyncDiscoveryMixin):
    """``AsyncClient(base_url=None)`` talks to ``$AGENTREG_URL`` (default http://127.0.0.1:8080).

    It authenticates with ``api_key=`` or ``token=`` (an OIDC token), else ``$AGENTREG_API_KEY`` or
    ``$AGENTREG_TOKEN``, sent as ``Authorization: Bearer``; with none, it sends no credentials.

    Pass ``http_client=`` to reuse a configured ``httpx.AsyncClient`` (proxies, TLS, an in-process transport).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
        http_client: httpx.AsyncClient | None = None,
        api_key: str | None = None,
        token: str | None = None,
    ) -> None:
        builder = RequestBuilder(base_url, headers, default_credential(api_key, token))
        self._ops = Operations(builder)
        self._lc = LifecycleOperations(builder)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout or DEFAULT_TIMEOUT)

    @property
    def base_url(self) -> str:
        return self._ops.b.base_url

    async def _send(self, call: Call) -> Any:
        try:
            response = await self._http.send(call.request)
        except httpx.TransportError as exc:
            raise APIConnectionError(f"cannot reach the registry at {self.base_url}: {exc}") from exc
        return read(call, response)

    async def publish(self, document: Any, *, kind: str | Kind | None = None) -> s.PublishOut:
        result: s.PublishOut = await self._send(self._ops.publish(document, kind))
        return result

    async def apply(self, documents: Any, *, dry_run: bool = False) -> s.ApplyOut:
        result: s.ApplyOut = await self._send(self._ops.apply(documents, dry_run))
        return result

    async def get(self, kind: str | Kind, name: str) -> s.ResourceOut:
        result: s.ResourceOut = await self._send(self._ops.get(kind, name))
        return result

    async def get_version(
        self,
        kind: str | Kind,
        name: str,
        selector: str = "latest",
        *,
        environment: str | None = None,
        include_blocked: bool = False,
    ) -> s.VersionOut:
        """The version ``selector`` picks; with ``environment``, among the versions that environment admits.

        A blocked version raises ``BlockedError`` (admins may pass ``include_blocked=True``); an alias on a
        retired version, or one past its sunset, raises ``GoneError``.
        """
        call = self._ops.get_version(kind, name, selector, environment, include_blocked)
        result: s.VersionOut = await self._send(call)
        return result

    async def list(
        self,
        kind: str | Kind,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        q: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[s.ResourceOut]:
        """Every matching resource, following cursors page by page."""
        cursor: str | None = None
        while True:
            page: s.ResourcePage = await self._send(
                self._ops.list_page(kind, namespace, labels, q, page_size, cursor)
            )
            for item in page.items:
                yield item
            if not page.nextCursor:
                return
            cursor = page.nextCursor

    async def versions(self, kind: str | Kind, name: str) -> s.VersionList:
        result: s.VersionList = await self._send(self._ops.versions(kind, name))
        return result

    async def resolve(self, ref: str, *, environment: str | None = None) -> s.ResolvedOut | s.VersionOut:
        """An agent ref gives its active config; any other ref gives the version it selects (with
        ``environment``: among the versions that environment admits)."""
        parsed = parse_ref(ref, "ref", None)
        kind = parsed.kind or Kind.AGENT
        if kind == Kind.AGENT:
            call = self._ops.resolved(parsed.full_name, parsed.selector.text, environment)
            resolved: s.ResolvedOut = await self._send(call)
            return resolved
        return await self.get_version(kind, parsed.full_name, parsed.selector.text, environment=environment)

    async def resolve_many(self, refs: Sequence[str]) -> s.ResolveOut:
        result: s.ResolveOut = await self._send(self._ops.resolve_many(refs))
        return result

    async def set_alias(
        self, kind: str | Kind, name: str, alias: str, version: str, *, if_match: str | None = None
    ) -> s.AliasOut:
        result: s.AliasOut = await self._send(self._ops.set_alias(kind, name, alias, version, if_match))
        return result

    async def delete_alias(self, kind: str | Kind, name: str, alias: str) -> None:
        await self._send(self._ops.delete_alias(kind, name, alias))

    async def aliases(self, kind: str | Kind, name: str) -> s.AliasList:
        result: s.AliasList = await self._send(self._ops.aliases(kind, name))
        return result

    async def update_metadata(
        self,
        kind: str | Kind,
        name: str,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> s.ResourceOut:
        result: s.ResourceOut = await self._send(self._ops.update_metadata(kind, name, labels, annotations))
        return result

    # --- identity -----------------------------------------------------------------------------------------

    async def whoami(self) -> s.WhoAmI:
        """The principal these credentials act as: tenants and roles, scope, expiry."""
        result: s.WhoAmI = await self._send(self._ops.whoami())
        return result

    async def create_tenant(self, id: str, display_name: str | None = None) -> s.TenantOut:
        """Create a tenant (super admin)."""
        result: s.TenantOut = await self._send(self._ops.create_tenant(id, display_name))
        return result

    async def list_tenants(self) -> s.TenantList:
        result: s.TenantList = await self._send(self._ops.list_tenants())
        return result

    async def claim_namespace(self, name: str, tenant: str | None = None) -> s.NamespaceOut:
        """Claim an unclaimed namespace for ``tenant`` (default: your only tenant)."""
        result: s.NamespaceOut = await self._send(self._ops.claim_namespace(name, tenant))
        return result

    async def list_namespaces(self) -> s.NamespaceList:
        result: s.NamespaceList = await self._send(self._ops.list_namespaces())
        return result

    async def get_namespace(self, name: str) -> s.NamespaceOut:
        result: s.NamespaceOut = await self._send(self._ops.get_namespace(name))
        return result

    async def share_namespace(
        self,
        name: str,
        *,
        public: bool = False,
        tenants: Sequence[str] = (),
        if_match: s.NamespaceOut | str | None = None,
    ) -> s.NamespaceOut:
        """Replace who may read ``name``; ``if_match`` (the namespace as read, or its ETag) guards races."""
        result: s.NamespaceOut = await self._send(self._ops.share_namespace(name, public, tenants, if_match))
        return result

    async def create_key(
        self,
        name: str,
        roles: Sequence[str],
        *,
        tenant: str | None = None,
        scope: s.KeyScopeIO | Mapping[str, Sequence[str]] | None = None,
        expires_at: datetime | None = None,
    ) -> s.CreatedKeyOut:
        """Create an API key; its secret (``.key``) is in this answer only."""
        result: s.CreatedKeyOut = await self._send(
            self._ops.create_key(name, roles, tenant, scope, expires_at)
        )
        return result

    async def list_keys(self, tenant: str | None = None) -> s.KeyList:
        result: s.KeyList = await self._send(self._ops.list_keys(tenant))
        return result

    async def revoke_key(self, key_id: str) -> s.KeyOut:
        result: s.KeyOut = await self._send(self._ops.revoke_key(key_id))
        return result

    # --- audit --------------------------------------------------------------------------------------------

    async def audit(
        self,
        tenant: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        object: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int = 100,
    ) -> AsyncIterator[s.AuditEventOut]:
        """Every matching audit event, oldest first, following cursors (``limit`` events a page)."""
        filters = audit_params(tenant, actor, action, object, since, until)
        cursor: str | None = None
        while True:
            page: s.AuditList = await self._send(self._ops.audit_page(filters, limit, cursor))
            for item in page.items:
                yield item
            if not page.nextCursor:
                return
            cursor = page.nextCursor

    async def audit_export(
        self,
        tenant: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        object: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> AsyncIterator[s.AuditEventOut]:
        """Every matching event, streamed as JSON Lines by the server and parsed one by one."""
        call = self._ops.audit_export(audit_params(tenant, actor, action, object, since, until))
        try:
            response = await self._http.send(call.request, stream=True)
        except httpx.TransportError as exc:
            raise APIConnectionError(f"cannot reach the registry at {self.base_url}: {exc}") from exc
        try:
            if response.status_code >= 400:
                await response.aread()
                raise_for_error(response)
            async for line in response.aiter_lines():
                if (event := audit_line(line)) is not None:
                    yield event
        finally:
            await response.aclose()

    async def audit_verify(self, tenant: str | None = None) -> s.AuditVerification:
        """Have the server re-walk the tenant's hash chain and check its signed checkpoints."""
        result: s.AuditVerification = await self._send(self._ops.audit_verify(tenant))
        return result

    async def audit_checkpoint(self, tenant: str | None = None) -> s.CheckpointList:
        """Sign a checkpoint over the tenant's chain head now."""
        result: s.CheckpointList = await self._send(self._ops.audit_checkpoint(tenant))
        return result

    # --- lifecycle ----------------------------------------------------------------------------------------

    async def promote(
        self,
        kind: str | Kind,
        name: str,
        version: str,
        *,
        reason: str,
        to: str | None = None,
        fast_track: bool = False,
    ) -> sl.PromoteOut:
        """Move an exact version up one tier (``to``: default the next one); the answer holds the report.

        A gate that has not passed raises ``ConflictError`` (code ``gates_not_passed``) whose ``.report``
        lists every gate; ``fast_track=True`` (tenant admin) passes failing gates, recorded in the report
        and the audit trail. A policy refusal raises ``PermissionDeniedError`` with ``.decision``.
        """
        call = self._lc.promote(kind, name, version, reason, to, fast_track)
        result: sl.PromoteOut = await self._send(call)
        return result

    async def readiness(
        self, kind: str | Kind, name: str, version: str, to: str | None = None
    ) -> sl.ReadinessOut:
        """Every gate of the next tier (or ``to``): pass, fail or pending, its evidence, what is missing."""
        result: sl.ReadinessOut = await self._send(self._lc.readiness(kind, name, version, to))
        return result

    async def deprecate(
        self,
        kind: str | Kind,
        name: str,
        version: str,
        *,
        reason: str,
        successor: str | None = None,
        sunset: datetime | str | None = None,
    ) -> s.VersionOut:
        """Deprecate a version, naming its successor (a version of this resource or a full ref) and a sunset,
        after which resolution skips it."""
        call = self._lc.deprecate(kind, name, version, reason, successor, sunset)
        result: s.VersionOut = await self._send(call)
        return result

    async def undeprecate(self, kind: str | Kind, name: str, version: str, *, reason: str) -> s.VersionOut:
        """Return a deprecated version to the state it left."""
        result: s.VersionOut = await self._send(self._lc.move(kind, name, version, "undeprecate", reason))
        return result

    async def retire(self, kind: str | Kind, name: str, version: str, *, reason: str) -> s.VersionOut:
        """Retire a version (final): resolution skips it, an alias on it answers ``GoneError``."""
        result: s.VersionOut = await self._send(self._lc.move(kind, name, version, "retire", reason))
        return result

    async def block(
        self, kind: str | Kind, name: str, version: str | None = None, *, reason: str
    ) -> s.VersionOut | s.ResourceOut:
        """The kill switch (tenant admin): block a version, or without ``version`` every version of the
        resource; reads of it raise ``BlockedError`` until it is unblocked."""
        return await self._blocking(kind, name, version, True, reason)

    async def unblock(
        self, kind: str | Kind, name: str, version: str | None = None, *, reason: str
    ) -> s.VersionOut | s.ResourceOut:
        """Lift a block on a version, or without ``version`` on the resource."""
        return await self._blocking(kind, name, version, False, reason)

    async def _blocking(
        self, kind: str | Kind, name: str, version: str | None, blocked: bool, reason: str
    ) -> s.VersionOut | s.ResourceOut:
        if version is None:
            resource: s.ResourceOut = await self._send(self._lc.block_resource(kind, name, blocked, reason))
            return resource
        action = "block" if blocked else "unblock"
        result: s.VersionOut = await self._send(self._lc.move(kind, name, version, action, reason))
        return result

    async def approve(
        self,
        kind: str | Kind,
        name: str,
        version: str,
        *,
        to: str | None = None,
        comment: str = "",
        approver: str | None = None,
    ) -> sl.ApprovalOut:
        """Approve a version for a tier (default: the next one); never one's own. ``approver`` names who
        approves in single-user mode only."""
        call = self._lc.approve(kind, name, version, to, comment, approver)
        result: sl.ApprovalOut = await self._send(call)
        return result

    async def approvals(self, kind: str | Kind, name: str, version: str) -> sl.ApprovalList:
        result: sl.ApprovalList = await self._send(self._lc.approvals(kind, name, version))
        return result

    async def compatibility(
        self, kind: str | Kind, name: str, version: str, against: str | None = None
    ) -> sc.CompatOut:
        """What breaks from ``against`` (default: the previous version of the same major) to ``version``."""
        result: sc.CompatOut = await self._send(self._lc.compatibility(kind, name, version, against))
        return result

    async def redact(self, kind: str | Kind, name: str, version: str, *, reason: str) -> s.VersionOut:
        """Replace a version's spec with a tombstone (super admin); its digest, status and audit trail stay."""
        result: s.VersionOut = await self._send(self._lc.redact(kind, name, version, reason))
        return result

    # --- evidence -----------------------------------------------------------------------------------------

    async def add_evaluation(
        self,
        kind: str | Kind,
        name: str,
        version: str,
        *,
        suite: str,
        level: str,
        passed: bool,
        score: float | None = None,
        metrics: Mapping[str, Any] | None = None,
        report_url: str | None = None,
    ) -> se.EvaluationOut:
        """Attest an evaluation of a version (``level``: basic or comprehensive; ``score`` from 0 to 1)."""
        call = self._lc.add_evaluation(kind, name, version, suite, level, passed, score, metrics, report_url)
        result: se.EvaluationOut = await self._send(call)
        return result

    async def evaluations(self, kind: str | Kind, name: str, version: str) -> se.EvaluationList:
        result: se.EvaluationList = await self._send(self._lc.evaluations(kind, name, version))
        return result

    async def add_scan(
        self,
        kind: str | Kind,
        name: str,
        version: str,
        *,
        scanner: str,
        findings: Sequence[Mapping[str, Any] | se.FindingIn],
    ) -> se.ScanOut:
        """Attest a security scan: ``findings`` as ``{id, severity: critical|high|medium|low|info, title}``."""
        result: se.ScanOut = await self._send(self._lc.add_scan(kind, name, version, scanner, findings))
        return result

    async def scans(self, kind: str | Kind, name: str, version: str) -> se.ScanList:
        result: se.ScanList = await self._send(self._lc.scans(kind, name, version))
        return result

    async def report_usage(self, items: Sequence[Mapping[str, Any]]) -> se.UsageAccepted:
        """Send usage reports (``UsageReport.items()`` builds them), 1000 a request: each request is checked
        whole before any of it is stored, so an error leaves the earlier requests stored."""
        accepted = 0
        for start in range(0, len(items), MAX_USAGE_BATCH):
            batch: se.UsageAccepted = await self._send(
                self._lc.report_usage(items[start : start + MAX_USAGE_BATCH])
            )
            accepted += batch.accepted
        return se.UsageAccepted(accepted=accepted)

    async def usage(self, kind: str | Kind, name: str, version: str, window: str = "30d") -> se.UsageOut:
        """A version's usage over ``window`` (``<n>d`` or ``<n>h``), all reporters merged."""
        result: se.UsageOut = await self._send(self._lc.usage(kind, name, version, window))
        return result

    # --- governance ---------------------------------------------------------------------------------------

    async def check(self, ref: str, environment: str | None = None) -> sl.CheckOut:
        """May ``ref`` (``kind/namespace/name[@selector]``) run in ``environment``? The version it resolves
        to and every rule's result."""
        result: sl.CheckOut = await self._send(self._lc.check(ref, environment))
        return result

    async def get_policy(self, tenant: str | None = None) -> sp.PolicyOut:
        """The tenant's policy: the document as put, and the policy in effect (defaults filled in)."""
        result: sp.PolicyOut = await self._send(self._lc.get_policy(tenant))
        return result

    async def put_policy(
        self,
        document: Any,
        tenant: str | None = None,
        if_match: sp.PolicyOut | int | str | None = None,
    ) -> sp.PolicyOut:
        """Replace the tenant's policy (a mapping, or YAML/JSON text); ``if_match`` (the policy as read, its
        revision or its ETag) refuses the change with ``PreconditionFailedError`` if it changed since."""
        result: sp.PolicyOut = await self._send(self._lc.put_policy(document, tenant, if_match))
        return result

    async def policy_revisions(self, tenant: str | None = None) -> sp.PolicyRevisionList:
        """Every revision of the tenant's policy, newest first."""
        result: sp.PolicyRevisionList = await self._send(self._lc.policy_revisions(tenant))
        return result

    async def exemptions(self, tenant: str | None = None) -> sp.ExemptionList:
        """The tenant's exemptions; expired ones are listed inactive."""
        result: sp.ExemptionList = await self._send(self._lc.exemptions(tenant))
        return result

    async def add_exemption(
        self,
        resource: str,
        rules: Sequence[str],
        reason: str,
        expires_at: datetime | str,
        tenant: str | None = None,
    ) -> sp.ExemptionOut:
        """Exempt ``resource`` (``kind/namespace/name[@range]``) from ``rules`` (ids or globs) until
        ``expires_at``."""
        call = self._lc.add_exemption(resource, rules, reason, expires_at, tenant)
        result: sp.ExemptionOut = await self._send(call)
        return result

    async def delete_exemption(self, exemption_id: str, tenant: str | None = None) -> None:
        await self._send(self._lc.delete_exemption(exemption_id, tenant))

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object | TracebackType | None) -> None:
        await self.close()
