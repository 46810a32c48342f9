"""The first stage of checking a ledger: each line on its own, independently of every other
line - parsed strictly, hashed, and its Ed25519 signature checked against the key the
ledger introduces for that fingerprint (``examine``). That is ~90 % of the cost of
verification, so it runs on every core in a process pool for large ledgers and hands
on small, cheap-to-pickle ``LineFacts``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, NamedTuple

from custody import i18n
from custody.errors import RecordError
from custody.keys.keyring import verify_ed25519
from custody.ledger import merkle
from custody.ledger.bodies import KeyBody
from custody.ledger.records import SignedRecord, line_hash
from custody.ledger.references import Reference, references

LineSource = Callable[[], Iterable[tuple[bytes, bool]]]
CHUNK_LINES = 2000


PARALLEL_FROM = 4 * CHUNK_LINES  # below this, a process pool costs more than it saves


# --- per line, in any order -----------------------------------------------------------------


class LineFacts(NamedTuple):
    """Everything about one line that does not depend on other lines.

    A NamedTuple rather than a dataclass: it crosses from the worker processes for every
    line, and tuples pickle about seven times faster.
    """

    complete: bool
    leaf: bytes
    hash: str
    size: int
    error: str | None = None
    seq: int = -1
    type: str = ""
    signer: str = ""
    prev: str | None = None
    time: str = ""
    signature_ok: bool | None = None  # None: no key of that fingerprint anywhere in the ledger
    body: Any = None  # the typed body where the ordered pass needs it
    line: bytes | None = None  # kept for checkpoints: timestamps' imprints are over these bytes
    content: bytes | None = None  # an item's raw SHA-256: what later references must match
    refs: tuple[Reference, ...] = ()  # the item records this record names


_KEEP = frozenset(
    {
        "key",
        "checkpoint",
        "timestamp",
        "event",
        "revocation",
        "witness",
        "validation",
        "evidence-record",
        "case",
        "exhibit",
    }
)


NO_DIGEST = bytes(32)


def examine(data: bytes, complete: bool, keys: dict[str, bytes], keep_items: bool) -> LineFacts:
    """Parse, hash and check the signature of one line; never raises for bad content."""
    leaf = merkle.leaf_hash(data)
    digest = line_hash(data)
    if not complete:
        return LineFacts(False, leaf, digest, len(data))
    try:
        signed = SignedRecord.parse(data)
        record = signed.record
        # Bodies the ordered pass needs are built; the rest (most items) only checked.
        body = None
        if record.type in _KEEP or (keep_items and record.type == "item"):
            body = record.typed_body()
        else:
            record.check_body()
    except RecordError as exc:
        return LineFacts(True, leaf, digest, len(data), error=str(exc))
    raw = keys.get(record.signer)
    ok = None
    if raw is not None:
        ok = verify_ed25519(raw, signed.signature, signed.signed_bytes)
    content = None
    if record.type == "item":
        content = bytes.fromhex(record.body["digests"]["sha256"])
    return LineFacts(
        True,
        leaf,
        digest,
        len(data),
        None,
        record.seq,
        record.type,
        record.signer,
        record.prev,
        record.time,
        ok,
        body,
        data if record.type == "checkpoint" else None,
        content,
        references(record.type, record.body),
    )


def _examine_chunk(
    chunk: list[tuple[bytes, bool]], keys: dict[str, bytes], keep_items: bool
) -> list[LineFacts]:
    return [examine(data, complete, keys, keep_items) for data, complete in chunk]


def _chunks(
    lines: Iterable[tuple[bytes, bool]], keys: dict[str, bytes]
) -> Iterator[list[tuple[bytes, bool]]]:
    """The lines in chunks; ``keys`` gains each key record's public key as it is read."""
    chunk: list[tuple[bytes, bool]] = []
    for line in lines:
        chunk.append(line)
        if line[1] and b'"type":"key"' in line[0]:
            learn_key(line[0], keys)
        if len(chunk) >= CHUNK_LINES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def line_facts(lines: LineSource, keep_items: bool) -> Iterator[LineFacts]:
    """Examine every line, in order; on a process pool when the ledger is large.

    Each chunk is checked with the keys introduced up to its end. A record signed by a key
    the ledger introduces only later is UNKNOWN_KEY whatever its signature, so nothing
    needs the keys of later chunks, and the ledger is read once.
    """
    keys: dict[str, bytes] = {}
    chunks = _chunks(lines(), keys)
    ahead = list(itertools.islice(chunks, PARALLEL_FROM // CHUNK_LINES))
    if len(ahead) * CHUNK_LINES < PARALLEL_FROM:
        for chunk in ahead:
            yield from _examine_chunk(chunk, keys, keep_items)
        return
    # Imported here: multiprocessing is needed only for a large ledger, and every append
    # that checks its signer's key (Ledger.key_ended) comes through this module.
    from concurrent.futures import ProcessPoolExecutor

    workers = os.cpu_count() or 1
    # Workers say what is wrong with a line (a finding's message) in the run's language,
    # whichever way the pool starts its processes.
    with ProcessPoolExecutor(
        workers, initializer=i18n.set_language, initargs=(i18n.current_language(),)
    ) as pool:
        window: list[Future[list[LineFacts]]] = []
        for chunk in itertools.chain(ahead, chunks):
            window.append(pool.submit(_examine_chunk, chunk, dict(keys), keep_items))
            if len(window) > workers * 3:  # a bounded window keeps memory flat
                yield from window.pop(0).result()
        for future in window:
            yield from future.result()


def learn_key(data: bytes, keys: dict[str, bytes]) -> None:
    """Add the public key of a key record line to ``keys`` (the first per fingerprint)."""
    try:
        body = SignedRecord.parse(data).record.typed_body()
    except RecordError:
        return
    if isinstance(body, KeyBody):
        keys.setdefault(body.fingerprint, body.public_key)
