"""Strict accessors for the members of a parsed record: each raises ``RecordError`` naming
the field, so a malformed record is reported as RECORD_MALFORMED with its reason.

Shared by the envelope (``records``) and the bodies (``bodies``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from custody.errors import RecordError
from custody.i18n import _

DIGEST_LENGTHS = {"sha256": 64, "sha512": 128, "sha3-256": 64, "blake3": 64, "sha1": 40, "md5": 32}


HEX64 = re.compile(r"^[0-9a-f]{64}$")


# --- small strict accessors: each raises RecordError naming the field ---------------------


def get_field(obj: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    # Runs for every field of every record verify reads: kept to one lookup and one test.
    try:
        value = obj[name]
    except KeyError:
        raise RecordError(
            _("{where}: missing field {name!r}").format(where=where, name=name)
        ) from None
    # bool is an int subclass; a JSON true is never a valid count or sequence number
    if not isinstance(value, kind) or (value.__class__ is bool and kind is not bool):
        raise RecordError(
            _("{where}: field {name!r} has the wrong type").format(where=where, name=name)
        )
    return value


def opt_field(obj: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in obj:
        return None
    return get_field(obj, name, kind, where)


def nonneg_field(obj: Mapping[str, Any], name: str, where: str) -> int:
    value: int = get_field(obj, name, int, where)
    if value < 0:
        raise RecordError(_("{where}: field {name!r} is negative").format(where=where, name=name))
    return value


def hex64_field(obj: Mapping[str, Any], name: str, where: str) -> str:
    value: str = get_field(obj, name, str, where)
    if not HEX64.fullmatch(value):
        raise RecordError(
            _("{where}: field {name!r} is not 64 lowercase hex digits").format(
                where=where, name=name
            )
        )
    return value


def only_fields(obj: Mapping[str, Any], allowed: frozenset[str] | set[str], where: str) -> None:
    if obj.keys() <= allowed:
        return
    extra = set(obj) - allowed
    if extra:
        raise RecordError(
            _("{where}: unknown field(s) {names}").format(
                where=where, names=", ".join(sorted(extra))
            )
        )


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
