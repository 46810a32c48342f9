"""Chain of custody after cataloguing: events, working copies and key revocations.

Every event is a signed ``event`` record naming the actor (its signer), the items it
concerns (by record number AND SHA-256, so the link survives any renumbering argument),
the UTC time and a free-text reason:

* ``transfer`` - custody passes to another person or organisation (``to``);
* ``access``   - viewed, played, analysed;
* ``copy``     - a copy made elsewhere; each copy's digest is re-read from the written bytes;
* ``derive``   - a working copy (transcode, clip, redaction, still, thumbnail), catalogued
  as its own item and linked to its evidentiary original, which is never altered;
* ``note``     - an annotation (description, incident, language, sensitivity);
* ``dispose``  - the item was returned or destroyed (a custodian's decision);
* ``receive``  - items arrived from elsewhere (``custody import``);
* ``tag`` / ``untag`` - tags added to or removed from items after cataloguing
  (``custody tag``): an item's tags are those of its record plus the tag events naming it,
  in ledger order.

Roles (docs/events.md): disposal, revoking another person's key and introducing a
custodian's key need the custodian role; ``verify`` reports ROLE_NOT_ALLOWED otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from custody.clock import Clock, utc_now
from custody.errors import SigningKeyError, StorageError, UnsafePathError, UsageError
from custody.evidence.hashing import EvidenceReadError, hash_fd
from custody.i18n import _
from custody.keys.keyring import SigningKey
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import CopyRef, EventBody, ItemBody, ItemRef
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger
from custody.root import EvidenceRoot
from custody.system.files import describe_os_error, write_all
from custody.system.paths import Folder

# --- building events ------------------------------------------------------------------------


def item_refs(ledger: Ledger, seqs: Sequence[int]) -> list[ItemRef]:
    refs = []
    for seq in seqs:
        signed = ledger.read(seq)
        body: ItemBody = signed.record.typed_body()
        refs.append(ItemRef(seq, body.sha256, body.path))
    return refs


def item_names(ledger: Ledger, seqs: Sequence[int]) -> list[bytes]:
    """Each item's exact name bytes: ``ItemRef.path`` is only a display form when the
    name is not valid UTF-8 (U+FFFD replacements), so files are found by these."""
    names = []
    for seq in seqs:
        body: ItemBody = ledger.read(seq).record.typed_body()
        names.append(body.name_bytes)
    return names


def record_event(
    root: EvidenceRoot,
    signer: SigningKey,
    body: EventBody,
    *,
    clock: Clock = utc_now,
) -> SignedRecord:
    if body.action == "dispose" and signer.public.role != "custodian":
        raise SigningKeyError(
            _("disposal is a custodian's decision; key {name!r} has the role {role!r}").format(
                name=signer.name, role=signer.public.role
            )
        )
    with open_ledger(root) as ledger, ledger.writer(signer, clock=clock) as writer:
        return writer.append("event", body.to_json())


def copy_out(
    root: EvidenceRoot,
    items: Sequence[ItemRef],
    destination: Path,
    names: Sequence[bytes] | None = None,
) -> list[CopyRef]:
    """Copy items to ``destination`` (keeping their relative paths), re-reading each copy.

    ``names`` are the items' exact name bytes (``item_names``); without them the display
    paths are used, which fails for names that are not valid UTF-8. Nothing is written
    outside ``destination`` or through a link below it (``custody.system.paths``).
    """
    copies = []
    source = Folder.open(root.path)
    dest = Folder.open(destination.resolve(), create=True)
    with source, dest:
        for number, item in enumerate(items):
            name = names[number] if names is not None else os.fsencode(item.path)
            copies.append(copy_verified(source, name, dest, name, item.sha256))
    return copies


def copy_verified(
    source: Folder, source_rel: bytes, dest: Folder, rel: bytes, expected_sha256: str
) -> CopyRef:
    """Copy one evidence file and prove the copy is what the ledger recorded.

    The original is read at ``source_rel`` below ``source`` and the copy written at ``rel``
    below ``dest``, every component opened without following links (a link at either end
    is refused with one line). Never replaces an existing file unless it already holds the
    expected bytes.
    """
    # The recorded path is text: a name that is not UTF-8 gets U+FFFD, like an item's path.
    display = dest.where(rel).decode("utf-8", "replace")
    shown_source = source.where(source_rel)
    parent, name = dest.parent_of(rel)
    with parent:
        existing = parent.lstat(name)
        if existing is not None:
            if not stat.S_ISREG(existing.st_mode):
                refusal = (
                    _(
                        "refused to write {path}: it is a symbolic link, and custody never "
                        "writes through links"
                    )
                    if stat.S_ISLNK(existing.st_mode)
                    else _(
                        "refused to write {path}: it is not a file, and custody never writes "
                        "through links"
                    )
                )
                raise UnsafePathError(refusal.format(path=display))
            found = _hash_at(parent, name, display)
            if found[1] != expected_sha256:
                raise UsageError(
                    _("{path} already exists with other content; not overwritten").format(
                        path=display
                    )
                )
            return CopyRef(display, expected_sha256, found[0])
        src = _open_original(source, source_rel)
        partial = name + b".custody-partial"
        try:
            st = os.fstat(src)
            out = parent.create(partial, 0o444)
            try:
                _size, digests = hash_fd(
                    src,
                    ("sha256",),
                    sink=lambda chunk: write_all(out, bytes(chunk)),
                    limit=st.st_size,
                )
                os.fsync(out)
            finally:
                os.close(out)
            if digests["sha256"] != expected_sha256:
                raise UsageError(
                    _("{path} no longer matches its record; run 'custody verify'").format(
                        path=os.fsdecode(shown_source)
                    )
                )
            parent.utime(partial, (st.st_atime_ns, st.st_mtime_ns))
            parent.link(partial, name)
            parent.sync()
        except FileExistsError:
            raise UsageError(
                _("{path} appeared while it was being copied; not overwritten").format(path=display)
            ) from None
        except OSError as exc:
            raise StorageError(describe_os_error(exc, "copy to", dest.where(rel))) from None
        finally:
            os.close(src)
            with contextlib.suppress(OSError):
                parent.unlink(partial)
        size, sha256 = _hash_at(parent, name, display)  # what the destination really holds
    if sha256 != expected_sha256:
        raise StorageError(
            _("{path}: the copy does not match on re-read; do not rely on it").format(path=display)
        )
    return CopyRef(display, sha256, size)


def _open_original(source: Folder, rel: bytes) -> int:
    """An original opened read-only below ``source``, no component a link."""
    try:
        folder, name = source.parent_of(rel, create=False)
    except FileNotFoundError:
        raise EvidenceReadError(os.fsdecode(source.where(rel)), _("no such file")) from None
    with folder:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=folder.fd)  # fmt: skip
        except OSError as exc:
            raise EvidenceReadError(
                os.fsdecode(source.where(rel)),
                _("symbolic link, not followed")
                if exc.errno == errno.ELOOP
                else (exc.strerror or str(exc)),
            ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise EvidenceReadError(os.fsdecode(source.where(rel)), _("not a regular file"))
    return fd


def _hash_at(folder: Folder, name: bytes, display: str) -> tuple[int, str]:
    """(size, SHA-256) of the regular file ``name`` in ``folder``, read without links."""
    try:
        fd = folder.open_read(name)
    except StorageError as exc:
        raise StorageError(
            _("{path}: copy could not be re-read: {why}").format(path=display, why=exc)
        ) from None
    try:
        size, digests = hash_fd(fd, ("sha256",))
    finally:
        os.close(fd)
    return size, digests["sha256"]


# --- the operations the CLI offers ----------------------------------------------------------


def event(
    root: EvidenceRoot,
    signer: SigningKey,
    action: str,
    seqs: Sequence[int],
    *,
    reason: str | None = None,
    to: str | None = None,
    text: str | None = None,
    fields: Mapping[str, str] | None = None,
    source: str | None = None,
    clock: Clock = utc_now,
) -> SignedRecord:
    """Record a transfer, access, note, dispose or receive event for catalogued items."""
    if action in ("copy", "derive", "tag", "untag"):
        raise UsageError(
            _("use the {action} operation, which checks what it changes").format(action=action)
        )
    if action == "capture":
        raise UsageError(_("a capture is recorded by 'custody capture', which makes its files"))
    with open_ledger(root) as ledger:
        refs = tuple(item_refs(ledger, seqs))
    body = EventBody(
        action, refs, reason=reason, to=to, text=text, fields=dict(fields or {}), source=source
    )
    return record_event(root, signer, body, clock=clock)


@dataclass(frozen=True)
class TagChange:
    """What ``tag`` recorded: the event, and the items it left alone (already so)."""

    record: SignedRecord
    tags: tuple[str, ...]
    items: tuple[int, ...]
    unchanged: tuple[int, ...]


def plan_tags(
    root: EvidenceRoot, seqs: Sequence[int], tags: Sequence[str], *, remove: bool = False
) -> tuple[tuple[str, ...], list[int], list[int]]:
    """(tag names, items to change, items already so) for ``tag``; UsageError when the
    names are unusable or nothing would change. Writes nothing, so a command can check
    every change it was asked for before it signs any."""
    names = tuple(dict.fromkeys(t.strip() for t in tags))
    if not names or not all(names):
        raise UsageError(_("name the tag with --tag NAME (or --untag NAME)"))
    for name in names:
        if any(unicodedata.category(c).startswith("C") for c in name):
            raise UsageError(
                _("tag {name!r} contains a control or invisible character").format(name=name)
            )
    with open_ledger(root) as ledger:
        carried = {name: set(ledger.index.items_tagged(name)) for name in names}
    change: list[int] = []
    same: list[int] = []
    for seq in seqs:
        has = [seq in carried[name] for name in names]
        (change if (any(has) if remove else not all(has)) else same).append(seq)
    if not change:
        nothing = (
            _("nothing to change: every item named carries none of the tag(s) {names}")
            if remove
            else _("nothing to change: every item named already carries the tag(s) {names}")
        )
        raise UsageError(nothing.format(names=", ".join(names)))
    return names, change, same


def tag(
    root: EvidenceRoot,
    signer: SigningKey,
    seqs: Sequence[int],
    tags: Sequence[str],
    *,
    remove: bool = False,
    reason: str | None = None,
    clock: Clock = utc_now,
) -> TagChange:
    """Add ``tags`` to items (or, ``remove``, take them off) with one signed event.

    Items that already carry every tag (or, removing, carry none of them) are left out of
    the event; if that leaves nothing to change, UsageError: an instruction that changes
    nothing is refused, not silently accepted.
    """
    names, change, same = plan_tags(root, seqs, tags, remove=remove)
    with open_ledger(root) as ledger:
        refs = tuple(item_refs(ledger, change))
    body = EventBody("untag" if remove else "tag", refs, reason=reason, tags=names)
    signed = record_event(root, signer, body, clock=clock)
    return TagChange(signed, names, tuple(change), tuple(same))


def earlier_versions(ledger: Ledger, specs: Sequence[str]) -> list[int]:
    """The replaced versions ITEM specs name: a record number as given, a path as every
    version of it before the current one. UsageError for a current version or a non-item."""
    from custody.handling.lookup import resolve_record

    chosen: dict[int, None] = {}
    for spec in specs:
        seq = resolve_record(ledger, spec)
        if ledger.index.record_type(seq) != "item":
            raise UsageError(_("record {seq} is not an item record").format(seq=seq))
        body = ItemBody.from_json(ledger.read(seq).record.body)
        replaced = [row.seq for row in ledger.index.items_at(body.name_bytes)][:-1]
        earlier = ([seq] if seq in replaced else []) if spec.isdigit() else replaced
        if not earlier:
            raise UsageError(
                _(
                    "{spec!r} is the current version of {path}: supersede names an earlier "
                    "version that a later one replaced"
                ).format(spec=spec, path=body.path)
            )
        chosen.update((v, None) for v in earlier)
    return sorted(chosen)


def copy_event(
    root: EvidenceRoot,
    signer: SigningKey,
    seqs: Sequence[int],
    destination: Path,
    *,
    reason: str | None = None,
    clock: Clock = utc_now,
) -> SignedRecord:
    """Copy items outside the root, verify each copy by re-reading it, record the event."""
    with open_ledger(root) as ledger:
        refs = tuple(item_refs(ledger, seqs))
        names = item_names(ledger, seqs)
    copies = tuple(copy_out(root, refs, destination, names))
    body = EventBody(
        "copy", refs, reason=reason, destination=str(destination.resolve()), copies=copies
    )
    return record_event(root, signer, body, clock=clock)


def derive(
    root: EvidenceRoot,
    signer: SigningKey,
    original: int,
    output: Path,
    action: str,
    *,
    reason: str | None = None,
    clock: Clock = utc_now,
) -> tuple[int, SignedRecord]:
    """Catalogue a working copy made from ``original`` and record how it was derived.

    The output must already exist inside the evidence root (made by ffmpeg, an editor...).
    Returns the derived item's record number and the derive event.
    """
    from custody.acquisition.catalogue import Descriptive, catalogue

    with open_ledger(root) as ledger:
        (original_ref,) = item_refs(ledger, [original])
    rel = os.fsencode(root.relative(output))
    if not os.path.isfile(root.absolute(rel)):
        raise UsageError(_("{output}: the derived file does not exist").format(output=output))
    # A reference names the record number and the digest only, never the original's path:
    # a bundle of the working copy alone must disclose nothing of the original's name.
    # Written into the derived item's record: English whatever the language (never _()).
    note = f"derived from record {original} (SHA-256 {original_ref.sha256}): {action}"
    report = catalogue(root, [str(output)], signer, descriptive=Descriptive(note=note), clock=clock)
    if report.skipped:
        raise UsageError(f"{output}: {report.skipped[0].reason}")
    with open_ledger(root) as ledger:
        row = ledger.index.latest_item_at(rel)
        assert row is not None  # just catalogued
        (output_ref,) = item_refs(ledger, [row.seq])
    if output_ref.sha256 == original_ref.sha256:
        raise UsageError(_("the derived file is identical to the original; nothing was derived"))
    body = EventBody("derive", (original_ref,), reason=reason or action, output=output_ref)
    return row.seq, record_event(root, signer, body, clock=clock)


def revoke(
    root: EvidenceRoot,
    signer: SigningKey,
    fingerprint: str,
    *,
    reason: str | None = None,
    compromised_since: str | None = None,
    clock: Clock = utc_now,
) -> SignedRecord:
    """Revoke a key from this point of the ledger (by itself or by a custodian).

    ``compromised_since`` (a record number, or an RFC 3339 time: the first record written at
    or after it) declares the key compromised from there: what it signed from that record
    on, and every key it introduced from there, no longer verifies (docs/events.md).
    """
    from custody.ledger.bodies import RevocationBody

    if fingerprint != signer.fingerprint and signer.public.role != "custodian":
        raise SigningKeyError(
            _(
                "only the key itself or a custodian's key may revoke a key; {name!r} is a {role}"
            ).format(name=signer.name, role=signer.public.role)
        )
    with open_ledger(root) as ledger:
        if not ledger.index.key_known(fingerprint):
            raise UsageError(
                _("key {fingerprint} has not been introduced in this ledger").format(
                    fingerprint=fingerprint
                )
            )
        since = None
        if compromised_since is not None:
            since = _compromise_point(ledger, compromised_since)
        with ledger.writer(signer, clock=clock) as writer:
            body = RevocationBody(fingerprint, reason, since)
            return writer.append("revocation", body.to_json())


def _compromise_point(ledger: Ledger, text: str) -> int:
    """The record number a ``--compromised-since`` RECORD|TIME names."""
    from custody.clock import parse_time

    size = ledger.index.size
    if text.isdigit():
        number = int(text)
        if number >= size:
            raise UsageError(
                _("--compromised-since {number}: the ledger has {size} records").format(
                    number=number, size=size
                )
            )
        return number
    try:
        moment = parse_time(text)
    except ValueError:
        raise UsageError(
            _("--compromised-since takes a record number or an RFC 3339 time, not {text!r}").format(
                text=text
            )
        ) from None
    # Record times are claimed by their signers, and a thief can backdate; the point is
    # therefore the first record *in ledger order* written at or after the time.
    for signed in ledger.records():
        if parse_time(signed.record.time) >= moment:
            return signed.seq
    raise UsageError(
        _("no record was written at or after {text}: nothing to declare compromised").format(
            text=text
        )
    )


def rotate(
    root: EvidenceRoot, old: SigningKey, new: SigningKey, *, clock: Clock = utc_now
) -> SignedRecord:
    """The old key introduces its successor; from here on only the new key may sign."""
    with open_ledger(root) as ledger, ledger.writer(old, clock=clock) as writer:
        if not ledger.index.key_known(old.fingerprint):
            # A key record is not preceded by the signer's own introduction automatically
            # (the writer does that only for other types): without this, rotating a key
            # that never signed here would be signed by an unknown key (UNKNOWN_KEY).
            writer.introduce(old)
        return writer.introduce(new, replaces=old.fingerprint)
