"""Documenters' safety: collector, source path and volume as salted commitments.

The signed item records hold SHA-256 commitments; the values and their salts are kept
beside the ledger. A bundle exported with ``--withhold`` carries none of the values - the
test searches every byte of it (records, index, HOW-TO-VERIFY, report) for them - yet
verifies; the same bundle with ``custody disclose`` output reveals them to a court, each
checked by hashing (independently here, with hashlib and base64). A disclosure whose value
was altered is refused. Records made before commitments, with values in the clear, keep
verifying, and withholding them is refused rather than silently impossible.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import disclosures, ledger_records

from conftest import PASSPHRASE, SAMPLES, Result, validate
from custody.errors import ExitCode

CLI = Callable[..., Result]
COLLECTOR = "Samira Q. Fieldworker"


@pytest.fixture
def ingested(tmp_path: Path, cli: CLI) -> tuple[Path, Path]:
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    card = tmp_path / "home-of-samira" / "sdcard"
    shutil.copytree(SAMPLES / "misc" / "odd", card)
    done = cli("ingest", card, "--into", "card", "--collector", COLLECTOR, "--root", root)
    assert done.code == 0, done.err
    return root, card


def every_byte(folder: Path) -> bytes:
    """Every byte of a bundle but its copy of the published format specification."""
    return b"".join(
        p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "spec" not in p.relative_to(folder).parts
    )


def test_records_commit_and_the_values_stay_beside_the_ledger(ingested: tuple[Path, Path]) -> None:
    root, card = ingested
    (item,) = [r["signed"]["body"] for r in ledger_records(root) if r["signed"]["type"] == "item"]
    assert "collector" not in item and set(item["acquisition"]) == {"source_sha256"}
    kept = disclosures(root / ".custody" / "disclosures.jsonl")
    for name, digest in item["commitments"].items():
        field, value = kept[digest]
        assert field == name
        if name == "collector":
            assert value == COLLECTOR
        if name == "source_path":
            assert value.startswith(str(card))
    ledger = (root / ".custody" / "ledger.jsonl").read_bytes()
    assert COLLECTOR.encode() not in ledger and str(card).encode() not in ledger


def test_withheld_bundle_verifies_reveals_nothing_and_a_court_can_be_told(
    ingested: tuple[Path, Path], cli: CLI, tmp_path: Path
) -> None:
    root, card = ingested
    bundle = tmp_path / "bundle"
    exported = cli("export", "--all", "--out", bundle, "--zip", "--withhold",
                   "collector,source_path,volume", "--root", root, "--json")  # fmt: skip
    assert exported.code == 0, exported.err
    validate(exported.json(), "cli-export.schema.json")
    assert exported.json()["withheld"] == {"collector": 1, "source_path": 1, "volume": 1}
    assert exported.json()["disclosed"] == {}
    report = tmp_path / "report.html"
    assert cli("report", bundle, "--out", report).code == 0
    html = report.read_text()
    assert "withheld to protect the people who collected it" in html
    everything = every_byte(bundle) + (tmp_path / "bundle.zip").read_bytes() + html.encode()
    # (The copy's path in the root ends with the card folder's name, as ingest names it:
    # card/sdcard/...; the path it was read from and the disk it was on are withheld.)
    volume = next(v for f, v in disclosures(root / ".custody" / "disclosures.jsonl").values()
                  if f == "volume")  # fmt: skip
    device = volume.get("device", "no device recorded")
    for secret in (COLLECTOR, str(card), "home-of-samira", '"mount_point"', device):
        assert secret.encode() not in everything, secret
    verified = cli("verify", bundle / ".." / "bundle.zip", "--json")
    assert verified.code == 0, verified.out
    (check,) = [c for c in verified.json()["checks"] if c["name"] == "disclosures"]
    assert check["passed"] and "0 identifying value(s) disclosed" in check["detail"]
    text = (bundle / "HOW-TO-VERIFY.txt").read_text()
    assert "WITHHELD from this bundle: collector, source_path, volume" in text
    # For a court: the collector disclosed with its salt, checked against the commitment.
    court = tmp_path / "for-the-court.txt"
    told = cli("disclose", "card", "--field", "collector", "--out", court, "--root", root,
               "--json")  # fmt: skip
    assert told.code == 0, told.err
    validate(told.json(), "cli-disclose.schema.json")
    (line,) = court.read_bytes().split()
    salt, field, value = json.loads(base64.urlsafe_b64decode(line + b"=" * (-len(line) % 4)))
    lines = (bundle / "custody" / "records.jsonl").read_bytes().splitlines()
    records = [json.loads(x) for x in lines]
    (item,) = [r["signed"]["body"] for r in records if r["signed"]["type"] == "item"]
    assert (field, value) == ("collector", COLLECTOR) and len(base64.urlsafe_b64decode(
        salt + "=" * (-len(salt) % 4))) == 16  # fmt: skip
    assert hashlib.sha256(line).hexdigest() == item["commitments"]["collector"]
    with_court = cli("verify", bundle, "--disclosures", court, "--json")
    assert with_court.code == 0
    (check,) = [c for c in with_court.json()["checks"] if c["name"] == "disclosures"]
    assert "1 identifying value(s) disclosed" in check["detail"]
    court_report = tmp_path / "court.html"
    assert cli("report", bundle, "--disclosures", court, "--out", court_report).code == 0
    assert COLLECTOR in court_report.read_text()
    # A value changed after disclosure does not match its commitment: refused.
    lie = base64.urlsafe_b64encode(json.dumps([salt, "collector", "Someone Else"]).encode())
    (tmp_path / "lie.txt").write_bytes(lie.rstrip(b"=") + b"\n")
    lied = cli("verify", bundle, "--disclosures", tmp_path / "lie.txt", "--json")
    assert lied.code == ExitCode.FINDINGS
    assert any("no item record in the bundle commits to" in f["message"]
               for f in lied.json()["findings"])  # fmt: skip
    # The standard-library script checks what a bundle discloses, too.
    plain = tmp_path / "plain"
    assert cli("export", "--all", "--out", plain, "--root", root).code == 0
    assert len((plain / "custody" / "disclosures.jsonl").read_bytes().split()) == 3
    script = subprocess.run(
        ["/usr/bin/python3", "custody/verify-bundle.py"],
        cwd=plain, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert script.returncode == 0, script.stdout
    assert script.stdout.count("OK   disclosure of ") == 3


def test_older_records_in_the_clear_keep_working(tmp_path: Path, cli: CLI) -> None:
    """A record written before commitments (values in the clear) verifies and exports as
    before; asking to withhold its values is refused, naming the record."""
    from custody.clock import format_ns, format_time, utc_now
    from custody.keys.keyring import Keyring
    from custody.ledger.backends import open_ledger
    from custody.ledger.bodies import Acquisition, ItemBody
    from custody.root import init_root

    root = init_root(tmp_path / "old")
    signer = Keyring().generate("old", "documenter", PASSPHRASE, format_time(utc_now()))
    key = signer.unlock(PASSPHRASE)
    data = b"an older item"
    path = root.path / "old.bin"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    body = ItemBody(
        path="old.bin", size=len(data), mtime=format_ns(path.stat().st_mtime_ns),
        digests={"sha256": sha}, collector="Old Collector",
        acquisition=Acquisition("/media/old/old.bin", sha, {"mount_point": "/media/old"}),
    )  # fmt: skip
    with open_ledger(root) as ledger, ledger.writer(key) as writer:
        writer.append("item", body.to_json())
        writer.checkpoint()
    assert "collector" in ledger_records(root.path)[-2]["signed"]["body"]
    assert cli("verify", "--root", root.path, "--ledger-only").code == 0
    refused = cli("export", "--all", "--out", tmp_path / "b", "--withhold", "collector",
                  "--root", root.path)  # fmt: skip
    assert refused.code == ExitCode.USAGE and "in the clear" in refused.err
    plain = cli("export", "--all", "--out", tmp_path / "b2", "--root", root.path, "--json")
    assert plain.code == 0 and plain.json()["disclosed"]["collector"] == 1
    assert cli("verify", tmp_path / "b2").code == 0
