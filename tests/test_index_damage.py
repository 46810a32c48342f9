"""The ledger index is a cache, "rebuildable, never trusted" (docs/format.md §1).

Opening it reads only its header, its schema and one path down its largest trees (a
bounded probe: counting its tree nodes read every page of a 4.5 GB index on every
command). So damage deep inside a larger index shows only when a command reads the
damaged page: the index is then rebuilt from the ledger and the command answers as it
would with a sound index - never a traceback, never "internal error" (exit 70).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import PASSPHRASE, Result
from custody.errors import ExitCode, StorageError
from custody.keys.keyring import Keyring
from custody.ledger import merkle
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import ItemBody
from custody.ledger.index import LedgerIndex
from custody.ledger.records import Record, SignedRecord
from custody.root import EvidenceRoot

CLI = Callable[..., Result]
ITEMS = 2000


def _body(i: int) -> dict[str, object]:
    seed = f"bulk {i}".encode()
    return ItemBody(
        path=f"bulk/{i:05d}.txt",
        size=len(seed),
        mtime="2024-03-12T10:15:00.000000000Z",
        digests={
            "sha256": hashlib.sha256(seed).hexdigest(),
            "blake3": hashlib.sha3_256(seed).hexdigest(),  # well-formed; never re-hashed here
        },
    ).to_json()


@pytest.fixture
def grown(evidence: Path, cli: CLI) -> Path:
    """An evidence root whose ledger holds 2,000 item records and a checkpoint, indexed."""
    signer = Keyring().select(None).unlock(PASSPHRASE)
    with open_ledger(EvidenceRoot(evidence)) as ledger, ledger.writer(signer) as writer:
        for i in range(ITEMS):
            writer.append("item", _body(i))
        writer.checkpoint()
    assert cli("log", "--last", "1", "--root", evidence).code == 0  # the index, built
    return evidence


def _index(root: Path) -> Path:
    return root / ".custody" / "cache" / "index.sqlite"


def _ledger_size(root: Path) -> int:
    return (root / ".custody" / "ledger.jsonl").read_bytes().count(b"\n")


def _damage_page_holding(root: Path, table: str, seq: int) -> int:
    """Overwrite the leaf page of ``table`` that holds row ``seq``; return its number."""
    return _damage_page(_index(root), table, "seq < ?", (seq,))


def _damage_page(path: Path, table: str, before: str, params: tuple[int, ...]) -> int:
    """Overwrite the leaf page of ``table`` holding the first row not matching ``before``
    (the rows in key order, ``before`` a prefix of them)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    rank = db.execute(f"SELECT count(*) FROM {table} WHERE {before}", params).fetchone()[0]
    # Leaves in key order (their paths from the root sort so), with their row counts.
    leaves = db.execute(
        "SELECT pageno, ncell FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path",
        (table,),
    ).fetchall()
    db.close()
    pageno = None
    for leaf, cells in leaves:
        if rank < cells:
            pageno = leaf
            break
        rank -= cells
    assert pageno is not None, f"no such row in {table}"
    assert pageno > pages // 4, (pageno, pages)  # deep inside the file, not its header
    with open(path, "r+b") as handle:
        handle.seek((pageno - 1) * page_size)
        handle.write(b"\xff" * page_size)  # no valid page type: SQLITE_CORRUPT when read
    for sidecar in path.parent.glob("index.sqlite-*"):
        sidecar.unlink()
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        sqlite3.connect(path).execute("PRAGMA integrity_check").fetchall()
    return pageno


def _assert_rebuilt(root: Path) -> None:
    db = sqlite3.connect(_index(root))
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        size = db.execute("SELECT value FROM meta WHERE key = 'size'").fetchone()[0]
        assert int(size) == _ledger_size(root)
    finally:
        db.close()


def _clean(result: Result, code: int = 0) -> None:
    assert result.code == code, result.err
    assert "internal error" not in result.err and "Traceback" not in result.err, result.err


def test_log_and_show_read_past_a_damaged_page(grown: Path, cli: CLI) -> None:
    expected = cli("log", "--last", "700", "--root", grown, "--json")
    _clean(expected)
    start = _ledger_size(grown) - 700
    _damage_page_holding(grown, "records", start)
    result = cli("log", "--last", "700", "--root", grown, "--json")
    _clean(result)
    assert result.json() == expected.json()
    assert result.json()["records"][0]["seq"] == start
    _assert_rebuilt(grown)
    shown = cli("show", str(start), "--root", grown, "--json")
    _clean(shown)
    assert shown.json()["record"]["signed"]["seq"] == start


