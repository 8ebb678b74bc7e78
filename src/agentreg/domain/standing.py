"""A version's standing for resolution: may ``latest``, a range or an alias still pick it? Pure.

Retired versions, blocked ones (or of a blocked resource), and deprecated ones past their sunset are
skipped by ``latest`` and ranges; an alias pointing at one answers blocked (423) or gone (410) instead.
Exact reads still return such versions with their status, except blocked ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from agentreg.domain.lifecycle import State


class Standing(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    RETIRED = "retired"
    SUNSET = "sunset"  # deprecated, and its sunset has passed


@dataclass(frozen=True, slots=True)
class StatusFacts:
    state: str
    blocked: bool
    sunset: datetime | None


def standing(facts: StatusFacts, now: datetime) -> Standing:
    if facts.blocked:
        return Standing.BLOCKED
    if facts.state == State.RETIRED:
        return Standing.RETIRED
    if facts.state == State.DEPRECATED and facts.sunset is not None and facts.sunset <= now:
        return Standing.SUNSET
    return Standing.ACTIVE


def changes_at(facts: StatusFacts, now: datetime) -> datetime | None:
    """When the standing changes by time alone (a deprecated version reaching its sunset), if it will."""
    if (
        facts.state == State.DEPRECATED
        and facts.sunset is not None
        and facts.sunset > now
        and not facts.blocked
    ):
        return facts.sunset
    return None
