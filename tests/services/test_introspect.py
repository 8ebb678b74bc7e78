"""MCP tool introspection against a real ``mcp`` SDK server (streamable HTTP, served by uvicorn on 127.0.0.1).

Every listing goes through the hardened fetcher's rules: the loopback server is reachable only because the
tests allow-list 127.0.0.1/32, hostnames are resolved by a test resolver and pinned, and redirects, hangs and
oversized answers are refused. The store round trips run on both backends. The one stand-in is the sink that
``ToolSync`` reports to: a recorder, so the test can see what it would write (the reconciler has its own tests).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
import pytest
import uvicorn
from mcp.server.lowlevel import Server
from mcp.server.transport_security import TransportSecuritySettings

from agentreg.domain.errors import Conflict, Forbidden, NotFound
from agentreg.domain.inventory import ObjectKey, Observation
from agentreg.domain.kinds import Kind
from agentreg.domain.principals import ANONYMOUS as ME
from agentreg.domain.principals import DEFAULT_TENANT, Role, member
from agentreg.domain.sources import SourceConfig, SourceType
from agentreg.services import introspect
from agentreg.services.fetcher import Fetcher
from agentreg.services.introspect import IntrospectError, ToolSync, list_tools
from agentreg.services.publish import publish
from agentreg.services.views import VersionAddress
from agentreg.store.interface import AuditQuery
from agentreg.store.sql import SqlStore
from tests import factories as f

LOOPBACK = "127.0.0.1/32"
VIEWER = member("viewer", DEFAULT_TENANT, Role.VIEWER)
STRANGER = member("eve", "elsewhere", Role.TENANT_ADMIN)


def sample_tools(count: int = 5, *, description: str = "") -> list[types.Tool]:
    return [
        types.Tool(
            name=f"tool_{i}",
            description=description or f"Does thing {i}",
            input_schema={
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": i}},
                "required": ["query"],
            },
        )
        for i in range(count)
    ]


# --- a real MCP server on loopback -------------------------------------------------------------------------


@dataclass
class McpServer:
    base: str
    port: int
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, Host header

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"


def _mcp_app(tools: list[types.Tool], page_size: int) -> Any:
    async def on_list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + page_size
        return types.ListToolsResult(
            tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None
        )

    # The server checks the Host header against DNS rebinding, so it also shows the pinned request kept
    # the name the URL gave.
    security = TransportSecuritySettings(allowed_hosts=["127.0.0.1:*", "tools.example:*"])
    server = Server("test-server", version="1.0.0", on_list_tools=on_list_tools)
    return server.streamable_http_app(transport_security=security)


def _wrap(inner: Any, record: McpServer) -> Any:
    """The MCP app, plus paths that misbehave: redirects, and answers larger than any limit."""

    async def app(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        record.seen.append((scope["method"], path, headers.get("host", "")))
        if path == "/moved":
            return await _answer(send, 307, b"", [(b"location", b"/mcp")])
        if path == "/metadata":
            return await _answer(send, 307, b"", [(b"location", b"http://169.254.169.254/mcp")])
        if path == "/loop":
            return await _answer(send, 307, b"", [(b"location", b"/loop")])
        if path == "/big-declared":
            body = b" " * (2 * 1024 * 1024)
            return await _answer(send, 200, body, [(b"content-type", b"application/json")])
        if path == "/big-stream":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            for _ in range(40):
                await send(
                    {"type": "http.response.body", "body": b": " + b"x" * 65536 + b"\n", "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
            return
        await inner(scope, receive, send)

    return app


async def _answer(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def serving(tools: list[types.Tool] | None = None, *, page_size: int = 2) -> Iterator[McpServer]:
    """A real MCP server (the SDK's low-level ``Server`` over streamable HTTP) in a uvicorn thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    record = McpServer(f"http://127.0.0.1:{port}", port)
    app = _wrap(_mcp_app(sample_tools() if tools is None else tools, page_size), record)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the MCP server did not start"
        time.sleep(0.01)
    try:
        yield record
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections (the kernel's backlog does) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        sock.close()


def resolver(table: dict[str, str]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        return [table[host]]

    return resolve


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpServer]:
    with serving() as server:
        yield server


# --- listing ---------------------------------------------------------------------------------------------


async def test_lists_every_page_with_names_descriptions_and_schemas(mcp: McpServer) -> None:
    tools = await list_tools(Fetcher(LOOPBACK), mcp.url)

    assert [t["name"] for t in tools] == [f"tool_{i}" for i in range(5)]  # three pages of two
    assert tools[3] == {
        "name": "tool_3",
        "description": "Does thing 3",
        "inputSchema": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 3}},
            "required": ["query"],
        },
    }


