"""Verify OIDC bearer tokens (signed JWTs) from one issuer and map them to principals.

The issuer's public keys come from its JWKS, found through OpenID discovery unless ``jwks_url`` is set, and
are cached. A token whose ``kid`` is not in the cached set triggers one refresh (never more than one every
``JWKS_MIN_REFRESH_S`` across all requests, so a flood of made-up kids cannot hammer the issuer); keys older
than ``JWKS_MAX_AGE_S`` are refetched when the next token arrives. Only asymmetric signatures are accepted:
``alg: none`` and HMAC are refused before any key is looked at, which also defeats the key-confusion attack
(an HS256 token "signed" with the issuer's public key as the secret).

Verified tokens are cached by their SHA-256 until they expire, so a repeat call costs a dict lookup and a
clock check. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import (
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
    SecurityWarning,
)
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from agentreg.domain.errors import Unauthenticated
from agentreg.domain.names import TENANT_RE
from agentreg.domain.principals import Principal, PrincipalKind, Role

log = logging.getLogger(__name__)

RoleMap = Mapping[str, tuple[tuple[str, Role], ...]]
PublicKey = RSAKey | ECKey | OKPKey

#: Signature algorithms a config may list; anything else (``none``, HMAC) is refused at configuration time.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}

JWKS_MIN_REFRESH_S = 10.0
JWKS_MAX_AGE_S = 3600.0
MAX_CACHED_TOKENS = 10_000
HTTP_TIMEOUT_S = 5.0
ANY_TENANT = "*"
# Subjects are stored as "user:<sub>" in 200-character columns (actors in audit events, key creators).
MAX_SUBJECT = 190


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """How to trust one OIDC issuer and turn its tokens' groups into tenant roles.

    ``role_map`` maps a value of ``roles_claim`` (a group, say) to ``(tenant, role)`` pairs; the pair
    ``("*", Role.SUPER_ADMIN)`` makes a super admin. ``roles_claim`` may be a dotted path into nested
    objects (``realm_access.roles``) when no top-level claim has that exact name.
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    roles_claim: str = "groups"
    role_map: RoleMap = field(default_factory=lambda: MappingProxyType({}))
    leeway_s: int = 60
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ValueError("OIDC issuer must not be empty")
        if not self.audience:
            raise ValueError("OIDC audience must not be empty")
        if self.leeway_s < 0:
            raise ValueError("OIDC leeway must not be negative")
        if not self.algorithms:
            raise ValueError("OIDC algorithms must not be empty")
        for alg in self.algorithms:
            if alg not in ASYMMETRIC_ALGORITHMS:
                raise ValueError(
                    f"OIDC algorithm {alg!r} is not allowed; use asymmetric ones: "
                    + ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
                )
        object.__setattr__(self, "role_map", _checked_role_map(self.role_map))


