"""custody.ledger.canonical against the reference RFC 8785 implementation (the ``rfc8785`` package).

``encode`` takes a fast path through ``json.dumps`` and ``decode`` checks canonical form
the same way; these tests hold both to ``rfc8785.dumps`` byte for byte, and hold
``decode`` to its promise: a ``RecordError`` for anything that is not the canonical form
of what it parses to, and never any other exception.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from custody.errors import RecordError
from custody.ledger import canonical

SAFE = 2**53 - 1

# Text that reaches the awkward corners: astral-plane characters (UTF-16 sort order),
# controls (escapes), the last BMP characters, combining marks and RTL scripts.
_ALPHABET = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(
        ["\x00", "\x1f", "\x7f", '"', "\\", "/", "\u2028", "\ufeff", "\uffff", "\U00010000",
         "\U0001f600", "\u0301", "\u0627", "\u0654", "é"]
    ),
)
TEXT = st.text(_ALPHABET, max_size=12)
FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1.0, 1e21, 1e-7, 1e-6, 1e20, 9007199254740992.0, 5e-324, 1.7976931348623157e308,
     0.1, 123456789.125, -1.5e-300]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | FLOATS
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=25,
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rejects(data: bytes) -> str:
    """Assert ``decode`` refuses ``data`` with a RecordError (and nothing else)."""
    with pytest.raises(RecordError) as info:
        canonical.decode(data)
    return str(info.value)


# --- encode == RFC 8785 ------------------------------------------------------------------


@SETTINGS
@given(JSON_VALUES)
@example({"\U00010000": 1, "\uffff": 2, "\ue000": 3})  # UTF-16 order differs from code points
@example([1e21, 1e-7, -0.0, 1.0, 9007199254740992.0])
def test_encode_equals_rfc8785(value: Any) -> None:
    assert canonical.encode(value) == rfc8785.dumps(value)


@SETTINGS
@given(JSON_VALUES)
def test_decode_round_trips(value: Any) -> None:
    data = canonical.encode(value)
    decoded = canonical.decode(data)
    # Numbers are IEEE doubles in RFC 8785: 1.0 comes back as 1 and -0.0 as 0; equal.
    assert decoded == value
    assert canonical.encode(decoded) == data


@SETTINGS
@given(JSON_VALUES)
def test_fast_reader_accepts_only_what_rfc8785_writes(value: Any) -> None:
    """The orjson fast path either defers or returns exactly what RFC 8785 reads back."""
    try:
        data = bytes(rfc8785.dumps(value))
    except rfc8785.CanonicalizationError:
        return
    fast = canonical._read_canonical_fast(data)
    if fast is not canonical._UNSURE:
        assert fast == value
        assert rfc8785.dumps(fast) == data


@settings(max_examples=2000, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=1e-4, max_value=1e15)
    | st.floats(min_value=-1e15, max_value=-1e-4)
)
def test_orjson_fixed_notation_is_the_ecmascript_spelling(number: float) -> None:
    # The claim _floats_spelled_alike rests on.
    spelled = orjson.dumps(number)
    if b"e" not in spelled and not spelled.endswith(b".0"):
        assert spelled == rfc8785.dumps(number)
    if 1e-4 <= abs(number) < 1e15 and not number.is_integer():
        # the range canonical._floats_spelled_alike takes without asking orjson
        assert b"e" not in spelled and not spelled.endswith(b".0")


@pytest.mark.parametrize(
    "data", [b"2.0", b"[1,-0.0]", b'{"a":1e+21}', b'{"a":1e21}', b"[1.0e5]", b'{"a":[0.5,3.0]}']
)
def test_fast_reader_defers_numbers_orjson_spells_its_own_way(data: bytes) -> None:
    assert canonical._read_canonical_fast(data) is canonical._UNSURE


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64) | st.text(st.sampled_from('{}[]":,0123456789.-eEtrufalsn \\u'),
                                       max_size=40).map(str.encode))
def test_decode_accepts_only_canonical_bytes(data: bytes) -> None:
    """For ANY bytes: either RecordError, or the bytes are exactly the RFC 8785 encoding."""
    try:
        value = canonical.decode(data)
    except RecordError:
        return
    assert rfc8785.dumps(value) == data


@SETTINGS
@given(JSON_VALUES, st.sampled_from([" ", "\n", "\t", "\r"]), st.data())
def test_decode_rejects_added_whitespace(value: Any, space: str, data: st.DataObject) -> None:
    encoded = canonical.encode(value)
    position = data.draw(st.integers(min_value=0, max_value=len(encoded)))
    # Insert only between tokens: before/after the document, or after a structural char.
    boundaries = [0, len(encoded)] + [i + 1 for i, b in enumerate(encoded) if b in b"[]{},:"]
    position = min(boundaries, key=lambda b: abs(b - position))
    # Inside a string value a structural character is just text: skip those positions.
    prefix = encoded[:position]
    assume(_outside_string(prefix))
    rejects(prefix + space.encode() + encoded[position:])


def _outside_string(prefix: bytes) -> bool:
    inside = escaped = False
    for byte in prefix:
        if escaped:
            escaped = False
        elif byte == 0x5C and inside:
            escaped = True
        elif byte == 0x22:
            inside = not inside
    return not inside


@SETTINGS
@given(st.dictionaries(TEXT, SCALARS, min_size=2, max_size=6))
def test_decode_rejects_reordered_members(value: dict[str, Any]) -> None:
    canonical_bytes = canonical.encode(value)
    members = [canonical.encode({k: v})[1:-1] for k, v in value.items()]
    reordered = b"{" + b",".join(reversed(sorted(members, key=lambda m: canonical_bytes.index(m))))
    reordered += b"}"
    assert reordered != canonical_bytes
    rejects(reordered)


@SETTINGS
@given(st.dictionaries(TEXT, SCALARS, min_size=1, max_size=4), st.data())
def test_decode_rejects_duplicate_members(value: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(value)))
    encoded = canonical.encode(value)
    duplicate = canonical.encode({key: value[key]})[1:-1]
    for variant in (b"{" + duplicate + b"," + encoded[1:], encoded[:-1] + b"," + duplicate + b"}"):
        rejects(variant)
        rejects_loose(variant)


def rejects_loose(data: bytes) -> None:
    """Even without the canonical check, duplicate names are refused."""
    with pytest.raises(RecordError, match="duplicate"):
        canonical.decode(data, require_canonical=False)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'"\\u0041"', id="escaped-ascii-letter"),
        pytest.param(b'"\\/"', id="escaped-solidus"),
        pytest.param(b'"\\u00e9"', id="escaped-non-ascii"),
        pytest.param(b'"\\u001F"', id="uppercase-hex-escape"),
        pytest.param(b'"\\u0008"', id="long-escape-for-backspace"),
        pytest.param(b'"\x1f"', id="raw-control-char"),
        pytest.param(b"1.0", id="1.0"),
        pytest.param(b"1e-07", id="1e-07"),
        pytest.param(b"1E-7", id="capital-E"),
        pytest.param(b"1e+21".replace(b"+", b""), id="exponent-without-sign"),
        pytest.param(b"100000000000000000000000", id="1e23-written-out"),
        pytest.param(b"0.10", id="trailing-zero"),
        pytest.param(b"-0", id="minus-zero"),
        pytest.param(b"01", id="leading-zero"),
        pytest.param(b"9007199254740993", id="2^53+1-not-a-double"),
        pytest.param(b"12345678901234567890", id="20-digit-integer"),
        pytest.param(b"-9007199254740993", id="-(2^53+1)"),
        pytest.param(b"1" + b"0" * 400, id="integer-beyond-double-range"),
        pytest.param(b"-" + b"9" * 330, id="negative-integer-beyond-double-range"),
        pytest.param(b"1" + b"0" * 5000, id="integer-beyond-int-max-str-digits"),
        pytest.param(b"1e400", id="float-overflow"),
        pytest.param(b"NaN", id="NaN"),
        pytest.param(b"Infinity", id="Infinity"),
        pytest.param(b"[-Infinity]", id="-Infinity"),
        pytest.param(b'{"a":NaN}', id="NaN-member"),
        pytest.param(b'"\xff"', id="invalid-utf8"),
        pytest.param(b'"\xc3"', id="truncated-utf8"),
        pytest.param(b'"\xed\xa0\x80"', id="utf8-encoded-surrogate"),
        pytest.param(b'"\\ud800"', id="lone-surrogate-escape"),
        pytest.param(b"\xef\xbb\xbf{}", id="byte-order-mark"),
        pytest.param(b'{"b":1,"a":2}', id="unsorted"),
        pytest.param(b'{"a":1,"a":1}', id="duplicate-identical"),
        pytest.param(b'{"\xef\xbf\xbf":1,"\xf0\x90\x80\x80":2}', id="code-point-not-utf16-order"),
        pytest.param(b"[1,]", id="trailing-comma"),
        pytest.param(b"", id="empty"),
        pytest.param(b"{} {}", id="two-documents"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="deep-object-nesting"),
        pytest.param(b"true ", id="trailing-space"),
        pytest.param(b"'a'", id="single-quotes"),
    ],
)
def test_decode_rejects_non_canonical(data: bytes) -> None:
    message = rejects(data)
    assert message and "\n" not in message


def test_big_integers_are_doubles_not_integers() -> None:
    # RFC 8785 numbers are IEEE doubles: 2^53 is the canonical form of that double and
    # reads back as one; encode() refuses the Python int 2^53, which is outside I-JSON.
    assert canonical.decode(b"9007199254740992") == 2.0**53
    assert isinstance(canonical.decode(b"9007199254740992"), float)
    with pytest.raises(RecordError):
        canonical.encode(2**53)
    assert canonical.encode(1e20) == b"100000000000000000000"
    assert canonical.decode(b"100000000000000000000") == 1e20


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), 2**53, -(2**53), "\ud800", {"k": {1, 2}}, {1: "a"}]
)
def test_encode_refuses_what_rfc8785_cannot_write(value: Any) -> None:
    with pytest.raises(RecordError):
        canonical.encode(value)


def test_decode_loose_mode_still_strict_about_values() -> None:
    # require_canonical=False tolerates layout but not duplicates, NaN or bad UTF-8.
    assert canonical.decode(b'{ "b": 1,\n "a": [0.5, "\\u00e9"] }', require_canonical=False) == {
        "b": 1,
        "a": [0.5, "é"],
    }
    for bad in (b'{"a":1,"a":2}', b"[NaN]", b'"\xff"'):
        with pytest.raises(RecordError):
            canonical.decode(bad, require_canonical=False)


def test_decode_of_real_ledger_line_shape() -> None:
    line = json.dumps(
        {"sig": "AA==", "signed": {"body": {"path": "تقرير أولي.pdf", "x": 0.5}, "seq": 3}},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert canonical.decode(line)["signed"]["body"]["path"] == "تقرير أولي.pdf"
    # The same document with \\u escapes is the same value but not canonical bytes.
    rejects(json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")).encode())
