"""The document envelope (``apiVersion``, ``kind``, ``metadata``, ``spec``) and its validation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentreg.domain import specs
from agentreg.domain.digest import canonical_json, digest_of
from agentreg.domain.errors import FieldIssue, Invalid, TooLarge
from agentreg.domain.kinds import Kind, parse_kind
from agentreg.domain.names import MAX_VERSION, check_name, check_namespace
from agentreg.domain.placeholders import find_placeholder
from agentreg.domain.semver import parse_semver

API_VERSION = "agentreg.dev/v1"
_ENVELOPE_FIELDS = {"apiVersion", "kind", "metadata", "spec"}
_METADATA_FIELDS = {"namespace", "name", "version", "labels", "annotations"}
LABEL_KEY_RE = re.compile(
    r"^(?:[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$"
)
MAX_LABEL_VALUE = 256
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_ANNOTATIONS_BYTES = 64 * 1024
# Characters that make a non-SemVer version read as a range rather than a version (the MCP registry's rule).
_RANGE_MARKERS = re.compile(r"[\^~<>=*|\s]|(^|\.)[xX](\.|$)")


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed, validated envelope. ``labels`` and ``annotations`` sit outside the digest."""

    kind: Kind
    namespace: str
    name: str
    version: str
    spec: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    def identity(self) -> dict[str, Any]:
        """What the digest covers: apiVersion, kind, metadata.{namespace, name, version} and spec."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind.envelope,
            "metadata": {"namespace": self.namespace, "name": self.name, "version": self.version},
            "spec": self.spec,
        }


@dataclass(frozen=True, slots=True)
class ValidatedDocument:
    document: Document
    digest: str
    canonical: bytes
    semver_key: str | None  # the version without build metadata; None for non-SemVer versions
    warnings: tuple[FieldIssue, ...]
    facts: specs.Facts


def parse_document(raw: Any, expected_kind: Kind | None = None) -> ValidatedDocument:
    """Validate an envelope and its kind's spec; raise Invalid naming every field at fault."""
    if not isinstance(raw, Mapping):
        raise Invalid.at("", "a document must be an object with apiVersion, kind, metadata and spec")
    problems: list[FieldIssue] = []
    problems.extend(
        FieldIssue(f"/{k}", "is not an allowed property") for k in raw if k not in _ENVELOPE_FIELDS
    )
    problems.extend(FieldIssue(f"/{k}", "is required") for k in ("kind", "metadata", "spec") if k not in raw)
    api_version = raw.get("apiVersion", API_VERSION)
    if api_version != API_VERSION:
        problems.append(FieldIssue("/apiVersion", f"must be {API_VERSION!r}"))
    if problems:
        raise Invalid.of(problems)
    if not isinstance(raw["kind"], str):
        raise Invalid.at("/kind", "must be a string")
    kind = parse_kind(raw["kind"])
    if expected_kind is not None and kind != expected_kind:
        raise Invalid.at(
            "/kind", f"this endpoint takes {expected_kind.envelope} documents, not {raw['kind']}"
        )
    metadata = raw["metadata"]
    spec = raw["spec"]
    if not isinstance(metadata, Mapping):
        raise Invalid.at("/metadata", "must be an object")
    if not isinstance(spec, Mapping):
        raise Invalid.at("/spec", "must be an object")
    namespace, name, version = _identity_fields(metadata)
    _check_version(kind, version)
    labels = _string_map(metadata.get("labels"), "/metadata/labels", check_keys=True)
    annotations = _string_map(metadata.get("annotations"), "/metadata/annotations", check_keys=False)
    document = Document(kind, namespace, name, version, dict(spec), labels, annotations)
    placeholder = find_placeholder(document.identity())
    if placeholder is not None:
        raise Invalid.at(placeholder.field, placeholder.issue)
    facts = specs.validate_spec(document)
    canonical = canonical_json(document.identity())
    if len(canonical) > MAX_DOCUMENT_BYTES:
        raise TooLarge(
            f"the document is {len(canonical)} bytes in canonical form; the limit is {MAX_DOCUMENT_BYTES}"
        )
    semver = parse_semver(version)
    return ValidatedDocument(
        document=document,
        digest=digest_of(canonical),
        canonical=canonical,
        semver_key=semver.without_build() if semver else None,
        warnings=facts.warnings,
        facts=facts,
    )


def _identity_fields(metadata: Mapping[str, Any]) -> tuple[str, str, str]:
    problems = [
        FieldIssue(f"/metadata/{k}", "is not an allowed property")
        for k in metadata
        if k not in _METADATA_FIELDS
    ]
    for key in ("namespace", "name", "version"):
        value = metadata.get(key)
        if value is None:
            problems.append(FieldIssue(f"/metadata/{key}", "is required"))
        elif not isinstance(value, str) or not value:
            problems.append(FieldIssue(f"/metadata/{key}", "must be a non-empty string"))
    if problems:
        raise Invalid.of(problems)
    namespace, name, version = metadata["namespace"], metadata["name"], metadata["version"]
    check_namespace(namespace)
    check_name(namespace, name)
    return namespace, name, version


def _check_version(kind: Kind, version: str) -> None:
    if len(version) > MAX_VERSION:
        raise Invalid.at("/metadata/version", f"must be at most {MAX_VERSION} characters")
    if parse_semver(version) is not None:
        return
    if kind != Kind.MCP_SERVER:
        raise Invalid.at("/metadata/version", f"{version!r} is not a SemVer 2.0.0 version (e.g. 1.2.0)")
    if version == "latest" or _RANGE_MARKERS.search(version):
        raise Invalid.at("/metadata/version", f"{version!r} is a range or selector, not a version")


def _string_map(value: Any, field: str, *, check_keys: bool) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid.at(field, "must be an object of string values")
    result: dict[str, str] = {}
    for key, item in value.items():
        at = f"{field}/{str(key).replace('~', '~0').replace('/', '~1')}"
        if not isinstance(item, str):
            raise Invalid.at(at, "must be a string")
        if check_keys:
            if not LABEL_KEY_RE.fullmatch(str(key)):
                raise Invalid.at(
                    at, "label keys are [prefix/]name: letters, digits, '.', '_', '-' (name ≤ 63)"
                )
            if len(item) > MAX_LABEL_VALUE:
                raise Invalid.at(at, f"label values are at most {MAX_LABEL_VALUE} characters")
        result[str(key)] = item
    if not check_keys and len(canonical_json(result)) > MAX_ANNOTATIONS_BYTES:
        raise Invalid.at(field, "annotations may hold at most 64 KiB")
    return result


def check_labels(value: Any, field: str = "/labels") -> dict[str, str]:
    return _string_map(value, field, check_keys=True)


def check_annotations(value: Any, field: str = "/annotations") -> dict[str, str]:
    return _string_map(value, field, check_keys=False)
