"""HyperLogLog: a mergeable estimate of distinct callers, so usage buckets from many reporters add up. Pure.

Precision 12: 4096 one-byte registers, a standard error of about 1.6 %. A caller's 64-bit hash is the first
8 bytes (big-endian) of the sha256 of its id; a reporter that only has hashed ids (hex sha256) gives those,
and they land in the same registers. The top 12 bits pick the register, which keeps the highest rank (the
position of the first 1 bit in the other 52, counted from 1) it has seen, so merging is a register-wise max.

Serialized form (``to_bytes``, also accepted on the wire, base64-encoded): the 4096 registers as they are,
or, when that is smaller, the non-zero registers as 3-byte entries (2-byte big-endian index, 1-byte rank) in
increasing index order. The lengths never collide: a sparse form is shorter than 4096 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from collections.abc import Iterable

PRECISION = 12
REGISTERS = 1 << PRECISION
MAX_RANK = 64 - PRECISION + 1
_LOW_BITS = 64 - PRECISION
_LOW_MASK = (1 << _LOW_BITS) - 1
_ALPHA = 0.7213 / (1 + 1.079 / REGISTERS)
_POWERS = [2.0**-rank for rank in range(MAX_RANK + 1)]
_ENTRY = 3
_NONZERO = re.compile(b"[^\\x00]")
# One 0x80 guard bit per one-byte lane: registers never exceed 53, so lane-wise subtraction cannot borrow.
_GUARDS = int.from_bytes(b"\x80" * REGISTERS, "big")


class HyperLogLog:
    """A sketch of a set of caller ids; ``estimate`` is its approximate size."""

    __slots__ = ("registers",)

    def __init__(self, registers: bytes | bytearray | None = None) -> None:
        self.registers = bytearray(registers) if registers is not None else bytearray(REGISTERS)
        if len(self.registers) != REGISTERS:
            raise ValueError(f"a sketch has {REGISTERS} registers, not {len(self.registers)}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HyperLogLog) and self.registers == other.registers

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"HyperLogLog(~{self.estimate()} distinct)"

    @classmethod
    def of(cls, caller_ids: Iterable[str]) -> HyperLogLog:
        sketch = cls()
        for caller in caller_ids:
            sketch.add(caller)
        return sketch

    def add(self, caller_id: str) -> None:
        self.add_digest(hashlib.sha256(caller_id.encode()).digest())

    def add_hashed(self, hex_sha256: str) -> None:
        """Add a caller known only by the hex sha256 of its id (raises ValueError if that is not one)."""
        if len(hex_sha256) != 64:
            raise ValueError("must be 64 hex digits (the sha256 of the caller id)")
        self.add_digest(bytes.fromhex(hex_sha256))

    def add_digest(self, digest: bytes) -> None:
        index, rank = _place(int.from_bytes(digest[:8], "big"))
        if rank > self.registers[index]:
            self.registers[index] = rank

    def merge(self, other: HyperLogLog) -> HyperLogLog:
        """The sketch of the union of both sets (a new sketch; neither changes)."""
        return merge_all([self, other])

    def estimate(self) -> int:
        """The estimated number of distinct ids: raw HyperLogLog, with linear counting for small sets."""
        registers = bytes(self.registers)
        zeros = registers.count(0)
        if zeros == REGISTERS:
            return 0
        harmonic = sum(_POWERS[rank] * registers.count(rank) for rank in set(registers))
        raw = _ALPHA * REGISTERS * REGISTERS / harmonic
        if raw <= 2.5 * REGISTERS and zeros:
            return round(REGISTERS * math.log(REGISTERS / zeros))
        return round(raw)

    def to_bytes(self) -> bytes:
        registers = bytes(self.registers)
        if (REGISTERS - registers.count(0)) * _ENTRY >= REGISTERS:
            return registers
        return b"".join(m.start().to_bytes(2, "big") + m.group() for m in _NONZERO.finditer(registers))

    @classmethod
    def from_bytes(cls, data: bytes) -> HyperLogLog:
        """Either serialized form; ValueError says what is wrong."""
        if len(data) == REGISTERS:
            if max(data) > MAX_RANK:
                raise ValueError(f"register values must be at most {MAX_RANK}")
            return cls(data)
        if len(data) % _ENTRY:
            raise ValueError(
                f"must be {REGISTERS} registers (precision {PRECISION}) or 3-byte sparse entries, "
                f"not {len(data)} bytes"
            )
        sketch = cls()
        previous = -1
        for at in range(0, len(data), _ENTRY):
            index = int.from_bytes(data[at : at + 2], "big")
            rank = data[at + 2]
            if not previous < index < REGISTERS or not 1 <= rank <= MAX_RANK:
                raise ValueError(
                    f"sparse entry {at // _ENTRY} must have an index above the previous one and below "
                    f"{REGISTERS}, and a value from 1 to {MAX_RANK}"
                )
            sketch.registers[index] = rank
            previous = index
        return sketch

    def to_base64(self) -> str:
        return base64.b64encode(self.to_bytes()).decode()

    @classmethod
    def from_base64(cls, text: str) -> HyperLogLog:
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64") from None
        return cls.from_bytes(data)


def serialize_hashed(hex_ids: Iterable[str]) -> bytes:
    """The serialized sketch (``to_bytes`` form) of callers known by hex sha256 digests (checked by the
    caller), without building 4096 registers for the usual handful of ids."""
    ranks: dict[int, int] = {}
    for hex_id in hex_ids:
        index, rank = _place(int(hex_id[:16], 16))
        if rank > ranks.get(index, 0):
            ranks[index] = rank
    if len(ranks) * _ENTRY < REGISTERS:
        return b"".join(i.to_bytes(2, "big") + bytes((r,)) for i, r in sorted(ranks.items()))
    sketch = HyperLogLog()
    for index, rank in ranks.items():
        sketch.registers[index] = rank
    return sketch.to_bytes()


def merge_all(sketches: Iterable[HyperLogLog]) -> HyperLogLog:
    """The union of many sketches, register-wise max computed eight bits per lane over one big integer."""
    merged = 0
    for sketch in sketches:
        merged = _lane_max(merged, int.from_bytes(sketch.registers, "big"))
    return HyperLogLog(merged.to_bytes(REGISTERS, "big"))


def merge_serialized(blobs: Iterable[bytes]) -> HyperLogLog:
    """The union of stored sketches (``to_bytes`` form, trusted), without building each one first."""
    sparse = bytearray(REGISTERS)
    dense = 0
    for blob in blobs:
        if len(blob) == REGISTERS:
            dense = _lane_max(dense, int.from_bytes(blob, "big"))
            continue
        for at in range(0, len(blob), _ENTRY):
            index = (blob[at] << 8) | blob[at + 1]
            if blob[at + 2] > sparse[index]:
                sparse[index] = blob[at + 2]
    merged = _lane_max(dense, int.from_bytes(sparse, "big"))
    return HyperLogLog(merged.to_bytes(REGISTERS, "big"))


def _place(hash64: int) -> tuple[int, int]:
    """The register a 64-bit hash lands in (its top bits) and its rank (where the first 1 of the rest is)."""
    rest = hash64 & _LOW_MASK
    return hash64 >> _LOW_BITS, _LOW_BITS - rest.bit_length() + 1


def _lane_max(a: int, b: int) -> int:
    difference = (b | _GUARDS) - a  # each lane: 128 + b - a, whose top bit says b >= a
    b_wins = (difference & _GUARDS) >> 7
    mask = (b_wins << 8) - b_wins  # 0xFF in the lanes where b >= a
    return (b & mask) | (a & ~mask)
