"""A faithful local list/watch Kubernetes API server, on 127.0.0.1 with a random port, in a thread.

It fakes the API server because none can be installed here (no kind, no etcd, no kube-apiserver binary); it
implements what a discovery client relies on, the way the real one behaves:

- discovery: ``/api``, ``/api/v1``, ``/apis``, ``/apis/{group}``, ``/apis/{group}/{version}``; a kind whose
  CRD is not installed answers 404 with a ``Status`` body, as do its collection paths;
- lists, namespaced and cluster-wide, with ``labelSelector`` (``k=v``, ``k!=v``, ``k``, ``!k``), ``limit`` and
  ``continue`` pages, a global increasing ``resourceVersion`` on every object and on the list's metadata, list
  items without ``kind``/``apiVersion`` (as the real server sends them);
- watches (``watch=true``): newline-delimited JSON events ``ADDED``/``MODIFIED``/``DELETED`` from the given
  ``resourceVersion``, ``BOOKMARK`` events when ``allowWatchBookmarks=true``, the stream closed after
  ``timeoutSeconds``, and an ``ERROR`` event carrying a ``Status`` with code 410 when the resourceVersion is
  older than the compacted history (as the real server sends it: HTTP 200, then the event);
- test controls: ``create``/``update``/``delete``/``apply`` objects, ``install``/``uninstall`` kinds,
  ``compact`` history, ``drop_connections`` (streams cut mid-chunk), ``stop``/``start`` (a restart keeps the
  objects, like etcd does) and a record of every request. ``create`` keeps a given ``status`` (a shortcut for
  what a controller would write through the status subresource).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

# Every kind agentreg maps, as the projects' CRDs serve them (group, version, kind, plural).
KNOWN_KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("kagent.dev", "v1alpha2", "Agent", "agents"),
    ("kagent.dev", "v1alpha2", "SandboxAgent", "sandboxagents"),
    ("kagent.dev", "v1alpha2", "RemoteMCPServer", "remotemcpservers"),
    ("kagent.dev", "v1alpha1", "MCPServer", "mcpservers"),
    ("kagent.dev", "v1alpha1", "ToolServer", "toolservers"),
    ("kagent.dev", "v1alpha2", "ModelConfig", "modelconfigs"),
    ("kagent.dev", "v1alpha2", "ModelProviderConfig", "modelproviderconfigs"),
    ("agent.kagenti.dev", "v1alpha1", "AgentRuntime", "agentruntimes"),
    ("agent.kagenti.dev", "v1alpha1", "AgentCard", "agentcards"),
    ("agentgateway.dev", "v1alpha1", "AgentgatewayBackend", "agentgatewaybackends"),
    ("inference.networking.k8s.io", "v1", "InferencePool", "inferencepools"),
    ("inference.networking.x-k8s.io", "v1alpha2", "InferenceModel", "inferencemodels"),
    ("inference.networking.x-k8s.io", "v1alpha2", "InferenceObjective", "inferenceobjectives"),
    ("llm-d.ai", "v1alpha1", "ModelService", "modelservices"),
    ("agents.x-k8s.io", "v1alpha1", "Sandbox", "sandboxes"),
)
BUILTIN_KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("", "v1", "Service", "services"),
    ("", "v1", "Namespace", "namespaces"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
)


@dataclass(frozen=True)
class _Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True


@dataclass(frozen=True)
class _Event:
    rv: int
    type: str
    group: str
    plural: str
    object: dict[str, Any]


def _status(code: int, reason: str, message: str) -> JSONResponse:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {},
        "code": code,
    }
    return JSONResponse(body, status_code=code)


def _selector(text: str | None) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("!"):
            found.append((part[1:], "!", ""))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            found.append((key.strip(), "!=", value.strip()))
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            found.append((key.strip(), "=", value.strip()))
        else:
            found.append((part, "exists", ""))
    return found


def _matches(obj: Mapping[str, Any], namespace: str | None, selector: list[tuple[str, str, str]]) -> bool:
    meta = obj.get("metadata") or {}
    if namespace is not None and meta.get("namespace") != namespace:
        return False
    labels = meta.get("labels") or {}
    for key, op, value in selector:
        if op == "exists" and key not in labels:
            return False
        if op == "!" and key in labels:
            return False
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
    return True


class _DropConnection(Exception):
    """Raised inside a watch stream so the server cuts the connection mid-response."""


class KubeServer:
    """The fake API server; ``start()`` it, point a kubeconfig at ``url``, mutate it from the test."""

    def __init__(self, *, bookmark_interval_s: float = 1.0, install_known: bool = True) -> None:
        self.bookmark_interval_s = bookmark_interval_s
        self._lock = threading.RLock()
        self._resources: dict[tuple[str, str], dict[str, _Resource]] = {}
        self._objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._history: list[_Event] = []
        self._rvs: list[int] = []
        self._rv = 100
        self._compacted = 0
        self._drops = 0
        self._closing = False
        self.requests: list[str] = []
        self.watching = 0
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        for entry in BUILTIN_KINDS:
            self.install(*entry)
        if install_known:
            for entry in KNOWN_KINDS:
                self.install(*entry)

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KubeServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(), log_level="critical", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._closing = False
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake API server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (open watches are cut); objects and history are kept for a restart."""
        self._closing = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def write_kubeconfig(self, path: Path, context: str = "fake") -> Path:
        return write_kubeconfig(path, self.url, context)

    # --- test controls ---------------------------------------------------------------------------

    def install(self, group: str, version: str, kind: str, plural: str, namespaced: bool = True) -> None:
        with self._lock:
            self._resources.setdefault((group, version), {})[plural] = _Resource(
                group, version, kind, plural, namespaced
            )
            self._objects.setdefault((group, plural), {})

    def uninstall(self, group: str, kind: str) -> None:
        """Remove a kind (its CRD deleted): discovery and its paths answer 404."""
        with self._lock:
            for key in list(self._resources):
                if key[0] == group:
                    self._resources[key] = {p: r for p, r in self._resources[key].items() if r.kind != kind}
                    if not self._resources[key]:
                        del self._resources[key]

    def _resource_of(self, api_version: str, kind: str) -> _Resource:
        group, _, version = api_version.rpartition("/")
        for resource in self._resources.get((group, version), {}).values():
            if resource.kind == kind:
                return resource
        for (g, _), resources in self._resources.items():
            for resource in resources.values():
                if g == group and resource.kind == kind:
                    return resource
        raise KeyError(f"{api_version} {kind} is not installed")

    def _record(self, kind: str, resource: _Resource, obj: dict[str, Any]) -> None:
        self._history.append(_Event(self._rv, kind, resource.group, resource.plural, copy.deepcopy(obj)))
        self._rvs.append(self._rv)

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            stored = copy.deepcopy(dict(obj))
            resource = self._resource_of(str(stored.get("apiVersion", "")), str(stored.get("kind", "")))
            meta = stored.setdefault("metadata", {})
            if resource.namespaced:
                meta.setdefault("namespace", "default")
            key = (str(meta.get("namespace") or ""), str(meta["name"]))
            bucket = self._objects[(resource.group, resource.plural)]
            if key in bucket:
                raise ValueError(f"{resource.kind} {key} already exists")
            self._rv += 1
            meta.update(
                uid=meta.get("uid") or str(uuid.uuid4()),
                resourceVersion=str(self._rv),
                generation=1,
                creationTimestamp=meta.get("creationTimestamp") or "2026-01-01T00:00:00Z",
            )
            bucket[key] = stored
            self._record("ADDED", resource, stored)
            return copy.deepcopy(stored)

    def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            stored = copy.deepcopy(dict(obj))
            resource = self._resource_of(str(stored.get("apiVersion", "")), str(stored.get("kind", "")))
            meta = stored.setdefault("metadata", {})
            if resource.namespaced:
                meta.setdefault("namespace", "default")
            key = (str(meta.get("namespace") or ""), str(meta["name"]))
            bucket = self._objects[(resource.group, resource.plural)]
            before = bucket[key]
            self._rv += 1
            generation = int(before["metadata"].get("generation", 1))
            if stored.get("spec") != before.get("spec"):
                generation += 1
            meta.update(
                uid=before["metadata"]["uid"],
                resourceVersion=str(self._rv),
                generation=generation,
                creationTimestamp=before["metadata"].get("creationTimestamp"),
            )
            bucket[key] = stored
            self._record("MODIFIED", resource, stored)
            return copy.deepcopy(stored)

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create, or update when it exists."""
        with self._lock:
            resource = self._resource_of(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
            meta = obj.get("metadata") or {}
            namespace = str(meta.get("namespace") or ("default" if resource.namespaced else ""))
            exists = (namespace, meta.get("name")) in self._objects[(resource.group, resource.plural)]
            return self.update(obj) if exists else self.create(obj)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            resource = self._resource_of(api_version, kind)
            stored = self._objects[(resource.group, resource.plural)].pop((namespace, name))
            self._rv += 1
            stored["metadata"]["resourceVersion"] = str(self._rv)
            self._record("DELETED", resource, stored)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            resource = self._resource_of(api_version, kind)
            return copy.deepcopy(self._objects[(resource.group, resource.plural)][(namespace, name)])

    def load(self, paths: Iterable[Path]) -> list[dict[str, Any]]:
        """Create every object of the YAML files (multi-document)."""
        created = []
        for path in paths:
            for document in yaml.safe_load_all(Path(path).read_text()):
                if isinstance(document, dict):
                    created.append(self.apply(document))
        return created

    def compact(self) -> None:
        """Forget history up to now: a watch from an older resourceVersion gets 410 Gone."""
        with self._lock:
            self._compacted = self._rv
            self._history.clear()
            self._rvs.clear()

    def drop_connections(self) -> None:
        """Cut every open watch stream mid-response (the client sees an incomplete payload)."""
        with self._lock:
            self._drops += 1

    @property
    def resource_version(self) -> int:
        return self._rv

    # --- HTTP ------------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api", self._core_versions),
                Route("/api/{version}", self._resource_list),
                Route("/api/{version}/{plural}", self._collection),
                Route("/api/{version}/namespaces/{namespace}/{plural}", self._collection),
                Route("/apis", self._group_list),
                Route("/apis/{group}", self._group),
                Route("/apis/{group}/{version}", self._resource_list),
                Route("/apis/{group}/{version}/{plural}", self._collection),
                Route("/apis/{group}/{version}/namespaces/{namespace}/{plural}", self._collection),
                Route("/version", self._version),
            ]
        )

    def _seen(self, request: Request) -> None:
        query = f"?{request.url.query}" if request.url.query else ""
        self.requests.append(f"{request.url.path}{query}")

    async def _version(self, request: Request) -> Response:
        return JSONResponse({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"})

    async def _core_versions(self, request: Request) -> Response:
        self._seen(request)
        return JSONResponse({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for group, version in sorted(self._resources):
            if group:
                groups.setdefault(group, []).append(version)
        return groups

    def _group_doc(self, group: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
                "preferredVersion": entries[-1]}  # fmt: skip

    async def _group_list(self, request: Request) -> Response:
        self._seen(request)
        with self._lock:
            groups = [self._group_doc(g, vs) for g, vs in self._groups().items()]
        return JSONResponse({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    async def _group(self, request: Request) -> Response:
        self._seen(request)
        with self._lock:
            versions = self._groups().get(request.path_params["group"])
        if not versions:
            return _status(404, "NotFound", "the server could not find the requested resource")
        return JSONResponse(self._group_doc(request.path_params["group"], versions))

    async def _resource_list(self, request: Request) -> Response:
        self._seen(request)
        group, version = request.path_params.get("group", ""), request.path_params["version"]
        with self._lock:
            resources = self._resources.get((group, version))
            listing = [
                {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": ["get", "list", "watch", "create", "update", "delete"]}
                for r in (resources or {}).values()
            ]  # fmt: skip
        if not resources:
            return _status(404, "NotFound", "the server could not find the requested resource")
        group_version = f"{group}/{version}" if group else version
        return JSONResponse(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": listing,
            }
        )

    async def _collection(self, request: Request) -> Response:
        self._seen(request)
        group = request.path_params.get("group", "")
        version, plural = request.path_params["version"], request.path_params["plural"]
        namespace = request.path_params.get("namespace")
        with self._lock:
            resource = self._resources.get((group, version), {}).get(plural)
        if resource is None:
            return _status(404, "NotFound", "the server could not find the requested resource")
        query = request.query_params
        selector = _selector(query.get("labelSelector"))
        if str(query.get("watch", "")).lower() in ("true", "1"):
            return StreamingResponse(
                self._watch(resource, namespace, selector, query), media_type="application/json"
            )
        return self._list(resource, namespace, selector, query)

    def _as_version(self, resource: _Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        served = copy.deepcopy(dict(obj))
        served["apiVersion"] = f"{resource.group}/{resource.version}" if resource.group else resource.version
        served["kind"] = resource.kind
        return served

    def _list(
        self, resource: _Resource, namespace: str | None, selector: list[tuple[str, str, str]], query: Any
    ) -> Response:
        with self._lock:
            limit = int(query.get("limit") or 0)
            start, list_rv = 0, self._rv
            token = query.get("continue")
            if token:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, list_rv = int(state["start"]), int(state["rv"])
                if list_rv < self._compacted:
                    return _status(410, "Expired", "The provided continue parameter is too old")
            bucket = self._objects.get((resource.group, resource.plural), {})
            matching = [bucket[k] for k in sorted(bucket) if _matches(bucket[k], namespace, selector)]
            page = matching[start : start + limit] if limit else matching[start:]
            items = []
            for obj in page:
                item = self._as_version(resource, obj)
                item.pop("apiVersion")  # the real server leaves these to the list
                item.pop("kind")
                items.append(item)
            meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
            following = start + len(page)
            if limit and following < len(matching):
                meta["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"start": following, "rv": list_rv}).encode()
                ).decode()
                meta["remainingItemCount"] = len(matching) - following
        api_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
        return JSONResponse(
            {"kind": f"{resource.kind}List", "apiVersion": api_version, "metadata": meta, "items": items}
        )

    async def _watch(
        self, resource: _Resource, namespace: str | None, selector: list[tuple[str, str, str]], query: Any
    ) -> AsyncIterator[bytes]:
        bookmarks = str(query.get("allowWatchBookmarks", "")).lower() in ("true", "1")
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        requested = query.get("resourceVersion") or "0"
        drops = self._drops
        self.watching += 1
        try:
            with self._lock:
                position = int(requested) if requested.isdigit() else 0
                if position and position < self._compacted:
                    expired = {
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": f"too old resource version: {position} ({self._compacted})",
                        "reason": "Expired", "code": 410,
                    }  # fmt: skip
                    yield (json.dumps({"type": "ERROR", "object": expired}) + "\n").encode()
                    return
                initial: list[dict[str, Any]] = []
                if position == 0:  # "0"/absent: the current state as ADDED, then changes
                    bucket = self._objects.get((resource.group, resource.plural), {})
                    initial = [bucket[k] for k in sorted(bucket) if _matches(bucket[k], namespace, selector)]
                    position = self._rv
            for obj in initial:
                yield self._line("ADDED", resource, obj)
            last_bookmark = time.monotonic()
            while time.monotonic() < deadline and not self._closing:
                if self._drops != drops:
                    raise _DropConnection("connection dropped by the test")
                with self._lock:
                    index = bisect.bisect_right(self._rvs, position)
                    events = self._history[index:]
                    current = self._rv
                for event in events:
                    position = event.rv
                    if (event.group, event.plural) == (resource.group, resource.plural) and _matches(
                        event.object, namespace, selector
                    ):
                        yield self._line(event.type, resource, event.object)
                if bookmarks and time.monotonic() - last_bookmark >= self.bookmark_interval_s:
                    position = max(position, current)
                    mark = {"kind": resource.kind, "apiVersion": f"{resource.group}/{resource.version}",
                            "metadata": {"resourceVersion": str(position)}}  # fmt: skip
                    yield (json.dumps({"type": "BOOKMARK", "object": mark}) + "\n").encode()
                    last_bookmark = time.monotonic()
                await asyncio.sleep(0.02)
            if self._closing:
                raise _DropConnection("server stopping")
        finally:
            self.watching -= 1

    def _line(self, kind: str, resource: _Resource, obj: Mapping[str, Any]) -> bytes:
        return (json.dumps({"type": kind, "object": self._as_version(resource, obj)}) + "\n").encode()


def write_kubeconfig(path: Path, server: str, context: str = "fake") -> Path:
    """A kubeconfig for ``server`` with a bearer token (the fake server accepts any)."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": "fake-token"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(document))
    return path
