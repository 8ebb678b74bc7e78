"""Security headers on every HTTP response, whoever sends it: FastAPI routes, error handlers, the fast lane.

``SecurityHeaders`` wraps the outermost ASGI app and only wraps ``send``: on ``http.response.start`` it appends
the headers below that the response does not already carry (names compared case-insensitively), so a later
web UI can set its own ``content-security-policy``. HSTS is added only on https requests. Lifespan and
websocket scopes pass through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable

from agentreg.api.asgi import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HSTS", "SECURITY_HEADERS", "SecurityHeaders"]

Header = tuple[bytes, bytes]

SECURITY_HEADERS: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    # Right for JSON; a response that sets its own policy (an HTML UI) keeps it.
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)
HSTS: Header = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._plain = SECURITY_HEADERS
        self._secure = (*SECURITY_HEADERS, HSTS)
        self._names = frozenset(name for name, _ in self._secure)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._secure if scope.get("scheme") == "https" else self._plain
        names = self._names

        # A plain function handing back send's own awaitable: no extra coroutine per message.
        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                # A new list: the app's own may be shared (a cached response's headers).
                headers = list(message.get("headers") or ())
                for name, _ in headers:
                    if name.lower() in names:
                        present = {name.lower() for name, _ in headers}
                        headers += [header for header in extra if header[0] not in present]
                        break
                else:
                    headers += extra
                message["headers"] = headers
            return send(message)

        await self.app(scope, receive, send_with_headers)
