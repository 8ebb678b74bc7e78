"""The hot read paths as a lean ASGI app in front of FastAPI, answering from an invalidated cache.

Served here (GET/HEAD, no query string but ``environment=``):
    /v1/{plural}/{namespace}/{name}/versions/{selector}
    /v1/agents/{namespace}/{name}/versions/{selector}/resolved
Everything else, including these paths with other query parameters, goes to FastAPI. On a miss the same
service functions and renderers as the FastAPI routes compute the answer, so both lanes agree byte for
byte; authentication and tenant scoping go through the same ``authenticate``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from typing import Any

from agentreg.api import render
from agentreg.api.asgi import ASGIApp, Receive, Scope, Send
from agentreg.api.auth import Authenticator, client_address
from agentreg.api.cache import CachedResponse, ResponseCache
from agentreg.api.errors import error_body, error_headers
from agentreg.api.headers import HSTS, SECURITY_HEADERS
from agentreg.api.metrics import Metrics
from agentreg.api.observe import MAX_REQUEST_ID
from agentreg.domain.errors import AgentRegError, Blocked, Gone, NotAdmitted, NotFound, Unresolved
from agentreg.domain.kinds import Kind, kind_from_plural
from agentreg.domain.names import ENVIRONMENT_PATTERN
from agentreg.services import clock, resolve, selection
from agentreg.services.selection import Reading
from agentreg.services.views import VersionView
from agentreg.store.interface import Store

VERSION_ROUTE = "/v1/{plural}/{namespace}/{name}/versions/{selector}"
RESOLVED_ROUTE = "/v1/agents/{namespace}/{name}/versions/{selector}/resolved"
_SECURE = (*SECURITY_HEADERS, HSTS)
_JSON = (b"content-type", b"application/json")
_NO_CACHE = (b"cache-control", b"no-cache")
# Answers that are the same for every caller of a tenant and safe to remember until the next change.
_CACHEABLE_ERRORS = (NotFound, Unresolved, Blocked, Gone, NotAdmitted)
_ENVIRONMENT = re.compile(ENVIRONMENT_PATTERN.encode())
_INTERNAL = AgentRegError("internal server error")
log = logging.getLogger("agentreg.api")


def version_etag(view: VersionView) -> str:
    """The digest, plus a hash of what else shows in the body when there is any: the resource's labels and
    annotations, and the version's status past a fresh draft (state, deprecation, block, redaction), so a
    client holding a redacted or blocked version's old tag never gets a 304."""
    r, v = view.resource, view.version
    status = (v.state, v.state_changed_at, v.successor, v.sunset, v.blocked, r.blocked, v.redacted)
    fresh = v.state == "draft" and not any(status[2:])
    meta = (r.labels, r.annotations) if fresh else (r.labels, r.annotations, status)
    if not any(meta):
        return f'"{v.digest}"'
    suffix = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f'"{v.digest};m={suffix}"'


