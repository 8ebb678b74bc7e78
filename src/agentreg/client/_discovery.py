"""Discovery calls, built once (``DiscoveryOperations``) and sent by the sync and async mixins.

Sources are configured in the ``AGENTREG_SOURCES`` shape; deployments are the inventory rows they own,
read-only but for their overlaid labels and annotations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from agentreg.api import schemas_discovery as sd
from agentreg.client._core import Call, RequestBuilder, document_body, resource_path

if TYPE_CHECKING:
    from agentreg.client._core import Operations
    from agentreg.domain.kinds import Kind

_FILTERS = {
    "resource",
    "cluster",
    "environment",
    "source",
    "health",
    "drift",
    "unregistered",
    "orphaned",
    "kind",
}


def _source_path(name: str, *rest: str) -> str:
    return "/v1/sources/" + "/".join(quote(part, safe="") for part in (name, *rest))


def deployment_params(filters: Mapping[str, Any], limit: int, cursor: str | None) -> list[tuple[str, str]]:
    """Query parameters of ``GET /v1/deployments``: booleans as ``true``/``false``, None left out."""
    unknown = set(filters) - _FILTERS
    if unknown:
        raise TypeError(f"unknown deployment filter(s): {', '.join(sorted(unknown))}")
    params: list[tuple[str, str]] = []
    for key, value in filters.items():
        if value is None or (value is False and key in ("drift", "unregistered")):
            continue
        params.append((key, ("true" if value else "false") if isinstance(value, bool) else str(value)))
    params.append(("limit", str(limit)))
    if cursor:
        params.append(("cursor", cursor))
    return params


class DiscoveryOperations:
    def __init__(self, builder: RequestBuilder) -> None:
        self.b = builder

    def sources(self) -> Call:
        return Call(self.b.build("GET", "/v1/sources"), sd.SourceList)

    def source(self, name: str) -> Call:
        return Call(self.b.build("GET", _source_path(name)), sd.SourceOut)

    def put_source(self, config: Any, name: str | None) -> Call:
        if name is None and isinstance(config, Mapping):
            name = config.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("a source needs a name (in its configuration or as name=)")
        content, content_type = document_body(config)
        request = self.b.build("PUT", _source_path(name), content=content, content_type=content_type)
        return Call(request, sd.SourceOut)

    def delete_source(self, name: str) -> Call:
        return Call(self.b.build("DELETE", _source_path(name)), None)

    def sync_source(self, name: str) -> Call:
        return Call(self.b.build("POST", _source_path(name, "sync")), sd.SourceOut)

    def deployments_page(self, filters: Mapping[str, Any], limit: int, cursor: str | None) -> Call:
        params = deployment_params(filters, limit, cursor)
        return Call(self.b.build("GET", "/v1/deployments", params=params), sd.DeploymentPage)

    def deployment(self, deployment_id: int) -> Call:
        return Call(self.b.build("GET", f"/v1/deployments/{int(deployment_id)}"), sd.DeploymentOut)

    def annotate(
        self,
        deployment_id: int,
        labels: Mapping[str, str | None] | None,
        annotations: Mapping[str, str | None] | None,
        if_match: str | None,
    ) -> Call:
        body: dict[str, Any] = {}
        if labels is not None:
            body["labels"] = dict(labels)
        if annotations is not None:
            body["annotations"] = dict(annotations)
        request = self.b.build(
            "PATCH",
            f"/v1/deployments/{int(deployment_id)}",
            json_body=body,
            headers={"if-match": if_match} if if_match else None,
        )
        return Call(request, sd.DeploymentOut)

    def resource_deployments(self, kind: str | Kind, name: str) -> Call:
        return Call(self.b.build("GET", resource_path(kind, name, "deployments")), sd.DeploymentList)


class DiscoveryMixin:
    """``Client``'s discovery methods."""

    if TYPE_CHECKING:
        _ops: Operations

        def _send(self, call: Call) -> Any: ...

    @property
    def _disc(self) -> DiscoveryOperations:
        return DiscoveryOperations(self._ops.b)

    def sources(self) -> list[sd.SourceOut]:
        """The sources of your tenants: state, last sync, object counts, the last error."""
        result: sd.SourceList = self._send(self._disc.sources())
        return result.items

    def source(self, name: str) -> sd.SourceOut:
        result: sd.SourceOut = self._send(self._disc.source(name))
        return result

    def put_source(self, config: Any, *, name: str | None = None) -> sd.SourceOut:
        """Create or replace an API-managed source from its configuration (a mapping, or YAML/JSON text)."""
        result: sd.SourceOut = self._send(self._disc.put_source(config, name))
        return result

    def delete_source(self, name: str) -> None:
        """Remove an API-managed source and every row it owns."""
        self._send(self._disc.delete_source(name))

    def sync_source(self, name: str) -> sd.SourceOut:
        """Ask the discovery leader to re-list the source now."""
        result: sd.SourceOut = self._send(self._disc.sync_source(name))
        return result

    def deployments(self, *, page_size: int = 100, **filters: Any) -> Iterator[sd.DeploymentOut]:
        """Every inventory row matching ``filters`` (resource="kind/namespace/name", cluster, environment,
        source, health, drift=True, unregistered=True, orphaned, kind), following cursors page by page."""
        cursor: str | None = None
        while True:
            page: sd.DeploymentPage = self._send(self._disc.deployments_page(filters, page_size, cursor))
            yield from page.items
            if not page.nextCursor:
                return
            cursor = page.nextCursor

    def deployment(self, deployment_id: int) -> sd.DeploymentOut:
        result: sd.DeploymentOut = self._send(self._disc.deployment(deployment_id))
        return result

    def annotate_deployment(
        self,
        deployment_id: int,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
        if_match: str | None = None,
    ) -> sd.DeploymentOut:
        """Merge-patch a row's overlay (``None`` removes a key); ``if_match``: the ETag you read."""
        result: sd.DeploymentOut = self._send(
            self._disc.annotate(deployment_id, labels, annotations, if_match)
        )
        return result

    def resource_deployments(self, kind: str | Kind, name: str) -> list[sd.DeploymentOut]:
        """Where a resource (``"namespace/name"``) runs: the rows linked to it."""
        result: sd.DeploymentList = self._send(self._disc.resource_deployments(kind, name))
        return result.items