def parse_role_map(text: str) -> RoleMap:
    """Parse a role map from JSON: ``{"acme-devs": ["acme:developer"], "root": ["*:super_admin"]}``.

    Raises ValueError naming the bad entry: not an object, a value that is not a list of strings, a
    ``tenant:role`` without a colon or tenant, an unknown role, ``super_admin`` for a tenant other than
    ``*``, or ``*`` with another role.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"role map is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError('role map must be a JSON object like {"group": ["tenant:role", ...]}')
    parsed: dict[str, tuple[tuple[str, Role], ...]] = {}
    for group, entries in data.items():
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ValueError(f'role map entry {group!r}: must be a list of "tenant:role" strings')
        pairs: list[tuple[str, Role]] = []
        for entry in entries:
            tenant, colon, role_name = entry.rpartition(":")
            if not colon:
                raise ValueError(f'role map entry {group!r}: {entry!r} has no colon (want "tenant:role")')
            try:
                role = Role(role_name)
            except ValueError:
                raise ValueError(
                    f"role map entry {group!r}: {entry!r} names unknown role {role_name!r} "
                    f"(known: {', '.join(r.value for r in Role)})"
                ) from None
            pairs.append((tenant, role))
        parsed[group] = tuple(pairs)
    return _checked_role_map(parsed)


def _checked_role_map(role_map: Mapping[str, Any]) -> RoleMap:
    """The role map validated, its roles as ``Role``, duplicates dropped, frozen."""
    checked: dict[str, tuple[tuple[str, Role], ...]] = {}
    for group, pairs in role_map.items():
        if not isinstance(group, str) or not group:
            raise ValueError(f"role map entry {group!r}: the group must be a non-empty string")
        if not isinstance(pairs, (tuple, list)):
            raise ValueError(f"role map entry {group!r}: must be a sequence of (tenant, role) pairs")
        seen: dict[tuple[str, Role], None] = {}
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"role map entry {group!r}: {pair!r} is not a (tenant, role) pair")
            tenant, role_value = pair
            if not isinstance(tenant, str) or not tenant:
                raise ValueError(f"role map entry {group!r}: {pair!r} has no tenant")
            if tenant != ANY_TENANT and not TENANT_RE.fullmatch(tenant):
                raise ValueError(
                    f"role map entry {group!r}: {tenant!r} is not a tenant id "
                    "(1-63 lowercase letters, digits and '-')"
                )
            try:
                role = Role(role_value)
            except ValueError:
                raise ValueError(f"role map entry {group!r}: unknown role {role_value!r}") from None
            if role is Role.SUPER_ADMIN and tenant != ANY_TENANT:
                raise ValueError(
                    f"role map entry {group!r}: super_admin is global; write it as '*:super_admin', "
                    f"not for tenant {tenant!r}"
                )
            if tenant == ANY_TENANT and role is not Role.SUPER_ADMIN:
                raise ValueError(f"role map entry {group!r}: tenant '*' is only for super_admin, not {role}")
            seen[(tenant, role)] = None
        checked[group] = tuple(seen)
    return MappingProxyType(checked)


class _FetchError(Exception):
    """The issuer's discovery document or JWKS could not be fetched or used."""


