"""Hot read path and publish benchmark for agentreg, against a bare ASGI baseline on the same core.

Usage (from the repository root):
    .venv/bin/python bench/read_path.py [--rounds 3] [--duration 10] [--quick] [--json FILE]

The servers (agentreg with the fast lane, agentreg without it, and one bare app per measured body size)
run pinned to CPU 0; ``wrk`` runs pinned to CPU 1. Each round measures every (target, concurrency) pair
once, alternating which of agentreg/bare goes first; the table reports medians over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
SERVER_CPU = "0"
LOAD_CPU = "1"

ALIAS_PATH = "/v1/mcp-servers/com.acme/github/versions/stable"
RESOLVED_PATH = "/v1/agents/com.acme/support-bot/versions/stable/resolved"
PUBLISH_PATH = "/v1/skills"
HOT_PATHS = {"alias": ALIAS_PATH, "resolved": RESOLVED_PATH}
CONCURRENCIES = (1, 8, 32)
# Publishes serialize on one writer, so latency grows with concurrency (Little's law): report both.
PUBLISH_CONCURRENCIES = (4, 8)
NO_FAST_LANE_CONCURRENCY = 32
# publish.lua modes: a new skill per request, and a new version of one skill per request.
PUBLISH_MODES = {"publish (new names)": "names", "publish (new versions)": "versions"}

# Targets (reported, never asserted).
HOT_MIN_RATIO = 0.60
HOT_MAX_P99_MS = 5.0
HOT_TARGET_CONCURRENCY = 32
PUBLISH_MAX_P99_MS = 20.0
PUBLISH_MIN_RPS = 500.0

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
WRK_GRACE_S = 30.0
WARMUP_S = 2

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_LATENCY_RE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS_RE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL_RE = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_NON2XX_RE = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON201_RE = re.compile(r"^BENCH_NON201 (\d+)", re.MULTILINE)
_FIRST_BAD_RE = re.compile(r"^BENCH_FIRST_BAD (.*)$", re.MULTILINE)


# --------------------------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors + non-2xx/3xx (or non-201 for publish)
    error_detail: str = ""


def to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Requests/sec, p50 and p99 (in ms) and error counts from ``wrk --latency`` output."""
    rps_match = _RPS_RE.search(output)
    latencies = {int(m.group(1)): to_ms(m.group(2), m.group(3)) for m in _LATENCY_RE.finditer(output)}
    if rps_match is None or 50 not in latencies or 99 not in latencies:
        raise RuntimeError(f"could not parse wrk output:\n{output}")
    total = _TOTAL_RE.search(output)
    details = []
    non2xx = _NON2XX_RE.search(output)
    non201 = _NON201_RE.search(output)
    # With publish.lua, every answer but 201 counts (it includes wrk's own non-2xx/3xx count).
    status_errors = int(non201.group(1)) if non201 else int(non2xx.group(1)) if non2xx else 0
    if status_errors:
        details.append(f"{'non-201' if non201 else 'non-2xx/3xx'}={status_errors}")
    socket_errors = 0
    if sock := _SOCKET_RE.search(output):
        socket_errors = sum(int(g) for g in sock.groups())
        details.append(sock.group(0))
    if first_bad := _FIRST_BAD_RE.search(output):
        details.append(f"first bad answer: {first_bad.group(1)[:200]}")
    errors = status_errors + socket_errors
    return WrkResult(
        rps=float(rps_match.group(1)),
        p50_ms=latencies[50],
        p99_ms=latencies[99],
        requests=int(total.group(1)) if total else 0,
        errors=errors,
        error_detail="; ".join(details),
    )


def run_wrk(
    url: str,
    connections: int,
    duration: int,
    script: Path | None = None,
    script_args: list[str] | None = None,
    headers: tuple[str, ...] = (),
) -> WrkResult:
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for header in headers:
        cmd += ["-H", header]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + WRK_GRACE_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr}\n{proc.stdout}")
    return parse_wrk(proc.stdout)


