"""The fixed tables of the format: digest algorithms (§2.4), tag-file encodings (§2.1.1),
operating-system files, the patterns of names and lines, and how names are shown."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from typing import Final

# §2.4: algorithm names are the lower-cased common name with non-alphanumerics removed.
# Values: hashlib name, hex length. md5/sha1 are accepted for backwards compatibility.
_ALGORITHMS: Final[dict[str, tuple[str, int]]] = {
    "md5": ("md5", 32),
    "sha1": ("sha1", 40),
    "sha224": ("sha224", 56),
    "sha256": ("sha256", 64),
    "sha384": ("sha384", 96),
    "sha512": ("sha512", 128),
    "sha3224": ("sha3_224", 56),
    "sha3256": ("sha3_256", 64),
    "sha3384": ("sha3_384", 96),
    "sha3512": ("sha3_512", 128),
    "blake2b512": ("blake2b", 128),
    "blake2s256": ("blake2s", 64),
}
# Names other tools write (bagit-python uses hashlib's names) that map to the above.
_ALGORITHM_ALIASES: Final[dict[str, str]] = {
    "sha3_224": "sha3224",
    "sha3_256": "sha3256",
    "sha3_384": "sha3384",
    "sha3_512": "sha3512",
    "blake2b": "blake2b512",
    "blake2s": "blake2s256",
    "sha-1": "sha1",
    "sha-224": "sha224",
    "sha-256": "sha256",
    "sha-384": "sha384",
    "sha-512": "sha512",
}
_WEAK: Final = frozenset({"md5", "sha1"})

# §2.1.1: ENCODING is a name from IANA's character-set registry. Only these names (and
# their registered aliases) are accepted: an open codec lookup would also admit Python's
# own non-charset codecs. Values: Python codec, whether a BOM is part of the encoding.
_ENCODINGS: Final[dict[str, tuple[str, bool]]] = {
    "utf-8": ("utf-8", False),
    "us-ascii": ("ascii", False),
    "ascii": ("ascii", False),
    "utf-16": ("utf-16", True),
    "utf-16le": ("utf-16-le", False),
    "utf-16be": ("utf-16-be", False),
    "utf-32": ("utf-32", True),
    "utf-32le": ("utf-32-le", False),
    "utf-32be": ("utf-32-be", False),
    "iso-8859-1": ("latin-1", False),
    "iso_8859-1": ("latin-1", False),
    "latin1": ("latin-1", False),
    "l1": ("latin-1", False),
    **{
        f"iso-8859-{n}": (f"iso8859-{n}", False)
        for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)
    },
    **{f"windows-{n}": (f"cp{n}", False) for n in range(1250, 1259)},
    "koi8-r": ("koi8-r", False),
    "koi8-u": ("koi8-u", False),
    "shift_jis": ("shift_jis", False),
    "euc-jp": ("euc_jp", False),
    "iso-2022-jp": ("iso2022_jp", False),
    "euc-kr": ("euc_kr", False),
    "gb2312": ("gb2312", False),
    "gbk": ("gbk", False),
    "gb18030": ("gb18030", False),
    "big5": ("big5", False),
}

# Files an operating system or file manager drops into folders by itself.
_SYSTEM_NAMES: Final = frozenset(
    {".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", ".directory", "icon\r"}
)

_MANIFEST_NAME = re.compile(r"^(tag)?manifest-(.+)\.txt$", re.DOTALL)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_PERCENT_1_0 = re.compile(r"%(0[AaDd]|25)")
_DECL_LABELS: Final = ("BagIt-Version", "Tag-File-Character-Encoding")
_VERSION = re.compile(r"^([0-9]+)\.([0-9]+)$")
_OXUM = re.compile(r"^([0-9]+)\.([0-9]+)$")
_SHOULD_NOT_REPEAT: Final = ("bagging-date", "bag-size", "bag-group-identifier", "bag-count")
_EMPTY_DIGESTS: Final = {
    name: hashlib.new(hname, usedforsecurity=False).hexdigest()
    for name, (hname, _hexlen) in _ALGORITHMS.items()
}

_O_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY: Final = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_O_NOATIME: Final = getattr(os, "O_NOATIME", 0)


def _show(name: bytes) -> str:
    """A bag-relative name for messages: UTF-8 where it is, escapes where it is not."""
    text = name.decode("utf-8", "backslashreplace")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _nfc_key(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _fold_key(name: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def hashlib_name(algorithm: str) -> str | None:
    """hashlib's name for a BagIt algorithm name as custody reports it (``sha3256`` ->
    ``sha3_256``), or None for an algorithm custody does not read."""
    known = _ALGORITHMS.get(algorithm)
    return known[0] if known else None
