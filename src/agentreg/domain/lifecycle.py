"""The lifecycle state machine: which moves a version's state may make. Pure; the one place this is decided.

    draft ──promote──▶ experimental ──promote──▶ certified
      │                    │                        │
      └──────deprecate─────┴────────deprecate───────┴──▶ deprecated ──un-deprecate──▶ (the state it left)
    any state but retired ──retire──▶ retired (final)

Promotion moves exactly one tier up and passes that tier's gates (or is fast-tracked past them), so no path
reaches a tier without its gate. Un-deprecating returns to the state deprecation left, never higher, so
``deprecated → certified`` happens only for a version that was certified. Blocking is orthogonal to state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agentreg.domain.errors import Invalid, InvalidTransition


class State(StrEnum):
    DRAFT = "draft"
    EXPERIMENTAL = "experimental"
    CERTIFIED = "certified"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class Move(StrEnum):
    PROMOTE = "promote"
    DEPRECATE = "deprecate"
    UNDEPRECATE = "undeprecate"
    RETIRE = "retire"


# The tiers a version is promoted through, in order; each promotion has a gate.
TIERS = (State.DRAFT, State.EXPERIMENTAL, State.CERTIFIED)
GATED = (State.EXPERIMENTAL, State.CERTIFIED)
# States a new version may start in (a tenant's policy names one): never past a gate.
INITIAL = (State.DRAFT,)
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Transition:
    """A permitted move: where it goes and which gate (if any) it must pass."""

    move: Move
    source: State
    target: State
    gate: State | None  # the tier whose gates apply


def next_tier(state: State) -> State | None:
    if state in TIERS and state is not State.CERTIFIED:
        return TIERS[TIERS.index(state) + 1]
    return None


def transition(
    current: State, move: Move, *, to: State | None = None, before: State | None = None
) -> Transition:
    """The transition ``move`` makes from ``current`` (``to``: the requested promotion target;
    ``before``: the state a deprecated version left). Raises InvalidTransition otherwise."""
    if current is State.RETIRED:
        raise InvalidTransition("the version is retired; retirement is final")
    if move is Move.PROMOTE:
        target = next_tier(current)
        if target is None:
            raise InvalidTransition(f"a {current.value} version cannot be promoted")
        if to is not None and to is not target:
            raise InvalidTransition(
                f"a {current.value} version is promoted to {target.value} next, not {to.value}: "
                "promotion moves one tier at a time, through each tier's gates",
                (),
            )
        return Transition(move, current, target, gate=target)
    if move is Move.DEPRECATE:
        if current is State.DEPRECATED:
            raise InvalidTransition("the version is already deprecated")
        return Transition(move, current, State.DEPRECATED, gate=None)
    if move is Move.UNDEPRECATE:
        if current is not State.DEPRECATED:
            raise InvalidTransition(
                f"only a deprecated version can be un-deprecated, not a {current.value} one"
            )
        return Transition(move, current, before if before in TIERS else State.DRAFT, gate=None)
    return Transition(move, current, State.RETIRED, gate=None)


def check_reason(reason: object, field: str = "/reason") -> str:
    """Every state change carries a reason: required, at most 500 characters."""
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid.at(field, "is required: say why")
    if len(reason) > MAX_REASON:
        raise Invalid.at(field, f"must be at most {MAX_REASON} characters")
    if "\x00" in reason:
        raise Invalid.at(field, "must not contain NUL characters")
    return reason.strip()


def parse_state(value: object, field: str) -> State:
    try:
        return State(str(value))
    except ValueError:
        choices = ", ".join(s.value for s in State)
        raise Invalid.at(field, f"must be one of {choices}") from None