async def test_a_hostname_is_resolved_checked_and_pinned(mcp: McpServer) -> None:
    fetcher = Fetcher(LOOPBACK, resolve=resolver({"tools.example": "127.0.0.1"}))
    mcp.seen.clear()

    tools = await list_tools(fetcher, f"http://tools.example:{mcp.port}/mcp")

    assert len(tools) == 5
    assert {host for _, _, host in mcp.seen} == {f"tools.example:{mcp.port}"}


async def test_every_request_is_checked_again_so_dns_rebinding_is_refused(mcp: McpServer) -> None:
    answers = iter(["127.0.0.1", "127.0.0.1"])

    async def rebinding(host: str, port: int) -> list[str]:
        return [next(answers, "169.254.169.254")]  # the first request is fine; later ones are not

    # Refused for what it now resolves to (off the allow-list, so plain http is refused first).
    with pytest.raises(IntrospectError, match="only https URLs are fetched"):
        await list_tools(Fetcher(LOOPBACK, resolve=rebinding), f"http://tools.example:{mcp.port}/mcp")


async def test_loopback_is_refused_unless_allow_listed(mcp: McpServer) -> None:
    with pytest.raises(IntrospectError, match="only https"):
        await list_tools(Fetcher(), mcp.url)
    with pytest.raises(IntrospectError, match="loopback"):
        await list_tools(Fetcher(), f"https://127.0.0.1:{mcp.port}/mcp")
    with pytest.raises(IntrospectError, match="link-local"):
        await list_tools(
            Fetcher(resolve=resolver({"evil.example": "169.254.169.254"})), "https://evil.example/mcp"
        )


async def test_a_redirect_to_the_metadata_service_is_refused(mcp: McpServer) -> None:
    with pytest.raises(IntrospectError, match=r"169\.254\.169\.254"):
        await list_tools(Fetcher(LOOPBACK), f"{mcp.base}/metadata")


async def test_a_redirect_within_the_origin_is_followed_and_checked(mcp: McpServer) -> None:
    mcp.seen.clear()

    tools = await list_tools(Fetcher(LOOPBACK), f"{mcp.base}/moved")

    assert len(tools) == 5
    assert ("POST", "/mcp", f"127.0.0.1:{mcp.port}") in mcp.seen


async def test_a_redirect_loop_stops_after_three(mcp: McpServer) -> None:
    mcp.seen.clear()

    with pytest.raises(IntrospectError, match="/loop"):
        await list_tools(Fetcher(LOOPBACK), f"{mcp.base}/loop")

    # Each message the SDK sends (a discover probe, then the initialize it falls back to) is sent once and
    # redirected three times, then refused.
    posts = [p for m, p, _ in mcp.seen if m == "POST"]
    assert set(posts) == {"/loop"} and len(posts) % 4 == 0


async def test_a_server_that_never_answers_times_out() -> None:
    with silent_server() as url:
        started = time.monotonic()
        with pytest.raises(IntrospectError, match="within 1 s"):
            await list_tools(Fetcher(LOOPBACK), url, timeout=1.0)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("path", ["/big-declared", "/big-stream"])
async def test_an_answer_over_the_size_limit_is_refused(mcp: McpServer, path: str) -> None:
    with pytest.raises(IntrospectError, match=r"more than 1048576 bytes|2097152 bytes; the limit is 1048576"):
        await list_tools(Fetcher(LOOPBACK), mcp.base + path)


async def test_a_real_tool_list_over_the_size_limit_is_refused() -> None:
    big = sample_tools(1, description="x" * (1024 * 1024 + 1))
    with (
        serving(big) as server,
        pytest.raises(IntrospectError, match=r"more than 1048576 bytes|the limit is 1048576"),
    ):
        await list_tools(Fetcher(LOOPBACK), server.url)


async def test_more_than_500_tools_are_refused() -> None:
    with (
        serving(sample_tools(501), page_size=100) as server,
        pytest.raises(IntrospectError, match="more than 500"),
    ):
        await list_tools(Fetcher(LOOPBACK), server.url)


