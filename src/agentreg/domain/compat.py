"""Compatibility between two versions of one resource: which changes break its consumers. Pure.

A change breaks when something a consumer may rely on goes away: an A2A skill, an endpoint URL, an input or
output mode; an MCP package (or its transport), remote or declared tool; a model's provider or model. Adding
never breaks. Each breaking change is a FieldIssue whose field points into the newer document, or at the
place in the older one where the removed thing stood.

Documents are stored envelopes (``apiVersion``, ``kind``, ``metadata``, ``spec``) that passed validation
once; the functions here still accept any shape (a missing or mistyped part reads as empty), so a
comparison never fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from agentreg.domain.errors import FieldIssue
from agentreg.domain.kinds import Kind
from agentreg.domain.schemas import pointer
from agentreg.domain.semver import parse_semver

Bump = Literal["major", "minor", "patch", "none"]

CARD = "/spec/card"
# server.json keeps publisher-provided metadata under this _meta key; agentreg reads declared tools there.
PUBLISHER_PROVIDED = "io.modelcontextprotocol.registry/publisher-provided"
TOOLS = pointer("/spec/_meta", [PUBLISHER_PROVIDED, "tools"])
_MODES = (("inputModes", "defaultInputModes", "input"), ("outputModes", "defaultOutputModes", "output"))


def breaking_changes(kind: Kind, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldIssue]:
    """Every change from ``old`` to ``new`` (two envelopes of ``kind``) that breaks a consumer of ``old``."""
    old_spec, new_spec = _object(old.get("spec")), _object(new.get("spec"))
    if kind is Kind.AGENT:
        return _agent(_object(old_spec.get("card")), _object(new_spec.get("card")))
    if kind is Kind.MCP_SERVER:
        return _mcp_server(old_spec, new_spec)
    if kind is Kind.MODEL:
        return _model(old_spec, new_spec)
    return []  # a skill's instructions change freely: nothing a caller binds to is declared


def change_bump(kind: Kind, old: Mapping[str, Any], new: Mapping[str, Any]) -> Bump:
    """The least bump the changes from ``old`` to ``new`` need: major for a breaking change, minor for an
    addition, patch for any other change of the spec, none when the specs are equal."""
    if breaking_changes(kind, old, new):
        return "major"
    # What ``new`` added is exactly what going back from ``new`` to ``old`` would remove.
    if breaking_changes(kind, new, old):
        return "minor"
    return "patch" if _object(old.get("spec")) != _object(new.get("spec")) else "none"


def required_bump(old_version: str, new_version: str) -> Bump:
    """The bump ``new_version`` makes over ``old_version``: the highest component that grew (a pre-release
    moving on within one major.minor.patch counts as a patch); none when it is not higher, or either
    is not SemVer."""
    old, new = parse_semver(old_version), parse_semver(new_version)
    if old is None or new is None or new <= old:
        return "none"
    if new.major != old.major:
        return "major"
    if new.minor != old.minor:
        return "minor"
    return "patch"


def needs_major(old_version: str, new_version: str) -> bool:
    """Whether a breaking change from ``old_version`` to ``new_version`` lacks the major bump it needs: both
    are SemVer and share a major."""
    old, new = parse_semver(old_version), parse_semver(new_version)
    return old is not None and new is not None and old.major == new.major


# --- agents (A2A AgentCard, 0.3 and 1.0 shapes) -------------------------------------------------------


def _agent(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldIssue]:
    found = _endpoints(old, new)
    old_skills, new_skills = _skills(old), _skills(new)
    found.extend(
        FieldIssue(f"{CARD}/skills", f"skill {skill_id!r} was removed")
        for skill_id in old_skills
        if skill_id not in new_skills
    )
    for _, default, direction in _MODES:
        found.extend(
            FieldIssue(f"{CARD}/{default}", f"default {direction} mode {mode!r} was removed")
            for mode in _lost(_strings(old.get(default)), _strings(new.get(default)))
        )
    for skill_id, (index, new_skill) in new_skills.items():
        if skill_id in old_skills:
            found.extend(_skill_modes(skill_id, index, old_skills[skill_id][1], new_skill, old, new))
    return found


def _endpoints(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldIssue]:
    """The card's URL changed, or a URL it was reachable at (``url`` or any interface) is gone."""
    found: list[FieldIssue] = []
    old_url, new_url = _string(old.get("url")), _string(new.get("url"))
    reported: set[str] = set()
    if old_url is not None and new_url is not None and old_url != new_url:
        found.append(FieldIssue(f"{CARD}/url", f"the endpoint URL changed from {old_url!r} to {new_url!r}"))
        reported.add(old_url)
    kept = set(_endpoint_urls(new))
    for url, at in _endpoint_urls(old).items():
        if url not in kept and url not in reported:
            found.append(FieldIssue(at, f"endpoint URL {url!r} was removed"))
    return found


def _endpoint_urls(card: Mapping[str, Any]) -> dict[str, str]:
    """Every URL the card is reachable at, with the pointer of the field that lists it (first one wins)."""
    urls: dict[str, str] = {}
    url = _string(card.get("url"))
    if url is not None:
        urls[url] = f"{CARD}/url"
    for field in ("supportedInterfaces", "additionalInterfaces"):
        for interface in _objects(card.get(field)):
            interface_url = _string(interface.get("url"))
            if interface_url is not None:
                urls.setdefault(interface_url, f"{CARD}/{field}")
    return urls


