"""Namespaces, names, aliases and refs (``[kind/]namespace/name[@selector]``), parsed in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from agentreg.domain.errors import Invalid
from agentreg.domain.kinds import Kind, parse_kind
from agentreg.domain.semver import RangeError, parse_range, parse_semver

# Matched with fullmatch (a "$" would also accept a trailing newline); ASCII only.
NAMESPACE_RE = re.compile(r"[a-zA-Z0-9.-]+", re.ASCII)
NAME_RE = re.compile(r"[a-zA-Z0-9._-]+", re.ASCII)
ALIAS_RE = re.compile(r"[a-z][a-z0-9-]{0,62}", re.ASCII)
# URL clients collapse "." and ".." path segments, so such a name could never be addressed.
_DOT_SEGMENTS = {".", ".."}
MAX_FULL_NAME = 200  # "namespace/name", the MCP registry's limit
MAX_VERSION = 255
LATEST = "latest"


def is_addressable(namespace: str, name: str) -> bool:
    """Whether a namespace/name pair could name a resource at all (reads of others are simply not found)."""
    try:
        check_namespace(namespace)
        check_name(namespace, name)
    except Invalid:
        return False
    return True


def check_namespace(namespace: str, field: str = "/metadata/namespace") -> str:
    if not NAMESPACE_RE.fullmatch(namespace) or namespace in _DOT_SEGMENTS:
        raise Invalid.at(field, "namespace must be letters, digits, '.' and '-' (and not '.' or '..')")
    return namespace


def check_name(namespace: str, name: str, field: str = "/metadata/name") -> str:
    if not NAME_RE.fullmatch(name) or name in _DOT_SEGMENTS:
        raise Invalid.at(field, "name must be letters, digits, '.', '_' and '-' (and not '.' or '..')")
    if len(namespace) + 1 + len(name) > MAX_FULL_NAME:
        raise Invalid.at(field, f"'namespace/name' must be at most {MAX_FULL_NAME} characters")
    return name


def check_alias(alias: str, field: str = "/alias") -> str:
    """Aliases are ``[a-z][a-z0-9-]*`` and must not read as ``latest``, a version or a range."""
    if not ALIAS_RE.fullmatch(alias):
        raise Invalid.at(field, "alias must match [a-z][a-z0-9-]* (at most 63 characters)")
    if alias == LATEST or parse_semver(alias) is not None:
        raise Invalid.at(field, f"{alias!r} is reserved: it already means a version selector")
    try:
        parse_range(alias)
    except RangeError:
        return alias
    raise Invalid.at(field, f"{alias!r} reads as a version range, so it cannot be an alias")


class SelectorType(StrEnum):
    LATEST = "latest"
    EXACT = "exact"
    ALIAS = "alias"
    RANGE = "range"
    # A literal version that is not SemVer (MCP servers may publish such versions).
    LITERAL = "literal"


@dataclass(frozen=True, slots=True)
class Selector:
    text: str
    type: SelectorType


def parse_selector(text: str, field: str = "/selector") -> Selector:
    """Classify a selector: ``latest``, an exact SemVer version, an alias, a node-semver range, or a literal."""
    if not text or text == LATEST:
        return Selector(LATEST, SelectorType.LATEST)
    if len(text) > MAX_VERSION:
        raise Invalid.at(field, f"selector is longer than {MAX_VERSION} characters")
    if parse_semver(text) is not None:
        return Selector(text, SelectorType.EXACT)
    if ALIAS_RE.fullmatch(text):
        try:
            check_alias(text, field)
        except Invalid:
            pass
        else:
            return Selector(text, SelectorType.ALIAS)
    try:
        parse_range(text)
    except RangeError:
        # Not SemVer and not a range: a non-SemVer literal version (only MCP servers have those).
        return Selector(text, SelectorType.LITERAL)
    return Selector(text, SelectorType.RANGE)


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a resource, optionally narrowed to a version by a selector."""

    kind: Kind | None
    namespace: str
    name: str
    selector: Selector

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        prefix = f"{self.kind.value}/" if self.kind else ""
        return f"{prefix}{self.namespace}/{self.name}@{self.selector.text}"


def parse_ref(text: str, field: str = "/ref", default_kind: Kind | None = None) -> Ref:
    """Parse ``[kind/]namespace/name[@selector]``; no ``@`` means ``latest``."""
    if not isinstance(text, str) or not text:
        raise Invalid.at(field, "ref must be a non-empty string like 'mcp-server/com.acme/github@^1.2'")
    body, _, selector_text = text.partition("@")
    parts = body.split("/")
    if len(parts) == 3:
        kind: Kind | None = parse_kind(parts[0], field)
        namespace, name = parts[1], parts[2]
    elif len(parts) == 2:
        kind = default_kind
        namespace, name = parts
    else:
        raise Invalid.at(field, f"ref {text!r} must look like [kind/]namespace/name[@selector]")
    if default_kind is not None and kind is not None and kind != default_kind:
        raise Invalid.at(field, f"ref {text!r} must name a {default_kind.value}")
    check_namespace(namespace, field)
    check_name(namespace, name, field)
    if "@" in text and not selector_text:
        raise Invalid.at(field, f"ref {text!r} has an empty selector after '@'")
    return Ref(kind, namespace, name, parse_selector(selector_text, field))


TENANT_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62})", re.ASCII)
# An environment name (prod, staging, eu-west-1): a DNS label. Policies name environments; reads ask for one.
ENVIRONMENT_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
ENVIRONMENT_RE = re.compile(ENVIRONMENT_PATTERN, re.ASCII)


def check_tenant_id(tenant: str, field: str) -> str:
    """A tenant id: 1-63 lowercase letters, digits and '-', starting with a letter or digit."""
    if not TENANT_RE.fullmatch(tenant):
        raise Invalid.at(
            field, "a tenant id is 1-63 lowercase letters, digits and '-', starting with a letter or digit"
        )
    return tenant