async def test_a_huge_schema_is_kept_as_a_marker() -> None:
    schema = {"type": "object", "description": "y" * (70 * 1024)}

    record = introspect.tool_record("big", "d" * 10_000, schema)

    assert record["description"] == "d" * introspect.MAX_DESCRIPTION
    assert record["inputSchema"] == {"x-agentreg-omitted": len(json.dumps(schema, separators=(",", ":")))}


async def test_not_an_mcp_server_is_a_clear_error(mcp: McpServer) -> None:
    with pytest.raises(IntrospectError, match="did not list its tools"):
        await list_tools(Fetcher(LOOPBACK), f"{mcp.base}/nothing-here")


def test_remote_endpoints_take_streamable_http_remotes_with_variables_filled() -> None:
    document = f.mcp_server(
        remotes=[
            {"type": "sse", "url": "https://a.example/sse"},
            {"type": "streamable-http", "url": "https://a.example/mcp"},
            {
                "type": "streamable-http",
                "url": "https://{region}.example/mcp",
                "variables": {"region": {"default": "eu"}},
            },
            {"type": "streamable-http", "url": "https://{tenant}.example/mcp"},
        ]
    )

    assert introspect.remote_endpoints(document) == ["https://a.example/mcp", "https://eu.example/mcp"]


# --- published versions ----------------------------------------------------------------------------------

SERVER = VersionAddress(Kind.MCP_SERVER, f.NS, "github", "1.0.0")


@pytest.fixture
async def published(store: SqlStore, mcp: McpServer) -> None:
    await publish(store, ME, f.mcp_server(remotes=[{"type": "streamable-http", "url": mcp.url}]))


async def test_introspection_is_stored_and_audited(store: SqlStore, published: None, mcp: McpServer) -> None:
    row = await introspect.introspect_version(store, ME, SERVER, fetcher=Fetcher(LOOPBACK))

    assert row.endpoint == mcp.url and row.error is None
    assert [t["name"] for t in row.tools] == [f"tool_{i}" for i in range(5)]
    assert await introspect.get_tools(store, VIEWER, SERVER) == row
    async with store.read() as tx:
        events = await tx.list_audit(AuditQuery(DEFAULT_TENANT, action="version.introspect"))
    assert [(e.event.target, e.event.details["tools"]) for e in events] == [
        (f"mcp-server/{f.NS}/github@1.0.0", 5)
    ]


async def test_a_failed_introspection_keeps_the_earlier_tools(store: SqlStore) -> None:
    with serving() as server:
        await publish(store, ME, f.mcp_server(remotes=[{"type": "streamable-http", "url": server.url}]))
        first = await introspect.introspect_version(store, ME, SERVER, fetcher=Fetcher(LOOPBACK))

    again = await introspect.introspect_version(store, ME, SERVER, fetcher=Fetcher(LOOPBACK), timeout=2.0)

    assert again.error is not None and again.tools == first.tools
    assert (await introspect.get_tools(store, ME, SERVER)).error == again.error


async def test_introspection_refused_by_the_fetcher_is_recorded(store: SqlStore, published: None) -> None:
    row = await introspect.introspect_version(store, ME, SERVER, fetcher=Fetcher())

    assert row.tools == [] and row.error is not None and "only https" in row.error


async def test_tools_never_introspected_are_not_found(store: SqlStore, published: None) -> None:
    with pytest.raises(NotFound, match="has not been introspected"):
        await introspect.get_tools(store, ME, SERVER)


async def test_a_version_without_a_remote_cannot_be_introspected(store: SqlStore) -> None:
    await publish(store, ME, f.mcp_server())

    with pytest.raises(Conflict, match="no streamable-http remote"):
        await introspect.introspect_version(store, ME, SERVER, fetcher=Fetcher(LOOPBACK))


async def test_introspection_is_authorized(store: SqlStore, published: None) -> None:
    with pytest.raises(Forbidden):
        await introspect.introspect_version(store, VIEWER, SERVER, fetcher=Fetcher(LOOPBACK))
    with pytest.raises(NotFound):
        await introspect.introspect_version(store, STRANGER, SERVER, fetcher=Fetcher(LOOPBACK))
    with pytest.raises(NotFound):
        await introspect.get_tools(store, STRANGER, SERVER)


# --- discovered servers ----------------------------------------------------------------------------------


class Recorder:
    """Stands in for a source's sink: records what ToolSync reports."""

    def __init__(self) -> None:
        self.reports: list[tuple[ObjectKey, dict[str, Any]]] = []
        self.reported = asyncio.Event()

    async def enrich(self, key: ObjectKey, extra: Mapping[str, Any]) -> None:
        self.reports.append((key, dict(extra["tools"])))
        self.reported.set()


