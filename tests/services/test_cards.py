"""A2A card discovery against real TLS servers on loopback.

A test CA (trustme) issues the agents' server certificates, with SPIFFE URI SANs as SPIRE would, and the
registry's client certificate. The agent is reached as ``agent.test``, a name on the operator's allow-list
that resolves to 127.0.0.1; nothing else on loopback is allowed, so the redirects to ``127.0.0.1``,
``169.254.169.254`` and ``[::ffff:127.0.0.1]`` are refused as they would be in production.

``RecordingSink`` stands in for the discovery sink only to observe what ``CardSync`` reports at that
boundary; the reconciler behind the real sink has its own tests.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey

from agentreg.domain.inventory import Claim, ObjectKey, Observation
from agentreg.domain.kinds import Kind
from agentreg.domain.sources import parse_source
from agentreg.services.cards import CardSync
from agentreg.services.fetcher import Fetcher
from agentreg.sources import cards
from agentreg.sources.cards import Keyring, fetch_card, judge_held, resolve_binding, sign_card
from tests.factories import card_03, card_10

HOST = "agent.test"
SPIFFE = "spiffe://prod.acme.org/ns/agents/sa/support"
KEY = ECKey.generate_key("P-256", parameters={"kid": "signer-1"})
JWKS = {"keys": [KEY.as_dict(private=False)]}


# --- a TLS agent on loopback --------------------------------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Agent:
    port: int
    routes: dict[str, Route]
    seen: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"https://{HOST}:{self.port}"

    def card(self, card: Mapping[str, Any], path: str = cards.CARD_PATH) -> None:
        self.routes[path] = Route(
            body=json.dumps(card).encode(), headers={"content-type": "application/json"}
        )


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.agent.seen.append(self.path)
        route = self.server.agent.routes.get(self.path.split("?")[0], Route(404, b'{"error":"no such path"}'))
        time.sleep(route.delay_s)
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    agent: Agent

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up (timeouts, refused certificates) leave broken connections behind


@contextmanager
def agent(tls: ssl.SSLContext | None) -> Iterator[Agent]:
    server = _Server(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.agent = Agent(server.server_address[1], {"/jwks.json": Route(body=json.dumps(JWKS).encode())})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server.agent
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class PKI:
    ca: trustme.CA
    ca_file: str
    client_cert: str
    client_key: str
    directory: Path

    def server(
        self, *, dns: tuple[str, ...] = (HOST,), uris: tuple[str, ...] = (SPIFFE,), mtls: bool = True
    ) -> ssl.SSLContext:
        cert, key = issue(self.ca, self.directory, f"server-{len(list(self.directory.iterdir()))}", dns, uris)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        if mtls:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca_file)
        return context


def issue(
    ca: trustme.CA, directory: Path, name: str, dns: tuple[str, ...], uris: tuple[str, ...]
) -> tuple[str, str]:
    """A leaf certificate from the test CA; trustme cannot put URI SANs in one, so it is built here."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [
        x509.UniformResourceIdentifier(u) for u in uris
    ]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "agents")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=not dns)
    certificate = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client_cert, client_key = issue(ca, tmp_path, "client", (), ("spiffe://registry.acme.org/agentreg",))
    return PKI(ca, str(ca_file), client_cert, client_key, tmp_path)


async def _resolve(host: str, port: int) -> list[str]:
    if host != HOST:
        raise OSError(f"no such host {host}")
    return ["127.0.0.1"]


def base_fetcher() -> Fetcher:
    return Fetcher(HOST, resolve=_resolve)


def source(pki: PKI, **raw: Any) -> Any:
    settings = {
        "name": "prod-eu",
        "type": "kubernetes",
        "path": "/nonexistent",
        "clientCert": pki.client_cert,
        "clientKey": pki.client_key,
        "caFile": pki.ca_file,
        **raw,
    }
    return parse_source(settings)


def mtls(pki: PKI) -> Fetcher:
    return base_fetcher().derive(client_cert=pki.client_cert, client_key=pki.client_key, ca_file=pki.ca_file)


def status(result: cards.CardResult) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in result.conditions}


# --- fetching one card ----------------------------------------------------------------------------------------


