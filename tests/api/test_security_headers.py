"""Security headers on every HTTP response: FastAPI routes, 404s, errors and raw ASGI answers alike."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from agentreg.api.asgi import ASGIApp, Message, Receive, Scope, Send
from agentreg.api.headers import HSTS, SECURITY_HEADERS, SecurityHeaders

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cross-origin-resource-policy": "same-origin",
}
HSTS_NAME = "strict-transport-security"


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A fast-lane-like app that sends ``http.response.start`` itself, with a shared header tuple."""
    assert scope["type"] == "http"
    if scope["path"] == "/framed":
        headers = [(b"content-type", b"text/html"), (b"X-Frame-Options", b"SAMEORIGIN")]
    else:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


def fastapi_app() -> FastAPI:
    api = FastAPI()

    @api.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @api.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(status_code=418, detail="short and stout")

    @api.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @api.get("/ui")
    async def ui() -> HTMLResponse:
        return HTMLResponse("<p>hi</p>", headers={"Content-Security-Policy": "default-src 'self'"})

    return api


def client(app: ASGIApp, scheme: str = "http") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=SecurityHeaders(app), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://agentreg.test")


def assert_secured(response: httpx.Response, *, https: bool = False) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], name
    assert response.headers.get_list(HSTS_NAME) == (["max-age=63072000; includeSubDomains"] if https else [])


@pytest.mark.parametrize(
    ("path", "status"), [("/ok", 200), ("/missing", 404), ("/teapot", 418), ("/boom", 500)]
)
async def test_fastapi_responses_carry_the_headers(path: str, status: int) -> None:
    async with client(fastapi_app()) as api:
        response = await api.get(path)
    assert response.status_code == status
    assert_secured(response)


async def test_raw_asgi_responses_carry_the_headers() -> None:
    async with client(raw_app) as api:
        response = await api.get("/anything")
    assert response.status_code == 200
    assert response.content == b"{}"
    assert response.headers["content-type"] == "application/json"
    assert_secured(response)


async def test_hsts_only_over_https() -> None:
    async with client(fastapi_app(), scheme="https") as api:
        for path in ("/ok", "/missing", "/boom"):
            assert_secured(await api.get(path), https=True)
    async with client(raw_app, scheme="https") as api:
        assert_secured(await api.get("/x"), https=True)


async def test_headers_the_app_set_are_kept_and_not_duplicated() -> None:
    async with client(fastapi_app()) as api:
        response = await api.get("/ui")
    assert response.headers.get_list("content-security-policy") == ["default-src 'self'"]
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    async with client(raw_app) as api:
        response = await api.get("/framed")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]  # names match case-insensitively
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]


async def test_the_apps_own_header_list_is_not_modified() -> None:
    shared = [(b"content-type", b"application/json")]

    async def cached(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": shared})
        await send({"type": "http.response.body", "body": b"{}"})

    async with client(cached) as api:
        assert_secured(await api.get("/"))
        assert_secured(await api.get("/"))
    assert shared == [(b"content-type", b"application/json")]


async def test_headers_given_as_a_tuple_or_missing_are_handled() -> None:
    sent: list[Message] = []

    async def capture(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def no_headers(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body", "body": b""})

    async def tuple_headers(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": ((b"etag", b'"1"'),)})
        await send({"type": "http.response.body", "body": b""})

    scope: Scope = {"type": "http", "scheme": "https", "path": "/", "headers": []}
    await SecurityHeaders(no_headers)(scope, receive, capture)
    await SecurityHeaders(tuple_headers)(scope, receive, capture)
    assert sent[0]["headers"] == [*SECURITY_HEADERS, HSTS]
    assert sent[2]["headers"] == [(b"etag", b'"1"'), *SECURITY_HEADERS, HSTS]
    assert sent[1] == {"type": "http.response.body", "body": b""}


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
async def test_other_scopes_pass_through_untouched(kind: str) -> None:
    seen: list[tuple[Scope, Receive, Send]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        return {"type": f"{kind}.connect"}

    async def send(message: Message) -> None:
        return None

    scope: Scope = {"type": kind}
    await SecurityHeaders(inner)(scope, receive, send)
    assert seen == [(scope, receive, send)]
