"""Reading and proving the audit log: queries, JSON Lines export, signed checkpoints, verification, retention.

Checkpoints are kept in the database and, outside it, appended to ``<data dir>/audit/checkpoints.jsonl``
(and optionally POSTed to a webhook). The public keys that signed them are kept beside that file, so a
verifier never trusts the database for what proves the database.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agentreg.domain.auditchain import (
    GENESIS,
    Checkpoint,
    CheckpointSigner,
    Problem,
    StoredEvent,
    Verification,
    public_key_from_jwk,
    signature_valid,
    verify_chain,
)
from agentreg.domain.errors import NotFound
from agentreg.domain.names import check_tenant_id
from agentreg.domain.permissions import Action, authorize
from agentreg.domain.principals import Principal
from agentreg.services.access import member_tenant, pick_tenant, readers
from agentreg.services.identity import SYSTEM_TENANT
from agentreg.store.interface import AuditQuery, Store, StoredAuditEvent, chained

PAGE = 1000
log = logging.getLogger(__name__)


async def audit_tenant(store: Store, actor: Principal, tenant: str | None) -> str:
    """The tenant whose log to read: given, or the actor's only one. 404 for tenants the actor cannot see."""
    tenant = pick_tenant(actor, tenant, "whose audit log to read")
    if tenant == SYSTEM_TENANT:  # tenant creation and global keys: super admins only
        if not actor.super_admin:
            raise NotFound(f"tenant {tenant!r} not found")
    else:
        check_tenant_id(tenant, "/tenant")
        async with store.read() as tx:
            await member_tenant(tx, actor, tenant)
    authorize(actor, Action.AUDIT_READ, tenant)
    return tenant


async def list_events(store: Store, actor: Principal, query: AuditQuery) -> list[StoredAuditEvent]:
    """One page of events; the query's tenant comes from ``audit_tenant``, which authorized it."""
    async with store.read(readers=readers(actor)) as tx:
        return await tx.list_audit(query)


async def export_events(store: Store, query: AuditQuery) -> AsyncIterator[StoredAuditEvent]:
    """Every event the query matches, page by page (the caller has authorized the query's tenant)."""
    after = query.after_seq
    while True:
        async with store.read() as tx:
            page = await tx.list_audit(replace(query, after_seq=after, limit=PAGE))
        for event in page:
            yield event
        if len(page) < PAGE:
            return
        after = page[-1].seq


# --- signing keys and the checkpoint file ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFiles:
    directory: Path

    @property
    def checkpoints(self) -> Path:
        return self.directory / "checkpoints.jsonl"

    @property
    def public_keys(self) -> Path:
        return self.directory / "public-keys.json"

    @property
    def signing_key(self) -> Path:
        return self.directory / "signing-key"


def _decode_seed(text: str) -> bytes:
    try:
        seed = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        seed = b""
    if len(seed) != 32:
        raise ValueError("AGENTREG_AUDIT_KEY must be a 32-byte Ed25519 seed in base64url")
    return seed


