"""The ledger's derived index: a SQLite cache for fast lookups and O(1)-ish appends.

Everything here can be thrown away and rebuilt from the ledger lines, which stay the
only source of truth; ``verify`` never consults it. It holds what appending and proving
need without re-reading the ledger: where each record starts, the head of the hash chain,
the latest record per path and the first per digest (for idempotent, duplicate-aware
cataloguing), which keys are introduced, and the perfect subtrees of the RFC 9162 Merkle
tree (so an inclusion proof costs O(log n) lookups at any ledger size).

The index remembers how many bytes of the ledger it has consumed and the hash of the
last line it read. On open it checks that line is still there unchanged; if the ledger
was rolled back or rewritten it rebuilds from scratch.

A damaged file (docs/format.md §1: the cache is "rebuildable, never trusted") is thrown
away and rebuilt from the ledger whenever the damage shows: on open, which reads only the
header, the schema and one path down the largest trees (a bounded probe: counting the
tree's nodes read every page of a 4.5 GB index on every command), or at the first damaged
page a later lookup reads (``_rebuilt_if_damaged``), which then answers from the rebuilt
index.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from custody.errors import StorageError
from custody.i18n import _
from custody.ledger import merkle
from custody.ledger.bodies import ItemBody
from custody.ledger.records import SignedRecord

SCHEMA_VERSION = "4"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, offset INTEGER NOT NULL, length INTEGER NOT NULL,
    type TEXT NOT NULL, signer TEXT NOT NULL, line_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY, path BLOB NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS items_path ON items (path, seq);
CREATE INDEX IF NOT EXISTS items_sha256 ON items (sha256, seq);
CREATE INDEX IF NOT EXISTS records_type ON records (type, seq);
CREATE TABLE IF NOT EXISTS tags (tag TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (tag, seq));
CREATE TABLE IF NOT EXISTS keys (fingerprint TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS event_items (
    item INTEGER NOT NULL, event INTEGER NOT NULL, PRIMARY KEY (item, event)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class ItemRow:
    seq: int
    path: bytes
    sha256: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Head:
    """Where the next record goes: its sequence number, byte offset and ``prev`` value."""

    size: int
    offset: int
    last_hash: str | None


@dataclass(frozen=True)
class IndexRows:
    """What one record contributes to an index, whatever database holds it."""

    item: tuple[int, bytes, str, int, int] | None = None  # seq, path, sha256, size, mtime_ns
    tags: list[tuple[str, int]] = field(default_factory=list)
    # Tags an untag event removes from items (applied after the tags of earlier records).
    untags: list[tuple[str, int]] = field(default_factory=list)
    events: list[tuple[int, int]] = field(default_factory=list)  # (item seq, event seq)
    key: tuple[str, int] | None = None  # fingerprint, seq of its introduction


def index_rows(signed: SignedRecord) -> IndexRows:
    record = signed.record
    if record.type == "item":
        body: ItemBody = record.typed_body()
        return IndexRows(
            item=(record.seq, body.name_bytes, body.sha256, body.size, body.mtime_ns),
            tags=[(t, record.seq) for t in body.tags],
        )
    if record.type == "event":
        named = [ref.get("seq") for ref in record.body.get("items", [])]
        items = [n for n in named if isinstance(n, int)]
        output = record.body.get("output")
        if isinstance(output, dict):
            named.append(output.get("seq"))
        events = [(n, record.seq) for n in named if isinstance(n, int)]
        action, tags = record.body.get("action"), record.body.get("tags") or []
        changed = [(str(t), n) for t in tags for n in items]
        if action == "tag":
            return IndexRows(tags=changed, events=events)
        if action == "untag":
            return IndexRows(untags=changed, events=events)
        return IndexRows(events=events)
    if record.type == "key":
        return IndexRows(key=(str(record.body["fingerprint"]), record.seq))
    return IndexRows()


class GrowingTree:
    """The index's tree while a batch is being added: the size is tracked here, and nodes
    completed in this batch are answered from memory before asking the database."""

    def __init__(self, index: merkle.NodeStore, size: int) -> None:
        self.index = index
        self.size = size
        self.fresh: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        found = self.fresh.get((level, index))
        return found if found is not None else self.index.node(level, index)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """The nodes adding this leaf completes (recorded here too); the size grows by one."""
        nodes = merkle.completed_nodes(self, leaf_hash)
        for level, index, value in nodes:
            self.fresh[(level, index)] = value
        self.size += 1
        return nodes


_P = ParamSpec("_P")
_T = TypeVar("_T")

# SQLite's primary result codes (sqlite3.h) for a damaged file: SQLITE_CORRUPT ("database
# disk image is malformed") and SQLITE_NOTADB ("file is not a database").
_DAMAGED_CODES = frozenset({11, 26})


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _DAMAGED_CODES


def _rebuilt_if_damaged(
    method: Callable[Concatenate[LedgerIndex, _P], _T],
) -> Callable[Concatenate[LedgerIndex, _P], _T]:
    """Run ``method``; if it reads a damaged page, rebuild the index and run it again.

    Only the outermost guarded call recovers: a lookup made inside ``add`` lets ``add``
    start over, and ``add`` files nothing twice (it skips records already indexed).
    """

    @functools.wraps(method)
    def guarded(self: LedgerIndex, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if self._depth:
            return method(self, *args, **kwargs)
        self._depth += 1
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
            damage = exc
        finally:
            self._depth -= 1
        self._rebuild_after(damage)
        self._depth += 1
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
            raise StorageError(_cannot_rebuild(self.path, exc)) from None
        finally:
            self._depth -= 1

    return guarded


def _cannot_rebuild(path: Path | None, damage: sqlite3.DatabaseError) -> str:
    return _("the ledger index {path} is damaged and could not be rebuilt: {why}").format(
        path=path or ":memory:", why=str(damage)
    )


class LedgerIndex(merkle.NodeStore):
    """SQLite-backed index; also the persistent node store of the ledger's Merkle tree."""

    def __init__(
        self, path: Path | None, rebuild: Callable[[LedgerIndex], object] | None = None
    ) -> None:
        # ``None`` (or an unwritable cache) gives an in-memory index, rebuilt per process:
        # a read-only copy of an evidence root can still be read, proved and verified.
        # ``rebuild`` fills an emptied index from the ledger (the store's sync); it is
        # called when a damaged page turns up after the open.
        self.path = path
        self.db = self._connect(path)
        self._rebuild = rebuild
        self._depth = 0  # guarded calls under way (see _rebuilt_if_damaged)
        self._rebuilding = False

    def _rebuild_after(self, damage: sqlite3.DatabaseError) -> None:
        """Throw the damaged file away and rebuild it from the ledger (or say why not)."""
        if self.path is None or self._rebuilding:
            raise StorageError(_cannot_rebuild(self.path, damage))
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        self.db = self._connect(self.path, discard=True)
        if self._rebuild is None:
            raise StorageError(
                _(
                    "the ledger index {path} was damaged ({why}); it was removed and will be "
                    "rebuilt from the ledger by the next command"
                ).format(path=self.path, why=str(damage))
            )
        self._rebuilding = True
        try:
            self._rebuild(self)
        finally:
            self._rebuilding = False

    @staticmethod
    def _connect(path: Path | None, *, discard: bool = False) -> sqlite3.Connection:
        if not discard:
            try:
                return LedgerIndex._open(path)
            except sqlite3.DatabaseError:
                if path is None:
                    raise
        # A damaged cache is only a cache: throw it away and rebuild from the ledger.
        if path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(OSError):
                    os.unlink(f"{path}{suffix}")
        return LedgerIndex._open(path)

    @staticmethod
    def _open(path: Path | None) -> sqlite3.Connection:
        target = ":memory:"
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if os.access(path.parent, os.W_OK):
                    target = str(path)
            except OSError:
                pass
        db = sqlite3.connect(target, isolation_level=None, timeout=60.0)
        try:
            db.execute(
                "PRAGMA journal_mode=WAL" if target != ":memory:" else "PRAGMA journal_mode=MEMORY"
            )
            # Derived data: losing the last transactions only costs a re-read of the ledger.
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            # A bounded probe: the header and the schema (read above) and one path from the
            # root to the last leaf of the two largest trees. Damage elsewhere is found
            # when a lookup reads it (_rebuilt_if_damaged).
            db.execute("SELECT hash FROM nodes ORDER BY level DESC, idx DESC LIMIT 1").fetchone()
            db.execute("SELECT offset FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        if LedgerIndex._meta(db, "schema") != SCHEMA_VERSION:
            db.executescript(
                "DELETE FROM meta; DELETE FROM records; DELETE FROM items; DELETE FROM tags;"
                "DELETE FROM keys; DELETE FROM nodes; DELETE FROM event_items;"
            )
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        return db

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self.db.close()

    # --- head and consistency -------------------------------------------------------------

    @_rebuilt_if_damaged
    def head(self) -> Head:
        size = int(self._meta(self.db, "size") or 0)
        offset = int(self._meta(self.db, "offset") or 0)
        return Head(size, offset, self._meta(self.db, "last_hash"))

    @_rebuilt_if_damaged
    def last_record_span(self) -> tuple[int, int] | None:
        row = self.db.execute(
            "SELECT offset, length FROM records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    @_rebuilt_if_damaged
    def reset(self) -> None:
        self.db.executescript(
            "BEGIN; DELETE FROM records; DELETE FROM items; DELETE FROM tags; DELETE FROM keys;"
            "DELETE FROM nodes; DELETE FROM event_items; DELETE FROM meta WHERE key != 'schema';"
            "COMMIT;"
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db is db:
                # SQLite may have ended the transaction itself: keep the error that did.
                with contextlib.suppress(sqlite3.OperationalError):
                    db.execute("ROLLBACK")
            raise
        if self.db is not db:
            return  # rebuilt from the ledger inside the transaction: nothing left to commit
        try:
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc) or self._depth:
                raise
            self._rebuild_after(exc)

    @_rebuilt_if_damaged
    def add(self, entries: Iterable[tuple[int, SignedRecord]]) -> None:
        """Index records (with their byte offsets) that follow the current head.

        Call inside ``transaction()``. The caller has checked the chain; this only files.
        Records another process indexed since the caller read the head are skipped: reads
        bring the index up to date without the ledger's lock, so two processes may index
        the same new lines at once, and the second must neither fail nor file them twice.
        """
        head = self.head()
        fresh = [(start, signed) for start, signed in entries if signed.record.seq >= head.size]
        if not fresh or fresh[0][1].record.seq != head.size:
            return  # all filed already, or they do not follow this head: a later sync will
        tree = GrowingTree(self, head.size)
        offset, last_hash = head.offset, head.last_hash
        for start, signed in fresh:
            record = signed.record
            line_hash = signed.line_hash
            rows = index_rows(signed)
            self.db.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
                (record.seq, start, len(signed.line), record.type, record.signer, line_hash),
            )
            if rows.item is not None:
                self.db.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?)", rows.item)
            self.db.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)", rows.tags)
            self.db.executemany("DELETE FROM tags WHERE tag = ? AND seq = ?", rows.untags)
            self.db.executemany("INSERT OR IGNORE INTO event_items VALUES (?, ?)", rows.events)
            if rows.key is not None:
                self.db.execute("INSERT OR IGNORE INTO keys VALUES (?, ?)", rows.key)
            self.db.executemany(
                "INSERT INTO nodes VALUES (?, ?, ?)", tree.append(merkle.leaf_hash(signed.line))
            )
            offset, last_hash = start + len(signed.line) + 1, line_hash
        if last_hash is not None and tree.size != head.size:
            self._set_head(tree.size, offset, last_hash)

    def _set_head(self, size: int, offset: int, last_hash: str) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("size", str(size)), ("offset", str(offset)), ("last_hash", last_hash)],
        )

    # --- merkle.NodeStore -------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self.head().size

    @_rebuilt_if_damaged
    def node(self, level: int, index: int) -> bytes:
        row = self.db.execute(
            "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise LookupError(f"Merkle node ({level}, {index}) is not in the index")
        return bytes(row[0])

    # --- lookups ----------------------------------------------------------------------------

    @_rebuilt_if_damaged
    def record_span(self, seq: int) -> tuple[int, int] | None:
        row = self.db.execute("SELECT offset, length FROM records WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    @_rebuilt_if_damaged
    def latest_item_at(self, path: bytes) -> ItemRow | None:
        row = self.db.execute(
            "SELECT seq, path, sha256, size, mtime_ns FROM items WHERE path = ? "
            "ORDER BY seq DESC LIMIT 1",
            (path,),
        ).fetchone()
        return None if row is None else ItemRow(row[0], bytes(row[1]), row[2], row[3], row[4])

    @_rebuilt_if_damaged
    def first_item_with(self, sha256: str) -> ItemRow | None:
        row = self.db.execute(
            "SELECT seq, path, sha256, size, mtime_ns FROM items WHERE sha256 = ? "
            "ORDER BY seq LIMIT 1",
            (sha256,),
        ).fetchone()
        return None if row is None else ItemRow(row[0], bytes(row[1]), row[2], row[3], row[4])

    @_rebuilt_if_damaged
    def items_with_prefix(self, prefix: str) -> list[ItemRow]:
        rows = self.db.execute(
            "SELECT seq, path, sha256, size, mtime_ns FROM items WHERE sha256 >= ? AND sha256 < ? "
            "ORDER BY seq",
            (prefix, prefix + "g"),
        ).fetchall()
        return [ItemRow(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows]

    @_rebuilt_if_damaged
    def items_at_or_under(self, path: bytes) -> list[ItemRow]:
        """Items at this exact path or inside this folder (latest record per path only).

        The empty path means the whole evidence root.
        """
        if not path:
            rows = self.db.execute(
                "SELECT seq, path, sha256, size, mtime_ns FROM items WHERE seq IN ("
                " SELECT max(seq) FROM items GROUP BY path) ORDER BY seq"
            ).fetchall()
            return [ItemRow(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows]
        rows = self.db.execute(
            "SELECT seq, path, sha256, size, mtime_ns FROM items WHERE seq IN ("
            " SELECT max(seq) FROM items WHERE path = ? OR substr(path, 1, ?) = ? GROUP BY path)"
            " ORDER BY seq",
            (path, len(path) + 1, path + b"/"),
        ).fetchall()
        return [ItemRow(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows]

    @_rebuilt_if_damaged
    def items_tagged(self, tag: str) -> list[int]:
        return [
            r[0] for r in self.db.execute("SELECT seq FROM tags WHERE tag = ? ORDER BY seq", (tag,))
        ]

    @_rebuilt_if_damaged
    def events_naming(self, item: int) -> list[int]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT event FROM event_items WHERE item = ? ORDER BY event", (item,)
            )
        ]

    @_rebuilt_if_damaged
    def items_with(self, sha256: str) -> list[ItemRow]:
        rows = self.db.execute(
            "SELECT seq, path, sha256, size, mtime_ns FROM items WHERE sha256 = ? ORDER BY seq",
            (sha256,),
        ).fetchall()
        return [ItemRow(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows]

    @_rebuilt_if_damaged
    def items_at(self, path: bytes) -> list[ItemRow]:
        rows = self.db.execute(
            "SELECT seq, path, sha256, size, mtime_ns FROM items WHERE path = ? ORDER BY seq",
            (path,),
        ).fetchall()
        return [ItemRow(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows]

    @_rebuilt_if_damaged
    def records_of_type(self, record_type: str) -> list[int]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT seq FROM records WHERE type = ? ORDER BY seq", (record_type,)
            )
        ]

    @_rebuilt_if_damaged
    def last_type_except(self, *skipped: str) -> str | None:
        """Type of the last record not of a ``skipped`` type (None if there is none)."""
        marks = ",".join("?" * len(skipped))
        row = self.db.execute(
            f"SELECT type FROM records WHERE type NOT IN ({marks}) ORDER BY seq DESC LIMIT 1",
            skipped,
        ).fetchone()
        return None if row is None else str(row[0])

    @_rebuilt_if_damaged
    def key_known(self, fingerprint: str) -> bool:
        row = self.db.execute("SELECT 1 FROM keys WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return row is not None

    @_rebuilt_if_damaged
    def record_type(self, seq: int) -> str | None:
        row = self.db.execute("SELECT type FROM records WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else str(row[0])
