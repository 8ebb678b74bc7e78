"""A2A agent cards: fetch one, validate it, verify its signatures and the identity of the peer that served it.

- The card is ``{endpoint}/.well-known/agent-card.json``, or ``/.well-known/agent.json`` (A2A before 0.3)
  when that answers 404; at most 64 KiB, through the SSRF-hardened fetcher the caller passes in.
- ``signatures`` are RFC 7515 JWS with a detached payload: the RFC 8785 canonical card without
  ``signatures``. Keys come only from the source's trust anchors (JWKS files) and allow-listed JWKS URLs.
  A ``kid`` or ``jku`` in the signer's header only picks among those keys: a key URL the signer names is
  never fetched, or anyone could sign a card with a key they host themselves.
- Over TLS the server's certificate is verified by the fetcher; its SPIFFE ID (the URI SAN) is recorded and
  its trust domain checked against the agent's binding: the one its kagenti AgentCard declares
  (``spec.identityBinding``), else its AgentRuntime's (``spec.identity.spiffe.trustDomain``), else the
  source's ``identity``. A binding the fetched card declares about itself is not used: whoever serves the
  card would choose it.

The outcome is three conditions, ``CardSynced``, ``SignatureVerified`` and ``IdentityBound``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from agentreg.domain.digest import canonical_json, sha256_digest
from agentreg.domain.errors import Invalid
from agentreg.domain.inventory import Claim, Condition
from agentreg.domain.sources import IdentityBinding, SourceConfig
from agentreg.domain.specs import check_card

if TYPE_CHECKING:
    from agentreg.services.fetcher import Fetcher, FetchResponse

CARD_PATH = "/.well-known/agent-card.json"
LEGACY_CARD_PATH = "/.well-known/agent.json"
CARD_MAX_BYTES = 64 * 1024
JWKS_MAX_BYTES = 1024 * 1024
FETCH_TIMEOUT_S = 10.0
JWKS_TTL_S = 300.0
CARD_SYNCED, SIGNATURE_VERIFIED, IDENTITY_BOUND = "CardSynced", "SignatureVerified", "IdentityBound"
# Asymmetric only: with an HMAC algorithm a public key would become a shared secret anyone can sign with.
ALGORITHMS = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
    "Ed25519",
)


def _registry() -> JWSRegistry:
    # Card signers put x5c chains and their own fields (timestamp, spiffe_id) in the protected header.
    registry = JWSRegistry(algorithms=ALGORITHMS, strict_check_header=False)
    registry.max_header_length = 32 * 1024
    registry.max_payload_length = 4 * CARD_MAX_BYTES
    registry.max_signature_length = 4096
    return registry


_REGISTRY = _registry()


@dataclass(frozen=True, slots=True)
class Binding:
    """The trust domain an agent's peer must present, and where that requirement came from."""

    trust_domain: str
    strict: bool
    origin: str  # agentCard | agentRuntime | source


@dataclass(frozen=True, slots=True)
class CardResult:
    card: dict[str, Any] | None
    url: str | None
    digest: str | None
    protocol_version: str | None
    conditions: tuple[Condition, ...]
    identity: dict[str, Any] | None = None
    claim: Claim | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def synced(self) -> bool:
        return self.card is not None and self.error is None


# --- keys -------------------------------------------------------------------------------------------------


