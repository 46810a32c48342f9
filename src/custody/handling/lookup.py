"""Finding records from what a person types: a record number, a path, a digest prefix, a tag
or an exhibit number.

``resolve`` returns item record numbers; an ambiguous or unknown reference is a
``UsageError`` whose message lists what matched, so the user can narrow it down.

Typed paths match under Unicode normalisation. A name stored decomposed (NFD: macOS, some
cameras and phones write "أدلة" or "Café" that way) is found when typed composed (NFC, what
keyboards produce), and the other way round: paths are compared after NFC normalisation
(Unicode Standard Annex #15) when no exact match exists, and the stored bytes are what is
used from then on. When two catalogued items differ only by normalisation (they look the
same but are different files), nothing is chosen: the error lists both with their record
numbers and the form each is stored in, and the user picks one by record number.
"""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from custody.errors import RootError, UsageError
from custody.i18n import _, ngettext
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger

_HEX = re.compile(r"^[0-9a-fA-F]{6,64}$")


def resolve_record(ledger: Ledger, spec: str) -> int:
    """A single record: a number selects any record; otherwise the item ``spec`` names."""
    if spec.isdigit():
        seq = int(spec)
        if seq >= ledger.index.size:
            raise UsageError(
                _("no record {seq}: the ledger has {size} records").format(
                    seq=seq, size=ledger.index.size
                )
            )
        return seq
    seqs = resolve_items(ledger, [spec])
    if len(seqs) > 1:
        listing = ", ".join(str(s) for s in seqs)
        raise UsageError(
            ngettext(
                "{spec!r} matches {n} records ({listing}); be more specific",
                "{spec!r} matches {n} records ({listing}); be more specific",
                len(seqs),
            ).format(spec=spec, n=len(seqs), listing=listing)
        )
    return seqs[0]


def resolve_items(
    ledger: Ledger,
    specs: Iterable[str],
    *,
    tags: Iterable[str] = (),
    incidents: Iterable[str] = (),
    exhibits: Iterable[str] = (),
    cwd: str | None = None,
) -> list[int]:
    """Item record numbers for each spec (path, folder, digest prefix, number), each tag
    (given at cataloguing or by ``custody tag``), each incident (``event note
    --incident``) and each exhibit number (``custody exhibit assign``). Each selector must
    match something: one that matches nothing is a UsageError, never a silent empty
    selection."""
    found: dict[int, None] = {}
    for spec in specs:
        seqs = _items_for(ledger, spec, cwd or os.getcwd())
        if not seqs:
            raise UsageError(_("no catalogued item matches {spec!r}").format(spec=spec))
        found.update((s, None) for s in seqs)
    for tag in tags:
        seqs = ledger.index.items_tagged(tag)
        if not seqs:
            raise UsageError(_("no catalogued item has the tag {tag!r}").format(tag=tag))
        found.update((s, None) for s in seqs)
    wanted = list(incidents)
    if wanted:
        events = ledger.index.records_of_type("event")
        by_incident = incidents_of(ledger.read(seq) for seq in events)
        for incident in wanted:
            seqs = sorted(by_incident.get(incident, ()))
            if not seqs:
                known = ", ".join(repr(i) for i in sorted(by_incident)) or "none recorded"
                raise UsageError(
                    _(
                        "no item is noted as part of the incident {incident!r} (incidents: {known})"
                    ).format(incident=incident, known=known)
                )
            found.update((s, None) for s in seqs)
    labels = list(exhibits)
    if labels:
        from custody.handling.case import exhibit_book

        book = exhibit_book(ledger)
        for label in labels:
            exhibit = book.find(label)
            if exhibit is None:
                known = ", ".join(e.label for e in book.in_order()[:20]) or "none yet"
                raise UsageError(
                    _("no item has the exhibit number {label!r} (exhibits: {known})").format(
                        label=label, known=known
                    )
                )
            found[exhibit.item] = None
    return sorted(found)


def incidents_of(records: Iterable[SignedRecord]) -> dict[str, set[int]]:
    """Incident name -> the items note events place in it (``event note --incident``)."""
    found: dict[str, set[int]] = {}
    for signed in records:
        body = signed.record.body
        if signed.record.type != "event" or body.get("action") != "note":
            continue
        incident = (body.get("fields") or {}).get("incident")
        if isinstance(incident, str):
            for ref in body.get("items", []):
                if isinstance(ref, dict) and isinstance(ref.get("seq"), int):
                    found.setdefault(incident, set()).add(ref["seq"])
    return found


