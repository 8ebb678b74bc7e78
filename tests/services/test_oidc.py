"""OIDC bearer tokens: signatures, claims, key discovery and rotation, attacks, role mapping, the token cache.

Every test talks over real HTTP to a ``LocalIssuer`` started here, which signs real tokens with real RSA,
EC P-256 and Ed25519 keys generated for the test run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from agentreg.domain.errors import Unauthenticated
from agentreg.domain.principals import PrincipalKind, Role
from agentreg.services import oidc
from agentreg.services.oidc import OidcConfig, OidcVerifier, parse_role_map

NOW = 1_800_000_000.0
AUDIENCE = "agentreg"
ROLE_MAP = {
    "acme-devs": ["acme:developer"],
    "acme-ops": ["acme:operator", "acme:viewer"],
    "globex-readers": ["globex:viewer"],
    "root": ["*:super_admin"],
}

Keys = dict[str, Key]


class LocalIssuer:
    """A local OIDC issuer for the tests.

    It stands in for an identity provider (Keycloak, Entra ID, Okta, ...), which cannot exist on this
    machine: a real HTTP server on 127.0.0.1 (a free port) serving ``/.well-known/openid-configuration`` and
    a JWKS of the keys it currently publishes, counting the requests it gets, and signing tokens with the
    private halves of those keys.
    """

    def __init__(self) -> None:
        self.published: list[Key] = []
        self.requests: Counter[str] = Counter()
        self.fail_jwks = False
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests[self.path] += 1
                if self.path == "/.well-known/openid-configuration":
                    issuer._reply(self, 200, {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"})
                elif self.path == "/jwks" and not issuer.fail_jwks:
                    issuer._reply(self, 200, {"keys": [k.as_dict(private=False) for k in issuer.published]})
                elif self.path == "/jwks":
                    issuer._reply(self, 503, {"error": "down"})
                else:
                    issuer._reply(self, 404, {"error": "not found"})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def jwks_fetches(self) -> int:
        return self.requests["/jwks"]

    def token(
        self, key: Key, alg: str, *, kid: str | None = "", header: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        """A token signed with ``key``; ``kid=""`` means the key's own kid, ``None`` none at all."""
        body: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": int(NOW),
            "exp": int(NOW) + 300,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        head: dict[str, Any] = {"alg": alg, **(header or {})}
        if kid is not None:
            head["kid"] = kid or key.kid
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc's note that "EdDSA" is superseded by "Ed25519"
            return jwt.encode(head, body, key, algorithms=[alg])


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> list[dict[str, Any]]:
    head, body, _ = token.split(".")
    return [json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) for s in (head, body)]


@pytest.fixture(scope="module")
def keys() -> Keys:
    return {
        "rsa": RSAKey.generate_key(2048, {"kid": "rsa-1", "use": "sig"}),
        "rsa-next": RSAKey.generate_key(2048, {"kid": "rsa-2"}),
        "ec": ECKey.generate_key("P-256", {"kid": "ec-1"}),
        "ed": OKPKey.generate_key("Ed25519", {"kid": "ed-1"}),
    }


@pytest.fixture
def issuer(keys: Keys) -> Iterator[LocalIssuer]:
    server = LocalIssuer()
    server.published = [keys["rsa"], keys["ec"], keys["ed"]]
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config(issuer: LocalIssuer) -> OidcConfig:
    return OidcConfig(issuer=issuer.url, audience=AUDIENCE, role_map=parse_role_map(json.dumps(ROLE_MAP)))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # Plain HTTP to loopback: no CA bundle to load (which costs ~20 ms a client), no proxy from the environment.
    async with httpx.AsyncClient(verify=False, trust_env=False) as client:
        yield client


