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
from custody.errors import CustodyError, StorageError, UsageError
from custody.evidence.hashing import hash_file
from custody.handling.events import copy_verified, item_names, item_refs, record_event
from custody.keys.keyring import SigningKey
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import CopyRef, EventBody, ItemRef
from custody.ledger.disclosures import FILE_NAME
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
        # The values and salts of what records commit to (custody.ledger.disclosures) are
        # kept beside the ledger, so beside the vault's ledger too.
        disclosures = root.state / FILE_NAME
        if disclosures.is_file():
            write_atomic(state / FILE_NAME, disclosures.read_bytes(), mode=0o600)
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


@dataclass
class Restored:
    seq: int  # the item record whose bytes were restored
    path: str  # where they are now in the root
    sha256: str
    beside: bool  # restored beside a later version (and catalogued there), not in place
    quarantined: str | None = None  # where unrecorded bytes found at the path were moved


@dataclass
class RestoreReport:
    vault: str
    restored: list[Restored] = field(default_factory=list)
    records: list[int] = field(default_factory=list)


def vault_restore(
    root: EvidenceRoot,
    signer: SigningKey,
    seqs: list[int],
    vault: Path,
    *,
    clock: Clock = utc_now,
) -> RestoreReport:
    """Copy verified originals back from a vault copy into the root.

    For each item record: its bytes are found in the vault (at the same path, else wherever
    the vault's own ledger records that SHA-256), copied in and re-hashed. If the recorded
    path is free, they go back there; if it holds bytes no record describes (an original
    altered on disk), those bytes are moved to ``.custody/quarantine/`` first, never
    deleted; if it holds a later recorded version, the original goes beside it
    (``NAME.record-N.EXT``) and is catalogued there. A signed note records each restore.
    """
    from custody.handling.events import event
    from custody.ledger.bodies import ItemBody

    source = vault.resolve()
    if source == root.path or root.path in source.parents or source in root.path.parents:
        raise UsageError(f"{vault} overlaps the evidence root; name the vault copy")
    if not (source / STATE_DIR / "ledger.jsonl").is_file():
        raise UsageError(f"{vault} is not a vault copy (no {STATE_DIR}/ledger.jsonl)")
    report = RestoreReport(str(source))
    root_b = os.fsencode(root.path)
    with open_ledger(root) as ledger:
        wanted: list[tuple[int, ItemBody, int | None]] = []
        for seq in seqs:
            if ledger.index.record_type(seq) != "item":
                raise UsageError(f"record {seq} is not an item record")
            body = ItemBody.from_json(ledger.read(seq).record.body)
            latest = ledger.index.latest_item_at(body.name_bytes)
            wanted.append((seq, body, latest.seq if latest is not None else None))
    beside: list[tuple[int, bytes]] = []
    for seq, body, latest in wanted:
        found = _find_in_vault(source, body)
        if found is None:
            raise UsageError(
                f"the vault {vault} holds no copy of record {seq} ({body.path}, SHA-256 "
                f"{body.sha256})"
            )
        target = root_b + b"/" + body.name_bytes
        quarantined = None
        if latest != seq:
            stem, dot, ext = body.name_bytes.rpartition(b".")
            name = (
                stem + f".record-{seq}".encode() + dot + ext
                if dot and b"/" not in ext
                else body.name_bytes + f".record-{seq}".encode()
            )
            target = root_b + b"/" + name
            beside.append((seq, name))
        elif os.path.lexists(target):
            present = hash_file(target, ("sha256",)).digests["sha256"]
            if present != body.sha256:
                quarantined = _quarantine(root, target, clock)
        copy = copy_verified(found, target, body.sha256)
        report.restored.append(
            Restored(seq, copy.path.removeprefix(str(root.path) + "/"), copy.sha256,
                     latest != seq, quarantined)
        )  # fmt: skip
    if beside:
        from custody.acquisition.catalogue import Descriptive, catalogue

        catalogue(
            root,
            [os.fsdecode(root_b + b"/" + name) for _, name in beside],
            signer,
            descriptive=Descriptive(note=f"restored from the vault copy {source}"),
            clock=clock,
        )
    signed = event(
        root,
        signer,
        "note",
        [r.seq for r in report.restored],
        text=f"restored from the vault copy {source}: "
        + "; ".join(f"record {r.seq} to {r.path}" for r in report.restored),
        clock=clock,
    )
    report.records.append(signed.seq)
    return report


def _find_in_vault(vault: Path, body: object) -> bytes | None:
    """The vault file holding ``body``'s bytes (checked by SHA-256), or None."""
    from custody.ledger.bodies import ItemBody

    assert isinstance(body, ItemBody)
    vault_b = os.fsencode(vault)
    candidates = [body.name_bytes]
    with contextlib.suppress(Exception), open_ledger(EvidenceRoot(vault)) as ledger:
        candidates += [row.path for row in ledger.index.items_with(body.sha256)]
    for rel in dict.fromkeys(candidates):
        path = vault_b + b"/" + rel
        with contextlib.suppress(OSError, CustodyError):
            regular = os.path.isfile(path) and not os.path.islink(path)
            if regular and hash_file(path, ("sha256",)).digests["sha256"] == body.sha256:
                return path
    return None


def _quarantine(root: EvidenceRoot, target: bytes, clock: Clock) -> str:
    """Move unrecorded bytes found at a recorded path aside, keeping them."""
    from custody.clock import format_time

    folder = root.state / "quarantine"
    folder.mkdir(exist_ok=True)
    stamp = format_time(clock()).replace(":", "")
    moved = os.fsencode(folder) + b"/" + stamp.encode() + b"-" + os.path.basename(target)
    try:
        os.rename(target, moved)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "move aside", target)) from None
    return os.fsdecode(moved)
