"""One RFC 4998 evidence record file, checked on its own (``custody verify-evidence-record``).

An expert may receive an ``.ers`` file without the evidence root or bundle it came from:
from ``custody export-evidence-record``, from a bundle's ``custody/evidence/``, or written
by another implementation (Bouncy Castle, a qualified preservation service). This module
checks it against the data object the expert supplies and the TSA roots the expert trusts,
and turns the result into the ``--json`` document (schemas/cli-verify-evidence-record).
The trust roots are never taken from the record: a record checked against the roots it
carries would prove only that someone made it.

May import: ``custody.errors``, ``custody.clock``, ``custody.timestamps`` (``ers``,
``longterm_check`` for the chains' rendering, ``material``, ``stamping``), ``cryptography``,
the standard library.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from custody.clock import format_time
from custody.errors import UsageError
from custody.i18n import _
from custody.timestamps.ers import ErsVerification, verify_record
from custody.timestamps.longterm_check import chains_json
from custody.timestamps.material import ValidationMaterial
from custody.timestamps.stamping import Trust

__all__ = ["RecordCheck", "check_record_file"]


@dataclass(frozen=True)
class RecordCheck:
    """A received evidence record judged against the supplied data object."""

    record_sha256: str
    members: tuple[str, ...]  # SHA-256 of each data object member, in the order given
    result: ErsVerification

    @property
    def ok(self) -> bool:
        return self.result.ok

    def to_json(self) -> dict[str, Any]:
        result = self.result
        return {
            "valid": result.ok,
            "record_sha256": self.record_sha256,
            "data_object": list(self.members),
            "at": _time(result.at_time),
            "existence_time": _time(result.existence_time) if result.ok else None,
            "renew_before": _time(result.renew_before),
            "chains": chains_json(result),
            "problems": [
                {
                    "code": p.code,
                    "severity": p.severity,
                    "detail": p.detail,
                    "chain": p.chain,
                    "timestamp": p.index,
                }
                for p in result.problems
            ],
        }


def _time(moment: _dt.datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def check_record_file(
    record: bytes,
    members: Sequence[bytes],
    trust: Trust,
    at: _dt.datetime | None = None,
) -> RecordCheck:
    """Does ``record`` prove that the data object ``members`` existed, judged at ``at``?

    ``members`` is one data object (one element) or the members of a data object group
    (custody's records cover a checkpoint's ledger line and its token files). ``trust``
    must hold at least one root: the verdict is about whose timestamps these are.
    """
    if not trust.roots:
        raise UsageError(_("give the TSAs' root certificates with --tsa-root"))
    if not members:
        raise UsageError(_("give the data object the record covers with --data"))
    # Intermediates the expert supplied help build paths, as kept material does.
    material = ValidationMaterial(
        certificates=tuple(c.public_bytes(Encoding.DER) for c in trust.intermediates)
    )
    data: bytes | Sequence[bytes] = members[0] if len(members) == 1 else list(members)
    result = verify_record(record, data, list(trust.roots), material, at)
    return RecordCheck(
        hashlib.sha256(record).hexdigest(),
        tuple(hashlib.sha256(m).hexdigest() for m in members),
        result,
    )
