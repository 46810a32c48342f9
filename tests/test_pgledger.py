"""The shared PostgreSQL ledger, against a real PostgreSQL server (tests/pg.py).

Every command on a ``postgresql://`` root; dumps that are the file ledger byte for byte;
load refusing what does not verify; eight real processes cataloguing into one database at
once; clients killed in the middle of a transaction; connection settings from the URL,
the environment, ``.pgpass`` and TLS; the Merkle node table rebuilt from the records.
Facts are checked from the outside where it matters: plain ``json``/``hashlib`` over the
dumped lines, SQL over the tables, and the CLI in real subprocesses for exit codes.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import PASSPHRASE, Result, copy_media, media_source, run_custody
from helpers import disclosures, files_under, merkle_root, one_line_error
from pg import (
    PASSWORD,
    PASSWORD_ROLE,
    TLS_ROLE,
    PgServer,
    db_name,
    free_port,
    pg_db,
    pg_db_factory,
    pg_server,
    wait_until,
)

# The fixtures come from tests/pg.py; naming them here registers them for this module.
__all__ = ["pg_db", "pg_db_factory", "pg_server"]

CLI = Callable[..., Result]
TABLES = (
    "custody_records",
    "custody_items",
    "custody_tags",
    "custody_keys",
    "custody_event_items",
    "custody_nodes",
)


# --- looking at the database and at line files from the outside ---------------------------


def sql(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return [tuple(r) for r in cur.fetchall()] if cur.description is not None else []


def db_lines(url: str) -> list[bytes]:
    return [bytes(r[0]) for r in sql(url, "SELECT line FROM custody_records ORDER BY seq")]


def file_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path} ends with a torn line"
    return data.split(b"\n")[:-1]


def check_chain(lines: list[bytes]) -> list[dict[str, Any]]:
    """Sequence 0..n-1 and each prev = SHA-256 of the line before (json + hashlib only)."""
    records = [json.loads(line) for line in lines]
    prev = None
    for i, (line, record) in enumerate(zip(lines, records, strict=True)):
        assert record["signed"]["seq"] == i, f"line {i} has seq {record['signed']['seq']}"
        assert record["signed"]["prev"] == prev, f"chain broken at {i}"
        prev = hashlib.sha256(line).hexdigest()
    return records


def item_paths(records: list[dict[str, Any]]) -> collections.Counter[bytes]:
    counts: collections.Counter[bytes] = collections.Counter()
    for r in records:
        if r["signed"]["type"] == "item":
            body = r["signed"]["body"]
            raw = body.get("path_bytes")
            counts[base64.b64decode(raw) if raw else body["path"].encode()] += 1
    return counts


def assert_consistent(url: str) -> list[bytes]:
    """The head, the records, the index and the Merkle nodes all agree; returns the lines."""
    size, last_hash = sql(url, "SELECT size, last_hash FROM custody_head WHERE id = 1")[0]
    lines = db_lines(url)
    check_chain(lines)
    assert size == len(lines)
    assert last_hash == (hashlib.sha256(lines[-1]).hexdigest() if lines else None)
    assert (
        sql(
            url,
            "SELECT count(*) FROM custody_records WHERE line_hash <> encode(sha256(line), 'hex')",
        )[0][0]
        == 0
    )
    items = sql(url, "SELECT count(*) FROM custody_records WHERE type = 'item'")[0][0]
    assert sql(url, "SELECT count(*) FROM custody_items")[0][0] == items
    # One node per perfect subtree: floor(size / 2^level) at each level, nothing else.
    per_level = dict(sql(url, "SELECT level, count(*) FROM custody_nodes GROUP BY level"))
    expected = {lvl: size >> lvl for lvl in range(max(size.bit_length(), 1)) if size >> lvl}
    assert per_level == expected
    if lines:
        from custody.ledger import merkle

        class Nodes:
            def __init__(self) -> None:
                self.size = size

            def node(self, level: int, index: int) -> bytes:
                rows = sql(
                    url,
                    "SELECT hash FROM custody_nodes WHERE level = %s AND idx = %s",
                    (level, index),
                )
                return bytes(rows[0][0])

        assert merkle.root_hash(Nodes()) == merkle_root(lines)
    return lines


def custody_backends(url: str) -> list[tuple[Any, ...]]:
    return sql(
        url,
        "SELECT pid, state, backend_xid, wait_event_type FROM pg_stat_activity "
        "WHERE datname = %s AND application_name = 'custody'",
        (db_name(url),),
    )


def verify_json(result: Result | subprocess.CompletedProcess[str]) -> dict[str, Any]:
    out = result.out if isinstance(result, Result) else result.stdout
    document: dict[str, Any] = json.loads(out)
    return document


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """A verify report without what differs between two roots holding one ledger: the path,
    and the check of remembered checkpoints (the second verification remembers the first)."""
    kept = {k: v for k, v in document.items() if k != "root"}
    kept["checks"] = [c for c in kept["checks"] if c["name"] != "remembered checkpoints"]
    return kept


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def pg_root(tmp_path: Path, cli: CLI, pg_db: str) -> Path:
    """An evidence root whose ledger is in a fresh database, one key, a copy of the media."""
    root = tmp_path / "evidence"
    result = cli("init", root, "--ledger", pg_db)
    assert result.code == 0, result.err
    assert cli("keys", "generate", "--name", "alice").code == 0
    copy_media(media_source(), root / "media")
    return root


@pytest.fixture(scope="session")
def pg_template(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, str]]:
    """Catalogued once per session: a root, its keyring home and its database (a template)."""
    base = tmp_path_factory.mktemp("pg-template")
    root, home, name = base / "evidence", base / "home", "custody_template"
    url = pg_server.create_database(name)
    env = {"CUSTODY_HOME": str(home), "CUSTODY_PASSPHRASE": PASSPHRASE}
    for argv in (
        ("init", root, "--ledger", url),
        ("keys", "generate", "--name", "alice"),
        ("catalogue", root / "media", "--root", root, "--collector", "Alice"),
    ):
        if argv[0] == "catalogue":
            copy_media(media_source(), root / "media")
        result = run_custody(*argv, env=env)
        assert result.returncode == 0, result.stderr
    yield root, home, name
    pg_server.drop_database(name)


@pytest.fixture
def pg_catalogued(
    pg_template: tuple[Path, Path, str], pg_server: PgServer, env: Path, tmp_path: Path
) -> Iterator[Path]:
    """A catalogued PostgreSQL root of its own: the template's database, root and key, copied."""
    template_root, template_home, template_db = pg_template
    name = f"custody_c{os.getpid()}_{next(_clones)}"
    url = pg_server.clone_database(template_db, name)
    root = tmp_path / "evidence"
    shutil.copytree(template_root, root, symlinks=True)
    shutil.copytree(template_home, env)
    config = root / ".custody" / "config.toml"
    config.write_text(config.read_text().replace(pg_server.url(template_db), url))
    assert url_of(root) == url
    # This person uses this database for this root (as 'custody init --ledger' records it).
    from custody.root import EvidenceRoot
    from custody.trust.databases import remember_ledger

    remember_ledger(EvidenceRoot(root.resolve()), url, env / "config.toml")
    try:
        yield root
    finally:
        pg_server.drop_database(name)


