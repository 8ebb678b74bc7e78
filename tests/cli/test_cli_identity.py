"""whoami, tenant, namespace, key, audit, login and admin bootstrap, run through ``main()`` like a shell would.

The registry is the in-process app with authentication required (a TestClient transport under the SDK).
"""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from fastapi.testclient import TestClient

from agentreg.api.app import create_app
from agentreg.cli import context, credentials, login
from agentreg.client import Client
from agentreg.config import Settings
from agentreg.services import identity
from tests.cli.conftest import Run

BASE = "http://agentreg.test"


@dataclass
class Registry:
    admin: str
    data_dir: Path
    config: Path


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    for name in ("AGENTREG_API_KEY", "AGENTREG_TOKEN", "AGENTREG_OIDC_ISSUER", "AGENTREG_OIDC_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENTREG_URL", BASE)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    data_dir = tmp_path / "data"
    secret = identity.new_secret()
    app = create_app(Settings(auth="required", data_dir=data_dir, bootstrap_key=secret))
    with TestClient(app, base_url=BASE) as http:

        def client(*args: Any, **kwargs: Any) -> Client:
            return Client(*args, http_client=http, **kwargs)

        monkeypatch.setattr(context, "Client", client)
        yield Registry(secret, data_dir, tmp_path / "config" / "agentreg" / "credentials.json")


def test_tenants_namespaces_and_keys(registry: Registry, run: Run) -> None:
    admin = ("--api-key", registry.admin)
    code, out, _ = run(*admin, "-o", "json", "whoami")
    assert code == 0 and json.loads(out)["superAdmin"] is True
    code, out, _ = run(*admin, "tenant", "create", "acme", "--display-name", "Acme Corp")
    assert code == 0 and "Acme Corp" in out
    assert run(*admin, "tenant", "create", "beta")[0] == 0
    code, out, _ = run(*admin, "tenant", "list", "-o", "yaml")
    assert code == 0 and "id: acme" in out and "id: beta" in out

    code, out, _ = run(*admin, "namespace", "claim", "com.acme", "--tenant", "acme")
    assert code == 0 and "com.acme" in out and "acme" in out
    code, out, _ = run(*admin, "-o", "json", "namespace", "share", "com.acme", "--public", "--tenant", "beta")
    assert code == 0 and json.loads(out) | {"createdAt": None} == {
        "name": "com.acme",
        "tenant": "acme",
        "createdAt": None,
        "public": True,
        "sharedWith": ["beta"],
    }
    code, out, _ = run(*admin, "namespace", "share", "com.acme", "--private")  # replaces the grants
    assert code == 0
    code, out, _ = run(*admin, "-o", "json", "namespace", "list")
    assert code == 0 and [(n["name"], n["public"], n["sharedWith"]) for n in json.loads(out)] == [
        ("com.acme", False, [])
    ]

    code, out, err = run(
        *admin,
        "key",
        "create",
        "ci",
        "--role",
        "developer",
        "--tenant",
        "acme",
        "--namespace",
        "com.acme",
        "--expires-in",
        "30d",
    )
    assert code == 0 and "shown only once" in err
    assert len(out.splitlines()) == 1 and out.startswith("agr_")
    secret = out.strip()
    code, out, _ = run(*admin, "-o", "json", "key", "list", "--tenant", "acme")
    [key] = json.loads(out)
    assert (key["name"], key["roles"], key["scope"]) == ("ci", ["developer"], {"namespaces": ["com.acme"]})
    assert "key" not in key and key["expiresAt"]
    code, out, _ = run("--token", secret, "-o", "json", "whoami")
    assert code == 0 and json.loads(out)["tenants"] == {"acme": ["developer"]}
    code, out, _ = run("--api-key", secret, "whoami")
    assert code == 0 and f"key:{key['id']}" in out and "acme: developer" in out

    code, out, _ = run(*admin, "key", "revoke", key["id"])
    assert code == 0 and "revoked" in out
    code, out, err = run("--api-key", secret, "whoami")
    assert code == 1 and out == "" and "revoked" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(*admin, "key", "revoke", secret)
    assert code == 2 and "not its secret" in err


def test_key_create_json_output_and_bad_durations(registry: Registry, run: Run) -> None:
    admin = ("--api-key", registry.admin)
    code, out, err = run(*admin, "-o", "json", "key", "create", "root2", "--role", "super_admin")
    assert code == 0 and json.loads(out)["key"].startswith("agr_") and "shown only once" in err
    code, _, err = run(*admin, "key", "create", "x", "--role", "viewer", "--expires-in", "soon")
    assert code == 2 and "30d" in err
    code, _, err = run(*admin, "key", "create", "x", "--role", "wizard", "--tenant", "nope")
    assert code == 1 and err.startswith("error:")


