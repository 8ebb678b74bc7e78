"""Per-kind spec validation: A2A cards (0.3 and 1.0 shapes), MCP server.json, skills, models, agent config.

Real documents are imperfect: cards without ``protocolVersion`` or with both ``url`` and
``supportedInterfaces`` are accepted with a warning that names the field, and unknown fields are kept.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from agentreg.domain.errors import FieldIssue, Invalid
from agentreg.domain.kinds import Kind
from agentreg.domain.names import Ref, parse_ref
from agentreg.domain.schemas import issues, load_schema, pointer, validator

if TYPE_CHECKING:
    from agentreg.domain.documents import Document

CARD = "/spec/card"
A2A_03 = "0.3"
A2A_10 = "1.0"
MCP_SCHEMA_INDEX = "mcp/index.json"
_SCHEMA_DATE = re.compile(r"/(\d{4}-\d{2}-\d{2})/")
# "Bearer {token}" refers to an input variable: a reference, not a literal secret.
_TEMPLATE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


@dataclass(frozen=True, slots=True)
class Facts:
    """What validation learned about a spec: display fields, refs, the card's protocol, warnings."""

    title: str
    description: str
    refs: tuple[tuple[str, Ref], ...] = ()  # (JSON pointer of the ref, parsed ref)
    protocol: str | None = None
    warnings: tuple[FieldIssue, ...] = field(default=())


def validate_spec(doc: Document) -> Facts:
    if doc.kind == Kind.AGENT:
        return _agent(doc)
    if doc.kind == Kind.MCP_SERVER:
        return _mcp_server(doc)
    if doc.kind == Kind.SKILL:
        _raise_if(issues(validator("skill.schema.json"), doc.spec, "/spec"))
        return Facts(title=str(doc.spec.get("name") or doc.name), description=str(doc.spec["description"]))
    _raise_if(issues(validator("model.schema.json"), doc.spec, "/spec"))
    return Facts(
        title=f"{doc.spec['provider']}/{doc.spec['model']}", description=str(doc.spec.get("description", ""))
    )


def _raise_if(problems: list[FieldIssue]) -> None:
    if problems:
        raise Invalid.of(problems)


# --- agents -------------------------------------------------------------------------------------------


def _agent(doc: Document) -> Facts:
    problems = [
        FieldIssue(f"/spec/{k}", "is not an allowed property")
        for k in doc.spec
        if k not in ("card", "config")
    ]
    card = doc.spec.get("card")
    if card is None:
        problems.append(FieldIssue(CARD, "is required"))
    elif not isinstance(card, dict):
        problems.append(FieldIssue(CARD, "must be an object (an A2A AgentCard)"))
    _raise_if(problems)
    assert isinstance(card, dict)
    protocol, warnings = check_card(card, CARD)
    if card.get("version") != doc.version:
        raise Invalid.at(f"{CARD}/version", f"must equal metadata.version {doc.version!r}")
    refs = config_refs(doc.spec.get("config"))
    return Facts(
        title=str(card.get("name", doc.name)),
        description=str(card.get("description", "")),
        refs=refs,
        protocol=protocol,
        warnings=tuple(warnings),
    )


def check_card(card: dict[str, Any], base: str) -> tuple[str, list[FieldIssue]]:
    """Validate an AgentCard in whichever shape it has; return its protocol (0.3 or 1.0) and warnings."""
    warnings: list[FieldIssue] = []
    has_url, has_interfaces = "url" in card, "supportedInterfaces" in card
    shape = A2A_10 if has_interfaces and not has_url else A2A_03 if has_url and not has_interfaces else None
    declared = card.get("protocolVersion")
    declared_major = _protocol_major(declared)
    if declared is None:
        protocol = shape or A2A_10
        warnings.append(
            FieldIssue(f"{base}/protocolVersion", f"missing; inferred {protocol} from the card's shape")
        )
    elif declared_major is None:
        raise Invalid.at(f"{base}/protocolVersion", f"unsupported A2A protocol version {declared!r}")
    elif shape is not None and shape != declared_major:
        protocol = shape
        warnings.append(
            FieldIssue(
                f"{base}/protocolVersion",
                f"declares {declared!r} but the card has the {shape} shape; validated as {shape}",
            )
        )
    else:
        protocol = declared_major
    checked = copy.deepcopy(card)
    checked["protocolVersion"] = declared if declared_major == protocol else _default_version(protocol)
    if protocol == A2A_10:
        if has_url:
            warnings.append(FieldIssue(f"{base}/url", "is not part of an A2A 1.0 AgentCard; kept as given"))
        interfaces = checked.get("supportedInterfaces")
        for i, interface in enumerate(interfaces if isinstance(interfaces, list) else []):
            if isinstance(interface, dict) and "protocolVersion" not in interface:
                interface["protocolVersion"] = checked["protocolVersion"]
                warnings.append(
                    FieldIssue(
                        f"{base}/supportedInterfaces/{i}/protocolVersion",
                        f"missing; inferred {checked['protocolVersion']!r} from the card",
                    )
                )
        compiled = validator("a2a-agent-card-1.0.schema.json")
    else:
        if has_interfaces:
            warnings.append(
                FieldIssue(f"{base}/supportedInterfaces", "is an A2A 1.0 field on a 0.3 card; kept as given")
            )
        compiled = validator("a2a-agent-card-0.3.schema.json", "AgentCard")
    _raise_if(issues(compiled, checked, base))
    return protocol, warnings


