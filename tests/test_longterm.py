"""Long-term evidence through the real CLI on real catalogued roots: validation material
kept with every token, ``custody renew``, ``custody verify`` (and ``--at``), evidence
records exported for an expert and checked by Bouncy Castle, bundles and the report.

The timestamp authorities are real (``openssl ts -reply`` on loopback under faketime,
tests/tsa_longterm.py) with certificates whose validity each test chooses relative to
the real clock: custody's own clock is never faked; a test looks ahead with ``--at``.
TSA One's certificate lives briefly (it "changes" to TSA Two's); TSA Two's ten years.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from tests.bouncy import BouncyCastle, compile_checker
from tests.pg import pg_db, pg_server
from tests.tsa_longterm import DAY, YEAR, ClockedTSA, clocked_tsa

from conftest import PASSPHRASE, SAMPLES, Result, validate
from custody.keys.keyring import Keyring
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import ArchiveStamp, EvidenceRecordBody
from custody.root import find_root
from custody.timestamps.ers import EvidenceSet

pytestmark = pytest.mark.skipif(
    shutil.which("faketime") is None, reason="faketime is needed (scripts/setup.sh installs it)"
)

# The fixtures come from tests/pg.py; naming them here registers them for this module.
__all__ = ["pg_db", "pg_server"]

CLI = Callable[..., Result]
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
MEDIA = SAMPLES / "field-dump-01" / "DCIM"


def day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d")


@dataclass
class Case:
    root: Path
    one: ClockedTSA
    two: ClockedTSA
    roots_pem: Path

    def trust(self) -> list[str | Path]:
        return ["--tsa-root", self.roots_pem]


def configure(root: Path, urls: list[str]) -> None:
    """Point the root at these TSAs only (never the public defaults)."""
    path = root / ".custody" / "config.toml"
    document = tomllib.loads(path.read_text())
    document["timestamps"] = {"tsa": urls, "min_success": 1, "timeout": 10.0, "roots": []}
    path.write_text(tomli_w.dumps(document))


@pytest.fixture(scope="module")
def bc(tmp_path_factory: pytest.TempPathFactory) -> BouncyCastle:
    return compile_checker(tmp_path_factory)


def make_case(
    tmp_path: Path, cli: CLI, evidence: Path, one_days: int
) -> Iterator[Case]:
    """A catalogued root stamped by TSA One, whose certificate ends ``one_days`` from now."""
    with (
        clocked_tsa(tmp_path, "TSA One", not_before=NOW - YEAR, not_after=NOW + one_days * DAY)
        as one,
        clocked_tsa(tmp_path, "TSA Two", not_before=NOW - YEAR, not_after=NOW + 10 * YEAR)
        as two,
    ):
        for tsa in (one, two):
            tsa.clock = NOW - 2 * DAY
            tsa.publish_crl(NOW - DAY)
        roots_pem = tmp_path / "tsa-roots.pem"
        roots_pem.write_bytes(one.root_pem.read_bytes() + two.root_pem.read_bytes())
        configure(evidence, [one.url])
        shutil.copytree(MEDIA, evidence / "media")
        result = cli("catalogue", evidence / "media", "--root", evidence, "--timestamp")
        assert result.code == 0, result.err
        yield Case(evidence, one, two, roots_pem)


@pytest.fixture
def case(tmp_path: Path, cli: CLI, evidence: Path) -> Iterator[Case]:
    """TSA One's certificate ends in 100 days."""
    yield from make_case(tmp_path, cli, evidence, 100)


def lines(root: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)["signed"]
        for line in (root / ".custody" / "ledger.jsonl").read_bytes().splitlines()
    ]


def of_type(root: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in lines(root) if r["type"] == kind]


