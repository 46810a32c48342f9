"""Build a synthetic ledger for benchmarks: N signed item records, a checkpoint every 10,000.

    python bench/make_ledger.py ROOT N        (CUSTODY_HOME / CUSTODY_PASSPHRASE set)

Records are real custody records written through the library (the same signing, canonical
encoding, hash chain and index as `custody catalogue`), with a realistic body: digests,
size, times, and a small exiftool-like metadata object. Only exiftool and the files
themselves are skipped, so building a million records takes minutes, not hours.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

from custody.clock import format_ns
from custody.keys.keyring import Keyring
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import ItemBody
from custody.root import find_root


def item_body(i: int, prefix: str = "dump") -> dict[str, Any]:
    """A realistic item body: digests, times, exiftool-like tags (also for pg_bench.py)."""
    seed = f"{prefix}/{i}".encode()
    return ItemBody(
        path=f"{prefix}/DCIM/{i // 1000:04d}/IMG_{i:07d}.jpg",
        size=1_000_000 + i,
        mtime=format_ns(1_700_000_000_000_000_000 + i * 1_000_000_000),
        digests={
            "sha256": hashlib.sha256(seed).hexdigest(),
            "blake3": hashlib.sha3_256(seed).hexdigest(),
        },
        mime="image/jpeg",
        metadata={
            "File:FileType": "JPEG",
            "File:MIMEType": "image/jpeg",
            "IFD0:Make": "samsung",
            "IFD0:Model": "SM-G975F",
            "ExifIFD:DateTimeOriginal": "2024:03:12 10:15:00",
            "ExifIFD:ExposureTime": 0.0007818608288,
            "ExifIFD:FNumber": 2.2,
            "ExifIFD:ISO": 50,
            "Composite:GPSLatitude": 36.2 + (i % 100_000) * 1e-6,
            "Composite:GPSLongitude": 37.15 - (i % 100_000) * 1e-6,
            "Composite:ImageSize": "4032 3024",
            "Composite:Megapixels": 12.192768,
        },
        capture_time="2024:03:12 10:15:00",
        collector="benchmark",
        tags=("bench",),
    ).to_json()


def main() -> None:
    root = find_root(explicit=sys.argv[1])
    count = int(sys.argv[2])
    signer = Keyring().select(None).unlock(os.environ["CUSTODY_PASSPHRASE"])
    with open_ledger(root) as ledger:
        done = 0
        while done < count:
            batch = min(10_000, count - done)
            with ledger.writer(signer) as writer:
                for i in range(done, done + batch):
                    writer.append("item", item_body(i))
                writer.checkpoint()
            done += batch
            print(f"{done} records", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