@pytest.fixture
async def verifier(config: OidcConfig, clock: Clock, http: httpx.AsyncClient) -> AsyncIterator[OidcVerifier]:
    v = OidcVerifier(config, http, clock)
    yield v
    await v.aclose()
    assert not http.is_closed  # a client passed in belongs to the caller


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts signature checks (one entry per call), to tell cache hits from verifications."""
    calls: list[int] = []
    real = jws.validate_compact

    def counted(*args: Any, **kwargs: Any) -> bool:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jws, "validate_compact", counted)
    return calls


async def refused(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.principal(token)
    return caught.value.message


# --- accepted tokens and role mapping -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "alg"), [("rsa", "RS256"), ("ec", "ES256"), ("ed", "EdDSA")])
async def test_signed_tokens_of_each_algorithm_are_accepted(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys, name: str, alg: str
) -> None:
    token = issuer.token(keys[name], alg, groups=["acme-devs"], preferred_username="alice@acme")
    principal = await verifier.principal(token)
    assert principal.subject == "user:alice"
    assert principal.kind is PrincipalKind.USER
    assert principal.display_name == "alice@acme"
    assert dict(principal.memberships) == {"acme": {Role.DEVELOPER}}
    assert not principal.super_admin
    assert principal.expires_at == datetime.fromtimestamp(NOW + 300, UTC)
    assert principal.key_id is None


async def test_groups_merge_into_roles_across_tenants(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys
) -> None:
    token = issuer.token(keys["rsa"], "RS256", groups=["acme-devs", "acme-ops", "globex-readers", "other"])
    principal = await verifier.principal(token)
    assert dict(principal.memberships) == {
        "acme": {Role.DEVELOPER, Role.OPERATOR, Role.VIEWER},
        "globex": {Role.VIEWER},
    }
    assert principal.tenants == ("acme", "globex")
    assert not principal.super_admin
    with pytest.raises(TypeError):
        principal.memberships["evil"] = frozenset({Role.TENANT_ADMIN})  # type: ignore[index]


async def test_a_group_mapped_to_star_super_admin_makes_a_super_admin(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys
) -> None:
    principal = await verifier.principal(issuer.token(keys["ec"], "ES256", groups="root"))
    assert principal.super_admin
    assert dict(principal.memberships) == {}


async def test_a_token_mapping_to_no_tenant_is_still_a_principal(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys
) -> None:
    by_email = await verifier.principal(issuer.token(keys["rsa"], "RS256", email="a@x.test", groups=["x"]))
    assert (by_email.display_name, dict(by_email.memberships), by_email.super_admin) == (
        "a@x.test",
        {},
        False,
    )
    bare = await verifier.principal(issuer.token(keys["rsa"], "RS256", sub="bob"))
    assert (bare.subject, bare.display_name) == ("user:bob", "bob")


async def test_roles_claim_can_be_another_or_nested_claim(
    issuer: LocalIssuer, keys: Keys, clock: Clock
) -> None:
    config = OidcConfig(
        issuer=issuer.url,
        audience=AUDIENCE,
        roles_claim="realm_access.roles",
        role_map=parse_role_map('{"ops": ["acme:operator"]}'),
    )
    verifier = OidcVerifier(config, clock=clock)
    try:
        token = issuer.token(keys["rsa"], "RS256", realm_access={"roles": ["ops", 7]})
        assert dict((await verifier.principal(token)).memberships) == {"acme": {Role.OPERATOR}}
    finally:
        await verifier.aclose()


async def test_an_audience_list_containing_ours_is_accepted(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys
) -> None:
    token = issuer.token(keys["rsa"], "RS256", aud=["other-api", AUDIENCE])
    assert (await verifier.principal(token)).subject == "user:alice"


# --- refused claims -----------------------------------------------------------------------------------


async def test_an_expired_token_is_refused_but_one_within_leeway_is_accepted(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys
) -> None:
    assert "expired" in await refused(verifier, issuer.token(keys["rsa"], "RS256", exp=int(NOW) - 61))
    assert await verifier.principal(issuer.token(keys["rsa"], "RS256", exp=int(NOW) - 30))


async def test_a_token_not_yet_valid_is_refused_but_one_within_leeway_is_accepted(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys
) -> None:
    assert "not valid yet" in await refused(verifier, issuer.token(keys["rsa"], "RS256", nbf=int(NOW) + 120))
    assert "issued in the future" in await refused(
        verifier, issuer.token(keys["rsa"], "RS256", iat=int(NOW) + 120)
    )
    assert await verifier.principal(issuer.token(keys["rsa"], "RS256", nbf=int(NOW) + 30, iat=int(NOW) + 30))


async def test_wrong_audience_and_wrong_issuer_are_refused(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys
) -> None:
    assert "audience" in await refused(verifier, issuer.token(keys["rsa"], "RS256", aud="other-api"))
    assert "audience" in await refused(verifier, issuer.token(keys["rsa"], "RS256", aud=["a", "b"]))
    assert "another issuer" in await refused(
        verifier, issuer.token(keys["rsa"], "RS256", iss=issuer.url + "/")
    )
    assert "another issuer" in await refused(
        verifier, issuer.token(keys["rsa"], "RS256", iss="https://evil.example")
    )


@pytest.mark.parametrize("claim", ["sub", "exp", "aud", "iss"])
async def test_a_token_missing_a_required_claim_is_refused(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys, claim: str
) -> None:
    message = await refused(verifier, issuer.token(keys["rsa"], "RS256", **{claim: None}))
    assert "lacks required claims" in message
    assert claim in message


async def test_garbage_is_refused(verifier: OidcVerifier) -> None:
    assert "well-formed" in await refused(verifier, "not-a-jwt")
    assert "well-formed" in await refused(verifier, "a.b.c")
    assert "no bearer token" in await refused(verifier, "")


# --- attacks ------------------------------------------------------------------------------------------


async def test_an_alg_none_token_is_refused_without_looking_at_keys(
    verifier: OidcVerifier, issuer: LocalIssuer
) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": int(NOW) + 300, "groups": ["root"]}
    token = f"{header}.{b64(json.dumps(claims).encode())}."
    assert "'none' is not accepted" in await refused(verifier, token)
    assert sum(issuer.requests.values()) == 0


@pytest.mark.parametrize("secret_form", ["pem", "jwk-json"])
async def test_hs256_signed_with_the_public_key_is_refused(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys, secret_form: str
) -> None:
    """The key-confusion attack: HMAC "signed" with the issuer's public key, which anyone can download."""
    public = keys["rsa"].as_dict(private=False)
    secret = (
        RSAKey.import_key(public).as_pem(private=False)
        if secret_form == "pem"
        else json.dumps(public).encode()
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": int(NOW) + 300, "groups": ["root"]}
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    signature = b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    assert "'HS256' is not accepted" in await refused(verifier, f"{signing_input}.{signature}")


async def test_a_tampered_payload_is_refused(verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys) -> None:
    token = issuer.token(keys["rsa"], "RS256", groups=["globex-readers"])
    head, _, signature = token.split(".")
    claims = segments(token)[1] | {"groups": ["root"]}
    forged = f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
    assert "signature is invalid" in await refused(verifier, forged)
    assert (await verifier.principal(token)).memberships  # the genuine one still passes


async def test_a_token_signed_with_a_key_of_another_type_under_a_known_kid_is_refused(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys
) -> None:
    # ES256 claiming the RSA key's kid: no EC key has that kid, so it is unknown.
    assert "not one of the issuer's ES256 keys" in await refused(
        verifier, issuer.token(keys["ec"], "ES256", kid="rsa-1")
    )


def test_a_config_cannot_allow_hmac_or_none(issuer: LocalIssuer) -> None:
    for alg in ("HS256", "none"):
        with pytest.raises(ValueError, match=alg):
            OidcConfig(issuer=issuer.url, audience=AUDIENCE, algorithms=("RS256", alg))


# --- keys: discovery, refresh, rotation ---------------------------------------------------------------


async def test_discovery_and_jwks_are_fetched_once(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys
) -> None:
    for name, alg in [("rsa", "RS256"), ("ec", "ES256"), ("ed", "EdDSA")]:
        await verifier.principal(issuer.token(keys[name], alg))
    assert issuer.requests == {"/.well-known/openid-configuration": 1, "/jwks": 1}


async def test_a_configured_jwks_url_skips_discovery(issuer: LocalIssuer, keys: Keys, clock: Clock) -> None:
    verifier = OidcVerifier(
        OidcConfig(issuer=issuer.url, audience=AUDIENCE, jwks_url=f"{issuer.url}/jwks"), clock=clock
    )
    try:
        await verifier.principal(issuer.token(keys["rsa"], "RS256"))
    finally:
        await verifier.aclose()
    assert issuer.requests == {"/jwks": 1}
    assert verifier._http.is_closed  # its own client, closed by aclose


async def test_an_unknown_kid_refreshes_the_keys_once_then_is_refused(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys, clock: Clock
) -> None:
    await verifier.principal(issuer.token(keys["rsa"], "RS256"))
    assert issuer.jwks_fetches == 1
    unknown = issuer.token(keys["rsa-next"], "RS256")  # rsa-2 is not published

    # Right after a fetch, an unknown kid does not fetch again.
    assert "'rsa-2' is not one of the issuer's RS256 keys" in await refused(verifier, unknown)
    assert issuer.jwks_fetches == 1

    clock.now += 11
    assert "is not one of" in await refused(verifier, unknown)
    assert issuer.jwks_fetches == 2
    # A flood of unknown kids (concurrent or not) within 10 s of that refresh fetches nothing more.
    flood = [issuer.token(keys["rsa-next"], "RS256", kid=f"bogus-{i}") for i in range(20)]
    results = await asyncio.gather(*(verifier.principal(t) for t in flood), return_exceptions=True)
    assert all(isinstance(r, Unauthenticated) for r in results)
    assert issuer.jwks_fetches == 2


async def test_concurrent_unknown_kids_share_one_refresh(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys, clock: Clock
) -> None:
    await verifier.principal(issuer.token(keys["rsa"], "RS256"))
    clock.now += 11
    flood = [issuer.token(keys["rsa-next"], "RS256", kid=f"bogus-{i}") for i in range(20)]
    results = await asyncio.gather(*(verifier.principal(t) for t in flood), return_exceptions=True)
    assert all(isinstance(r, Unauthenticated) for r in results)
    assert issuer.jwks_fetches == 2


async def test_key_rotation_is_picked_up_without_restart(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys, clock: Clock
) -> None:
    await verifier.principal(issuer.token(keys["rsa"], "RS256", sub="before"))
    issuer.published = [keys["rsa-next"]]  # the issuer swaps its keys
    clock.now += 11

    after = await verifier.principal(issuer.token(keys["rsa-next"], "RS256", sub="after"))
    assert after.subject == "user:after"
    assert issuer.jwks_fetches == 2
    # The retired key is gone: a fresh token signed with it is refused (and fetches nothing more so soon).
    assert "'rsa-1' is not one of" in await refused(verifier, issuer.token(keys["rsa"], "RS256", sub="late"))
    assert issuer.jwks_fetches == 2


async def test_keys_are_refetched_when_old(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys, clock: Clock
) -> None:
    await verifier.principal(issuer.token(keys["rsa"], "RS256", sub="a"))
    clock.now += oidc.JWKS_MAX_AGE_S
    await verifier.principal(
        issuer.token(keys["rsa"], "RS256", sub="b", iat=int(clock.now), exp=int(clock.now) + 60)
    )
    assert issuer.jwks_fetches == 2


async def test_a_token_without_kid_is_accepted_when_the_issuer_has_one_key_of_its_type(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys
) -> None:
    assert await verifier.principal(issuer.token(keys["ec"], "ES256", kid=None))
    issuer.published = [keys["rsa"], keys["rsa-next"]]
    other = OidcVerifier(OidcConfig(issuer=issuer.url, audience=AUDIENCE), clock=Clock())
    try:
        assert "no kid" in await refused(other, issuer.token(keys["rsa"], "RS256", kid=None))
    finally:
        await other.aclose()


async def test_an_unreachable_issuer_is_a_clear_401_and_logged(
    keys: Keys, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    gone = LocalIssuer()
    gone.stop()  # nothing listens on its port any more
    verifier = OidcVerifier(OidcConfig(issuer=gone.url, audience=AUDIENCE), clock=clock)
    token = gone.token(keys["rsa"], "RS256")
    try:
        with caplog.at_level(logging.WARNING, logger="agentreg.services.oidc"):
            assert "cannot fetch the issuer's keys" in await refused(verifier, token)
            # Within 10 s of the failed attempt, no new attempt is made.
            assert "cannot fetch the issuer's keys" in await refused(verifier, token)
    finally:
        await verifier.aclose()
    assert len(caplog.records) == 1
    assert gone.url in caplog.text
    assert token not in caplog.text


async def test_a_failing_jwks_endpoint_is_a_clear_401_and_stale_keys_keep_working(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    issuer.fail_jwks = True
    token = issuer.token(keys["rsa"], "RS256")
    with caplog.at_level(logging.WARNING, logger="agentreg.services.oidc"):
        assert "cannot fetch the issuer's keys" in await refused(verifier, token)
    assert "HTTP 503" in caplog.text
    assert token not in caplog.text

    issuer.fail_jwks = False
    clock.now += 11
    assert await verifier.principal(token)
    issuer.fail_jwks = True
    clock.now += oidc.JWKS_MAX_AGE_S
    fresh = issuer.token(keys["rsa"], "RS256", iat=int(clock.now), exp=int(clock.now) + 60)
    assert await verifier.principal(fresh)  # the refetch failed; the cached keys still verify


# --- the token cache ----------------------------------------------------------------------------------


async def test_a_repeated_token_is_served_from_the_cache(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys, verifications: list[int]
) -> None:
    token = issuer.token(keys["rsa"], "RS256", groups=["acme-devs"])
    first = await verifier.principal(token)
    again = await verifier.principal(token)
    assert again is first
    assert len(verifications) == 1


async def test_a_cached_token_is_refused_once_the_clock_passes_its_exp(
    verifier: OidcVerifier, issuer: LocalIssuer, keys: Keys, clock: Clock, verifications: list[int]
) -> None:
    token = issuer.token(keys["rsa"], "RS256")
    await verifier.principal(token)
    clock.now = NOW + 300 + 59  # past exp, within leeway
    assert await verifier.principal(token)
    clock.now = NOW + 300 + 60
    assert "expired" in await refused(verifier, token)
    assert "expired" in await refused(verifier, token)
    # The first refusal came from the cache (and dropped the entry); the second from verification.
    assert len(verifications) == 2


async def test_the_token_cache_is_bounded(
    verifier: OidcVerifier,
    issuer: LocalIssuer,
    keys: Keys,
    verifications: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(oidc, "MAX_CACHED_TOKENS", 10)
    tokens = [issuer.token(keys["ec"], "ES256", sub=f"user-{i}") for i in range(12)]
    for token in tokens:
        await verifier.principal(token)
    assert len(verifications) == 12
    await verifier.principal(tokens[-1])
    assert len(verifications) == 12  # the newest is cached
    await verifier.principal(tokens[0])
    assert len(verifications) == 13  # the oldest was evicted, so it is verified again


# --- role maps ----------------------------------------------------------------------------------------


def test_parse_role_map_accepts_groups_to_tenant_roles() -> None:
    parsed = parse_role_map(
        '{"acme-devs": ["acme:developer", "acme:developer", "beta:viewer"], "root": ["*:super_admin"], "none": []}'
    )
    assert dict(parsed) == {
        "acme-devs": (("acme", Role.DEVELOPER), ("beta", Role.VIEWER)),
        "root": (("*", Role.SUPER_ADMIN),),
        "none": (),
    }
    with pytest.raises(TypeError):
        parsed["x"] = ()  # type: ignore[index]
    assert dict(parse_role_map("{}")) == {}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("not json", "not valid JSON"),
        ('["acme:developer"]', "JSON object"),
        ('{"devs": "acme:developer"}', "'devs': must be a list"),
        ('{"devs": ["acme:developer", 3]}', "'devs': must be a list"),
        ('{"devs": ["acme-developer"]}', "'devs': 'acme-developer' has no colon"),
        ('{"devs": ["acme:wizard"]}', "'devs': 'acme:wizard' names unknown role 'wizard'"),
        ('{"devs": [":developer"]}', "'devs'"),
        ('{"root": ["acme:super_admin"]}', "'root': super_admin is global"),
        ('{"all": ["*:viewer"]}', "'all': tenant '*' is only for super_admin"),
    ],
)
def test_parse_role_map_names_the_bad_entry(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="role map") as caught:
        parse_role_map(text)
    assert complaint in str(caught.value)


def test_a_config_role_map_is_checked_and_frozen(issuer: LocalIssuer) -> None:
    config = OidcConfig(issuer=issuer.url, audience=AUDIENCE, role_map={"devs": (("acme", "developer"),)})  # type: ignore[dict-item]
    assert config.role_map["devs"] == (("acme", Role.DEVELOPER),)
    assert config.role_map["devs"][0][1] is Role.DEVELOPER
    with pytest.raises(ValueError, match="super_admin is global"):
        OidcConfig(issuer=issuer.url, audience=AUDIENCE, role_map={"x": (("acme", Role.SUPER_ADMIN),)})