async def test_a_signed_card_over_mtls_is_verified_and_bound(pki: PKI) -> None:
    with agent(pki.server()) as server:
        server.card(sign_card(card_03("1.4.0"), KEY, {"alg": "ES256", "kid": "signer-1"}))
        keyring = Keyring(urls=(f"{server.base}/jwks.json",))
        binding = resolve_binding(None, None, source(pki, identity={"trustDomain": "prod.acme.org"}).identity)
        result = await fetch_card(f"{server.base}/", mtls(pki), keyring, binding)
    assert status(result) == {
        "CardSynced": ("True", "Fetched"),
        "SignatureVerified": ("True", "Verified"),
        "IdentityBound": ("True", "Bound"),
    }
    assert result.url == f"{server.base}{cards.CARD_PATH}"
    assert result.claim == Claim("Support Bot", "1.4.0") and result.protocol_version == "0.3"
    assert result.digest is not None and result.digest.startswith("sha256:")
    assert result.identity is not None and result.identity["spiffeId"] == SPIFFE
    assert server.seen == [cards.CARD_PATH, "/jwks.json"]


async def test_a_tampered_card_is_fetched_but_not_verified(pki: PKI) -> None:
    signed = sign_card(card_03(), KEY, {"alg": "ES256", "kid": "signer-1"})
    with agent(pki.server()) as server:
        server.card({**signed, "url": "https://attacker.example/a2a"})
        keyring = Keyring(urls=(f"{server.base}/jwks.json",))
        result = await fetch_card(server.base, mtls(pki), keyring, None)
    assert status(result)["CardSynced"] == ("True", "Fetched")
    assert status(result)["SignatureVerified"] == ("False", "InvalidSignature")


@pytest.mark.parametrize(("card", "protocol"), [(card_03(), "0.3"), (card_10(), "1.0")])
async def test_both_card_shapes_are_validated(pki: PKI, card: dict[str, Any], protocol: str) -> None:
    with agent(pki.server()) as server:
        server.card(card)
        result = await fetch_card(server.base, mtls(pki), Keyring(), None)
        server.card({"name": "half a card"})
        invalid = await fetch_card(server.base, mtls(pki), Keyring(), None)
    assert result.protocol_version == protocol
    assert status(result)["SignatureVerified"] == ("False", "Unsigned")
    assert invalid.card is None and status(invalid) == {"CardSynced": ("False", "InvalidCard")}


async def test_the_legacy_agent_json_is_read_when_the_card_path_is_missing(pki: PKI) -> None:
    with agent(pki.server()) as server:
        server.card(card_03(), cards.LEGACY_CARD_PATH)
        result = await fetch_card(server.base, mtls(pki), Keyring(), None)
    assert result.url == f"{server.base}{cards.LEGACY_CARD_PATH}"
    assert server.seen == [cards.CARD_PATH, cards.LEGACY_CARD_PATH]


async def test_slow_and_oversized_answers_are_refused(pki: PKI) -> None:
    with agent(pki.server()) as server:
        server.routes[cards.CARD_PATH] = Route(body=json.dumps(card_03()).encode(), delay_s=2)
        slow = await fetch_card(server.base, mtls(pki), Keyring(), None, timeout=0.5)
        big = card_03(description="x" * (cards.CARD_MAX_BYTES + 1))
        server.card(big)
        oversized = await fetch_card(server.base, mtls(pki), Keyring(), None)
    assert status(slow) == {"CardSynced": ("False", "FetchFailed")} and "within 0.5 s" in str(slow.error)
    assert status(oversized) == {"CardSynced": ("False", "FetchFailed")}
    assert f"the limit is {cards.CARD_MAX_BYTES}" in str(oversized.error)


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("https://127.0.0.1:{port}/card.json", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::ffff:127.0.0.1]:{port}/card.json", "IPv4-mapped"),
    ],
)
async def test_redirects_to_internal_addresses_are_refused(pki: PKI, target: str, why: str) -> None:
    with agent(pki.server()) as server:
        location = target.format(port=server.port)
        server.routes[cards.CARD_PATH] = Route(302, headers={"location": location})
        server.card(card_03(), "/card.json")
        result = await fetch_card(server.base, mtls(pki), Keyring(), None)
    assert status(result) == {"CardSynced": ("False", "FetchFailed")}
    assert why in str(result.error)
    assert server.seen == [cards.CARD_PATH]  # the refused target was never asked


