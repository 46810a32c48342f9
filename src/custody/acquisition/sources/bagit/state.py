"""The state one validation builds up, and how findings are collected (capped per kind)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from custody.acquisition.sources.bagit.model import (
    MAX_FINDINGS_PER_KIND,
    FetchEntry,
    Finding,
    InfoField,
    Kind,
    Severity,
)
from custody.acquisition.sources.said import Said


@dataclass
class _Node:
    size: int
    dev: int
    ino: int
    mtime_ns: int


@dataclass
class _Entry:
    """One parsed manifest line, before and after it is matched to a file."""

    manifest: str
    algorithm: str
    digest: str
    path: str
    line: int
    key: bytes | None = None


@dataclass
class _Manifest:
    name: str
    algorithm: str
    tag: bool
    entries: list[_Entry] = field(default_factory=list)
    # file key -> digest, for the files this manifest covers
    covers: dict[bytes, str] = field(default_factory=dict)


@dataclass
class _Encoding:
    name: str
    codec: str
    bom_part_of_encoding: bool


class _State:
    """Everything one validation learns, and the findings it collects."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []
        self._kind_counts: dict[tuple[Kind, Severity], int] = {}
        self.files: dict[bytes, _Node] = {}
        self.dirs: set[bytes] = set()
        self.version: str | None = None
        self.version_info: tuple[int, int] = (1, 0)
        self.encoding: _Encoding | None = None
        self.info_file: str | None = None
        self.info: list[InfoField] = []
        self.manifests: list[_Manifest] = []
        self.fetch: list[FetchEntry] = []
        self.fetch_keys: set[bytes] = set()
        self.absent_system: list[tuple[str, int]] = []
        self.listed_as: dict[bytes, set[str]] = {}
        self.computed: dict[bytes, dict[str, str]] = {}
        self.unreadable: set[bytes] = set()
        self.mismatched: set[bytes] = set()
        self.files_hashed = 0
        self.bytes_hashed = 0
        self.oxum: tuple[int, int] | None = None
        self.root_fd = -1
        # entry id -> the name as written, when percent-decoding changed it (§2.1.3)
        self._raw_names: dict[int, str] = {}

    # --- findings -------------------------------------------------------------------

    def add(
        self, kind: Kind, path: str | None, message: str, rule: str, severity: Severity = "error"
    ) -> None:
        count = self._kind_counts.get((kind, severity), 0) + 1
        self._kind_counts[(kind, severity)] = count
        if count > MAX_FINDINGS_PER_KIND:
            return
        finding = Finding(kind, severity, path, message, rule)
        (self.errors if severity == "error" else self.warnings).append(finding)

    def warn(self, kind: Kind, path: str | None, message: str, rule: str) -> None:
        self.add(kind, path, message, rule, "warning")

    def _close_findings(self) -> None:
        for (kind, severity), count in self._kind_counts.items():
            if count > MAX_FINDINGS_PER_KIND:
                more = count - MAX_FINDINGS_PER_KIND
                if severity == "error":
                    message = Said.ngettext(
                        "{n} more {kind} error not listed",
                        "{n} more {kind} errors not listed",
                        more,
                        kind=str(kind),
                    )
                else:
                    message = Said.ngettext(
                        "{n} more {kind} warning not listed",
                        "{n} more {kind} warnings not listed",
                        more,
                        kind=str(kind),
                    )
                finding = Finding(Kind.FINDINGS_TRUNCATED, severity, None, message, "custody cap")
                (self.errors if severity == "error" else self.warnings).append(finding)


class _Changed(Exception):
    """A file is not the one the walk saw (swapped for a link or another file)."""
