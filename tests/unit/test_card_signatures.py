"""JWS signatures on A2A agent cards: RFC 7515 over the RFC 8785 canonical card without ``signatures``.

Keys come only from trust anchors (JWKS files here); the fetcher's resolver records every name it is asked
to resolve, which shows that a ``jku`` the signer names is never fetched.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from agentreg.domain.digest import canonical_json
from agentreg.domain.inventory import Condition
from agentreg.domain.sources import IdentityBinding
from agentreg.services.fetcher import Fetcher
from agentreg.sources.cards import (
    Keyring,
    bind_identity,
    judge,
    resolve_binding,
    sign_card,
    signing_payload,
    verify_signatures,
)
from tests.factories import card_03, card_10

ED = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
OTHER = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})  # same kid, another key


def trusted(*keys: Any) -> list[tuple[str, KeySet]]:
    return [("anchor.json", KeySet.import_key_set({"keys": [k.as_dict(private=False) for k in keys]}))]


def anchor_file(tmp_path: Path, *keys: Any) -> str:
    path = tmp_path / "anchors.json"
    path.write_text(json.dumps({"keys": [k.as_dict(private=False) for k in keys]}))
    return str(path)


@pytest.mark.parametrize(("key", "alg"), [(ED, "Ed25519"), (ED, "EdDSA"), (EC, "ES256")])
def test_a_signed_card_verifies_with_a_trusted_key(key: Any, alg: str) -> None:
    signed = sign_card(card_03(), key, {"alg": alg, "kid": key.kid})
    verdict = verify_signatures(signed, trusted(ED, EC))
    assert (verdict.status, verdict.reason) == ("True", "Verified")
    assert key.kid in verdict.message and alg in verdict.message


def test_the_payload_is_the_canonical_card_without_signatures() -> None:
    signed = sign_card(card_10(), EC, {"alg": "ES256", "kid": "ec-1"})
    assert signing_payload(signed) == canonical_json(card_10())
    protected = json.loads(base64.urlsafe_b64decode(signed["signatures"][0]["protected"] + "=="))
    assert protected == {"alg": "ES256", "kid": "ec-1"}
    # Key order and whitespace do not matter: the canonical form is what is signed.
    reordered = json.loads(json.dumps(dict(reversed(list(signed.items())))))
    assert verify_signatures(reordered, trusted(EC)).status == "True"


def test_a_tampered_card_fails() -> None:
    signed = sign_card(card_03(), EC, {"alg": "ES256", "kid": "ec-1"})
    tampered = {**signed, "description": "Exfiltrates questions"}
    verdict = verify_signatures(tampered, trusted(EC))
    assert (verdict.status, verdict.reason) == ("False", "InvalidSignature")
    forged = {**signed, "signatures": [{**signed["signatures"][0], "signature": "AAAA"}]}
    assert verify_signatures(forged, trusted(EC)).status == "False"


def test_an_untrusted_key_fails_even_with_a_known_kid() -> None:
    signed = sign_card(card_03(), OTHER, {"alg": "ES256", "kid": "ec-1"})
    assert verify_signatures(signed, trusted(EC)).reason == "InvalidSignature"
    unknown = sign_card(card_03(), ECKey.generate_key("P-256"), {"alg": "ES256", "kid": "stranger"})
    verdict = verify_signatures(unknown, trusted(EC, ED))
    assert (verdict.status, verdict.reason) == ("False", "UntrustedKey")
    assert "no trusted key has kid 'stranger'" in verdict.message


def test_one_good_signature_among_several_is_enough() -> None:
    card = sign_card(card_03(), OTHER, {"alg": "ES256", "kid": "ec-1"})
    card = sign_card(card, ED, {"alg": "Ed25519", "kid": "ed-1"})
    assert verify_signatures(card, trusted(ED)).message.startswith("signature 1 verified")


def test_symmetric_and_none_algorithms_are_refused() -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa"})
    signed = sign_card(card_03(), rsa, {"alg": "RS256", "kid": "rsa"})
    assert verify_signatures(signed, trusted(rsa)).status == "True"
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"rsa"}').rstrip(b"=").decode()
    hmac = {**card_03(), "signatures": [{"protected": header, "signature": "AAAA"}]}
    assert "algorithm 'HS256' is not accepted" in verify_signatures(hmac, trusted(rsa)).message
    none = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    unsigned = {**card_03(), "signatures": [{"protected": none, "signature": ""}]}
    assert verify_signatures(unsigned, trusted(rsa)).status == "False"


def test_unsigned_cards_and_missing_keys_are_told_apart() -> None:
    assert verify_signatures(card_03(), trusted(EC)).reason == "Unsigned"
    signed = sign_card(card_03(), EC, {"alg": "ES256"})
    assert verify_signatures(signed, []) == Condition(
        "SignatureVerified", "Unknown", "NoTrustedKeys", "no trust anchor or JWKS is configured"
    )
    assert verify_signatures(signed, trusted(EC)).status == "True"  # no kid: every trusted key is tried


async def test_a_jku_the_signer_names_is_never_fetched(tmp_path: Path) -> None:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["93.184.216.34"]

    fetcher = Fetcher("", resolve=resolve)
    attacker = ECKey.generate_key("P-256", parameters={"kid": "evil"})
    header = {"alg": "ES256", "kid": "evil", "jku": "https://keys.attacker.example/jwks.json"}
    signed = sign_card(card_03(), attacker, header)
    keyring = Keyring(anchors=(anchor_file(tmp_path, EC),))
    result = await judge(signed, keyring, None, fetcher)
    assert asked == []
    signature = result.conditions[0]
    assert (signature.status, signature.reason) == ("False", "UntrustedKey")
    # Signed by a trusted key, the same jku changes nothing: the anchor's key is used.
    good = sign_card(card_03(), EC, {**header, "kid": "ec-1"})
    assert (await judge(good, keyring, None, fetcher)).conditions[0].status == "True"
    assert asked == []


async def test_judge_validates_the_card_and_names_its_claim(tmp_path: Path) -> None:
    keyring = Keyring(anchors=(anchor_file(tmp_path, ED),))
    fetcher = Fetcher("")
    result = await judge(
        sign_card(card_10("2.1.0"), ED, {"alg": "Ed25519", "kid": "ed-1"}), keyring, None, fetcher
    )
    assert (result.protocol_version, result.claim) == ("1.0", result.claim)
    assert result.claim is not None and (result.claim.name, result.claim.version) == ("Research", "2.1.0")
    assert result.digest is not None and result.digest.startswith("sha256:")
    invalid = await judge({"name": "x"}, keyring, None, fetcher)
    assert invalid.card is None and invalid.conditions[0].reason == "InvalidCard"
    broken = Keyring(anchors=(str(tmp_path / "missing.json"),))
    unavailable = await judge(sign_card(card_03(), ED, {"alg": "Ed25519"}), broken, None, fetcher)
    assert (unavailable.conditions[0].status, unavailable.conditions[0].reason) == (
        "Unknown",
        "KeysUnavailable",
    )


def test_the_binding_comes_from_the_agent_card_then_the_runtime_then_the_source() -> None:
    configured = IdentityBinding("source.example", strict=True)
    card = resolve_binding({"trustDomain": "Card.Example", "strict": False}, None, configured)
    assert card is not None and (card.trust_domain, card.strict, card.origin) == (
        "card.example",
        False,
        "agentCard",
    )
    runtime = resolve_binding(None, {"spiffe": {"trustDomain": "rt.example"}}, configured)
    assert runtime is not None and (runtime.trust_domain, runtime.strict, runtime.origin) == (
        "rt.example",
        True,
        "agentRuntime",
    )
    # A kagenti binding without a trust domain means the default one, but its strictness still applies.
    inherited = resolve_binding({"strict": False}, None, configured)
    assert inherited is not None and (inherited.trust_domain, inherited.strict) == ("source.example", False)
    assert resolve_binding(None, None, None) is None


def test_identity_is_bound_only_within_the_trust_domain() -> None:
    binding = resolve_binding({"trustDomain": "prod.acme.org", "strict": True}, None, None)
    bound, identity = bind_identity("spiffe://prod.acme.org/ns/a/sa/bot", binding, tls=True)
    assert (bound.status, bound.reason) == ("True", "Bound")
    assert identity == {
        "spiffeId": "spiffe://prod.acme.org/ns/a/sa/bot",
        "trustDomain": "prod.acme.org",
        "expected": "prod.acme.org",
        "bound": True,
        "strict": True,
        "origin": "agentCard",
    }
    other, _ = bind_identity("spiffe://prod.acme.org.evil/ns/a", binding, tls=True)
    assert (other.status, other.reason) == ("False", "TrustDomainMismatch")
    assert bind_identity(None, binding, tls=False)[0].reason == "NoPeerCertificate"
    assert bind_identity(None, binding, tls=True)[0].reason == "NoSpiffeId"
    assert bind_identity("spiffe://x/y", None, tls=True)[0].status == "Unknown"
