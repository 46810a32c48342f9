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
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from custody.clock import Clock, utc_now
from custody.errors import CustodyError, StorageError, UnsafePathError, UsageError
from custody.evidence.hashing import hash_fd
from custody.handling.events import copy_verified, item_names, item_refs, record_event
from custody.i18n import _
from custody.keys.keyring import SigningKey
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import CopyRef, EventBody, ItemRef
from custody.ledger.disclosures import FILE_NAME
from custody.ledger.store import Ledger
from custody.root import STATE_DIR, EvidenceRoot
from custody.system.files import describe_os_error
from custody.system.paths import Folder, read_tree, write_file_under

EVENT_BATCH = 1000  # items per copy event, so no single record grows without bound
STATE_PARTS = ("keys", "timestamps", "repairs", "metadata")  # metadata: items' whole metadata


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
        raise UsageError(
            _("{destination} overlaps the evidence root; choose another place").format(
                destination=destination
            )
        )
    if (dest / STATE_DIR).exists() and not (dest / STATE_DIR / "ledger.jsonl").is_file():
        raise UsageError(
            _("{destination} has a {state}/ that is not a custody vault").format(
                destination=destination, state=STATE_DIR
            )
        )
    report = VaultReport(str(dest))
    with open_ledger(root) as ledger:
        items = current_items(ledger)
        names = item_names(ledger, [ref.seq for ref in items])  # exact bytes, not display
    # custody's own files are read first, so a link planted among them refuses the vault
    # before anything is written (it used to copy a link's target, a private key, along).
    state_files = _state_files(root)
    with Folder.open(source) as originals, Folder.open(dest, create=True) as vault:
        for start in range(0, len(items), EVENT_BATCH):
            batch = items[start : start + EVENT_BATCH]
            copies = tuple(
                copy_verified(originals, name, vault, name, ref.sha256)
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
        report.ledger_records = _copy_state(root, vault, state_files)
    return report


def _state_files(root: EvidenceRoot) -> dict[bytes, bytes]:
    """custody's own files a vault needs ({.custody-relative name: bytes}), links refused."""
    found: dict[bytes, bytes] = {}
    with Folder.open(root.state) as state:
        for part in STATE_PARTS:
            st = state.lstat(part)
            if st is None:
                continue
            for rel, data in read_tree(state, part):
                found[part.encode() + b"/" + rel] = data
    return found


def _kept_files(ledger: Ledger) -> list[str]:
    """Every file kept beside the ledger that a record names, relative to .custody/: the
    timestamp tokens, the validation material and RFC 4998 evidence sets (docs/format.md
    §6), and the whole metadata of capped items."""
    names: dict[str, None] = {}
    for kind in ("timestamp", "validation", "evidence-record", "item"):
        for seq in ledger.index.records_of_type(kind):
            body = ledger.read(seq).record.body
            for member in ("token_file", "set_file"):
                if isinstance(body.get(member), str):
                    names.setdefault(body[member])
            for material in body.get("validation") or ():
                if isinstance(material, dict) and isinstance(material.get("file"), str):
                    names.setdefault(material["file"])
            full = body.get("metadata_full")
            if isinstance(full, dict) and isinstance(full.get("sha256"), str):
                names.setdefault(f"metadata/{full['sha256']}.json")
    return list(names)


def _copy_state(root: EvidenceRoot, vault: Folder, files: dict[bytes, bytes]) -> int:
    """Write the ledger and its companions into DEST/.custody, checked by digest.

    The vault is always a file ledger, whatever store the source uses, so it can be
    verified anywhere with nothing but custody (or the format spec). Every write goes
    through ``custody.system.paths`` (never through a link, never outside DEST).
    """
    import tomli_w

    with vault.sub(STATE_DIR) as state:
        for rel, data in files.items():
            write_file_under(state, rel, data)
        # The values and salts of what records commit to (custody.ledger.disclosures) are
        # kept beside the ledger, so beside the vault's ledger too (read without links).
        with Folder.open(root.state) as source_state:
            st = source_state.lstat(FILE_NAME)
            if st is not None and stat.S_ISREG(st.st_mode):
                with os.fdopen(source_state.open_read(FILE_NAME), "rb") as handle:
                    disclosed = handle.read()
                state.write_atomic(FILE_NAME, disclosed, mode=0o600)
        config = replace(root.config(), ledger="file")
        state.write_atomic("config.toml", tomli_w.dumps(config.to_toml()).encode())
        if (st := state.lstat("ledger.jsonl")) is not None and not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(
                _("refused to write {path}: it is not a regular file").format(
                    path=state.where("ledger.jsonl").decode("utf-8", "replace")
                )
            )
        target = Path(os.fsdecode(state.where(b"ledger.jsonl")))
        try:
            with open_ledger(root) as ledger:
                records, digest = ledger.dump(state.through("ledger.jsonl"))
                # Every file the ledger names (tokens, validation material, evidence
                # records, items' whole metadata), wherever the store keeps it (a shared
                # database holds other machines' files too).
                for kept in _kept_files(ledger):
                    with contextlib.suppress(OSError):
                        write_file_under(state, kept, ledger.read_token(kept))
        except OSError as exc:
            raise StorageError(
                describe_os_error(exc, "write the vault's ledger in", target)
            ) from None
        fd = state.open_read("ledger.jsonl")
        try:
            _size, copied = hash_fd(fd, ("sha256",))
        finally:
            os.close(fd)
    if copied["sha256"] != digest:
        raise StorageError(
            _("{target}: the ledger copy does not match on re-read").format(target=target)
        )
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
        raise UsageError(
            _("{vault} overlaps the evidence root; name the vault copy").format(vault=vault)
        )
    if not (source / STATE_DIR / "ledger.jsonl").is_file():
        raise UsageError(
            _("{vault} is not a vault copy (no {state}/ledger.jsonl)").format(
                vault=vault, state=STATE_DIR
            )
        )
    report = RestoreReport(str(source))
    root_b = os.fsencode(root.path)
    with open_ledger(root) as ledger:
        wanted: list[tuple[int, ItemBody, int | None]] = []
        for seq in seqs:
            if ledger.index.record_type(seq) != "item":
                raise UsageError(_("record {seq} is not an item record").format(seq=seq))
            body = ItemBody.from_json(ledger.read(seq).record.body)
            latest = ledger.index.latest_item_at(body.name_bytes)
            wanted.append((seq, body, latest.seq if latest is not None else None))
    beside: list[tuple[int, bytes]] = []
    # Both ends are reached through descriptors, never through a link (custody.system.paths).
    with Folder.open(source) as copies, Folder.open(root.path) as evidence:
        for seq, body, latest in wanted:
            found = _find_in_vault(source, copies, body)
            if found is None:
                raise UsageError(
                    _(
                        "the vault {vault} holds no copy of record {seq} ({path}, SHA-256 {sha256})"
                    ).format(vault=vault, seq=seq, path=body.path, sha256=body.sha256)
                )
            name = body.name_bytes
            quarantined = None
            if latest != seq:
                stem, dot, ext = body.name_bytes.rpartition(b".")
                name = (
                    stem + f".record-{seq}".encode() + dot + ext
                    if dot and b"/" not in ext
                    else body.name_bytes + f".record-{seq}".encode()
                )
                beside.append((seq, name))
            else:
                present = _digest_at(evidence, name)
                if present is not None and present != body.sha256:
                    quarantined = _quarantine(root, evidence, name, clock)
            copy = copy_verified(copies, found, evidence, name, body.sha256)
            report.restored.append(
                Restored(seq, copy.path.removeprefix(str(root.path) + "/"), copy.sha256,
                         latest != seq, quarantined)
            )  # fmt: skip
    if beside:
        from custody.acquisition.catalogue import Descriptive, catalogue

        catalogue(
            root,
            [os.fsdecode(root_b + b"/" + name) for _seq, name in beside],
            signer,
            # Written into the records: English whatever the language (never _()).
            descriptive=Descriptive(note=f"restored from the vault copy {source}"),
            clock=clock,
        )
    signed = event(
        root,
        signer,
        "note",
        [r.seq for r in report.restored],
        # Record numbers and digests only: a path here could name another item (the
        # later version a restored original now sits beside).
        text=f"restored from the vault copy {source}: "
        + "; ".join(
            f"record {r.seq} (SHA-256 {r.sha256}) "
            + ("beside a later version, as a new item" if r.beside else "in place")
            for r in report.restored
        ),
        clock=clock,
    )
    report.records.append(signed.seq)
    return report


def _find_in_vault(vault: Path, copies: Folder, body: object) -> bytes | None:
    """The vault-relative name of a file holding ``body``'s bytes (by SHA-256), or None."""
    from custody.ledger.bodies import ItemBody

    assert isinstance(body, ItemBody)
    candidates = [body.name_bytes]
    with contextlib.suppress(Exception), open_ledger(EvidenceRoot(vault)) as ledger:
        candidates += [row.path for row in ledger.index.items_with(body.sha256)]
    for rel in dict.fromkeys(candidates):
        with contextlib.suppress(OSError, CustodyError):
            if _digest_at(copies, rel) == body.sha256:
                return rel
    return None


def _digest_at(folder: Folder, rel: bytes) -> str | None:
    """SHA-256 of the regular file at ``rel`` below ``folder``; None if there is none.

    A link at ``rel`` or in a folder leading to it is UnsafePathError, never followed.
    """
    try:
        parent, name = folder.parent_of(rel, create=False)
    except FileNotFoundError:
        return None
    with parent:
        st = parent.lstat(name)
        if st is None:
            return None
        if not stat.S_ISREG(st.st_mode):
            shown = parent.where(name).decode("utf-8", "replace")
            raise UnsafePathError(
                _("refused {shown}: it is not a regular file (a link?)").format(shown=shown)
            )
        fd = parent.open_read(name)
        try:
            return hash_fd(fd, ("sha256",))[1]["sha256"]
        finally:
            os.close(fd)


def _quarantine(root: EvidenceRoot, evidence: Folder, rel: bytes, clock: Clock) -> str:
    """Move unrecorded bytes found at a recorded path aside, keeping them."""
    from custody.clock import format_time

    stamp = format_time(clock()).replace(":", "")
    parent, name = evidence.parent_of(rel, create=False)
    with parent, Folder.open(root.state) as state, state.sub("quarantine") as folder:
        moved = stamp.encode() + b"-" + name
        try:
            os.rename(name, moved, src_dir_fd=parent.fd, dst_dir_fd=folder.fd)
        except OSError as exc:
            raise StorageError(describe_os_error(exc, "move aside", parent.where(name))) from None
        return os.fsdecode(folder.where(moved))
