"""What authentication costs on the hot read path: anonymous vs API key vs OIDC token, on one server.

Usage (from the repository root):
    .venv/bin/python bench/auth_overhead.py [--rounds 5] [--duration 8] [--connections 32]

One agentreg server (``serve --demo``, single-user mode so anonymous reads work too) runs pinned to CPU 0,
with a bootstrap API key and OIDC configured against a local issuer (a JWKS served by this script). ``wrk``
on CPU 1 loads the alias and active-config URLs with no credentials, with ``Bearer agr_…`` and with
``Bearer <RS256 JWT>``, alternating the order from round to round. The table reports medians over rounds
and each authenticated mode's cost relative to anonymous: ``anonymous req/s ÷ authenticated req/s - 1``.
Target (printed, never asserted): at most 15 %.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
from read_path import HOT_PATHS, processes, run_wrk, start_agentreg

MAX_COST = 0.15
AUDIENCE = "agentreg-bench"


class Issuer:
    """A local OIDC issuer: serves its JWKS over HTTP and signs tokens (no identity provider runs here)."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "bench"})
        keys = {"keys": [self.key.as_dict(private=False)]}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(keys).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "bench",
            "iat": now,
            "exp": now + 3600,
            "groups": ["devs"],
        }
        return jwt.encode({"alg": "RS256", "kid": "bench"}, claims, self.key, algorithms=["RS256"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    issuer = Issuer()
    key = "agr_" + secrets.token_urlsafe(32)[:43]
    env = {
        "AGENTREG_BOOTSTRAP_KEY": key,
        "AGENTREG_OIDC_ISSUER": issuer.url,
        "AGENTREG_OIDC_AUDIENCE": AUDIENCE,
        "AGENTREG_OIDC_JWKS_URL": issuer.url + "/jwks",
        "AGENTREG_OIDC_ROLE_MAP": json.dumps({"devs": ["default:developer"]}),
    }
    token = issuer.token()
    modes = {
        "anonymous": (),
        "API key": (f"Authorization: Bearer {key}",),
        "OIDC token": (f"Authorization: Bearer {token}",),
        # Controls: anonymous requests carrying a header of the same size, to tell the cost of carrying the
        # credential (parsing a longer request) from the cost of checking it.
        "anonymous + key-sized header": (f"X-Padding: Bearer {key}",),
        "anonymous + token-sized header": (f"X-Padding: Bearer {token}",),
    }
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with processes() as procs:
        server = start_agentreg(procs, "auth", fast_lane=True, extra_env=env)
        for path_name, path in HOT_PATHS.items():
            for mode, headers in modes.items():  # warm up, and check every mode is answered 200
                result = run_wrk(server.base + path, 4, 1, headers=headers)
                if result.errors:
                    raise SystemExit(f"{mode} on {path_name}: {result.error_detail}\n{server.log_tail()}")
        for round_no in range(args.rounds):
            order = list(modes.items())
            if round_no % 2:
                order.reverse()
            for path_name, path in HOT_PATHS.items():
                for mode, headers in order:
                    result = run_wrk(server.base + path, args.connections, args.duration, headers=headers)
                    if result.errors:  # a 401 or 429 is not a faster answer: refuse to report it
                        raise SystemExit(f"{mode} on {path_name}: {result.error_detail}\n{server.log_tail()}")
                    results.setdefault((path_name, mode), []).append((result.rps, result.p99_ms))
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    issuer.server.shutdown()
    print(f"\nconnections {args.connections}, {args.rounds} rounds x {args.duration} s, medians\n")
    print("| path | credentials | req/s | p99 ms | cost vs anonymous | target ≤ 15 % |")
    print("|---|---|---:|---:|---:|---|")
    for path_name in HOT_PATHS:
        anonymous = statistics.median(r for r, _ in results[(path_name, "anonymous")])
        for mode in modes:
            rps = statistics.median(r for r, _ in results[(path_name, mode)])
            p99 = statistics.median(p for _, p in results[(path_name, mode)])
            cost = anonymous / rps - 1
            measured = mode in ("API key", "OIDC token")
            verdict = ("PASS" if cost <= MAX_COST else "MISS") if measured else ""
            shown = "—" if mode == "anonymous" else f"{cost * 100:+.1f} %"
            print(f"| {path_name} | {mode} | {rps:,.0f} | {p99:.2f} | {shown} | {verdict} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
