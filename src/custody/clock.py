"""UTC time as custody writes and reads it: RFC 3339 with a ``Z`` suffix.

Times in records are produced by a ``Clock`` passed in from the edge, so tests can
fix time without sleeping or patching. Naive datetimes are refused rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from custody.i18n import _, ngettext

Clock = Callable[[], datetime]

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """``2026-11-27T07:02:10.123456Z``: microsecond precision, always UTC."""
    return f"{format_seconds(moment)[:-1]}.{moment.microsecond:06d}Z"


def format_seconds(moment: datetime) -> str:
    """``2026-11-27T07:02:10Z``: whole seconds, always UTC, the year always four digits
    (``strftime("%Y")`` writes year 1 as ``1``, which is not RFC 3339)."""
    if moment.tzinfo is None:
        raise ValueError(_("naive datetime: custody only records timezone-aware times"))
    m = moment.astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def format_ns(epoch_ns: int) -> str:
    """A file time in nanoseconds since the epoch, kept to the nanosecond."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def parse_time(text: str) -> datetime:
    """Parse RFC 3339 (any offset, up to nanoseconds; sub-microsecond digits are dropped)."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(_("not an RFC 3339 time: {text}").format(text=repr(text)))
    frac = (match.group(7) or "").ljust(6, "0")[:6]
    offset = match.group(8)
    iso = f"{text[:19]}.{frac}{'+00:00' if offset == 'Z' else offset}"
    try:
        return datetime.fromisoformat(iso).astimezone(UTC)
    except OverflowError:  # an offset that moves year 1 or 9999 off the calendar
        raise ValueError(_("not a representable time: {text}").format(text=repr(text))) from None


def check_time(text: str, *, utc: bool = False, digits: int | None = None) -> None:
    """Raise ValueError unless ``text`` is an RFC 3339 time (with ``utc``: ending in ``Z``;
    with ``digits``: exactly that many digits of fractional seconds).

    What ``parse_time`` and ``parse_ns`` accept, at a third of the cost: verify checks the
    times of every record and needs no datetime for them. Records are held to what custody
    writes (docs/format.md §3): ``time`` with ``utc=True, digits=6`` (``format_time``), an
    item's ``mtime`` with ``utc=True, digits=9`` (``format_ns``).
    """
    match = _RFC3339.fullmatch(text)
    if match is None or (utc and match.group(8) != "Z"):
        wrong = _("not an RFC 3339 UTC time: {text}") if utc else _("not an RFC 3339 time: {text}")
        raise ValueError(wrong.format(text=repr(text)))
    if digits is not None and len(match.group(7) or "") != digits:
        raise ValueError(
            ngettext(
                "not an RFC 3339 time with {n} digit of fractional seconds: {text}",
                "not an RFC 3339 time with {n} digits of fractional seconds: {text}",
                digits,
            ).format(n=digits, text=repr(text))
        )
    offset = match.group(8)
    try:
        datetime.fromisoformat(text[:19])  # calendar and clock ranges
    except ValueError:
        raise ValueError(_("not an RFC 3339 time: {text}").format(text=repr(text))) from None
    if offset != "Z":
        if int(offset[1:3]) > 23 or int(offset[4:6]) > 59:
            raise ValueError(_("not an RFC 3339 time: {text}").format(text=repr(text)))
        if text[:4] in ("0001", "9999"):
            parse_time(text)  # the offset may move it off the calendar


def check_record_time(text: str) -> None:
    """A record's ``time`` or a token's ``gen_time``: as ``format_time`` writes it."""
    check_time(text, utc=True, digits=6)


def check_file_time(text: str) -> None:
    """An item's ``mtime``: as ``format_ns`` writes it."""
    check_time(text, utc=True, digits=9)


def parse_ns(text: str) -> int:
    """Inverse of ``format_ns`` for ``...Z`` times with nanoseconds."""
    match = _RFC3339.fullmatch(text)
    if not match or match.group(8) != "Z":
        raise ValueError(_("not an RFC 3339 UTC time: {text}").format(text=repr(text)))
    whole = datetime.fromisoformat(text[:19] + "+00:00")
    nanos = int((match.group(7) or "").ljust(9, "0"))
    return int(whole.timestamp()) * 1_000_000_000 + nanos
