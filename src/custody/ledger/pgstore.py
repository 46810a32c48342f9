"""The shared PostgreSQL ledger: one case, many documenters appending at once.

The database holds exactly the lines the file ledger would hold - the same canonical
bytes, chain, signatures and Merkle tree - so proofs, checkpoints, timestamps, bundles and
every verifier work unchanged, and ``custody ledger dump`` writes the very file an
independent verifier reads. Beside the lines, the same index the file ledger keeps in
SQLite (latest item per path, first per digest, keys, events per item, and the perfect
subtrees of the Merkle tree) lives in the database, in the same transactions, so it can
never disagree with the lines; it is rebuildable from them (``custody ledger load``).

Appends are ordered by the database: a writer's transaction locks the single head row
(``SELECT ... FOR UPDATE``), reads the sequence number and previous-line hash, inserts its
records and index rows and moves the head, then commits. A second writer simply waits for
the lock, then sees the first one's records (READ COMMITTED), so the chain stays single
and a file is never recorded twice; a lost connection rolls back whole transactions, so
nothing is ever half-written, and re-running the command resumes.

Connection settings come from where libpq looks: the URL in config.toml (prefer one
without a password), ``PG*`` environment variables, ``~/.pgpass``, and ``sslmode`` for
TLS. psycopg is imported only when this store is used.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from custody.clock import Clock, utc_now
from custody.errors import LedgerBusyError, LedgerError, StorageError, UsageError
from custody.i18n import _
from custody.keys.keyring import SigningKey
from custody.ledger import merkle
from custody.ledger.index import GrowingTree, Head, ItemRow, index_rows
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger, LedgerWriter, refuse_ended_signer
from custody.root import EvidenceRoot
from custody.system.files import describe_os_error

SCHEMA = """
CREATE TABLE IF NOT EXISTS custody_head (
    id integer PRIMARY KEY CHECK (id = 1), size bigint NOT NULL, last_hash text);
INSERT INTO custody_head VALUES (1, 0, NULL) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS custody_records (
    seq bigint PRIMARY KEY, line bytea NOT NULL, type text NOT NULL, signer text NOT NULL,
    line_hash text NOT NULL);
CREATE INDEX IF NOT EXISTS custody_records_type ON custody_records (type, seq);
CREATE TABLE IF NOT EXISTS custody_items (
    seq bigint PRIMARY KEY, path bytea NOT NULL, sha256 text NOT NULL, size bigint NOT NULL,
    mtime_ns bigint NOT NULL);
CREATE INDEX IF NOT EXISTS custody_items_path ON custody_items (path, seq);
CREATE INDEX IF NOT EXISTS custody_items_sha256 ON custody_items (sha256, seq);
CREATE TABLE IF NOT EXISTS custody_tags (tag text NOT NULL, seq bigint NOT NULL,
    PRIMARY KEY (tag, seq));
CREATE TABLE IF NOT EXISTS custody_keys (fingerprint text PRIMARY KEY, seq bigint NOT NULL);
CREATE TABLE IF NOT EXISTS custody_event_items (item bigint NOT NULL, event bigint NOT NULL,
    PRIMARY KEY (item, event));
CREATE TABLE IF NOT EXISTS custody_tokens (name text PRIMARY KEY, data bytea NOT NULL);
CREATE TABLE IF NOT EXISTS custody_nodes (level integer NOT NULL, idx bigint NOT NULL,
    hash bytea NOT NULL, PRIMARY KEY (level, idx));
"""

_ITEM_COLUMNS = "seq, path, sha256, size, mtime_ns"
_TABLES = (
    "custody_head",
    "custody_records",
    "custody_items",
    "custody_tags",
    "custody_keys",
    "custody_event_items",
    "custody_nodes",
    "custody_tokens",
)
_SCHEMA_LOCK = 0x637573746F6479  # pg_advisory_xact_lock key for schema creation ("custody")


class ConnectionLostError(LedgerError):
    """The server went away (or refused us) in the middle of a command."""

    detail = ""


class MissingNodeError(LedgerError, LookupError):
    """The database's Merkle node table lacks a node the records imply."""


