"""The synchronous client."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from agentreg.api import schemas as s
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
from agentreg.client.errors import APIConnectionError
from agentreg.domain.kinds import Kind
from agentreg.domain.names import parse_ref


class Client:
    """``Client(base_url=None)`` talks to ``$AGENTREG_URL`` (default http://127.0.0.1:8080).

    It authenticates with ``api_key=`` or ``token=`` (an OIDC token), else ``$AGENTREG_API_KEY`` or
    ``$AGENTREG_TOKEN``, sent as ``Authorization: Bearer``; with none, it sends no credentials.

    Pass ``http_client=`` to reuse a configured ``httpx.Client`` (proxies, TLS, an in-process transport).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
        http_client: httpx.Client | None = None,
        api_key: str | None = None,
        token: str | None = None,
    ) -> None:
        self._ops = Operations(RequestBuilder(base_url, headers, default_credential(api_key, token)))
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout or DEFAULT_TIMEOUT)

    @property
    def base_url(self) -> str:
        return self._ops.b.base_url

    def _send(self, call: Call) -> Any:
        try:
            response = self._http.send(call.request)
        except httpx.TransportError as exc:
            raise APIConnectionError(f"cannot reach the registry at {self.base_url}: {exc}") from exc
        return read(call, response)

    def publish(self, document: Any, *, kind: str | Kind | None = None) -> s.PublishOut:
        result: s.PublishOut = self._send(self._ops.publish(document, kind))
        return result

    def apply(self, documents: Any, *, dry_run: bool = False) -> s.ApplyOut:
        result: s.ApplyOut = self._send(self._ops.apply(documents, dry_run))
        return result

    def get(self, kind: str | Kind, name: str) -> s.ResourceOut:
        result: s.ResourceOut = self._send(self._ops.get(kind, name))
        return result

    def get_version(self, kind: str | Kind, name: str, selector: str = "latest") -> s.VersionOut:
        result: s.VersionOut = self._send(self._ops.get_version(kind, name, selector))
        return result

    def list(
        self,
        kind: str | Kind,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        q: str | None = None,
        page_size: int = 100,
    ) -> Iterator[s.ResourceOut]:
        """Every matching resource, following cursors page by page."""
        cursor: str | None = None
        while True:
            page: s.ResourcePage = self._send(
                self._ops.list_page(kind, namespace, labels, q, page_size, cursor)
            )
            yield from page.items
            if not page.nextCursor:
                return
            cursor = page.nextCursor

    def versions(self, kind: str | Kind, name: str) -> s.VersionList:
        result: s.VersionList = self._send(self._ops.versions(kind, name))
        return result

    def resolve(self, ref: str) -> s.ResolvedOut | s.VersionOut:
        """An agent ref gives its active config; any other ref gives the version it selects."""
        parsed = parse_ref(ref, "ref", None)
        kind = parsed.kind or Kind.AGENT
        if kind == Kind.AGENT:
            resolved: s.ResolvedOut = self._send(self._ops.resolved(parsed.full_name, parsed.selector.text))
            return resolved
        return self.get_version(kind, parsed.full_name, parsed.selector.text)

    def resolve_many(self, refs: Sequence[str]) -> s.ResolveOut:
        result: s.ResolveOut = self._send(self._ops.resolve_many(refs))
        return result

    def set_alias(
        self, kind: str | Kind, name: str, alias: str, version: str, *, if_match: str | None = None
    ) -> s.AliasOut:
        result: s.AliasOut = self._send(self._ops.set_alias(kind, name, alias, version, if_match))
        return result

    def delete_alias(self, kind: str | Kind, name: str, alias: str) -> None:
        self._send(self._ops.delete_alias(kind, name, alias))

    def aliases(self, kind: str | Kind, name: str) -> s.AliasList:
        result: s.AliasList = self._send(self._ops.aliases(kind, name))
        return result

    def update_metadata(
        self,
        kind: str | Kind,
        name: str,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> s.ResourceOut:
        result: s.ResourceOut = self._send(self._ops.update_metadata(kind, name, labels, annotations))
        return result

    # --- identity -----------------------------------------------------------------------------------------

    def whoami(self) -> s.WhoAmI:
        """The principal these credentials act as: tenants and roles, scope, expiry."""
        result: s.WhoAmI = self._send(self._ops.whoami())
        return result

    def create_tenant(self, id: str, display_name: str | None = None) -> s.TenantOut:
        """Create a tenant (super admin)."""
        result: s.TenantOut = self._send(self._ops.create_tenant(id, display_name))
        return result

    def list_tenants(self) -> s.TenantList:
        result: s.TenantList = self._send(self._ops.list_tenants())
        return result

    def claim_namespace(self, name: str, tenant: str | None = None) -> s.NamespaceOut:
        """Claim an unclaimed namespace for ``tenant`` (default: your only tenant)."""
        result: s.NamespaceOut = self._send(self._ops.claim_namespace(name, tenant))
        return result

    def list_namespaces(self) -> s.NamespaceList:
        result: s.NamespaceList = self._send(self._ops.list_namespaces())
        return result

    def get_namespace(self, name: str) -> s.NamespaceOut:
        result: s.NamespaceOut = self._send(self._ops.get_namespace(name))
        return result

    def share_namespace(
        self,
        name: str,
        *,
        public: bool = False,
        tenants: Sequence[str] = (),
        if_match: s.NamespaceOut | str | None = None,
    ) -> s.NamespaceOut:
        """Replace who may read ``name``; ``if_match`` (the namespace as read, or its ETag) guards races."""
        result: s.NamespaceOut = self._send(self._ops.share_namespace(name, public, tenants, if_match))
        return result

    def create_key(
        self,
        name: str,
        roles: Sequence[str],
        *,
        tenant: str | None = None,
        scope: s.KeyScopeIO | Mapping[str, Sequence[str]] | None = None,
        expires_at: datetime | None = None,
    ) -> s.CreatedKeyOut:
        """Create an API key; its secret (``.key``) is in this answer only."""
        result: s.CreatedKeyOut = self._send(self._ops.create_key(name, roles, tenant, scope, expires_at))
        return result

    def list_keys(self, tenant: str | None = None) -> s.KeyList:
        result: s.KeyList = self._send(self._ops.list_keys(tenant))
        return result

    def revoke_key(self, key_id: str) -> s.KeyOut:
        result: s.KeyOut = self._send(self._ops.revoke_key(key_id))
        return result

    # --- audit --------------------------------------------------------------------------------------------

    def audit(
        self,
        tenant: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        object: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int = 100,
    ) -> Iterator[s.AuditEventOut]:
        """Every matching audit event, oldest first, following cursors (``limit`` events a page)."""
        filters = audit_params(tenant, actor, action, object, since, until)
        cursor: str | None = None
        while True:
            page: s.AuditList = self._send(self._ops.audit_page(filters, limit, cursor))
            yield from page.items
            if not page.nextCursor:
                return
            cursor = page.nextCursor

    def audit_export(
        self,
        tenant: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        object: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> Iterator[s.AuditEventOut]:
        """Every matching event, streamed as JSON Lines by the server and parsed one by one."""
        call = self._ops.audit_export(audit_params(tenant, actor, action, object, since, until))
        try:
            response = self._http.send(call.request, stream=True)
        except httpx.TransportError as exc:
            raise APIConnectionError(f"cannot reach the registry at {self.base_url}: {exc}") from exc
        try:
            if response.status_code >= 400:
                response.read()
                raise_for_error(response)
            for line in response.iter_lines():
                if (event := audit_line(line)) is not None:
                    yield event
        finally:
            response.close()

    def audit_verify(self, tenant: str | None = None) -> s.AuditVerification:
        """Have the server re-walk the tenant's hash chain and check its signed checkpoints."""
        result: s.AuditVerification = self._send(self._ops.audit_verify(tenant))
        return result

    def audit_checkpoint(self, tenant: str | None = None) -> s.CheckpointList:
        """Sign a checkpoint over the tenant's chain head now."""
        result: s.CheckpointList = self._send(self._ops.audit_checkpoint(tenant))
        return result

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()
