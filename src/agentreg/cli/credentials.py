"""Credentials ``agentreg login`` stores: ``$XDG_CONFIG_HOME/agentreg/credentials.json`` (mode 0600), by URL.

{"http://127.0.0.1:8080": {"kind": "api_key" | "token", "secret": "...", "storedAt": "..."}}
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Kind = Literal["api_key", "token"]


@dataclass(frozen=True, slots=True)
class Stored:
    kind: Kind
    secret: str


def path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agentreg" / "credentials.json"


def _key(url: str) -> str:
    return url.rstrip("/")


def _read(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {file}: {exc}") from None
    return data if isinstance(data, dict) else {}


def load(url: str) -> Stored | None:
    entry = _read(path()).get(_key(url))
    if not isinstance(entry, dict) or entry.get("kind") not in ("api_key", "token"):
        return None
    secret = entry.get("secret")
    return Stored(entry["kind"], secret) if isinstance(secret, str) and secret else None


def _write(file: Path, data: dict[str, Any]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = file.with_name(file.name + ".tmp")
    # Created 0600 from the start (never readable by others, not even briefly), then swapped in.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.chmod(temp, 0o600)
        os.replace(temp, file)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def save(url: str, kind: Kind, secret: str) -> Path:
    file = path()
    data = _read(file)
    data[_key(url)] = {"kind": kind, "secret": secret, "storedAt": datetime.now(UTC).isoformat()}
    _write(file, data)
    return file


def remove(url: str) -> bool:
    file = path()
    data = _read(file)
    if data.pop(_key(url), None) is None:
        return False
    _write(file, data)
    return True