@contextlib.contextmanager
def _connection_errors() -> Iterator[None]:
    """Turn a lost connection while reading into one clear LedgerError (exit 3)."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        detail = " ".join(str(exc).split())[:200]
        lost = ConnectionLostError(
            _(
                "lost the connection to the PostgreSQL ledger (run the command again): {detail}"
            ).format(detail=detail)
        )
        lost.detail = detail
        raise lost from None


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise UsageError(
            _(
                "this evidence root keeps its ledger in PostgreSQL: install psycopg (pip "
                "install 'custody[postgres]')"
            )
        ) from None
    try:
        return psycopg.connect(url, connect_timeout=15, application_name="custody")
    except psycopg.OperationalError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise LedgerError(
            _("cannot reach the PostgreSQL ledger: {detail}").format(detail=detail)
        ) from None


def create_schema(url: str) -> int:
    """Create the tables if needed; returns the number of records already there."""
    import psycopg

    conn = _connect(url)
    try:
        with conn.transaction():
            # Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalogue
            # (duplicate pg_type row): several documenters running init at once take turns.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            # DDL needs CREATE on the schema even when every table exists: a documenter's
            # role that may only read and append joins an existing case without it.
            (present,) = conn.execute(
                "SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) AS t",
                (list(_TABLES),),
            ).fetchone()
            if not present:
                conn.execute(SCHEMA)
            row = conn.execute("SELECT size FROM custody_head WHERE id = 1").fetchone()
        return int(row[0])
    except psycopg.OperationalError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise LedgerError(
            _("cannot reach the PostgreSQL ledger: {detail}").format(detail=detail)
        ) from None
    except psycopg.Error as exc:
        detail = exc.diag.message_primary or " ".join(str(exc).split())[:300]
        raise LedgerError(
            _(
                "cannot set up the ledger tables in PostgreSQL: {detail} (the first "
                "'custody init' needs a role that may create tables in the database, "
                "e.g. its owner)"
            ).format(detail=detail)
        ) from None
    finally:
        conn.close()


class PgIndex(merkle.NodeStore):
    """The index API of ``custody.ledger.index.LedgerIndex``, answered by PostgreSQL."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with _connection_errors():
            return self.conn.execute(sql, params).fetchone()

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with _connection_errors():
            return list(self.conn.execute(sql, params).fetchall())

    @staticmethod
    def _items(rows: Iterable[Any]) -> list[ItemRow]:
        return [ItemRow(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows]

    def head(self) -> Head:
        size, last_hash = self._one("SELECT size, last_hash FROM custody_head WHERE id = 1")
        return Head(int(size), 0, last_hash)

    @property
    def size(self) -> int:
        return self.head().size

    def node(self, level: int, index: int) -> bytes:
        row = self._one(
            "SELECT hash FROM custody_nodes WHERE level = %s AND idx = %s", (level, index)
        )
        if row is None:
            raise MissingNodeError(
                _(
                    "Merkle node ({level}, {index}) is missing from the database's "
                    "custody_nodes table; rebuild it from the records: 'custody ledger dump "
                    "--out FILE', then 'custody ledger load FILE' into an empty database"
                ).format(level=level, index=index)
            )
        return bytes(row[0])

    def add(self, entries: Iterable[tuple[int, SignedRecord]]) -> None:
        """Insert records and their index rows; the caller holds the head row lock.

        Rows are gathered first and sent one statement per table: the head lock is held
        for a few round trips per batch, not several per record.
        """
        head = self.head()
        tree = GrowingTree(self, head.size)
        last_hash = head.last_hash
        records, items, events, keys, nodes = [], [], [], [], []
        tags: list[tuple[bool, str, int]] = []  # (adding?, tag, item) in ledger order
        for _offset, signed in entries:
            record = signed.record
            rows = index_rows(signed)
            records.append((record.seq, signed.line, record.type, record.signer, signed.line_hash))
            if rows.item is not None:
                items.append(rows.item)
            tags.extend((True, t, n) for t, n in rows.tags)
            tags.extend((False, t, n) for t, n in rows.untags)
            events.extend(rows.events)
            if rows.key is not None:
                keys.append(rows.key)
            nodes.extend(tree.append(merkle.leaf_hash(signed.line)))
            last_hash = signed.line_hash
        if not records:
            return
        with self.conn.cursor() as cur:
            cur.executemany("INSERT INTO custody_records VALUES (%s, %s, %s, %s, %s)", records)
            if items:
                cur.executemany("INSERT INTO custody_items VALUES (%s, %s, %s, %s, %s)", items)
            for adding, run in _runs(tags):  # tags and untags in ledger order
                cur.executemany(
                    "INSERT INTO custody_tags VALUES (%s, %s) ON CONFLICT DO NOTHING"
                    if adding
                    else "DELETE FROM custody_tags WHERE tag = %s AND seq = %s",
                    run,
                )
            if events:
                cur.executemany(
                    "INSERT INTO custody_event_items VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    events,
                )
            if keys:
                cur.executemany(
                    "INSERT INTO custody_keys VALUES (%s, %s) ON CONFLICT DO NOTHING", keys
                )
            cur.executemany("INSERT INTO custody_nodes VALUES (%s, %s, %s)", nodes)
            cur.execute(
                "UPDATE custody_head SET size = %s, last_hash = %s WHERE id = 1",
                (tree.size, last_hash),
            )

    # --- lookups: the same answers as LedgerIndex ------------------------------------------

    def latest_item_at(self, path: bytes) -> ItemRow | None:
        rows = self._items(
            self._rows(
                f"SELECT {_ITEM_COLUMNS} FROM custody_items WHERE path = %s "
                "ORDER BY seq DESC LIMIT 1",
                (path,),
            )
        )
        return rows[0] if rows else None

    def first_item_with(self, sha256: str) -> ItemRow | None:
        rows = self._items(
            self._rows(
                f"SELECT {_ITEM_COLUMNS} FROM custody_items WHERE sha256 = %s ORDER BY seq LIMIT 1",
                (sha256,),
            )
        )
        return rows[0] if rows else None

    def items_with_prefix(self, prefix: str) -> list[ItemRow]:
        return self._items(
            self._rows(
                f"SELECT {_ITEM_COLUMNS} FROM custody_items WHERE sha256 >= %s AND sha256 < %s "
                "ORDER BY seq",
                (prefix, prefix + "g"),
            )
        )

    def items_at_or_under(self, path: bytes) -> list[ItemRow]:
        if not path:
            sql = (
                f"SELECT {_ITEM_COLUMNS} FROM custody_items WHERE seq IN "
                "(SELECT max(seq) FROM custody_items GROUP BY path) ORDER BY seq"
            )
            return self._items(self._rows(sql))
        sql = (
            f"SELECT {_ITEM_COLUMNS} FROM custody_items WHERE seq IN (SELECT max(seq) "
            "FROM custody_items WHERE path = %s OR substring(path from 1 for %s) = %s "
            "GROUP BY path) ORDER BY seq"
        )
        return self._items(self._rows(sql, (path, len(path) + 1, path + b"/")))

    def items_tagged(self, tag: str) -> list[int]:
        return [
            r[0]
            for r in self._rows("SELECT seq FROM custody_tags WHERE tag = %s ORDER BY seq", (tag,))
        ]

    def items_with(self, sha256: str) -> list[ItemRow]:
        return self._items(
            self._rows(
                f"SELECT {_ITEM_COLUMNS} FROM custody_items WHERE sha256 = %s ORDER BY seq",
                (sha256,),
            )
        )

    def items_at(self, path: bytes) -> list[ItemRow]:
        return self._items(
            self._rows(
                f"SELECT {_ITEM_COLUMNS} FROM custody_items WHERE path = %s ORDER BY seq", (path,)
            )
        )

    def events_naming(self, item: int) -> list[int]:
        return [
            r[0]
            for r in self._rows(
                "SELECT event FROM custody_event_items WHERE item = %s ORDER BY event", (item,)
            )
        ]

    def records_of_type(self, record_type: str) -> list[int]:
        return [
            r[0]
            for r in self._rows(
                "SELECT seq FROM custody_records WHERE type = %s ORDER BY seq", (record_type,)
            )
        ]

    def last_type_except(self, *skipped: str) -> str | None:
        row = self._one(
            "SELECT type FROM custody_records WHERE type <> ALL(%s) ORDER BY seq DESC LIMIT 1",
            (list(skipped),),
        )
        return None if row is None else str(row[0])

    def key_known(self, fingerprint: str) -> bool:
        return (
            self._one("SELECT 1 FROM custody_keys WHERE fingerprint = %s", (fingerprint,))
            is not None
        )

    def record_type(self, seq: int) -> str | None:
        row = self._one("SELECT type FROM custody_records WHERE seq = %s", (seq,))
        return None if row is None else str(row[0])

    def close(self) -> None:
        pass


class PgLedger(Ledger):
    """A ledger whose lines live in PostgreSQL (see the module docstring)."""

    def __init__(self, root: EvidenceRoot) -> None:
        self.root = root
        self.url = root.config().ledger
        self.conn = _connect(self.url)
        # Reads run in autocommit; appends open their own transaction.
        self.conn.autocommit = True
        self._index = PgIndex(self.conn)
        self._pinned_size: int | None = None

    @property
    def index(self) -> PgIndex:
        return self._index

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()

    def read(self, seq: int) -> SignedRecord:
        row = self._index._one("SELECT line FROM custody_records WHERE seq = %s", (seq,))
        if row is None:
            raise LedgerError(
                _("no record {seq}: the ledger has {size} records").format(
                    seq=seq, size=self.index.size
                )
            )
        return SignedRecord.parse(bytes(row[0]))

    def _stream(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        # A server-side cursor: a million-record ledger never sits in memory at once.
        stop = "" if end is None else " AND seq < %s"
        params = (start,) if end is None else (start, end)
        with (
            _connection_errors(),
            self.conn.transaction(),
            self.conn.cursor(name="custody_lines") as cur,
        ):
            cur.itersize = 2000
            cur.execute(
                f"SELECT line FROM custody_records WHERE seq >= %s{stop} ORDER BY seq", params
            )
            for (line,) in cur:
                yield bytes(line)

    def records(self, start: int = 0) -> Iterator[SignedRecord]:
        for line in self._stream(start):
            yield SignedRecord.parse(line)

    def raw_lines(self) -> Iterator[tuple[bytes, bool]]:
        # Rows are whole by construction: a transaction inserts a line completely or not at all.
        # Verify reads the lines in several passes while others may be appending: every call
        # yields the same records, those that existed at the first call.
        if self._pinned_size is None:
            self._pinned_size = self._index.size
        for line in self._stream(0, self._pinned_size):
            yield line, True

    @contextlib.contextmanager
    def writer(
        self, signer: SigningKey, *, clock: Clock = utc_now, lock_timeout: float = 120.0
    ) -> Iterator[LedgerWriter]:
        import psycopg

        conn = self.conn
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'")
                try:
                    conn.execute("SELECT size FROM custody_head WHERE id = 1 FOR UPDATE")
                except psycopg.errors.LockNotAvailable:
                    raise LedgerBusyError(
                        _(
                            "another custody process held the ledger for {lock_timeout:.0f} s"
                        ).format(lock_timeout=lock_timeout)
                    ) from None
                head = self._index.head()
                refuse_ended_signer(self, signer)
                writer = LedgerWriter(self, self._index, head, signer, clock, self._index.add)
                yield writer
                writer.flush()
        except (psycopg.OperationalError, ConnectionLostError) as exc:
            detail = getattr(exc, "detail", "") or " ".join(str(exc).split())[:200]
            raise LedgerError(
                _(
                    "the connection to the PostgreSQL ledger failed; nothing of this batch "
                    "was written (run the command again to resume): {detail}"
                ).format(detail=detail)
            ) from None

    def check_appendable(self, *, lock_timeout: float = 120.0) -> None:
        pass  # a transactional store never holds a torn record; the connection is open

    def repair(self, signer: SigningKey, *, clock: Clock = utc_now) -> SignedRecord | None:
        return None  # a transactional store never holds a torn record

    def store_token(self, token_file: str, raw: bytes) -> None:
        # In the database, so every machine of the case can check it; and a local copy for
        # the openssl commands of docs/timestamps-expert.md.
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO custody_tokens VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (token_file, raw),
            )
        super().store_token(token_file, raw)

    def read_token(self, token_file: str) -> bytes:
        row = self.conn.execute(
            "SELECT data FROM custody_tokens WHERE name = %s", (token_file,)
        ).fetchone()
        if row is not None:
            return bytes(row[0])
        return super().read_token(token_file)

    def dump(self, out: Path) -> tuple[int, str]:
        from custody.system.files import atomic_file

        digest = hashlib.sha256()
        count = 0
        try:
            # An unpredictable temporary name, O_EXCL|O_NOFOLLOW (custody.system.files).
            with atomic_file(out) as handle:
                for line in self._stream():
                    handle.write(line + b"\n")
                    digest.update(line + b"\n")
                    count += 1
        except OSError as exc:
            raise StorageError(describe_os_error(exc, "write", out)) from None
        return count, digest.hexdigest()

    def load(self, lines: Iterable[bytes]) -> int:
        """Load verified canonical lines into an empty database, in one transaction."""
        with self.conn.transaction():
            self.conn.execute("SELECT size FROM custody_head WHERE id = 1 FOR UPDATE")
            if self._index.head().size:
                raise UsageError(_("the database already holds a ledger; load needs an empty one"))
            batch: list[tuple[int, SignedRecord]] = []
            count = 0
            for line in lines:
                batch.append((0, SignedRecord.parse(line)))
                if len(batch) >= 2000:
                    self._index.add(batch)
                    count += len(batch)
                    batch = []
            if batch:
                self._index.add(batch)
                count += len(batch)
        return count


def _runs(ops: list[tuple[bool, str, int]]) -> list[tuple[bool, list[tuple[str, int]]]]:
    """Consecutive additions or removals of tags, as (adding, rows) in their order."""
    runs: list[tuple[bool, list[tuple[str, int]]]] = []
    for adding, tag, seq in ops:
        if not runs or runs[-1][0] != adding:
            runs.append((adding, []))
        runs[-1][1].append((tag, seq))
    return runs
