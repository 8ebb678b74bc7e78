"""Selectors, aliases and an agent's active config, on both databases."""

from __future__ import annotations

import pytest

from agentreg.domain.errors import Invalid, NotFound, PreconditionFailed, Unresolved
from agentreg.domain.kinds import Kind
from agentreg.domain.principals import ANONYMOUS as ME
from agentreg.services import aliases, resolve, selection
from agentreg.services.publish import publish
from agentreg.store.interface import AuditQuery
from agentreg.store.sql import SqlStore
from tests import factories as f


async def publish_all(store: SqlStore, *documents: dict[str, object]) -> None:
    for document in documents:
        await publish(store, ME, document)


async def test_selectors_pick_the_right_version(store: SqlStore) -> None:
    await publish_all(
        store, *(f.skill(version=v) for v in ["1.0.0", "1.2.0", "1.2.7", "2.0.0-rc.1", "1.3.0-beta.1"])
    )
    pick = lambda s: selection.get_version(store, ME, Kind.SKILL, "com.acme", "triage", s)  # noqa: E731
    assert (await pick("latest")).version.version == "1.2.7"
    assert (await pick("~1.2.0")).version.version == "1.2.7"
    assert (await pick("1.0.0")).version.version == "1.0.0"
    assert (await pick(">=2.0.0-rc.0")).version.version == "2.0.0-rc.1"
    with pytest.raises(NotFound, match="no version"):
        await pick("^3")


async def test_alias_moves_and_respects_if_match(store: SqlStore) -> None:
    await publish_all(store, f.skill(version="1.0.0"), f.skill(version="1.1.0"))
    await aliases.set_alias(store, ME, Kind.SKILL, "com.acme", "triage", "stable", "1.0.0")
    assert (
        await selection.get_version(store, ME, Kind.SKILL, "com.acme", "triage", "stable")
    ).version.version == "1.0.0"
    with pytest.raises(PreconditionFailed):
        await aliases.set_alias(
            store, ME, Kind.SKILL, "com.acme", "triage", "stable", "1.1.0", if_match="0.9.0"
        )
    await aliases.set_alias(store, ME, Kind.SKILL, "com.acme", "triage", "stable", "1.1.0", if_match="1.0.0")
    assert (
        await selection.get_version(store, ME, Kind.SKILL, "com.acme", "triage", "stable")
    ).version.version == "1.1.0"
    await aliases.delete_alias(store, ME, Kind.SKILL, "com.acme", "triage", "stable")
    with pytest.raises(NotFound):
        await selection.get_version(store, ME, Kind.SKILL, "com.acme", "triage", "stable")
    async with store.read() as tx:
        actions = [e.event.action for e in await tx.list_audit(AuditQuery("default", limit=10))]
    assert actions == ["version.publish", "version.publish", "alias.set", "alias.set", "alias.delete"]


@pytest.mark.parametrize("version", ["^1.0", "latest", "stable"])
async def test_alias_must_point_at_an_exact_version(store: SqlStore, version: str) -> None:
    await publish_all(store, f.skill())
    with pytest.raises(Invalid):
        await aliases.set_alias(store, ME, Kind.SKILL, "com.acme", "triage", "stable", version)


async def test_active_config_resolves_every_ref_and_nested_agents(store: SqlStore) -> None:
    sub = f.agent("helper", config={"skills": [{"ref": "com.acme/triage@^1"}]})
    main = f.agent(
        config={
            "model": {"ref": "com.acme/llama@1.x"},
            "mcpServers": [{"ref": "com.acme/github@stable"}],
            "agents": [{"ref": "com.acme/helper"}],
        }
    )
    await publish_all(
        store, f.model(), f.mcp_server(version="1.0.0"), f.mcp_server(version="1.1.0"), f.skill(), sub, main
    )
    await aliases.set_alias(store, ME, Kind.MCP_SERVER, "com.acme", "github", "stable", "1.0.0")
    view = await resolve.resolve_agent(store, ME, "com.acme", "support-bot", "latest")
    got = [(d.field, d.view.resource.name, d.view.version.version) for d in view.dependencies]
    assert got == [
        ("/spec/config/model/ref", "llama", "1.0.0"),
        ("/spec/config/mcpServers/0/ref", "github", "1.0.0"),
        ("/spec/config/agents/0/ref", "helper", "1.0.0"),
    ]
    assert [(d.field, d.view.resource.name) for d in view.dependencies[2].dependencies] == [
        ("/spec/config/skills/0/ref", "triage")
    ]


async def test_active_config_reports_the_ref_that_does_not_resolve(store: SqlStore) -> None:
    await publish_all(store, f.agent(config={"mcpServers": [{"ref": "com.acme/github@stable"}]}))
    with pytest.raises(Unresolved) as caught:
        await resolve.resolve_agent(store, ME, "com.acme", "support-bot", "1.0.0")
    assert caught.value.details[0].field == "/spec/config/mcpServers/0/ref"


async def test_agent_cycles_terminate(store: SqlStore) -> None:
    a = f.agent("a", config={"agents": [{"ref": "com.acme/b"}]})
    b = f.agent("b", config={"agents": [{"ref": "com.acme/a"}]})
    await publish_all(store, a, b)
    view = await resolve.resolve_agent(store, ME, "com.acme", "a", "latest")
    assert view.dependencies[0].view.resource.name == "b"
    assert view.dependencies[0].dependencies[0].view.resource.name == "a"
    assert view.dependencies[0].dependencies[0].dependencies == ()


async def test_batch_resolution_reports_each_ref(store: SqlStore) -> None:
    await publish_all(store, f.skill())
    results = await resolve.resolve_refs(
        store, ME, ["skill/com.acme/triage@^1", "skill/com.acme/nope", "com.acme/triage"]
    )
    assert results[0].view is not None and results[0].view.version.version == "1.0.0"
    assert isinstance(results[1].error, NotFound)
    assert isinstance(results[2].error, Invalid)


async def test_fan_out_is_bounded_instead_of_growing_exponentially(store: SqlStore) -> None:
    # d0 -> d1 (x4) -> d2 (x4) -> ... : 4^depth refs if expanded naively.
    for level in reversed(range(6)):
        config = {"agents": [{"ref": f"com.acme/d{level + 1}"}] * 4} if level < 5 else None
        await publish(store, ME, f.agent(f"d{level}", config=config))
    with pytest.raises(Unresolved, match="more than 200"):
        await resolve.resolve_agent(store, ME, "com.acme", "d0", "latest")
    small = await resolve.resolve_agent(store, ME, "com.acme", "d3", "latest")
    assert len(small.dependencies) == 4 and len(small.dependencies[0].dependencies) == 4