def tags_of(records: Iterable[SignedRecord]) -> dict[int, list[str]]:
    """Item -> its tags: those of its record, then tag and untag events in ledger order.

    For a set of records without an index (a bundle); an evidence root's index keeps the
    same answer (``items_tagged``)."""
    tags: dict[int, list[str]] = {}
    for signed in sorted(records, key=lambda r: r.seq):
        body = signed.record.body
        if signed.record.type == "item":
            tags[signed.seq] = [str(t) for t in body.get("tags") or []]
        elif signed.record.type == "event" and body.get("action") in ("tag", "untag"):
            for ref in body.get("items", []):
                seq = ref.get("seq") if isinstance(ref, dict) else None
                if not isinstance(seq, int):
                    continue
                current = tags.setdefault(seq, [])
                for name in body.get("tags") or []:
                    if body["action"] == "tag" and name not in current:
                        current.append(str(name))
                    elif body["action"] == "untag" and name in current:
                        current.remove(name)
    return tags


def _items_for(ledger: Ledger, spec: str, cwd: str) -> list[int]:
    index = ledger.index
    if spec.isdigit() and int(spec) < index.size:
        seq = int(spec)
        record_type = index.record_type(seq)
        if record_type != "item":
            raise UsageError(
                _("record {seq} is a {record_type} record, not a catalogued item").format(
                    seq=seq, record_type=record_type
                )
            )
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
            if not rel.isascii():
                _refuse_lookalikes(index, rel)
            return [r.seq for r in rows]
    for rel in rels:
        if rel not in ("", ".") and not rel.isascii():
            found = _normalised_matches(index, rel)
            if found:
                return found
    if _HEX.fullmatch(spec):
        return [r.seq for r in index.items_with_prefix(spec.lower())]
    return []


def _nfc(raw: bytes) -> str | None:
    try:
        return unicodedata.normalize("NFC", raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def _under(path: str, rel: str) -> str | None:
    """The part of ``path`` that ``rel`` names: itself, or the folder ``rel`` is a prefix of."""
    if path == rel:
        return path
    return rel if path.startswith(rel + "/") else None


def _form(text: str) -> str:
    if unicodedata.is_normalized("NFC", text):
        return _("composed (NFC)")
    if unicodedata.is_normalized("NFD", text):
        return _("decomposed (NFD)")
    return _("mixed composed and decomposed")


def _equivalents(index: Any, rel: str) -> dict[bytes, list[tuple[int, bytes]]]:
    """Every current item whose path, or a folder of it, equals ``rel`` after NFC, keyed by
    the exact bytes of that path or folder as stored."""
    wanted = unicodedata.normalize("NFC", rel)
    found: dict[bytes, list[tuple[int, bytes]]] = {}
    for row in index.items_at_or_under(b""):
        text = _nfc(row.path)
        if text is None or _under(text, wanted) is None:
            continue
        raw = row.path.decode("utf-8")
        # The stored spelling of the part matched: as many characters as, after NFC, make
        # up ``wanted`` (a component boundary, so "/" splits the same way in both forms).
        parts = raw.split("/")
        depth = wanted.count("/") + 1
        stored = "/".join(parts[:depth])
        if unicodedata.normalize("NFC", stored) != wanted:
            continue
        found.setdefault(stored.encode("utf-8"), []).append((row.seq, row.path))
    return found


def _lookalikes_error(rel: str, spellings: dict[bytes, list[tuple[int, bytes]]]) -> UsageError:
    lines = []
    for stored, members in sorted(spellings.items()):
        text = stored.decode("utf-8")
        seqs = ", ".join(str(seq) for seq, _path in sorted(members))
        lines.append(
            _("record(s) {seqs}: {name!r} stored {form}").format(
                seqs=seqs, name=text, form=_form(text)
            )
        )
    return UsageError(
        _(
            "{rel!r} matches {n} differently encoded names that look the same "
            "(Unicode normalisation): {names}. They are different files: name the "
            "one you mean by its record number"
        ).format(rel=rel, n=len(spellings), names="; ".join(lines))
    )


def _refuse_lookalikes(index: Any, rel: str) -> None:
    spellings = _equivalents(index, rel)
    if len(spellings) > 1:
        raise _lookalikes_error(rel, spellings)


def _normalised_matches(index: Any, rel: str) -> list[int]:
    spellings = _equivalents(index, rel)
    if len(spellings) > 1:
        raise _lookalikes_error(rel, spellings)
    return sorted(seq for members in spellings.values() for seq, _path in members)
