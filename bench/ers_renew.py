"""What renewing RFC 4998 evidence for 100,000 data objects costs (one tree).

    .venv/bin/python bench/ers_renew.py            # 100,000 objects
    .venv/bin/python bench/ers_renew.py --objects 10000

Uses the clocked loopback TSA of tests/tsa_longterm.py (openssl under faketime, so it
needs Debian's faketime). Data objects are synthetic 200-byte checkpoint-like lines.
Prints, as JSON, the time and the bytes added by: the initial archive timestamp (one
request for the whole tree), a timestamp renewal, a SHA-512 hash-tree renewal, exporting
every object's RFC 4998 EvidenceRecord, and verifying one of them.
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
    args = parser.parse_args()
    n = args.objects
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
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
