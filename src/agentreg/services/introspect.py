"""MCP tool introspection: list a server's tools over streamable HTTP with the ``mcp`` SDK client.

What search, compatibility rules and scanners know about an MCP server's tools comes from asking the server
itself, for a published version (its server.json ``remotes``) or for a discovered one (its endpoint). The URL
is chosen by a tenant or found in a cluster, so every request the SDK makes goes through the SSRF-hardened
fetcher's rules (``Fetcher.check``: scheme, every resolved address, pinned IP with the original Host and TLS
server name), with no proxies from the environment, redirects only within the endpoint's origin (the SDK's
own rule) and at most three, each checked again, a 3 s connect limit, a total time limit, and a size limit
per response counted while it streams. What is recorded is bounded too: at most ``MAX_TOOLS`` tools, each
with its name, a description and an input schema of limited size.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from agentreg.domain.digest import canonical_json
from agentreg.domain.errors import Conflict, NotFound
from agentreg.domain.inventory import ObjectKey, Observation
from agentreg.domain.kinds import Kind
from agentreg.domain.permissions import Action
from agentreg.domain.principals import Principal
from agentreg.domain.sources import SourceConfig
from agentreg.services import audit, clock
from agentreg.services import fetcher as fetchers
from agentreg.services.access import readers
from agentreg.services.catalog import version_of, version_path
from agentreg.services.fetcher import MAX_REDIRECTS, MIB, Fetcher, FetchError
from agentreg.services.views import VersionAddress
from agentreg.store.interface import Store
from agentreg.store.inventory import ToolsRow

log = logging.getLogger(__name__)
CONNECT_S = 3.0
RESPONSE_LIMIT = MIB
MAX_TOOLS = 500
MAX_PAGES = 50  # a paginator that never ends cannot hold a connection forever
MAX_SCHEMA_BYTES = 64 * 1024
MAX_DESCRIPTION = 4000
MAX_NAME = 128  # the MCP spec's limit on a tool name
_VARIABLE = re.compile(r"\{([A-Za-z0-9_.-]+)\}")


class IntrospectError(Exception):
    """A server's tools could not be listed: refused, unreachable, too slow, too large, or not MCP."""


# --- listing ---------------------------------------------------------------------------------------------


class _Refused(httpx2.TransportError):
    """A request the fetcher's rules refuse (an address, a scheme, a size)."""


class _PinnedTransport(httpx2.AsyncBaseTransport):
    """Sends each request to the address ``Fetcher.check`` approved for its URL, and bounds each answer.

    The SDK swallows some transport errors into generic ones ("SSE stream ended"), so the first refusal is
    kept in ``failure`` for the message the caller sees.
    """

    def __init__(self, fetcher: Fetcher, limit: int, verify: ssl.SSLContext | bool) -> None:
        self._fetcher = fetcher
        self._limit = limit
        self._inner = httpx2.AsyncHTTPTransport(verify=verify, trust_env=False)
        self.failure: str | None = None

    def refuse(self, message: str, request: httpx2.Request) -> _Refused:
        self.failure = self.failure or message
        return _Refused(message, request=request)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            target = await self._fetcher.check(str(request.url))
        except FetchError as exc:
            raise self.refuse(str(exc), request) from None
        request.url = request.url.copy_with(host=str(target.url.host))
        request.headers["host"] = target.host_header
        if target.sni:
            request.extensions["sni_hostname"] = target.sni
        response = await self._inner.handle_async_request(request)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._limit:
            await response.aclose()
            raise self.refuse(
                f"the server answered with {declared} bytes; the limit is {self._limit}", request
            )
        response.stream = _Limited(response.stream, self._limit, self, request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Limited(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, limit: int, transport: _PinnedTransport, request: httpx2.Request) -> None:
        self._inner = inner
        self._limit = limit
        self._transport = transport
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._inner:
            size += len(chunk)
            if size > self._limit:
                raise self._transport.refuse(
                    f"the server answered with more than {self._limit} bytes", self._request
                )
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


async def list_tools(
    fetcher: Fetcher,
    url: str,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - the fetcher's own rule, as in Fetcher.get
    verify: ssl.SSLContext | None = None,
    max_bytes: int = RESPONSE_LIMIT,
) -> list[dict[str, Any]]:
    """Every tool ``url`` lists (all pages) as ``{name, description, inputSchema}``; IntrospectError if not."""
    transport = _PinnedTransport(fetcher, max_bytes, verify if verify is not None else True)
    http = httpx2.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        max_redirects=MAX_REDIRECTS,
        timeout=httpx2.Timeout(timeout, connect=CONNECT_S),
    )
    try:
        with anyio.fail_after(timeout):
            await fetcher.check(url)  # fail before connecting, with the fetcher's own message
            async with http, Client(streamable_http_client(url, http_client=http), cache=None) as client:
                return await _all_pages(client)
    except FetchError as exc:
        raise IntrospectError(str(exc)) from None
    except TimeoutError:
        raise IntrospectError(transport.failure or f"no complete answer within {timeout:g} s") from None
    except Exception as exc:  # the SDK raises MCPError, httpx2 errors, or groups of them from its tasks
        raise IntrospectError(transport.failure or _describe(exc)) from None
    finally:
        await http.aclose()


