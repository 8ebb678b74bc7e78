"""The audit log's hash chain on both databases: real mutations chain, and tampering is found.

Mutations go through the services (publish, aliases) so events are written the way the server writes
them; tampering is done with raw SQL, as someone with database access would. A signed checkpoint kept in a
file outside the database is what catches an attacker who recomputes hashes or truncates the tail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from agentreg.api.app import AgentRegApp, create_app
from agentreg.config import Settings
from agentreg.domain.auditchain import GENESIS, Checkpoint, chain_hash
from agentreg.domain.errors import Conflict
from agentreg.domain.kinds import Kind
from agentreg.domain.principals import ANONYMOUS, Principal, Role, member
from agentreg.services import aliases, auditlog
from agentreg.services.auditlog import AuditFiles, Checkpointer, load_signer
from agentreg.services.context import RequestInfo, current_request
from agentreg.services.publish import publish
from agentreg.store.interface import AuditQuery, StoredAuditEvent, chained
from agentreg.store.sql import SqlStore
from tests import factories as f

TENANT = "default"
CHUNK = 50


@dataclass
class Audit:
    store: SqlStore
    files: AuditFiles
    checkpointer: Checkpointer

    async def verify(self, tenant: str = TENANT) -> auditlog.Verification:
        return await auditlog.verify(self.store, tenant, self.files)


@pytest.fixture
def audit(store: SqlStore, tmp_path: Path) -> Audit:
    files = AuditFiles(tmp_path / "audit")
    return Audit(store, files, Checkpointer(store, load_signer(files, None), files))


async def gather_in_chunks(jobs: Iterable[Awaitable[Any]], size: int = CHUNK) -> list[Any]:
    pending, results = list(jobs), []
    for start in range(0, len(pending), size):
        results += await asyncio.gather(*pending[start : start + size])
    return results


async def publish_skills(
    store: SqlStore,
    names: int,
    versions: int = 1,
    *,
    actor: Principal = ANONYMOUS,
    namespace: str = f.NS,
    concurrency: int = CHUNK,
) -> int:
    """``names`` skills with ``versions`` versions each; up to ``concurrency`` publishes at once per round."""
    for v in range(versions):
        outcomes = await gather_in_chunks(
            (publish(store, actor, f.skill(f"s{n}", f"1.0.{v}", namespace=namespace)) for n in range(names)),
            concurrency,
        )
        assert {o.result for o in outcomes} == {"created"}
    return names * versions


async def move_aliases(store: SqlStore, names: int, versions: Iterable[int], concurrency: int = CHUNK) -> int:
    done = 0
    for v in versions:
        await gather_in_chunks(
            (
                aliases.set_alias(store, ANONYMOUS, Kind.SKILL, f.NS, f"s{n}", "stable", f"1.0.{v}")
                for n in range(names)
            ),
            concurrency,
        )
        done += names
    return done


async def events(store: SqlStore, tenant: str = TENANT) -> list[StoredAuditEvent]:
    out: list[StoredAuditEvent] = []
    async for event in auditlog.export_events(store, AuditQuery(tenant)):
        out.append(event)
    return out


async def execute(store: SqlStore, sql: str, **params: Any) -> int:
    async with store.begin() as tx:
        result = await tx.run.execute(sa.text(sql), params)
        return int(result.rowcount or 0)


def assert_fails(result: auditlog.Verification, seq: int | None, *words: str) -> None:
    assert not result.ok, "verification passed a tampered log"
    assert result.problem is not None
    assert result.problem.seq == seq, result.problem
    for word in words:
        assert word in result.problem.issue, result.problem


async def rewrite_from(store: SqlStore, tenant: str, seq: int, actor: str) -> None:
    """The capable attacker: edit one event, recompute every later hash and move the head to match."""
    rows = [e for e in await events(store, tenant) if e.seq >= seq]
    prev = rows[0].prev_hash
    async with store.begin() as tx:
        for row in rows:
            event = row.event
            if row.seq == seq:
                await tx.run.execute(
                    sa.text("UPDATE audit_events SET actor = :actor WHERE tenant_id = :t AND seq = :seq"),
                    {"actor": actor, "t": tenant, "seq": seq},
                )
                event = dataclasses.replace(event, actor=actor)
            digest = chain_hash(prev, chained(event, row.seq))
            await tx.run.execute(
                sa.text(
                    "UPDATE audit_events SET prev_hash = :p, hash = :h WHERE tenant_id = :t AND seq = :seq"
                ),
                {"p": prev, "h": digest, "t": tenant, "seq": row.seq},
            )
            prev = digest
        await tx.run.execute(
            sa.text("UPDATE audit_heads SET hash = :h WHERE tenant_id = :t"), {"h": prev, "t": tenant}
        )


# --- a thousand mutations, then tampering -------------------------------------------------------------------


async def test_a_thousand_mutations_verify_and_an_edit_is_named(audit: Audit) -> None:
    store = audit.store
    count = await publish_skills(store, names=100, versions=8)
    count += await move_aliases(store, names=100, versions=[3, 7])
    assert count == 1000
    result = await audit.verify()
    assert result.ok, result.problem
    assert (result.events, result.head_seq) == (1000, 1000)
    rows = await events(store)
    assert [r.seq for r in rows] == list(range(1, 1001))
    assert [r.event.action for r in rows].count("alias.set") == 200
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, 1000))
    assert rows[0].prev_hash == GENESIS

    made = await audit.checkpointer.checkpoint()
    assert [(c.tenant, c.seq, c.hash) for c in made] == [(TENANT, 1000, rows[-1].hash)]
    assert (await audit.verify()).checkpoints == 1

    # (a) one edited row is named by its seq: details, then actor
    original = await _details_of(store, 437)
    await execute(
        store,
        "UPDATE audit_events SET details = :d WHERE tenant_id = 'default' AND seq = 437",
        d=json.dumps({"origin": "forged"}),
    )
    assert_fails(await audit.verify(), 437, "edited")
    await execute(
        store, "UPDATE audit_events SET details = :d WHERE tenant_id = 'default' AND seq = 437", d=original
    )
    assert (await audit.verify()).ok
    await execute(
        store, "UPDATE audit_events SET actor = 'mallory' WHERE tenant_id = 'default' AND seq = 999"
    )
    result = await audit.verify()
    assert_fails(result, 999, "edited")
    assert result.problem is not None
    assert result.problem.event_id == rows[998].id


async def _details_of(store: SqlStore, seq: int) -> str:
    async with store.read() as tx:
        text = (
            await tx.run.execute(
                sa.text("SELECT details FROM audit_events WHERE tenant_id = 'default' AND seq = :s"),
                {"s": seq},
            )
        ).scalar()
    assert isinstance(text, str)
    return text


async def test_a_recomputed_chain_fails_against_the_signed_checkpoint(audit: Audit) -> None:
    """(b) Editing a row and recomputing every later hash and the head defeats the chain, not the signature."""
    store = audit.store
    await publish_skills(store, names=30)
    [checkpoint] = await audit.checkpointer.checkpoint()
    await publish_skills(store, names=5, namespace="com.more")
    await rewrite_from(store, TENANT, 12, "mallory")
    rows = await events(store)
    assert rows[11].event.actor == "mallory"
    result = await audit.verify()
    assert_fails(result, 30, "differs from its signed checkpoint")
    # removing the database's copy of the checkpoint does not help: the file still has it
    assert await execute(store, "DELETE FROM audit_checkpoints") == 1
    assert_fails(await audit.verify(), 30, "differs from its signed checkpoint")
    # nor does replacing the file's checkpoint with one not signed by the audit key
    forged = Checkpoint(TENANT, 30, rows[29].hash, checkpoint.at, checkpoint.key_id, checkpoint.signature)
    audit.files.checkpoints.write_text(json.dumps(forged.to_json()) + "\n")
    assert_fails(await audit.verify(), 30, "bad signature")


async def test_a_truncated_tail_fails_because_of_the_checkpoint_file(audit: Audit) -> None:
    """(c) Delete the last rows and rewind the head: only the checkpoint outside the database shows it."""
    store = audit.store
    await publish_skills(store, names=40)
    await audit.checkpointer.checkpoint()
    rows = await events(store)
    await execute(store, "DELETE FROM audit_events WHERE tenant_id = 'default' AND seq > 33")
    await execute(
        store, "UPDATE audit_heads SET seq = 33, hash = :h WHERE tenant_id = 'default'", h=rows[32].hash
    )
    assert_fails(await audit.verify(), 34, "truncated", "seq 40", "ends at 33")
    await execute(store, "DELETE FROM audit_checkpoints")
    assert_fails(await audit.verify(), 34, "truncated")
    # without the file, the shortened log is indistinguishable from a short one
    bare = AuditFiles(audit.files.directory.parent / "elsewhere")
    load_signer(bare, None)
    assert (await auditlog.verify(store, TENANT, bare)).ok
    # and the next write continues from the rewound head, still caught by the file
    await publish_skills(store, names=8, namespace="com.after", concurrency=1)
    assert_fails(await audit.verify(), 40, "differs from its signed checkpoint")


async def test_a_truncated_tail_behind_the_head_fails_even_without_a_checkpoint(audit: Audit) -> None:
    """The audit_heads row still names the old head: the log ending before it has lost its tail."""
    store = audit.store
    await publish_skills(store, names=12)
    await execute(store, "DELETE FROM audit_events WHERE tenant_id = 'default' AND seq > 9")
    assert_fails(await audit.verify(), 10, "chain head is at seq 12", "ends at 9", "truncated")


async def test_a_deleted_middle_row_fails(audit: Audit) -> None:
    """(d)"""
    store = audit.store
    await publish_skills(store, names=20)
    assert await execute(store, "DELETE FROM audit_events WHERE tenant_id = 'default' AND seq = 11") == 1
    assert_fails(await audit.verify(), 12, "jumps from 10 to 12")


async def test_a_bad_checkpoint_signature_in_the_database_fails(audit: Audit) -> None:
    store = audit.store
    await publish_skills(store, names=5)
    await audit.checkpointer.checkpoint()
    await execute(store, "UPDATE audit_checkpoints SET signature = 'AAAA'")
    assert_fails(await audit.verify(), 5, "bad signature")


# --- chains, tenants and concurrency ------------------------------------------------------------------------


async def test_tenants_have_independent_chains(audit: Audit) -> None:
    store = audit.store
    acme, beta = member("alice", "acme", Role.TENANT_ADMIN), member("bob", "beta", Role.TENANT_ADMIN)
    await asyncio.gather(
        publish_skills(store, 15, actor=acme, namespace="com.acme"),
        publish_skills(store, 9, actor=beta, namespace="com.beta"),
    )
    for tenant, n, actor in (("acme", 15, "alice"), ("beta", 9, "bob")):
        rows = await events(store, tenant)
        assert [r.seq for r in rows] == list(range(1, n + 1))
        assert rows[0].prev_hash == GENESIS
        assert {r.event.actor for r in rows} == {actor}
        assert {r.event.tenant_id for r in rows} == {tenant}
        result = await audit.verify(tenant)
        assert result.ok and result.head_seq == n
    assert await events(store, TENANT) == []
    made = await audit.checkpointer.checkpoint()
    assert sorted((c.tenant, c.seq) for c in made) == [("acme", 15), ("beta", 9)]
    # tampering with one tenant's chain leaves the other's intact
    await execute(store, "UPDATE audit_events SET target = 'x' WHERE tenant_id = 'acme' AND seq = 3")
    assert_fails(await audit.verify("acme"), 3, "edited")
    assert (await audit.verify("beta")).ok


async def test_concurrent_writers_give_a_gap_free_chain(audit: Audit) -> None:
    store = audit.store
    await asyncio.gather(*(publish(store, ANONYMOUS, f.skill(f"c{n}")) for n in range(120)))
    await asyncio.gather(
        *(publish(store, ANONYMOUS, f.skill(f"c{n}", "2.0.0")) for n in range(60)),
        *(
            aliases.set_alias(store, ANONYMOUS, Kind.SKILL, f.NS, f"c{n}", "stable", "1.0.0")
            for n in range(60)
        ),
    )
    rows = await events(store)
    assert [r.seq for r in rows] == list(range(1, 241))
    assert len({r.event.target for r in rows if r.event.action == "version.publish"}) == 180
    result = await audit.verify()
    assert result.ok, result.problem


async def test_a_failed_mutation_leaves_no_event(audit: Audit) -> None:
    store = audit.store
    await publish_skills(store, names=3)
    with pytest.raises(Conflict):
        await publish(store, ANONYMOUS, f.with_(f.skill("s1", "1.0.0"), "/spec/license", "MIT"))
    rows = await events(store)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert (await audit.verify()).ok


# --- retention -------------------------------------------------------------------------------------------


async def test_retention_prunes_only_old_checkpointed_events(store: SqlStore, tmp_path: Path) -> None:
    files = AuditFiles(tmp_path / "audit")
    retention = timedelta(days=30)
    checkpointer = Checkpointer(store, load_signer(files, None), files, retention=retention)
    await publish_skills(store, names=5, concurrency=1)  # one at a time, so time order is seq order
    await checkpointer.checkpoint()  # signs seq 5
    await publish_skills(store, names=5, namespace="com.mid", concurrency=1)  # 6..10
    await checkpointer.checkpoint()  # signs seq 10
    await publish_skills(store, names=5, namespace="com.later", concurrency=1)  # 11..15, not covered
    rows = await events(store)
    assert await checkpointer.prune(datetime.now(UTC)) == 0  # nothing is old yet
    # events before seq 4 are old, but the history is cut only at a signed point: not yet
    assert await checkpointer.prune(rows[3].event.at + retention) == 0

    # events before seq 8 are older than the retention period: cut at the checkpoint at seq 5
    assert await checkpointer.prune(rows[7].event.at + retention) == 5
    remaining = await events(store)
    assert [r.seq for r in remaining] == list(range(6, 16))
    async with store.read() as tx:
        head = await tx.audit_head(TENANT)
    assert head is not None
    assert (head.anchor_seq, head.anchor_hash, head.seq) == (5, rows[4].hash, 15)
    result = await auditlog.verify(store, TENANT, files)
    assert result.ok, result.problem
    assert (result.events, result.head_seq) == (10, 15)

    # everything old, but only what a checkpoint covers goes
    assert await checkpointer.prune(datetime.now(UTC) + 2 * retention) == 5
    assert [r.seq for r in await events(store)] == list(range(11, 16))
    assert (await auditlog.verify(store, TENANT, files)).ok
    await publish_skills(store, names=2, namespace="com.last")
    await checkpointer.checkpoint()
    result = await auditlog.verify(store, TENANT, files)
    assert result.ok, result.problem
    assert result.head_seq == 17
    # the anchor protects what is left: an edit after pruning is still found
    await execute(store, "UPDATE audit_events SET actor = 'mallory' WHERE tenant_id = 'default' AND seq = 11")
    assert_fails(await auditlog.verify(store, TENANT, files), 11, "edited")


async def test_wiping_the_log_and_moving_the_anchor_is_found(audit: Audit) -> None:
    """The retention anchor is in the database too: only a signed checkpoint at that point vouches for it."""
    store = audit.store
    await publish_skills(store, names=4)
    await execute(store, "DELETE FROM audit_events WHERE tenant_id = 'default'")
    await execute(
        store, "UPDATE audit_heads SET anchor_seq = seq, anchor_hash = hash WHERE tenant_id = 'default'"
    )
    assert_fails(await audit.verify(), 4, "no signed checkpoint")


async def test_a_checkpoint_is_not_signed_over_a_tampered_log(audit: Audit) -> None:
    store = audit.store
    await publish_skills(store, names=3)
    assert len(await audit.checkpointer.checkpoint()) == 1
    await publish_skills(store, names=2, namespace="com.more")
    await execute(store, "UPDATE audit_events SET actor = 'mallory' WHERE tenant_id = 'default' AND seq = 4")
    assert await audit.checkpointer.checkpoint() == []  # refuses, and logs why


async def test_retention_off_prunes_nothing(audit: Audit) -> None:
    await publish_skills(audit.store, names=3)
    await audit.checkpointer.checkpoint()
    assert await audit.checkpointer.prune(datetime.now(UTC) + timedelta(days=3650)) == 0
    assert len(await events(audit.store)) == 3


# --- request context ------------------------------------------------------------------------------------


async def test_events_carry_the_request_id_and_client_ip(audit: Audit) -> None:
    store = audit.store
    token = current_request.set(RequestInfo("req-42", "203.0.113.9"))
    try:
        await publish(store, ANONYMOUS, f.skill())
        await aliases.set_alias(store, ANONYMOUS, Kind.SKILL, f.NS, "triage", "stable", "1.0.0")
    finally:
        current_request.reset(token)
    await publish(store, ANONYMOUS, f.skill(version="1.0.1"))
    rows = await events(store)
    assert [(r.event.request_id, r.event.client_ip) for r in rows] == [
        ("req-42", "203.0.113.9"),
        ("req-42", "203.0.113.9"),
        (None, None),
    ]
    assert (await audit.verify()).ok
    # the request fields are covered by the hash
    await execute(store, "UPDATE audit_events SET client_ip = '198.51.100.1' WHERE seq = 2")
    assert_fails(await audit.verify(), 2, "edited")


# --- the /v1/audit API -----------------------------------------------------------------------------------


@pytest.fixture
def audit_app(store: SqlStore, tmp_path: Path) -> AgentRegApp:
    return create_app(Settings(data_dir=tmp_path), store=store)


@pytest.fixture
async def client(audit_app: AgentRegApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=audit_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agentreg.test") as c:
        yield c


async def _seed(store: SqlStore) -> None:
    """12 publishes and 3 alias moves by anonymous, 4 publishes by alice (all in tenant "default").

    One at a time, so seq order is time order: s1@1.0.2 is seq 10, the alias moves 13..15, alice 16..19.
    """
    await publish_skills(store, names=4, versions=3, concurrency=1)
    await move_aliases(store, names=3, versions=[1], concurrency=1)
    alice = member("alice", TENANT, Role.TENANT_ADMIN)
    await publish_skills(store, names=4, actor=alice, namespace="com.alice", concurrency=1)


async def _all(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_api_filters(client: httpx.AsyncClient, store: SqlStore) -> None:
    await _seed(store)
    everything = await _all(client)
    assert [e["seq"] for e in everything] == list(range(1, 20))
    first = everything[0]
    assert set(first) >= {"seq", "tenant", "at", "actor", "action", "object", "details", "prevHash", "hash"}
    assert first["prevHash"] == GENESIS

    assert {e["seq"] for e in await _all(client, actor="alice")} == set(range(16, 20))
    assert len(await _all(client, actor="anonymous")) == 15
    assert await _all(client, actor="nobody") == []
    assert len(await _all(client, action="alias.set")) == 3
    assert len(await _all(client, action="alias.*")) == 3
    assert len(await _all(client, action="version.*")) == 16
    assert await _all(client, action="alias") == []  # exact unless it ends in *
    assert [e["seq"] for e in await _all(client, object="skill/com.acme/s1@1.0.2")] == [10]
    assert len(await _all(client, object="skill/com.acme/s1*")) == 4  # 3 versions and the alias
    assert len(await _all(client, object="skill/com.alice/*")) == 4

    cut = everything[9]["at"]
    since = await _all(client, since=cut)
    until = await _all(client, until=cut)
    assert [e["seq"] for e in since] == list(range(10, 20))
    assert [e["seq"] for e in until] == list(range(1, 10))
    assert all(datetime.fromisoformat(e["at"]) < datetime.fromisoformat(cut) for e in until)
    shifted = datetime.fromisoformat(cut).astimezone(timezone(timedelta(hours=5))).isoformat()
    assert [e["seq"] for e in await _all(client, since=shifted)] == list(range(10, 20))
    window = await _all(client, since=everything[3]["at"], until=everything[6]["at"], action="version.*")
    assert [e["seq"] for e in window] == [4, 5, 6]

    naive = await client.get("/v1/audit", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422
    assert (await client.get("/v1/audit", params={"format": "xml"})).status_code == 422
    assert (await client.get("/v1/audit", params={"cursor": "abc"})).status_code == 422
    assert (await client.get("/v1/audit", params={"tenant": "elsewhere"})).status_code == 404


async def test_api_cursor_paging(client: httpx.AsyncClient, store: SqlStore) -> None:
    await _seed(store)
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/v1/audit", params=params)).json()
        pages += 1
        seen += [e["seq"] for e in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == list(range(1, 20))
    assert pages == 4
    # paging with a filter
    body = (await client.get("/v1/audit", params={"limit": 2, "actor": "alice"})).json()
    assert [e["seq"] for e in body["items"]] == [16, 17]
    body = (
        await client.get("/v1/audit", params={"limit": 2, "actor": "alice", "cursor": body["nextCursor"]})
    ).json()
    assert [e["seq"] for e in body["items"]] == [18, 19]


async def test_api_jsonl_export(client: httpx.AsyncClient, store: SqlStore) -> None:
    await _seed(store)
    listed = await _all(client)
    by_format = await client.get("/v1/audit", params={"format": "jsonl"})
    by_accept = await client.get("/v1/audit", headers={"Accept": "application/x-ndjson"})
    for response in (by_format, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert lines == listed  # the whole log, not a page of it
    filtered = await client.get("/v1/audit", params={"format": "jsonl", "action": "alias.*"})
    assert [json.loads(line)["action"] for line in filtered.text.splitlines()] == ["alias.set"] * 3


async def test_api_export_streams_more_than_a_page(
    client: httpx.AsyncClient, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auditlog, "PAGE", 7)  # export (and verify) read the log a page at a time
    await publish_skills(store, names=30)
    response = await client.get("/v1/audit", params={"format": "jsonl"})
    seqs = [json.loads(line)["seq"] for line in response.text.splitlines()]
    assert seqs == list(range(1, 31))
    body = (await client.get("/v1/audit/verify")).json()
    assert (body["ok"], body["events"]) == (True, 30)


async def test_api_verify_and_checkpoints(
    client: httpx.AsyncClient, store: SqlStore, audit_app: AgentRegApp, tmp_path: Path
) -> None:
    published = await client.post("/v1/skills", json=f.skill(), headers={"X-Request-ID": "api-req-1"})
    assert published.status_code == 201, published.text
    await _seed(store)
    [first] = await _all(client, object="skill/com.acme/triage@1.0.0")
    assert first["requestId"] == "api-req-1"
    assert first["clientIp"] == "127.0.0.1"

    response = await client.get("/v1/audit/verify")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["firstBad"] is None
    assert (body["events"], body["headSeq"], body["checkpoints"]) == (20, 20, 0)

    made = await client.post("/v1/audit/checkpoints")
    assert made.status_code == 201
    [checkpoint] = made.json()["items"]
    assert (checkpoint["tenant"], checkpoint["seq"], checkpoint["hash"]) == (TENANT, 20, body["headHash"])
    # kept in the data dir we gave the app, beside the public key that verifies it
    files = AuditFiles(tmp_path / "audit")
    assert audit_app.checkpointer.files == files
    assert [c.to_json() for c in auditlog.file_checkpoints(files, TENANT)] == [checkpoint]
    keys = (await client.get("/v1/audit/keys")).json()["keys"]
    assert [k["kid"] for k in keys] == [checkpoint["keyId"]]
    again = await client.post("/v1/audit/checkpoints")  # on demand: signed again even if unchanged
    assert again.status_code == 201 and again.json()["items"][0]["seq"] == 20
    assert (await client.get("/v1/audit/verify")).json()["checkpoints"] == 2

    await execute(
        store, "UPDATE audit_events SET action = 'version.undo' WHERE tenant_id = 'default' AND seq = 7"
    )
    body = (await client.get("/v1/audit/verify")).json()
    assert body["ok"] is False
    assert body["firstBad"]["seq"] == 7
    assert "edited" in body["firstBad"]["issue"]
    assert body["firstBad"]["eventId"] is not None
    assert (await client.get("/v1/audit/verify", params={"tenant": "elsewhere"})).status_code == 404
