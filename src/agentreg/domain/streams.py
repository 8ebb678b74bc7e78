"""Decode request bodies into JSON-compatible documents: one JSON/YAML document, or a stream of them.

YAML is loaded without implicit timestamps (a version such as ``2025-01-01`` stays a string) and each
document of a multi-document stream is parsed on its own, so one syntax error names its line and column
and does not hide the others.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from agentreg.domain.errors import FieldIssue, Invalid, Malformed, TooLarge

_DOC_START = re.compile(r"^---(?:\s|$)")
_DOC_END = re.compile(r"^\.\.\.\s*$")
MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64
MAX_DOCUMENTS = 1000


class _Loader(yaml.SafeLoader):
    """SafeLoader without timestamps or aliases: documents must round-trip through JSON.

    Aliases are refused because a few hundred bytes of nested ``*ref`` expand to gigabytes.
    """

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not accepted; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One document of a stream: its parsed value, or why it could not be parsed."""

    index: int
    value: Any = None
    error: Invalid | Malformed | None = None


def check_json(value: Any, at: str = "") -> Any:
    """Refuse what JSON (or the databases) cannot hold: non-string keys, NaN, huge integers, NUL, lone surrogates.

    Iterative with a depth bound, so deep nesting is a 422 rather than a RecursionError.
    """
    stack: list[tuple[str, Any, int]] = [(at, value, 0)]
    while stack:
        where, item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Invalid.at(where, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise Invalid.at(f"{where}/{key}", "object keys must be strings (quote the key in YAML)")
                _check_text(key, f"{where}/{key}")
                stack.append((f"{where}/{key.replace('~', '~0').replace('/', '~1')}", child, depth + 1))
        elif isinstance(item, list):
            stack.extend((f"{where}/{i}", child, depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            _check_text(item, where)
        elif isinstance(item, float) and not math.isfinite(item):
            raise Invalid.at(where, "numbers must be finite")
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_SAFE_INTEGER:
            raise Invalid.at(where, "integers must be within ±2^53-1")
        elif not isinstance(item, int | float | bool | type(None)):
            raise Invalid.at(where, f"unsupported value of type {type(item).__name__}")
    return value


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise Invalid.at(where, "must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid.at(where, "must be valid Unicode (no unpaired surrogates)") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Malformed(f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (RecursionError, ValueError) as exc:  # absurd nesting; integers past Python's digit limit
        raise Malformed(f"JSON body cannot be read: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]


def _yaml_error(exc: yaml.YAMLError, line_offset: int) -> Malformed:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return Malformed(f"YAML syntax error: {problem}")
    line, column = mark.line + 1 + line_offset, mark.column + 1
    return Malformed(
        f"YAML syntax error at line {line}, column {column}: {problem}",
        [FieldIssue("", f"line {line}, column {column}: {problem}")],
    )


def parse_one(body: bytes, content_type: str) -> Any:
    """A single JSON or YAML document."""
    if _is_json(content_type):
        return check_json(_json(_text(body)))
    items = parse_stream(body, content_type)
    if len(items) != 1:
        raise Malformed(f"expected one document, found {len(items)}; use /v1/apply for several")
    if items[0].error is not None:
        raise items[0].error
    return items[0].value


def parse_stream(body: bytes, content_type: str) -> list[StreamItem]:
    """A JSON array (or object) or a multi-document YAML stream, parsed document by document."""
    text = _text(body)
    if _is_json(content_type):
        value = _json(text)
        values = value if isinstance(value, list) else [value]
        _check_count(len(values))
        return [_checked(i, v) for i, v in enumerate(values)]
    items: list[StreamItem] = []
    chunks = _chunks(text)
    _check_count(len(chunks))
    for start, chunk in chunks:
        index = len(items)
        try:
            value = yaml.load(chunk, Loader=_Loader)
        except yaml.YAMLError as exc:
            items.append(StreamItem(index, error=_yaml_error(exc, start)))
            continue
        except (RecursionError, ValueError) as exc:  # absurd nesting; integers past Python's digit limit
            items.append(StreamItem(index, error=Malformed(f"YAML document cannot be read: {_reason(exc)}")))
            continue
        if value is None:
            continue
        items.append(_checked(index, value))
    return items


def _check_count(count: int) -> None:
    if count > MAX_DOCUMENTS:
        raise TooLarge(f"{count} documents in one request; apply at most {MAX_DOCUMENTS} at a time")


def _checked(index: int, value: Any) -> StreamItem:
    try:
        return StreamItem(index, check_json(value))
    except Invalid as exc:
        return StreamItem(index, error=exc)


def _chunks(text: str) -> list[tuple[int, str]]:
    """Split a YAML stream at document markers, remembering each document's first line (0-based)."""
    chunks: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(keepends=True)):
        if _DOC_START.match(line) or _DOC_END.match(line):
            if current:
                chunks.append((start, "".join(current)))
            # Keep the marker's line in the next chunk's numbering; content after "--- " stays.
            rest = line[3:] if _DOC_START.match(line) else ""
            current = [rest] if rest.strip() else []
            start = number if rest.strip() else number + 1
            continue
        if not current:
            start = number
        current.append(line)
    if current:
        chunks.append((start, "".join(current)))
    return [(s, c) for s, c in chunks if c.strip() and not all(_blank(line) for line in c.splitlines())]


def _blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Malformed("the body must be UTF-8") from None


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")
