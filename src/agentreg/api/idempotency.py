"""``Idempotency-Key`` on POST: a retry with the same key and body gets the stored response.

Keys are per principal and kept for a day. The same key with another request is 422. A response is
stored after the change it reports has committed (in its own transaction): a crash in between means a
retry runs the request again, which every POST here tolerates (publishing identical content is a no-op).
Concurrent requests with one key in this process run one at a time; 5xx answers are not stored.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from agentreg.api.asgi import ASGIApp, Message, Receive, Scope, Send
from agentreg.api.auth import Authenticator, client_address
from agentreg.api.bodies import APPLY_LIMIT
from agentreg.api.errors import error_body
from agentreg.domain.errors import AgentRegError, Conflict, InvalidRequest
from agentreg.store.interface import IdempotentResponse, Store

KEEP_FOR = timedelta(hours=24)
MAX_KEY = 255
_STORED_HEADERS = {b"content-type", b"etag", b"location", b"cache-control"}
_SECRET_NOT_KEPT = (
    409,
    [("content-type", "application/json")],
    error_body(
        Conflict(
            "a request with this Idempotency-Key succeeded already; its answer held a secret shown only once,"
            " so it is not replayed"
        ),
        None,
    )[1],
)


class Idempotency:
    def __init__(self, app: ASGIApp, store: Store, authenticator: Authenticator) -> None:
        self.app = app
        self.store = store
        self.authenticator = authenticator
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._waiting: dict[tuple[str, str], int] = {}
        self._stored = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        raw_key = headers.get(b"idempotency-key")
        if raw_key is None:
            return await self.app(scope, receive, send)
        key = raw_key.decode("latin-1")
        if not key or len(key) > MAX_KEY or not key.isprintable():
            return await self._error(
                scope, send, InvalidRequest.at("Idempotency-Key", f"1-{MAX_KEY} printable characters")
            )
        try:
            principal = await self.authenticator.authenticate(
                headers.get(b"authorization", b"").decode("latin-1") or None, client_address(scope)
            )
        except AgentRegError:
            return await self.app(scope, receive, send)  # the route answers 401/429 itself
        scope.setdefault("state", {})["principal"] = principal
        body, complete = await _read_body(receive, APPLY_LIMIT)
        if not complete:  # too large to remember: let the route refuse it
            return await self.app(scope, _replay(body, receive), send)
        fingerprint = _fingerprint(scope, headers, body)
        slot = (principal.subject, key)
        lock = self._locks.setdefault(slot, asyncio.Lock())
        self._waiting[slot] = self._waiting.get(slot, 0) + 1
        try:
            async with lock:
                async with self.store.read() as tx:
                    stored = await tx.get_idempotent(principal.subject, key)
                if stored is not None:
                    if stored.request_hash != fingerprint:
                        error = InvalidRequest.at(
                            "Idempotency-Key",
                            "was used with a different request; use a new key for a new request",
                        )
                        return await self._error(scope, send, error)
                    return await _send_stored(send, stored)
                await self._run_and_store(scope, send, body, principal.subject, key, fingerprint)
        finally:
            # Drop the lock only when no request with this key holds it or waits for it.
            self._waiting[slot] -= 1
            if not self._waiting[slot]:
                del self._waiting[slot]
                self._locks.pop(slot, None)

    async def _run_and_store(
        self, scope: Scope, send: Send, body: bytes, subject: str, key: str, fingerprint: str
    ) -> None:
        status = 0
        kept: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() in _STORED_HEADERS:
                        kept.append((name.decode("latin-1"), value.decode("latin-1")))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, _replay(body, None), capture)
        if status and status < 500 and status != 429:
            stored_body = b"".join(chunks)
            if ("cache-control", "no-store") in kept:
                # A one-time secret (a new API key) is never kept: a replay learns it was done, not the secret.
                status, kept, stored_body = _SECRET_NOT_KEPT
            response = IdempotentResponse(fingerprint, status, kept, stored_body, datetime.now(UTC))
            async with self.store.begin() as tx:
                await tx.put_idempotent(subject, key, response)
                self._stored += 1
                if self._stored % 1000 == 0:
                    await tx.prune_idempotent(datetime.now(UTC) - KEEP_FOR)

    async def _error(self, scope: Scope, send: Send, error: AgentRegError) -> None:
        request_id = scope.get("state", {}).get("request_id")
        status, body = error_body(error, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _fingerprint(scope: Scope, headers: dict[bytes, bytes], body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["path"].encode(), scope["query_string"], headers.get(b"content-type", b""), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            return b"".join(chunks), False
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, rest: Receive | None) -> Receive:
    """A receive that yields ``body`` first, then whatever is left of the original stream."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": rest is not None}
        if rest is not None:
            return await rest()
        return {"type": "http.disconnect"}

    return receive


async def _send_stored(send: Send, stored: IdempotentResponse) -> None:
    headers: list[Any] = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    headers += [(b"content-length", str(len(stored.body)).encode()), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})