class OidcVerifier:
    """Turns a bearer token from the configured issuer into a ``Principal``, or raises ``Unauthenticated``.

    ``clock`` (seconds since the epoch) drives token times, the token cache and the JWKS refresh limits.
    An ``http`` client passed in is not closed by ``aclose``.
    """

    def __init__(
        self,
        config: OidcConfig,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, follow_redirects=True)
        self._clock = clock
        self._registry = jws.JWSRegistry(algorithms=config.algorithms, strict_check_header=False)
        self._jwks_url = config.jwks_url
        self._keys: list[PublicKey] | None = None
        self._keys_fetched_at = float("-inf")  # last successful fetch
        self._fetch_tried_at = float("-inf")  # last attempt, successful or not
        self._fetches = 0  # successful fetches so far; lets waiters see that one happened meanwhile
        self._lock = asyncio.Lock()
        self._tokens: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    def cached(self, digest: bytes) -> Principal | None:
        """The principal of an already verified, unexpired token, by the token's SHA-256 (synchronous)."""
        cached = self._tokens.get(digest)
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        return None

    async def principal(self, token: str) -> Principal:
        """The principal a valid token stands for; ``Unauthenticated`` says why a token is refused."""
        if not token:
            raise Unauthenticated("no bearer token")
        now = self._clock()
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._tokens.get(digest)
        if cached is not None:
            valid_until, principal = cached
            if now < valid_until:
                return principal
            del self._tokens[digest]
            raise Unauthenticated("the token has expired")
        claims = await self._verified_claims(token, now)
        principal = self._to_principal(claims)
        self._remember(digest, float(claims["exp"]) + self._config.leeway_s, principal, now)
        return principal

    # --- verification ---------------------------------------------------------------------------------

    async def _verified_claims(self, token: str, now: float) -> dict[str, Any]:
        try:
            obj = jws.extract_compact(token.encode(), registry=self._registry)
        except (JoseError, ValueError, TypeError):
            raise Unauthenticated("the bearer token is not a well-formed signed JWT") from None
        header = obj.headers()
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._config.algorithms:
            raise Unauthenticated(
                f"the token's algorithm {_short(alg)} is not accepted "
                f"(accepted: {', '.join(self._config.algorithms)})"
            )
        if "crit" in header:
            raise Unauthenticated("the token has critical header parameters this server does not support")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated("the token's kid is not a string")

        key = await self._key_for(kid, alg)
        try:
            with warnings.catch_warnings():
                # joserfc warns that "EdDSA" is superseded by "Ed25519" (RFC 9864); identity providers
                # still issue it, and the configuration decides whether it is accepted.
                warnings.simplefilter("ignore", SecurityWarning)
                valid = jws.validate_compact(obj, key, registry=self._registry)
        except (JoseError, ValueError, TypeError):
            valid = False
        if not valid:
            raise Unauthenticated("the token's signature is invalid")

        try:
            claims = json.loads(obj.payload)
        except ValueError:
            raise Unauthenticated("the token's payload is not JSON") from None
        if not isinstance(claims, dict):
            raise Unauthenticated("the token's payload is not a JSON object")
        self._check_claims(claims, now)
        return claims

    def _check_claims(self, claims: dict[str, Any], now: float) -> None:
        config = self._config
        registry = JWTClaimsRegistry(
            now=int(now),
            leeway=config.leeway_s,
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "value": config.audience},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise Unauthenticated("the token has expired") from None
        except MissingClaimError as exc:
            raise Unauthenticated(f"the token lacks required claims: {exc.claim}") from None
        except ClaimError as exc:
            raise Unauthenticated(_claim_problem(exc.claim)) from None
        try:
            datetime.fromtimestamp(claims["exp"], UTC)
        except (OverflowError, ValueError, OSError):
            raise Unauthenticated("the token's exp is out of range") from None

    # --- keys -----------------------------------------------------------------------------------------

    async def _key_for(self, kid: str | None, alg: str) -> PublicKey:
        now = self._clock()
        if self._keys is None or now - self._keys_fetched_at >= JWKS_MAX_AGE_S:
            await self._refresh(self._fetches, stale_ok=self._keys is not None)
        key = self._pick(kid, alg)
        if key is None and kid is not None:
            # Perhaps the issuer rotated its keys: refresh once (if not refreshed too recently) and retry.
            await self._refresh(self._fetches, stale_ok=True)
            key = self._pick(kid, alg)
        if key is None:
            if kid is None:
                raise Unauthenticated("the token has no kid and the issuer has several keys")
            raise Unauthenticated(f"the token's key {_short(kid)} is not one of the issuer's {alg} keys")
        return key

    def _pick(self, kid: str | None, alg: str) -> PublicKey | None:
        key_type = _KEY_TYPES.get(alg[:2])
        candidates = [
            k
            for k in self._keys or ()
            if k.key_type == key_type
            and (kid is None or k.kid == kid)
            and k.get("alg") in (None, alg)
            and k.get("use") in (None, "sig")
        ]
        if kid is None:
            return candidates[0] if len(candidates) == 1 else None
        return candidates[0] if candidates else None

    async def _refresh(self, seen_fetches: int, *, stale_ok: bool) -> None:
        """Fetch the JWKS unless another request did since ``seen_fetches`` or one was tried too recently.

        Without usable keys (``stale_ok`` false) a failure raises ``Unauthenticated``; with keys already
        cached, a failure is logged and the cached keys stay in use.
        """
        async with self._lock:
            if self._fetches != seen_fetches:
                return  # another request refreshed while this one waited
            now = self._clock()
            if now - self._fetch_tried_at < JWKS_MIN_REFRESH_S:
                if stale_ok:
                    return
                raise Unauthenticated(
                    "cannot fetch the issuer's keys (last attempt failed); try again shortly"
                )
            self._fetch_tried_at = now
            try:
                keys = await self._fetch_keys()
            except _FetchError as exc:
                log.warning("cannot fetch the keys of OIDC issuer %s: %s", self._config.issuer, exc)
                if stale_ok:
                    return
                raise Unauthenticated(
                    "cannot fetch the issuer's keys to verify the token; try again later"
                ) from None
            self._keys = keys
            self._keys_fetched_at = now
            self._fetches += 1
            log.info("fetched %d keys of OIDC issuer %s", len(keys), self._config.issuer)

    async def _fetch_keys(self) -> list[PublicKey]:
        url = self._jwks_url or await self._discover()
        try:
            document = await self._get_json(url)
        except _FetchError:
            if self._config.jwks_url is None:
                self._jwks_url = None  # discover again next time: the issuer may have moved its JWKS
            raise
        raw_keys = document.get("keys")
        if not isinstance(raw_keys, list):
            raise _FetchError(f"{url} is not a JWKS (no 'keys' list)")
        keys: list[PublicKey] = []
        for raw in raw_keys:
            try:
                key = JWKRegistry.import_key(raw)
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                log.warning(
                    "skipping a key of OIDC issuer %s that cannot be imported: %s", self._config.issuer, exc
                )
                continue
            if isinstance(key, (RSAKey, ECKey, OKPKey)) and key.get("use") in (None, "sig"):
                keys.append(key)
        if not keys:
            raise _FetchError(f"{url} holds no usable signing keys")
        return keys

    async def _discover(self) -> str:
        url = f"{self._config.issuer.rstrip('/')}/.well-known/openid-configuration"
        document = await self._get_json(url)
        if document.get("issuer") != self._config.issuer:
            raise _FetchError(f"{url} names issuer {document.get('issuer')!r}, not {self._config.issuer!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise _FetchError(f"{url} has no jwks_uri")
        self._jwks_url = jwks_uri
        return jwks_uri

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except httpx.HTTPStatusError as exc:
            raise _FetchError(f"{url} answered HTTP {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            raise _FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            raise _FetchError(f"{url} did not return JSON") from exc
        if not isinstance(document, dict):
            raise _FetchError(f"{url} did not return a JSON object")
        return document

    # --- principals and the token cache ---------------------------------------------------------------

    def _to_principal(self, claims: dict[str, Any]) -> Principal:
        sub: str = claims["sub"]
        if len(sub) > MAX_SUBJECT or not sub.isprintable():
            raise Unauthenticated(f"the token's sub must be at most {MAX_SUBJECT} printable characters")
        roles: dict[str, set[Role]] = {}
        super_admin = False
        for value in _claim_strings(claims, self._config.roles_claim):
            for tenant, role in self._config.role_map.get(value, ()):
                if tenant == ANY_TENANT and role is Role.SUPER_ADMIN:
                    super_admin = True
                else:
                    roles.setdefault(tenant, set()).add(role)
        display_name = next(
            (v for v in (claims.get("preferred_username"), claims.get("email")) if isinstance(v, str) and v),
            sub,
        )
        return Principal(
            subject=f"user:{sub}",
            kind=PrincipalKind.USER,
            memberships=MappingProxyType({t: frozenset(roles[t]) for t in sorted(roles)}),
            super_admin=super_admin,
            display_name=display_name,
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )

    def _remember(self, digest: bytes, valid_until: float, principal: Principal, now: float) -> None:
        tokens = self._tokens
        if len(tokens) >= MAX_CACHED_TOKENS:
            for expired in [d for d, (until, _) in tokens.items() if until <= now]:
                del tokens[expired]
            # Still full of live tokens: drop the oldest tenth, so the scan above stays rare.
            while len(tokens) >= MAX_CACHED_TOKENS * 0.9:
                tokens.popitem(last=False)
        tokens[digest] = (valid_until, principal)


def _claim_strings(claims: Mapping[str, Any], name: str) -> list[str]:
    """The string values of claim ``name`` (a string or a list), or of the dotted path ``name``."""
    value: Any = claims.get(name)
    if value is None and "." in name:
        value = claims
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _claim_problem(claim: str) -> str:
    return {
        "iss": "the token was issued by another issuer",
        "aud": "the token is not meant for this audience",
        "nbf": "the token is not valid yet",
        "iat": "the token was issued in the future",
        "sub": "the token's sub is not a non-empty string",
        "exp": "the token's exp is not a number",
    }.get(claim, f"the token's {_short(claim)} claim is invalid")


def _short(value: object) -> str:
    """``repr`` of an attacker-supplied value, cut short for error messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
