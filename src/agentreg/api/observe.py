"""Request ids and per-route metrics for everything FastAPI serves (the fast lane does its own)."""

from __future__ import annotations

import os
import time
from itertools import count

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentreg.api.auth import client_address
from agentreg.api.metrics import Metrics
from agentreg.services.context import RequestInfo, current_request

MAX_REQUEST_ID = 128


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._prefix = os.urandom(4).hex()
        self._seq = count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        supplied = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = (
            supplied.decode("latin-1")[:MAX_REQUEST_ID] if supplied else f"{self._prefix}-{next(self._seq)}"
        )
        scope.setdefault("state", {})["request_id"] = request_id
        context = current_request.set(RequestInfo(request_id, client_address(scope)))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request.reset(context)
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.route(scope["method"], template).record(status, time.perf_counter() - started)
