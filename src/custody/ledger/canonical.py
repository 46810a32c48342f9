"""Canonical JSON: the one place that turns values into the bytes custody hashes and signs.

Every ledger line, proof and checkpoint is RFC 8785 (JSON Canonicalization Scheme) JSON,
produced by the ``rfc8785`` package. Reading is strict: a line is accepted only if it is
valid UTF-8, has no duplicate member names, no NaN/Infinity, no integer outside the
I-JSON range, and re-serialises to exactly the same bytes. Anything else is a
``RecordError`` naming what is wrong.

Checking "re-serialises to the same bytes" with ``rfc8785`` alone costs ~200 µs for a
typical record, which would dominate ``verify``. So writing goes through the standard
library's compact, sorted ``json.dumps`` where that is known to give the RFC 8785 bytes,
and reading tries two fast proofs before the slow one: orjson reads the line and writes
exactly those bytes back (5 µs a record; floats in the two spellings where orjson and
ECMAScript differ, and astral-plane member names, are sent on), else the standard
library parser checks every float literal as it reads and orjson or ``rfc8785`` compare
the result. No fast path can accept a line the exact comparison would refuse; the tests
hold each one to ``rfc8785`` byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import orjson
import rfc8785

from custody.errors import RecordError
from custody.i18n import _

MAX_SAFE_INTEGER = 2**53 - 1


def encode(value: Any) -> bytes:
    """Return the RFC 8785 canonical bytes of a JSON-compatible value."""
    if _plain(value, 0):
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    try:
        return bytes(rfc8785.dumps(value))
    except rfc8785.CanonicalizationError as exc:
        raise RecordError(
            _("value cannot be written as canonical JSON: {why}").format(why=exc)
        ) from exc


def _plain(value: Any, depth: int) -> bool:
    """True when ``json.dumps`` is known to give the RFC 8785 bytes for ``value``.

    That holds for strings without lone surrogates, safe integers, booleans, null, and
    floats whose Python repr already is the ECMAScript form, inside lists and objects
    whose member names stay in the Basic Multilingual Plane.
    """
    if depth > 64:
        return False
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str):
        return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in value) if not value.isascii() else True
    if isinstance(value, int):
        return abs(value) <= MAX_SAFE_INTEGER
    if isinstance(value, float):
        return _float_is_plain(value)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not _plain(key, depth) or not _bmp(key):
                return False
            if not _plain(item, depth + 1):
                return False
        return True
    if isinstance(value, list | tuple):
        return all(_plain(item, depth + 1) for item in value)
    return False


def _bmp(text: str) -> bool:
    return text.isascii() or all(ord(ch) <= 0xFFFF for ch in text)


def _float_is_plain(value: float) -> bool:
    text = repr(value)
    if "e" not in text and not text.endswith(".0") and text not in ("nan", "inf", "-inf"):
        return True
    try:
        return rfc8785.dumps(value).decode() == repr(value)
    except rfc8785.CanonicalizationError:
        return False


class _NotCanonical(ValueError):
    """Raised from inside the JSON parser: the reason is already the user's message."""


def _checked_float(literal: str) -> float:
    value = float(literal)
    # In fixed notation Python's repr and ECMAScript's Number::toString both give the
    # shortest round-tripping digits; only exponents and "x.0" need the exact check.
    if literal == repr(value) and "e" not in literal and not literal.endswith(".0"):
        return value
    try:
        canonical = rfc8785.dumps(value).decode()
    except rfc8785.CanonicalizationError:
        canonical = None
    if canonical != literal:
        raise _NotCanonical(_("number {literal} is not in canonical form").format(literal=literal))
    return value


def _no_constant(name: str) -> Any:
    raise _NotCanonical(_("{name} is not allowed in JSON").format(name=name))


