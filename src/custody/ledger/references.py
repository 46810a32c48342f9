"""References between records: an event's items and output, an item's ``duplicate_of``
and ``supersedes``, an exhibit's ``item`` must name an earlier item record, with the same
SHA-256 where the reference carries one (REFERENCE_INVALID).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from custody.findings import Code, Finding
from custody.ledger.records import Record


class Reference(NamedTuple):
    """A record naming an item record: by number, and by SHA-256 where it says one."""

    target: int
    sha256: str | None
    what: str  # who names it, for the finding: "the event", "its duplicate_of"...


def references(record_type: str, body: Any) -> tuple[Reference, ...]:
    """The item records a record's (already validated) body names."""
    if record_type == "item":
        found = []
        original, earlier = body.get("duplicate_of"), body.get("supersedes")
        if original is not None:
            found.append(Reference(original, body["digests"]["sha256"], "its duplicate_of"))
        if earlier is not None:
            found.append(Reference(earlier, None, "its supersedes"))
        return tuple(found)
    if record_type == "event":
        named = [*body["items"], *([body["output"]] if body.get("output") else [])]
        return tuple(Reference(ref["seq"], ref["sha256"], "the event") for ref in named)
    if record_type == "exhibit":
        ref = body["item"]
        return (Reference(ref["seq"], ref["sha256"], "the exhibit"),)
    return ()


def reference_finding(position: int, ref: Reference, held: bytes | None) -> Finding | None:
    """REFERENCE_INVALID unless ``ref`` (made by record ``position``) names an earlier item
    record with that content. ``held``: the SHA-256 of the target if it is an item record."""
    expected = found = None
    if ref.target >= position:
        problem = f"{ref.what} names record {ref.target}, which does not come before it"
    elif held is None:
        problem = f"{ref.what} names record {ref.target}, which is not an item record"
    else:
        if ref.sha256 is None or held.hex() == ref.sha256:
            return None
        expected, found = ref.sha256, held.hex()
        problem = f"{ref.what} names record {ref.target} with other content than it holds"
    return Finding(Code.REFERENCE_INVALID, f"record {position}", problem, position, expected, found)


def reference_findings(records: Mapping[int, Record]) -> tuple[list[Finding], int]:
    """Reference findings among some records of a ledger (a bundle's), keyed by number;
    references to records not given are skipped. Returns (findings, references checked)."""
    held = {
        seq: bytes.fromhex(record.body["digests"]["sha256"])
        for seq, record in records.items()
        if record.type == "item"
    }
    findings: list[Finding] = []
    checked = 0
    for seq, record in sorted(records.items()):
        for ref in references(record.type, record.body):
            if ref.target < seq and ref.target not in records:
                continue
            checked += 1
            finding = reference_finding(seq, ref, held.get(ref.target))
            if finding is not None:
                findings.append(finding)
    return findings, checked
