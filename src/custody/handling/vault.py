"""Vault copies: a second, complete, verifiable copy of an evidence root elsewhere.

``vault_copy`` copies every current item (latest record per path, disposed items left
out) to DEST with the same relative layout, re-reads each written file to prove it holds
the recorded bytes, records the copies as signed ``copy`` events, and then writes the
ledger and what verification needs (config, public keys, timestamp tokens, repair
copies) into DEST/.custody/. DEST is then an evidence root of its own on which
``custody verify --root DEST`` passes. Running it again copies only what is new.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from custody.clock import Clock, utc_now
from custody.errors import StorageError, UsageError
from custody.evidence.hashing import hash_file
from custody.handling.events import copy_verified, item_names, item_refs, record_event
from custody.keys.keyring import SigningKey
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import CopyRef, EventBody, ItemRef
from custody.ledger.store import Ledger
from custody.root import STATE_DIR, EvidenceRoot
from custody.system.files import describe_os_error, write_atomic

EVENT_BATCH = 1000  # items per copy event, so no single record grows without bound
STATE_PARTS = ("keys", "timestamps", "repairs")


@dataclass
class VaultReport:
    destination: str
    copied: list[CopyRef] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    ledger_records: int = 0


def disposed_items(ledger: Ledger) -> set[int]:
    from custody.ledger.bodies import EventBody as Body

    gone: set[int] = set()
    for seq in ledger.index.records_of_type("event"):
        body = Body.from_json(ledger.read(seq).record.body)
        if body.action == "dispose":
            gone.update(ref.seq for ref in body.items)
    return gone


def current_items(ledger: Ledger) -> list[ItemRef]:
    """The latest item of every path, minus disposed ones."""
    gone = disposed_items(ledger)
    rows = ledger.index.items_at_or_under(b"")
    return item_refs(ledger, [r.seq for r in rows if r.seq not in gone])


def vault_copy(
    root: EvidenceRoot,
    signer: SigningKey,
    destination: Path,
    *,
    reason: str | None = None,
    clock: Clock = utc_now,
) -> VaultReport:
    dest = destination.resolve()
    source = root.path
    if dest == source or source in dest.parents or dest in source.parents:
        raise UsageError(f"{destination} overlaps the evidence root; choose another place")
    if (dest / STATE_DIR).exists() and not (dest / STATE_DIR / "ledger.jsonl").is_file():
        raise UsageError(f"{destination} has a {STATE_DIR}/ that is not a custody vault")
    report = VaultReport(str(dest))
    with open_ledger(root) as ledger:
        items = current_items(ledger)
        names = item_names(ledger, [ref.seq for ref in items])  # exact bytes, not display
    dest_b = os.fsencode(dest)
    root_b = os.fsencode(source)
    for start in range(0, len(items), EVENT_BATCH):
        batch = items[start : start + EVENT_BATCH]
        copies = tuple(
            copy_verified(root_b + b"/" + name, dest_b + b"/" + name, ref.sha256)
            for ref, name in zip(batch, names[start : start + EVENT_BATCH], strict=True)
        )
        report.copied.extend(copies)
        body = EventBody(
            "copy",
            tuple(batch),
            reason=reason or "vault copy",
            destination=str(dest),
            copies=copies,
        )
        report.events.append(record_event(root, signer, body, clock=clock).seq)
    report.ledger_records = _copy_state(root, dest)
    return report


def _copy_state(root: EvidenceRoot, dest: Path) -> int:
    """Write the ledger and its companions into DEST/.custody, checked by digest.

    The vault is always a file ledger, whatever store the source uses, so it can be
    verified anywhere with nothing but custody (or the format spec).
    """
    import tomli_w

    state = dest / STATE_DIR
    try:
        state.mkdir(parents=True, exist_ok=True)
        for part in STATE_PARTS:
            here = root.state / part
            there = state / part
            if here.is_dir():
                shutil.copytree(here, there, dirs_exist_ok=True)
        config = replace(root.config(), ledger="file")
        write_atomic(state / "config.toml", tomli_w.dumps(config.to_toml()).encode())
        with open_ledger(root) as ledger:
            records, digest = ledger.dump(state / "ledger.jsonl")
            # Every token the ledger names, wherever the store keeps it (a shared database
            # holds other machines' tokens too).
            for seq in ledger.index.records_of_type("timestamp"):
                token_file = str(ledger.read(seq).record.body["token_file"])
                with contextlib.suppress(OSError):
                    target = state / token_file
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_atomic(target, ledger.read_token(token_file))
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "write the vault's ledger in", state)) from None
    copy_digest = hash_file(state / "ledger.jsonl", ("sha256",))
    if copy_digest.digests["sha256"] != digest:
        raise StorageError(f"{state / 'ledger.jsonl'}: the ledger copy does not match on re-read")
    return records