class AsyncDiscoveryMixin:
    """``AsyncClient``'s discovery methods."""

    if TYPE_CHECKING:
        _ops: Operations

        async def _send(self, call: Call) -> Any: ...

    @property
    def _disc(self) -> DiscoveryOperations:
        return DiscoveryOperations(self._ops.b)

    async def sources(self) -> list[sd.SourceOut]:
        """The sources of your tenants: state, last sync, object counts, the last error."""
        result: sd.SourceList = await self._send(self._disc.sources())
        return result.items

    async def source(self, name: str) -> sd.SourceOut:
        result: sd.SourceOut = await self._send(self._disc.source(name))
        return result

    async def put_source(self, config: Any, *, name: str | None = None) -> sd.SourceOut:
        """Create or replace an API-managed source from its configuration (a mapping, or YAML/JSON text)."""
        result: sd.SourceOut = await self._send(self._disc.put_source(config, name))
        return result

    async def delete_source(self, name: str) -> None:
        """Remove an API-managed source and every row it owns."""
        await self._send(self._disc.delete_source(name))

    async def sync_source(self, name: str) -> sd.SourceOut:
        """Ask the discovery leader to re-list the source now."""
        result: sd.SourceOut = await self._send(self._disc.sync_source(name))
        return result

    async def deployments(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[sd.DeploymentOut]:
        """Every inventory row matching ``filters`` (as ``Client.deployments``), page by page."""
        cursor: str | None = None
        while True:
            call = self._disc.deployments_page(filters, page_size, cursor)
            page: sd.DeploymentPage = await self._send(call)
            for item in page.items:
                yield item
            if not page.nextCursor:
                return
            cursor = page.nextCursor

    async def deployment(self, deployment_id: int) -> sd.DeploymentOut:
        result: sd.DeploymentOut = await self._send(self._disc.deployment(deployment_id))
        return result

    async def annotate_deployment(
        self,
        deployment_id: int,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
        if_match: str | None = None,
    ) -> sd.DeploymentOut:
        """Merge-patch a row's overlay (``None`` removes a key); ``if_match``: the ETag you read."""
        call = self._disc.annotate(deployment_id, labels, annotations, if_match)
        result: sd.DeploymentOut = await self._send(call)
        return result

    async def resource_deployments(self, kind: str | Kind, name: str) -> list[sd.DeploymentOut]:
        """Where a resource (``"namespace/name"``) runs: the rows linked to it."""
        result: sd.DeploymentList = await self._send(self._disc.resource_deployments(kind, name))
        return result.items
