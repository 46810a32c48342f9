"""Finding records from what a person types: a record number, a path, a digest prefix, a tag
or an exhibit number.

``resolve`` returns item record numbers; an ambiguous or unknown reference is a
``UsageError`` whose message lists what matched, so the user can narrow it down.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable

from custody.errors import RootError, UsageError
from custody.ledger.store import Ledger

_HEX = re.compile(r"^[0-9a-fA-F]{6,64}$")


def resolve_record(ledger: Ledger, spec: str) -> int:
    """A single record: a number selects any record; otherwise the item ``spec`` names."""
    if spec.isdigit():
        seq = int(spec)
        if seq >= ledger.index.size:
            raise UsageError(f"no record {seq}: the ledger has {ledger.index.size} records")
        return seq
    seqs = resolve_items(ledger, [spec])
    if len(seqs) > 1:
        listing = ", ".join(str(s) for s in seqs[:10])
        raise UsageError(f"{spec!r} matches {len(seqs)} records ({listing}); be more specific")
    return seqs[0]


def resolve_items(
    ledger: Ledger,
    specs: Iterable[str],
    *,
    tags: Iterable[str] = (),
    exhibits: Iterable[str] = (),
    cwd: str | None = None,
) -> list[int]:
    """Item record numbers for each spec (path, folder, digest prefix, number), tag and
    exhibit number."""
    found: dict[int, None] = {}
    for spec in specs:
        seqs = _items_for(ledger, spec, cwd or os.getcwd())
        if not seqs:
            raise UsageError(f"no catalogued item matches {spec!r}")
        found.update((s, None) for s in seqs)
    for tag in tags:
        seqs = ledger.index.items_tagged(tag)
        if not seqs:
            raise UsageError(f"no catalogued item has the tag {tag!r}")
        found.update((s, None) for s in seqs)
    labels = list(exhibits)
    if labels:
        from custody.handling.case import exhibit_book

        book = exhibit_book(ledger)
        for label in labels:
            exhibit = book.find(label)
            if exhibit is None:
                known = ", ".join(e.label for e in book.in_order()[:20]) or "none yet"
                raise UsageError(f"no item has the exhibit number {label!r} (exhibits: {known})")
            found[exhibit.item] = None
    return sorted(found)


def _items_for(ledger: Ledger, spec: str, cwd: str) -> list[int]:
    index = ledger.index
    if spec.isdigit() and int(spec) < index.size:
        seq = int(spec)
        record_type = index.record_type(seq)
        if record_type != "item":
            raise UsageError(f"record {seq} is a {record_type} record, not a catalogued item")
        return [seq]
    # A path as typed from here, then as written relative to the evidence root.
    rels: list[str] = []
    with contextlib.suppress(RootError):
        rels.append(ledger.root.relative(os.path.join(cwd, spec)))
    if not os.path.isabs(spec):
        rels.append(os.path.normpath(spec))
    for rel in rels:
        rows = index.items_at_or_under(os.fsencode(rel) if rel not in ("", ".") else b"")
        if rows:
            return [r.seq for r in rows]
    if _HEX.fullmatch(spec):
        return [r.seq for r in index.items_with_prefix(spec.lower())]
    return []
