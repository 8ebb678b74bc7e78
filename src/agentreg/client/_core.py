"""Everything both clients share: building each request and parsing each response or error."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from pydantic import BaseModel

from agentreg import __version__
from agentreg.api import schemas as s
from agentreg.client.errors import (
    BY_STATUS,
    APIError,
    GoneError,
    InternalServerError,
    RateLimitedError,
    extra_fields,
)
from agentreg.domain.kinds import Kind, parse_kind

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def default_base_url() -> str:
    return os.environ.get("AGENTREG_URL", DEFAULT_URL).rstrip("/")


def default_credential(api_key: str | None = None, token: str | None = None) -> str | None:
    """The bearer credential: ``api_key`` or ``token`` if passed, else ``$AGENTREG_API_KEY`` or ``$AGENTREG_TOKEN``.

    Passing ``""`` for either means "no credentials", whatever the environment holds.
    """
    if api_key and token:
        raise ValueError("pass api_key or token, not both")
    if api_key is not None or token is not None:
        return api_key or token or None
    env_key, env_token = os.environ.get("AGENTREG_API_KEY"), os.environ.get("AGENTREG_TOKEN")
    if env_key and env_token:
        raise ValueError("set AGENTREG_API_KEY or AGENTREG_TOKEN, not both")
    return env_key or env_token or None


def plural(kind: str | Kind) -> str:
    return (kind if isinstance(kind, Kind) else parse_kind(kind, "kind")).plural


def split_name(full_name: str) -> tuple[str, str]:
    namespace, sep, name = full_name.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"expected 'namespace/name', got {full_name!r}")
    return namespace, name


def _segment(text: str) -> str:
    return quote(text, safe="")


def resource_path(kind: str | Kind, full_name: str, *rest: str) -> str:
    namespace, name = split_name(full_name)
    tail = "".join("/" + _segment(part) for part in rest)
    return f"/v1/{plural(kind)}/{_segment(namespace)}/{_segment(name)}{tail}"


class RequestBuilder:
    def __init__(
        self,
        base_url: str | None,
        headers: Mapping[str, str] | None = None,
        credential: str | None = None,
    ) -> None:
        self.base_url = (base_url or default_base_url()).rstrip("/")
        self.headers = {
            "user-agent": f"agentreg-python/{__version__}",
            "accept": "application/json",
            **({"authorization": f"Bearer {credential}"} if credential else {}),
            **(headers or {}),
        }

    def build(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        merged = {**self.headers, **(headers or {})}
        if json_body is not None:
            content = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type:
            merged["content-type"] = content_type
        return httpx.Request(method, self.base_url + path, params=params, content=content, headers=merged)


def document_body(document: Any) -> tuple[bytes, str]:
    """A document as the server takes it: a mapping as JSON, text or bytes as YAML (or JSON)."""
    if isinstance(document, Mapping | list):
        return json.dumps(document).encode(), "application/json"
    if isinstance(document, str):
        document = document.encode()
    if isinstance(document, bytes):
        return document, "application/yaml"
    raise TypeError("document must be a mapping, a list of mappings, or YAML/JSON text")


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
        error = body["error"]
        message, code = str(error["message"]), str(error["code"])
        details, request_id = list(error.get("details") or []), error.get("request_id")
        extra = extra_fields(error)
    except (ValueError, KeyError, TypeError, AttributeError):
        body, message, code, details, request_id, extra = (
            response.text,
            response.text[:200] or response.reason_phrase,
            "http_error",
            [],
            None,
            {},
        )
    cls = BY_STATUS.get(
        response.status_code, InternalServerError if response.status_code >= 500 else APIError
    )
    error = cls(
        message,
        status_code=response.status_code,
        code=code,
        details=details,
        request_id=request_id,
        body=body,
        extra=extra,
    )
    if isinstance(error, RateLimitedError):
        error.retry_after = retry_after(response.headers.get("retry-after"))
    if isinstance(error, GoneError):
        error.successor = link_target(response.headers.get("link"), "successor-version")
    raise error


def link_target(header: str | None, rel: str) -> str | None:
    """The target of the first link with relation ``rel`` in a Link header (RFC 8288), None if there is none."""
    for link in (header or "").split(","):
        target, *params = (part.strip() for part in link.split(";"))
        if not (target.startswith("<") and target.endswith(">")):
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "rel" and rel in value.strip().strip('"').split():
                return target[1:-1]
    return None


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _time(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def reading_params(environment: str | None, include_blocked: bool) -> list[tuple[str, str]] | None:
    """Query parameters of a version read: resolve among what ``environment`` admits; read blocked ones."""
    params = [("environment", environment)] if environment else []
    if include_blocked:
        params.append(("includeBlocked", "true"))
    return params or None


def namespace_etag(namespace: s.NamespaceOut) -> str:
    """The ETag a namespace's sharing has (what GET /v1/namespaces/{name} sends), for ``if_match``."""
    grantees = sorted([*(["*"] if namespace.public else []), *namespace.sharedWith])
    return '"' + ";".join(grantees) + '"'