@dataclass
class Keyring:
    """The keys one source trusts to sign cards: its JWKS files and its allow-listed JWKS URLs (cached)."""

    anchors: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    ttl_s: float = JWKS_TTL_S
    # JWKS URLs are fetched with this fetcher when set: the operator's, with ordinary hostname checks and
    # public CAs, not the source's mTLS one (whose trust is the agents' SPIFFE bundle).
    fetcher: Fetcher | None = None
    _files: dict[str, tuple[float, KeySet]] = field(default_factory=dict)
    _fetched: dict[str, tuple[float, KeySet]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def of(cls, config: SourceConfig) -> Keyring:
        return cls(config.trust_anchors, config.trusted_jwks)

    @property
    def configured(self) -> bool:
        return bool(self.anchors or self.urls)

    async def sets(
        self,
        fetcher: Fetcher,
        jku: str | None = None,
        timeout: float = FETCH_TIMEOUT_S,  # noqa: ASYNC109
    ) -> tuple[list[tuple[str, KeySet]], list[str]]:
        """(origin, key set) pairs to try, and the problems met loading them. A ``jku`` that names one of
        the allow-listed URLs narrows the choice to it; any other ``jku`` is ignored, never fetched."""
        problems: list[str] = []
        found: list[tuple[str, KeySet]] = []
        urls = (jku,) if jku in self.urls else self.urls
        for path in () if jku in self.urls else self.anchors:
            try:
                found.append((path, self._file(path)))
            except (OSError, ValueError, KeyError, TypeError, JoseError) as exc:
                problems.append(f"trust anchor {path}: {exc}")
        fetcher = self.fetcher or fetcher
        for url in urls:
            try:
                found.append((url, await self._url(fetcher, url, timeout)))
            except fetcher.Error as exc:
                problems.append(f"JWKS {url}: {exc}")
            except (ValueError, KeyError, TypeError, JoseError) as exc:
                problems.append(f"JWKS {url}: not a JWKS ({exc})")
        return found, problems

    def _file(self, path: str) -> KeySet:
        mtime = os.stat(path).st_mtime
        cached = self._files.get(path)
        if cached is None or cached[0] != mtime:
            with open(path, "rb") as handle:
                cached = (mtime, KeySet.import_key_set(json.loads(handle.read())))
            self._files[path] = cached
        return cached[1]

    async def _url(self, fetcher: Fetcher, url: str, timeout: float) -> KeySet:  # noqa: ASYNC109
        async with self._lock:
            cached = self._fetched.get(url)
            if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
                return cached[1]
            try:
                response = await fetcher.get(url, timeout=timeout, max_bytes=JWKS_MAX_BYTES)
                if response.status != 200:
                    raise fetcher.Error(f"answered {response.status}")
                keys = KeySet.import_key_set(json.loads(response.body))
            except Exception:
                if cached is not None:  # a stale set beats none while the JWKS host is down
                    return cached[1]
                raise
            self._fetched[url] = (time.monotonic(), keys)
            return keys


# --- signatures ---------------------------------------------------------------------------------------------


def signing_payload(card: Mapping[str, Any]) -> bytes:
    """What a card's signatures sign: the RFC 8785 canonical card without ``signatures``."""
    return canonical_json({k: v for k, v in card.items() if k != "signatures"})


def sign_card(card: Mapping[str, Any], key: Any, header: Mapping[str, Any]) -> dict[str, Any]:
    """``card`` with one more signature by ``key`` (a joserfc key); ``header`` holds at least ``alg``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        token = jws.serialize_compact(dict(header), signing_payload(card), key, algorithms=ALGORITHMS)
    protected, _, signature = token.split(".")
    signed = dict(card)
    signed["signatures"] = [*card.get("signatures", []), {"protected": protected, "signature": signature}]
    return signed


def verify_signatures(card: Mapping[str, Any], sets: Sequence[tuple[str, KeySet]]) -> Condition:
    """``SignatureVerified``: True when one of the card's signatures verifies with a trusted key."""
    signatures = card.get("signatures")
    if not signatures:
        return Condition(SIGNATURE_VERIFIED, "False", "Unsigned", "the card carries no signatures")
    if not isinstance(signatures, list):
        return Condition(SIGNATURE_VERIFIED, "False", "Malformed", "signatures must be a list")
    if not sets:
        return Condition(
            SIGNATURE_VERIFIED, "Unknown", "NoTrustedKeys", "no trust anchor or JWKS is configured"
        )
    payload = signing_payload(card)
    problems: list[str] = []
    for index, signature in enumerate(signatures):
        verdict = _verify_one(signature, payload, sets)
        if verdict.startswith("verified"):
            return Condition(SIGNATURE_VERIFIED, "True", "Verified", f"signature {index} {verdict}")
        problems.append(f"signature {index}: {verdict}")
    reason = "InvalidSignature" if any("does not match" in p for p in problems) else "UntrustedKey"
    return Condition(SIGNATURE_VERIFIED, "False", reason, "; ".join(problems)[:1000])


def _verify_one(signature: Any, payload: bytes, sets: Sequence[tuple[str, KeySet]]) -> str:
    if not isinstance(signature, Mapping) or not all(
        isinstance(signature.get(k), str) for k in ("protected", "signature")
    ):
        return "needs 'protected' and 'signature' strings"
    try:
        token = f"{signature['protected']}..{signature['signature']}".encode("ascii")
        obj = jws.extract_compact(token, payload, _REGISTRY)
    except (JoseError, UnicodeError, ValueError) as exc:
        return f"cannot be decoded ({type(exc).__name__})"
    header = obj.headers()
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        return f"algorithm {alg!r} is not accepted"
    unprotected = signature.get("header")
    kid = header.get("kid") or (unprotected.get("kid") if isinstance(unprotected, Mapping) else None)
    tried = 0
    for origin, keys in sets:
        for key in keys.keys:
            if kid is not None and key.kid != kid:
                continue
            tried += 1
            try:
                with warnings.catch_warnings():  # EdDSA is deprecated (RFC 9864) but what many signers use
                    warnings.simplefilter("ignore", SecurityWarning)
                    valid = jws.validate_compact(obj, key, algorithms=[alg], registry=_REGISTRY)
                if valid:
                    return f"verified with key {key.kid or '(no kid)'} from {origin} ({alg})"
            except (JoseError, ValueError, TypeError):
                continue  # a key of another type or curve than the algorithm needs
    if tried == 0:
        return f"no trusted key has kid {kid!r}" if kid is not None else "no trusted key"
    return f"does not match any trusted key{f' with kid {kid!r}' if kid else ''}"


def _jku(card: Mapping[str, Any]) -> str | None:
    """The first ``jku`` a signature names (only ever used to pick an allow-listed JWKS)."""
    for signature in card.get("signatures") or []:
        try:
            header = jws.extract_compact(
                f"{signature['protected']}..".encode("ascii"), b"", _REGISTRY
            ).headers()
        except (JoseError, UnicodeError, ValueError, TypeError, KeyError):
            continue
        if isinstance(header.get("jku"), str):
            return str(header["jku"])
    return None


# --- identity -----------------------------------------------------------------------------------------------


def spiffe_id(der: bytes) -> str | None:
    """The SPIFFE ID of an X.509 SVID: its one ``spiffe://`` URI SAN (None if there is not exactly one)."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    uris = [
        u
        for u in names.get_values_for_type(x509.UniformResourceIdentifier)
        if u.lower().startswith("spiffe://")
    ]
    return uris[0] if len(uris) == 1 else None


def trust_domain(spiffe: str) -> str:
    return spiffe[len("spiffe://") :].split("/", 1)[0].lower()


def resolve_binding(
    card_binding: Mapping[str, Any] | None,
    runtime_identity: Mapping[str, Any] | None,
    configured: IdentityBinding | None,
) -> Binding | None:
    """The binding that applies: the kagenti AgentCard's ``identityBinding``, else the AgentRuntime's
    ``identity.spiffe.trustDomain``, else the source's. A kagenti binding without a trust domain means the
    operator's default one, so the domain then comes from the next level while its ``strict`` still holds."""
    strict: bool | None = None
    if isinstance(card_binding, Mapping):
        if isinstance(card_binding.get("strict"), bool):
            strict = bool(card_binding["strict"])
        domain = card_binding.get("trustDomain")
        if isinstance(domain, str) and domain:
            return Binding(domain.lower(), bool(strict), "agentCard")
    spiffe = runtime_identity.get("spiffe") if isinstance(runtime_identity, Mapping) else None
    domain = spiffe.get("trustDomain") if isinstance(spiffe, Mapping) else None
    default_strict = configured.strict if configured is not None else False
    if isinstance(domain, str) and domain:
        return Binding(domain.lower(), default_strict if strict is None else strict, "agentRuntime")
    if configured is not None:
        return Binding(
            configured.trust_domain.lower(), default_strict if strict is None else strict, "source"
        )
    return None


def bind_identity(
    peer: str | None, binding: Binding | None, *, tls: bool, fallback: Mapping[str, Any] | None = None
) -> tuple[Condition, dict[str, Any] | None]:
    """``IdentityBound`` and the identity record for the peer SPIFFE ID ``peer`` (None: none presented).
    ``fallback`` is a runtime's own binding verdict (kagenti ``bindingStatus``), used when we cannot judge."""
    domain = trust_domain(peer) if peer else None
    identity: dict[str, Any] = {
        "spiffeId": peer,
        "trustDomain": domain,
        "expected": binding.trust_domain if binding else None,
        "bound": False,
        "strict": binding.strict if binding else False,
        "origin": binding.origin if binding else None,
    }
    if binding is None and isinstance(fallback, Mapping) and isinstance(fallback.get("bound"), bool):
        identity["bound"] = bool(fallback["bound"])
        text = str(fallback.get("message") or fallback.get("reason") or "as the runtime reported")
        return Condition(IDENTITY_BOUND, str(identity["bound"]), "RuntimeBinding", text), identity
    if binding is None:
        seen = f"the peer presented {peer}" if peer else "no SPIFFE ID was seen"
        return Condition(
            IDENTITY_BOUND, "Unknown", "NoBinding", f"no trust domain is bound; {seen}"
        ), identity
    if peer is None:
        if isinstance(fallback, Mapping) and isinstance(fallback.get("bound"), bool):
            identity["bound"] = bool(fallback["bound"])
            text = str(fallback.get("message") or "as the runtime reported")
            return Condition(IDENTITY_BOUND, str(identity["bound"]), "RuntimeBinding", text), identity
        if not tls:
            text = f"the card was not fetched over TLS, so no identity proves trust domain {binding.trust_domain}"
            return Condition(IDENTITY_BOUND, "False", "NoPeerCertificate", text), identity
        text = "the peer's certificate has no single spiffe:// URI SAN"
        return Condition(IDENTITY_BOUND, "False", "NoSpiffeId", text), identity
    if domain != binding.trust_domain:
        text = f"{peer} is not in trust domain {binding.trust_domain} (bound by {binding.origin})"
        return Condition(IDENTITY_BOUND, "False", "TrustDomainMismatch", text), identity
    identity["bound"] = True
    text = f"{peer} is in trust domain {binding.trust_domain} (bound by {binding.origin})"
    return Condition(IDENTITY_BOUND, "True", "Bound", text), identity


# --- fetching and judging -------------------------------------------------------------------------------------


def card_urls(endpoint: str) -> tuple[str, ...]:
    """Where an agent's card is: the endpoint itself when it names a ``.json`` file, else the well-known paths."""
    base = endpoint.split("#", 1)[0]
    if base.split("?", 1)[0].endswith(".json"):
        return (base,)
    base = base.split("?", 1)[0].rstrip("/")
    return (base + CARD_PATH, base + LEGACY_CARD_PATH)


def failed(reason: str, message: str, url: str | None = None) -> CardResult:
    return CardResult(
        None, url, None, None, (Condition(CARD_SYNCED, "False", reason, message[:1000]),), error=message
    )


async def fetch_card(
    endpoint: str,
    fetcher: Fetcher,
    keyring: Keyring,
    binding: Binding | None,
    *,
    timeout: float = FETCH_TIMEOUT_S,  # noqa: ASYNC109
) -> CardResult:
    """Fetch, validate and judge the card of the agent at ``endpoint``; never raises for what the agent does.
    ``timeout`` bounds everything: both card paths and the JWKS."""
    try:
        async with asyncio.timeout(timeout):
            return await _fetch_card(endpoint, fetcher, keyring, binding, timeout)
    except TimeoutError:
        return failed("FetchFailed", f"no card within {timeout:g} s", endpoint)


async def _fetch_card(
    endpoint: str,
    fetcher: Fetcher,
    keyring: Keyring,
    binding: Binding | None,
    timeout: float,  # noqa: ASYNC109
) -> CardResult:
    response: FetchResponse | None = None
    for url in card_urls(endpoint):
        try:
            response = await fetcher.get(
                url, timeout=timeout, headers={"accept": "application/json"}, max_bytes=CARD_MAX_BYTES
            )
        except fetcher.Error as exc:
            return failed("FetchFailed", str(exc), url)
        if response.status != 404:
            break
    assert response is not None
    if response.status != 200:
        return failed("FetchFailed", f"{response.url} answered {response.status}", response.url)
    try:
        card = json.loads(response.body)
    except ValueError:
        return failed("InvalidCard", f"{response.url} did not answer JSON", response.url)
    result = await judge(card, keyring, binding, fetcher, timeout=timeout)
    if result.card is None:
        return CardResult(None, response.url, None, None, result.conditions, error=result.error)
    peer = spiffe_id(response.peer_cert) if response.peer_cert else None
    identity_condition, identity = bind_identity(peer, binding, tls=response.peer_cert is not None)
    synced = Condition(CARD_SYNCED, "True", "Fetched", f"fetched from {response.url}")
    conditions = (synced, *(c for c in result.conditions if c.type == SIGNATURE_VERIFIED), identity_condition)
    return CardResult(
        result.card,
        response.url,
        result.digest,
        result.protocol_version,
        conditions,
        identity,
        result.claim,
        warnings=result.warnings,
    )


async def judge(
    card: Any,
    keyring: Keyring,
    binding: Binding | None,
    fetcher: Fetcher,
    *,
    timeout: float = FETCH_TIMEOUT_S,  # noqa: ASYNC109
) -> CardResult:
    """Validate a card and verify its signatures (no identity: that depends on how it was obtained)."""
    if not isinstance(card, dict):
        return failed("InvalidCard", "the card is not a JSON object")
    try:
        protocol, warnings = check_card(card, "")
    except Invalid as exc:
        where = "; ".join(f"{d.field or '/'}: {d.issue}" for d in exc.details[:5]) or exc.message
        return failed("InvalidCard", f"not a valid A2A AgentCard: {where}")
    sets, problems = await keyring.sets(fetcher, _jku(card), timeout) if keyring.configured else ([], [])
    signature = verify_signatures(card, sets)
    if problems and signature.status != "True":
        signature = Condition(
            SIGNATURE_VERIFIED,
            "Unknown" if not sets else signature.status,
            "KeysUnavailable" if not sets else signature.reason,
            f"{signature.message}; {'; '.join(problems)}"[:1000],
        )
    name, version = card.get("name"), card.get("version")
    claim = (
        Claim(name, version if isinstance(version, str) else None) if isinstance(name, str) and name else None
    )
    return CardResult(
        card,
        None,
        sha256_digest(card),
        protocol,
        (signature,),
        claim=claim,
        warnings=tuple(f"{w.field}: {w.issue}" for w in warnings),
    )


async def judge_held(
    held: Mapping[str, Any],
    keyring: Keyring,
    binding: Binding | None,
    fetcher: Fetcher,
    *,
    timeout: float = FETCH_TIMEOUT_S,  # noqa: ASYNC109
) -> CardResult:
    """A card the runtime already fetched (``extra["heldCard"]``: ``{"card", "runtime"}`` with kagenti's
    status fields). We verify its signatures ourselves when we trust keys; otherwise we report what the
    runtime found, saying so in the reason."""
    runtime = held.get("runtime") if isinstance(held.get("runtime"), Mapping) else {}
    assert isinstance(runtime, Mapping)
    result = await judge(held.get("card"), keyring, binding, fetcher, timeout=timeout)
    if result.card is None:
        return result
    signature = result.conditions[0]
    valid = runtime.get("validSignature")
    if signature.status != "True" and not keyring.configured and isinstance(valid, bool):
        details = str(runtime.get("signatureVerificationDetails") or "")
        kid = runtime.get("signatureKeyId")
        text = "; ".join(p for p in (details, f"key {kid}" if kid else "") if p) or "as the runtime reported"
        reason = "VerifiedByRuntime" if valid else "RejectedByRuntime"
        signature = Condition(SIGNATURE_VERIFIED, str(valid), reason, text)
    peer = runtime.get("signatureSpiffeId")
    fallback = runtime.get("bindingStatus")
    identity_condition, identity = bind_identity(
        peer if isinstance(peer, str) and peer.startswith("spiffe://") else None,
        binding,
        tls=True,
        fallback=fallback if isinstance(fallback, Mapping) else None,
    )
    synced = Condition(CARD_SYNCED, "True", "HeldByRuntime", "read from the runtime's status")
    url = result.card.get("url")
    return CardResult(
        result.card,
        url if isinstance(url, str) else None,
        result.digest,
        result.protocol_version,
        (synced, signature, identity_condition),
        identity,
        result.claim,
        warnings=result.warnings,
    )
