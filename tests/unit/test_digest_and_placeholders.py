"""Digests are stable under key order and whitespace; placeholders and literal secrets are found."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentreg.domain.digest import canonical_json, sha256_digest
from agentreg.domain.placeholders import find_placeholder

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_digest_ignores_key_order_and_whitespace(value: object) -> None:
    reordered = json.loads(json.dumps(value, indent=3), object_pairs_hook=lambda pairs: dict(reversed(pairs)))
    assert sha256_digest(value) == sha256_digest(reordered)


def test_canonical_json_is_rfc8785() -> None:
    assert canonical_json({"b": 1, "a": [1.0, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()
    assert sha256_digest({}).startswith("sha256:") and len(sha256_digest({})) == 71


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"metadata": {"version": "{{ .Version }}"}}, "/metadata/version"),
        ({"spec": {"name": "acme/<<NAME>>"}}, "/spec/name"),
        ({"spec": {"remotes": [{"url": "https://x/${TENANT}/mcp"}]}}, "/spec/remotes/0/url"),
        ({"spec": {"packages": [{"version": "$VERSION"}]}}, "/spec/packages/0/version"),
        ({"spec": {"docs": "see https://x/{{path}}"}}, "/spec/docs"),
    ],
)
def test_placeholders_are_found_in_names_versions_and_urls(document: dict[str, object], field: str) -> None:
    found = find_placeholder(document)
    assert found is not None and found.field == field


@pytest.mark.parametrize(
    "document",
    [
        {"spec": {"description": "Use {{ mustache }} templates"}},  # prose, not a name/version/URL
        {"spec": {"remotes": [{"url": "https://x/{tenant}/mcp"}]}},  # an MCP URL template variable
        {"spec": {"packages": [{"runtimeArguments": [{"value": "--port=${PORT}"}]}]}},
    ],
)
def test_legitimate_templates_are_not_placeholders(document: dict[str, object]) -> None:
    assert find_placeholder(document) is None