_clones = iter(range(1_000_000))


def url_of(root: Path) -> str:
    import tomllib

    config = tomllib.loads((root / ".custody" / "config.toml").read_text())
    url: str = config["ledger"]["backend"]
    return url


# --- every command on the PostgreSQL store ----------------------------------------------------


def test_every_command_works_on_a_postgresql_ledger(
    pg_catalogued: Path, cli: CLI, tmp_path: Path
) -> None:
    root = pg_catalogued
    url = url_of(root)
    assert url.startswith("postgresql://") and "@" in url
    # The file ledger stays empty: the lines are in the database.
    assert (root / ".custody" / "ledger.jsonl").read_bytes() == b""
    lines = assert_consistent(url)
    records = check_chain(lines)
    media_files = {b"media/" + name for name in files_under(root / "media")}
    assert set(item_paths(records)) == media_files
    assert max(item_paths(records).values()) == 1

    verified = cli("verify", "--root", root, "--json")
    assert verified.code == 0, verified.out
    report = verify_json(verified)
    assert report["ledger_size"] == len(lines)
    assert report["tree_root"] == merkle_root(lines).hex()
    assert report["files_checked"] == len(media_files)

    log = cli("log", "--root", root, "--json")
    assert log.code == 0
    assert [r["seq"] for r in log.json()["records"]] == list(range(len(lines)))
    item_seq = next(r["signed"]["seq"] for r in records if r["signed"]["type"] == "item")
    item_path = records[item_seq]["signed"]["body"]["path"]
    shown = cli("show", str(item_seq), "--root", root, "--json")
    assert shown.code == 0
    assert json.dumps(shown.json()["record"], separators=(",", ":"), sort_keys=True) == (
        json.dumps(json.loads(lines[item_seq]), separators=(",", ":"), sort_keys=True)
    )
    history = cli("history", item_path, "--root", root, "--json")
    assert history.code == 0 and history.json()["item"] == item_seq

    proof = tmp_path / "proof.json"
    assert cli("proof", "inclusion", str(item_seq), "--root", root, "--out", proof).code == 0
    document = json.loads(proof.read_text())
    assert document["record_line"].encode() == lines[item_seq]
    checked = cli("proof", "verify", proof)
    assert checked.code == 0, checked.out + checked.err
    assert cli("proof", "consistency", "3", "--root", root, "--json").code == 0

    noted = cli(
        "event",
        "note",
        item_path,
        "--text",
        "viewed on the shared ledger",
        "--root",
        root,
        "--json",
    )
    assert noted.code == 0, noted.err
    event_seq = noted.json()["seq"]
    assert sql(url, "SELECT event FROM custody_event_items WHERE item = %s", (item_seq,)) == [
        (event_seq,)
    ]
    signed = cli("sign", "--root", root, "--json")
    assert signed.code == 0, signed.err

    bundle = tmp_path / "bundle"
    exported = cli("export", "--all", "--out", bundle, "--root", root)
    assert exported.code == 0, exported.err
    bundle_check = cli("verify", bundle, "--json")
    assert bundle_check.code == 0, bundle_check.out
    assert cli("verify", "--root", root).code == 0
    assert_consistent(url)


# --- dump and load ----------------------------------------------------------------------------