def renew(cli: CLI, case: Case, *args: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli("renew", "--root", case.root, *case.trust(), "--json", *args)
    document = result.json()
    validate(document, "cli-renew.schema.json")
    return result.code, document


def verify(cli: CLI, target: Path, *args: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli("verify", target, "--json", *args)
    assert result.code in (0, 1), result.err
    document = result.json()
    validate(document, "cli-verify.schema.json")
    return result.code, document


def codes(document: dict[str, Any], severity: str | None = None) -> set[str]:
    return {
        f["code"] for f in document["findings"] if severity is None or f["severity"] == severity
    }


def three_links(cli: CLI, case: Case) -> dict[str, Any]:
    """The original token (TSA One) under an initial archive timestamp, a renewal by TSA Two
    after TSA One's certificate is replaced, a migration to SHA-512."""
    code, first = renew(cli, case)
    assert code == 0 and [a["action"] for a in first["actions"]] == ["initial"]
    case.two.clock = NOW - DAY
    code, second = renew(cli, case, "--tsa", case.two.url, "--before", day(NOW + 200 * DAY))
    assert code == 0, second
    [renewal] = second["actions"]
    assert renewal["action"] == "timestamp-renewal" and renewal["outcome"] == "done"
    assert renewal["tsa"] == case.two.url and "lapses at" in renewal["reason"]
    code, third = renew(cli, case, "--tsa", case.two.url, "--hash", "sha512")
    assert code == 0, third
    [migration] = third["actions"]
    assert (migration["action"], migration["algorithm"]) == ("hashtree-renewal", "sha512")
    return migration


def export_for_expert(cli: CLI, case: Case, out: Path, item: str = "3") -> dict[str, Any]:
    result = cli("export-evidence-record", item, "--root", case.root, "--out", out, "--json")
    assert result.code == 0, result.err
    document = result.json()
    validate(document, "cli-export-evidence-record.schema.json")
    return document


def data_object(case: Case, document: dict[str, Any]) -> list[bytes]:
    """The group's members as an expert gets them: sed for the line, the .tsr files."""
    members = []
    for member in document["data_object"]:
        if "how" in member:
            got = subprocess.run(
                ["sh", "-c", member["how"]], cwd=case.root, capture_output=True, check=True
            ).stdout
        else:
            got = (case.root / member["file"]).read_bytes()
        assert hashlib.sha256(got).hexdigest() == member["sha256"]
        members.append(got)
    return members


# === renewed before expiry: valid after it, in custody and in Bouncy Castle ====================


def test_three_link_chain_outlives_its_certificates(
    case: Case, cli: CLI, bc: BouncyCastle, tmp_path: Path
) -> None:
    three_links(cli, case)
    evidence = of_type(case.root, "evidence-record")
    assert [e["body"]["action"] for e in evidence] == [
        "initial", "timestamp-renewal", "hashtree-renewal"
    ]  # fmt: skip
    assert [e["body"].get("previous") for e in evidence] == [None, evidence[0]["seq"],
                                                             evidence[1]["seq"]]  # fmt: skip
    # Two years on, TSA One's certificate is long expired; the chain still stands.
    later = day(NOW + 2 * YEAR)
    code, document = verify(cli, case.root, *case.trust(), "--at", later)
    assert code == 0 and document["verified"], document["findings"]
    assert not codes(document) & {"TIMESTAMP_CHAIN_BROKEN", "EVIDENCE_RECORD_INVALID"}
    [row] = document["evidence_records"]
    assert row["status"] == "valid" and row["trust"] == "roots"
    assert [c["algorithm"] for c in row["chains"]] == ["sha256", "sha512"]
    links = [t for c in row["chains"] for t in c["timestamps"]]
    assert [t["tsa"].split(",")[0] for t in links] == ["CN=TSA One", "CN=TSA Two", "CN=TSA Two"]
    assert links[0]["valid_until"] < later < row["renew_before"]
    # The expert's copy, checked by Bouncy Castle against the bytes of the ledger.
    exported = export_for_expert(cli, case, tmp_path / "item-3.ers")
    assert exported["records"] == [e["seq"] for e in evidence]
    record = (tmp_path / "item-3.ers").read_bytes()
    assert hashlib.sha256(record).hexdigest() == exported["sha256"]
    members = data_object(case, exported)
    ok, out = bc.verify(record, members, [case.one.root, case.two.root])
    assert ok, out
    # The same file checked on its own by custody, as an expert without the root would.
    files = []
    for number, member in enumerate(members):
        files += ["--data", tmp_path / f"member-{number}"]
        (tmp_path / f"member-{number}").write_bytes(member)
    check = ("verify-evidence-record", tmp_path / "item-3.ers", *files, *case.trust())
    result = cli(*check, "--at", later, "--json")
    assert result.code == 0, result.out + result.err
    checked = result.json()
    validate(checked, "cli-verify-evidence-record.schema.json")
    assert checked["valid"] and checked["record_sha256"] == exported["sha256"]
    assert [c["algorithm"] for c in checked["chains"]] == ["sha256", "sha512"]
    assert checked["existence_time"] == links[0]["gen_time"]
    text = cli(*check, "--at", later)
    assert text.code == 0 and text.out.startswith("VALID: ") and "CN=TSA Two" in text.out
    # One changed byte in one member, a record judged without the TSAs' roots, no data.
    (tmp_path / "member-0").write_bytes(members[0] + b" ")
    changed = cli(*check, "--at", later, "--json")
    assert changed.code == 1 and not changed.json()["valid"]
    assert "ERS_DATA_NOT_COVERED" in {p["code"] for p in changed.json()["problems"]}
    for args, message in (
        (check[:-2], "--tsa-root"),
        (("verify-evidence-record", tmp_path / "item-3.ers", *case.trust()), "--data"),
        ((*check, "--at", "soon"), "--at wants YYYY-MM-DD"),
    ):
        refused = cli(*args)
        assert refused.code == 2 and message in refused.err, (args, refused.err)


def test_not_renewed_is_reported(tmp_path: Path, cli: CLI, evidence: Path) -> None:
    # TSA One's certificate ends in 60 days: within the 90-day warning, and it is never
    # renewed after the initial archive timestamp.
    for case in make_case(tmp_path, cli, evidence, 60):
        code, planned = renew(cli, case, "--dry-run")
        assert code == 0 and planned["dry_run"] and planned["actions"][0]["outcome"] == "planned"
        assert of_type(case.root, "evidence-record") == []  # a dry run changes nothing
        code, _ = renew(cli, case)
        assert code == 0
        code, document = verify(cli, case.root, *case.trust())
        assert code == 0 and "TIMESTAMP_RENEWAL_DUE" in codes(document, "warning")
        assert document["evidence_records"][0]["status"] == "renewal due"
        code, later = verify(cli, case.root, *case.trust(), "--at", day(NOW + YEAR))
        assert code == 1 and "TIMESTAMP_CHAIN_BROKEN" in codes(later, "error")
        [broken] = [f for f in later["findings"] if f["code"] == "TIMESTAMP_CHAIN_BROKEN"]
        assert "ERS_NOT_RENEWED" in broken["message"] and "CN=TSA One" in broken["message"]
        # renew says what is due, and why, without doing it
        code, due = renew(cli, case, "--dry-run")
        [action] = due["actions"]
        assert (action["action"], action["outcome"]) == ("timestamp-renewal", "planned")
        assert action["deadline"] is not None and "lapses at" in action["reason"]


def test_a_checkpoint_never_renewed_is_reported_at_a_later_date(case: Case, cli: CLI) -> None:
    code, now = verify(cli, case.root, *case.trust())
    assert code == 0 and "TIMESTAMP_CHAIN_BROKEN" not in codes(now)
    code, later = verify(cli, case.root, *case.trust(), "--at", day(NOW + YEAR))
    assert code == 1
    [broken] = [f for f in later["findings"] if f["code"] == "TIMESTAMP_CHAIN_BROKEN"]
    assert broken["severity"] == "error" and "not renewed" in broken["message"]


def test_renewed_too_late_breaks_the_chain(case: Case, cli: CLI) -> None:
    # The initial archive timestamp is made by a TSA whose clock says it is already past
    # TSA One's expiry: the record proves the checkpoint only from then on.
    case.two.clock = NOW + 150 * DAY
    code, _ = renew(cli, case, "--tsa", case.two.url)
    assert code == 0
    code, document = verify(cli, case.root, *case.trust(), "--at", day(NOW + 200 * DAY))
    assert code == 1
    messages = [f["message"] for f in document["findings"] if f["code"] == "TIMESTAMP_CHAIN_BROKEN"]
    assert any("after checkpoint" in m and "had lapsed" in m for m in messages), messages


# === forged or reordered: refused by custody and by Bouncy Castle ===============================


def _forge(case: Case, change: Callable[[EvidenceSet], EvidenceSet]) -> int:
    """Someone with the signing key stores a changed evidence set and records it."""
    root = find_root(explicit=str(case.root))
    signer = Keyring().select(None).unlock(PASSPHRASE)
    with open_ledger(root) as ledger:
        head = ledger.index.records_of_type("evidence-record")[-1]
        body = EvidenceRecordBody.from_json(ledger.read(head).record.body)
        forged = change(EvidenceSet.from_der(ledger.read_token(body.set_file)))
        data = forged.to_der()
        name = f"evidence/{hashlib.sha256(data).hexdigest()}.der"
        ledger.store_token(name, data)
        last = forged.chains[-1].time_stamps[-1]
        stamp = ArchiveStamp(
            forged.chains[-1].algorithm, body.time_stamp.gen_time, body.time_stamp.tsa,
            hashlib.sha256(last).hexdigest(),
        )  # fmt: skip
        forged_body = EvidenceRecordBody(
            "timestamp-renewal", name, hashlib.sha256(data).hexdigest(), len(data),
            body.objects, stamp, previous=head,
        )  # fmt: skip
        with ledger.writer(signer) as writer:
            return writer.append("evidence-record", forged_body.to_json()).seq


def _reorder_renewals(kept: EvidenceSet) -> EvidenceSet:
    first = kept.chains[0]
    swapped = type(first)(first.algorithm, first.objects, first.time_stamps[::-1])
    return EvidenceSet((swapped, *kept.chains[1:]))


def _flip_signature(kept: EvidenceSet) -> EvidenceSet:
    first = kept.chains[0]
    token = bytearray(first.time_stamps[0])
    token[-5] ^= 0x01  # inside the SignerInfo's signature value
    flipped = type(first)(first.algorithm, first.objects, (bytes(token), *first.time_stamps[1:]))
    return EvidenceSet((flipped, *kept.chains[1:]))


def _chains_reordered(kept: EvidenceSet) -> EvidenceSet:
    return EvidenceSet(kept.chains[::-1])


@pytest.mark.parametrize(
    "change", [_reorder_renewals, _flip_signature, _chains_reordered], ids=lambda f: f.__name__
)
def test_forged_or_reordered_chain_fails_in_both(
    case: Case, cli: CLI, bc: BouncyCastle, tmp_path: Path, change: Callable[..., Any]
) -> None:
    three_links(cli, case)
    forged = _forge(case, change)
    code, document = verify(cli, case.root, *case.trust())
    assert code == 1
    invalid = [f for f in document["findings"] if f["code"] == "EVIDENCE_RECORD_INVALID"]
    assert invalid and all(f["severity"] == "error" for f in invalid)
    assert {f["seq"] for f in invalid} == {forged}
    exported = export_for_expert(cli, case, tmp_path / "forged.ers")
    assert exported["evidence_record"] == forged
    record = (tmp_path / "forged.ers").read_bytes()
    ok, out = bc.verify(record, data_object(case, exported), [case.one.root, case.two.root])
    assert not ok and out.startswith("FAIL"), out


def test_an_altered_evidence_set_file_is_caught(case: Case, cli: CLI) -> None:
    renew(cli, case)
    [evidence] = of_type(case.root, "evidence-record")
    path = case.root / ".custody" / evidence["body"]["set"]["file"]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    code, document = verify(cli, case.root, *case.trust())
    assert code == 1
    [finding] = [f for f in document["findings"] if f["code"] == "EVIDENCE_RECORD_INVALID"]
    assert "SHA-256 differs" in finding["message"] and finding["seq"] == evidence["seq"]
    code, report = renew(cli, case)
    assert code == 3 and report["actions"][0]["outcome"] == "failed"


# === offline: pending, and material fetched on a later run ======================================


def test_offline_renewal_is_pending(case: Case, cli: CLI) -> None:
    configure(case.root, ["http://127.0.0.1:9/tsa"])
    result = cli("renew", "--root", case.root, *case.trust())
    assert result.code == 7, result.out + result.err
    assert "PENDING" in result.err and "connection refused" in result.out
    code, document = renew(cli, case)
    assert code == 7 and document["pending"] is True
    assert document["actions"][0]["outcome"] == "pending"
    assert of_type(case.root, "evidence-record") == []


def test_validation_material_is_kept_and_gaps_are_fetched_later(
    tmp_path: Path, cli: CLI, evidence: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        clocked_tsa(tmp_path, "TSA One", not_before=NOW - YEAR, not_after=NOW + YEAR) as one,
    ):
        one.clock = NOW - DAY
        # The revocation services are down while the token is recorded: the CRL is not
        # published yet (404) and the OCSP responder fails (HTTP 500).
        configure(evidence, [one.url])
        shutil.copytree(MEDIA, evidence / "media")
        with monkeypatch.context() as down:
            down.setattr(one, "_ocsp", lambda body: (_ for _ in ()).throw(OSError("down")))
            result = cli(
                "catalogue", evidence / "media", "--root", evidence, "--timestamp", "--json"
            )
        assert result.code == 0, result.err
        outcome = result.json()["timestamp"]["checkpoints"][0]["outcomes"][0]
        assert outcome["validation"] == 3 and outcome["validation_missing"] >= 1
        [stamp] = of_type(evidence, "timestamp")
        kept = stamp["body"]["validation"]
        assert {m["kind"] for m in kept} == {"certificate"}
        for m in kept:  # stored through the ledger's store, under .custody/, by SHA-256
            data = (evidence / ".custody" / m["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == m["sha256"] in m["file"]
        gaps = stamp["body"]["validation_missing"]
        assert any("HTTP 500" in g["reason"] and g["url"].endswith("/ocsp") for g in gaps)
        # A later run, services back: the gap is fetched and recorded.
        one.publish_crl(NOW)
        result = cli("timestamp", "--root", evidence, "--json")
        assert result.code == 0, result.err
        [filled] = result.json()["validation"]
        assert filled["for"] == stamp["seq"] and filled["files"] >= 1
        [validation] = of_type(evidence, "validation")
        assert validation["body"]["for"] == [
            {"record": stamp["seq"], "token_sha256": stamp["body"]["token_sha256"]}
        ]
        assert {m["kind"] for m in validation["body"]["validation"]} >= {"ocsp"}
        assert "validation_missing" not in validation["body"]
        # nothing missing any more: the next run asks no one
        again = cli("timestamp", "--root", evidence, "--json")
        assert again.code == 0 and "validation" not in again.json()
        # a kept file that changed is an error of verify
        (evidence / ".custody" / kept[0]["file"]).write_bytes(b"changed")
        code, document = verify(cli, evidence, "--tsa-root", one.root_pem)
        assert code == 1 and "VALIDATION_MATERIAL_INVALID" in codes(document, "error")


# === bundles carry the evidence; the report shows it ==========================================


def test_bundle_carries_and_checks_the_evidence_record(
    case: Case, cli: CLI, bc: BouncyCastle, tmp_path: Path
) -> None:
    three_links(cli, case)
    out = tmp_path / "bundle"
    result = cli("export", "3", "--root", case.root, "--out", out, "--zip", "--json")
    assert result.code == 0, result.err
    exported = result.json()
    validate(exported, "cli-export.schema.json")
    assert exported["evidence_records"] == 1 and exported["validation"] >= 3
    index = json.loads((out / "custody" / "index.json").read_text())
    [entry] = index["evidence_records"]
    for target in (out, out.with_suffix(".zip")):
        code, document = verify(cli, target, *case.trust(), "--at", day(NOW + 2 * YEAR))
        assert code == 0 and document["verified"], document["findings"]
        [row] = document["evidence_records"]
        assert row["file"] == entry["file"] and row["status"] == "valid"
        assert len([t for c in row["chains"] for t in c["timestamps"]]) == 3
    # the bundled record is the expert's record: Bouncy Castle checks it from the bundle
    record = (out / entry["file"]).read_bytes()
    records = (out / "custody" / "records.jsonl").read_bytes().splitlines()
    line = next(r for r in records if json.loads(r)["signed"]["seq"] == entry["checkpoint"])
    tokens = sorted((out / "custody" / "timestamps").iterdir())
    ok, out_text = bc.verify(
        record, [line, *(t.read_bytes() for t in tokens)], [case.one.root, case.two.root]
    )
    assert ok, out_text
    # an altered record in the bundle is found (and the tag manifest says the file changed)
    data = bytearray(record)
    data[len(data) // 2] ^= 0x01
    (out / entry["file"]).write_bytes(bytes(data))
    code, document = verify(cli, out, *case.trust())
    assert code == 1 and "EVIDENCE_RECORD_INVALID" in codes(document, "error")


def test_bundle_without_renewal_is_judged_at_a_later_date(
    case: Case, cli: CLI, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    assert cli("export", "3", "--root", case.root, "--out", out).code == 0
    code, now = verify(cli, out, *case.trust())
    assert code == 0 and now["evidence_records"] == []
    code, later = verify(cli, out, *case.trust(), "--at", day(NOW + YEAR))
    assert code == 1 and "TIMESTAMP_CHAIN_BROKEN" in codes(later, "error")


def test_report_shows_the_chain_of_archive_timestamps(
    case: Case, cli: CLI, tmp_path: Path
) -> None:
    three_links(cli, case)
    page = tmp_path / "report.html"
    result = cli("report", case.root, "--out", page, *case.trust())
    assert result.code == 0, result.err
    text = page.read_text()
    section = text.split("Long-term evidence (RFC 4998 evidence records)")[1].split("<h2>")[0]
    assert section.count("sha256 ") == 2 and section.count("sha512 ") == 1
    assert "CN=TSA One" in section and "CN=TSA Two" in section
    assert '<td class="pass">valid</td>' in section


# === the PostgreSQL store keeps the evidence and the material as it keeps tokens ===============


def test_postgresql_store_keeps_evidence_for_every_machine(
    tmp_path: Path, cli: CLI, pg_db: str
) -> None:
    import psycopg

    machine_a, machine_b = tmp_path / "machine-a", tmp_path / "machine-b"
    assert cli("init", machine_a, "--ledger", pg_db).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    with (
        clocked_tsa(tmp_path, "TSA One", not_before=NOW - YEAR, not_after=NOW + YEAR) as one,
        clocked_tsa(tmp_path, "TSA Two", not_before=NOW - YEAR, not_after=NOW + 10 * YEAR)
        as two,
    ):
        one.clock = two.clock = NOW - DAY
        pem = tmp_path / "tsa-roots.pem"
        pem.write_bytes(one.root_pem.read_bytes() + two.root_pem.read_bytes())
        stamped = Case(machine_a, one, two, pem)
        configure(machine_a, [one.url])
        shutil.copytree(MEDIA, machine_a / "media")
        result = cli("catalogue", machine_a / "media", "--root", machine_a, "--timestamp")
        assert result.code == 0, result.out + result.err
        code, _ = renew(cli, stamped)
        assert code == 0
    with psycopg.connect(pg_db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM custody_tokens ORDER BY name")]
    assert any(n.startswith("evidence/") for n in names)
    assert any(n.startswith("validation/certs/") for n in names)
    # Another machine of the case: nothing under its .custody/ but the config.
    assert cli("init", machine_b, "--ledger", pg_db).code == 0
    shutil.copytree(MEDIA, machine_b / "media")
    assert not (machine_b / ".custody" / "evidence").exists()
    code, document = verify(
        cli, machine_b, "--root", machine_b, *stamped.trust(), "--at", day(NOW + 30 * DAY)
    )
    assert code == 0 and document["evidence_records"][0]["status"] == "valid"


# === hostile records, bodies and bundle indexes =================================================


def test_records_naming_the_wrong_records_are_reference_findings(case: Case, cli: CLI) -> None:
    from custody.ledger.bodies import ObjectGroup, TokenRef, ValidationBody

    renew(cli, case)
    [evidence] = of_type(case.root, "evidence-record")
    [stamp] = of_type(case.root, "timestamp")
    body = EvidenceRecordBody.from_json(evidence["body"])
    item = of_type(case.root, "item")[0]["seq"]
    root = find_root(explicit=str(case.root))
    signer = Keyring().select(None).unlock(PASSPHRASE)
    material = body.validation[:1]
    bad = {
        "item as checkpoint": EvidenceRecordBody(
            "initial", body.set_file, body.set_sha256, body.set_size,
            (ObjectGroup(item, (stamp["seq"],)),), body.time_stamp,
        ),
        "renews a timestamp": EvidenceRecordBody(
            "timestamp-renewal", body.set_file, body.set_sha256, body.set_size,
            body.objects, body.time_stamp, previous=stamp["seq"],
        ),
        "material for an item": ValidationBody(
            (TokenRef(item, stamp["body"]["token_sha256"]),), material
        ),
    }  # fmt: skip
    seqs = {}
    with open_ledger(root) as ledger, ledger.writer(signer) as writer:
        for name, made in bad.items():
            kind = "validation" if isinstance(made, ValidationBody) else "evidence-record"
            seqs[name] = writer.append(kind, made.to_json()).seq
    code, document = verify(cli, case.root, *case.trust(), "--ledger-only")
    assert code == 1
    found = {f["seq"] for f in document["findings"] if f["code"] == "REFERENCE_INVALID"}
    assert found == set(seqs.values()), document["findings"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda b: {**b, "set": {**b["set"], "file": "../outside.der"}}, "without '..'"),
        (lambda b: {**b, "action": "renewal"}, "unknown action"),
        (lambda b: {**b, "previous": 3}, "names the record it renews"),
        (lambda b: {**b, "objects": []}, "covers no data object"),
        (lambda b: {**b, "objects": [{"checkpoint": 1, "timestamps": []}]}, "ascending"),
        (lambda b: {**b, "objects": [{"checkpoint": 1, "timestamps": [2, 2]}]}, "ascending"),
        (lambda b: {**b, "validation": [{"kind": "x", "file": "a", "sha256": "0" * 64}]}, "kind"),
        (lambda b: {**b, "extra": 1}, "unknown field"),
    ],
)
def test_malformed_evidence_bodies_are_refused_by_parser_and_schema(
    change: Callable[[dict[str, Any]], dict[str, Any]], why: str
) -> None:
    import jsonschema

    from custody.errors import RecordError
    from custody.ledger.bodies import ObjectGroup

    good = EvidenceRecordBody(
        "initial", "evidence/" + "a" * 64 + ".der", "a" * 64, 10,
        (ObjectGroup(1, (2,)),),
        ArchiveStamp("sha256", "2026-01-01T00:00:00.000000Z", "http://tsa", "b" * 64),
    ).to_json()  # fmt: skip
    schema = json.loads((Path(__file__).parents[1] / "schemas" / "record.schema.json").read_text())
    body_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/evidence_record_body"}
    jsonschema.validate(good, body_schema, cls=jsonschema.Draft202012Validator)
    bad = change(good)
    with pytest.raises(RecordError, match=why):
        EvidenceRecordBody.from_json(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, body_schema, cls=jsonschema.Draft202012Validator)


def test_hostile_bundle_index_entries_are_findings(
    case: Case, cli: CLI, tmp_path: Path
) -> None:
    renew(cli, case)
    out = tmp_path / "bundle"
    assert cli("export", "3", "--root", case.root, "--out", out).code == 0
    index_path = out / "custody" / "index.json"
    index = json.loads(index_path.read_text())
    escape = {"file": "../../etc/passwd", "checkpoint": 6, "timestamps": []}
    index["evidence_records"].append(escape)
    index["validation"][0]["file"] = "custody/records.jsonl"
    index_path.write_text(json.dumps(index))
    code, document = verify(cli, out, *case.trust())
    assert code == 1
    found = codes(document, "error")
    assert {"BUNDLE_MALFORMED", "VALIDATION_MATERIAL_INVALID"} <= found
    assert document["evidence_records"][0]["status"] == "valid"  # the genuine one still checks


def test_renewal_without_revocation_material_is_a_warning(
    case: Case, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the catalogue, TSA One's CRL is withdrawn and its OCSP responder stops
    # answering: when TSA Two renews, 50 days on, nothing kept shows TSA One's certificate
    # unrevoked at that moment (what was fetched earlier predates it).
    monkeypatch.setattr(case.one, "_crl_this_update", None)
    with monkeypatch.context() as down:
        down.setattr(case.one, "_ocsp", lambda body: (_ for _ in ()).throw(OSError("down")))
        renew(cli, case)
        case.two.clock = NOW + 50 * DAY
        code, _ = renew(cli, case, "--tsa", case.two.url, "--before", day(NOW + 200 * DAY))
        assert code == 0
    code, document = verify(cli, case.root, *case.trust(), "--at", day(NOW + YEAR))
    assert code == 0 and document["verified"], document["findings"]
    unknown = [f for f in document["findings"] if f["code"] == "REVOCATION_UNKNOWN"]
    assert unknown and {f["severity"] for f in unknown} == {"warning"}
    assert any("CN=TSA One," in f["message"] for f in unknown)


# === what cannot apply is a usage error =========================================================


def test_usage_errors_are_one_line_exit_2(evidence: Path, cli: CLI, tmp_path: Path) -> None:
    shutil.copytree(MEDIA, evidence / "media")
    assert cli("catalogue", evidence / "media", "--root", evidence).code == 0
    nothing = cli("renew", "--root", evidence, "--dry-run", "--json")
    assert nothing.code == 0 and nothing.json()["actions"] == []
    assert "Nothing is due." in cli("renew", "--root", evidence, "--dry-run").out
    for args, message in (
        (("renew", "--hash", "md5"), "unknown hash algorithm"),
        (("renew", "--hash", "sha1"), "not acceptable for new evidence"),
        (("renew", "--before", "2020-01-01"), "is not in the future"),
        (("renew", "--before", "next week"), "--before wants YYYY-MM-DD"),
        (("verify", "--at", "soon"), "--at wants YYYY-MM-DD"),
        (("verify", "--at", "2030-01-01", "--files-only"), "cannot go with --files-only"),
        (("export-evidence-record", "3"), "--out"),
        (("export-evidence-record", "3", "--out", evidence / "x.ers"), "inside the evidence root"),
        (("export-evidence-record", "3", "--out", tmp_path / "x.ers"), "no evidence record covers"),
        (("export-evidence-record", "0", "--out", tmp_path / "x.ers"), "not a catalogued item"),
    ):
        result = cli(*args, "--root", evidence)
        assert result.code == 2, (args, result.out, result.err)
        assert message in result.err and result.err.count("\n") == 1, (args, result.err)
    assert not (tmp_path / "x.ers").exists()
