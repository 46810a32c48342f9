"""What renewing RFC 4998 evidence costs: in the library, and through the ledger.

    .venv/bin/python bench/ers_renew.py                   # both parts, 100,000
    .venv/bin/python bench/ers_renew.py --part ledger     # custody renew on 100,000 items
    .venv/bin/python bench/ers_renew.py --objects 10000 --part library

Uses the clocked loopback TSA of tests/tsa_longterm.py (openssl under faketime, so it
needs Debian's faketime). Prints JSON.

``library``: one tree over N synthetic 200-byte data objects: the time and bytes added by
the initial archive timestamp (one request for the whole tree), a timestamp renewal, a
SHA-512 hash-tree renewal, exporting every object's RFC 4998 EvidenceRecord, and
verifying one of them.

``ledger``: an evidence root of N signed item records (bench/make_ledger.py's bodies, a
checkpoint every ``--checkpoint-every`` items as successive catalogue runs make them),
every checkpoint stamped by ``custody timestamp``; then the real ``custody renew`` CLI, each
run in its own process (start-up included): the initial evidence record over every
checkpoint, a timestamp renewal (``--before``), a SHA-512 migration (``--hash``); and
``custody verify --ledger-only --at`` after them. Bytes added = growth of
.custody/ledger.jsonl + .custody/evidence/ + .custody/validation/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from tests.tsa_longterm import DAY, YEAR, clocked_tsa  # noqa: E402

from custody.timestamps import ers  # noqa: E402
from custody.timestamps.material import ValidationMaterial  # noqa: E402
from custody.timestamps.tsa_client import HttpTsa  # noqa: E402

T0 = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--checkpoint-every", type=int, default=10_000)
    parser.add_argument("--part", choices=("library", "ledger", "both"), default="both")
    args = parser.parse_args()
    out: dict[str, object] = {}
    if args.part in ("library", "both"):
        out["library"] = library(args.objects)
    if args.part in ("ledger", "both"):
        out["ledger"] = ledger(args.objects, args.checkpoint_every)
    print(json.dumps(out, indent=1))
    return 0


def library(n: int) -> dict[str, object]:
    objects = [(f"checkpoint {i:09d} " + "x" * 180).encode() for i in range(n)]
    out: dict[str, object] = {"objects": n}
    with (
        tempfile.TemporaryDirectory() as tmp,
        clocked_tsa(Path(tmp), "Bench TSA", not_before=T0 - DAY, not_after=T0 + 10 * YEAR) as tsa,
    ):
        transport = HttpTsa(tsa.url)
        roots = [tsa.root]

        tsa.clock = T0 + DAY
        t = time.perf_counter()
        first = ers.initial_record(objects, "sha256", transport, trust_roots=roots)
        out["initial_s"] = round(time.perf_counter() - t, 3)
        size0 = len(first.to_der())
        out["set_bytes_initial"] = size0

        tsa.clock = T0 + 2 * YEAR
        t = time.perf_counter()
        renewed = ers.renew_timestamp(first, transport, trust_roots=roots)
        out["renew_timestamp_s"] = round(time.perf_counter() - t, 3)
        assert isinstance(renewed, ers.EvidenceSet)
        size1 = len(renewed.to_der())
        out["renew_timestamp_set_bytes_added"] = size1 - size0

        t = time.perf_counter()
        per_object_before = sum(len(first.evidence_record(i).to_der()) for i in range(n))
        per_object_after = sum(len(r.to_der()) for r in renewed.evidence_records())
        out["export_all_records_s_twice"] = round(time.perf_counter() - t, 3)
        out["per_object_records_bytes_before"] = per_object_before
        out["per_object_records_bytes_added_by_renewal"] = per_object_after - per_object_before

        tsa.clock = T0 + 3 * YEAR
        t = time.perf_counter()
        migrated = ers.renew_hashtree(renewed, "sha512", objects, transport, trust_roots=roots)
        out["renew_hashtree_sha512_s"] = round(time.perf_counter() - t, 3)
        assert isinstance(migrated, ers.EvidenceSet)
        out["renew_hashtree_set_bytes_added"] = len(migrated.to_der()) - size1

        t = time.perf_counter()
        loaded = ers.EvidenceSet.from_der(migrated.to_der())
        out["set_decode_s"] = round(time.perf_counter() - t, 3)
        record = loaded.evidence_record(n // 2)
        out["one_record_bytes"] = len(record.to_der())
        at = T0 + 4 * YEAR
        material = ValidationMaterial(crls=(tsa.crl(at), tsa.crl(at, root=True)))
        t = time.perf_counter()
        result = ers.verify_record(record, objects[n // 2], roots, material, at)
        out["verify_one_s"] = round(time.perf_counter() - t, 3)
        out["verify_ok"] = result.ok
        out["tsa_requests"] = tsa.requests
    return out


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _kept(root: Path) -> int:
    state = root / ".custody"
    return sum(_size(state / p) for p in ("ledger.jsonl", "evidence", "validation"))


def ledger(n: int, every: int) -> dict[str, object]:
    """custody renew through the real CLI on a root of ``n`` items (module docstring)."""
    import os
    import subprocess
    import tomllib

    import tomli_w
    from bench.make_ledger import item_body

    from custody.keys.keyring import Keyring
    from custody.ledger.backends import open_ledger
    from custody.root import find_root

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    out: dict[str, object] = {"items": n, "checkpoint_every": every}
    with tempfile.TemporaryDirectory() as tmp, clocked_tsa(
        Path(tmp), "Bench TSA", not_before=now - YEAR, not_after=now + 100 * DAY
    ) as one, clocked_tsa(
        Path(tmp), "Bench TSA Two", not_before=now - YEAR, not_after=now + 10 * YEAR
    ) as two:
        env = {
            **os.environ,
            "CUSTODY_HOME": f"{tmp}/home",
            "CUSTODY_PASSPHRASE": "bench passphrase, not secret",
            "PYTHONPATH": str(REPO / "src"),
        }

        def custody(*args: str, check: bool = True) -> tuple[float, str]:
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "custody", *args],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if check and proc.returncode != 0:
                raise SystemExit(f"custody {' '.join(args)}: {proc.stderr.strip()}")
            return round(time.perf_counter() - started, 3), proc.stdout

        root = Path(tmp) / "evidence"
        custody("init", str(root))
        custody("keys", "generate", "--name", "bench")
        os.environ.update({k: env[k] for k in ("CUSTODY_HOME", "CUSTODY_PASSPHRASE")})
        evidence = find_root(explicit=str(root))
        signer = Keyring().select(None).unlock(env["CUSTODY_PASSPHRASE"])
        t = time.perf_counter()
        with open_ledger(evidence) as store:
            done = 0
            while done < n:
                batch = min(every, n - done)
                with store.writer(signer) as writer:
                    for i in range(done, done + batch):
                        writer.append("item", item_body(i))
                    writer.checkpoint()
                done += batch
        out["build_ledger_s"] = round(time.perf_counter() - t, 3)
        config = root / ".custody" / "config.toml"
        document = tomllib.loads(config.read_text())
        document["timestamps"] = {"tsa": [one.url], "min_success": 1, "timeout": 20.0}
        config.write_text(tomli_w.dumps(document))
        one.clock = two.clock = now - DAY
        one.publish_crl(now - DAY)
        two.publish_crl(now - DAY)
        out["timestamp_s"], _ = custody("timestamp", "--root", str(root))
        roots = Path(tmp) / "roots.pem"
        roots.write_bytes(one.root_pem.read_bytes() + two.root_pem.read_bytes())
        trust = ["--tsa-root", str(roots)]
        for name, extra in (
            ("initial", []),
            ("timestamp_renewal", ["--tsa", two.url, "--before", f"{now + 200 * DAY:%Y-%m-%d}"]),
            ("hashtree_renewal_sha512", ["--tsa", two.url, "--hash", "sha512"]),
        ):
            before = _kept(root)
            seconds, text = custody("renew", "--root", str(root), *trust, *extra, "--json")
            report = json.loads(text)
            out[f"renew_{name}"] = {
                "command": " ".join(["custody renew", *extra]),
                "seconds": seconds,
                "bytes_added": _kept(root) - before,
                "actions": [(a["action"], a["outcome"]) for a in report["actions"]],
                "checkpoints": sum(len(a["checkpoints"]) for a in report["actions"]),
            }
        seconds, _ = custody("renew", "--root", str(root), *trust, "--dry-run")
        out["renew_nothing_due_dry_run_s"] = seconds
        at = f"{now + 2 * YEAR:%Y-%m-%d}"
        out["verify_ledger_only_at_s"], text = custody(
            "verify", "--root", str(root), *trust, "--ledger-only", "--at", at, "--json"
        )
        out["verified_at"] = {"at": at, "verified": json.loads(text)["verified"]}
        out["ledger_bytes"] = _size(root / ".custody" / "ledger.jsonl")
        out["tsa_requests"] = one.requests + two.requests
    return out


if __name__ == "__main__":
    raise SystemExit(main())
