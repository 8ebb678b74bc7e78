"""Request bodies: YAML streams parsed document by document, JSON arrays, and what JSON cannot hold."""

from __future__ import annotations

import pytest

from agentreg.domain.errors import Invalid, Malformed
from agentreg.domain.streams import parse_one, parse_stream


def test_yaml_stream_reports_a_syntax_error_with_line_and_column_and_keeps_the_others() -> None:
    body = b"a: 1\n---\nb: [1, 2\nc: 3\n---\n# only a comment\n---\nd: 4\n"
    items = parse_stream(body, "application/yaml")
    assert [i.value for i in items] == [{"a": 1}, None, {"d": 4}]
    error = items[1].error
    assert isinstance(error, Malformed)
    assert "line 4" in error.message and "column" in error.message


def test_yaml_dates_stay_strings() -> None:
    assert parse_one(b"version: 2025-01-15\n", "application/yaml") == {"version": "2025-01-15"}


def test_json_array_is_a_stream() -> None:
    items = parse_stream(b'[{"a": 1}, {"b": 2}]', "application/json")
    assert [i.value for i in items] == [{"a": 1}, {"b": 2}]


def test_json_syntax_error_names_line_and_column() -> None:
    with pytest.raises(Malformed, match="line 2, column"):
        parse_one(b'{"a": 1,\n}', "application/json")


@pytest.mark.parametrize(
    ("body", "field"), [(b"1: a\n", "/1"), (b"a: .nan\n", "/a"), (b"a: [9007199254740993]\n", "/a/0")]
)
def test_values_json_cannot_hold_are_refused(body: bytes, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_one(body, "application/yaml")
    assert caught.value.details[0].field == field


def test_one_document_endpoint_refuses_a_stream() -> None:
    with pytest.raises(Malformed, match="expected one document"):
        parse_one(b"a: 1\n---\nb: 2\n", "application/yaml")


def test_yaml_aliases_are_refused_so_a_small_body_cannot_expand() -> None:
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b]\n"
    items = parse_stream(bomb, "application/yaml")
    assert isinstance(items[0].error, Malformed)
    assert "aliases" in items[0].error.message


@pytest.mark.parametrize(
    ("body", "content_type"), [(b"[" * 100_000, "application/json"), (b"[" * 50_000, "application/yaml")]
)
def test_absurd_nesting_is_malformed_not_a_crash(body: bytes, content_type: str) -> None:
    with pytest.raises(Malformed):
        parse_one(body, content_type)


def test_deep_but_parseable_nesting_is_refused_by_field() -> None:
    deep = b'{"a":' * 100 + b"1" + b"}" * 100
    with pytest.raises(Invalid, match="nested more than 64"):
        parse_one(deep, "application/json")


@pytest.mark.parametrize("content_type", ["application/json", "application/yaml"])
def test_integers_beyond_pythons_digit_limit_are_malformed(content_type: str) -> None:
    body = b'{"x": ' + b"1" * 5000 + b"}"
    with pytest.raises(Malformed):
        parse_one(body, content_type)


@pytest.mark.parametrize(
    ("body", "field"),
    [(b'{"x": "\\ud800"}', "/x"), (b'{"x": "a\\u0000b"}', "/x"), (b'{"a\\u0000": 1}', "/a\x00")],
)
def test_text_the_databases_cannot_store_is_refused_at_its_field(body: bytes, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_one(body, "application/json")
    assert caught.value.details[0].field == field


def test_a_stream_of_more_than_a_thousand_documents_is_too_large() -> None:
    from agentreg.domain.errors import TooLarge

    with pytest.raises(TooLarge):
        parse_stream(b"---\n{a: 1}\n" * 1001, "application/yaml")
    with pytest.raises(TooLarge):
        parse_stream(b"[" + b",".join([b"{}"] * 1001) + b"]", "application/json")
