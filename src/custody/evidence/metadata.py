"""What exiftool's JSON says about a file, made safe for canonical JSON: ``FileMetadata``
with tags sanitised for RFC 8785 / I-JSON (no unsafe integers, no non-finite floats, no
control characters or lone surrogates), the MIME type, exiftool's Error/Warning tags,
and the claimed capture time in RFC 3339.

Pure: no processes, no files. ``custody.evidence.exiftool`` runs exiftool and calls
``to_metadata``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

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
