"""How values are written for people, the same way in the report, the register and the
certifications: times in one unambiguous form, sizes, fingerprints in groups, positions.

Times: ``YYYY-MM-DD HH:MM:SS`` followed by the zone - ``UTC`` for every time custody or a
timestamp authority recorded, the recorded offset (``+02:00``) for a claimed capture time
that carries one, and ``(no zone recorded)`` for one that does not (most cameras write
local time without saying which). Fractions of a second are kept when recorded. A value
that is not a date custody recognises is shown as recorded, and says so.

Every function takes the words it writes (``words``: the ``[formats]`` table of the report's
strings, ``templates/strings/<lang>.toml``) and writes English without them, as the register
and the certifications do. A report in Arabic writes the same values with Arabic words, and
adds to each date the date in words (``written_date``: "6 كانون الأول/ديسمبر 2026", the
Syriac and the Western month names, as docs/ar/glossary.md chooses); its digits stay
Western (0-9), so that every number matches the JSON, the bundle and the English report.
``wrap`` (the HTML page's isolation of a left-to-right value, ``custody.delivery.report.html``)
is applied to each value inside the words: a time, a size, a coordinate.

Pure functions; nothing here reads files or the clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

NO_ZONE = "(no zone recorded)"

# The words of these functions in English; strings/en.toml's [formats] holds the same (a test
# keeps them equal), and a translation's [formats] replaces them.
ENGLISH: Mapping[str, Any] = {
    "utc": "UTC",
    "utc_offset_unknown": "UTC (local offset unknown)",
    "no_zone": NO_ZONE,
    "unreadable": "{value} (as recorded; not a date custody can read)",
    "bytes": "{n} bytes",
    "thousands": ",",
    "scaled": "{value} ({bytes})",
    "gps": "{lat}, {lon} ({alat} {ns}, {alon} {ew})",
    "north": "N",
    "south": "S",
    "east": "E",
    "west": "W",
    "gps_zero": ": latitude and longitude exactly zero, which devices write when they had no fix",
    "seconds": "{n} s",
    "months": [],
    "written_date": "{day} {month} {year}",
}


def _plain(value: str) -> Any:
    return value


Wrap = Callable[[str], Any]

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


def display_time(
    text: str | None,
    *,
    seconds_only: bool = False,
    words: Mapping[str, Any] = ENGLISH,
    wrap: Wrap = _plain,
) -> Any:
    """A recorded time for people (see the module docstring); '' for None.

    With ``wrap``, the date and time are one wrapped value and the words around it are not.
    """
    if text is None:
        return ""
    value = text.strip()
    m = _RFC3339.fullmatch(value)
    if m:
        year, month, day, hour, minute, second, frac, zone = m.groups()
        if zone in ("Z", "+00:00"):
            zone = words["utc"]
        elif zone == "-00:00":  # RFC 3339 section 4.3: UTC known, local offset not
            zone = words["utc_offset_unknown"]
        fraction = "" if seconds_only else _fraction(frac)
        return _joined(wrap, f"{year}-{month}-{day} {hour}:{minute}:{second}{fraction}", zone)
    m = _EXIF.fullmatch(value)
    if m:
        year, month, day, hour, minute, second, frac = m.groups()
        fraction = "" if seconds_only else _fraction(frac)
        time = f"{year}-{month}-{day} {hour}:{minute}:{second}{fraction}"
        return _joined(wrap, time, None, words["no_zone"])
    return _format(words["unreadable"], wrap, value=value)


def _joined(wrap: Wrap, time: str, zone: str | None, after: str | None = None) -> Any:
    """``time zone`` as one value when the zone is a Latin abbreviation (UTC, +02:00), and
    the words after it apart."""
    if wrap is _plain:
        return " ".join(p for p in (time, zone, after) if p)
    if zone is not None and zone.isascii():
        return wrap(f"{time} {zone}")
    from markupsafe import Markup, escape

    parts = [wrap(time), *(escape(p) for p in (zone, after) if p)]
    return Markup(" ").join(parts)


def _format(pattern: str, wrap: Wrap, literal: Sequence[str] = (), **values: object) -> Any:
    """``pattern`` filled with ``values``, each wrapped (and the pattern escaped) when the
    caller isolates values, except those named in ``literal`` (words, not values); plain
    ``str.format`` otherwise."""
    if wrap is _plain:
        return pattern.format(**values)
    from markupsafe import Markup, escape

    return Markup(escape(pattern)).format(
        **{k: escape(str(v)) if k in literal else wrap(str(v)) for k, v in values.items()}
    )


def written_date(text: str | None, months: Sequence[str], pattern: str) -> str | None:
    """The date of a recorded time in words ("6 كانون الأول/ديسمبر 2026"), or None when
    there are no month names or no date custody can read. The date is the one written in
    the value (UTC for the times custody records; as the device wrote it otherwise)."""
    if not text or len(months) != 12:
        return None
    value = text.strip()
    m = _RFC3339.fullmatch(value) or _EXIF.fullmatch(value)
    if not m:
        return None
    year, month, day = m.group(1), int(m.group(2)), int(m.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return pattern.format(day=day, month=months[month - 1], year=year)


def utc_now_display() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def size_text(n: int, *, words: Mapping[str, Any] = ENGLISH, wrap: Wrap = _plain) -> Any:
    """A size in bytes, and in KiB/MiB/GiB/TiB beyond 1024 (with the exact bytes)."""
    separator = str(words["thousands"])
    exact = f"{n:,}".replace(",", separator) if separator else str(n)
    count = _format(words["bytes"], _plain, n=exact)
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            if unit == "bytes":
                return count if wrap is _plain else _format(words["bytes"], wrap, n=exact)
            scaled = f"{value:.1f} {unit}"
            if wrap is _plain:
                return words["scaled"].format(value=scaled, bytes=count)
            from markupsafe import Markup, escape

            bytes_part = _format(words["bytes"], wrap, n=exact)
            return Markup(escape(words["scaled"])).format(value=wrap(scaled), bytes=bytes_part)
        value /= 1024
    return count


def grouped(fingerprint: str) -> str:
    """A fingerprint in groups of four, to be read aloud and compared."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def gps_text(
    gps: tuple[float, float], *, words: Mapping[str, Any] = ENGLISH, wrap: Wrap = _plain
) -> Any:
    lat, lon = gps
    text = _format(
        words["gps"],
        wrap,
        lat=f"{lat:.5f}",
        lon=f"{lon:.5f}",
        alat=f"{abs(lat):.5f}\u00b0",
        alon=f"{abs(lon):.5f}\u00b0",
        literal=("ns", "ew"),
        ns=words["north"] if lat >= 0 else words["south"],
        ew=words["east"] if lon >= 0 else words["west"],
    )
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:
        text += words["gps_zero"]
    return text
