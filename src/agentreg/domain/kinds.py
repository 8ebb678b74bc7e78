"""The four resource kinds and their three spellings (envelope, kind name, URL plural)."""

from __future__ import annotations

from enum import StrEnum

from agentreg.domain.errors import Invalid


class Kind(StrEnum):
    """A resource kind; the value is the kind name used in refs, filters and responses."""

    AGENT = "agent"
    MCP_SERVER = "mcp-server"
    SKILL = "skill"
    MODEL = "model"

    @property
    def envelope(self) -> str:
        return _ENVELOPE[self]

    @property
    def plural(self) -> str:
        return _PLURAL[self]


_ENVELOPE = {Kind.AGENT: "Agent", Kind.MCP_SERVER: "MCPServer", Kind.SKILL: "Skill", Kind.MODEL: "Model"}
_PLURAL = {Kind.AGENT: "agents", Kind.MCP_SERVER: "mcp-servers", Kind.SKILL: "skills", Kind.MODEL: "models"}
_BY_SPELLING: dict[str, Kind] = {}
for _kind in Kind:
    for _spelling in (_kind.value, _ENVELOPE[_kind], _PLURAL[_kind]):
        _BY_SPELLING[_spelling] = _kind
        _BY_SPELLING[_spelling.lower()] = _kind


def parse_kind(text: str, field: str = "/kind") -> Kind:
    """Accept any of a kind's spellings (``Agent``, ``agent``, ``agents``, ``MCPServer``, ``mcp-server``...)."""
    kind = _BY_SPELLING.get(text) or _BY_SPELLING.get(text.lower())
    if kind is None:
        raise Invalid.at(field, f"unknown kind {text!r}; expected one of Agent, MCPServer, Skill, Model")
    return kind


def kind_from_plural(plural: str) -> Kind | None:
    """The kind whose URL plural is ``plural``, or None."""
    for kind, value in _PLURAL.items():
        if value == plural:
            return kind
    return None