KEY = ObjectKey("prod", "kagent.dev", "RemoteMCPServer", "tools", "github")


def source(**changes: Any) -> SourceConfig:
    values: dict[str, Any] = {
        "name": "prod",
        "type": SourceType.KUBERNETES,
        "cluster": "prod",
        "introspect_tools": True,
        "allow_cidrs": (LOOPBACK,),
    }
    return SourceConfig(**{**values, **changes})


def observed(
    endpoint: str, *, revision: str = "1", key: ObjectKey = KEY, kind: Kind | None = Kind.MCP_SERVER
) -> Observation:
    return Observation(
        key=key, api_version="kagent.dev/v1alpha2", catalog_kind=kind, endpoint=endpoint, revision=revision
    )


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_tool_sync_lists_on_first_sight_on_rollout_and_on_interval(mcp: McpServer) -> None:
    clock, sink = Clock(), Recorder()
    sync = ToolSync(Fetcher(), interval_s=600, monotonic=clock)
    sync.observe(source(), [observed(mcp.url)])

    assert await sync.sync_due(lambda name: sink) == 1
    key, report = sink.reports[-1]
    assert key == KEY and report["endpoint"] == mcp.url and report["error"] is None
    assert [t["name"] for t in report["tools"]] == [f"tool_{i}" for i in range(5)]
    assert report["introspectedAt"]

    sync.observe(source(), [observed(mcp.url)])  # unchanged: not due
    assert await sync.sync_due(lambda name: sink) == 0
    sync.observe(source(), [observed(mcp.url, revision="2")])  # rolled out
    assert await sync.sync_due(lambda name: sink) == 1
    clock.t += 601
    assert await sync.sync_due(lambda name: sink) == 1
    assert len(sink.reports) == 3


async def test_tool_sync_backs_off_and_keeps_the_tools_it_had() -> None:
    clock, sink = Clock(), Recorder()
    sync = ToolSync(Fetcher(), interval_s=600, backoff_s=30, timeout=2.0, monotonic=clock)
    with serving() as server:
        sync.observe(source(), [observed(server.url)])
        await sync.sync_due(lambda name: sink)
    clock.t += 601

    await sync.sync_due(lambda name: sink)

    report = sink.reports[-1][1]
    assert report["error"] and len(report["tools"]) == 5
    clock.t += 29
    assert await sync.sync_due(lambda name: sink) == 0
    clock.t += 1
    assert await sync.sync_due(lambda name: sink) == 1
    clock.t += 59  # doubled
    assert await sync.sync_due(lambda name: sink) == 0


async def test_tool_sync_only_follows_what_opted_in(mcp: McpServer) -> None:
    sync = ToolSync(Fetcher())
    other = ObjectKey("prod", "kagent.dev", "RemoteMCPServer", "other", "x")
    agent = ObjectKey("prod", "kagent.dev", "Agent", "tools", "bot")

    sync.observe(source(introspect_tools=False), [observed(mcp.url)])
    assert sync.tracked() == {}
    sync.observe(
        source(introspect_namespaces=("tools",)),
        [observed(mcp.url), observed(mcp.url, key=other), observed(mcp.url, key=agent, kind=Kind.AGENT)],
    )
    assert sync.tracked() == {("prod", KEY): mcp.url}

    sync.forget(source(), [KEY])
    assert sync.tracked() == {}
    sync.observe(source(), [observed(mcp.url)])
    sync.stop_source("prod")
    assert sync.tracked() == {}


async def test_tool_sync_without_the_sources_allow_list_reports_the_refusal(mcp: McpServer) -> None:
    sink = Recorder()
    sync = ToolSync(Fetcher())
    sync.observe(source(allow_cidrs=()), [observed(mcp.url)])

    await sync.sync_due(lambda name: sink)

    assert "only https" in sink.reports[0][1]["error"] and sink.reports[0][1]["tools"] == []


async def test_tool_sync_run_wakes_on_new_objects(mcp: McpServer) -> None:
    sink = Recorder()
    sync = ToolSync(Fetcher())
    task = asyncio.create_task(sync.run(lambda name: sink))
    try:
        await asyncio.sleep(0.05)
        sync.observe(source(), [observed(mcp.url)])
        async with asyncio.timeout(10):
            await sink.reported.wait()
    finally:
        task.cancel()
    assert sink.reports[0][1]["error"] is None
