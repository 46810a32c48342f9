#!/usr/bin/env python3
"""Check a custody evidence bundle with Python's standard library (and openssl, if present).

This file is copied into every bundle as ``custody/verify-bundle.py``; it must never import
custody or anything outside the standard library, so that anyone can read it in a few
minutes and run it on any machine with Python 3.8 or later. From the bundle folder:

    python3 custody/verify-bundle.py

It checks, and prints one line per check (``OK`` or ``FAIL``):

1. every line of ``custody/records.jsonl`` is a record with a unique ``seq``;
2. the checkpoint record the bundle names commits to ``tree_size`` records with ``root``;
3. every inclusion proof in ``custody/proofs/record-N.json`` holds the exact line N of
   ``records.jsonl``, and its audit path folds from that line's leaf hash to the
   checkpoint's root (RFC 9162 §2.1.3.2; the record is in the ledger the checkpoint signs);
4. every catalogued file's SHA-256 (and SHA-512, where recorded) equals its item record;
5. every key file's fingerprint (SHA-256 of the raw 32-byte Ed25519 key) is its name;
6. with ``openssl`` on PATH: every record's Ed25519 signature (RFC 8032) over the exact
   ``signed`` bytes of its line, with the key its ``signer`` names.

It ends with ``ALL CHECKS PASSED`` (exit 0) or ``SOME CHECKS FAILED`` (exit 1). What it cannot
tell you: whether the keys belong to the people you think. Compare the fingerprints it
prints with ones their holders gave you by another channel.

Imports: the standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

FAILED: list[str] = []


def say(ok: bool, text: str) -> None:
    print(("OK   " if ok else "FAIL ") + text)
    if not ok:
        FAILED.append(text)


def leaf_hash(line: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + line).digest()


def fold(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2: the root an audit path leads to (None if malformed)."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + sibling + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + sibling).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def file_digest(path: str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def signed_part(line: bytes) -> tuple[bytes, bytes]:
    """The exact bytes the signature covers: the value of "signed", as stored."""
    prefix = b'{"sig":"'
    end = line.index(b'"', len(prefix))
    marker = b',"signed":'
    if not line.startswith(prefix) or line[end + 1 : end + 1 + len(marker)] != marker:
        raise ValueError("not a custody record line")
    if not line.endswith(b"}"):
        raise ValueError("not a custody record line")
    return base64.b64decode(line[len(prefix) : end], validate=True), line[
        end + 1 + len(marker) : -1
    ]


def main() -> int:
    here = os.getcwd()
    if not os.path.isfile(os.path.join("custody", "records.jsonl")):
        print("run this from the bundle folder (the one holding bagit.txt and custody/)")
        return 2
    with open(os.path.join("custody", "index.json"), "rb") as handle:
        index = json.load(handle)
    with open(os.path.join("custody", "records.jsonl"), "rb") as handle:
        raw_lines = [line for line in handle.read().split(b"\n") if line]
    lines: dict[int, bytes] = {}
    records: dict[int, Any] = {}
    for number, line in enumerate(raw_lines, 1):
        try:
            record = json.loads(line.decode("utf-8"))
            seq = record["signed"]["seq"]
        except (ValueError, KeyError, TypeError):
            say(False, f"records.jsonl line {number} is not a custody record")
            continue
        if seq in lines:
            say(False, f"records.jsonl holds record {seq} twice")
        lines[seq], records[seq] = line, record["signed"]
    say(bool(lines), f"records.jsonl: {len(lines)} records, one per line")

    # The checkpoint every proof is against.
    named = index.get("checkpoint", {})
    checkpoint = records.get(named.get("record"))
    if checkpoint is None or checkpoint.get("type") != "checkpoint":
        say(False, "the checkpoint record {} is not in records.jsonl".format(named.get("record")))
        return finish()
    size, root = checkpoint["body"]["tree_size"], checkpoint["body"]["root"]
    say(
        (size, root) == (named.get("tree_size"), named.get("root")),
        f"checkpoint record {named.get('record')}: the first {size} ledger records have "
        f"Merkle root {root}",
    )

    # Every inclusion proof folds to that root.
    proofs = sorted(
        (
            name
            for name in os.listdir(os.path.join("custody", "proofs"))
            if name.startswith("record-")
            and name.endswith(".json")
            and name[len("record-") : -len(".json")].isdigit()
        ),
        key=lambda name: int(name[len("record-") : -len(".json")]),
    )
    for name in proofs:
        with open(os.path.join("custody", "proofs", name), "rb") as handle:
            proof = json.load(handle)
        seq = proof.get("leaf_index")
        line = proof.get("record_line", "").encode("utf-8")
        if lines.get(seq) != line:
            say(False, f"{name}: its record line is not line {seq} of records.jsonl")
            continue
        try:
            path = [bytes.fromhex(h) for h in proof["audit_path"]]
        except (KeyError, TypeError, ValueError):
            say(False, f"{name}: the audit path is not a list of hex hashes")
            continue
        reached = fold(leaf_hash(line), seq, proof.get("tree_size", -1), path)
        ok = proof.get("tree_size") == size and reached is not None and reached.hex() == root
        say(
            ok,
            f"record {seq} is in the {size}-record ledger with root {root} ({name}, "
            f"{len(path)} sibling hashes)",
        )
    covered = {int(n[len("record-") : -len(".json")]) for n in proofs}
    unproven = sorted(s for s in lines if s < size and s not in covered)
    say(
        not unproven,
        "every record before the checkpoint has a proof"
        + ("" if not unproven else f" (none for {unproven})"),
    )

    # Every catalogued file against its item record.
    for seq, signed in sorted(records.items()):
        if signed.get("type") != "item":
            continue
        body = signed["body"]
        payload = os.path.join("data", *body["path"].split("/"))
        if not os.path.isfile(payload):
            say(False, "record {}: data/{} is not in the bundle".format(seq, body["path"]))
            continue
        for algorithm in ("sha256", "sha512"):
            if algorithm in body.get("digests", {}):
                found = file_digest(payload, algorithm)
                say(
                    found == body["digests"][algorithm],
                    "record {}: data/{} {} {}".format(seq, body["path"], algorithm, found),
                )

    # Disclosed identifying values: each must hash to a commitment in a signed item record.
    commitments: dict[str, tuple[int, str]] = {}
    for seq, signed in records.items():
        if signed.get("type") == "item":
            for field, digest in (signed["body"].get("commitments") or {}).items():
                commitments[digest] = (seq, field)
    disclosed = 0
    kept = os.path.join("custody", "disclosures.jsonl")
    if os.path.isfile(kept):
        with open(kept, "rb") as handle:
            for text in handle.read().split(b"\n"):
                if not text.strip():
                    continue
                digest = hashlib.sha256(text.strip()).hexdigest()
                target = commitments.get(digest)
                try:
                    padded = text.strip() + b"=" * (-len(text.strip()) % 4)
                    field = json.loads(base64.urlsafe_b64decode(padded))[1]
                except (ValueError, IndexError, TypeError):
                    field = None
                ok = target is not None and target[1] == field
                disclosed += ok
                say(
                    ok,
                    f"disclosure of {field} for record {target[0] if target else '?'}: "
                    f"its SHA-256 {digest} is the commitment in the signed record",
                )
    if commitments:
        print(
            f"NOTE {disclosed} identifying value(s) disclosed, {len(commitments) - disclosed} "
            "withheld: the records hold only salted commitments to those"
        )

    # Keys: each file's fingerprint is its name.
    keys: dict[str, str] = {}
    for name in sorted(os.listdir(os.path.join("custody", "keys"))):
        with open(os.path.join("custody", "keys", name), "rb") as handle:
            pem = handle.read().decode("ascii", "replace")
        body = "".join(x for x in pem.splitlines() if x and not x.startswith("-----"))
        raw = base64.b64decode(body)[-32:]
        fingerprint = hashlib.sha256(raw).hexdigest()
        keys[fingerprint] = os.path.join("custody", "keys", name)
        say(name == fingerprint + ".pem", f"key file {name} has fingerprint {fingerprint}")

    # Signatures, with openssl (Ed25519 is not in Python's standard library).
    openssl = shutil.which("openssl")
    if openssl is None:
        print(
            "SKIP signatures: openssl is not installed (apt install openssl), or check them "
            "by hand as HOW-TO-VERIFY.txt (in Arabic, HOW-TO-VERIFY.ar.txt) shows"
        )
    else:
        work = tempfile.mkdtemp(prefix="custody-verify-")
        try:
            bad = []
            for seq, line in sorted(lines.items()):
                signer = records[seq].get("signer")
                if signer not in keys:
                    bad.append(f"{seq} (no key file for signer {signer})")
                    continue
                try:
                    signature, message = signed_part(line)
                except ValueError:
                    bad.append(f"{seq} (not a record line)")
                    continue
                msg, sig = os.path.join(work, "msg.bin"), os.path.join(work, "sig.bin")
                with open(msg, "wb") as handle:
                    handle.write(message)
                with open(sig, "wb") as handle:
                    handle.write(signature)
                run = subprocess.run(
                    [
                        openssl,
                        "pkeyutl",
                        "-verify",
                        "-pubin",
                        "-inkey",
                        os.path.join(here, keys[signer]),
                        "-rawin",
                        "-in",
                        msg,
                        "-sigfile",
                        sig,
                    ],
                    capture_output=True,
                )
                if run.returncode != 0:
                    bad.append(str(seq))
            say(
                not bad,
                f"{len(lines)} record signatures checked with openssl pkeyutl (Ed25519)"
                + ("" if not bad else ": bad for record(s) " + ", ".join(bad)),
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    if not index.get("timestamps"):
        print(
            "NOTE this bundle carries no trusted timestamp: nothing in it independently proves "
            "when the records existed (the times in them are the signers' own clocks)"
        )
    print()
    print("Signed by these keys. Compare each fingerprint with the one its holder gave you by")
    print("another channel (a call, paper, in person) - never with anything in this bundle:")
    for entry in index.get("keys", []):
        holder = entry.get("holder")
        who = "{} ({})".format(entry.get("name"), holder) if holder else str(entry.get("name"))
        fingerprint = str(entry.get("fingerprint"))
        grouped = " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))
        print("  {}, {}: {}".format(who, entry.get("role"), grouped))
    return finish()


def finish() -> int:
    print()
    if FAILED:
        print(f"SOME CHECKS FAILED ({len(FAILED)}): the bundle is not what was signed")
        return 1
    print("ALL CHECKS PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
