"""The audit hash chain and signed checkpoints (domain.auditchain), with no database.

Every way of tampering with a stored chain that verification promises to find is built here by hand:
an edited event, a missing or reordered one, a broken link, a forged or foreign checkpoint, a truncated
tail, and a checkpoint that disagrees with its event; plus a property test over random chains.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from agentreg.domain.auditchain import (
    GENESIS,
    ChainedEvent,
    Checkpoint,
    CheckpointSigner,
    StoredEvent,
    chain_hash,
    key_id_of,
    public_key_from_jwk,
    verify_chain,
)

T = "default"
T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
SIGNER = CheckpointSigner.from_seed(bytes(range(32)))
OTHER_SIGNER = CheckpointSigner.from_seed(bytes(range(1, 33)))
KEYS: dict[str, Ed25519PublicKey] = {SIGNER.key_id: SIGNER.public_key}


def event(seq: int, tenant: str = T, **overrides: Any) -> ChainedEvent:
    fields: dict[str, Any] = {
        "tenant": tenant,
        "seq": seq,
        "at": T0 + timedelta(seconds=seq),
        "actor": "alice",
        "action": "version.publish",
        "target": f"skill/com.acme/s{seq}@1.0.0",
        "details": {"origin": "published", "n": seq},
        "request_id": f"req-{seq}",
        "client_ip": "10.0.0.1",
        "reason": None,
        "before": None,
        "after": f"sha256:{seq:064x}",
    }
    fields.update(overrides)
    return ChainedEvent(**fields)


def build(events: list[ChainedEvent], start_hash: str = GENESIS) -> list[StoredEvent]:
    """Chain events the way the store does (ids start at 100 so ids and seqs are never confused)."""
    out, prev = [], start_hash
    for i, e in enumerate(events):
        digest = chain_hash(prev, e)
        out.append(StoredEvent(100 + i, e, prev, digest))
        prev = digest
    return out


def chain(n: int, tenant: str = T) -> list[StoredEvent]:
    return build([event(s, tenant) for s in range(1, n + 1)])


def sign_at(stored: list[StoredEvent], seq: int, signer: CheckpointSigner = SIGNER) -> Checkpoint:
    hash_at = {s.event.seq: s.hash for s in stored}[seq]
    return signer.sign(T, seq, hash_at, T0 + timedelta(days=1))


def rehash_from(stored: list[StoredEvent], index: int, new: ChainedEvent) -> list[StoredEvent]:
    """What a capable attacker does: replace one event and recompute every later hash."""
    events = [s.event for s in stored]
    events[index] = new
    return build(events)


# --- hashing -----------------------------------------------------------------------------------------------


def test_hashing_is_deterministic_and_starts_at_genesis() -> None:
    first, second = chain(5), chain(5)
    assert [s.hash for s in first] == [s.hash for s in second]
    assert first[0].prev_hash == GENESIS == "0" * 64
    assert all(len(s.hash) == 64 for s in first)
    assert len({s.hash for s in first}) == 5


def test_hash_depends_on_the_previous_hash() -> None:
    e = event(1)
    assert chain_hash(GENESIS, e) != chain_hash("1" * 64, e)


def test_hash_ignores_dict_order_and_time_zone_representation() -> None:
    e = event(1, details={"a": 1, "b": [1, 2]})
    same = event(1, details={"b": [1, 2], "a": 1}, at=e.at.astimezone(timezone(timedelta(hours=5))))
    assert chain_hash(GENESIS, e) == chain_hash(GENESIS, same)


CHANGES: dict[str, Any] = {
    "tenant": "other",
    "seq": 2,
    "at": T0 + timedelta(seconds=1, microseconds=1),
    "actor": "mallory",
    "action": "version.delete",
    "target": "skill/com.acme/s1@1.0.1",
    "details": {"origin": "published", "n": 2},
    "request_id": "req-x",
    "client_ip": "10.0.0.2",
    "reason": "because",
    "before": "sha256:" + "1" * 64,
    "after": None,
}


def test_every_field_is_covered() -> None:
    assert set(CHANGES) == {f.name for f in dataclasses.fields(ChainedEvent)}
    base = event(1)
    original = chain_hash(GENESIS, base)
    for field, value in CHANGES.items():
        assert getattr(base, field) != value, field
        changed = dataclasses.replace(base, **{field: value})
        assert chain_hash(GENESIS, changed) != original, f"changing {field} did not change the hash"


@pytest.mark.parametrize("field", ["reason", "before", "request_id", "client_ip"])
def test_none_and_empty_string_hash_differently(field: str) -> None:
    assert chain_hash(GENESIS, event(1, **{field: None})) != chain_hash(GENESIS, event(1, **{field: ""}))


# --- verification of the chain ------------------------------------------------------------------------------


def test_an_intact_chain_verifies() -> None:
    stored = chain(10)
    result = verify_chain(T, stored, [sign_at(stored, 7), sign_at(stored, 10)], KEYS)
    assert result.ok, result.problem
    assert (result.events, result.head_seq, result.head_hash, result.checkpoints) == (
        10,
        10,
        stored[-1].hash,
        2,
    )


def test_an_empty_log_verifies() -> None:
    result = verify_chain(T, [], [], KEYS)
    assert result.ok
    assert (result.events, result.head_seq, result.head_hash) == (0, 0, GENESIS)


def test_an_edited_event_is_named_by_its_seq() -> None:
    stored = chain(10)
    stored[4] = dataclasses.replace(stored[4], event=dataclasses.replace(stored[4].event, actor="mallory"))
    result = verify_chain(T, stored, [], KEYS)
    assert not result.ok
    assert result.problem is not None
    assert (result.problem.seq, result.problem.event_id) == (5, 104)
    assert "edited" in result.problem.issue
    assert result.head_seq == 4  # the walk stops at the first bad event


def test_a_deleted_middle_event_is_a_gap() -> None:
    stored = chain(10)
    del stored[5]  # seq 6
    result = verify_chain(T, stored, [], KEYS)
    assert result.problem is not None
    assert result.problem.seq == 7
    assert "jumps from 5 to 7" in result.problem.issue


def test_reordered_events_are_found() -> None:
    stored = chain(10)
    stored[3], stored[4] = stored[4], stored[3]
    result = verify_chain(T, stored, [], KEYS)
    assert result.problem is not None
    assert result.problem.seq == 5
    assert "jumps" in result.problem.issue


def test_reordered_and_renumbered_events_break_the_links() -> None:
    """Swapping two events' content but keeping seqs in order: the links no longer match."""
    stored = chain(10)
    a, b = stored[3], stored[4]
    stored[3] = StoredEvent(a.id, dataclasses.replace(b.event, seq=4), b.prev_hash, b.hash)
    stored[4] = StoredEvent(b.id, dataclasses.replace(a.event, seq=5), a.prev_hash, a.hash)
    result = verify_chain(T, stored, [], KEYS)
    assert result.problem is not None
    assert result.problem.seq == 4
    assert "link" in result.problem.issue