def _unique_pairs(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _NotCanonical(_("duplicate member name {key!r}").format(key=key))
        out[key] = value
    return out


# Built once: every record verify reads goes through one of these. Duplicate names only
# need a hook when canonical form is not checked: a duplicate can never survive the
# re-serialisation comparison.
_STRICT = json.JSONDecoder(parse_float=_checked_float, parse_constant=_no_constant)
_LOOSE = json.JSONDecoder(
    parse_float=_checked_float, parse_constant=_no_constant, object_pairs_hook=_unique_pairs
)


def decode(data: bytes, *, require_canonical: bool = True) -> Any:
    """Parse JSON bytes strictly; raise ``RecordError`` with the reason otherwise.

    With ``require_canonical`` (ledger lines, proofs we signed) the bytes must be exactly
    the RFC 8785 form of what they parse to; that also rules out duplicate member names,
    whitespace, escapes that need not be escapes and integers outside the I-JSON range.
    """
    if require_canonical:
        value = _read_canonical_fast(data)
        if value is not _UNSURE:
            return value
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise RecordError(_("not valid UTF-8 at byte {start}").format(start=exc.start)) from exc
    try:
        value = (_STRICT if require_canonical else _LOOSE).decode(text)
    except _NotCanonical as exc:
        raise RecordError(str(exc)) from None
    except RecursionError as exc:
        raise RecordError(_("JSON nested too deeply")) from exc
    except ValueError as exc:  # includes JSONDecodeError and over-long integers
        raise RecordError(_("not valid JSON: {why}").format(why=str(exc)[:120])) from exc
    if require_canonical:
        canonical, value = _is_canonical(value, data, text)
        if not canonical:
            raise RecordError(_("JSON is not in RFC 8785 canonical form"))
    return value


_UNSURE = object()
_ORJSON_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_ASTRAL = re.compile(rb"[\xf0-\xff]")  # lead bytes of 4-byte UTF-8 sequences


def _read_canonical_fast(data: bytes) -> Any:
    """The value of ``data`` when orjson proves it canonical on its own, else ``_UNSURE``.

    Verify reads every ledger line through here, so this is the hot path. If orjson reads
    the bytes and writes exactly them back, they are RFC 8785 unless a float is spelled
    in one of the forms where orjson and ECMAScript differ, or a member name lies outside
    the Basic Multilingual Plane (RFC 8785 sorts by UTF-16 code units). Either way - and
    for anything orjson refuses - the full strict reader decides.
    """
    if not data.isascii() and _ASTRAL.search(data):
        return _UNSURE
    try:
        value = orjson.loads(data)
        if orjson.dumps(value, option=_ORJSON_CANONICAL) != data:
            return _UNSURE
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, RecursionError, TypeError):
        return _UNSURE
    return value if _floats_spelled_alike(value) else _UNSURE


def _floats_spelled_alike(value: Any) -> bool:
    """False if a float in ``value`` has an exponent or an integral value in orjson's form.

    Only those spellings differ from ECMAScript's (1e+16 / 10000000000000000, 2.0 / 2):
    orjson writes every other finite double as the shortest round-tripping digits in fixed
    notation, which is what RFC 8785 writes too (tests/test_canonical.py checks the claim).
    """
    kind = value.__class__
    if kind is dict:
        items: Iterable[Any] = value.values()
    elif kind is list:
        items = value
    else:
        return kind is not float or _float_spelled_alike(value)
    for item in items:
        kind = item.__class__
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            # orjson writes fixed notation from 1e-5 up to 1e16 (the tests hold it to that)
            if (1e-4 <= abs(item) < 1e15 and not item.is_integer()) or _float_spelled_alike(
                item
            ):
                continue
            return False
        if not _floats_spelled_alike(item):
            return False
    return True


def _float_spelled_alike(number: float) -> bool:
    spelled = orjson.dumps(number)
    return b"e" not in spelled and not spelled.endswith(b".0")


def _is_canonical(value: Any, data: bytes, text: str) -> tuple[bool, Any]:
    """(whether ``data`` is the RFC 8785 form of ``value``, the value as RFC 8785 reads it)."""
    # orjson writes what RFC 8785 writes for strings, member order within the BMP and
    # integers up to 2**53 (OPT_STRICT_INTEGER refuses larger ones); its float spelling
    # differs in a few ranges, but every float literal was already checked against the
    # ECMAScript form as it was parsed, so a difference there only sends the line to the
    # exact comparison below. Astral-plane member names sort differently in UTF-16.
    if text.isascii() or max(text) <= "\uffff":
        try:
            if orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER) == data:
                return True, value
        except (orjson.JSONEncodeError, RecursionError, TypeError):
            pass
    try:
        # RFC 8785 numbers are IEEE doubles: an integer literal beyond 2**53 is the
        # canonical spelling of a large double (1e20 is written 100000000000000000000).
        value = _as_doubles(value)
        return bytes(rfc8785.dumps(value)) == data, value
    except (rfc8785.CanonicalizationError, RecursionError, OverflowError):
        return False, value


def _as_doubles(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value) if abs(value) > MAX_SAFE_INTEGER else value
    if isinstance(value, list):
        return [_as_doubles(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_doubles(v) for k, v in value.items()}
    return value