async def _all_pages(client: Client) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    seen: set[str] = set()
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            if len(tools) == MAX_TOOLS:
                raise IntrospectError(f"the server lists more than {MAX_TOOLS} tools")
            tools.append(tool_record(tool.name, tool.description, tool.input_schema))
        cursor = page.next_cursor
        if not cursor:
            return tools
        if cursor in seen:
            raise IntrospectError("the server's tool list repeats a page cursor")
        seen.add(cursor)
    raise IntrospectError(f"the server's tool list has more than {MAX_PAGES} pages")


def tool_record(name: str, description: str | None, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """One tool as recorded: bounded name and description, and its input schema unless too large."""
    if not name or len(name) > MAX_NAME:
        raise IntrospectError(f"the server lists a tool whose name is empty or over {MAX_NAME} characters")
    text = (description or "")[:MAX_DESCRIPTION]
    encoded = json.dumps(schema or {}, separators=(",", ":"), ensure_ascii=False, default=str)
    if len(encoded.encode()) > MAX_SCHEMA_BYTES:
        # Kept as a marker rather than dropped: the tool exists, only its schema was too large to keep.
        return {"name": name, "description": text, "inputSchema": {"x-agentreg-omitted": len(encoded)}}
    return {"name": name, "description": text, "inputSchema": json.loads(encoded)}


def _digest(tools: list[dict[str, Any]]) -> str:
    """Hex sha256 of the tools' canonical JSON (RFC 8785): unchanged tools keep their digest."""
    return hashlib.sha256(canonical_json(tools)).hexdigest()


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]  # the SDK's task groups wrap even a single error
    if isinstance(exc, IntrospectError):
        return str(exc)
    text = str(exc) or type(exc).__name__
    return f"the server did not list its tools: {text}"[:500]


# --- published versions ---------------------------------------------------------------------------------


def remote_endpoints(document: Mapping[str, Any]) -> list[str]:
    """The streamable-http remote URLs of a version's server.json, with ``{variables}`` filled in from
    their values or defaults (a URL with a variable left open is skipped)."""
    spec = document.get("spec")
    remotes = spec.get("remotes") if isinstance(spec, Mapping) else None
    urls: list[str] = []
    for remote in remotes if isinstance(remotes, list) else []:
        if not isinstance(remote, Mapping) or remote.get("type") != "streamable-http":
            continue
        url, variables = remote.get("url"), remote.get("variables")
        if not isinstance(url, str):
            continue
        values = variables if isinstance(variables, Mapping) else {}

        def fill(match: re.Match[str], values: Mapping[str, Any] = values) -> str:
            given = values.get(match.group(1))
            chosen = given.get("value") or given.get("default") if isinstance(given, Mapping) else None
            return chosen if isinstance(chosen, str) else match.group(0)

        url = _VARIABLE.sub(fill, url)
        if "{" not in url and url not in urls:
            urls.append(url)
    return urls