def test_a_broken_prev_link_is_found() -> None:
    stored = chain(10)
    s = stored[6]
    forged_prev = "f" * 64
    stored[6] = StoredEvent(s.id, s.event, forged_prev, chain_hash(forged_prev, s.event))
    result = verify_chain(T, stored, [], KEYS)
    assert result.problem is not None
    assert result.problem.seq == 7
    assert "does not link" in result.problem.issue


def test_a_replaced_stored_hash_is_found() -> None:
    stored = chain(10)
    stored[-1] = dataclasses.replace(stored[-1], hash="a" * 64)
    result = verify_chain(T, stored, [], KEYS)
    assert result.problem is not None
    assert result.problem.seq == 10


def test_an_event_of_another_tenant_is_found() -> None:
    stored = chain(3)
    other = build([event(1, "other"), event(2, "other"), event(3, "other")])
    result = verify_chain(T, [*stored[:2], other[2]], [], KEYS)
    assert result.problem is not None
    assert result.problem.seq == 3
    assert "tenant 'other'" in result.problem.issue


def test_a_recomputed_chain_verifies_alone_but_not_against_a_checkpoint() -> None:
    """Rewriting history and every later hash defeats the chain alone; a signed checkpoint catches it."""
    stored = chain(10)
    checkpoint = sign_at(stored, 10)
    forged = rehash_from(stored, 2, dataclasses.replace(stored[2].event, actor="mallory"))
    assert verify_chain(T, forged, [], KEYS).ok
    result = verify_chain(T, forged, [checkpoint], KEYS)
    assert result.problem is not None
    assert result.problem.seq == 10
    assert "differs from its signed checkpoint" in result.problem.issue


