"""The case and its exhibits: recording them as signed records, and reading them back.

* ``set_case`` appends a ``case`` record (name, number, court or mechanism, parties,
  description); the latest one states the case. ``case_details`` reads it back, or, when
  the ledger has none, the ``[case]`` table of the root's config (unsigned, and said so).
* ``assign_exhibits`` gives exhibit numbers (``P-1``, ``P-2``...) to items, one ``exhibit``
  record per item, under the ledger lock: an item that has a number keeps it, and a number
  once given is never given to another item (``custody.ledger.exhibits`` holds the rule
  verification applies; the writer applies the same one before it writes).
* ``exhibit_book`` reads the exhibit numbers a ledger establishes.

May import: ledger, root, keys, clock, errors. Decides nothing about signatures: reading
functions take the records as stored; verification says whether they count, and readers
that show numbers to a court drop records with error findings (``exclude``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from custody.clock import Clock, utc_now
from custody.errors import CustodyError, RecordError, UsageError
from custody.i18n import _
from custody.keys.keyring import SigningKey
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import CaseBody, ExhibitBody, ItemBody, ItemRef, exhibit_key
from custody.ledger.exhibits import Exhibit, ExhibitBook, split_label
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger
from custody.root import EvidenceRoot

DEFAULT_PREFIX = "P-"


@dataclass(frozen=True)
class CaseDetails:
    """The case as a report, register or certification shows it, and where it comes from."""

    name: str
    number: str | None = None
    court: str | None = None
    parties: tuple[str, ...] = ()
    description: str | None = None
    source: str = "ledger"  # "ledger", "config" or "bundle" (bag-info.txt, unsigned)
    record: int | None = None  # the case record, when signed
    signer: str | None = None  # its signer's fingerprint

    @property
    def signed(self) -> bool:
        return self.record is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "number": self.number,
            "court": self.court,
            "parties": list(self.parties),
            "description": self.description,
            "source": self.source,
            "record": self.record,
            "signer": self.signer,
        }

    @staticmethod
    def from_record(signed: SignedRecord, body: CaseBody) -> CaseDetails:
        return CaseDetails(
            body.name,
            body.number,
            body.court,
            body.parties,
            body.description,
            "ledger",
            signed.seq,
            signed.record.signer,
        )


# --- the case -------------------------------------------------------------------------------


def set_case(
    root: EvidenceRoot, signer: SigningKey, body: CaseBody, *, clock: Clock = utc_now
) -> SignedRecord:
    """Record the case details (the whole of them: the latest case record counts)."""
    with open_ledger(root) as ledger, ledger.writer(signer, clock=clock) as writer:
        return writer.append("case", body.to_json())


def amend_case(current: CaseDetails | None, changes: Mapping[str, Any]) -> CaseBody:
    """The case body after ``changes`` (None values keep the current value).

    ``parties`` replaces the list when given. RecordError for values the format refuses.
    """
    base: dict[str, Any] = {}
    if current is not None and current.source == "ledger":
        base = {
            "name": current.name,
            "number": current.number,
            "court": current.court,
            "parties": current.parties,
            "description": current.description,
        }
    for name, value in changes.items():
        if value is not None:
            base[name] = tuple(value) if name == "parties" else value
    if not base.get("name"):
        raise UsageError(_("a case needs a name: pass --name"))
    return CaseBody(
        base["name"],
        base.get("number"),
        base.get("court"),
        tuple(base.get("parties") or ()),
        base.get("description"),
    )


def latest_case(ledger: Ledger, exclude: Collection[int] = ()) -> CaseDetails | None:
    """The latest case record of the ledger (not in ``exclude``), or None."""
    for seq in reversed(ledger.index.records_of_type("case")):
        if seq in exclude:
            continue
        signed = ledger.read(seq)
        return CaseDetails.from_record(signed, CaseBody.from_json(signed.record.body))
    return None


def config_case(root: EvidenceRoot) -> CaseDetails | None:
    """The ``[case]`` table of the root's config, when it names a case (unsigned)."""
    try:
        table = root.config().case
    except CustodyError:
        return None
    name = table.get("name") or table.get("id")
    if not name:
        return None
    parties = tuple(p.strip() for p in table.get("parties", "").split(";") if p.strip())
    return CaseDetails(
        name=name,
        number=table.get("number") or (table.get("id") if table.get("name") else None),
        court=table.get("court") or table.get("mechanism"),
        parties=parties,
        description=table.get("description"),
        source="config",
    )


