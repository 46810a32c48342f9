"""What keeping history honest costs at scale (issue "History nobody can rewrite").

    python bench/history_cost.py [RECORDS]      (default 1,000,000)

Builds a ledger of RECORDS synthetic item records (bench/make_ledger.py: real signatures, a
checkpoint every 10,000), catalogues one real file on top, exports it as a bundle, and
measures:

* the consistency material the bundle carries: one proof from every earlier checkpoint to the
  bundle's checkpoint (bytes, and how many);
* ``custody verify BUNDLE`` for a verifier who remembers a checkpoint halfway through the
  ledger, against one who remembers nothing (median of 3 each): the cost of proving the
  bundle extends what was seen.

Prints one JSON object. Keep it out of CI: building a million signed records takes minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PASSPHRASE = "correct horse battery staple"


def run(*argv: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "custody", *map(str, argv)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 10):
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr}")
    return done


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    work = Path(tempfile.mkdtemp(prefix="history-cost-"))
    home, lawyer = work / "home", work / "lawyer"
    env = {**os.environ, "CUSTODY_HOME": str(home), "CUSTODY_PASSPHRASE": PASSPHRASE}
    root = work / "root"
    run("init", root, env=env)
    run("keys", "generate", "--name", "bench", env=env)
    run("keys", "export", "bench", "--out", work / "bench.pem", env=env)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(BENCH / "make_ledger.py"), str(root), str(records)],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    built = time.perf_counter() - started
    (root / "evidence.txt").write_text("one real file on top of the synthetic ledger\n")
    run("catalogue", root / "evidence.txt", "--root", root, env=env)
    export = ("export", "evidence.txt", "--out", work / "bundle", "--root", root, "--json")
    exported = json.loads(run(*export, env=env).stdout)
    proofs = sorted((work / "bundle" / "custody" / "proofs").glob("consistency-*.json"))
    material = sum(p.stat().st_size for p in proofs)
    lawyer_env = {**env, "CUSTODY_HOME": str(lawyer)}

    def verify_seconds() -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            run("verify", work / "bundle", "--trusted-key", work / "bench.pem", env=lawyer_env)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    plain = verify_seconds()  # the first run remembers the bundle's checkpoint
    # Now a remembered checkpoint halfway: forget, remember the middle one, verify again.
    from custody.ledger.backends import open_ledger
    from custody.root import find_root
    from custody.trust.remembered import RememberedLedgers

    with open_ledger(find_root(explicit=str(root))) as ledger:
        identity = hashlib.sha256(ledger.read(0).line).hexdigest()
        checkpoints = ledger.index.records_of_type("checkpoint")
        middle = checkpoints[len(checkpoints) // 2]
        size = int(ledger.read(middle).record.body["tree_size"])
        middle_root = ledger.root_hash(size).hex()
    store = RememberedLedgers(lawyer / "ledgers")
    store.forget(identity)
    store.remember(identity, size, middle_root, "bench: a checkpoint seen halfway")
    remembered = verify_seconds()
    print(
        json.dumps(
            {
                "records": records,
                "build_seconds": round(built, 1),
                "bundle_checkpoint": exported["checkpoint"],
                "consistency_proofs": len(proofs),
                "consistency_bytes": material,
                "bytes_per_proof": round(material / max(1, len(proofs))),
                "verify_seconds_nothing_remembered": round(plain, 3),
                "verify_seconds_remembered_halfway": round(remembered, 3),
                "remembered_size": size,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
