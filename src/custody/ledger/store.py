"""The ledger's store interface: what every store (file, PostgreSQL) offers, and appending.

``Ledger`` is the interface every store implements (``custody.ledger.filestore`` for
``.custody/ledger.jsonl``, ``custody.ledger.pgstore`` for the shared PostgreSQL ledger);
``custody.ledger.backends.open_ledger`` picks the one a root's config names. Appends happen
only inside ``Ledger.writer()``, which holds the store's exclusive lock for its whole
duration; ``LedgerWriter`` signs and chains each record and hands batches to the store's
commit, and a record counts as written only once that commit has returned.

Imports nothing of the stores themselves, so both can build on it without a cycle.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from custody.clock import Clock, format_time, utc_now
from custody.errors import LedgerError, RecordError, SigningKeyError, StorageError
from custody.i18n import _
from custody.keys.keyring import PublicKey, SigningKey
from custody.ledger import merkle
from custody.ledger.bodies import CheckpointBody, KeyBody
from custody.ledger.index import Head
from custody.ledger.records import (
    FORMAT_VERSION,
    SELF_DATED_TYPES,
    Record,
    SignedRecord,
    check_line_length,
)
from custody.root import EvidenceRoot
from custody.system.files import write_atomic


class Ledger(abc.ABC):
    """An evidence root's ledger, in whichever store holds it (``open_ledger`` picks it).

    The file ledger (``FileLedger``) is the default; ``postgresql://...`` selects the shared
    PostgreSQL store (``custody.ledger.pgstore``). Both hold the same canonical lines and offer the
    same reading, appending and index operations, so every command works on either.
    """

    root: EvidenceRoot
    # (the key and revocation records judged, the key states they gave): see key_ended
    _key_states: tuple[tuple[int, ...], dict[str, Any]] | None = None


    # --- what every store provides ------------------------------------------------------

    @property
    @abc.abstractmethod
    def index(self) -> Any:
        """The store's index (``LedgerIndex`` API), up to date with every record."""

    @abc.abstractmethod
    def read(self, seq: int) -> SignedRecord:
        """Record ``seq``, parsed strictly."""

    @abc.abstractmethod
    def records(self, start: int = 0) -> Iterator[SignedRecord]:
        """Complete records from ``start`` in order (strict parse; RecordError if malformed)."""

    @abc.abstractmethod
    def raw_lines(self) -> Iterator[tuple[bytes, bool]]:
        """Every line as stored (bytes, complete?), read without the index: for verify."""

    @abc.abstractmethod
    def writer(
        self, signer: SigningKey, *, clock: Clock = utc_now, lock_timeout: float = 120.0
    ) -> contextlib.AbstractContextManager[LedgerWriter]:
        """Exclusive appending; records appended through the writer are durable on exit."""

    @abc.abstractmethod
    def check_appendable(self, *, lock_timeout: float = 120.0) -> None:
        """Raise now (LedgerError, LedgerBusyError...) if no record could be appended.

        Needs no key, so it can run before one is unlocked: a torn ledger is refused before
        hours of hashing, not after.
        """

    @abc.abstractmethod
    def repair(self, signer: SigningKey, *, clock: Clock = utc_now) -> SignedRecord | None:
        """Remove an incomplete final record, keeping a copy; None if there is none."""

    @abc.abstractmethod
    def dump(self, out: Path) -> tuple[int, str]:
        """Write the canonical line file (the form independent verifiers read).

        Returns the number of records and the SHA-256 of the bytes written.
        """

    def store_token(self, token_file: str, raw: bytes) -> None:
        """Keep a file a record names by its digest - a timestamp token's raw response, an
        item's whole metadata - under ``token_file``, relative to .custody/."""
        target = self.root.state / token_file
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, raw)

    def read_token(self, token_file: str) -> bytes:
        """A file ``store_token`` kept (a token, an item's whole metadata); OSError if it is
        not there."""
        if token_file.startswith("/") or ".." in token_file.split("/"):
            raise FileNotFoundError(token_file)
        return (self.root.state / token_file).read_bytes()

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's resources."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def needs_checkpoint(self) -> bool:
        """True if records other than self-dated ones came after the last checkpoint.

        Timestamp records follow the checkpoint they stamp, evidence-record and validation
        records the tokens they keep valid; covering them with yet another checkpoint would
        start an endless stamp-checkpoint-stamp cycle (``records.SELF_DATED_TYPES``).
        """
        last = self.index.last_type_except(*SELF_DATED_TYPES)
        return last is not None and last != "checkpoint"

    def root_hash(self, size: int | None = None) -> bytes:
        return merkle.root_hash(self.index, size)

    def key_ended(self, fingerprint: str) -> str | None:
        """Why ``fingerprint`` may no longer sign here (revoked or replaced), or None.

        Judged by exactly the rules verification applies (docs/events.md).
        """
        from custody.ledger.checks import key_states

        index = self.index
        seqs = (*index.records_of_type("key"), *index.records_of_type("revocation"))
        # Key records are few and only ever appended: judge them again only when they change.
        cached = self._key_states
        if cached is None or cached[0] != seqs:
            cached = (seqs, key_states((seq, self.read(seq).line) for seq in seqs))
            self._key_states = cached
        state = cached[1].get(fingerprint)
        if state is None:
            return None
        if state.revoked_at is not None:
            return _("it was revoked at record {seq}").format(seq=state.revoked_at)
        if state.retired_at is not None:
            return _("it was replaced by a successor at record {seq}").format(seq=state.retired_at)
        return None


