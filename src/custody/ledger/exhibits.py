"""Exhibit numbers, in ledger order: stable once assigned, never reused (EXHIBIT_CONFLICT).

Owns the one rule every reader of ``exhibit`` records applies - the full ledger pass
(``custody.ledger.checks``), bundle verification (``custody.delivery.bundle_check``), the
writer that assigns numbers (``custody.handling.case``) and the report, register and
certification builders: the *first* authentic record that gives a number to an item
decides. A later record that gives that number to another item, or another number to
that item, has no effect and is an EXHIBIT_CONFLICT finding. Giving an item the number it
already has again changes nothing. Numbers are compared after NFKC normalisation and case
folding (``bodies.exhibit_key``): "P-1" and "p-1" are one number.

May import: ``custody.findings``, ``custody.i18n``, ``custody.ledger.bodies``. Decides nothing about
signatures: callers feed only records that are authentic and allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from custody.findings import Code, Finding
from custody.i18n import _
from custody.ledger.bodies import ExhibitBody, exhibit_key


@dataclass(frozen=True)
class Exhibit:
    """An item record's exhibit number, and the record that gave it."""

    label: str
    item: int  # the item record
    sha256: str
    path: str
    record: int  # the exhibit record

    def to_json(self) -> dict[str, object]:
        return {
            "exhibit": self.label,
            "item": self.item,
            "sha256": self.sha256,
            "path": self.path,
            "record": self.record,
        }


@dataclass
class ExhibitBook:
    """Exhibit numbers as the records fed so far (in ledger order) establish them."""

    by_key: dict[str, Exhibit] = field(default_factory=dict)
    by_item: dict[int, Exhibit] = field(default_factory=dict)
    records: int = 0  # exhibit records fed

    def assign(self, position: int, body: ExhibitBody) -> Finding | None:
        """Apply exhibit record ``position``; the finding if it conflicts (then no effect)."""
        self.records += 1
        key = exhibit_key(body.exhibit)
        item = body.item.seq
        held = self.by_key.get(key)
        given = self.by_item.get(item)
        if held is not None and held.item == item:
            return None  # the same number for the same item again: nothing changes
        where = f"record {position}"
        if held is not None:
            return Finding(
                Code.EXHIBIT_CONFLICT,
                where,
                _(
                    "exhibit {exhibit!r} was given to item record {item} ({path}) at record "
                    "{record}; an exhibit number is never reused, so this record has no "
                    "effect"
                ).format(exhibit=body.exhibit, item=held.item, path=held.path, record=held.record),
                position,
                f"exhibit {held.label} = item record {held.item}",
                f"item record {item}",
            )
        if given is not None:
            return Finding(
                Code.EXHIBIT_CONFLICT,
                where,
                _(
                    "item record {item} ({path}) is already exhibit {label!r} (record "
                    "{record}); an exhibit number is stable once assigned, so this record "
                    "has no effect"
                ).format(item=item, path=given.path, label=given.label, record=given.record),
                position,
                f"exhibit {given.label}",
                f"exhibit {body.exhibit}",
            )
        exhibit = Exhibit(body.exhibit, item, body.item.sha256, body.item.path, position)
        self.by_key[key] = exhibit
        self.by_item[item] = exhibit
        return None

    def label_of(self, item: int) -> str | None:
        found = self.by_item.get(item)
        return found.label if found is not None else None

    def find(self, label: str) -> Exhibit | None:
        return self.by_key.get(exhibit_key(label))

    def in_order(self) -> list[Exhibit]:
        """Exhibits in the order a court lists them: by prefix, then by number."""
        return sorted(self.by_item.values(), key=lambda e: sort_key(e.label))


_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def sort_key(label: str) -> tuple[str, int, str]:
    """"P-2" before "P-10": the prefix, then the trailing number, then the text."""
    m = _NUMBERED.match(exhibit_key(label))
    if m is None:
        return (exhibit_key(label), -1, label)
    return (m.group(1), int(m.group(2)), label)


def split_label(label: str) -> tuple[str, int] | None:
    """("P-", 12) for "P-12"; None for a label that does not end in a number."""
    m = _NUMBERED.match(label)
    if m is None:
        return None
    return m.group(1), int(m.group(2))