def case_details(ledger: Ledger, exclude: Collection[int] = ()) -> CaseDetails | None:
    """The signed case if the ledger has one, else the root's config's (marked unsigned)."""
    return latest_case(ledger, exclude) or config_case(ledger.root)


# --- exhibits -------------------------------------------------------------------------------


def book_of(records: Sequence[SignedRecord], exclude: Collection[int] = ()) -> ExhibitBook:
    """The exhibit numbers ``records`` (in ledger order) establish, skipping ``exclude``."""
    book = ExhibitBook()
    for signed in records:
        if signed.record.type != "exhibit" or signed.seq in exclude:
            continue
        try:
            body = ExhibitBody.from_json(signed.record.body)
        except RecordError:
            continue
        book.assign(signed.seq, body)
    return book


def exhibit_book(ledger: Ledger, exclude: Collection[int] = ()) -> ExhibitBook:
    """The exhibit numbers this ledger's exhibit records establish (see ``book_of``)."""
    return book_of([ledger.read(s) for s in ledger.index.records_of_type("exhibit")], exclude)


@dataclass
class Assignment:
    """What ``assign_exhibits`` did: numbers given now, and items that already had one."""

    assigned: list[Exhibit] = field(default_factory=list)
    kept: list[Exhibit] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "assigned": [e.to_json() for e in self.assigned],
            "kept": [e.to_json() for e in self.kept],
        }


def next_number(book: ExhibitBook, prefix: str) -> int:
    """One more than the highest number given with ``prefix`` (1 if none)."""
    wanted = exhibit_key(prefix)
    highest = 0
    for exhibit in book.by_item.values():
        parts = split_label(exhibit.label)
        if parts is not None and exhibit_key(parts[0]) == wanted:
            highest = max(highest, parts[1])
    return highest + 1


def assign_exhibits(
    root: EvidenceRoot,
    signer: SigningKey,
    items: Sequence[int],
    *,
    prefix: str = DEFAULT_PREFIX,
    start: int | None = None,
    clock: Clock = utc_now,
) -> Assignment:
    """Give the next free exhibit numbers to ``items`` (item record numbers), in order.

    An item that already has a number keeps it (listed in ``kept``). Numbers run from
    ``start`` (default: one past the highest number with this prefix); a number in that
    run that is already another item's is a UsageError, and nothing is written.
    """
    if start is not None and start < 0:
        raise UsageError(_("--start must be 0 or more"))
    result = Assignment()
    with open_ledger(root) as ledger, ledger.writer(signer, clock=clock) as writer:
        book = exhibit_book(ledger)
        number = start if start is not None else next_number(book, prefix)
        planned: list[ExhibitBody] = []
        for seq in dict.fromkeys(items):
            if ledger.index.record_type(seq) != "item":
                raise UsageError(_("record {seq} is not a catalogued item").format(seq=seq))
            known = book.by_item.get(seq)
            if known is not None:
                result.kept.append(known)
                continue
            label = f"{prefix}{number}"
            taken = book.find(label)
            if taken is not None:
                raise UsageError(
                    _(
                        "exhibit {label} is already item record {item} ({path}); a number is "
                        "never reused: choose another --start or --prefix"
                    ).format(label=label, item=taken.item, path=taken.path)
                )
            body: ItemBody = ledger.read(seq).record.typed_body()
            try:
                planned.append(ExhibitBody(label, ItemRef(seq, body.sha256, body.path)))
            except RecordError as exc:
                raise UsageError(
                    _("{label!r} cannot be an exhibit number: {why}").format(label=label, why=exc)
                ) from None
            number += 1
        for exhibit in planned:
            signed = writer.append("exhibit", exhibit.to_json())
            book.assign(signed.seq, exhibit)
            result.assigned.append(book.by_item[exhibit.item.seq])
    return result
