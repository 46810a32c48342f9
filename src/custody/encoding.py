"""Text encodings of bytes that custody writes and reads strictly: canonical base64.

A foundation module: imports only ``custody.errors`` and ``custody.i18n``. Records, key files
and bundles all decode base64 through here, so "canonical only" is one rule in one place.
"""

from __future__ import annotations

import base64
import binascii

from custody.errors import RecordError
from custody.i18n import _


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Strict base64: the one canonical encoding only (RFC 4648 §3.5: zero padding bits)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise RecordError(_("{what} is not valid base64").format(what=what)) from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise RecordError(_("{what} is not in canonical base64").format(what=what))
    return raw