async def test_identity_unbound_strict_and_unproven(pki: PKI) -> None:
    strict = resolve_binding({"trustDomain": "prod.acme.org", "strict": True}, None, None)
    with agent(pki.server(uris=("spiffe://staging.acme.org/ns/agents/sa/support",))) as other:
        other.card(card_03())
        mismatch = await fetch_card(other.base, mtls(pki), Keyring(), strict)
        unbound = await fetch_card(other.base, mtls(pki), Keyring(), None)
    assert status(mismatch)["IdentityBound"] == ("False", "TrustDomainMismatch")
    assert mismatch.identity is not None and mismatch.identity["strict"] is True
    assert mismatch.identity["trustDomain"] == "staging.acme.org" and mismatch.identity["bound"] is False
    assert status(unbound)["IdentityBound"] == ("Unknown", "NoBinding")
    with agent(pki.server(uris=())) as no_svid:
        no_svid.card(card_03())
        missing = await fetch_card(no_svid.base, mtls(pki), Keyring(), strict)
    assert status(missing)["IdentityBound"] == ("False", "NoSpiffeId")
    with agent(None) as plain:
        plain.card(card_03())
        http = await fetch_card(f"http://{HOST}:{plain.port}", base_fetcher(), Keyring(), strict)
    assert status(http)["IdentityBound"] == ("False", "NoPeerCertificate")


async def test_an_svid_without_a_dns_name_is_accepted_over_mtls_only(pki: PKI) -> None:
    with agent(pki.server(dns=())) as server:
        server.card(card_03())
        result = await fetch_card(server.base, mtls(pki), Keyring(), None)
        no_client_cert = base_fetcher().derive(ca_file=pki.ca_file)
        refused = await fetch_card(server.base, no_client_cert, Keyring(), None)
    assert status(result)["CardSynced"] == ("True", "Fetched")
    assert status(refused)["CardSynced"] == ("False", "FetchFailed")


async def test_a_held_card_is_judged_without_fetching_it() -> None:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return []

    held = {
        "card": sign_card(card_10("2.0.0"), KEY, {"alg": "ES256", "kid": "signer-1"}),
        "runtime": {
            "validSignature": True,
            "signatureKeyId": "signer-1",
            "signatureSpiffeId": SPIFFE,
            "bindingStatus": {"bound": True, "reason": "Bound"},
        },
    }
    binding = resolve_binding({"trustDomain": "other.org", "strict": True}, None, None)
    result = await judge_held(held, Keyring(), binding, Fetcher("", resolve=resolve))
    assert asked == []
    assert status(result) == {
        "CardSynced": ("True", "HeldByRuntime"),
        "SignatureVerified": ("True", "VerifiedByRuntime"),
        "IdentityBound": ("False", "TrustDomainMismatch"),  # our binding, judged on the runtime's SPIFFE ID
    }
    assert result.claim == Claim("Research", "2.0.0")


# --- CardSync ------------------------------------------------------------------------------------------------------


@dataclass
class RecordingSink:
    reports: list[tuple[ObjectKey, dict[str, Any], Claim | None]] = field(default_factory=list)

    async def enrich(self, key: ObjectKey, extra: Mapping[str, Any], claim: Claim | None = None) -> None:
        self.reports.append((key, json.loads(json.dumps(extra)), claim))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def observation(endpoint: str, revision: str = "1") -> Observation:
    key = ObjectKey("prod-eu", "apps", "Deployment", "agents", "support")
    return Observation(key, "apps/v1", catalog_kind=Kind.AGENT, endpoint=endpoint, revision=revision)