# --- checkpoints -----------------------------------------------------------------------------------------


def test_a_checkpoint_round_trips_through_json() -> None:
    checkpoint = sign_at(chain(3), 3)
    again = Checkpoint.from_json(checkpoint.to_json())
    assert again == checkpoint
    assert checkpoint.to_json()["at"].endswith("Z")
    assert checkpoint.key_id == key_id_of(SIGNER.public_key)
    jwk = SIGNER.public_jwk()
    assert jwk["kid"] == SIGNER.key_id
    assert key_id_of(public_key_from_jwk(jwk)) == SIGNER.key_id


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda c: dataclasses.replace(c, hash="0" * 64), id="hash"),
        pytest.param(lambda c: dataclasses.replace(c, seq=c.seq - 1), id="seq"),
        pytest.param(lambda c: dataclasses.replace(c, at=c.at + timedelta(seconds=1)), id="at"),
        pytest.param(lambda c: dataclasses.replace(c, signature=c.signature[::-1]), id="signature"),
        pytest.param(lambda c: dataclasses.replace(c, signature="not base64!"), id="garbage"),
        pytest.param(lambda c: dataclasses.replace(c, signature=""), id="empty"),
    ],
)
def test_a_checkpoint_with_a_bad_signature_is_found(tamper: Any) -> None:
    stored = chain(5)
    bad = tamper(sign_at(stored, 5))
    result = verify_chain(T, stored, [bad], KEYS)
    assert result.problem is not None
    assert "bad signature" in result.problem.issue


def test_a_checkpoint_from_an_unknown_key_is_counted_unverifiable_not_trusted() -> None:
    """Another replica's key (not shared): its checkpoints prove nothing here, and break nothing."""
    stored = chain(5)
    foreign = sign_at(stored, 5, OTHER_SIGNER)
    result = verify_chain(T, stored, [foreign], KEYS)
    assert result.ok and result.unverifiable == 1
    # nor does one make a truncated log pass, or hide it
    assert not verify_chain(T, stored[:3], [foreign, sign_at(stored, 5)], KEYS).ok
    # known key id, but signed by someone else
    impostor = dataclasses.replace(foreign, key_id=SIGNER.key_id)
    assert not verify_chain(T, stored, [impostor], KEYS).ok
    # trusted once the key is
    both = {**KEYS, OTHER_SIGNER.key_id: OTHER_SIGNER.public_key}
    assert verify_chain(T, stored, [foreign], both).ok
    assert verify_chain(T, stored, [foreign], both).unverifiable == 0


def test_a_checkpoint_of_another_tenant_is_found() -> None:
    stored = chain(5)
    foreign = SIGNER.sign("other", 5, stored[-1].hash, T0)
    result = verify_chain(T, stored, [foreign], KEYS)
    assert result.problem is not None
    assert "tenant 'other'" in result.problem.issue


