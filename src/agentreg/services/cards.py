"""Keeps the A2A cards of discovered agents fetched, verified and recorded on their inventory rows.

The discovery runner hands every observation it applied to ``CardSync.observe`` and the keys it removed to
``forget``; ``run`` does the fetching in the background and reports through the source's sink
(``Sink.enrich``: ``extra.card``, ``extra.conditions``, ``extra.identity``, and the card's name and version as
the row's claim, which links it to a published version).

- A card is fetched when an agent is first seen and again after a rollout (``Observation.revision``
  changed), an endpoint change or a new held card; then every ``cardInterval`` of its source. A failure is
  retried sooner, backing off from 5 s up to that interval, and never erases what was learned: the previous
  card stays, with ``CardSynced=False`` saying why.
- At most ``concurrency`` fetches run at once, each bounded to 10 s (card, fallback and JWKS together).
- An agent whose runtime already holds its card (``extra.heldCard``, kagenti ``status.card``) is judged from
  that card, without fetching it.
- A row is written only when what it records changes (``fetchedAt`` is when this content was first
  fetched), so an unchanged fleet costs no writes.

The binding an agent's identity is checked against comes from its observation: ``extra.identityBinding``
(the kagenti AgentCard that targets the workload, ``spec.identityBinding``), ``extra.runtimeIdentity`` (its
AgentRuntime's ``spec.identity``), or the object's own spec when it is that AgentCard or AgentRuntime; then
the source's ``identity``. See ``agentreg.sources.cards``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from agentreg.domain.inventory import Claim, Condition, ObjectKey, Observation, merge_conditions
from agentreg.domain.kinds import Kind
from agentreg.domain.sources import SourceConfig
from agentreg.services import clock
from agentreg.services.fetcher import Fetcher
from agentreg.sources import cards

log = logging.getLogger(__name__)
CONCURRENCY = 16
RETRY_S = 5.0
KAGENTI = "agent.kagenti.dev"


class Sink(Protocol):
    """What CardSync needs of a discovery sink (``agentreg.sources.base.Sink`` has it)."""

    async def enrich(self, key: ObjectKey, extra: Mapping[str, Any], claim: Claim | None = None) -> None: ...


@dataclass
class _Source:
    config: SourceConfig
    fetcher: Fetcher | None
    keyring: cards.Keyring
    problem: str | None = None  # why no fetcher could be made (an unreadable client certificate)


@dataclass(eq=False)
class _Entry:
    source: str
    key: ObjectKey
    endpoint: str | None
    held: Mapping[str, Any] | None
    binding: cards.Binding | None
    revision: str
    due: float
    generation: int = 0  # bumped by every change that calls for a fresh fetch
    report: bool = False  # the row lost what we recorded (re-emitted by its source): write it again
    running: bool = False
    failures: int = 0
    card: dict[str, Any] | None = None  # extra.card
    conditions: tuple[Condition, ...] = ()
    identity: dict[str, Any] | None = None
    claim: Claim | None = None
    observed: str = ""  # the observation's digest, to notice the source re-emitting it
    reported: str | None = None  # digest of the last extra written

    def extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "conditions": [c.to_json() for c in self.conditions],
            "identity": self.identity,
        }
        if self.card is not None:
            extra["card"] = self.card
        return extra


@dataclass
class CardSync:
    """The card scheduler for every source of this process (one per discovery leader)."""

    fetcher: Fetcher
    concurrency: int = CONCURRENCY
    timeout_s: float = cards.FETCH_TIMEOUT_S
    retry_s: float = RETRY_S
    monotonic: Callable[[], float] = time.monotonic
    _sources: dict[str, _Source] = field(default_factory=dict)
    _entries: dict[tuple[str, ObjectKey], _Entry] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    # --- what the discovery runner calls ------------------------------------------------------------------

    def observe(self, config: SourceConfig, observations: Sequence[Observation]) -> None:
        """Observations a source reported and the reconciler applied (a snapshot or a delta)."""
        self._source(config)
        now = self.monotonic()
        for observation in observations:
            at = (config.name, observation.key)
            entry = self._entries.get(at)
            held = _held(observation)
            fetchable = observation.endpoint is not None and observation.catalog_kind is Kind.AGENT
            if not config.card_discovery or (held is None and not fetchable):
                self._entries.pop(at, None)
                continue
            endpoint = None if held is not None else observation.endpoint
            binding = _binding(observation, held, config)
            observed = observation.digest()
            if entry is None:
                entry = _Entry(
                    config.name, observation.key, endpoint, held, binding, observation.revision, now
                )
                _seed(entry, observation.extra)
                self._entries[at] = entry
            elif (
                entry.revision != observation.revision
                or entry.endpoint != endpoint
                or _digest(entry.held) != _digest(held)
                or entry.binding != binding
            ):
                entry.endpoint, entry.held, entry.binding = endpoint, held, binding
                entry.revision, entry.due, entry.failures = observation.revision, now, 0
                entry.generation += 1
            elif entry.observed != observed and entry.reported is not None:
                entry.report = True
            entry.observed = observed
        self._wake.set()

    def forget(self, config: SourceConfig, keys: Sequence[ObjectKey]) -> None:
        for key in keys:
            self._entries.pop((config.name, key), None)

    def stop_source(self, name: str) -> None:
        self._sources.pop(name, None)
        for at in [at for at in self._entries if at[0] == name]:
            del self._entries[at]

    async def run(self, sink_for: Callable[[str], Sink | None]) -> None:
        """Fetch what is due, for ever; cancel to stop."""
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                for entry in self._due(self.concurrency - len(running)):
                    running.add(asyncio.create_task(self._work(entry, sink_for)))
                self._wake.clear()
                waker = asyncio.create_task(self._wake.wait())
                # With every slot busy only a finished fetch (or a wake) can start more: no timeout, or the
                # loop would spin while entries wait for a slot.
                idle = None if len(running) >= self.concurrency else self._idle()
                done, _ = await asyncio.wait({*running, waker}, timeout=idle, return_when="FIRST_COMPLETED")
                waker.cancel()
                running -= done
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def run_once(self, sink_for: Callable[[str], Sink | None]) -> int:
        """Do everything due now and wait for it; the number of agents handled (tests and ``sync``)."""
        handled = 0
        while batch := self._due(self.concurrency):
            await asyncio.gather(*(self._work(entry, sink_for) for entry in batch))
            handled += len(batch)
        return handled

    def state(self, source: str, key: ObjectKey) -> Mapping[str, Any] | None:
        """What is recorded for one agent (``extra`` as written), or None when it is not tracked."""
        entry = self._entries.get((source, key))
        return entry.extra() if entry is not None else None

    # --- the work --------------------------------------------------------------------------------------------

    def _source(self, config: SourceConfig) -> _Source:
        current = self._sources.get(config.name)
        if current is not None and current.config == config:
            return current
        fetcher: Fetcher | None = None
        problem = None
        try:
            fetcher = self.fetcher.derive(
                allow_cidrs=config.allow_cidrs,
                client_cert=config.client_cert,
                client_key=config.client_key,
                ca_file=config.ca_file,
            )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            problem = f"cannot use the source's TLS settings: {exc}"
        keyring = cards.Keyring.of(config)
        keyring.fetcher = self.fetcher
        source = _Source(config, fetcher, keyring, problem)
        self._sources[config.name] = source
        for entry in self._entries.values():
            if entry.source == config.name:
                entry.due, entry.failures = self.monotonic(), 0
                entry.generation += 1
        return source

    def _due(self, limit: int) -> list[_Entry]:
        now = self.monotonic()
        due = [e for e in self._entries.values() if not e.running and (e.due <= now or e.report)]
        due.sort(key=lambda e: e.due)
        return due[: max(limit, 0)]

    def _idle(self) -> float | None:
        waiting = [e.due for e in self._entries.values() if not e.running]
        return max(min(waiting) - self.monotonic(), 0.0) if waiting else None

    async def _work(self, entry: _Entry, sink_for: Callable[[str], Sink | None]) -> None:
        entry.running = True
        try:
            if entry.due <= self.monotonic():
                generation = entry.generation
                result = await self._fetch(entry)
                self._record(entry, result, generation)
            await self._report(entry, sink_for)
        finally:
            entry.running = False

    async def _fetch(self, entry: _Entry) -> cards.CardResult:
        source = self._sources.get(entry.source)
        if source is None or source.fetcher is None:
            return cards.failed(
                "Misconfigured", source.problem if source and source.problem else "no such source"
            )
        try:
            async with asyncio.timeout(self.timeout_s):
                if entry.held is not None:
                    return await cards.judge_held(
                        entry.held, source.keyring, entry.binding, source.fetcher, timeout=self.timeout_s
                    )
                assert entry.endpoint is not None
                return await cards.fetch_card(
                    entry.endpoint, source.fetcher, source.keyring, entry.binding, timeout=self.timeout_s
                )
        except TimeoutError:
            return cards.failed("Timeout", f"no card within {self.timeout_s:g} s", entry.endpoint)
        except Exception as exc:  # a bug must not stop every other agent's cards
            log.exception("card sync of %s failed", entry.key)
            return cards.failed("Error", f"{type(exc).__name__}: {exc}", entry.endpoint)

    def _record(self, entry: _Entry, result: cards.CardResult, generation: int) -> None:
        now = clock.now()
        source = self._sources.get(entry.source)
        interval = source.config.card_interval_s if source is not None else 600.0
        if result.synced:
            assert result.card is not None
            same = entry.card is not None and entry.card.get("digest") == result.digest
            entry.card = {
                "url": result.url,
                "digest": result.digest,
                "protocolVersion": result.protocol_version,
                "card": result.card,
                "fetchedAt": entry.card["fetchedAt"] if same and entry.card else _iso(now),
            }
            if result.warnings:
                entry.card["warnings"] = list(result.warnings)
            entry.conditions = merge_conditions(entry.conditions, result.conditions, now)
            entry.identity, entry.claim, entry.failures = result.identity, result.claim, 0
            delay = interval
        else:
            entry.failures += 1
            kept = [c for c in entry.conditions if c.type != cards.CARD_SYNCED] or [
                Condition(cards.SIGNATURE_VERIFIED, "Unknown", "NoCard", "no card has been fetched"),
                Condition(cards.IDENTITY_BOUND, "Unknown", "NoCard", "no card has been fetched"),
            ]
            entry.conditions = merge_conditions(entry.conditions, [*result.conditions[:1], *kept], now)
            delay = min(interval, self.retry_s * 2 ** min(entry.failures - 1, 20))
        entry.due = self.monotonic() + (0.0 if entry.generation != generation else delay)

    async def _report(self, entry: _Entry, sink_for: Callable[[str], Sink | None]) -> None:
        if self._entries.get((entry.source, entry.key)) is not entry:
            return  # forgotten while it was being fetched
        sink = sink_for(entry.source)
        if sink is None:
            self.stop_source(entry.source)
            return
        extra = entry.extra()
        digest = _digest(extra)
        if digest == entry.reported and not entry.report:
            return
        try:
            await sink.enrich(entry.key, extra, claim=entry.claim)
        except Exception:
            log.exception("recording the card of %s failed", entry.key)
            return  # reported stays behind: written again next time
        entry.reported, entry.report = digest, False


# --- reading observations ---------------------------------------------------------------------------------


def _held(observation: Observation) -> Mapping[str, Any] | None:
    held = observation.extra.get("heldCard")
    if isinstance(held, Mapping) and isinstance(held.get("card"), Mapping) and held["card"]:
        return held
    return None


def _binding(
    observation: Observation, held: Mapping[str, Any] | None, config: SourceConfig
) -> cards.Binding | None:
    extra, spec, key = observation.extra, observation.spec, observation.key
    card_binding = extra.get("identityBinding") or (held or {}).get("identityBinding")
    if card_binding is None and key.group == KAGENTI and key.kind == "AgentCard":
        card_binding = spec.get("identityBinding")
    runtime = extra.get("runtimeIdentity")
    if runtime is None and key.group == KAGENTI and key.kind == "AgentRuntime":
        runtime = spec.get("identity")
    return cards.resolve_binding(
        card_binding if isinstance(card_binding, Mapping) else None,
        runtime if isinstance(runtime, Mapping) else None,
        config.identity,
    )


def _seed(entry: _Entry, extra: Mapping[str, Any]) -> None:
    """Start from what a row already records (after a restart), so transition times and the card survive."""
    card = extra.get("card")
    if isinstance(card, Mapping) and isinstance(card.get("card"), Mapping):
        entry.card = dict(card)
        name, version = card["card"].get("name"), card["card"].get("version")
        if isinstance(name, str) and name:
            entry.claim = Claim(name, version if isinstance(version, str) else None)
    conditions = extra.get("conditions")
    if isinstance(conditions, list):
        entry.conditions = tuple(c for c in (_condition(item) for item in conditions) if c is not None)
    identity = extra.get("identity")
    entry.identity = dict(identity) if isinstance(identity, Mapping) else None


def _condition(raw: Any) -> Condition | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        return None
    at = raw.get("lastTransitionTime")
    try:
        when = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else None
    except ValueError:
        when = None
    return Condition(
        raw["type"], str(raw.get("status")), str(raw.get("reason") or ""), str(raw.get("message") or ""), when
    )


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
