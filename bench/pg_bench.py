"""Benchmark the shared PostgreSQL ledger on a private, real PostgreSQL server.

    .venv/bin/python bench/pg_bench.py                   # 8 writers x 20 s, 1,000,000-record proof
    .venv/bin/python bench/pg_bench.py --records 100000  # a smaller proof ledger (quicker)
    .venv/bin/python bench/pg_bench.py --no-durable      # fsync off (as the tests run it)

Starts a server the way the tests do (``tests/pg.py``: initdb into a temporary folder,
127.0.0.1, a free port; by default with fsync on, as a real server runs), then measures:

1. **Appends with concurrent writers.** N processes (default 1, then 8), each with its own
   Ed25519 key, append signed item records through the library (``open_ledger(root)
   .writer(key)``), in batches of 64 records per transaction as ``custody catalogue`` commits
   them, for a fixed time, all into one database. Reported: records committed per second
   over all writers, transactions per second, and the commit latency of one batch (lock wait
   included). The result is then checked: one chain, head = record count, and
   ``verify_ledger_lines`` passes.
2. **An inclusion proof at 1,000,000 records.** Real signed records (a key, items with a
   realistic body like ``bench/make_ledger.py``, a checkpoint every 10,000) are generated once
   and cached in ``bench/out/``, then bulk-loaded with COPY into the same tables and rows
   ``PgIndex.add`` writes (records, items, tags, keys, Merkle nodes, head). The Merkle root
   from the database's nodes is checked against the last checkpoint. Timed: the audit path
   alone (``merkle.inclusion_proof`` on the database's nodes), the whole proof document
   (``custody.ledger.proofs.inclusion_document``: record, covering checkpoint, key lines, and its
   own check of the result), and the CLI ``custody proof inclusion`` end to end.

Numbers on a shared machine are noisy; the script prints the machine's load with them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
sys.path.insert(0, str(REPO / "tests"))

from make_ledger import item_body  # noqa: E402 - bench/make_ledger.py: the same records

from pg import PgServer  # noqa: E402 - tests/pg.py, shared with the test suite

BATCH = 64  # custody.acquisition.catalogue.BATCH_FILES: records per transaction when cataloguing
CHECKPOINT_EVERY = 10_000


# --- records -----------------------------------------------------------------------------


def throwaway_key(name: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from custody.keys.keyring import PublicKey, SigningKey

    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return SigningKey(PublicKey(raw, name, "documenter"), private)


# --- 1. concurrent writers ---------------------------------------------------------------


def writer_process(
    root_path: str, index: int, start_at: float, seconds: float, batch: int, results: Any
) -> None:
    from custody.ledger.backends import open_ledger
    from custody.root import EvidenceRoot

    key = throwaway_key(f"writer{index}")
    root = EvidenceRoot(Path(root_path))
    written, latencies, n = 0, [], 0
    with open_ledger(root) as ledger:
        time.sleep(max(0.0, start_at - time.time()))
        deadline = start_at + seconds
        while time.time() < deadline:
            began = time.perf_counter()
            with ledger.writer(key) as writer:
                for _ in range(batch):
                    writer.append("item", item_body(n, f"writer{index}"))
                    n += 1
            latencies.append(time.perf_counter() - began)
            written += len(writer.written)
    results.put((index, written, latencies, time.time()))


def bench_writers(
    server: PgServer, workers: int, seconds: float, batch: int, work: Path
) -> dict[str, Any]:
    from custody.findings import VerificationResult
    from custody.ledger.backends import create_root, open_ledger
    from custody.ledger.checks import verify_ledger_lines

    name = f"bench_writers_{workers}"
    server.drop_database(name)
    url = server.create_database(name)
    root = create_root(work / name, ledger=url)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 3.0  # time for every process to start and connect
    procs = [
        context.Process(
            target=writer_process, args=(str(root.path), i, start_at, seconds, batch, results)
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=seconds + 300) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = max(r[3] for r in reports) - start_at
    records = sum(r[1] for r in reports)
    latencies = sorted(x for r in reports for x in r[2])
    # The result is one valid chain holding every record each writer reported written.
    with open_ledger(root) as ledger:
        size = ledger.index.size
        result = VerificationResult(root=url)
        verify_ledger_lines(ledger.raw_lines, result, collect_items=False)
    assert size == records, (size, records)  # every record reported written, and no other
    assert result.ok, [f.to_json() for f in result.errors][:3]
    return {
        "workers": workers,
        "records": records,
        "seconds": elapsed,
        "rate": records / elapsed,
        "tx_rate": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
    }


# --- 2. proof at a million records -------------------------------------------------------


def generate_lines(count: int, path: Path) -> None:
    """``count`` real signed records, chained, one throwaway key, checkpoints every 10,000."""
    from custody.clock import format_time, utc_now
    from custody.ledger import merkle
    from custody.ledger.bodies import CheckpointBody, KeyBody
    from custody.ledger.records import FORMAT_VERSION, Record, SignedRecord

    key = throwaway_key("bench")
    tree = merkle.MemoryTree()
    prev: str | None = None
    tmp = path.with_suffix(".tmp")
    started = time.perf_counter()
    with open(tmp, "wb") as out:
        for seq in range(count):
            if seq == 0:
                public = key.public
                record_type, body = (
                    "key",
                    KeyBody(public.fingerprint, public.raw, public.name, public.role).to_json(),
                )
            elif (seq + 1) % CHECKPOINT_EVERY == 0 or seq == count - 1:
                record_type = "checkpoint"
                body = CheckpointBody(seq, merkle.root_hash(tree).hex()).to_json()
            else:
                record_type, body = "item", item_body(seq)
            record = Record(
                seq=seq,
                type=record_type,
                time=format_time(utc_now()),
                signer=key.fingerprint,
                prev=prev,
                body=body,
                version=FORMAT_VERSION,
            )
            payload = record.signed_bytes()
            signed = SignedRecord.assemble(record, key.sign(payload), payload)
            out.write(signed.line + b"\n")
            tree.append(signed.line)
            prev = signed.line_hash
            if seq and seq % 100_000 == 0:
                rate = seq / (time.perf_counter() - started)
                print(f"  generated {seq:,} records ({rate:,.0f}/s)", file=sys.stderr)
    os.replace(tmp, path)


def bulk_load(url: str, lines_path: Path) -> tuple[int, bytes]:
    """COPY the lines and every index row PgIndex.add would write; returns (size, root)."""
    import psycopg

    from custody.ledger import merkle
    from custody.ledger.filestore import iter_raw_lines
    from custody.ledger.index import index_rows
    from custody.ledger.records import SignedRecord

    leaves = bytearray()
    size, last_hash = 0, None
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with (
            cur.copy("COPY custody_records (seq, line, type, signer, line_hash) FROM STDIN") as rec,
        ):
            items, tags, keys = [], [], []
            for raw in iter_raw_lines(lines_path):
                assert raw.complete
                signed = SignedRecord.parse(raw.data)
                record = signed.record
                assert record.seq == size and record.prev == last_hash
                rec.write_row(
                    (record.seq, signed.line, record.type, record.signer, signed.line_hash)
                )
                rows = index_rows(signed)
                if rows.item is not None:
                    items.append(rows.item)
                tags.extend(rows.tags)
                if rows.key is not None:
                    keys.append(rows.key)
                leaves += merkle.leaf_hash(signed.line)
                size, last_hash = size + 1, signed.line_hash
        for table, columns, data in (
            ("custody_items", "seq, path, sha256, size, mtime_ns", items),
            ("custody_tags", "tag, seq", tags),
            ("custody_keys", "fingerprint, seq", keys),
        ):
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
        tree = merkle.MemoryTree.from_leaf_hashes(bytes(leaves))
        with cur.copy("COPY custody_nodes (level, idx, hash) FROM STDIN") as copy:
            level = 0
            while size >> level:
                for idx in range(size >> level):
                    copy.write_row((level, idx, tree.node(level, idx)))
                level += 1
        cur.execute(
            "UPDATE custody_head SET size = %s, last_hash = %s WHERE id = 1", (size, last_hash)
        )
        conn.commit()
        cur.execute("ANALYZE")
        conn.commit()
    return size, merkle.root_hash(tree)


def timed(fn: Any, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return times


def bench_proof(server: PgServer, count: int, proofs: int, work: Path) -> dict[str, Any]:
    from custody.ledger import merkle
    from custody.ledger.backends import create_root, open_ledger
    from custody.ledger.proofs import inclusion_document

    OUT.mkdir(parents=True, exist_ok=True)
    lines_path = OUT / f"pg-bench-{count}.jsonl"
    if not lines_path.exists():
        print(
            f"generating {count:,} signed records into {lines_path} (cached) ...", file=sys.stderr
        )
        generate_lines(count, lines_path)
    name = f"bench_proof_{count}"
    server.drop_database(name)
    url = server.create_database(name)
    root = create_root(work / name, ledger=url)
    began = time.perf_counter()
    size, expected_root = bulk_load(url, lines_path)
    load_seconds = time.perf_counter() - began
    assert size == count
    rng = random.Random(9162)
    seqs = [rng.randrange(count - 1) for _ in range(proofs)]
    with open_ledger(root) as ledger:
        assert ledger.index.size == count
        assert merkle.root_hash(ledger.index) == expected_root
        last = ledger.read(count - 1).record
        assert (
            last.type == "checkpoint"
            and last.body["root"] == merkle.root_hash(ledger.index, count - 1).hex()
        )
        path_times = []
        for seq in seqs:
            path_times += timed(lambda s=seq: merkle.inclusion_proof(ledger.index, s, count), 1)
        doc_times = []
        for seq in seqs:
            document: dict[str, Any] = {}

            def prove(s: int = seq, d: dict[str, Any] = document) -> None:
                d.update(inclusion_document(ledger, s))

            doc_times += timed(prove, 1)
            assert document["leaf_index"] == seq
    cli_times = []
    env = {**os.environ, "CUSTODY_HOME": str(work / "home")}
    for seq in seqs[:3]:
        out = work / f"proof-{seq}.json"
        began = time.perf_counter()
        made = subprocess.run(
            [sys.executable, "-m", "custody", "proof", "inclusion", str(seq), "--root",
             str(root.path), "--out", str(out)],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        cli_times.append(time.perf_counter() - began)
        assert made.returncode == 0, made.stderr
        checked = subprocess.run(
            [sys.executable, "-m", "custody", "proof", "verify", str(out)],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
    return {
        "records": count,
        "load_seconds": load_seconds,
        "path_ms": [1000 * t for t in path_times],
        "doc_ms": [1000 * t for t in doc_times],
        "cli_ms": [1000 * t for t in cli_times],
    }


# --- main --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=20)
    parser.add_argument("--no-durable", action="store_true", help="fsync off")
    parser.add_argument("--skip-writers", action="store_true")
    parser.add_argument("--skip-proof", action="store_true")
    args = parser.parse_args()

    server = PgServer(durable=not args.no_durable)
    server.start()
    rows: list[tuple[str, str]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="custody-pg-bench-") as tmp:
            work = Path(tmp)
            if not args.skip_writers:
                for workers in sorted({1, args.writers}):
                    r = bench_writers(server, workers, args.seconds, args.batch, work)
                    rows.append((
                        f"append, {workers} writer(s), {args.batch} records/transaction",
                        f"{r['rate']:,.0f} records/s ({r['tx_rate']:,.1f} tx/s; "
                        f"{r['records']:,} records in {r['seconds']:.1f} s; batch commit "
                        f"p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms)",
                    ))  # fmt: skip
                    print(f"{rows[-1][0]}: {rows[-1][1]}", file=sys.stderr)
            if not args.skip_proof:
                p = bench_proof(server, args.records, args.proofs, work)
                med = statistics.median
                rows += [
                    (f"bulk load (COPY) of {p['records']:,} signed records",
                     f"{p['load_seconds']:.1f} s"),
                    (f"audit path at {p['records']:,} records (merkle.inclusion_proof)",
                     f"median {med(p['path_ms']):.1f} ms, max {max(p['path_ms']):.1f} ms "
                     f"({len(p['path_ms'])} random leaves)"),
                    (f"inclusion proof document at {p['records']:,} (proofs.inclusion_document)",
                     f"median {med(p['doc_ms']):.0f} ms, max {max(p['doc_ms']):.0f} ms"),
                    ("custody proof inclusion (CLI, incl. Python start-up)",
                     f"median {med(p['cli_ms']):.0f} ms over {len(p['cli_ms'])} runs"),
                ]  # fmt: skip
    finally:
        server.stop()
    load = os.getloadavg()
    print()
    print(
        f"PostgreSQL ledger benchmark - fsync {'off' if args.no_durable else 'on'}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    width = max(len(r[0]) for r in rows) if rows else 0
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