def test_a_truncated_tail_is_found_by_a_checkpoint_beyond_the_end() -> None:
    stored = chain(10)
    checkpoint = sign_at(stored, 10)
    result = verify_chain(T, stored[:7], [checkpoint], KEYS)
    assert result.problem is not None
    assert result.problem.seq == 8
    assert "truncated" in result.problem.issue
    assert "seq 10" in result.problem.issue and "ends at 7" in result.problem.issue
    # the chain alone cannot tell
    assert verify_chain(T, stored[:7], [], KEYS).ok


def test_a_checkpoint_disagreeing_with_its_event_is_found() -> None:
    stored = chain(10)
    wrong = SIGNER.sign(T, 6, stored[4].hash, T0)  # validly signed, but not seq 6's hash
    result = verify_chain(T, stored, [wrong], KEYS)
    assert result.problem is not None
    assert result.problem.seq == 6
    assert "differs from its signed checkpoint" in result.problem.issue


def test_checkpoints_are_checked_in_seq_order() -> None:
    stored = chain(10)
    good, bad = sign_at(stored, 9), SIGNER.sign(T, 3, "e" * 64, T0)
    result = verify_chain(T, stored, [good, bad], KEYS)
    assert result.problem is not None
    assert result.problem.seq == 3
    assert result.checkpoints == 1


# --- anchors (after retention) ---------------------------------------------------------------------------


def test_anchors_let_a_pruned_log_verify() -> None:
    stored = chain(20)
    early, late = sign_at(stored, 5), sign_at(stored, 20)
    kept = stored[10:]  # seq 11..20
    anchor = stored[9].hash
    result = verify_chain(T, kept, [early, late], KEYS, start_seq=10, start_hash=anchor)
    assert result.ok, result.problem
    assert (result.events, result.head_seq, result.checkpoints) == (10, 20, 2)
    # a checkpoint exactly at the anchor is compared with the anchor hash
    assert verify_chain(T, kept, [sign_at(stored, 10)], KEYS, start_seq=10, start_hash=anchor).ok


def test_a_wrong_anchor_is_found() -> None:
    stored = chain(20)
    kept = stored[10:]
    result = verify_chain(T, kept, [], KEYS, start_seq=10, start_hash="c" * 64)
    assert result.problem is not None
    assert result.problem.seq == 11
    assert "link" in result.problem.issue
    # starting at the wrong seq is a gap
    result = verify_chain(T, kept, [], KEYS, start_seq=8, start_hash=stored[9].hash)
    assert result.problem is not None
    assert "jumps from 8 to 11" in result.problem.issue


def test_a_pruned_log_without_events_is_checked_against_its_anchor() -> None:
    stored = chain(10)
    result = verify_chain(T, [], [sign_at(stored, 10)], KEYS, start_seq=10, start_hash=stored[-1].hash)
    assert result.ok
    assert result.head_seq == 10
    bad = verify_chain(T, [], [sign_at(stored, 10)], KEYS, start_seq=10, start_hash="d" * 64)
    assert not bad.ok


def test_an_anchored_log_truncated_below_a_checkpoint_is_found() -> None:
    stored = chain(20)
    result = verify_chain(
        T, stored[10:15], [sign_at(stored, 20)], KEYS, start_seq=10, start_hash=stored[9].hash
    )
    assert result.problem is not None
    assert "truncated" in result.problem.issue


# --- property: any single mutation is detected ------------------------------------------------------------

EVENT_FIELDS = [f.name for f in dataclasses.fields(ChainedEvent)]
STORED_FIELDS = ["prev_hash", "hash"]
_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@st.composite
def chains(draw: st.DrawFn) -> list[StoredEvent]:
    n = draw(st.integers(1, 12))
    events = []
    for seq in range(1, n + 1):
        events.append(
            ChainedEvent(
                tenant=T,
                seq=seq,
                at=T0 + timedelta(microseconds=draw(st.integers(0, 10**12))),
                actor=draw(_text),
                action=draw(_text),
                target=draw(_text),
                details=draw(st.dictionaries(_text, st.one_of(st.integers(-1000, 1000), _text), max_size=3)),
                request_id=draw(st.none() | _text),
                client_ip=draw(st.none() | _text),
                reason=draw(st.none() | _text),
                before=draw(st.none() | _text),
                after=draw(st.none() | _text),
            )
        )
    return build(events)


