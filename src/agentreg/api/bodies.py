"""Reading request bodies: size limits, media types, JSON/YAML decoding."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from agentreg.domain.errors import FieldIssue, InvalidRequest, TooLarge, Unsupported
from agentreg.domain.streams import StreamItem, parse_one, parse_stream

M = TypeVar("M", bound=BaseModel)
MIB = 1024 * 1024
DOCUMENT_LIMIT = 1 * MIB
APPLY_LIMIT = 10 * MIB
_MEDIA = {
    "application/json",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "text/plain",
}


def media_type(request: Request) -> str:
    content_type = request.headers.get("content-type", "application/json")
    media = content_type.split(";")[0].strip().lower()
    if media not in _MEDIA and not media.endswith("+json") and not media.endswith("+yaml"):
        raise Unsupported(f"unsupported media type {media!r}: send application/json or application/yaml")
    return media


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {declared} bytes; the limit here is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def one_document(request: Request) -> Any:
    media = media_type(request)
    return parse_one(await read_limited(request, DOCUMENT_LIMIT), media)


async def document_stream(request: Request) -> list[StreamItem]:
    media = media_type(request)
    body = await read_limited(request, APPLY_LIMIT)
    # Up to 10 MiB of YAML takes a while to parse: keep the event loop serving meanwhile.
    return await asyncio.to_thread(parse_stream, body, media)


async def json_body(request: Request, limit: int = DOCUMENT_LIMIT) -> Any:
    return parse_one(await read_limited(request, limit), "application/json")


async def json_object(request: Request) -> dict[str, Any]:
    value = await json_body(request)
    if not isinstance(value, dict):
        raise InvalidRequest.at("", "the body must be a JSON object")
    return value


SMALL_LIMIT = 64 * 1024


async def strict_json(request: Request, model: type[M], limit: int = SMALL_LIMIT) -> M:
    """A small JSON body of exactly ``model``'s shape: 415 for another media type, 422 naming the bad field."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise Unsupported(f"unsupported media type {media or 'none'!r}: send application/json")
    value = parse_one(await read_limited(request, limit), "application/json")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = [
            FieldIssue("/" + "/".join(str(p) for p in error["loc"]), error["msg"]) for error in exc.errors()
        ]
        raise InvalidRequest.of(problems or [FieldIssue("", "invalid body")]) from None
