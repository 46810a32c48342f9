"""Text from files and people made safe for one terminal line, and labels padded to a
column in any script (no framework imported).

Shared by the fast paths (``custody.cli.fastpath``, ``custody.cli.fixity``), which run
before Typer and rich load, and by ``custody.cli.common``.
"""

from __future__ import annotations

import unicodedata

_BIDI = {0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def printable(text: str) -> str:
    """``text`` safe for a terminal line: control characters and bidirectional overrides
    become visible escapes, so a file name can never forge, hide or reorder output."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in _BIDI or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def columns(text: str) -> int:
    """How many terminal columns ``text`` takes: combining marks (Arabic vowel signs such as
    the shadda) take none of their own."""
    return sum(1 for ch in text if not unicodedata.combining(ch))


def pad(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` columns, so labels line up in any language."""
    return text + " " * max(0, width - columns(text))
