"""References between records: an event's items and output, an item's ``duplicate_of``
and ``supersedes``, an exhibit's ``item`` must name an earlier item record, with the same
SHA-256 where the reference carries one (REFERENCE_INVALID).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from custody.findings import Code, Finding
from custody.i18n import N_, _
from custody.ledger.records import Record


class Reference(NamedTuple):
    """A record naming an item record: by number, and by SHA-256 where it says one."""

    target: int
    sha256: str | None
    what: str  # who names it, a key of _PROBLEMS: "the event", "its duplicate_of"...


# What REFERENCE_INVALID says, for each kind of reference: (the target comes later, the
# target is not an item record, the target holds other content). Whole sentences each.
_PROBLEMS = {
    "its duplicate_of": (
        N_("its duplicate_of names record {seq}, which does not come before it"),
        N_("its duplicate_of names record {seq}, which is not an item record"),
        N_("its duplicate_of names record {seq} with other content than it holds"),
    ),
    "its supersedes": (
        N_("its supersedes names record {seq}, which does not come before it"),
        N_("its supersedes names record {seq}, which is not an item record"),
        N_("its supersedes names record {seq} with other content than it holds"),
    ),
    "the event": (
        N_("the event names record {seq}, which does not come before it"),
        N_("the event names record {seq}, which is not an item record"),
        N_("the event names record {seq} with other content than it holds"),
    ),
    "the exhibit": (
        N_("the exhibit names record {seq}, which does not come before it"),
        N_("the exhibit names record {seq}, which is not an item record"),
        N_("the exhibit names record {seq} with other content than it holds"),
    ),
}


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
    later, not_item, other = _PROBLEMS[ref.what]
    if ref.target >= position:
        problem = later
    elif held is None:
        problem = not_item
    else:
        if ref.sha256 is None or held.hex() == ref.sha256:
            return None
        expected, found = ref.sha256, held.hex()
        problem = other
    message = _(problem).format(seq=ref.target)
    return Finding(Code.REFERENCE_INVALID, f"record {position}", message, position, expected, found)


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