def load_signer(files: AuditFiles, key_text: str | None) -> CheckpointSigner:
    """The checkpoint key: from AGENTREG_AUDIT_KEY, else from the data dir (generated there on first use)."""
    files.directory.mkdir(parents=True, exist_ok=True)
    if key_text:
        signer = CheckpointSigner.from_seed(_decode_seed(key_text))
    elif files.signing_key.exists():
        signer = CheckpointSigner.from_seed(_decode_seed(files.signing_key.read_text()))
    else:
        seed = os.urandom(32)
        descriptor = os.open(files.signing_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(base64.urlsafe_b64encode(seed).decode().rstrip("="))
        signer = CheckpointSigner.from_seed(seed)
    keys = _read_public_jwks(files)
    if signer.key_id not in keys:
        keys[signer.key_id] = signer.public_jwk()
        files.public_keys.write_text(json.dumps(keys, indent=2, sort_keys=True))
    return signer


def public_jwks(files: AuditFiles) -> dict[str, dict[str, str]]:
    return _read_public_jwks(files)


def _read_public_jwks(files: AuditFiles) -> dict[str, dict[str, str]]:
    if not files.public_keys.exists():
        return {}
    data: dict[str, dict[str, str]] = json.loads(files.public_keys.read_text())
    return data


def public_keys(files: AuditFiles) -> dict[str, Ed25519PublicKey]:
    return {kid: public_key_from_jwk(jwk) for kid, jwk in _read_public_jwks(files).items()}


def file_checkpoints(files: AuditFiles, tenant: str) -> list[Checkpoint]:
    if not files.checkpoints.exists():
        return []
    found = []
    for line in files.checkpoints.read_text().splitlines():
        if line.strip():
            checkpoint = Checkpoint.from_json(json.loads(line))
            if checkpoint.tenant == tenant:
                found.append(checkpoint)
    return found


class Checkpointer:
    """Signs each tenant's chain head (at an interval and on demand) into the database, a file and a webhook."""

    def __init__(
        self,
        store: Store,
        signer: CheckpointSigner,
        files: AuditFiles,
        *,
        webhook: str | None = None,
        retention: timedelta | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self.files = files
        self.webhook = webhook
        self.retention = retention
        self._signed: dict[str, int] = {}
        self._verified: dict[str, tuple[int, str]] = {}  # tenant -> (seq, hash) known good
        self._lock = asyncio.Lock()

    async def _chain_holds(self, tenant: str, head_seq: int, head_hash: str) -> bool:
        """Never sign a head the chain does not lead to: check what was added since the last good point.

        The first time (after a start) the whole log is verified; then only the new events.
        """
        known = self._verified.get(tenant)
        if known is None:
            result = await verify(self.store, tenant, self.files)
        else:
            events = await _chain_after(self.store, tenant, known[0])
            result = verify_chain(tenant, events, (), {}, start_seq=known[0], start_hash=known[1])
        if not result.ok or (result.head_seq, result.head_hash) != (head_seq, head_hash):
            problem = result.problem.issue if result.problem else "the log does not end at its head"
            log.error("audit log of tenant %s does not verify, not signing a checkpoint: %s", tenant, problem)
            return False
        self._verified[tenant] = (head_seq, head_hash)
        return True

    async def checkpoint(self, tenants: list[str] | None = None, *, force: bool = False) -> list[Checkpoint]:
        async with self._lock:
            made = []
            async with self.store.read() as tx:
                names = tenants if tenants is not None else await tx.audit_tenants()
                heads = [await tx.audit_head(t) for t in names]
            for head in heads:
                if (
                    head is None
                    or head.seq == 0
                    or (not force and self._signed.get(head.tenant_id) == head.seq)
                ):
                    continue
                if not await self._chain_holds(head.tenant_id, head.seq, head.hash):
                    continue
                checkpoint = self.signer.sign(head.tenant_id, head.seq, head.hash, datetime.now(UTC))
                async with self.store.begin() as tx:
                    await tx.insert_checkpoint(checkpoint)
                await asyncio.to_thread(self._append, checkpoint)
                self._signed[head.tenant_id] = head.seq
                self._verified[head.tenant_id] = (head.seq, head.hash)
                made.append(checkpoint)
            if made and self.webhook:
                await self._post(made)
            return made

    def _append(self, checkpoint: Checkpoint) -> None:
        self.files.directory.mkdir(parents=True, exist_ok=True)
        with open(self.files.checkpoints, "a", encoding="utf-8") as out:
            out.write(json.dumps(checkpoint.to_json(), sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())

    async def _post(self, made: list[Checkpoint]) -> None:
        assert self.webhook is not None
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.post(self.webhook, json={"checkpoints": [c.to_json() for c in made]})
                response.raise_for_status()
        except httpx.HTTPError as exc:  # the file and the database still hold them
            log.warning("audit checkpoint webhook failed: %s", exc)

    async def prune(self, now: datetime) -> int:
        """Delete events older than the retention period that a checkpoint already covers."""
        if self.retention is None:
            return 0
        cutoff = now - self.retention
        deleted = 0
        async with self.store.read() as tx:
            tenants = await tx.audit_tenants()
        for tenant in tenants:
            async with self.store.read() as tx:
                head = await tx.audit_head(tenant)
                signed = {c.seq for c in await tx.list_checkpoints(tenant)}
                old = await tx.list_audit(AuditQuery(tenant, until=cutoff, limit=PAGE))
            # The oldest events, without a gap (seq is given at commit, the time before it: they can
            # disagree), up to a checkpoint: the new anchor is always a signed point.
            expected, through = (head.anchor_seq if head else 0) + 1, 0
            for event in old:
                if event.seq != expected:
                    break
                if event.seq in signed:
                    through = event.seq
                expected += 1
            if through:
                async with self.store.begin() as tx:
                    deleted += await tx.prune_audit(tenant, through)
        return deleted

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.checkpoint()
                await self.prune(datetime.now(UTC))
            except Exception:  # keep checkpointing through a database restart
                log.exception("audit checkpoint failed")


async def _chain_after(store: Store, tenant: str, seq: int) -> list[StoredEvent]:
    """The tenant's events after ``seq``, as the hash chain covers them."""
    return [
        StoredEvent(row.id, chained(row.event, row.seq), row.prev_hash, row.hash)
        async for row in export_events(store, AuditQuery(tenant, after_seq=seq))
    ]


async def verify(store: Store, tenant: str, files: AuditFiles) -> Verification:
    """Re-walk ``tenant``'s chain and check every checkpoint, from the database and from the file."""
    async with store.read() as tx:
        head = await tx.audit_head(tenant)
        stored = await tx.list_checkpoints(tenant)
    events = await _chain_after(store, tenant, head.anchor_seq if head else 0)
    checkpoints = {(c.seq, c.signature): c for c in [*stored, *file_checkpoints(files, tenant)]}
    keys = public_keys(files)
    anchor_seq, anchor_hash = (head.anchor_seq, head.anchor_hash) if head else (0, GENESIS)
    if anchor_seq and not any(
        c.seq == anchor_seq and c.hash == anchor_hash and signature_valid(c, keys)
        for c in checkpoints.values()
    ):
        # Retention only ever removes events up to a signed checkpoint; anything else removed history.
        issue = f"events up to seq {anchor_seq} were removed, but no signed checkpoint vouches for that point"
        return Verification(
            tenant, 0, anchor_seq, anchor_hash, len(checkpoints), Problem(anchor_seq, None, issue)
        )
    result = verify_chain(
        tenant, events, checkpoints.values(), keys, start_seq=anchor_seq, start_hash=anchor_hash
    )
    # The head was read before the events, and the log only grows at its end: a log ending before the head
    # lost its tail (caught here even before the first checkpoint, unless the head was rewound too).
    if result.ok and head is not None and head.seq > result.head_seq:
        issue = f"the chain head is at seq {head.seq}, but the log ends at {result.head_seq} (truncated)"
        return replace(result, problem=Problem(result.head_seq + 1, None, issue))
    return result