def _flip_char(draw: st.DrawFn, text: str) -> str:
    """Change exactly one character of ``text`` (or add one to an empty string)."""
    if not text:
        return draw(st.characters(codec="utf-8", exclude_categories=["Cs"]))
    i = draw(st.integers(0, len(text) - 1))
    replacement = draw(st.characters(codec="utf-8", exclude_categories=["Cs"]).filter(lambda c: c != text[i]))
    return text[:i] + replacement + text[i + 1 :]


def _mutate_value(draw: st.DrawFn, field: str, value: Any) -> Any:
    if field == "seq":
        return value + draw(st.integers(-3, 3).filter(bool))
    if field == "at":
        return value + timedelta(microseconds=draw(st.integers(-(10**9), 10**9).filter(bool)))
    if field == "details":
        details = dict(value)
        key = draw(st.sampled_from([*details, "__new__"])) if details else "__new__"
        if key in details and draw(st.booleans()):
            del details[key]
        elif isinstance(details.get(key), int):
            details[key] = details[key] + draw(st.integers(-5, 5).filter(bool))
        else:
            details[key] = _flip_char(draw, str(details.get(key, "")))
        return details
    if field in ("prev_hash", "hash"):
        i = draw(st.integers(0, 63))
        return (
            value[:i]
            + draw(st.sampled_from("0123456789abcdef").filter(lambda c: c != value[i]))
            + value[i + 1 :]
        )
    if value is None:
        return draw(_text)
    if draw(st.booleans()) and field not in ("tenant", "actor", "action", "target"):
        return None
    return _flip_char(draw, value)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), stored=chains())
def test_any_single_mutation_of_any_event_is_detected(data: st.DataObject, stored: list[StoredEvent]) -> None:
    assert verify_chain(T, stored, [], KEYS).ok
    index = data.draw(st.integers(0, len(stored) - 1), label="index")
    field = data.draw(st.sampled_from(EVENT_FIELDS + STORED_FIELDS), label="field")
    target = stored[index]
    if field in STORED_FIELDS:
        mutated = dataclasses.replace(
            target, **{field: _mutate_value(data.draw, field, getattr(target, field))}
        )
    else:
        new_value = _mutate_value(data.draw, field, getattr(target.event, field))
        mutated = dataclasses.replace(target, event=dataclasses.replace(target.event, **{field: new_value}))
    assert mutated != target
    tampered = [*stored[:index], mutated, *stored[index + 1 :]]
    result = verify_chain(T, tampered, [], KEYS)
    assert not result.ok
    assert result.problem is not None
    assert result.problem.event_id == target.id


@settings(max_examples=50, deadline=None)
@given(data=st.data(), stored=chains())
def test_any_recomputed_rewrite_is_detected_by_a_head_checkpoint(
    data: st.DataObject, stored: list[StoredEvent]
) -> None:
    checkpoint = sign_at(stored, len(stored))
    index = data.draw(st.integers(0, len(stored) - 1), label="index")
    field = data.draw(st.sampled_from([f for f in EVENT_FIELDS if f not in ("tenant", "seq")]), label="field")
    original = stored[index].event
    new_value = _mutate_value(data.draw, field, getattr(original, field))
    forged = rehash_from(stored, index, dataclasses.replace(original, **{field: new_value}))
    result = verify_chain(T, forged, [checkpoint], KEYS)
    assert not result.ok
    assert result.problem is not None
    assert "checkpoint" in result.problem.issue
