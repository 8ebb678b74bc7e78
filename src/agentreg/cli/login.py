"""agentreg login|logout: store a token or API key per registry URL, or get a token by the device flow.

The device flow (RFC 8628) asks the registry which identity provider and public client to use
(``GET /v1/auth/config``), or is told with ``--issuer URL --client-id ID``. It reads the provider's
discovery document, shows a code to enter in a browser, and polls the token endpoint until the sign-in
is approved.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import typer

from agentreg.cli import credentials
from agentreg.cli.context import options
from agentreg.cli.output import error_line
from agentreg.client import APIConnectionError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5
_sleep: Callable[[float], None] = time.sleep  # the tests replace it


class LoginError(Exception):
    """The sign-in failed (denied, expired, or the provider misbehaved)."""


def _read_secret(what: str) -> str:
    if sys.stdin.isatty():
        secret = str(typer.prompt(f"Paste the {what}", hide_input=True))
    else:
        secret = sys.stdin.read()
    secret = secret.strip()
    if not secret:
        raise typer.BadParameter(f"no {what} given (pass it, or pipe it on stdin)")
    return secret


def login(
    ctx: typer.Context,
    token: Annotated[
        str | None, typer.Option("--token", help="OIDC token to store; - reads it from stdin")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="API key (agr_...) to store; - reads it from stdin")
    ] = None,
    device: Annotated[
        bool, typer.Option("--device", help="sign in in a browser (OAuth device flow) for a token")
    ] = False,
    issuer: Annotated[
        str | None,
        typer.Option("--issuer", envvar="AGENTREG_OIDC_ISSUER", help="identity provider (--device)"),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", envvar="AGENTREG_OIDC_CLIENT_ID", help="OAuth client id (--device)"),
    ] = None,
    scope: Annotated[str, typer.Option("--scope", help="scopes to ask for (--device)")] = "openid",
    use_id_token: Annotated[
        bool,
        typer.Option("--use-id-token", help="store the ID token, not the access token (--device)"),
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="check the credential with the registry first")
    ] = True,
) -> None:
    """Store credentials for the registry URL; later commands use them when no --api-key/--token is given.

    With no option the token or key is read from stdin (or prompted for).
    """
    opts = options(ctx)
    if sum(x is not None for x in (token, api_key)) + device > 1:
        raise typer.BadParameter("give one of --token, --api-key and --device")
    kind: credentials.Kind
    if device:
        if not issuer or not client_id:
            published = _published_auth_config(opts.base_url)
            issuer = issuer or published.get("issuer")
            client_id = client_id or published.get("clientId")
        if not issuer or not client_id:
            raise typer.BadParameter(
                "device-code login needs an identity provider and a public client id: the registry publishes"
                " none (AGENTREG_OIDC_CLIENT_ID on the server), so pass --issuer URL --client-id ID",
                param_hint="--issuer/--client-id",
            )
        try:
            with httpx.Client(timeout=30.0) as http:
                secret = device_flow(http, issuer, client_id, scope, use_id_token=use_id_token)
        except LoginError as exc:
            error_line(str(exc))
            raise typer.Exit(1) from None
        kind = "token"
    elif api_key is not None:
        secret, kind = (_read_secret("API key") if api_key == "-" else api_key), "api_key"
    elif token is not None:
        secret, kind = (_read_secret("token") if token == "-" else token), "token"
    else:
        secret = _read_secret("token or API key")
        kind = "api_key" if secret.startswith("agr_") else "token"
    who = ""
    if verify:
        with opts.client_with(
            secret if kind == "api_key" else None, secret if kind == "token" else None
        ) as c:
            me = c.whoami()
        who = f" as {me.subject}" + (f" ({me.displayName})" if me.displayName else "")
    file = credentials.save(opts.base_url, kind, secret)
    typer.echo(f"logged in to {opts.base_url}{who}; {kind.replace('_', ' ')} stored in {file}", err=True)


def logout(ctx: typer.Context) -> None:
    """Forget the credentials stored for the registry URL."""
    opts = options(ctx)
    if credentials.remove(opts.base_url):
        typer.echo(f"logged out of {opts.base_url}", err=True)
    else:
        typer.echo(f"no credentials stored for {opts.base_url}", err=True)


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LoginError(f"{what} answered HTTP {response.status_code} without a JSON object")
    return body


def _post(http: httpx.Client, url: str, data: dict[str, str], what: str) -> httpx.Response:
    try:
        return http.post(url, data=data, headers={"accept": "application/json"})
    except httpx.TransportError as exc:
        raise APIConnectionError(f"cannot reach the {what} at {url}: {exc}") from exc


def _published_auth_config(base_url: str) -> dict[str, str]:
    """The issuer and public client id the registry announces at /v1/auth/config (empty if none)."""
    try:
        response = httpx.get(f"{base_url}/v1/auth/config", timeout=10.0)
        data = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def device_flow(
    http: httpx.Client, issuer: str, client_id: str, scope: str, *, use_id_token: bool = False
) -> str:
    """RFC 8628: the access token (or ID token) once the user approves the sign-in in a browser."""
    discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        discovered = http.get(discovery_url, headers={"accept": "application/json"})
    except httpx.TransportError as exc:
        raise APIConnectionError(f"cannot reach the identity provider at {discovery_url}: {exc}") from exc
    if discovered.status_code != 200:
        raise LoginError(f"no OpenID discovery document at {discovery_url} (HTTP {discovered.status_code})")
    config = _json(discovered, "the discovery document")
    device_endpoint, token_endpoint = (
        config.get("device_authorization_endpoint"),
        config.get("token_endpoint"),
    )
    if not isinstance(device_endpoint, str) or not isinstance(token_endpoint, str):
        raise LoginError(f"the identity provider at {issuer} does not offer the device flow")

    started = _post(
        http, device_endpoint, {"client_id": client_id, "scope": scope}, "device authorization endpoint"
    )
    grant = _json(started, "the device authorization endpoint")
    if started.status_code != 200:
        raise LoginError(f"device authorization failed: {_oauth_error(grant, started.status_code)}")
    try:
        device_code, user_code = str(grant["device_code"]), str(grant["user_code"])
        uri = str(grant.get("verification_uri") or grant["verification_url"])  # the latter: older Google
    except KeyError as exc:
        raise LoginError(f"the device authorization answer lacks {exc.args[0]}") from None
    interval = float(grant.get("interval") or DEFAULT_INTERVAL)
    deadline = time.monotonic() + float(grant.get("expires_in") or 600)
    complete = grant.get("verification_uri_complete")
    typer.echo(f"To sign in, open {uri} and enter the code {user_code}", err=True)
    if complete:
        typer.echo(f"(or open {complete})", err=True)

    while True:
        if time.monotonic() >= deadline:
            raise LoginError("the sign-in code expired before it was approved; run login again")
        _sleep(interval)
        polled = _post(
            http,
            token_endpoint,
            {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id},
            "token endpoint",
        )
        body = _json(polled, "the token endpoint")
        if polled.status_code == 200:
            name = "id_token" if use_id_token else "access_token"
            value = body.get(name)
            if not isinstance(value, str) or not value:
                raise LoginError(f"the token endpoint sent no {name}")
            return value
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5  # RFC 8628 section 3.5
            continue
        if error == "expired_token":
            raise LoginError("the sign-in code expired before it was approved; run login again")
        if error == "access_denied":
            raise LoginError("the sign-in was denied")
        raise LoginError(f"the token endpoint refused: {_oauth_error(body, polled.status_code)}")


def _oauth_error(body: dict[str, Any], status: int) -> str:
    error = body.get("error") or f"HTTP {status}"
    description = body.get("error_description")
    return f"{error}: {description}" if description else str(error)