def test_audit_list_export_verify_checkpoint(registry: Registry, run: Run) -> None:
    admin = ("--api-key", registry.admin)
    run(*admin, "tenant", "create", "acme")
    run(*admin, "namespace", "claim", "com.acme", "--tenant", "acme")
    for name in ("a", "b"):
        assert run(*admin, "key", "create", name, "--role", "viewer", "--tenant", "acme")[0] == 0

    code, out, _ = run(*admin, "-o", "json", "audit", "list", "--tenant", "acme")
    events = json.loads(out)
    assert code == 0 and [e["action"] for e in events][-3:] == ["namespace.claim", "key.create", "key.create"]
    code, out, _ = run(*admin, "-o", "json", "audit", "list", "--tenant", "acme", "--action", "key.*")
    assert [e["details"]["name"] for e in json.loads(out)] == ["a", "b"]
    code, out, _ = run(*admin, "-o", "json", "audit", "list", "--tenant", "acme", "--limit", "1")
    assert [e["seq"] for e in json.loads(out)] == [1]
    code, out, _ = run(*admin, "-o", "json", "audit", "list", "--tenant", "acme", "--since", "1h")
    assert len(json.loads(out)) == len(events)
    code, out, _ = run(*admin, "audit", "list", "--tenant", "acme", "--until", "2000-01-01T00:00:00Z")
    assert code == 0 and "key.create" not in out
    code, out, _ = run(*admin, "audit", "list", "--tenant", "acme", "--object", "key/*")
    assert code == 0 and out.count("key.create") == 2
    code, _, err = run(*admin, "audit", "list", "--tenant", "acme", "--since", "2026-01-01T00:00:00")
    assert code == 2 and "time zone" in err

    code, out, _ = run(*admin, "audit", "export", "--tenant", "acme")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(e["seq"], e["hash"]) for e in lines] == [(e["seq"], e["hash"]) for e in events]

    code, out, _ = run(*admin, "audit", "verify", "--tenant", "acme")
    head = events[-1]["seq"]
    assert code == 0 and out.strip() == f"ok: {len(events)} events, 0 checkpoints, head seq {head}"
    code, out, _ = run(*admin, "audit", "checkpoint", "--tenant", "acme")
    assert code == 0 and "acme" in out
    code, out, _ = run(*admin, "audit", "verify", "--tenant", "acme")
    assert code == 0 and "1 checkpoints" in out

    with sqlite3.connect(registry.data_dir / "agentreg.db") as db:  # tamper with the second event
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE tenant_id = 'acme' AND seq = 2")
    code, out, err = run(*admin, "audit", "verify", "--tenant", "acme")
    assert code == 1 and out == "" and "seq 2:" in err
    code, out, _ = run(*admin, "-o", "json", "audit", "verify", "--tenant", "acme")
    assert code == 1 and json.loads(out)["firstBad"]["seq"] == 2


def test_login_stores_credentials_used_later(registry: Registry, run: Run) -> None:
    code, _, err = run("whoami")
    assert code == 1 and "authentication required" in err
    code, _, err = run("login", "--api-key", "agr_" + "x" * 43)  # checked first: nothing stored
    assert code == 1 and "invalid API key" in err and not registry.config.exists()

    code, _, err = run("login", "--api-key", registry.admin)
    assert code == 0 and "logged in to http://agentreg.test as key:" in err
    assert stat.S_IMODE(registry.config.stat().st_mode) == 0o600
    stored = json.loads(registry.config.read_text())
    assert stored[BASE]["kind"] == "api_key" and stored[BASE]["secret"] == registry.admin
    code, out, _ = run("-o", "json", "whoami")
    assert code == 0 and json.loads(out)["superAdmin"] is True
    # Stored per URL: another registry gets nothing.
    assert credentials.load("http://elsewhere:8080") is None

    # From stdin, unverified: a token (not agr_...) replaces the key; this registry has no OIDC.
    code, _, err = run("login", "--no-verify", input="eyJhbGciOi.fake.jwt\n")
    assert code == 0 and "token stored" in err
    assert credentials.load(BASE) == credentials.Stored("token", "eyJhbGciOi.fake.jwt")
    code, _, err = run("whoami")
    assert code == 1 and "OIDC is not configured" in err
    # Explicit options beat the stored credentials.
    assert run("--api-key", registry.admin, "whoami")[0] == 0
    code, _, err = run("login", "--api-key", "-", input=registry.admin)
    assert code == 0 and credentials.load(BASE) == credentials.Stored("api_key", registry.admin)

    code, _, err = run("logout")
    assert code == 0 and "logged out" in err and credentials.load(BASE) is None
    assert run("whoami")[0] == 1


