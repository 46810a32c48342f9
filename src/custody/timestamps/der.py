"""The few DER structures custody reads itself in timestamp tokens (TLV walking, OIDs,
integers) and the DER SET re-sorting rfc3161-client needs; everything else is parsed by
``cryptography`` and ``rfc3161-client``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

OID_SIGNED_DATA: Final = "1.2.840.113549.1.7.2"

# --------------------------------------------------------------------------- DER
# A minimal reader for the few CMS/TSP structures custody must look into itself:
# definite lengths only, low tag numbers only, bounds checked everywhere. It is used
# (a) to put the certificate SET back into DER order and (b) to reach the signed
# attributes and signature bytes that rfc3161-client does not expose.


class DerError(ValueError):
    """The bytes are not the DER structure expected at this point."""


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    start: int  # offset of the tag octet
    body: int  # offset of the first content octet
    end: int  # offset just past the content


def read_tlv(data: bytes, pos: int, limit: int) -> Tlv:
    if pos + 2 > limit:
        raise DerError("truncated DER header")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not used in these structures")
    first = data[pos + 1]
    if first < 0x80:
        length, body = first, pos + 2
    elif first == 0x80:
        raise DerError("indefinite length is not DER")
    else:
        count = first & 0x7F
        if count > 4 or pos + 2 + count > limit:
            raise DerError("bad DER length")
        length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
        body = pos + 2 + count
    if body + length > limit:
        raise DerError("DER value runs past its container")
    return Tlv(tag, pos, body, body + length)


def single(data: bytes) -> Tlv:
    tlv = read_tlv(data, 0, len(data))
    if tlv.end != len(data):
        raise DerError("trailing bytes after the DER value")
    return tlv


def children(data: bytes, parent: Tlv) -> list[Tlv]:
    kids: list[Tlv] = []
    pos = parent.body
    while pos < parent.end:
        kid = read_tlv(data, pos, parent.end)
        kids.append(kid)
        pos = kid.end
    return kids


def expect(tlv: Tlv, tag: int, what: str) -> Tlv:
    if tlv.tag != tag:
        raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{tlv.tag:02x}")
    return tlv


def der_oid(data: bytes, tlv: Tlv) -> str:
    content = data[tlv.body : tlv.end]
    expect(tlv, 0x06, "OBJECT IDENTIFIER")
    if not content:
        raise DerError("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for octet in content:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80:
        raise DerError("truncated OBJECT IDENTIFIER")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def der_int(data: bytes, tlv: Tlv) -> int:
    expect(tlv, 0x02, "INTEGER")
    return int.from_bytes(data[tlv.body : tlv.end], "big", signed=True)


def der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der_encode(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_length(len(content)) + content


def der_uint(value: int) -> bytes:
    return der_encode(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def signed_data(raw: bytes) -> tuple[list[Tlv], Tlv]:
    """Return the SignedData's fields and the TimeStampResp's PKIStatusInfo."""
    top = expect(single(raw), 0x30, "TimeStampResp")
    resp = children(raw, top)
    if len(resp) != 2:
        raise DerError("TimeStampResp has no timeStampToken")
    content_info = children(raw, expect(resp[1], 0x30, "ContentInfo"))
    if len(content_info) != 2 or der_oid(raw, content_info[0]) != OID_SIGNED_DATA:
        raise DerError("timeStampToken is not CMS SignedData")
    explicit = children(raw, expect(content_info[1], 0xA0, "ContentInfo.content"))
    if len(explicit) != 1:
        raise DerError("bad ContentInfo.content")
    return children(raw, expect(explicit[0], 0x30, "SignedData")), resp[0]


def der_sorted_certificates(raw: bytes) -> bytes | None:
    """The same response with SignedData.certificates re-emitted in DER SET OF order.

    Only whole certificate encodings are permuted inside the ``[0]`` field, so every
    length stays the same and nothing outside that field changes. Returns None when
    the structure is not recognised or the order is already DER.
    """
    try:
        fields, _status = signed_data(raw)
        cert_field = next((f for f in fields if f.tag == 0xA0), None)
        if cert_field is None:
            return None
        elements = [raw[c.start : c.end] for c in children(raw, cert_field)]
    except DerError:
        return None
    # X.690 §11.6: ascending order of the encodings compared as octet strings. Two
    # distinct complete TLVs can never be prefixes of one another, so plain byte
    # ordering is the DER order.
    ordered = sorted(elements)
    if ordered == elements:
        return None
    fixed = raw[: cert_field.body] + b"".join(ordered) + raw[cert_field.end :]
    return fixed if len(fixed) == len(raw) else None
