"""What exiftool's JSON says about a file, made safe for canonical JSON: ``FileMetadata``
with tags sanitised for RFC 8785 / I-JSON (no unsafe integers, no non-finite floats, no
control characters or lone surrogates), the MIME type, exiftool's Error/Warning tags,
and the claimed capture time in RFC 3339.

Also the cap on what an item record keeps of it (``cap_metadata``): exiftool's output is
unbounded (a 65 KB PNG whose compressed text chunk expands to 64 MiB gave 67 MB of JSON),
so a record keeps at most ``MAX_METADATA_BYTES``; the whole output is then kept beside the
ledger by the caller, and the record names its SHA-256 (docs/format.md §6, ``item``).

Pure: no processes, no files. ``custody.evidence.exiftool`` runs exiftool and calls
``to_metadata``. May import: the standard library and ``rfc8785`` (the canonical sizes).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import rfc8785

# The capture time candidates, in order of preference (the brief for clock
# reconciliation). ModifyDate is deliberately not one: editing software rewrites it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# System-group tags we keep. Everything else exiftool reports in the System group
# describes where or when WE read the file, not the file: its name and directory (and
# our private alias for awkward names), FileAccessDate (changed by the act of reading),
# FileInodeChangeDate (changed by chmod/link/copy), FilePermissions (our mount and
# umask), and on other platforms FileCreateDate (birth of this copy), FileAttributes,
# inode/device/owner numbers. We keep FileSize (content) and FileModifyDate (the mtime
# the file arrived with, rendered in UTC so it does not depend on the reader's zone).
_SYSTEM_KEEP = frozenset({"System:FileSize", "System:FileModifyDate"})
_CAPTURE_TAGS = (
    "DateTimeOriginal",
    "CreationDate",
    "ContentCreateDate",
    "CreateDate",
    "MediaCreateDate",
    "DateCreated",
)


# EXIF 2.31 stores the zone of an EXIF date in a separate tag of the same group.
_EXIF_OFFSET_TAG = {
    "DateTimeOriginal": "OffsetTimeOriginal",
    "CreateDate": "OffsetTimeDigitized",
}


_MAX_SAFE_INT = 2**53 - 1  # I-JSON (RFC 7493) / RFC 8785 integer range


# What an item record keeps of exiftool's output (docs/format.md §6): at most this many
# bytes of canonical JSON in all, and, when the whole is larger, only the tags whose own
# member (``"Group:Tag":value``) is at most ``MAX_TAG_BYTES``. A photo's metadata is 5-40
# KiB; a video's with embedded telemetry can be megabytes.
MAX_METADATA_BYTES = 256 << 10
MAX_TAG_BYTES = 4 << 10


_EXIF_DATE = re.compile(
    r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)


_ZONE = re.compile(r"Z|[+-]\d{2}(?::?\d{2})?")


@dataclass(frozen=True)
class FileMetadata:
    """What exiftool said about one file.

    ``tags`` is a plain ``dict`` (so it can go straight into ``rfc8785.dumps``); treat it
    as read-only. It is empty when exiftool produced nothing (timeout, crash, file gone).
    """

    tags: Mapping[str, Any]
    mime: str | None
    error: str | None
    warnings: tuple[str, ...]
    capture_time: str | None


# -- turning exiftool's JSON into FileMetadata --------------------------------------


def parse_int(text: str) -> int | str:
    # exiftool already quotes integers of 16+ digits; this is the I-JSON guard anyway.
    if len(text) > 17:  # also keeps int() away from its 4300-digit refusal
        return text
    value = int(text)
    return value if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else text


def parse_float(text: str) -> float | str:
    # exiftool writes numbers like "1e999" unquoted; json would make them inf.
    value = float(text)
    return value if math.isfinite(value) else text


def clean_text(text: str) -> str:
    # Only \u escapes can still carry a lone surrogate here (bytes were decoded with
    # errors="replace"); RFC 8785 cannot encode one.
    return _LONE_SURROGATE.sub("\ufffd", text)


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k): _clean_value(v) for k, v in value.items()}
    return value  # bool, None, and numbers already range-checked while parsing


def sanitise(obj: Mapping[str, Any]) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "SourceFile":
            continue
        if key.startswith("System:") and key not in _SYSTEM_KEEP:
            continue
        tags[clean_text(key)] = _clean_value(value)
    return tags


def named(tags: Mapping[str, Any], name: str) -> Iterable[tuple[str, Any]]:
    """(group, value) of every tag called ``name``, in exiftool's output order."""
    suffix = ":" + name
    for key, value in tags.items():
        if key.endswith(suffix):
            yield key[: -len(suffix)], value


