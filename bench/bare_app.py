"""A bare ASGI app: the floor of what uvicorn can do for one fixed JSON response of a given size.

Used by ``read_path.py`` as the baseline: same uvicorn settings as ``agentreg serve`` (one worker, uvloop,
httptools, no access log), same core, same body size and content type, but no routing, no cache, no
metrics and no database. Run: ``python bench/bare_app.py --port 9000 --size 958``.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PREFIX = b'{"pad":"'
_SUFFIX = b'"}'


def json_body(size: int) -> bytes:
    """A valid JSON object of exactly ``size`` bytes."""
    filler = size - len(_PREFIX) - len(_SUFFIX)
    if filler < 0:
        raise ValueError(f"size must be at least {len(_PREFIX) + len(_SUFFIX)} bytes, got {size}")
    return _PREFIX + b"x" * filler + _SUFFIX


def make_app(size: int) -> ASGIApp:
    body = json_body(size)
    start: Message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    message: Message = {"type": "http.response.body", "body": body}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        await send(start)
        await send(message)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, required=True, help="response body size in bytes")
    args = parser.parse_args()

    import uvicorn

    uvicorn.run(
        make_app(args.size),
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