def body_etag(body: bytes) -> str:
    """An ETag for a composite answer (an active config): a hash of exactly what is sent."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: bytes | str | None, etag: bytes | str) -> bool:
    """RFC 9110 weak comparison for If-None-Match (``*``, lists, ``W/`` prefixes)."""
    if not if_none_match:
        return False
    if if_none_match == etag:
        return True
    header = if_none_match.decode("latin-1") if isinstance(if_none_match, bytes) else if_none_match
    wanted = etag.decode("latin-1") if isinstance(etag, bytes) else etag
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted.removeprefix("W/"):
            return True
    return False


class FastLane:
    def __init__(
        self,
        app: ASGIApp,
        store: Store,
        authenticator: Authenticator,
        metrics: Metrics,
        max_entries: int,
        max_bytes: int,
    ) -> None:
        self.app = app
        self.store = store
        self.authenticator = authenticator
        self.metrics = metrics
        self.cache = ResponseCache(max_entries, max_bytes, clock=clock.timestamp)
        self._seq = 0
        self._prefix = os.urandom(4).hex()
        self._version_stats = metrics.route("GET", VERSION_ROUTE)
        self._resolved_stats = metrics.route("GET", RESOLVED_ROUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        environment = None
        if scope["query_string"]:
            environment = _environment_only(scope["query_string"])
            if environment is None:
                return await self.app(scope, receive, send)
        parts = scope["path"].split("/")
        # ["", "v1", plural, namespace, name, "versions", selector(, "resolved")]
        if len(parts) not in (7, 8) or parts[1] != "v1" or parts[5] != "versions" or not parts[6]:
            return await self.app(scope, receive, send)
        resolved = len(parts) == 8
        if resolved and (parts[7] != "resolved" or parts[2] != "agents"):
            return await self.app(scope, receive, send)
        kind = kind_from_plural(parts[2])
        if kind is None:
            return await self.app(scope, receive, send)
        await self._serve(scope, send, kind, parts[3], parts[4], parts[6], resolved, environment)

    async def _serve(
        self,
        scope: Scope,
        send: Send,
        kind: Kind,
        namespace: str,
        name: str,
        selector: str,
        resolved: bool,
        environment: str | None,
    ) -> None:
        started = time.perf_counter()
        authorization = if_none_match = request_id = None
        for header, value in scope["headers"]:  # one pass; no dict of every header
            if header == b"authorization":
                authorization = value
            elif header == b"if-none-match":
                if_none_match = value
            elif header == b"x-request-id":
                request_id = value[:MAX_REQUEST_ID]
        try:
            header = authorization.decode("latin-1") if authorization else None
            address = client_address(scope)
            # known() answers nearly every request without an await.
            actor = self.authenticator.known(header, address) or await self.authenticator.verify(
                header, address
            )
        except AgentRegError as exc:
            request_id = request_id or self._next_id()
            return await self._send_error(scope, send, exc, request_id, resolved, started)
        key = (actor.cache_key, kind, namespace, name, selector, resolved, environment)
        token = self.store.changes.token()
        entry = self.cache.get(key, token)
        if entry is None:
            self.metrics.cache_misses += 1
            try:
                entry = await self._compute(
                    actor, kind, namespace, name, selector, resolved, environment, token
                )
            except Exception:
                # Same contract as FastAPI's catch-all: log it, answer the envelope, never leak internals.
                log.exception("unhandled error in the fast lane")
                entry = CachedResponse(0, b"", (_JSON, _NO_CACHE), None, -1, error=_INTERNAL)
            if entry.token == token:
                self.cache.put(key, entry)
        else:
            self.metrics.cache_hits += 1
        request_id = request_id or self._next_id()
        status, body, headers = entry.status, entry.body, entry.headers
        if entry.error is not None:
            status, body = error_body(entry.error, request_id.decode("latin-1"))
            headers = (*headers, (b"content-length", str(len(body)).encode()))
        elif if_none_match is not None and entry.etag is not None and etag_matches(if_none_match, entry.etag):
            status, body, headers = 304, b"", entry.not_modified_headers
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"x-request-id", request_id), *self._security(scope)],
            }
        )
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
        stats = self._resolved_stats if resolved else self._version_stats
        stats.record(status, time.perf_counter() - started)

    async def _send_error(
        self, scope: Scope, send: Send, exc: AgentRegError, request_id: bytes, resolved: bool, started: float
    ) -> None:
        status, body = error_body(exc, request_id.decode("latin-1"))
        headers = [
            _JSON,
            _NO_CACHE,
            (b"content-length", str(len(body)).encode()),
            *((k.encode(), v.encode()) for k, v in error_headers(exc).items()),
            (b"x-request-id", request_id),
            *self._security(scope),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
        stats = self._resolved_stats if resolved else self._version_stats
        stats.record(status, time.perf_counter() - started)

    @staticmethod
    def _security(scope: Scope) -> tuple[tuple[bytes, bytes], ...]:
        # Added here rather than by the SecurityHeaders wrapper, which would cost the hot path a layer.
        return _SECURE if scope.get("scheme") == "https" else SECURITY_HEADERS

    def _next_id(self) -> bytes:
        self._seq += 1
        return f"{self._prefix}-{self._seq}".encode()

    async def _compute(
        self,
        actor: Any,
        kind: Kind,
        namespace: str,
        name: str,
        selector: str,
        resolved: bool,
        environment: str | None,
        token: int,
    ) -> CachedResponse:
        reading = Reading(environment=environment)
        try:
            if resolved:
                resolved_view = await resolve.resolve_agent(
                    self.store, actor, namespace, name, selector, reading
                )
                body = render.resolved_out(resolved_view).model_dump_json().encode()
                etag = body_etag(body)
                lifecycle = render.version_headers(resolved_view.root)
            else:
                view = await selection.get_version(
                    self.store, actor, kind, namespace, name, selector, reading
                )
                body = render.version_out(view).model_dump_json().encode()
                etag = version_etag(view)
                lifecycle = render.version_headers(view)
        except AgentRegError as exc:
            # Only answers that hold until the next change may be cached; others get a token never seen.
            cached_token = token if isinstance(exc, _CACHEABLE_ERRORS) else -1
            error_extra = tuple((k.encode(), v.encode()) for k, v in error_headers(exc).items())
            return CachedResponse(
                0, b"", (_JSON, _NO_CACHE, *error_extra), None, cached_token, _expiry(reading), error=exc
            )
        encoded = etag.encode()
        extra = tuple((k.encode(), v.encode("latin-1")) for k, v in lifecycle)
        headers = (_JSON, _NO_CACHE, (b"etag", encoded), (b"content-length", str(len(body)).encode()), *extra)
        return CachedResponse(
            200,
            body,
            headers,
            encoded,
            token,
            _expiry(reading),
            not_modified_headers=(_NO_CACHE, (b"etag", encoded), *extra),
        )


def _expiry(reading: Reading) -> float | None:
    return reading.valid_until.timestamp() if reading.valid_until is not None else None


def _environment_only(query: bytes) -> str | None:
    """The environment when the query string is exactly ``environment=<name>`` (a plain name), else None."""
    key, sep, value = query.partition(b"=")
    if key != b"environment" or not sep or not _ENVIRONMENT.fullmatch(value):
        return None
    return value.decode()