def test_dump_is_a_file_ledger_that_verifies_the_same(
    pg_catalogued: Path, cli: CLI, tmp_path: Path
) -> None:
    from custody.findings import VerificationResult
    from custody.ledger.checks import verify_ledger_lines
    from custody.ledger.filestore import iter_raw_lines

    root = pg_catalogued
    assert cli("sign", "--root", root, "--statement", "before the dump").code == 0
    dump = tmp_path / "ledger.dump"
    dumped = cli("ledger", "dump", "--out", dump, "--root", root, "--json")
    assert dumped.code == 0, dumped.err
    data = dump.read_bytes()
    lines = assert_consistent(url_of(root))
    assert data == b"".join(line + b"\n" for line in lines)
    assert dumped.json()["records"] == len(lines)
    assert dumped.json()["sha256"] == hashlib.sha256(data).hexdigest()

    # The library's verifier, straight on the file.
    result = VerificationResult(root=str(dump))
    verify_ledger_lines(
        lambda: ((r.data, r.complete) for r in iter_raw_lines(dump)), result, collect_items=False
    )
    assert result.ok, [f.to_json() for f in result.findings]

    # A file-ledger root holding the dump and the same media verifies exactly as the database.
    file_root = tmp_path / "file-root"
    assert cli("init", file_root).code == 0
    copy_media(media_source(), file_root / "media")
    (file_root / ".custody" / "ledger.jsonl").write_bytes(data)
    on_db = cli("verify", "--root", root, "--json")
    on_file = cli("verify", "--root", file_root, "--json")
    assert on_db.code == on_file.code == 0
    db_report, file_report = verify_json(on_db), verify_json(on_file)
    assert db_report["findings"] == file_report["findings"]
    assert db_report["tree_root"] == file_report["tree_root"] == merkle_root(lines).hex()
    assert db_report["ledger_size"] == file_report["ledger_size"] == len(lines)
    assert comparable(db_report) == comparable(file_report)
    # And the derived indexes answer alike: log, and an inclusion proof for every kind.
    assert cli("log", "--root", root, "--json").out == cli("log", "--root", file_root, "--json").out
    for seq in (0, 1, len(lines) // 2, len(lines) - 2):
        a = cli("proof", "inclusion", str(seq), "--root", root, "--json")
        b = cli("proof", "inclusion", str(seq), "--root", file_root, "--json")
        assert a.code == b.code == 0 and a.out == b.out
    # The file root's own dump is the same bytes again.
    again = tmp_path / "again.dump"
    assert cli("ledger", "dump", "--out", again, "--root", file_root).code == 0
    assert again.read_bytes() == data


def test_load_then_dump_gives_identical_bytes_and_tables(
    pg_catalogued: Path, cli: CLI, tmp_path: Path, pg_db_factory: Callable[[], str]
) -> None:
    first_url = url_of(pg_catalogued)
    dump = tmp_path / "first.dump"
    assert cli("ledger", "dump", "--out", dump, "--root", pg_catalogued).code == 0
    second = tmp_path / "second"
    second_url = pg_db_factory()
    assert cli("init", second, "--ledger", second_url).code == 0
    loaded = cli("ledger", "load", dump, "--root", second, "--json")
    assert loaded.code == 0, loaded.err
    assert loaded.json()["loaded"] == len(file_lines(dump))
    redump = tmp_path / "second.dump"
    assert cli("ledger", "dump", "--out", redump, "--root", second).code == 0
    assert redump.read_bytes() == dump.read_bytes()
    assert_consistent(second_url)
    for table in ("custody_head", *TABLES):
        ordered = (
            f"SELECT * FROM {table} ORDER BY 1, 2"
            if table != "custody_head"
            else (f"SELECT * FROM {table}")
        )
        assert sql(first_url, ordered) == sql(second_url, ordered), table


def test_a_file_ledger_loads_into_postgresql_byte_for_byte(
    cli: CLI, tmp_path: Path, pg_db: str
) -> None:
    file_root = tmp_path / "file-root"
    assert cli("init", file_root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    copy_media(media_source(), file_root / "media")
    assert cli("catalogue", file_root / "media", "--root", file_root).code == 0
    file_ledger = (file_root / ".custody" / "ledger.jsonl").read_bytes()
    db_root = tmp_path / "db-root"
    assert cli("init", db_root, "--ledger", pg_db).code == 0
    copy_media(media_source(), db_root / "media")
    assert (
        cli("ledger", "load", file_root / ".custody" / "ledger.jsonl", "--root", db_root).code == 0
    )
    assert b"".join(line + b"\n" for line in assert_consistent(pg_db)) == file_ledger
    on_file = verify_json(cli("verify", "--root", file_root, "--json"))
    on_db = verify_json(cli("verify", "--root", db_root, "--json"))
    assert comparable(on_file) == comparable(on_db)
    # Appending continues the same chain in the database.
    assert cli("sign", "--root", db_root).code == 0
    lines = assert_consistent(pg_db)
    assert lines[:-1] == file_lines(file_root / ".custody" / "ledger.jsonl")


def empty(url: str) -> bool:
    head = sql(url, "SELECT size, last_hash FROM custody_head")
    return head == [(0, None)] and all(
        sql(url, f"SELECT count(*) FROM {t}")[0][0] == 0 for t in TABLES
    )


@pytest.mark.parametrize("damage", ["altered", "removed", "reordered", "torn", "resigned"])
def test_load_refuses_a_dump_that_does_not_verify(
    pg_catalogued: Path,
    cli: CLI,
    tmp_path: Path,
    pg_db_factory: Callable[[], str],
    damage: str,
) -> None:
    dump = tmp_path / "good.dump"
    assert cli("ledger", "dump", "--out", dump, "--root", pg_catalogued).code == 0
    lines = file_lines(dump)
    if damage == "altered":  # one digit of one item's size
        i = next(i for i, line in enumerate(lines) if b'"type":"item"' in line)
        lines[i] = lines[i].replace(b'"size":', b'"size":1', 1)
        data = b"".join(line + b"\n" for line in lines)
    elif damage == "removed":
        del lines[len(lines) // 2]
        data = b"".join(line + b"\n" for line in lines)
    elif damage == "reordered":
        lines[3], lines[4] = lines[4], lines[3]
        data = b"".join(line + b"\n" for line in lines)
    elif damage == "torn":  # the last line cut off mid-record
        data = b"".join(line + b"\n" for line in lines)[:-40]
    else:  # a record signed by a key the ledger never introduced, chain kept intact
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        record = json.loads(lines[-1])
        stranger = Ed25519PrivateKey.generate()
        record["signed"]["signer"] = "ab" * 32
        signed = json.dumps(record["signed"], separators=(",", ":"), sort_keys=True).encode()
        record["sig"] = base64.b64encode(stranger.sign(signed)).decode()
        lines[-1] = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
        data = b"".join(line + b"\n" for line in lines)
    bad = tmp_path / "bad.dump"
    bad.write_bytes(data)
    target = tmp_path / "target"
    url = pg_db_factory()
    assert cli("init", target, "--ledger", url).code == 0
    refused = run_custody("ledger", "load", bad, "--root", target)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert one_line_error(refused.stderr).endswith("does not verify; nothing was loaded")
    assert empty(url)
    # The intact dump still loads into that database afterwards.
    assert cli("ledger", "load", dump, "--root", target).code == 0
    assert assert_consistent(url) == file_lines(dump)


def test_load_refuses_a_database_that_is_not_empty(
    pg_catalogued: Path, cli: CLI, tmp_path: Path
) -> None:
    url = url_of(pg_catalogued)
    dump = tmp_path / "dump"
    assert cli("ledger", "dump", "--out", dump, "--root", pg_catalogued).code == 0
    before = {t: sql(url, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
    refused = run_custody("ledger", "load", dump, "--root", pg_catalogued)
    assert refused.returncode == 2
    assert "already holds a ledger" in one_line_error(refused.stderr)
    assert {t: sql(url, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES} == before
    assert_consistent(url)


def test_load_is_only_for_a_postgresql_root(cli: CLI, tmp_path: Path) -> None:
    root = tmp_path / "file-root"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    assert cli("sign", "--root", root).code == 0
    result = run_custody("ledger", "load", root / ".custody" / "ledger.jsonl", "--root", root)
    assert result.returncode == 2
    assert "PostgreSQL" in one_line_error(result.stderr)


def test_the_merkle_node_table_is_rebuilt_from_the_records(
    pg_catalogued: Path, cli: CLI, tmp_path: Path, pg_db_factory: Callable[[], str]
) -> None:
    root = pg_catalogued
    url = url_of(root)
    original = sql(url, "SELECT level, idx, hash FROM custody_nodes ORDER BY level, idx")
    proof_before = cli("proof", "inclusion", "7", "--root", root, "--json")
    assert proof_before.code == 0
    sql(url, "DELETE FROM custody_nodes")
    # Without its nodes the store says what is wrong and how to rebuild - no traceback.
    broken = run_custody("proof", "inclusion", "7", "--root", root)
    assert broken.returncode == 3
    message = one_line_error(broken.stderr)
    assert "custody_nodes" in message and "ledger load" in message
    # The lines alone are enough: dump (never needs the nodes), load into an empty database.
    dump = tmp_path / "dump"
    assert cli("ledger", "dump", "--out", dump, "--root", root).code == 0
    rebuilt_root = tmp_path / "rebuilt"
    rebuilt_url = pg_db_factory()
    assert cli("init", rebuilt_root, "--ledger", rebuilt_url).code == 0
    assert cli("ledger", "load", dump, "--root", rebuilt_root).code == 0
    assert (
        sql(rebuilt_url, "SELECT level, idx, hash FROM custody_nodes ORDER BY level, idx")
        == original
    )
    proof_after = cli("proof", "inclusion", "7", "--root", rebuilt_root, "--json")
    assert proof_after.out == proof_before.out
    proof = tmp_path / "proof.json"
    proof.write_text(proof_after.out)
    assert cli("proof", "verify", proof).code == 0
    # The same database, emptied and reloaded, proves again too.
    sql(url, "TRUNCATE " + ", ".join(TABLES))
    sql(url, "UPDATE custody_head SET size = 0, last_hash = NULL")
    assert cli("ledger", "load", dump, "--root", root).code == 0
    assert sql(url, "SELECT level, idx, hash FROM custody_nodes ORDER BY level, idx") == original
    assert cli("proof", "inclusion", "7", "--root", root, "--json").out == proof_before.out
    assert cli("verify", "--root", root).code == 0


# --- many writers at once ---------------------------------------------------------------------


def test_eight_processes_catalogue_overlapping_folders_into_one_database(
    pg_db: str, tmp_path: Path, env: Path
) -> None:
    """Four machines (roots, keyrings), two processes each, overlapping folders, one DB."""
    source = media_source()
    folders = sorted(p.name for p in source.iterdir() if p.is_dir())
    assert len(folders) >= 2
    machines = []
    for m in range(4):
        root, home = tmp_path / f"machine{m}", tmp_path / f"home{m}"
        machine_env = {"CUSTODY_HOME": str(home)}
        assert run_custody("init", root, "--ledger", pg_db, env=machine_env).returncode == 0
        made = run_custody("keys", "generate", "--name", f"documenter{m}", env=machine_env)
        assert made.returncode == 0, made.stderr
        copy_media(source, root / "media")
        machines.append((root, machine_env))
    procs = []
    for i in range(8):
        root, machine_env = machines[i % 4]
        # Two folders each, every folder in several processes, no two processes alike.
        chosen = {folders[i % len(folders)], folders[(i + 1 + i // 4) % len(folders)]}
        argv = [
            sys.executable,
            "-m",
            "custody",
            "catalogue",
            *[str(root / "media" / f) for f in sorted(chosen)],
            "--root",
            str(root),
            "--collector",
            f"process {i}",
            "--json",
        ]
        procs.append(
            subprocess.Popen(
                argv,
                env={**os.environ, **machine_env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        if proc.returncode == 2:
            # Other processes had recorded every file it was given before it looked: its
            # --collector applied to nothing, and custody refuses an option with no effect.
            assert "did not apply to the" in err and "already catalogued and unchanged" in err
            continue
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    assert len(reports) >= 2

    lines = assert_consistent(pg_db)  # sequence 0..n-1, chain, head, index, nodes
    records = check_chain(lines)
    counts = item_paths(records)
    expected = {b"media/" + name for name in files_under(machines[0][0] / "media")}
    assert set(counts) == expected
    assert set(counts.values()) == {1}, [p for p, n in counts.items() if n > 1]
    # Each file was recorded by exactly one process; the others saw it was already there.
    assert sum(r["added"] + r["duplicates"] + r["versions"] for r in reports) == len(expected)
    assert sorted(seq for r in reports for seq in (o["seq"] for o in r["items"])) == sorted(
        r["signed"]["seq"] for r in records if r["signed"]["type"] == "item"
    )
    # They really competed: items from several processes, in interleaved transactions.
    # (Each machine keeps the disclosures of the commitments it wrote beside its root.)
    kept: dict[str, tuple[str, Any]] = {}
    for root, _ in machines:
        kept.update(disclosures(root / ".custody" / "disclosures.jsonl"))
    collectors = [
        kept[r["signed"]["body"]["commitments"]["collector"]][1]
        for r in records
        if r["signed"]["type"] == "item"
    ]
    assert len(set(collectors)) >= 2
    # A key is introduced once, before it signs, even with two processes per key.
    introduced = [
        r["signed"]["body"]["fingerprint"] for r in records if r["signed"]["type"] == "key"
    ]
    assert len(introduced) == len(set(introduced)) <= 4
    known: set[str] = set()
    for r in records:
        if r["signed"]["type"] == "key":
            known.add(r["signed"]["body"]["fingerprint"])
        assert r["signed"]["signer"] in known
    # Every machine verifies the shared ledger against its own copy of the files.
    verifiers = [
        subprocess.Popen(
            [sys.executable, "-m", "custody", "verify", "--root", str(root), "--json"],
            env={**os.environ, **machine_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for root, machine_env in machines
    ]
    for verifier in verifiers:
        out, _ = verifier.communicate(timeout=300)
        # Intact; the other machines' keys introduced themselves, so until each machine
        # trusts its colleagues ('custody trust add') their signers are not confirmed.
        assert verifier.returncode == 10 and json.loads(out)["intact"], out
        assert json.loads(out)["tree_root"] == merkle_root(lines).hex()


def test_concurrent_init_against_one_database(pg_db_factory: Callable[[], str]) -> None:
    """Documenters running 'custody init --ledger URL' at the same moment all succeed."""
    import multiprocessing

    from custody.ledger.pgstore import create_schema

    context = multiprocessing.get_context("fork")
    for _round in range(3):
        url = pg_db_factory()
        with context.Pool(8) as pool:
            outcomes = pool.map(_create_schema_or_error, [url] * 8)
        assert outcomes == [0] * 8, outcomes
        assert create_schema(url) == 0


def _create_schema_or_error(url: str) -> int | str:
    from custody.ledger.pgstore import create_schema

    try:
        return create_schema(url)
    except Exception as exc:  # reported to the parent as text
        return repr(exc)


def test_verify_while_another_machine_appends(pg_catalogued: Path, cli: CLI) -> None:
    """A verify running while others append checks one consistent prefix: no false finding."""
    root = pg_catalogued
    churn = subprocess.Popen(
        [sys.executable, "-c", CHURN, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert churn.stdout is not None
        first = churn.stdout.readline().strip()
        assert first == "appending", churn.stderr.read() if churn.stderr else first
        for _ in range(4):
            result = cli("verify", "--root", root, "--ledger-only", "--json")
            report = verify_json(result)
            errors = [f for f in report["findings"] if f["severity"] == "error"]
            # Intact; the visitors' self-introduced keys are not confirmed (exit 10).
            assert result.code == 10 and report["intact"] and not errors, errors
        assert churn.poll() is None, churn.stderr.read() if churn.stderr else ""
    finally:
        churn.kill()
        churn.wait()
    lines = assert_consistent(url_of(root))
    assert sum(b'"type":"key"' in line for line in lines) > 3  # new keys kept arriving


# A second machine: every round a new key introduces itself and signs a checkpoint.
CHURN = r"""
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from custody.keys.keyring import PublicKey, SigningKey
from custody.ledger.backends import open_ledger
from custody.root import find_root

root = find_root(explicit=sys.argv[1])
n = 0
with open_ledger(root) as ledger:
    while True:
        private = Ed25519PrivateKey.generate()
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        with ledger.writer(SigningKey(PublicKey(raw, f"visitor{n}", "documenter"), private)) as w:
            w.checkpoint()
        if n == 0:
            print("appending", flush=True)
        n += 1
"""


# --- clients killed mid-transaction --------------------------------------------------------


# Holds the head row locked with records inserted but not committed, until killed.
HOLDER = r"""
import os, sys, time
from custody.keys.keyring import Keyring
from custody.ledger.backends import open_ledger
from custody.root import find_root

root = find_root(explicit=sys.argv[1])
signer = Keyring().select(None).unlock(os.environ["CUSTODY_PASSPHRASE"])
with open_ledger(root) as ledger, ledger.writer(signer) as writer:
    for _ in range(5):
        writer.checkpoint("never committed")
    writer.flush()
    print("holding", writer.size, flush=True)
    time.sleep(600)
"""


def test_a_client_killed_holding_the_head_lock_leaves_nothing(
    pg_catalogued: Path, tmp_path: Path
) -> None:
    root = pg_catalogued
    url = url_of(root)
    before = assert_consistent(url)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        assert line.startswith("holding"), holder.stderr.read() if holder.stderr else line
        assert int(line.split()[1]) == len(before) + 5
        # Its records are in the database, uncommitted: nobody else sees them.
        assert wait_until(
            lambda: any(
                b[1] == "idle in transaction" and b[2] is not None for b in custody_backends(url)
            )
        )
        assert len(db_lines(url)) == len(before)
        # A second writer queues behind the lock ...
        waiting = subprocess.Popen(
            [sys.executable, "-m", "custody", "sign", "--root", str(root), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert wait_until(lambda: any(b[3] == "Lock" for b in custody_backends(url)))
        time.sleep(0.2)
        assert waiting.poll() is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # ... and goes ahead as soon as the server has rolled the dead client's work back.
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    lines = assert_consistent(url)
    assert lines[: len(before)] == before
    assert len(lines) == len(before) + 1
    assert json.loads(out)["seq"] == len(before)
    assert not any(b"never committed" in line for line in lines)
    assert run_custody("verify", "--root", root).returncode == 0


def test_catalogue_killed_mid_transaction_resumes(pg_root: Path, cli: CLI) -> None:
    """SIGKILL a catalogue while its transaction has written rows, several times; re-run."""
    root = pg_root
    url = url_of(root)
    bulk = root / "bulk"
    for i in range(240):
        folder = bulk / f"d{i // 40:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note-{i:04d}.txt").write_text(f"field note {i}\n" * (1 + i % 5))
    argv = [
        sys.executable,
        "-m",
        "custody",
        "catalogue",
        str(bulk),
        str(root / "media"),
        "--root",
        str(root),
    ]
    seed = int(os.environ.get("CUSTODY_TEST_SEED") or time.time_ns() % 100_000)
    rng = random.Random(seed)
    kills = 0
    for attempt in range(4):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if attempt < 3:
            # Wait for a transaction that has inserted rows and not committed, then kill.
            def writing(proc: subprocess.Popen[bytes] = proc) -> bool:
                return proc.poll() is not None or any(
                    b[2] is not None for b in custody_backends(url)
                )

            assert wait_until(writing, timeout=60, step=0.002)
        else:
            time.sleep(rng.uniform(0.2, 1.5))  # and once at a random moment (CUSTODY_TEST_SEED)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        # The server notices the dead client and rolls its transaction back.
        assert wait_until(lambda: not custody_backends(url), timeout=30)
        lines = assert_consistent(url)  # only whole, committed records; head agrees
        counts = item_paths(check_chain(lines))
        assert set(counts.values()) <= {1}
        if lines:
            ledger_check = run_custody("verify", "--root", root, "--ledger-only", "--json")
            report = verify_json(ledger_check)
            assert [f for f in report["findings"] if f["severity"] == "error"] == []
    assert kills >= 3
    # Re-running completes the set: every file exactly once, and everything verifies.
    final = cli("catalogue", bulk, root / "media", "--root", root, "--json")
    assert final.code == 0, final.err
    lines = assert_consistent(url)
    counts = item_paths(check_chain(lines))
    expected = {b"bulk/" + n for n in files_under(bulk)} | {
        b"media/" + n for n in files_under(root / "media")
    }
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert cli("verify", "--root", root).code == 0


def test_a_lost_connection_is_one_clear_error_and_the_run_resumes(pg_root: Path, cli: CLI) -> None:
    root = pg_root
    url = url_of(root)
    bulk = root / "bulk"
    bulk.mkdir()
    for i in range(300):
        (bulk / f"n{i:04d}.txt").write_text(f"note {i}\n")
    argv = [sys.executable, "-m", "custody", "catalogue", str(bulk), "--root", str(root)]
    outcomes = []
    for phase in ("writing", "reading"):
        if phase == "reading":
            # Everything known: the run only looks files up, outside any transaction.
            assert cli("catalogue", bulk, "--root", root).code == 0
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        writing = phase == "writing"  # else: connected, only reading

        def ready(proc: subprocess.Popen[str] = proc, writing: bool = writing) -> bool:
            backends = custody_backends(url)
            return proc.poll() is not None or any(b[2] is not None or not writing for b in backends)

        assert wait_until(ready, timeout=60, step=0.002)
        sql(
            url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'custody'",
            (db_name(url),),
        )
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            continue  # finished before the cut: nothing to observe this round
        outcomes.append(phase)
        assert proc.returncode == 3, err
        message = one_line_error(err)
        assert "connection" in message and "again" in message
        assert_consistent(url)
    assert "writing" in outcomes
    final = cli("catalogue", bulk, "--root", root, "--json")
    assert final.code == 0
    counts = item_paths(check_chain(assert_consistent(url)))
    assert set(counts) == {b"bulk/" + n for n in files_under(bulk)}
    assert set(counts.values()) == {1}


def test_a_writer_that_cannot_get_the_head_lock_gives_up_cleanly(pg_catalogued: Path) -> None:
    from custody.errors import ExitCode, LedgerBusyError
    from custody.keys.keyring import Keyring
    from custody.ledger.backends import open_ledger
    from custody.root import find_root

    root = find_root(explicit=str(pg_catalogued))
    signer = Keyring().select(None).unlock(PASSPHRASE)
    with open_ledger(root) as first, first.writer(signer) as holding:
        holding.checkpoint("first")
        holding.flush()
        second = open_ledger(root)
        try:
            with pytest.raises(LedgerBusyError) as caught, second.writer(signer, lock_timeout=0.5):
                pass
        finally:
            second.close()
        assert caught.value.exit_code == ExitCode.LEDGER_BUSY
    assert_consistent(url_of(pg_catalogued))


# --- connection settings, errors and TLS ----------------------------------------------------


def _no_root_written(path: Path) -> bool:
    return not (path / ".custody").exists()


def test_unreachable_server_is_one_line_exit_3(
    tmp_path: Path, pg_server: PgServer, env: Path
) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/custody"
    cases = {
        "closed port": closed,
        "unknown host": f"postgresql://postgres@no-such-host.invalid:{pg_server.port}/custody",
        "no such database": pg_server.url("no_such_database"),
        "wrong password": pg_server.url("postgres", user=f"{PASSWORD_ROLE}:not-the-password"),
        "no password": pg_server.url("postgres", user=PASSWORD_ROLE),
    }
    for name, url in cases.items():
        target = tmp_path / name.replace(" ", "-")
        result = run_custody(
            "init",
            target,
            "--ledger",
            url,
            env={"PGPASSFILE": str(tmp_path / "none"), "PGPASSWORD": ""},
        )
        assert result.returncode == 3, (name, result.stderr)
        message = one_line_error(result.stderr)
        assert message.startswith("custody: error: cannot reach the PostgreSQL ledger"), name
        assert "not-the-password" not in result.stderr
        assert _no_root_written(target), name


def test_a_root_whose_server_went_away(pg_catalogued: Path) -> None:
    config = pg_catalogued / ".custody" / "config.toml"
    url = url_of(pg_catalogued)
    port = url.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    moved = url.replace(f":{port}/", f":{free_port()}/")
    config.write_text(config.read_text().replace(url, moved))
    for argv in (
        ("log",),
        ("verify", "--ledger", moved),  # confirmed by this person, but unreachable
        ("sign",),
        ("catalogue", str(pg_catalogued / "media")),
        ("ledger", "dump", "--out", str(pg_catalogued.parent / "x")),
    ):
        result = run_custody(*argv, "--root", pg_catalogued)
        assert result.returncode == 3, (argv, result.stderr)
        assert "cannot reach the PostgreSQL ledger" in one_line_error(result.stderr)


def test_password_from_pgpass_and_port_from_pgport(
    tmp_path: Path, pg_server: PgServer, pg_db: str, env: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    pgpass = home / ".pgpass"
    pgpass.write_text(f"127.0.0.1:{pg_server.port}:*:{PASSWORD_ROLE}:{PASSWORD}\n")
    pgpass.chmod(0o600)
    url = f"postgresql://{PASSWORD_ROLE}@127.0.0.1/{db_name(pg_db)}"  # no port, no password
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    run_env.update(HOME=str(home), PGPORT=str(pg_server.port))

    def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "custody", *map(str, argv)],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    root = tmp_path / "root"
    assert run("init", root, "--ledger", url).returncode == 0
    assert PASSWORD not in (root / ".custody" / "config.toml").read_text()
    assert run("keys", "generate", "--name", "alice").returncode == 0
    assert run("sign", "--root", root).returncode == 0
    assert len(assert_consistent(pg_db)) == 2
    # Without the port variable the same URL goes to the default port, where nothing listens.
    run_env.pop("PGPORT")
    assert run("log", "--root", root).returncode == 3
    # PGPASSWORD instead of .pgpass, and PGHOST/PGPORT/PGUSER/PGDATABASE filling a bare URL.
    pgpass.unlink()
    run_env.update(PGPORT=str(pg_server.port), PGPASSWORD=PASSWORD)
    assert run("sign", "--root", root).returncode == 0
    bare = tmp_path / "bare"
    run_env.update(PGHOST="127.0.0.1", PGUSER=PASSWORD_ROLE, PGDATABASE=db_name(pg_db))
    assert run("init", bare, "--ledger", "postgresql://").returncode == 0
    logged = run("log", "--root", bare, "--json")
    assert logged.returncode == 0
    assert len(json.loads(logged.stdout)["records"]) == 3
    run_env["PGPASSWORD"] = "wrong"
    denied = run("log", "--root", bare)
    assert denied.returncode == 3
    assert "password authentication failed" in one_line_error(denied.stderr)


def test_tls_is_honoured(tmp_path: Path, pg_server: PgServer, pg_db: str, env: Path) -> None:
    database = db_name(pg_db)
    ca = str(pg_server.ca_file)
    good = (
        f"postgresql://{TLS_ROLE}@localhost:{pg_server.port}/{database}"
        f"?sslmode=verify-full&sslrootcert={ca}"
    )
    root = tmp_path / "tls"
    made = run_custody("init", root, "--ledger", good)
    assert made.returncode == 0, made.stderr
    assert run_custody("keys", "generate", "--name", "alice").returncode == 0
    assert run_custody("sign", "--root", root).returncode == 0
    ssl_rows = sql(pg_db, "SELECT count(*) FROM pg_stat_ssl")
    assert ssl_rows[0][0] >= 1
    # This role is refused without TLS; the server's certificate must match the CA given.
    plain = pg_server.url(database, user=TLS_ROLE, sslmode="disable")
    refused = run_custody("init", tmp_path / "plain", "--ledger", plain)
    assert refused.returncode == 3
    assert "no encryption" in one_line_error(refused.stderr)
    other_ca = tmp_path / "other-ca.crt"
    from pg import _write_tls_files

    (tmp_path / "other").mkdir()
    other_ca.write_bytes(_write_tls_files(tmp_path / "other")[0].read_bytes())
    wrong = good.replace(ca, str(other_ca))
    assert run_custody("log", "--root", root).returncode == 0
    config = root / ".custody" / "config.toml"
    config.write_text(config.read_text().replace(ca, str(other_ca)))
    assert url_of(root) == wrong
    rejected = run_custody("log", "--root", root)
    assert rejected.returncode == 3
    assert "SSL error" in one_line_error(rejected.stderr)
    # PGSSLMODE from the environment applies to a URL that does not say.
    no_mode = pg_server.url(database, user=TLS_ROLE)
    env_refused = run_custody(
        "init", tmp_path / "env-plain", "--ledger", no_mode, env={"PGSSLMODE": "disable"}
    )
    assert env_refused.returncode == 3
    assert (
        run_custody(
            "init", tmp_path / "env-tls", "--ledger", no_mode, env={"PGSSLMODE": "require"}
        ).returncode
        == 0
    )


def test_a_documenter_role_that_may_only_append_joins_an_existing_case(
    pg_catalogued: Path, pg_server: PgServer, pg_db_factory: Callable[[], str], tmp_path: Path
) -> None:
    """The owner creates the tables once; other roles need only SELECT/INSERT/UPDATE."""
    url = url_of(pg_catalogued)
    role = f"custody_doc_{os.getpid()}"
    database = db_name(url)
    with pg_server.admin() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        with pg_server.admin(database) as conn:
            conn.execute(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role}")
        joined = tmp_path / "documenter"
        home = {"CUSTODY_HOME": str(tmp_path / "documenter-home")}
        made = run_custody("init", joined, "--ledger", pg_server.url(database, user=role))
        assert made.returncode == 0, made.stderr
        assert run_custody("keys", "generate", "--name", "bob", env=home).returncode == 0
        copy_media(media_source(), joined / "media")
        (joined / "media" / "new-note.txt").write_text("taken by bob\n")
        added = run_custody("catalogue", joined / "media", "--root", joined, "--json", env=home)
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["added"] == 1
        assert_consistent(url)
        # On a database without the tables, that role gets one clear line, not a traceback.
        fresh = db_name(pg_db_factory())
        refused = run_custody("init", tmp_path / "x", "--ledger", pg_server.url(fresh, user=role))
        assert refused.returncode == 3
        message = one_line_error(refused.stderr)
        assert "permission denied for schema public" in message
        assert not (tmp_path / "x" / ".custody").exists()
    finally:
        with pg_server.admin(database) as conn:
            conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        with pg_server.admin() as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


# --- what crosses machines: tokens in the shared store; proofs that stay O(log n) --------


def test_a_timestamp_taken_on_one_machine_verifies_on_another(
    pg_catalogued: Path, cli: CLI, tmp_path: Path
) -> None:
    import tomllib

    import tomli_w
    from tests.tsa import running_tsa

    machine_a = pg_catalogued
    machine_b = tmp_path / "machine-b"
    assert cli("init", machine_b, "--ledger", url_of(machine_a)).code == 0
    copy_media(media_source(), machine_b / "media")
    with running_tsa(tmp_path) as tsa:
        config = machine_a / ".custody" / "config.toml"
        document = tomllib.loads(config.read_text())
        document["timestamps"] = {"tsa": [tsa.url], "min_success": 1, "timeout": 10.0}
        config.write_text(tomli_w.dumps(document))
        stamped = cli("timestamp", "--root", machine_a)
        assert stamped.code == 0, stamped.out + stamped.err
        trust = ["--tsa-root", tsa.root_pem, "--tsa-root", tsa.chain_pem]
        on_a = cli("verify", "--root", machine_a, *trust, "--json")
        assert on_a.code == 0, on_a.out
        on_b = cli("verify", "--root", machine_b, *trust, "--json")
        assert [f for f in verify_json(on_b)["findings"] if f["severity"] == "error"] == []
        assert on_b.code == 0


def test_an_inclusion_proof_does_not_read_the_whole_ledger(pg_catalogued: Path) -> None:
    from custody.keys.keyring import Keyring
    from custody.ledger.backends import open_ledger
    from custody.ledger.bodies import ItemBody
    from custody.ledger.proofs import inclusion_document
    from custody.root import find_root

    root = find_root(explicit=str(pg_catalogued))
    signer = Keyring().select(None).unlock(PASSPHRASE)
    with open_ledger(root) as ledger:
        for batch in range(8):  # 8 x 64 more records and a checkpoint after each batch
            with ledger.writer(signer) as writer:
                for i in range(64):
                    n = batch * 64 + i
                    writer.append("item", ItemBody(
                        path=f"synthetic/{n:05d}.bin", size=n,
                        mtime="2026-01-01T00:00:00.000000000Z",
                        digests={"sha256": hashlib.sha256(b"%d" % n).hexdigest()},
                    ).to_json())  # fmt: skip
                writer.checkpoint()
        size = ledger.index.size
        assert size > 500
        rows = 0
        index = ledger.index
        for name in ("records_of_type",):
            method = getattr(index, name)

            def counted(*args: Any, _method: Any = method) -> Any:
                nonlocal rows
                found = list(_method(*args))
                rows += len(found)
                return found

            setattr(index, name, counted)
        document = inclusion_document(ledger, 3)
        assert document["leaf_index"] == 3
        # O(log n) node lookups, the checkpoints and the keys - not one row per record.
        assert rows < size // 4, f"{rows} index rows read for one proof in {size} records"