def test_api_key_and_token_together_are_a_usage_error(
    registry: Registry, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run("--api-key", registry.admin, "--token", "t", "whoami")
    assert code == 2 and "not both" in err and out == ""
    monkeypatch.setenv("AGENTREG_API_KEY", registry.admin)
    assert run("whoami")[0] == 0
    monkeypatch.setenv("AGENTREG_TOKEN", "junk")
    code, _, err = run("whoami")
    assert code == 2 and "not both" in err
    # An option on the command line wins over the other one's variable.
    assert run("--api-key", registry.admin, "whoami")[0] == 0
    code, _, err = run("--token", "junk", "whoami")
    assert code == 1 and "OIDC" in err


def test_admin_bootstrap_prints_a_key_once(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AGENTREG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AGENTREG_DATABASE_URL", raising=False)
    caplog.set_level("DEBUG")
    code, out, err = run("admin", "bootstrap")
    assert code == 0 and "shown only once" in err
    [secret] = out.splitlines()
    assert identity.KEY_RE.fullmatch(secret) and secret not in err and secret not in caplog.text

    code, out, err = run("admin", "bootstrap")
    assert code == 1 and out == "" and "exists already" in err and "--force" in err
    code, out, _ = run("admin", "bootstrap", "--force")
    assert code == 0 and out.strip() != secret

    settings = Settings(auth="required", data_dir=tmp_path / "data")
    with (
        TestClient(create_app(settings), base_url=BASE) as http,
        Client(BASE, http_client=http, api_key=secret) as client,
    ):
        assert client.whoami().superAdmin

    url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    code, out, _ = run("admin", "bootstrap", "--database-url", url)
    assert code == 0 and out.startswith("agr_") and (tmp_path / "other.db").exists()


class FakeIdentityProvider:
    """Stands in for an OpenID provider offering the device flow (RFC 8628), in a thread on a free port.

    ``polls`` scripts the token endpoint: one (status, body) answer per poll, in order.
    """

    def __init__(self, polls: list[tuple[int, dict[str, Any]]]) -> None:
        self.polls = polls
        self.requests: list[tuple[str, dict[str, str]]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path != "/.well-known/openid-configuration":
                    return self._send(404, {"error": "not_found"})
                self._send(
                    200,
                    {
                        "issuer": provider.url,
                        "device_authorization_endpoint": provider.url + "/device",
                        "token_endpoint": provider.url + "/token",
                    },
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                provider.requests.append((self.path, form))
                if self.path == "/device":
                    return self._send(
                        200,
                        {
                            "device_code": "dev-123",
                            "user_code": "WDJB-MJHT",
                            "verification_uri": provider.url + "/activate",
                            "expires_in": 600,
                            "interval": 1,
                        },
                    )
                self._send(*provider.polls.pop(0))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeIdentityProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


PENDING = (400, {"error": "authorization_pending"})
TOKENS = (200, {"access_token": "access-abc", "id_token": "id-xyz", "token_type": "Bearer"})


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(login, "_sleep", waited.append)
    return waited


def test_device_flow_stores_the_access_token(registry: Registry, run: Run, sleeps: list[float]) -> None:
    with FakeIdentityProvider([PENDING, (400, {"error": "slow_down"}), TOKENS]) as idp:
        code, out, err = run(
            "login", "--device", "--issuer", idp.url, "--client-id", "agentreg-cli", "--no-verify"
        )
    assert code == 0 and out == ""
    assert f"open {idp.url}/activate and enter the code WDJB-MJHT" in err
    assert credentials.load(BASE) == credentials.Stored("token", "access-abc")
    assert sleeps == [1, 1, 6]  # slow_down adds five seconds
    assert idp.requests[0] == ("/device", {"client_id": "agentreg-cli", "scope": "openid"})
    assert {path for path, _ in idp.requests[1:]} == {"/token"}
    assert idp.requests[1][1] == {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": "dev-123",
        "client_id": "agentreg-cli",
    }

    with FakeIdentityProvider([TOKENS]) as idp:
        args = ("login", "--device", "--issuer", idp.url + "/", "--client-id", "c", "--no-verify")
        assert run(*args, "--use-id-token")[0] == 0
    assert credentials.load(BASE) == credentials.Stored("token", "id-xyz")


def test_device_flow_denied_or_expired_stores_nothing(
    registry: Registry, run: Run, sleeps: list[float]
) -> None:
    for answer, message in (
        ({"error": "access_denied"}, "denied"),
        ({"error": "expired_token"}, "expired"),
        ({"error": "invalid_client", "error_description": "unknown client"}, "unknown client"),
    ):
        with FakeIdentityProvider([PENDING, (400, answer)]) as idp:
            code, out, err = run("login", "--device", "--issuer", idp.url, "--client-id", "c")
        assert code == 1 and out == "" and message in err.splitlines()[-1]
        assert not registry.config.exists()


def test_device_flow_needs_an_issuer_and_client_id(registry: Registry, run: Run) -> None:
    code, _, err = run("login", "--device")
    flat = " ".join(err.replace("│", " ").split())
    assert code == 2 and "--issuer URL --client-id ID" in flat and "AGENTREG_OIDC_CLIENT_ID" in flat
    code, _, err = run("login", "--device", "--token", "t")
    assert code == 2 and "one of" in err
    code, _, err = run("login", "--device", "--issuer", "http://127.0.0.1:9", "--client-id", "c")
    assert code == 3 and "cannot reach the identity provider" in err