def test_proof_reads_past_a_damaged_page(grown: Path, cli: CLI, tmp_path: Path) -> None:
    seq = ITEMS // 2
    _damage_page_holding(grown, "records", seq)
    proof = tmp_path / "proof.json"
    _clean(cli("proof", "inclusion", str(seq), "--root", grown, "--out", proof))
    _assert_rebuilt(grown)
    _clean(cli("proof", "verify", proof))


def test_catalogue_reads_past_a_damaged_page(grown: Path, cli: CLI) -> None:
    name = "bulk/01000.txt"
    db = sqlite3.connect(_index(grown))
    (seq,) = db.execute("SELECT seq FROM items WHERE path = ?", (name.encode(),)).fetchone()
    db.close()
    _damage_page_holding(grown, "items", seq)
    changed = grown / name
    changed.parent.mkdir(exist_ok=True)
    changed.write_bytes(b"other bytes than the record says")
    result = cli("catalogue", changed, "--root", grown, "--json")
    # A recorded original whose bytes changed is a new version that a person must look
    # at (exit 1), exactly as with a sound index: the lookup found the earlier record.
    _clean(result, code=1)
    doc = result.json()
    assert (doc["added"], doc["versions"]) == (0, 1), doc
    assert [(i["kind"], i["related"]) for i in doc["items"]] == [("version", seq)], doc
    _assert_rebuilt(grown)
    latest = cli("log", "--last", "2", "--type", "item", "--root", grown, "--json").json()
    assert [r["seq"] for r in latest["records"]] == [_ledger_size(grown) - 2]


# --- found inside a write, and when it cannot be rebuilt ------------------------------------


def _synthetic(count: int) -> list[tuple[int, SignedRecord]]:
    """Well-formed records for the index alone (it files, it does not verify)."""
    entries, offset = [], 0
    for seq in range(count):
        line = f"synthetic ledger line {seq}".encode()
        body = {"root": "0" * 64, "tree_size": seq}
        record = Record(seq, "checkpoint", "2024-03-12T10:15:00.000000Z", "0" * 64, None, body)
        entries.append((offset, SignedRecord(record, bytes(64), line)))
        offset += len(line) + 1
    return entries


def test_damage_found_while_adding_is_rebuilt_and_filed_once(tmp_path: Path) -> None:
    """Adding leaf 1,001 reads leaf 1,000's node from a damaged page inside the write
    transaction: the index is rebuilt (here from all 1,002 records, as the store's sync
    would from the ledger), the add files nothing twice and the transaction ends cleanly."""
    entries = _synthetic(1002)
    rebuilds = []

    def rebuild(index: LedgerIndex) -> None:
        rebuilds.append(index.size)
        with index.transaction():
            index.add(entries)

    path = tmp_path / "index.sqlite"
    index = LedgerIndex(path)
    with index.transaction():
        index.add(entries[:1001])
    index.close()
    _damage_page(path, "nodes", "level = 0 AND idx < ?", (1000,))
    index = LedgerIndex(path, rebuild=rebuild)  # the bounded probe does not read that page
    with index.transaction():
        index.add(entries[1001:])
    assert rebuilds == [0]
    assert index.size == 1002
    expected = merkle.MemoryTree(signed.line for _, signed in entries)
    assert merkle.root_hash(index) == merkle.root_hash(expected)
    assert index.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert index.db.execute("SELECT count(*) FROM records").fetchone()[0] == 1002
    index.close()


def test_damage_that_cannot_be_rebuilt_is_a_one_line_error(tmp_path: Path) -> None:
    """Without the ledger to rebuild from, a damaged page is a StorageError naming the
    file (one line, exit 9), never a raw DatabaseError; the damaged file is removed."""
    path = tmp_path / "index.sqlite"
    index = LedgerIndex(path)
    with index.transaction():
        index.add(_synthetic(1001))
    index.close()
    _damage_page(path, "records", "seq < ?", (500,))
    index = LedgerIndex(path)
    with pytest.raises(StorageError, match="damaged") as caught:
        index.record_span(500)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == ExitCode.IO_ERROR
    index.close()
    assert LedgerIndex(path).size == 0  # removed: the next command rebuilds it