async def introspect_version(
    store: Store,
    actor: Principal,
    at: VersionAddress,
    *,
    fetcher: Fetcher | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109
    verify: ssl.SSLContext | None = None,
) -> ToolsRow:
    """List a published MCP server version's tools from its remotes and record them (``evidence.attest``,
    audited). A failed listing is recorded too: the previous tools stay, with the error beside them."""
    if at.kind is not Kind.MCP_SERVER:
        raise NotFound(f"only MCP servers have tools; {at.kind.value} {at.namespace}/{at.name} has none")
    async with store.read(readers=readers(actor)) as tx:
        resource, version = await version_of(
            tx, actor, at.kind, at.namespace, at.name, at.version, Action.EVIDENCE_ATTEST
        )
        document = json.loads(await tx.version_document(version.id))
    endpoints = remote_endpoints(document)
    if not endpoints:
        raise Conflict(
            f"{version_path(resource, version.version)} declares no streamable-http remote to introspect"
        )
    # No network I/O inside a transaction: list first, then write.
    use = fetcher or fetchers.default()
    tools: list[dict[str, Any]] | None = None
    errors: list[str] = []
    endpoint = endpoints[0]
    for candidate in endpoints:
        try:
            tools = await list_tools(use, candidate, timeout=timeout, verify=verify)
        except IntrospectError as exc:
            errors.append(f"{candidate}: {exc}" if len(endpoints) > 1 else str(exc))
            continue
        endpoint = candidate
        break
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        resource, version = await version_of(
            tx, actor, at.kind, at.namespace, at.name, at.version, Action.EVIDENCE_ATTEST
        )
        previous = await tx.get_tools(version.id)
        if tools is not None:
            row = ToolsRow(version.id, endpoint, tools, _digest(tools), now, None)
        else:
            kept = previous.tools if previous is not None else []
            error = "; ".join(errors)[:2000]
            row = ToolsRow(version.id, endpoint, kept, _digest(kept), now, error)
        await tx.put_tools(row)
        await audit.record(
            tx,
            actor,
            "version.introspect",
            version_path(resource, version.version),
            now,
            tenant=resource.tenant_id,
            endpoint=endpoint,
            tools=len(row.tools),
            digest=row.digest,
            error=row.error,
        )
    return row


async def get_tools(store: Store, actor: Principal, at: VersionAddress) -> ToolsRow:
    """The tools recorded for a version (``catalog.read``); NotFound if it was never introspected."""
    async with store.read(readers=readers(actor)) as tx:
        resource, version = await version_of(
            tx, actor, at.kind, at.namespace, at.name, at.version, Action.READ
        )
        row: ToolsRow | None = await tx.get_tools(version.id)
    if row is None:
        raise NotFound(
            f"{version_path(resource, version.version)} has not been introspected; "
            f"POST .../versions/{version.version}/introspect lists its tools"
        )
    return row


# --- discovered servers ----------------------------------------------------------------------------------


def opted_in(config: SourceConfig, observation: Observation) -> bool:
    """Whether a discovered object's tools are listed: an MCP server with an endpoint, in a source (and
    namespace, when the source names some) that opted in."""
    return (
        config.introspect_tools
        and observation.catalog_kind is Kind.MCP_SERVER
        and bool(observation.endpoint)
        and (not config.introspect_namespaces or observation.key.namespace in config.introspect_namespaces)
    )


def source_fetcher(base: Fetcher, config: SourceConfig) -> Fetcher:
    """The operator's allow-list plus the ranges the source names (its pod and service CIDRs)."""
    entries = [*sorted(base.allow.hosts), *(str(n) for n in base.allow.networks), *config.allow_cidrs]
    return Fetcher(",".join(entries), max_bytes=base.max_bytes)


def source_tls(config: SourceConfig) -> ssl.SSLContext | None:
    """The source's CA bundle and client certificate (mTLS), when it names them."""
    if config.ca_file is None and config.client_cert is None:
        return None
    context = ssl.create_default_context(cafile=config.ca_file)
    if config.client_cert is not None:
        context.load_cert_chain(config.client_cert, config.client_key)
    return context


class Reporter(Protocol):
    """The part of a source's ``Sink`` this reports to."""

    async def enrich(self, key: ObjectKey, extra: Mapping[str, Any]) -> None: ...


@dataclass(slots=True)
class _Target:
    config: SourceConfig
    endpoint: str
    revision: str
    due: float
    failures: int = 0
    tools: list[dict[str, Any]] | None = None  # the last listing that succeeded, kept through failures


_Key = tuple[str, ObjectKey]  # (source, object)


