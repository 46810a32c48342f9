"""How values are written for people, the same way in the report, the register and the
certifications: times in one unambiguous form, sizes, fingerprints in groups, positions.

Times: ``YYYY-MM-DD HH:MM:SS`` followed by the zone - ``UTC`` for every time custody or a
timestamp authority recorded, the recorded offset (``+02:00``) for a claimed capture time
that carries one, and ``(no zone recorded)`` for one that does not (most cameras write
local time without saying which). Fractions of a second are kept when recorded. A value
that is not a date custody recognises is shown as recorded, and says so.

Pure functions; nothing here reads files or the clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

NO_ZONE = "(no zone recorded)"

# Explicit directional formatting characters (UAX #9, 2.1-2.4) and controls other than tab
# and line feed: never shown as themselves (they can reorder or hide the text around them).
INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\x00-\x08\x0b-\x1f\x7f-\x9f]")

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)
_EXIF = re.compile(r"^(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?$")


def visible(value: object) -> str:
    """The text with its invisible controls made visible as ``[U+202E]``, nothing else."""
    return INVISIBLE.sub(lambda m: f"[U+{ord(m.group()):04X}]", str(value))


def _fraction(text: str | None) -> str:
    if not text:
        return ""
    digits = text[1:].rstrip("0")
    return f".{digits}" if digits else ""


def display_time(text: str | None, *, seconds_only: bool = False) -> str:
    """A recorded time for people (see the module docstring); '' for None."""
    if text is None:
        return ""
    value = text.strip()
    m = _RFC3339.fullmatch(value)
    if m:
        year, month, day, hour, minute, second, frac, zone = m.groups()
        if zone in ("Z", "+00:00"):
            zone = "UTC"
        elif zone == "-00:00":  # RFC 3339 section 4.3: UTC known, local offset not
            zone = "UTC (local offset unknown)"
        fraction = "" if seconds_only else _fraction(frac)
        return f"{year}-{month}-{day} {hour}:{minute}:{second}{fraction} {zone}"
    m = _EXIF.fullmatch(value)
    if m:
        year, month, day, hour, minute, second, frac = m.groups()
        fraction = "" if seconds_only else _fraction(frac)
        return f"{year}-{month}-{day} {hour}:{minute}:{second}{fraction} {NO_ZONE}"
    return f"{value} (as recorded; not a date custody can read)"


def utc_now_display() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def size_text(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({n:,} bytes)"
        value /= 1024
    return f"{n:,} bytes"


def grouped(fingerprint: str) -> str:
    """A fingerprint in groups of four, to be read aloud and compared."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def gps_text(gps: tuple[float, float]) -> str:
    lat, lon = gps
    text = (
        f"{lat:.5f}, {lon:.5f} ({abs(lat):.5f}° {'N' if lat >= 0 else 'S'}, "
        f"{abs(lon):.5f}° {'E' if lon >= 0 else 'W'})"
    )
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:
        text += ": latitude and longitude exactly zero, which devices write when they had no fix"
    return text
