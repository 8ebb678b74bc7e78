"""JSON responses with ETags and conditional GETs."""

from __future__ import annotations

from fastapi import Request, Response
from pydantic import BaseModel

from agentreg.api import render
from agentreg.api.fastlane import body_etag, etag_matches, version_etag
from agentreg.api.schemas import ErrorOut
from agentreg.services.views import VersionView

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 404, 409, 412, 413, 415, 422)
}


def json_model(
    request: Request,
    model: BaseModel,
    *,
    status: int = 200,
    etag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    body = model.model_dump_json().encode()
    if etag is None and request.method in ("GET", "HEAD"):
        etag = body_etag(body)
    response_headers = dict(headers or ())
    response_headers["cache-control"] = "no-cache"
    if etag is not None:
        response_headers["etag"] = etag
        if status == 200 and etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=response_headers)
    return Response(body, status_code=status, media_type="application/json", headers=response_headers)


def version_response(request: Request, view: VersionView) -> Response:
    """A version as every route answers with it: its ETag, and its deprecation headers when deprecated."""
    return json_model(
        request, render.version_out(view), etag=version_etag(view), headers=render.version_headers(view)
    )
