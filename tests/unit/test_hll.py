"""HyperLogLog: accuracy at fixed sizes, merge laws (hypothesis), and both serialized forms."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentreg.domain.hll import (
    MAX_RANK,
    REGISTERS,
    HyperLogLog,
    merge_all,
    merge_serialized,
    serialize_hashed,
)

caller_sets = st.sets(st.text(min_size=1, max_size=12), max_size=60)


def sketch(ids: set[str]) -> HyperLogLog:
    return HyperLogLog.of(ids)


def test_an_empty_sketch_estimates_zero() -> None:
    assert HyperLogLog().estimate() == 0
    assert HyperLogLog.from_bytes(b"").estimate() == 0


@pytest.mark.parametrize("n", [1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000])
def test_estimate_is_within_five_percent(n: int) -> None:
    estimate = HyperLogLog.of(f"caller-{i}" for i in range(n)).estimate()
    assert abs(estimate - n) <= 0.05 * n, (n, estimate)


def test_adding_the_same_caller_again_changes_nothing() -> None:
    once = HyperLogLog.of(f"c{i}" for i in range(500))
    twice = HyperLogLog.of([*(f"c{i}" for i in range(500)), *(f"c{i}" for i in range(500))])
    assert once == twice


def test_a_hashed_id_lands_where_the_id_does() -> None:
    by_id, by_hash = HyperLogLog(), HyperLogLog()
    for i in range(300):
        by_id.add(f"user-{i}")
        by_hash.add_hashed(hashlib.sha256(f"user-{i}".encode()).hexdigest())
    assert by_id == by_hash
    with pytest.raises(ValueError):
        by_hash.add_hashed("abc")


@given(caller_sets, caller_sets)
def test_merge_is_commutative_and_is_the_sketch_of_the_union(a: set[str], b: set[str]) -> None:
    assert sketch(a).merge(sketch(b)) == sketch(b).merge(sketch(a)) == sketch(a | b)


@given(caller_sets, caller_sets, caller_sets)
def test_merge_is_associative(a: set[str], b: set[str], c: set[str]) -> None:
    left = sketch(a).merge(sketch(b)).merge(sketch(c))
    right = sketch(a).merge(sketch(b).merge(sketch(c)))
    assert left == right == merge_all([sketch(a), sketch(b), sketch(c)])


@given(caller_sets)
def test_merge_is_idempotent(a: set[str]) -> None:
    assert sketch(a).merge(sketch(a)) == sketch(a)


def _registers(seed: int | None, overrides: dict[int, int]) -> HyperLogLog:
    """Random registers (dense) or none (sparse), with some set to chosen ranks, edge values included."""
    rng = random.Random(seed)
    registers = bytearray(rng.randrange(MAX_RANK + 1) for _ in range(REGISTERS)) if seed is not None else None
    sketch = HyperLogLog(registers)
    for index, rank in overrides.items():
        sketch.registers[index] = rank
    return sketch


registers = st.builds(
    _registers,
    st.none() | st.integers(0, 2**32),
    st.dictionaries(st.integers(0, REGISTERS - 1), st.sampled_from([0, 1, 2, MAX_RANK - 1, MAX_RANK])),
)


@given(st.lists(registers, min_size=1, max_size=4))
def test_lane_wise_merge_is_the_register_wise_max(sketches: list[HyperLogLog]) -> None:
    expected = bytes(max(column) for column in zip(*(s.registers for s in sketches), strict=True))
    assert merge_all(sketches).registers == expected
    assert merge_serialized(s.to_bytes() for s in sketches).registers == expected


@given(st.lists(st.text(max_size=8), max_size=2000))
def test_hashed_ids_serialize_as_their_sketch_does(ids: list[str]) -> None:
    hashed = [hashlib.sha256(i.encode()).hexdigest() for i in ids]
    assert serialize_hashed(hashed) == HyperLogLog.of(ids).to_bytes()


@given(caller_sets)
def test_serialized_forms_round_trip(a: set[str]) -> None:
    original = sketch(a)
    data = original.to_bytes()
    assert len(data) == REGISTERS or len(data) % 3 == 0
    assert HyperLogLog.from_bytes(data) == original
    assert HyperLogLog.from_base64(original.to_base64()) == original
    assert merge_serialized([data]) == original


def test_a_small_set_serializes_sparsely_and_a_large_one_densely() -> None:
    assert len(HyperLogLog.of(["one", "two"]).to_bytes()) == 6
    assert len(HyperLogLog.of(str(i) for i in range(5000)).to_bytes()) == REGISTERS


@pytest.mark.parametrize(
    "data",
    [
        b"\x00" * 100,  # neither 4096 registers nor whole sparse entries
        b"\x01" * (REGISTERS + 1),
        bytes([MAX_RANK + 1]) * REGISTERS,  # a rank no 64-bit hash can have
        b"\x00\x05\x01\x00\x05\x02",  # the same index twice
        b"\x00\x05\x01\x00\x02\x01",  # indices out of order
        b"\x10\x00\x01",  # index 4096
        b"\x00\x01\x00",  # a zero rank in a sparse entry
    ],
)
def test_from_bytes_refuses_what_is_not_a_sketch(data: bytes) -> None:
    with pytest.raises(ValueError):
        HyperLogLog.from_bytes(data)


def test_from_base64_refuses_what_is_not_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        HyperLogLog.from_base64("not base64!")
    assert HyperLogLog.from_base64(base64.b64encode(bytes(REGISTERS)).decode()) == HyperLogLog()