def texts(value: Any) -> list[str]:
    if isinstance(value, list):
        return [t for v in value for t in texts(v)]
    return [] if value is None else [str(value)]


def capture_time(tags: Mapping[str, Any]) -> str | None:
    """First claimed capture time: RFC 3339 if its zone is known, else as exiftool wrote it."""
    for name in _CAPTURE_TAGS:
        for group, value in named(tags, name):
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                continue
            text = str(value).strip()
            if not any(c in "123456789" for c in text):
                continue  # unset: "", "0000:00:00 00:00:00", "    :  :     :  :  "
            zone = None
            offset_tag = _EXIF_OFFSET_TAG.get(name)
            if offset_tag is not None:
                offset = tags.get(f"{group}:{offset_tag}")
                if isinstance(offset, str) and _ZONE.fullmatch(offset.strip()):
                    zone = offset.strip()
            return _rfc3339(text, zone) or text
    return None


def _rfc3339(text: str, extra_zone: str | None) -> str | None:
    """exiftool date "YYYY:MM:DD HH:MM:SS[.f][zone]" -> RFC 3339; None if no zone or invalid."""
    m = _EXIF_DATE.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    zone = zone or extra_zone
    if zone is None:
        return None
    try:
        if zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
            if hours > 23 or minutes > 59:
                return None
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
            zone = f"{zone[0]}{hours:02d}:{minutes:02d}"
        else:
            tz = UTC
        # Validates the calendar (no month 13, no 30 February); leap seconds aside.
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz)
    except ValueError:
        return None
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}{frac or ''}{zone}"


# -- what a record keeps ---------------------------------------------------------------


@dataclass(frozen=True)
class CappedMetadata:
    """The tags an item record keeps, and - when that is not all of them - the whole of
    exiftool's sanitised output as canonical JSON (RFC 8785), to be kept beside the ledger."""

    tags: dict[str, Any]
    full: bytes | None = None


def _estimate(value: Any) -> int:
    """Length of ``value`` as compact JSON by the C encoder, at a thirtieth of the cost of
    encoding it canonically. Only number spellings differ (Python's repr against ECMAScript's,
    RFC 8785 §3.2.2.3): the canonical length is at least 4/5 of this ("1e-07" is "1e-7") and
    at most 4.2 times it ("1e+20" is "100000000000000000000")."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _canonical_size(value: Any) -> int:
    return len(rfc8785.dumps(value))


def cap_metadata(tags: Mapping[str, Any]) -> CappedMetadata:
    """What an item record keeps of ``tags`` (sanitised exiftool output, see ``sanitise``).

    All of it when its canonical JSON is at most ``MAX_METADATA_BYTES``. Otherwise, in
    exiftool's order, every tag whose canonical member is at most ``MAX_TAG_BYTES``, as long
    as the kept object stays within ``MAX_METADATA_BYTES``; and the whole as canonical bytes.
    """
    whole = dict(tags)
    # The estimate settles most files (5-40 KiB) without encoding anything canonically, and
    # a huge one is never encoded just to be measured.
    estimate = _estimate(whole)
    if estimate * 5 <= MAX_METADATA_BYTES:
        return CappedMetadata(whole)
    if estimate * 4 <= MAX_METADATA_BYTES * 5 and _canonical_size(whole) <= MAX_METADATA_BYTES:
        return CappedMetadata(whole)
    kept: dict[str, Any] = {}
    size = 2  # the braces
    for name, value in whole.items():
        member = {name: value}
        if _estimate(member) > 2 * MAX_TAG_BYTES:
            continue  # cannot be within MAX_TAG_BYTES: never encoded in full
        length = _canonical_size(member) - 2 + (1 if kept else 0)  # no braces; a comma
        if length - (1 if kept else 0) > MAX_TAG_BYTES or size + length > MAX_METADATA_BYTES:
            continue
        kept[name] = value
        size += length
    return CappedMetadata(kept, bytes(rfc8785.dumps(whole)))
