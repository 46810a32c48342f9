"""The manifest store's exact bytes, found by custody itself (JPEG APP11 segments, PNG
``caBX``; c2pa-rs ``jpeg_io.rs``/``png_io.rs``), and the signer's certificates from the
COSE_Sign1 ``x5chain`` header of the claim signature (RFC 9052, RFC 9360)."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Mapping
from typing import BinaryIO

import cbor2

# The UUID every C2PA manifest store's JUMBF description box carries; its first four
# bytes spell "c2pa" (C2PA 2.x, "Use of JUMBF").
C2PA_STORE_UUID = bytes.fromhex("6332706100110010800000aa00389b71")


_JPEG_APP11 = 0xEB


_JPEG_SOS = 0xDA


_JPEG_EOI = 0xD9


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# c2pa-rs stores at most 64 000 bytes of store per APP11 segment; a store of 256 MiB
# would be thousands of segments and is refused rather than buffered.
_MAX_STORE_BYTES = 256 * 1024 * 1024


_COSE_SIGN1_TAG = 18


_COSE_X5CHAIN = 33


# --- the manifest store, as embedded ----------------------------------------------------------


def extract_manifest_store(handle: BinaryIO) -> tuple[bytes | None, str]:
    """The embedded C2PA manifest store's bytes (JPEG, PNG), and a note saying how.

    Returns ``(None, reason)`` when there is none or the container is not one custody
    extracts from. Reads sequentially and never more than the store plus headers.
    """
    head = handle.read(8)
    if head[:2] == b"\xff\xd8":
        handle.seek(2)
        return _jpeg_store(handle)
    if head == _PNG_MAGIC:
        return _png_store(handle)
    return None, "manifest store hash not computed: custody extracts it from JPEG and PNG only"


def _read_exact(handle: BinaryIO, size: int) -> bytes | None:
    data = handle.read(size)
    return data if len(data) == size else None


def _jpeg_store(handle: BinaryIO) -> tuple[bytes | None, str]:
    buffer = bytearray()
    current_en: bytes | None = None
    segments = 0
    stores = 0
    while True:
        byte = handle.read(1)
        if not byte:
            break
        if byte != b"\xff":
            break  # not at a marker: malformed, stop looking
        marker = handle.read(1)
        while marker == b"\xff":  # fill bytes
            marker = handle.read(1)
        if not marker:
            break
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD8:
            continue  # standalone markers carry no length
        if code == _JPEG_EOI:
            break
        length_bytes = _read_exact(handle, 2)
        if length_bytes is None:
            break
        (length,) = struct.unpack(">H", length_bytes)
        if length < 2:
            break
        if code == _JPEG_SOS:
            break  # the manifest precedes the scan data
        if code != _JPEG_APP11:
            handle.seek(length - 2, io.SEEK_CUR)
            continue
        contents = _read_exact(handle, length - 2)
        if contents is None or len(contents) <= 16:
            continue
        en = contents[2:4]
        if current_en is not None and en == current_en:
            (sequence,) = struct.unpack(">I", contents[4:8])
            if sequence <= segments:
                current_en = None  # an out-of-order repeat: c2pa-rs drops the run too
                continue
            buffer += contents[16:]
            segments += 1
        elif len(contents) > 28 and contents[24:28] == b"c2pa":
            stores += 1
            if stores > 1:
                return None, "two C2PA manifest stores in one JPEG: the file is not valid C2PA"
            buffer += contents[8:]
            segments = 1
            current_en = en
        if len(buffer) > _MAX_STORE_BYTES:
            return None, "manifest store larger than 256 MiB: not hashed"
    if not buffer:
        return None, "no C2PA manifest store found in the JPEG's APP11 segments"
    return bytes(buffer), "JUMBF manifest store reassembled from JPEG APP11 segments"


def _png_store(handle: BinaryIO) -> tuple[bytes | None, str]:
    while True:
        header = _read_exact(handle, 8)
        if header is None:
            break
        length, kind = struct.unpack(">I4s", header)
        if kind == b"caBX":
            if length > _MAX_STORE_BYTES:
                return None, "manifest store larger than 256 MiB: not hashed"
            data = _read_exact(handle, length)
            if data is None:
                return None, "PNG caBX chunk truncated"
            return data, "JUMBF manifest store from the PNG caBX chunk"
        if kind == b"IEND":
            break
        handle.seek(length + 4, io.SEEK_CUR)  # data and CRC
    return None, "no caBX chunk in the PNG"


# --- the signer's certificate, from the COSE signature ------------------------------------------


def _boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of each ISO BMFF-style box in ``data``; stops at malformed ones."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            if offset + 16 > len(data):
                return
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
            header = 16
        elif size == 0:
            size = len(data) - offset
        if size < header or offset + size > len(data):
            return
        yield kind, data[offset + header : offset + size]
        offset += size


def _superbox(payload: bytes) -> tuple[str | None, list[tuple[bytes, bytes]]]:
    """The label of a JUMBF superbox and its child boxes after the description box."""
    children = list(_boxes(payload))
    if not children or children[0][0] != b"jumd":
        return None, []
    description = children[0][1]
    if len(description) < 17:
        return None, []
    toggles = description[16]
    label = None
    if toggles & 0x02:  # label present, NUL-terminated UTF-8 (ISO/IEC 19566-5)
        end = description.find(b"\x00", 17)
        if end != -1:
            label = description[17:end].decode("utf-8", errors="replace")
    return label, children[1:]


def _x5chain(store: bytes | None, active_label: str | None) -> tuple[bytes, ...]:
    if not store:
        return ()
    try:
        return _x5chain_unchecked(store, active_label)
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, struct.error):
        return ()


def _x5chain_unchecked(store: bytes, active_label: str | None) -> tuple[bytes, ...]:
    top = next(_boxes(store), None)
    if top is None or top[0] != b"jumb":
        return ()
    _, manifests = _superbox(top[1])
    chosen: list[tuple[bytes, bytes]] | None = None
    for kind, payload in manifests:
        if kind != b"jumb":
            continue
        label, children = _superbox(payload)
        # The active manifest is the one named, else the last in the store (C2PA 2.x).
        if active_label is None or label == active_label:
            chosen = children
    if chosen is None:
        return ()
    for kind, payload in chosen:
        if kind != b"jumb":
            continue
        label, children = _superbox(payload)
        if label != "c2pa.signature":
            continue
        for inner_kind, inner in children:
            if inner_kind == b"cbor":
                return _certificates_from_cose(inner)
    return ()


def _certificates_from_cose(data: bytes) -> tuple[bytes, ...]:
    try:
        decoded = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, RecursionError, MemoryError):
        return ()
    if isinstance(decoded, cbor2.CBORTag):
        if decoded.tag != _COSE_SIGN1_TAG:
            return ()
        decoded = decoded.value
    # cbor2 6 returns arrays as tuples and maps as its own frozendict.
    if not isinstance(decoded, list | tuple) or len(decoded) != 4:
        return ()
    protected_raw, unprotected = decoded[0], decoded[1]
    protected: object = {}
    if isinstance(protected_raw, bytes) and protected_raw:
        try:
            protected = cbor2.loads(protected_raw)
        except (cbor2.CBORDecodeError, ValueError, RecursionError, MemoryError):
            protected = {}
    for header in (protected, unprotected):
        if not isinstance(header, Mapping):
            continue
        for key in (_COSE_X5CHAIN, "x5chain"):  # C2PA 1.x wrote the label as text
            value = header.get(key)
            if isinstance(value, bytes):
                return (value,)
            if isinstance(value, list | tuple) and all(isinstance(v, bytes) for v in value):
                return tuple(value)
    return ()
