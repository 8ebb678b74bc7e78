"""Everything both clients share: building each request and parsing each response or error."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from pydantic import BaseModel

from agentreg import __version__
from agentreg.api import schemas as s
from agentreg.client.errors import BY_STATUS, APIError, InternalServerError
from agentreg.domain.kinds import Kind, parse_kind

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def default_base_url() -> str:
    return os.environ.get("AGENTREG_URL", DEFAULT_URL).rstrip("/")


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
    def __init__(self, base_url: str | None, headers: Mapping[str, str] | None = None) -> None:
        self.base_url = (base_url or default_base_url()).rstrip("/")
        self.headers = {
            "user-agent": f"agentreg-python/{__version__}",
            "accept": "application/json",
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
    except (ValueError, KeyError, TypeError):
        body, message, code, details, request_id = (
            response.text,
            response.text[:200] or response.reason_phrase,
            "http_error",
            [],
            None,
        )
    cls = BY_STATUS.get(
        response.status_code, InternalServerError if response.status_code >= 500 else APIError
    )
    raise cls(
        message,
        status_code=response.status_code,
        code=code,
        details=details,
        request_id=request_id,
        body=body,
    )


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

    def get_version(self, kind: str | Kind, name: str, selector: str) -> Call:
        return Call(self.b.build("GET", resource_path(kind, name, "versions", selector)), s.VersionOut)

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

    def resolved(self, name: str, selector: str) -> Call:
        return Call(
            self.b.build("GET", resource_path(Kind.AGENT, name, "versions", selector, "resolved")),
            s.ResolvedOut,
        )

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
