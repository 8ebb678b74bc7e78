"""Resolving refs: an agent's active config (every ref in its config pinned to a version) and batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentreg.domain.errors import AgentRegError, FieldIssue, Invalid, NotFound, Unresolved
from agentreg.domain.kinds import Kind
from agentreg.domain.names import Ref, parse_ref
from agentreg.domain.principals import Principal
from agentreg.domain.specs import config_refs
from agentreg.services.access import readers
from agentreg.services.catalog import request_selector
from agentreg.services.selection import Reading, view_version
from agentreg.services.views import Dependency, ResolvedView, VersionView
from agentreg.store.interface import Store, Tx

# Sub-agents are resolved recursively. Depth bounds chains; the node count bounds fan-out (agents that
# each reference the next several times would otherwise grow the answer exponentially).
MAX_DEPTH = 8
MAX_NODES = 200


async def resolve_agent(
    store: Store,
    actor: Principal,
    namespace: str,
    name: str,
    selector_text: str,
    reading: Reading | None = None,
) -> ResolvedView:
    """The agent's version and every ref in its config, each resolved as ``reading`` says (its environment:
    the active config of the agent there)."""
    selector = request_selector(selector_text)
    reading = reading or Reading()
    async with store.read(readers=readers(actor)) as tx:
        root = await view_version(tx, actor, Kind.AGENT, namespace, name, selector, reading)
        walk = _Walk(tx, actor, reading)
        dependencies = await walk.dependencies(root, visiting=frozenset({_key(root)}), depth=0)
    return ResolvedView(root, dependencies)


def _key(view: VersionView) -> tuple[str, str, str, str]:
    r = view.resource
    return (r.kind, r.namespace, r.name, view.version.version)


class _Walk:
    """One resolution: each ref is looked up once, and the answer has at most MAX_NODES dependencies."""

    def __init__(self, tx: Tx, actor: Principal, reading: Reading) -> None:
        self.tx = tx
        self.actor = actor
        self.reading = reading
        self.seen: dict[str, VersionView] = {}
        self.nodes = 0

    async def view(self, ref: Ref) -> VersionView:
        key = str(ref)
        if key not in self.seen:
            assert ref.kind is not None
            self.seen[key] = await view_version(
                self.tx, self.actor, ref.kind, ref.namespace, ref.name, ref.selector, self.reading
            )
        return self.seen[key]

    async def dependencies(
        self, view: VersionView, *, visiting: frozenset[tuple[str, str, str, str]], depth: int
    ) -> tuple[Dependency, ...]:
        if view.kind != Kind.AGENT:
            return ()
        found: list[Dependency] = []
        for at, ref in config_refs(view.document["spec"].get("config")):
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise Unresolved(
                    f"the active config has more than {MAX_NODES} resolved refs (counting repeats in nested agents)",
                    [FieldIssue(at, "too many refs to resolve in one answer")],
                )
            try:
                target = await self.view(ref)
            except NotFound as exc:
                r = view.resource
                owner = f"{r.kind}/{r.namespace}/{r.name}@{view.version.version}"
                raise Unresolved(
                    f"{owner}: {at} cannot be resolved: {exc.message}", [FieldIssue(at, exc.message)]
                ) from None
            nested: tuple[Dependency, ...] = ()
            key = _key(target)
            if key not in visiting and depth < MAX_DEPTH:
                nested = await self.dependencies(target, visiting=visiting | {key}, depth=depth + 1)
            found.append(Dependency(field=at, ref=str(ref), view=target, dependencies=nested))
        return tuple(found)


@dataclass(frozen=True, slots=True)
class RefResolution:
    ref: str
    view: VersionView | None = None
    error: AgentRegError | None = None


MAX_BATCH = 200


async def resolve_refs(store: Store, actor: Principal, refs: Sequence[str]) -> list[RefResolution]:
    """Resolve up to 200 refs (each ``kind/namespace/name[@selector]``) in one read transaction."""
    if len(refs) > MAX_BATCH:
        raise Invalid.at("/refs", f"at most {MAX_BATCH} refs per request")
    results: list[RefResolution] = []
    reading = Reading()
    async with store.read(readers=readers(actor)) as tx:
        for i, text in enumerate(refs):
            try:
                ref = _with_kind(parse_ref(text, f"/refs/{i}"), i)
                view = await view_version(
                    tx, actor, ref.kind or Kind.AGENT, ref.namespace, ref.name, ref.selector, reading
                )
            except AgentRegError as exc:
                results.append(RefResolution(text, error=exc))
                continue
            results.append(RefResolution(text, view=view))
    return results


def _with_kind(ref: Ref, index: int) -> Ref:
    if ref.kind is None:
        raise Invalid.at(
            f"/refs/{index}", "a ref here must start with its kind, e.g. agent/com.acme/bot@stable"
        )
    return ref