def _skills(card: Mapping[str, Any]) -> dict[str, tuple[int, Mapping[str, Any]]]:
    """Skills by id, with their index in the card (the first of duplicate ids)."""
    skills: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for index, skill in enumerate(_as_list(card.get("skills"))):
        if isinstance(skill, Mapping):
            skill_id = _string(skill.get("id"))
            if skill_id is not None:
                skills.setdefault(skill_id, (index, skill))
    return skills


def _skill_modes(
    skill_id: str,
    index: int,
    old_skill: Mapping[str, Any],
    new_skill: Mapping[str, Any],
    old_card: Mapping[str, Any],
    new_card: Mapping[str, Any],
) -> list[FieldIssue]:
    """A kept skill's modes narrowed; a skill without its own modes takes the card's defaults."""
    found: list[FieldIssue] = []
    for own, default, direction in _MODES:
        if own not in old_skill and own not in new_skill:
            continue  # both follow the defaults, which are compared once for the whole card
        before = _strings(old_skill[own] if own in old_skill else old_card.get(default))
        after = _strings(new_skill[own] if own in new_skill else new_card.get(default))
        verb = "accepts" if direction == "input" else "produces"
        found.extend(
            FieldIssue(
                f"{CARD}/skills/{index}/{own}",
                f"skill {skill_id!r} no longer {verb} {direction} mode {mode!r}",
            )
            for mode in _lost(before, after)
        )
    return found


# --- MCP servers (server.json) -------------------------------------------------------------------------


def _mcp_server(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldIssue]:
    found: list[FieldIssue] = []
    new_packages = _packages(new)
    for key, (_, package) in _packages(old).items():
        label = f"package {key[0]} {key[1]!r}"
        if key not in new_packages:
            found.append(FieldIssue("/spec/packages", f"{label} was removed"))
            continue
        index, kept = new_packages[key]
        before, after = _transport_type(package), _transport_type(kept)
        if before is not None and before != after:
            found.append(
                FieldIssue(
                    f"/spec/packages/{index}/transport/type",
                    f"{label} changed its transport from {before} to {after or 'none'}",
                )
            )
    new_remotes = _remotes(new)
    found.extend(
        FieldIssue("/spec/remotes", f"remote {kind} {url!r} was removed")
        for kind, url in _remotes(old)
        if (kind, url) not in new_remotes
    )
    found.extend(FieldIssue(TOOLS, f"tool {name!r} was removed") for name in _lost(_tools(old), _tools(new)))
    return found


def _packages(spec: Mapping[str, Any]) -> dict[tuple[str, str], tuple[int, Mapping[str, Any]]]:
    """Packages by (registry type, identifier); schema 2025-07-09 spells it ``registry_type``."""
    packages: dict[tuple[str, str], tuple[int, Mapping[str, Any]]] = {}
    for index, package in enumerate(_as_list(spec.get("packages"))):
        if not isinstance(package, Mapping):
            continue
        registry = _string(package.get("registryType", package.get("registry_type")))
        identifier = _string(package.get("identifier"))
        if registry is not None and identifier is not None:
            packages.setdefault((registry, identifier), (index, package))
    return packages


def _transport_type(package: Mapping[str, Any]) -> str | None:
    return _string(_object(package.get("transport")).get("type"))


def _remotes(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    remotes: list[tuple[str, str]] = []
    for remote in _objects(spec.get("remotes")):
        kind, url = _string(remote.get("type")), _string(remote.get("url"))
        if kind is not None and url is not None and (kind, url) not in remotes:
            remotes.append((kind, url))
    return remotes


def _tools(spec: Mapping[str, Any]) -> list[str]:
    """Declared tool names: ``{"name": ...}`` objects (or bare names) in the publisher-provided ``tools``."""
    provided = _object(_object(spec.get("_meta")).get(PUBLISHER_PROVIDED))
    names: list[str] = []
    for tool in _as_list(provided.get("tools")):
        name = _string(tool.get("name")) if isinstance(tool, Mapping) else _string(tool)
        if name is not None:
            names.append(name)
    return names


# --- models --------------------------------------------------------------------------------------------


def _model(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldIssue]:
    return [
        FieldIssue(f"/spec/{field}", f"{field} changed from {old[field]!r} to {new.get(field)!r}")
        for field in ("provider", "model")
        if old.get(field) is not None and old.get(field) != new.get(field)
    ]


# --- reading any shape ----------------------------------------------------------------------------------


def _lost(before: Iterable[str], after: Iterable[str]) -> list[str]:
    """What ``before`` had that ``after`` lacks, in ``before``'s order, once each."""
    kept = set(after)
    return list(dict.fromkeys(item for item in before if item not in kept))


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _objects(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in _as_list(value) if isinstance(item, Mapping)]


def _strings(value: Any) -> list[str]:
    return [item for item in _as_list(value) if isinstance(item, str)]


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None