async def test_card_sync_keeps_the_previous_card_when_a_fetch_fails(pki: PKI) -> None:
    clock = Clock()
    sink = RecordingSink()
    # The JWKS is published on an ordinary TLS host (no client certificate), fetched with the operator's
    # fetcher and checked by host name; the agent itself answers only over mTLS.
    with agent(pki.server()) as server, agent(pki.server(mtls=False)) as keys:
        config = source(pki, identity={"trustDomain": "prod.acme.org", "strict": True}, cardInterval="10m")
        config = parse_source({**config.raw, "trustedJwks": [f"{keys.base}/jwks.json"]})
        operator = Fetcher(HOST, resolve=_resolve, verify=ssl.create_default_context(cafile=pki.ca_file))
        sync = CardSync(operator, monotonic=clock)
        server.card(sign_card(card_03("1.4.0"), KEY, {"alg": "ES256", "kid": "signer-1"}))
        sync.observe(config, [observation(server.base)])
        assert await sync.run_once(lambda name: sink if name == "prod-eu" else None) == 1
        key, first, claim = sink.reports[-1]
        assert claim == Claim("Support Bot", "1.4.0")
        assert [c["status"] for c in first["conditions"]] == ["True", "True", "True"]
        assert first["identity"]["spiffeId"] == SPIFFE and first["identity"]["strict"] is True

        # Nothing due, and an unchanged card writes nothing.
        assert await sync.run_once(lambda name: sink) == 0
        clock.now += 601
        assert await sync.run_once(lambda name: sink) == 1
        assert len(sink.reports) == 1

        server.routes[cards.CARD_PATH] = Route(503, b"down")
        clock.now += 601
        await sync.run_once(lambda name: sink)
        _, failed, _ = sink.reports[-1]
        conditions = {c["type"]: c for c in failed["conditions"]}
        assert conditions["CardSynced"]["status"] == "False" and "503" in conditions["CardSynced"]["message"]
        assert failed["card"] == first["card"]  # the previous card stays
        before = {c["type"]: c["lastTransitionTime"] for c in first["conditions"]}
        assert conditions["SignatureVerified"]["lastTransitionTime"] == before["SignatureVerified"]

        # Retried soon with backoff (5 s, then 10 s), not after the full interval.
        clock.now += 5
        assert await sync.run_once(lambda name: sink) == 1
        clock.now += 5
        assert await sync.run_once(lambda name: sink) == 0
        clock.now += 5
        assert await sync.run_once(lambda name: sink) == 1

        # A rollout fetches at once.
        server.card(sign_card(card_03("1.5.0"), KEY, {"alg": "ES256", "kid": "signer-1"}))
        sync.observe(config, [observation(server.base, revision="2")])
        assert await sync.run_once(lambda name: sink) == 1
    _, rolled, claim = sink.reports[-1]
    assert claim == Claim("Support Bot", "1.5.0")
    assert {c["type"]: c["status"] for c in rolled["conditions"]}["CardSynced"] == "True"
    sync.forget(config, [key])
    assert sync.state("prod-eu", key) is None


async def test_card_sync_times_out_and_skips_agents_without_cards(pki: PKI) -> None:
    sink = RecordingSink()
    with agent(pki.server()) as server:
        server.routes[cards.CARD_PATH] = Route(body=json.dumps(card_03()).encode(), delay_s=2)
        config = source(pki)
        sync = CardSync(base_fetcher(), timeout_s=0.5)
        not_an_agent = Observation(
            ObjectKey("prod-eu", "", "Service", "agents", "db"), "v1", endpoint=server.base
        )
        off = parse_source({**config.raw, "name": "quiet", "cardDiscovery": False})
        sync.observe(config, [observation(server.base), not_an_agent])
        sync.observe(off, [observation(server.base)])
        started = time.monotonic()
        assert await sync.run_once(lambda name: sink) == 1
    assert time.monotonic() - started < 1.8
    _, extra, claim = sink.reports[0]
    synced = extra["conditions"][0]
    assert (synced["type"], synced["status"]) == ("CardSynced", "False") and claim is None
    assert "card" not in extra


async def test_card_sync_runs_in_the_background_until_cancelled(pki: PKI) -> None:
    sink = RecordingSink()
    with agent(pki.server()) as server:
        server.card(card_10())
        sync = CardSync(base_fetcher())
        runner = asyncio.create_task(sync.run(lambda name: sink))
        await asyncio.sleep(0.05)  # idle: nothing observed yet
        sync.observe(source(pki), [observation(server.base)])
        for _ in range(200):
            if sink.reports:
                break
            await asyncio.sleep(0.02)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
    assert sink.reports[0][2] == Claim("Research", "1.0.0")


async def test_an_unreadable_client_certificate_is_reported_on_each_card(pki: PKI, tmp_path: Path) -> None:
    sink = RecordingSink()
    config = source(pki, clientCert=str(tmp_path / "missing.pem"))
    sync = CardSync(base_fetcher())
    sync.observe(config, [observation(f"https://{HOST}:1")])
    await sync.run_once(lambda name: sink)
    synced = sink.reports[0][1]["conditions"][0]
    assert (synced["status"], synced["reason"]) == ("False", "Misconfigured")
    assert "TLS settings" in synced["message"]
