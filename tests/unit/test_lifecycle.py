"""The lifecycle state machine, checked as properties over every sequence of moves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentreg.domain.errors import Invalid, InvalidTransition
from agentreg.domain.lifecycle import GATED, MAX_REASON, Move, State, check_reason, next_tier, transition

MOVES = st.lists(st.tuples(st.sampled_from(list(Move)), st.sampled_from([None, *State])), max_size=30)


def _walk(moves: list[tuple[Move, State | None]]) -> list[tuple[State, State, Move, State | None]]:
    """Apply moves from draft, skipping refused ones; the log of (source, target, move, gate) applied."""
    state, before, log = State.DRAFT, None, []
    for move, to in moves:
        try:
            step = transition(state, move, to=to if move is Move.PROMOTE else None, before=before)
        except InvalidTransition:
            continue
        if move is Move.DEPRECATE:
            before = state
        log.append((step.source, step.target, move, step.gate))
        state = step.target
    return log


@given(MOVES)
def test_no_path_reaches_a_tier_without_passing_its_gate(moves: list[tuple[Move, State | None]]) -> None:
    gated_once: set[State] = set()
    for _source, target, move, gate in _walk(moves):
        if move is Move.PROMOTE:
            assert gate == target and target in GATED
            gated_once.add(target)
        elif target in GATED:
            # Only un-deprecation re-enters a gated tier, and only one the version has passed before.
            assert move is Move.UNDEPRECATE and target in gated_once


@given(MOVES)
def test_retired_is_final(moves: list[tuple[Move, State | None]]) -> None:
    log = _walk(moves)
    for i, (_source, target, _move, _gate) in enumerate(log):
        if target is State.RETIRED:
            assert i == len(log) - 1
    for move in Move:
        with pytest.raises(InvalidTransition):
            transition(State.RETIRED, move)


@given(MOVES)
def test_deprecated_returns_to_certified_only_by_undeprecating_a_certified_version(
    moves: list[tuple[Move, State | None]],
) -> None:
    for source, target, move, _gate in _walk(moves):
        if source is State.DEPRECATED and target is State.CERTIFIED:
            assert move is Move.UNDEPRECATE


def test_promotion_moves_one_tier_at_a_time() -> None:
    assert transition(State.DRAFT, Move.PROMOTE).target is State.EXPERIMENTAL
    assert transition(State.EXPERIMENTAL, Move.PROMOTE, to=State.CERTIFIED).target is State.CERTIFIED
    with pytest.raises(InvalidTransition, match="one tier at a time"):
        transition(State.DRAFT, Move.PROMOTE, to=State.CERTIFIED)
    for state in (State.CERTIFIED, State.DEPRECATED):
        with pytest.raises(InvalidTransition):
            transition(state, Move.PROMOTE)
    assert next_tier(State.CERTIFIED) is None


def test_undeprecating_restores_the_state_deprecation_left() -> None:
    assert (
        transition(State.DEPRECATED, Move.UNDEPRECATE, before=State.EXPERIMENTAL).target is State.EXPERIMENTAL
    )
    assert transition(State.DEPRECATED, Move.UNDEPRECATE, before=None).target is State.DRAFT
    with pytest.raises(InvalidTransition):
        transition(State.CERTIFIED, Move.UNDEPRECATE)
    with pytest.raises(InvalidTransition):
        transition(State.DEPRECATED, Move.DEPRECATE)


@pytest.mark.parametrize("reason", [None, "", "   ", 7, "x" * (MAX_REASON + 1), "nul\x00"])
def test_a_state_change_needs_a_reason_of_at_most_500_characters(reason: object) -> None:
    with pytest.raises(Invalid) as caught:
        check_reason(reason)
    assert caught.value.details[0].field == "/reason"


def test_a_reason_is_kept_trimmed() -> None:
    assert check_reason("  rolled out to all teams ") == "rolled out to all teams"
    assert check_reason("x" * MAX_REASON) == "x" * MAX_REASON