def _protocol_major(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if value.startswith("0."):
        return A2A_03
    if value.startswith("1."):
        return A2A_10
    return None


def _default_version(protocol: str) -> str:
    return "0.3.0" if protocol == A2A_03 else "1.0"


_CONFIG_SLOTS = (
    ("mcpServers", Kind.MCP_SERVER),
    ("skills", Kind.SKILL),
    ("agents", Kind.AGENT),
)


def config_refs(config: Any) -> tuple[tuple[str, Ref], ...]:
    """Every ref in an agent's ``config`` with the JSON pointer where it stands."""
    if config is None:
        return ()
    base = "/spec/config"
    _raise_if(issues(validator("agent-config.schema.json"), config, base))
    refs: list[tuple[str, Ref]] = []
    model = config.get("model")
    if isinstance(model, dict):
        at = f"{base}/model/ref"
        refs.append((at, parse_ref(model["ref"], at, default_kind=Kind.MODEL)))
    for slot, kind in _CONFIG_SLOTS:
        for i, entry in enumerate(config.get(slot) or []):
            at = f"{base}/{slot}/{i}/ref"
            refs.append((at, parse_ref(entry["ref"], at, default_kind=kind)))
    return tuple(refs)


# --- MCP servers --------------------------------------------------------------------------------------


@cache
def _mcp_schema_index() -> dict[str, str]:
    index: dict[str, str] = load_schema(MCP_SCHEMA_INDEX)
    return index


def _mcp_server(doc: Document) -> Facts:
    warnings: list[FieldIssue] = []
    declared = doc.spec.get("$schema")
    schema_file = _declared_schema(declared)
    problems = issues(validator(f"mcp/{schema_file}"), doc.spec, "/spec")
    if problems:
        # Accept what any released server.json schema accepts: files in the wild mislabel their $schema.
        other = next(
            (
                f
                for f in _released_schemas()
                if f != schema_file and not issues(validator(f"mcp/{f}"), doc.spec, "/spec")
            ),
            None,
        )
        if other is None:
            _raise_if(problems)
        warnings.append(FieldIssue("/spec/$schema", f"does not validate as {schema_file}; valid as {other}"))
    elif declared is not None and _mcp_schema_index().get(declared) is None:
        warnings.append(
            FieldIssue(
                "/spec/$schema", f"unknown server.json schema {declared!r}; validated as {schema_file}"
            )
        )
    if doc.spec.get("name") != doc.full_name:
        raise Invalid.at("/spec/name", f"must equal 'namespace/name' {doc.full_name!r}")
    if doc.spec.get("version") != doc.version:
        raise Invalid.at("/spec/version", f"must equal metadata.version {doc.version!r}")
    secret = _literal_secret(doc.spec, "/spec")
    if secret is not None:
        raise Invalid.at(
            secret, "a value marked isSecret must not be stored; pass a reference, not the secret"
        )
    return Facts(
        title=str(doc.spec.get("title") or doc.full_name),
        description=str(doc.spec.get("description", "")),
        warnings=tuple(warnings),
    )


def _released_schemas() -> list[str]:
    return sorted({f for k, f in _mcp_schema_index().items() if k != "default"}, reverse=True)


def _declared_schema(declared: Any) -> str:
    """The bundled schema file for a ``$schema`` URL; an unbundled date maps to the next bundled one."""
    index = _mcp_schema_index()
    if not isinstance(declared, str):
        return index["default"]
    if declared in index:
        return index[declared]
    match = _SCHEMA_DATE.search(declared)
    if match is not None:
        later = [f for f in sorted(_released_schemas()) if f.split(".")[-2] >= match.group(1)]
        if later:
            return later[0]
    return index["default"]


def _literal_secret(value: Any, at: str) -> str | None:
    """Pointer to the ``value`` or ``default`` of the first input marked ``isSecret`` that holds a literal."""
    if isinstance(value, dict):
        if value.get("isSecret", value.get("is_secret")) is True:
            for key in ("value", "default"):
                literal = value.get(key)
                if isinstance(literal, str) and literal and not _TEMPLATE.search(literal):
                    return f"{at}/{key}"
        items = [(pointer(at, [k]), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(f"{at}/{i}", v) for i, v in enumerate(value)]
    else:
        return None
    for child_at, child in items:
        found = _literal_secret(child, child_at)
        if found is not None:
            return found
    return None
