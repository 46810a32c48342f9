"""Long-term evidence that leaves the root: one item's RFC 4998 evidence record
(``custody export-evidence-record``), and the records and validation material a bundle
carries for its checkpoint.

An item is proven in time through a checkpoint that covers it (its Merkle root commits to
the item's record; ``custody proof inclusion`` shows it); the evidence record is that of
the checkpoint's data object group (``longterm``): its line and its token files. The
earliest checkpoint under evidence that covers the item is chosen: it proves the earliest
time.

May import: ``custody.errors``, ``custody.ledger``, ``custody.timestamps.longterm``,
``custody.timestamps.ers``, ``custody.timestamps.keeping``, the standard library.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from custody.errors import InputError, UsageError
from custody.i18n import _
from custody.ledger.bodies import MaterialFile, ObjectGroup
from custody.ledger.records import SignedRecord
from custody.timestamps.ers import EvidenceRecord
from custody.timestamps.longterm import LongtermState, ReadFile, load_set

__all__ = ["CheckpointEvidence", "checkpoint_evidence", "item_evidence"]


@dataclass(frozen=True)
class CheckpointEvidence:
    """A checkpoint's RFC 4998 evidence record, what it covers, and where it comes from."""

    checkpoint: int
    group: ObjectGroup
    evidence_record: int  # the evidence-record ledger record (current version of the set)
    lineage: tuple[int, ...]
    set_file: str
    record: EvidenceRecord
    members: tuple[dict[str, Any], ...]
    material: tuple[MaterialFile, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "timestamps": list(self.group.timestamps),
            "evidence_record": self.evidence_record,
            "records": list(self.lineage),
            "set": self.set_file,
            "data_object": list(self.members),
            "chains": [{"archive_timestamps": len(chain)} for chain in self.record.chains],
        }


def _tree_size(line: bytes) -> int:
    return int(SignedRecord.parse(line).record.body["tree_size"])


def checkpoint_evidence(
    state: LongtermState, read_file: ReadFile, checkpoint: int
) -> CheckpointEvidence | None:
    """The evidence record over ``checkpoint``'s group, or None when it is under none.
    InputError when the evidence set kept for it cannot be read."""
    for head in state.heads():
        body = state.evidence[head]
        for index, group in enumerate(body.objects):
            if group.checkpoint != checkpoint:
                continue
            kept = load_set(read_file, body)
            lineage = state.lineage(head)
            return CheckpointEvidence(
                checkpoint,
                group,
                head,
                tuple(lineage),
                body.set_file,
                kept.evidence_record(index),
                _members(state, group),
                _material(state, group, lineage),
            )
    return None


def _members(state: LongtermState, group: ObjectGroup) -> tuple[dict[str, Any], ...]:
    line = state.checkpoint_lines[group.checkpoint]
    out: list[dict[str, Any]] = [
        {
            "member": "checkpoint line",
            "record": group.checkpoint,
            "sha256": hashlib.sha256(line).hexdigest(),
            "size": len(line),
            "how": f"sed -n '{group.checkpoint + 1}p' .custody/ledger.jsonl | tr -d '\\n'",
        }
    ]
    for seq in group.timestamps:
        stamp = state.timestamps[seq]
        out.append(
            {
                "member": "token file",
                "record": seq,
                "sha256": stamp.token_sha256,
                "file": f".custody/{stamp.token_file}",
            }
        )
    return tuple(out)


def _material(
    state: LongtermState, group: ObjectGroup, lineage: list[int]
) -> tuple[MaterialFile, ...]:
    """Material for the group's tokens and the set's archive timestamps."""
    holders = {*group.timestamps, *lineage}
    found: list[MaterialFile] = []
    for seq in group.timestamps:
        found.extend(state.timestamps[seq].validation)
    for seq in lineage:
        found.extend(state.evidence[seq].validation)
    for _seq, validation in state.validations:
        if any(ref.record in holders for ref in validation.tokens):
            found.extend(validation.validation)
    return tuple(dict.fromkeys(found))


def item_evidence(ledger: Any, item: int) -> CheckpointEvidence:
    """The evidence record of the earliest checkpoint under evidence covering ``item``.

    UsageError when ``item`` is not an item record or no evidence record covers it yet;
    InputError when the evidence kept for it cannot be read.
    """
    if ledger.read(item).record.type != "item":
        raise UsageError(_("record {record} is not a catalogued item").format(record=item))
    state = LongtermState.from_ledger(ledger)
    covered = sorted(
        g.checkpoint
        for head in state.heads()
        for g in state.evidence[head].objects
        if g.checkpoint in state.checkpoint_lines
        and _tree_size(state.checkpoint_lines[g.checkpoint]) > item
    )
    for checkpoint in covered:
        try:
            found = checkpoint_evidence(state, ledger.read_token, checkpoint)
        except InputError as exc:
            raise InputError(_("{error}; run 'custody verify'").format(error=exc)) from None
        if found is not None:
            return found
    raise UsageError(
        _(
            "no evidence record covers record {record} yet: run 'custody timestamp', then "
            "'custody renew'"
        ).format(record=item)
    )
