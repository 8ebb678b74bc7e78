"""The audit log's hash chain and signed checkpoints (pure: no storage, no clock).

Each tenant's events form a chain: ``hash = sha256(prev_hash || canonical(event))`` where ``canonical`` is
RFC 8785 JSON of the event's recorded fields and ``prev_hash`` starts at 64 zeros. A checkpoint is an
Ed25519 signature over ``{tenant, seq, hash, at, keyId}``; kept outside the database as well, it makes a
truncated tail detectable (the chain alone cannot tell a shortened log from a short one).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agentreg.domain.digest import canonical_json

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """An audit event as the chain sees it; ``details`` is already JSON-shaped (as stored)."""

    tenant: str
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    request_id: str | None
    client_ip: str | None
    reason: str | None
    before: str | None
    after: str | None

    def canonical(self) -> bytes:
        return canonical_json(
            {
                "tenant": self.tenant,
                "seq": self.seq,
                "at": timestamp(self.at),
                "actor": self.actor,
                "action": self.action,
                "object": self.target,
                "details": self.details,
                "requestId": self.request_id,
                "clientIp": self.client_ip,
                "reason": self.reason,
                "before": self.before,
                "after": self.after,
            }
        )


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def jsonable(details: dict[str, object]) -> dict[str, Any]:
    """Details exactly as they will read back from storage (so the hash is computed on what is kept)."""
    result: dict[str, Any] = json.loads(json.dumps(details, sort_keys=True, default=str))
    return result


def chain_hash(prev_hash: str, event: ChainedEvent) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + event.canonical()).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    tenant: str
    seq: int
    hash: str
    at: datetime
    key_id: str
    signature: str = ""

    def payload(self) -> bytes:
        return canonical_json(
            {
                "tenant": self.tenant,
                "seq": self.seq,
                "hash": self.hash,
                "at": timestamp(self.at),
                "keyId": self.key_id,
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "seq": self.seq,
            "hash": self.hash,
            "at": timestamp(self.at),
            "keyId": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            tenant=str(data["tenant"]),
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            at=datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00")),
            key_id=str(data["keyId"]),
            signature=str(data["signature"]),
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CheckpointSigner:
    """Signs checkpoints with one Ed25519 key; ``key_id`` is derived from the public key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_of(self.public_key)

    @classmethod
    def from_seed(cls, seed: bytes) -> CheckpointSigner:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, tenant: str, seq: int, head_hash: str, at: datetime) -> Checkpoint:
        unsigned = Checkpoint(tenant, seq, head_hash, at, self.key_id)
        return Checkpoint(tenant, seq, head_hash, at, self.key_id, _b64(self._key.sign(unsigned.payload())))

    def public_jwk(self) -> dict[str, str]:
        raw = self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64(raw),
            "kid": self.key_id,
            "use": "sig",
            "alg": "EdDSA",
        }


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_from_jwk(jwk: dict[str, str]) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_unb64(jwk["x"]))


def signature_valid(checkpoint: Checkpoint, keys: dict[str, Ed25519PublicKey]) -> bool:
    key = keys.get(checkpoint.key_id)
    if key is None:
        return False
    try:
        key.verify(_unb64(checkpoint.signature), checkpoint.payload())
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event with the hashes stored beside it."""

    id: int
    event: ChainedEvent
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int | None
    event_id: int | None
    issue: str


@dataclass(frozen=True, slots=True)
class Verification:
    tenant: str
    events: int
    head_seq: int
    head_hash: str
    checkpoints: int
    problem: Problem | None
    unverifiable: int = 0  # checkpoints signed by a key this verifier does not hold (skipped)

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(
    tenant: str,
    events: Iterable[StoredEvent],
    checkpoints: Iterable[Checkpoint],
    keys: dict[str, Ed25519PublicKey],
    *,
    start_seq: int = 0,
    start_hash: str = GENESIS,
) -> Verification:
    """Re-walk a tenant's chain (events in seq order) and check every checkpoint against it.

    ``start_seq``/``start_hash`` anchor a log whose older events were removed by retention. The first
    problem found is reported: a gap, a broken link, a recomputed hash that differs, a checkpoint that is
    badly signed, disagrees with the event at its seq, or lies beyond the end of the log (truncation).
    """
    expected_prev, expected_seq = start_hash, start_seq + 1
    hashes: dict[int, str] = {start_seq: start_hash}
    count = 0
    problem: Problem | None = None
    for stored in events:
        count += 1
        event = stored.event
        if event.tenant != tenant:
            problem = Problem(event.seq, stored.id, f"belongs to tenant {event.tenant!r}")
        elif event.seq != expected_seq:
            problem = Problem(event.seq, stored.id, f"sequence jumps from {expected_seq - 1} to {event.seq}")
        elif stored.prev_hash != expected_prev:
            problem = Problem(event.seq, stored.id, "does not link to the previous event's hash")
        elif chain_hash(stored.prev_hash, event) != stored.hash:
            problem = Problem(event.seq, stored.id, "its content does not match its hash (edited)")
        if problem is not None:
            break
        hashes[event.seq] = stored.hash
        expected_prev, expected_seq = stored.hash, event.seq + 1
    head_seq = expected_seq - 1
    seen = unverifiable = 0
    if problem is None:
        for checkpoint in sorted(checkpoints, key=lambda c: c.seq):
            seen += 1
            if checkpoint.key_id not in keys:
                unverifiable += 1  # e.g. another replica's own key: proves nothing, so it is not used
                continue
            if not signature_valid(checkpoint, keys):
                problem = Problem(
                    checkpoint.seq, None, f"checkpoint at seq {checkpoint.seq} has a bad signature"
                )
            elif checkpoint.tenant != tenant:
                problem = Problem(checkpoint.seq, None, f"checkpoint belongs to tenant {checkpoint.tenant!r}")
            elif checkpoint.seq > head_seq:
                problem = Problem(
                    head_seq + 1,
                    None,
                    f"a checkpoint signed the log at seq {checkpoint.seq}, but it ends at {head_seq} (truncated)",
                )
            elif checkpoint.seq >= start_seq and hashes.get(checkpoint.seq) != checkpoint.hash:
                problem = Problem(
                    checkpoint.seq,
                    None,
                    f"the event at seq {checkpoint.seq} differs from its signed checkpoint",
                )
            if problem is not None:
                break
    return Verification(tenant, count, head_seq, expected_prev, seen, problem, unverifiable)
