"""Wire models of compatibility reports and redaction (Pydantic only, like ``api/schemas.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentreg.api.schemas import Issue, Strict, Wire

BumpOut = Literal["major", "minor", "patch", "none"]


class CompatOut(Wire):
    version: str
    against: str | None = Field(description="the version compared with; null when there is none earlier")
    compatible: bool = Field(description="no breaking change from `against` to `version`")
    requiredBump: BumpOut = Field(
        description="the least bump the changes need: major (breaking), minor (additions), patch, none"
    )
    versionBump: BumpOut = Field(description="the bump the version number makes over `against`")
    needsMajor: bool = Field(description="breaking changes without the major version bump they need")
    breaking: list[Issue] = Field(
        description="each breaking change, at its field in `version` (or where a removed part stood)"
    )


class RedactIn(Strict):
    reason: str = Field(description="why the version is redacted (required, at most 500 characters)")