def audit_params(
    tenant: str | None,
    actor: str | None,
    action: str | None,
    object: str | None,
    since: datetime | str | None,
    until: datetime | str | None,
) -> list[tuple[str, Any]]:
    pairs = (
        ("tenant", tenant),
        ("actor", actor),
        ("action", action),
        ("object", object),
        ("since", _time(since)),
        ("until", _time(until)),
    )
    return [(k, v) for k, v in pairs if v is not None]


def audit_line(line: str) -> s.AuditEventOut | None:
    """One line of a JSON Lines export (None for a blank one)."""
    return s.AuditEventOut.model_validate_json(line) if line.strip() else None


class Call:
    """One prepared API call: the request and how to read its answer."""

    __slots__ = ("model", "request")

    def __init__(self, request: httpx.Request, model: type[BaseModel] | None) -> None:
        self.request = request
        self.model = model


class Operations:
    """Every API operation as a prepared call; the sync and async clients only send them."""

    def __init__(self, builder: RequestBuilder) -> None:
        self.b = builder

    def publish(self, document: Any, kind: str | Kind | None) -> Call:
        content, content_type = document_body(document)
        if kind is None:
            kind = _kind_of(document)
        return Call(
            self.b.build("POST", f"/v1/{plural(kind)}", content=content, content_type=content_type),
            s.PublishOut,
        )

    def apply(self, documents: Any, dry_run: bool) -> Call:
        content, content_type = document_body(documents)
        params = {"dryRun": "true"} if dry_run else None
        return Call(
            self.b.build("POST", "/v1/apply", params=params, content=content, content_type=content_type),
            s.ApplyOut,
        )

    def get(self, kind: str | Kind, name: str) -> Call:
        return Call(self.b.build("GET", resource_path(kind, name)), s.ResourceOut)

    def get_version(
        self,
        kind: str | Kind,
        name: str,
        selector: str,
        environment: str | None = None,
        include_blocked: bool = False,
    ) -> Call:
        path = resource_path(kind, name, "versions", selector)
        params = reading_params(environment, include_blocked)
        return Call(self.b.build("GET", path, params=params), s.VersionOut)

    def list_page(
        self,
        kind: str | Kind,
        namespace: str | None,
        labels: Mapping[str, str] | None,
        q: str | None,
        limit: int,
        cursor: str | None,
    ) -> Call:
        params: list[tuple[str, Any]] = [("limit", limit)]
        if namespace:
            params.append(("namespace", namespace))
        params.extend(("label", f"{k}={v}") for k, v in (labels or {}).items())
        if q:
            params.append(("q", q))
        if cursor:
            params.append(("cursor", cursor))
        return Call(self.b.build("GET", f"/v1/{plural(kind)}", params=params), s.ResourcePage)

    def versions(self, kind: str | Kind, name: str) -> Call:
        return Call(self.b.build("GET", resource_path(kind, name, "versions")), s.VersionList)

    def resolved(
        self, name: str, selector: str, environment: str | None = None, include_blocked: bool = False
    ) -> Call:
        path = resource_path(Kind.AGENT, name, "versions", selector, "resolved")
        params = reading_params(environment, include_blocked)
        return Call(self.b.build("GET", path, params=params), s.ResolvedOut)

    def resolve_many(self, refs: Sequence[str]) -> Call:
        return Call(self.b.build("POST", "/v1/resolve", json_body={"refs": list(refs)}), s.ResolveOut)

    def set_alias(self, kind: str | Kind, name: str, alias: str, version: str, if_match: str | None) -> Call:
        headers = {"if-match": f'"{if_match}"'} if if_match else None
        path = resource_path(kind, name, "aliases", alias)
        return Call(self.b.build("PUT", path, json_body={"version": version}, headers=headers), s.AliasOut)

    def delete_alias(self, kind: str | Kind, name: str, alias: str) -> Call:
        return Call(self.b.build("DELETE", resource_path(kind, name, "aliases", alias)), None)

    def aliases(self, kind: str | Kind, name: str) -> Call:
        return Call(self.b.build("GET", resource_path(kind, name, "aliases")), s.AliasList)

    def update_metadata(
        self,
        kind: str | Kind,
        name: str,
        labels: Mapping[str, str | None] | None,
        annotations: Mapping[str, str | None] | None,
    ) -> Call:
        patch: dict[str, Any] = {}
        if labels is not None:
            patch["labels"] = dict(labels)
        if annotations is not None:
            patch["annotations"] = dict(annotations)
        request = self.b.build(
            "PATCH",
            resource_path(kind, name),
            content=json.dumps(patch).encode(),
            content_type="application/merge-patch+json",
        )
        return Call(request, s.ResourceOut)

    # --- identity -----------------------------------------------------------------------------------------

    def whoami(self) -> Call:
        return Call(self.b.build("GET", "/v1/whoami"), s.WhoAmI)

    def create_tenant(self, tenant_id: str, display_name: str | None) -> Call:
        body = s.TenantIn(id=tenant_id, displayName=display_name).model_dump(exclude_none=True)
        return Call(self.b.build("POST", "/v1/tenants", json_body=body), s.TenantOut)

    def list_tenants(self) -> Call:
        return Call(self.b.build("GET", "/v1/tenants"), s.TenantList)

    def claim_namespace(self, name: str, tenant: str | None) -> Call:
        body = s.NamespaceIn(name=name, tenant=tenant).model_dump(exclude_none=True)
        return Call(self.b.build("POST", "/v1/namespaces", json_body=body), s.NamespaceOut)

    def list_namespaces(self) -> Call:
        return Call(self.b.build("GET", "/v1/namespaces"), s.NamespaceList)

    def get_namespace(self, name: str) -> Call:
        return Call(self.b.build("GET", f"/v1/namespaces/{_segment(name)}"), s.NamespaceOut)

    def share_namespace(
        self, name: str, public: bool, tenants: Sequence[str], if_match: s.NamespaceOut | str | None
    ) -> Call:
        if isinstance(if_match, s.NamespaceOut):
            if_match = namespace_etag(if_match)
        elif if_match is not None and if_match != "*" and not if_match.startswith(('"', 'W/"')):
            if_match = f'"{if_match}"'
        headers = {"if-match": if_match} if if_match else None
        body = s.SharingIn(public=public, tenants=list(tenants)).model_dump()
        path = f"/v1/namespaces/{_segment(name)}/sharing"
        return Call(self.b.build("PUT", path, json_body=body, headers=headers), s.NamespaceOut)

    def create_key(
        self,
        name: str,
        roles: Sequence[str],
        tenant: str | None,
        scope: s.KeyScopeIO | Mapping[str, Sequence[str]] | None,
        expires_at: datetime | None,
    ) -> Call:
        if isinstance(roles, str):
            roles = [roles]
        key_scope = (
            scope
            if isinstance(scope, s.KeyScopeIO) or scope is None
            else s.KeyScopeIO.model_validate({k: list(v) for k, v in scope.items()})
        )
        body = s.KeyIn(
            name=name, tenant=tenant, roles=list(roles), scope=key_scope, expiresAt=expires_at
        ).model_dump(mode="json", exclude_none=True)
        return Call(self.b.build("POST", "/v1/keys", json_body=body), s.CreatedKeyOut)

    def list_keys(self, tenant: str | None) -> Call:
        params = {"tenant": tenant} if tenant else None
        return Call(self.b.build("GET", "/v1/keys", params=params), s.KeyList)

    def revoke_key(self, key_id: str) -> Call:
        return Call(self.b.build("DELETE", f"/v1/keys/{_segment(key_id)}"), s.KeyOut)

    # --- audit --------------------------------------------------------------------------------------------

    def audit_page(self, filters: list[tuple[str, Any]], limit: int, cursor: str | None) -> Call:
        params = [*filters, ("limit", limit), *([("cursor", cursor)] if cursor else [])]
        return Call(self.b.build("GET", "/v1/audit", params=params), s.AuditList)

    def audit_export(self, filters: list[tuple[str, Any]]) -> Call:
        request = self.b.build(
            "GET",
            "/v1/audit",
            params=[*filters, ("format", "jsonl")],
            headers={"accept": "application/x-ndjson"},
        )
        return Call(request, None)

    def audit_verify(self, tenant: str | None) -> Call:
        params = {"tenant": tenant} if tenant else None
        return Call(self.b.build("GET", "/v1/audit/verify", params=params), s.AuditVerification)

    def audit_checkpoint(self, tenant: str | None) -> Call:
        params = {"tenant": tenant} if tenant else None
        return Call(self.b.build("POST", "/v1/audit/checkpoints", params=params), s.CheckpointList)


def _kind_of(document: Any) -> str:
    if isinstance(document, Mapping) and isinstance(document.get("kind"), str):
        return str(document["kind"])
    if isinstance(document, str | bytes):
        loaded = yaml.safe_load(document)
        if isinstance(loaded, Mapping) and isinstance(loaded.get("kind"), str):
            return str(loaded["kind"])
    raise ValueError("cannot tell the document's kind; pass kind=")


def read(call: Call, response: httpx.Response) -> Any:
    if response.status_code == 207 or response.status_code < 400:
        if call.model is None:
            return None
        return call.model.model_validate_json(response.content)
    raise_for_error(response)
    return None
