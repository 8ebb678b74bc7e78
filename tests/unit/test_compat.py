"""Compatibility rules: which changes between two versions break consumers, and version bumps.

Examples name each rule; hypothesis checks the properties: a document is compatible with itself, adding
never breaks, and removing any skill (or package, remote, tool) always does.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentreg.domain.compat import (
    PUBLISHER_PROVIDED,
    TOOLS,
    breaking_changes,
    change_bump,
    needs_major,
    required_bump,
)
from agentreg.domain.documents import parse_document
from agentreg.domain.errors import FieldIssue
from agentreg.domain.kinds import Kind
from tests import factories as f


def issues(kind: Kind, old: dict[str, Any], new: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i.field, i.issue) for i in breaking_changes(kind, old, new)}


def card_agent(card: dict[str, Any], version: str = "1.0.0") -> dict[str, Any]:
    return f.agent(version=version, card={**card, "version": version})


# --- agents ------------------------------------------------------------------------------------------------


def test_the_fixtures_are_valid_documents() -> None:
    for document in (card_agent(f.card_03()), card_agent(f.card_10()), f.mcp_server(), f.model()):
        parse_document(document)


def test_removing_a_skill_breaks_and_names_it_in_the_old_path() -> None:
    old = card_agent(f.card_03(skills=[skill("answer"), skill("search")]))
    new = f.with_(old, "/spec/card/skills/1", ...)
    assert issues(Kind.AGENT, old, new) == {("/spec/card/skills", "skill 'search' was removed")}


def test_adding_a_skill_or_a_mode_does_not_break() -> None:
    old = card_agent(f.card_03())
    new = f.with_(old, "/spec/card/skills", [*old["spec"]["card"]["skills"], skill("search")])
    new = f.with_(new, "/spec/card/defaultInputModes", ["text/plain", "application/json"])
    assert breaking_changes(Kind.AGENT, old, new) == []


def test_changing_the_url_of_a_03_card_breaks() -> None:
    old = card_agent(f.card_03())
    new = f.with_(old, "/spec/card/url", "https://agents.example/v2")
    assert issues(Kind.AGENT, old, new) == {
        (
            "/spec/card/url",
            "the endpoint URL changed from 'https://agents.example/support' to 'https://agents.example/v2'",
        )
    }


def test_losing_an_interface_url_of_a_10_card_breaks() -> None:
    second = {"url": "https://agents.example/rest", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"}
    old_card = f.card_10()
    old_card["supportedInterfaces"].append(second)
    old = card_agent(old_card)
    new = f.with_(old, "/spec/card/supportedInterfaces/1", ...)
    assert issues(Kind.AGENT, old, new) == {
        ("/spec/card/supportedInterfaces", "endpoint URL 'https://agents.example/rest' was removed")
    }
    # Changing an interface's binding but keeping its URL is not an endpoint change.
    rebound = f.with_(old, "/spec/card/supportedInterfaces/1/protocolBinding", "GRPC")
    assert issues(Kind.AGENT, old, rebound) == set()


def test_losing_an_additional_interface_of_a_03_card_breaks() -> None:
    extra = [{"url": "https://agents.example/grpc", "transport": "GRPC"}]
    old = card_agent(f.card_03(additionalInterfaces=extra))
    new = f.with_(old, "/spec/card/additionalInterfaces", ...)
    assert issues(Kind.AGENT, old, new) == {
        ("/spec/card/additionalInterfaces", "endpoint URL 'https://agents.example/grpc' was removed")
    }


def test_moving_a_card_from_03_to_10_keeping_its_url_does_not_break() -> None:
    old = card_agent(f.card_03())
    interface = {"url": old["spec"]["card"]["url"], "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    new_card = {k: v for k, v in f.card_03().items() if k != "url"}
    new = card_agent({**new_card, "protocolVersion": "1.0", "supportedInterfaces": [interface]})
    parse_document(new)
    assert breaking_changes(Kind.AGENT, old, new) == []
    # ... but to another URL it does, at the old card's url.
    moved = f.with_(new, "/spec/card/supportedInterfaces/0/url", "https://elsewhere.example/a2a")
    assert issues(Kind.AGENT, old, moved) == {
        ("/spec/card/url", "endpoint URL 'https://agents.example/support' was removed")
    }


def test_narrowing_default_modes_breaks() -> None:
    old = card_agent(f.card_03(defaultOutputModes=["text/plain", "application/json"]))
    new = f.with_(old, "/spec/card/defaultOutputModes", ["text/plain"])
    new = f.with_(new, "/spec/card/defaultInputModes", ["application/json"])
    assert issues(Kind.AGENT, old, new) == {
        ("/spec/card/defaultOutputModes", "default output mode 'application/json' was removed"),
        ("/spec/card/defaultInputModes", "default input mode 'text/plain' was removed"),
    }


def test_narrowing_a_kept_skills_modes_breaks_at_the_skill_in_the_new_document() -> None:
    old = card_agent(f.card_03(skills=[skill("a"), skill("b", inputModes=["text/plain", "image/png"])]))
    new = f.with_(old, "/spec/card/skills", [skill("b", inputModes=["text/plain"]), skill("a")])
    assert issues(Kind.AGENT, old, new) == {
        ("/spec/card/skills/0/inputModes", "skill 'b' no longer accepts input mode 'image/png'")
    }


def test_a_skill_dropping_its_own_modes_falls_back_to_the_defaults() -> None:
    old = card_agent(f.card_03(skills=[skill("a", outputModes=["text/plain", "text/html"])]))
    new = f.with_(old, "/spec/card/skills/0/outputModes", ...)  # now the defaults: text/plain only
    assert issues(Kind.AGENT, old, new) == {
        ("/spec/card/skills/0/outputModes", "skill 'a' no longer produces output mode 'text/html'")
    }
    widened = f.with_(old, "/spec/card/defaultOutputModes", ["text/plain", "text/html"])
    assert issues(Kind.AGENT, old, f.with_(widened, "/spec/card/skills/0/outputModes", ...)) == set()


def test_narrowed_defaults_are_reported_once_not_per_skill() -> None:
    old = card_agent(f.card_03(skills=[skill("a"), skill("b")]))
    new = f.with_(old, "/spec/card/defaultInputModes", [])
    assert len(breaking_changes(Kind.AGENT, old, new)) == 1


# --- MCP servers -------------------------------------------------------------------------------------------


def package(identifier: str, registry: str = "npm", transport: str = "stdio") -> dict[str, Any]:
    return {"registryType": registry, "identifier": identifier, "transport": {"type": transport}}


def remote(url: str, kind: str = "streamable-http") -> dict[str, Any]:
    return {"type": kind, "url": url}


def tools(*names: str) -> dict[str, Any]:
    return {PUBLISHER_PROVIDED: {"tools": [{"name": n, "description": n} for n in names]}}


def test_tools_live_in_the_publisher_provided_meta_of_server_json() -> None:
    assert PUBLISHER_PROVIDED == "io.modelcontextprotocol.registry/publisher-provided"
    assert TOOLS == "/spec/_meta/io.modelcontextprotocol.registry~1publisher-provided/tools"
    parse_document(f.mcp_server(_meta=tools("search")))


def test_removing_a_package_remote_or_tool_breaks() -> None:
    old = f.mcp_server(
        packages=[package("@acme/github"), package("acme-github", "pypi")],
        remotes=[remote("https://mcp.acme.example/mcp"), remote("https://mcp.acme.example/sse", "sse")],
        _meta=tools("search", "create_issue"),
    )
    parse_document(old)
    new = f.mcp_server(
        packages=[package("acme-github", "pypi")],
        remotes=[remote("https://mcp.acme.example/mcp")],
        _meta=tools("create_issue", "close_issue"),
    )
    assert issues(Kind.MCP_SERVER, old, new) == {
        ("/spec/packages", "package npm '@acme/github' was removed"),
        ("/spec/remotes", "remote sse 'https://mcp.acme.example/sse' was removed"),
        (TOOLS, "tool 'search' was removed"),
    }


def test_a_remote_is_its_type_and_url() -> None:
    old = f.mcp_server(remotes=[remote("https://mcp.acme.example/mcp")])
    new = f.mcp_server(remotes=[remote("https://mcp.acme.example/mcp", "sse")])
    assert issues(Kind.MCP_SERVER, old, new) == {
        ("/spec/remotes", "remote streamable-http 'https://mcp.acme.example/mcp' was removed")
    }


def test_changing_a_kept_packages_transport_breaks_at_its_new_index() -> None:
    old = f.mcp_server(packages=[package("a"), package("b")])
    new = f.mcp_server(packages=[package("b", transport="streamable-http"), package("a")])
    assert issues(Kind.MCP_SERVER, old, new) == {
        (
            "/spec/packages/0/transport/type",
            "package npm 'b' changed its transport from stdio to streamable-http",
        )
    }


def test_a_package_version_bump_does_not_break() -> None:
    assert (
        breaking_changes(Kind.MCP_SERVER, f.mcp_server(version="1.0.0"), f.mcp_server(version="1.1.0")) == []
    )


def test_the_2025_07_09_snake_case_package_spelling_is_read() -> None:
    old = f.mcp_server(packages=[{"registry_type": "npm", "identifier": "x", "transport": {"type": "stdio"}}])
    new = f.mcp_server(packages=[])
    assert issues(Kind.MCP_SERVER, old, new) == {("/spec/packages", "package npm 'x' was removed")}


# --- models and skills -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [("provider", "openai"), ("model", "meta-llama/Llama-3-70B")])
def test_changing_a_models_provider_or_model_breaks(field: str, value: str) -> None:
    old = f.model()
    new = f.with_(old, f"/spec/{field}", value)
    assert [i.field for i in breaking_changes(Kind.MODEL, old, new)] == [f"/spec/{field}"]
    assert (
        breaking_changes(Kind.MODEL, old, f.with_(old, "/spec/endpoint/baseUrl", "https://x.example")) == []
    )


def test_skills_never_break() -> None:
    old = f.skill()
    assert breaking_changes(Kind.SKILL, old, f.with_(old, "/spec/instructions", "Something else.")) == []


def test_malformed_documents_compare_as_empty_rather_than_fail() -> None:
    for kind in Kind:
        assert breaking_changes(kind, {}, {"spec": [1, 2]}) == []
        assert breaking_changes(kind, {"spec": {"card": "x", "packages": {}}}, {}) == []


# --- bumps -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "bump"),
    [
        ("1.2.3", "2.0.0", "major"),
        ("1.2.3", "1.3.0", "minor"),
        ("1.2.3", "1.2.4", "patch"),
        ("1.2.3-rc.1", "1.2.3", "patch"),
        ("1.2.3", "1.2.3+build.7", "none"),
        ("1.2.3", "1.2.3", "none"),
        ("2.0.0", "1.9.0", "none"),
        ("1.2.3", "20240101", "none"),
        ("0.3.0", "0.4.0", "minor"),
    ],
)
def test_required_bump_is_the_bump_the_version_number_makes(old: str, new: str, bump: str) -> None:
    assert required_bump(old, new) == bump


def test_needs_major_when_both_share_a_major() -> None:
    assert needs_major("1.2.0", "1.3.0")
    assert needs_major("2.0.0-rc.1", "2.0.0")
    assert not needs_major("1.2.0", "2.0.0")
    assert not needs_major("1.2.0", "latest-build")


def test_change_bump_is_major_for_breaking_minor_for_additions_patch_otherwise() -> None:
    old = card_agent(f.card_03())
    added = f.with_(old, "/spec/card/skills", [*old["spec"]["card"]["skills"], skill("more")])
    reworded = f.with_(old, "/spec/card/description", "Answers questions politely")
    assert change_bump(Kind.AGENT, old, f.with_(old, "/spec/card/skills", [])) == "major"
    assert change_bump(Kind.AGENT, old, added) == "minor"
    assert change_bump(Kind.AGENT, old, reworded) == "patch"
    assert change_bump(Kind.AGENT, old, copy.deepcopy(old)) == "none"


# --- properties --------------------------------------------------------------------------------------------

names = st.text(alphabet="abcdefghij-", min_size=1, max_size=6)
modes = st.lists(st.sampled_from(["text/plain", "application/json", "image/png", "audio/wav"]), unique=True)
urls = names.map(lambda n: f"https://agents.example/{n}")


def skill(skill_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": skill_id, "name": skill_id, "description": skill_id, "tags": ["t"], **extra}


@st.composite
def skills(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(names, unique=True, max_size=5))
    result = []
    for skill_id in ids:
        extra = {}
        for key in ("inputModes", "outputModes"):
            if draw(st.booleans()):
                extra[key] = draw(modes)
        result.append(skill(skill_id, **extra))
    return result


@st.composite
def cards(draw: st.DrawFn) -> dict[str, Any]:
    card: dict[str, Any] = {
        "name": "Bot",
        "description": "d",
        "version": "1.0.0",
        "capabilities": {},
        "defaultInputModes": draw(modes),
        "defaultOutputModes": draw(modes),
        "skills": draw(skills()),
    }
    if draw(st.booleans()):
        card["url"] = draw(urls)
        interfaces = draw(st.lists(urls, unique=True, max_size=3))
        card["additionalInterfaces"] = [{"url": u, "transport": "JSONRPC"} for u in interfaces]
    else:
        interfaces = draw(st.lists(urls, unique=True, min_size=1, max_size=3))
        card["supportedInterfaces"] = [{"url": u, "protocolBinding": "JSONRPC"} for u in interfaces]
    return {"spec": {"card": card}}


@st.composite
def servers(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.tuples(st.sampled_from(["npm", "pypi", "oci"]), names), unique=True, max_size=4))
    transports = st.sampled_from(["stdio", "streamable-http", "sse"])
    spec: dict[str, Any] = {
        "packages": [package(identifier, registry, draw(transports)) for registry, identifier in keys],
        "remotes": [
            remote(u, draw(st.sampled_from(["sse", "streamable-http"]))) for u in draw(st.lists(urls))
        ],
        "_meta": tools(*draw(st.lists(names, unique=True, max_size=4))),
    }
    return {"spec": spec}


def grown(document: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """``document`` with more of everything: skills, modes, interfaces, packages, remotes, tools."""
    new = copy.deepcopy(document)
    spec = new["spec"]
    if "card" in spec:
        card = spec["card"]
        known = {s["id"] for s in card["skills"]}
        card["skills"] += [skill(n) for n in data.draw(st.lists(names, unique=True)) if n not in known]
        for key in ("defaultInputModes", "defaultOutputModes"):
            card[key] += [m for m in data.draw(modes) if m not in card[key]]
        for each in card["skills"]:
            for key in ("inputModes", "outputModes"):
                if key in each:
                    each[key] += [m for m in data.draw(modes) if m not in each[key]]
        field = "supportedInterfaces" if "supportedInterfaces" in card else "additionalInterfaces"
        card[field] += [{"url": u, "transport": "JSONRPC"} for u in data.draw(st.lists(urls, max_size=2))]
    else:
        spec["packages"] += [package(n, "cargo") for n in data.draw(st.lists(names, unique=True, max_size=2))]
        spec["remotes"] += [remote(u) for u in data.draw(st.lists(urls, max_size=2))]
        spec["_meta"][PUBLISHER_PROVIDED]["tools"] += [{"name": n} for n in data.draw(st.lists(names))]
    return new


documents = st.one_of(cards().map(lambda d: (Kind.AGENT, d)), servers().map(lambda d: (Kind.MCP_SERVER, d)))


@given(documents)
def test_a_document_never_breaks_itself(item: tuple[Kind, dict[str, Any]]) -> None:
    kind, document = item
    assert breaking_changes(kind, document, copy.deepcopy(document)) == []
    assert change_bump(kind, document, copy.deepcopy(document)) == "none"


@given(documents, st.data())
def test_adding_never_breaks(item: tuple[Kind, dict[str, Any]], data: st.DataObject) -> None:
    kind, document = item
    assert breaking_changes(kind, document, grown(document, data)) == []


@given(cards(), st.data())
def test_removing_any_skill_always_breaks(document: dict[str, Any], data: st.DataObject) -> None:
    card_skills = document["spec"]["card"]["skills"]
    if not card_skills:
        return
    index = data.draw(st.integers(0, len(card_skills) - 1))
    removed = card_skills[index]["id"]
    new = grown(document, data)  # everything else may grow meanwhile
    new["spec"]["card"]["skills"] = [s for s in new["spec"]["card"]["skills"] if s["id"] != removed]
    assert FieldIssue("/spec/card/skills", f"skill {removed!r} was removed") in breaking_changes(
        Kind.AGENT, document, new
    )
    assert change_bump(Kind.AGENT, document, new) == "major"


@given(servers(), st.data())
def test_removing_any_package_remote_or_tool_always_breaks(
    document: dict[str, Any], data: st.DataObject
) -> None:
    spec = document["spec"]
    parts = [
        ("/spec/packages", len(spec["packages"])),
        ("/spec/remotes", len(spec["remotes"])),
        (TOOLS, len(spec["_meta"][PUBLISHER_PROVIDED]["tools"])),
    ]
    choices = [(at, i) for at, n in parts for i in range(n)]
    if not choices:
        return
    at, index = data.draw(st.sampled_from(choices))
    lists = {
        "/spec/packages": spec["packages"],
        "/spec/remotes": spec["remotes"],
        TOOLS: spec["_meta"][PUBLISHER_PROVIDED]["tools"],
    }
    gone = lists[at][index]
    new = copy.deepcopy(document)
    new_lists = {
        "/spec/packages": new["spec"]["packages"],
        "/spec/remotes": new["spec"]["remotes"],
        TOOLS: new["spec"]["_meta"][PUBLISHER_PROVIDED]["tools"],
    }
    # Remove every entry with the same key (a duplicate remote would keep it alive).
    new_lists[at][:] = [entry for entry in new_lists[at] if _key(at, entry) != _key(at, gone)]
    assert at in {i.field for i in breaking_changes(Kind.MCP_SERVER, document, new)}


def _key(at: str, entry: dict[str, Any]) -> tuple[str, ...]:
    if at == "/spec/packages":
        return (entry["registryType"], entry["identifier"])
    if at == "/spec/remotes":
        return (entry["type"], entry["url"])
    return (entry["name"],)
