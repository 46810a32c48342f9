"""Strict accessors for the members of a parsed record: each raises ``RecordError`` naming
the field, so a malformed record is reported as RECORD_MALFORMED with its reason.

Shared by the envelope (``records``) and the bodies (``bodies``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from custody.errors import RecordError

DIGEST_LENGTHS = {"sha256": 64, "sha512": 128, "sha3-256": 64, "blake3": 64, "sha1": 40, "md5": 32}


HEX64 = re.compile(r"^[0-9a-f]{64}$")


# --- small strict accessors: each raises RecordError naming the field ---------------------


def get_field(obj: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    # Runs for every field of every record verify reads: kept to one lookup and one test.
    try:
        value = obj[name]
    except KeyError:
        raise RecordError(f"{where}: missing field {name!r}") from None
    # bool is an int subclass; a JSON true is never a valid count or sequence number
    if not isinstance(value, kind) or (value.__class__ is bool and kind is not bool):
        raise RecordError(f"{where}: field {name!r} has the wrong type")
    return value


def opt_field(obj: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in obj:
        return None
    return get_field(obj, name, kind, where)


def nonneg_field(obj: Mapping[str, Any], name: str, where: str) -> int:
    value: int = get_field(obj, name, int, where)
    if value < 0:
        raise RecordError(f"{where}: field {name!r} is negative")
    return value


def hex64_field(obj: Mapping[str, Any], name: str, where: str) -> str:
    value: str = get_field(obj, name, str, where)
    if not HEX64.fullmatch(value):
        raise RecordError(f"{where}: field {name!r} is not 64 lowercase hex digits")
    return value


def only_fields(obj: Mapping[str, Any], allowed: frozenset[str] | set[str], where: str) -> None:
    if obj.keys() <= allowed:
        return
    extra = set(obj) - allowed
    if extra:
        raise RecordError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