def refuse_ended_signer(ledger: Ledger, signer: SigningKey) -> None:
    ended = ledger.key_ended(signer.fingerprint)
    if ended:
        raise SigningKeyError(
            _("key {name!r} may no longer sign in this ledger: {ended}").format(
                name=signer.name, ended=ended
            )
        )


def parse_typed(line: bytes) -> SignedRecord:
    """Parse a ledger line strictly, its body included (RecordError otherwise).

    Why the body: records come out of the store to code that reads a checkpoint's
    ``tree_size`` or a key's ``fingerprint`` directly. A record whose envelope parsed but
    whose body did not fit its type (a damaged or forged ledger) made those commands end
    in KeyError, "internal error" (exit 70), instead of naming the malformed record.
    """
    signed = SignedRecord.parse(line)
    signed.record.typed_body()
    return signed


class LedgerWriter:
    """Appends records for one signer while the ledger lock is held."""

    def __init__(
        self,
        ledger: Ledger,
        index: Any,
        head: Head,
        signer: SigningKey,
        clock: Clock,
        commit: Callable[[list[tuple[int, SignedRecord]]], None],
    ) -> None:
        self.ledger = ledger
        self.index = index
        self.signer = signer
        self.clock = clock
        self._commit = commit
        self._size, self._offset, self._prev = head.size, head.offset, head.last_hash
        self._pending: list[tuple[int, SignedRecord]] = []
        self._failed = False
        self._introduced = False
        self.written: list[SignedRecord] = []
        # Called before each batch is made durable: what records commit to (disclosures
        # kept beside the ledger) must be durable first.
        self.before_flush: list[Callable[[], None]] = []

    @property
    def size(self) -> int:
        """The ledger size including records not yet flushed."""
        return self._size

    def append(self, record_type: str, body: Mapping[str, Any]) -> SignedRecord:
        if self._failed:
            raise LedgerError(_("an earlier write to the ledger failed; nothing more is appended"))
        # Every record's signer is introduced before it: a key record vouching for another
        # key too (only a key's own introduction comes first by itself).
        own_key = record_type == "key" and body.get("fingerprint") == self.signer.fingerprint
        if not own_key and not self._signer_introduced():
            self.introduce(self.signer)
        record = Record(
            seq=self._size,
            type=record_type,
            time=format_time(self.clock()),
            signer=self.signer.fingerprint,
            prev=self._prev,
            body=body,
            version=FORMAT_VERSION,
        )
        payload = record.signed_bytes()
        signed = SignedRecord.assemble(record, self.signer.sign(payload), payload)
        try:
            check_line_length(len(signed.line))  # never write what verify would refuse
        except RecordError as exc:
            raise LedgerError(
                _("a {record_type} record is not written: {why}").format(
                    record_type=record_type, why=exc
                )
            ) from None
        self._pending.append((self._offset, signed))
        self._size += 1
        self._offset += len(signed.line) + 1
        self._prev = signed.line_hash
        return signed

    def introduce(
        self, key: SigningKey | PublicKey, *, replaces: str | None = None
    ) -> SignedRecord:
        """Put a key's public half into the ledger, signed by the writer's signer.

        Introducing someone else's public key is vouching for it (docs/events.md).
        """
        public = key.public if isinstance(key, SigningKey) else key
        body = KeyBody(
            public.fingerprint,
            public.raw,
            public.name,
            public.role,
            replaces=replaces,
            holder=public.holder,
        )
        signed = self.append("key", body.to_json())
        pem_path = self.ledger.root.keys_dir / f"{public.fingerprint}.pem"
        if not pem_path.exists():
            with contextlib.suppress(StorageError):  # a convenience copy; the ledger is the truth
                pem_path.parent.mkdir(exist_ok=True)
                write_atomic(pem_path, public.pem())
        return signed

    def _signer_introduced(self) -> bool:
        if self._introduced:
            return True  # asked once per writer, not once per record
        fingerprint = self.signer.fingerprint
        self._introduced = self.index.key_known(fingerprint) or any(
            s.record.type == "key" and s.record.body.get("fingerprint") == fingerprint
            for _, s in self._pending
        )
        return self._introduced

    def checkpoint(self, statement: str | None = None) -> SignedRecord:
        """Append a checkpoint over every record before it."""
        self.flush()  # the root is computed from the index, so it must hold every record
        if not self._signer_introduced():
            self.introduce(self.signer)
            self.flush()
        size = self._size
        root = merkle.root_hash(self.index, size).hex()
        return self.append("checkpoint", CheckpointBody(size, root, statement).to_json())

    def flush(self) -> None:
        """Make pending records durable and indexed; only then do they count as written.

        If the store refuses (disk full, I/O error, lost connection), the batch is reported
        as not written and the writer refuses further appends.
        """
        if not self._pending or self._failed:
            return
        try:
            for prepare in self.before_flush:
                prepare()
            self._commit(self._pending)
        except BaseException:
            self._fail()
            raise
        self.written.extend(s for _, s in self._pending)
        self._pending.clear()

    def _fail(self) -> None:
        self._failed = True
        self._pending.clear()