# --------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Processes:
    """Every subprocess this benchmark starts, each in its own process group, all stopped on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.servers: list[Server] = []

    def start(self, name: str, args: list[str], env: dict[str, str], health_path: str) -> Server:
        port = free_port()
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CPU, *[a.replace("{port}", str(port)) for a in args]],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(name, proc, port, log)
        self.servers.append(server)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                if http_get(server.base + health_path, timeout=1.0)[0] == 200:
                    return server
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} not healthy after {STARTUP_TIMEOUT_S:.0f}s:\n{server.log_tail()}")

    def stop_all(self) -> None:
        for server in self.servers:
            _stop_group(server.proc)
        self.servers.clear()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
        try:
            os.killpg(proc.pid, sig)  # start_new_session: the group id is the child's pid
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def processes() -> Iterator[Processes]:
    workdir = Path(tempfile.mkdtemp(prefix="agentreg-bench-"))
    procs = Processes(workdir)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield procs
    finally:
        procs.stop_all()
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(workdir, ignore_errors=True)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def start_agentreg(
    procs: Processes, name: str, fast_lane: bool, extra_env: dict[str, str] | None = None
) -> Server:
    data_dir = procs.workdir / f"data-{name}"
    data_dir.mkdir()
    env = {
        **os.environ,
        "AGENTREG_DATA_DIR": str(data_dir),
        "AGENTREG_FAST_LANE": "true" if fast_lane else "false",
        **(extra_env or {}),
    }
    for var in ("AGENTREG_DATABASE_URL", "AGENTREG_HOST", "AGENTREG_PORT"):
        env.pop(var, None)
    agentreg = str(Path(sys.executable).with_name("agentreg"))
    args = [agentreg, "serve", "--demo", "--port", "{port}"]
    return procs.start(name, args, env, "/healthz")


def start_bare(procs: Processes, size: int) -> Server:
    args = [sys.executable, str(BENCH / "bare_app.py"), "--port", "{port}", "--size", str(size)]
    return procs.start(f"bare-{size}", args, dict(os.environ), "/")


# -------------------------------------------------------------------------------------- benchmark


@dataclass
class Row:
    target: str  # e.g. "alias", "bare(958B)", "alias no-fast-lane", "publish (new names)"
    concurrency: int
    runs: list[WrkResult] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)


@dataclass
class Plan:
    rounds: int
    duration: int
    concurrencies: tuple[int, ...]


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False, timeout=10)
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        "wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0] if wrk_version else "?",
    }


def benchmark(plan: Plan) -> tuple[dict[tuple[str, int], Row], dict[str, int]]:
    rows: dict[tuple[str, int], Row] = {}

    def record(target: str, conns: int, result: WrkResult) -> None:
        rows.setdefault((target, conns), Row(target, conns)).runs.append(result)
        flag = f"  !! {result.errors} ERRORS: {result.error_detail}" if result.errors else ""
        print(
            f"    {target:<22} c={conns:<3} {result.rps:>10.0f} req/s  p50 {result.p50_ms:7.2f} ms"
            f"  p99 {result.p99_ms:7.2f} ms{flag}",
            flush=True,
        )

    with processes() as procs:
        ours = start_agentreg(procs, "agentreg", fast_lane=True)
        slow = start_agentreg(procs, "agentreg-no-fast-lane", fast_lane=False)
        sizes: dict[str, int] = {}
        for label, path in HOT_PATHS.items():
            for server in (ours, slow):
                status, body = http_get(server.base + path)
                if status != 200:
                    raise RuntimeError(f"{server.name} GET {path} -> {status}: {body[:300]!r}")
            sizes[label] = len(http_get(ours.base + path)[1])
        bares = {label: start_bare(procs, size) for label, size in sizes.items()}
        print(f"  response sizes: {sizes}", flush=True)

        # Warm up every server once (caches, code paths) before anything is recorded.
        for server, path in [
            *((ours, p) for p in HOT_PATHS.values()),
            (slow, ALIAS_PATH),
            *((bares[label], "/") for label in HOT_PATHS),
        ]:
            run_wrk(server.base + path, 8, WARMUP_S)

        for rnd in range(plan.rounds):
            print(f"  round {rnd + 1}/{plan.rounds}", flush=True)
            for label, path in HOT_PATHS.items():
                bare_label = f"bare({sizes[label]}B)"
                for conns in plan.concurrencies:
                    pair = [(label, ours.base + path), (bare_label, bares[label].base + "/")]
                    if rnd % 2:
                        pair.reverse()
                    for target, url in pair:
                        record(target, conns, run_wrk(url, conns, plan.duration))
            record(
                "alias no-fast-lane",
                NO_FAST_LANE_CONCURRENCY,
                run_wrk(slow.base + ALIAS_PATH, NO_FAST_LANE_CONCURRENCY, plan.duration),
            )
            for target, mode in PUBLISH_MODES.items():
                for conns in PUBLISH_CONCURRENCIES:
                    skill = f"pub-{uuid.uuid4().hex[:8]}-r{rnd + 1}"
                    record(
                        target,
                        conns,
                        run_wrk(
                            ours.base + PUBLISH_PATH,
                            conns,
                            plan.duration,
                            script=BENCH / "publish.lua",
                            script_args=[skill, mode],
                        ),
                    )
            # Reads must still answer 200 after the writes (cache invalidated, not broken).
            status, _ = http_get(ours.base + ALIAS_PATH)
            if status != 200:
                raise RuntimeError(f"alias read after publish -> {status}")
        for server in procs.servers:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} died during the run:\n{server.log_tail()}")
    return rows, sizes


# ---------------------------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(rows: dict[tuple[str, int], Row], sizes: dict[str, int], plan: Plan) -> list[str]:
    lines = [
        f"Medians of {plan.rounds} round(s) x {plan.duration}s; server on CPU {SERVER_CPU}, wrk -t1 on CPU {LOAD_CPU}.",
        "",
        f"| {'target':<22} | {'conc':>4} | {'req/s':>9} | {'req/s min-max':>15} | {'p50 ms':>7} | {'p99 ms':>7} "
        f"| {'ours/bare':>9} | errors |",
        f"|{'-' * 24}|{'-' * 6}|{'-' * 11}|{'-' * 17}|{'-' * 9}|{'-' * 9}|{'-' * 11}|{'-' * 8}|",
    ]

    def line(row: Row, ratio: float | None) -> str:
        ratio_text = f"{ratio * 100:.0f} %" if ratio is not None else ""
        spread = f"{min(r.rps for r in row.runs):.0f}-{max(r.rps for r in row.runs):.0f}"
        return (
            f"| {row.target:<22} | {row.concurrency:>4} | {row.median('rps'):>9.0f} | {spread:>15} | "
            f"{row.median('p50_ms'):>7.2f} | {row.median('p99_ms'):>7.2f} | {ratio_text:>9} | {row.errors:>6} |"
        )

    for label in HOT_PATHS:
        bare_label = f"bare({sizes[label]}B)"
        for conns in plan.concurrencies:
            ours, bare = rows[(label, conns)], rows[(bare_label, conns)]
            lines.append(line(ours, ours.median("rps") / bare.median("rps")))
            lines.append(line(bare, None))
    slow = rows[("alias no-fast-lane", NO_FAST_LANE_CONCURRENCY)]
    bare_alias = rows.get((f"bare({sizes['alias']}B)", NO_FAST_LANE_CONCURRENCY))
    lines.append(line(slow, slow.median("rps") / bare_alias.median("rps") if bare_alias else None))
    publishes = [rows[(target, conns)] for target in PUBLISH_MODES for conns in PUBLISH_CONCURRENCIES]
    lines += [line(publish, None) for publish in publishes]

    lines += ["", "Targets:"]
    if HOT_TARGET_CONCURRENCY in plan.concurrencies:
        for label in HOT_PATHS:
            ours = rows[(label, HOT_TARGET_CONCURRENCY)]
            bare = rows[(f"bare({sizes[label]}B)", HOT_TARGET_CONCURRENCY)]
            ratio = ours.median("rps") / bare.median("rps")
            p99 = ours.median("p99_ms")
            lines.append(
                f"  {verdict(ratio >= HOT_MIN_RATIO)}  {label}: throughput {ratio * 100:.0f} % of bare at "
                f"c={HOT_TARGET_CONCURRENCY} (target >= {HOT_MIN_RATIO * 100:.0f} %)"
            )
            lines.append(
                f"  {verdict(p99 < HOT_MAX_P99_MS)}  {label}: p99 {p99:.2f} ms at c={HOT_TARGET_CONCURRENCY} "
                f"(target < {HOT_MAX_P99_MS:.0f} ms)"
            )
    fast = rows.get(("alias", NO_FAST_LANE_CONCURRENCY))
    if fast:
        lines.append(
            f"  info  fast lane on/off at c={NO_FAST_LANE_CONCURRENCY}: "
            f"{fast.median('rps') / slow.median('rps'):.1f}x throughput"
        )
    for publish in publishes:
        # Both in the same run: a sustained rate of at least 500/s *while* p99 stays under 20 ms.
        ok = publish.median("p99_ms") < PUBLISH_MAX_P99_MS and publish.median("rps") >= PUBLISH_MIN_RPS
        lines.append(
            f"  {verdict(ok)}  {publish.target} c={publish.concurrency}: {publish.median('rps'):.0f}/s with p99 "
            f"{publish.median('p99_ms'):.2f} ms (target >= {PUBLISH_MIN_RPS:.0f}/s with p99 < {PUBLISH_MAX_P99_MS:.0f} ms)"
        )
    failed = [row for row in rows.values() if row.errors]
    if failed:
        lines += ["", "!" * 78, "!! THE BENCHMARK SAW ERRORS; THE NUMBERS ABOVE ARE NOT TRUSTWORTHY:"]
        for row in failed:
            details = {r.error_detail for r in row.runs if r.errors}
            lines.append(f"!!   {row.target} c={row.concurrency}: {row.errors} errors ({'; '.join(details)})")
        lines.append("!" * 78)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the table shows medians (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 3 s")
    parser.add_argument("--json", type=Path, help="write raw results to this file")
    args = parser.parse_args()
    plan = Plan(rounds=args.rounds, duration=args.duration, concurrencies=CONCURRENCIES)
    if args.quick:
        plan = Plan(rounds=1, duration=3, concurrencies=CONCURRENCIES)
    if plan.rounds < 1 or plan.duration < 1:
        parser.error("--rounds and --duration must be positive")
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found (apt-get install -y {tool})")
    if (os.cpu_count() or 1) < 2:
        parser.error("needs at least 2 CPUs (server on CPU 0, wrk on CPU 1)")

    info = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    started = time.monotonic()
    try:
        rows, sizes = benchmark(plan)
    except KeyboardInterrupt:
        print("interrupted; subprocesses stopped", file=sys.stderr)
        return 130
    lines = report(rows, sizes, plan)
    print()
    print("\n".join(lines))
    print(f"\n(total {time.monotonic() - started:.0f}s)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "plan": asdict(plan),
                    "sizes": sizes,
                    "results": [
                        {
                            "target": r.target,
                            "concurrency": r.concurrency,
                            "runs": [asdict(x) for x in r.runs],
                        }
                        for r in rows.values()
                    ],
                },
                indent=2,
            )
        )
    return 1 if any(row.errors for row in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
