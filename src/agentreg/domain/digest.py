"""Canonical JSON (RFC 8785) and the ``sha256:`` content digest of a version."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes: key order and whitespace never change a digest."""
    return rfc8785.dumps(value)


def sha256_digest(value: Any) -> str:
    return digest_of(canonical_json(value))


def digest_of(canonical: bytes) -> str:
    return "sha256:" + hashlib.sha256(canonical).hexdigest()
