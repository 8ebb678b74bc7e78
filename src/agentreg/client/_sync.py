"""The synchronous client."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from agentreg.api import schemas as s
from agentreg.client._core import DEFAULT_TIMEOUT, Call, Operations, RequestBuilder, read
from agentreg.client.errors import APIConnectionError
from agentreg.domain.kinds import Kind
from agentreg.domain.names import parse_ref


class Client:
    """``Client(base_url=None)`` talks to ``$AGENTREG_URL`` (default http://127.0.0.1:8080).

    Pass ``http_client=`` to reuse a configured ``httpx.Client`` (proxies, TLS, an in-process transport).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._ops = Operations(RequestBuilder(base_url, headers))
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

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()
