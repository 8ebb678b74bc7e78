"""Names, aliases and refs: one parser for [kind/]namespace/name[@selector]."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentreg.domain.errors import Invalid
from agentreg.domain.kinds import Kind, parse_kind
from agentreg.domain.names import SelectorType, check_alias, check_name, parse_ref, parse_selector


@pytest.mark.parametrize(
    "spelling", ["Agent", "agent", "agents", "MCPServer", "mcp-server", "mcp-servers", "Skill", "models"]
)
def test_every_kind_spelling_is_accepted(spelling: str) -> None:
    assert isinstance(parse_kind(spelling), Kind)


def test_unknown_kind_names_the_field() -> None:
    with pytest.raises(Invalid) as caught:
        parse_kind("Widget")
    assert caught.value.details[0].field == "/kind"


@pytest.mark.parametrize(
    ("text", "kind", "namespace", "name", "selector", "type_"),
    [
        ("com.acme/bot", None, "com.acme", "bot", "latest", SelectorType.LATEST),
        ("agent/com.acme/bot@1.2.0", Kind.AGENT, "com.acme", "bot", "1.2.0", SelectorType.EXACT),
        ("mcp-server/acme/github@^1.2", Kind.MCP_SERVER, "acme", "github", "^1.2", SelectorType.RANGE),
        ("MCPServer/acme/github@stable", Kind.MCP_SERVER, "acme", "github", "stable", SelectorType.ALIAS),
        ("skills/acme/s@>=1.0 <2", Kind.SKILL, "acme", "s", ">=1.0 <2", SelectorType.RANGE),
        ("acme/s@1.x", None, "acme", "s", "1.x", SelectorType.RANGE),
        ("acme/s@2025-01-01", None, "acme", "s", "2025-01-01", SelectorType.LITERAL),
    ],
)
def test_parse_ref(
    text: str, kind: Kind | None, namespace: str, name: str, selector: str, type_: SelectorType
) -> None:
    ref = parse_ref(text)
    assert (ref.kind, ref.namespace, ref.name, ref.selector.text, ref.selector.type) == (
        kind,
        namespace,
        name,
        selector,
        type_,
    )


@pytest.mark.parametrize(
    "text", ["", "bot", "a/b/c/d", "acme/bot@", "acme/..", "acme/bot!", "widget/acme/bot", "acme/bot\n"]
)
def test_bad_refs_name_the_field(text: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_ref(text, "/spec/config/model/ref")
    assert caught.value.details[0].field == "/spec/config/model/ref"


def test_ref_in_a_typed_slot_must_have_that_kind() -> None:
    with pytest.raises(Invalid, match="must name a model"):
        parse_ref("skill/acme/x", default_kind=Kind.MODEL)
    assert parse_ref("acme/x", default_kind=Kind.MODEL).kind == Kind.MODEL


def test_full_name_is_at_most_200_characters() -> None:
    check_name("a" * 100, "b" * 99)
    with pytest.raises(Invalid):
        check_name("a" * 100, "b" * 100)


@pytest.mark.parametrize("alias", ["latest", "x", "v1", "1.2.3", "Stable", "9lives", "a_b"])
def test_aliases_cannot_look_like_selectors(alias: str) -> None:
    with pytest.raises(Invalid):
        check_alias(alias)


@given(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))
def test_a_valid_alias_always_parses_back_as_an_alias(alias: str) -> None:
    try:
        check_alias(alias)
    except Invalid:
        return
    assert parse_selector(alias).type == SelectorType.ALIAS