class ToolSync:
    """Keeps the tools of discovered MCP servers current (every source's), reporting each to its source's
    sink as ``enrich(key, {"tools": {endpoint, tools, introspectedAt, error}})``.

    A server is listed when first seen, again at once when it rolls out (its revision or endpoint changes),
    and every ``interval_s``; a failure is retried after ``backoff_s``, doubling up to ``interval_s``, and
    keeps the tools last listed. Requests go through ``base``'s rules widened by the source's ``allowCIDRs``,
    with the source's CA bundle and client certificate.
    """

    def __init__(
        self,
        base: Fetcher,
        *,
        interval_s: float = 600.0,
        backoff_s: float = 30.0,
        timeout: float = 10.0,
        concurrency: int = 4,
        fetcher_for: Callable[[Fetcher, SourceConfig], Fetcher] = source_fetcher,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base
        self._interval = interval_s
        self._backoff = backoff_s
        self._timeout = timeout
        self._fetcher_for = fetcher_for
        self._monotonic = monotonic
        self._limit = asyncio.Semaphore(concurrency)
        self._targets: dict[_Key, _Target] = {}
        self._wake = asyncio.Event()

    def observe(self, config: SourceConfig, observations: Sequence[Observation]) -> None:
        """Objects a source reported (added or modified)."""
        now = self._monotonic()
        for observation in observations:
            key = (config.name, observation.key)
            if not opted_in(config, observation):
                self._targets.pop(key, None)
                continue
            endpoint, revision = str(observation.endpoint), observation.revision
            target = self._targets.get(key)
            if target is None or (target.endpoint, target.revision) != (endpoint, revision):
                kept = target.tools if target is not None and target.endpoint == endpoint else None
                self._targets[key] = _Target(config, endpoint, revision, now, tools=kept)
                self._wake.set()
            else:
                target.config = config

    def forget(self, config: SourceConfig, keys: Sequence[ObjectKey]) -> None:
        for key in keys:
            self._targets.pop((config.name, key), None)

    def stop_source(self, name: str) -> None:
        for key in [k for k in self._targets if k[0] == name]:
            del self._targets[key]

    def tracked(self) -> dict[_Key, str]:
        """What is being kept current: each (source, object)'s endpoint."""
        return {key: target.endpoint for key, target in self._targets.items()}

    async def run(self, sink_for: Callable[[str], Reporter | None]) -> None:
        """List due servers and report them, until cancelled."""
        while True:
            self._wake.clear()
            await self.sync_due(sink_for)
            due = [t.due for t in self._targets.values()]
            delay = max(0.05, min(due) - self._monotonic()) if due else self._interval
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def sync_due(self, sink_for: Callable[[str], Reporter | None]) -> int:
        """List every server that is due now and report it; how many were listed."""
        now = self._monotonic()
        due = [(key, target) for key, target in self._targets.items() if target.due <= now]
        for _, target in due:
            target.due = now + self._interval  # not picked again while it is being listed
        async with asyncio.TaskGroup() as group:
            for key, target in due:
                group.create_task(self._sync(sink_for, key, target))
        return len(due)

    async def _sync(self, sink_for: Callable[[str], Reporter | None], key: _Key, target: _Target) -> None:
        async with self._limit:
            try:
                fetcher = self._fetcher_for(self._base, target.config)
                tls = source_tls(target.config)
                tools: list[dict[str, Any]] | None = await list_tools(
                    fetcher, target.endpoint, timeout=self._timeout, verify=tls
                )
                error = None
            except IntrospectError as exc:
                tools, error = None, str(exc)
            except (OSError, ssl.SSLError, ValueError) as exc:  # the source's certificate files
                tools, error = None, f"cannot use the source's TLS files: {exc}"
        if self._targets.get(key) is not target:
            return  # forgotten or rolled out while it was being listed: the newer state wins
        if tools is not None:
            target.tools, target.failures = tools, 0
            target.due = self._monotonic() + self._interval
        else:
            target.failures += 1
            delay = min(self._interval, self._backoff * 2 ** (target.failures - 1))
            target.due = self._monotonic() + delay
        sink = sink_for(key[0])
        if sink is None:
            return  # the source stopped (this process no longer leads)
        record = {
            "endpoint": target.endpoint,
            "tools": target.tools or [],
            "introspectedAt": clock.now().isoformat(),
            "error": error,
        }
        try:
            await sink.enrich(key[1], {"tools": record})
        except Exception:  # one row that cannot be written must not stop the others' listing
            log.exception("tools of %s could not be recorded", key[1])
