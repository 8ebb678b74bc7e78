"""A thin raw-JSON client over kubernetes-asyncio: discovery, paginated lists and watch streams as dicts.

kubernetes-asyncio does authentication, TLS and kubeconfig/in-cluster loading; we call ``ApiClient.call_api``
with ``_preload_content=False`` and parse JSON ourselves, so no generated model class is built per object
(a list of 10,000 objects costs one ``json.loads``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from agentreg.domain.sources import SourceConfig

LIST_PAGE = 500
_AUTH = ["BearerToken"]


class KubeError(Exception):
    """The API server answered with an error status (``code``), or sent a watch ``ERROR`` event."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Gone(KubeError):
    """410: the resourceVersion asked for is older than the server keeps; list again."""


def _error(code: int, body: Any) -> KubeError:
    message = body.get("message") if isinstance(body, Mapping) else None
    text = str(message or body)[:300]
    return Gone(code, text) if code == 410 else KubeError(code, text)


class KubeClient:
    """Raw requests to one cluster's API server."""

    def __init__(self, api: k8s_client.ApiClient) -> None:
        self.api = api

    @classmethod
    async def connect(cls, config: SourceConfig) -> KubeClient:
        """A client from the source's kubeconfig (and context), or the in-cluster service account."""
        if config.in_cluster:
            configuration = k8s_client.Configuration()
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return cls(k8s_client.ApiClient(configuration=configuration))
        api = await k8s_config.new_client_from_config(
            config_file=config.kubeconfig, context=config.context, persist_config=False
        )
        return cls(api)

    async def close(self) -> None:
        await self.api.close()

    async def _get(self, path: str, query: list[tuple[str, Any]], limits: Any) -> aiohttp.ClientResponse:
        response: aiohttp.ClientResponse = await self.api.call_api(
            path,
            "GET",
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=_AUTH,
            _preload_content=False,
            _request_timeout=limits,
        )
        return response

    async def get(self, path: str, query: list[tuple[str, Any]] | None = None, limit_s: float = 30.0) -> Any:
        """One JSON document; an error status raises ``KubeError``."""
        response = await self._get(path, query or [], limit_s)
        try:
            body = await response.read()
        finally:
            response.release()
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            document = body.decode(errors="replace")
        if response.status >= 400:
            raise _error(response.status, document)
        return document

    async def list(
        self, path: str, label_selector: str | None = None, page: int = LIST_PAGE
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item of a collection (``limit``/``continue`` pages) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        version = ""
        while True:
            query: list[tuple[str, Any]] = [("limit", page)]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            document = await self.get(path, query)
            meta = document.get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "")
            kind = str(document.get("kind", "")).removesuffix("List")
            api_version = document.get("apiVersion")
            for item in document.get("items") or []:
                # list items carry no apiVersion/kind: give each its collection's, as a watch event would
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            token = meta.get("continue") or None
            if not token:
                return items, version

    async def watch(
        self, path: str, resource_version: str, label_selector: str | None, timeout_s: int
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events from ``resource_version`` (bookmarks asked for) until the server ends the stream."""
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", timeout_s),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        # no total timeout: the server ends the stream after timeoutSeconds; a silent peer trips sock_read
        limits = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=timeout_s + 30)
        response = await self._get(path, query, limits)
        try:
            if response.status >= 400:
                body = await response.read()
                try:
                    document: Any = json.loads(body)
                except ValueError:
                    document = body.decode(errors="replace")
                raise _error(response.status, document)
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
            if buffer.strip():
                yield json.loads(buffer)
        finally:
            response.close()  # an unfinished stream must not go back to the pool
