"""The outside review's crashes on hostile input (issue 15, points 6-9), each reproduced.

Every case runs the real CLI as a separate process on a real, timestamped evidence root or
its exported bundle (tests/review_case.py), damaged the way an attacker or an accident
would, and asserts a named finding or a one-line error with a documented exit code -
never exit 70 ("internal error") and never a traceback:

6. photos whose EXIF claims 9999-12-31 23:59:59 at -23:59 and 0001-01-01 00:00:00
   without a zone, once a timestamp covers them (verify and report overflowed);
7. a timestamp record whose ``nonce`` is not hex - signed by the documenter, by a key
   nobody introduced, and in a bundle;
8. a bundle consistency-proof file holding a JSON array; ``exiftool_timeout = 1e300``;
   a passphrase with a byte that is not UTF-8 (whose error must echo nothing of it);
9. zip bundles: a flipped payload byte (CRC mismatch), a local header whose name is not
   the central directory's, and two entries of one name (also after Unicode
   normalisation and case folding) - through verify, import and report.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.timestamps.stamping import ValidToken, reconcile
from review_case import (
    EARLY,
    EXIT_CODES,
    LATE,
    Case,
    first_of,
    ledger_lines,
    make_case,
    member_data_offset,
    patched,
    rebag,
    resign,
    signed_of,
    write_ledger,
    zip_folder,
)
from test_crash import one_line, run


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return make_case(tmp_path_factory.mktemp("review-crashes"))


def no_crash(done: subprocess.CompletedProcess[str], what: str = "") -> None:
    assert done.returncode in EXIT_CODES, (what, done.returncode, done.stderr[-2000:])
    assert "internal error" not in done.stderr, (what, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, (what, done.stderr[-2000:])


def copy_root(case: Case, dest: Path) -> Path:
    shutil.copytree(case.root, dest, symlinks=True, ignore=shutil.ignore_patterns("cache"))
    return dest


def findings(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(done.stdout)["findings"]
    return found


def codes(done: subprocess.CompletedProcess[str]) -> set[str]:
    return {f["code"] for f in findings(done) if f["severity"] == "error"}


# --- 6. capture times at the ends of the calendar ----------------------------------------------


def test_extreme_capture_times_never_crash_verify_or_report(case: Case, tmp_path: Path) -> None:
    """Catalogued fine, then every verify and report of the root overflowed (exit 70)."""
    verified = run(["verify", case.root, "--json"], case.env)
    no_crash(verified, "verify")
    assert verified.returncode == 0, verified.stderr
    rows = {row["path"]: row for row in json.loads(verified.stdout)["clock"]}
    assert rows[LATE]["capture_time"] == "9999-12-31T23:59:59-23:59"
    assert rows[LATE]["earliest_timestamp"] is not None
    # 9999-12-31 at -23:59 is after any real timestamp: a court would question it.
    assert "CAPTURE_AFTER_TIMESTAMP" in rows[LATE]["flags"]
    assert rows[EARLY]["capture_time"] == "0001:01:01 00:00:00"
    assert "CAPTURE_AFTER_TIMESTAMP" not in rows[EARLY]["flags"]
    for source in (case.root, case.bundle, case.zip):
        out = tmp_path / f"{source.name}.html"
        made = run(["report", source, "--out", out], case.env)
        no_crash(made, f"report {source.name}")
        assert made.returncode == 0, made.stderr
        # The claimed time as the report shows times to people (delivery/report/formats.py).
        assert "9999-12-31 23:59:59 -23:59" in out.read_text()


CALENDAR_ENDS = [
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
]
CLAIMS = [
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59Z",
    "9999:12:31 23:59:59",
    "9999:12:31 23:59:59+23:59",
    "0001-01-01T00:00:00+23:59",
    "0001:01:01 00:00:00",
    "0001:01:01 00:00:00-23:59",
    "2020:02:30 10:00:00",
    "not a date",
]
RECORD_TIMES = ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00.000000Z"]


def test_clock_reconciliation_is_total_at_the_ends_of_the_calendar() -> None:
    """Every comparison of the three clocks, with each at either end of the calendar."""
    from custody.timestamps.stamping import order_findings

    for gen_time in CALENDAR_ENDS:
        tokens = [ValidToken(5, 4, 5, gen_time, "tsa")]
        for claim in CLAIMS:
            for catalogued in RECORD_TIMES:
                row = reconcile(1, "x.jpg", claim, catalogued, tokens)
                assert row.earliest_timestamp is not None
    # Record 3 is a token; the token of record 5 covers it. Its genTime may not be later.
    out_of_order = [
        ValidToken(3, 2, 3, CALENDAR_ENDS[0], "a"),
        ValidToken(5, 4, 5, CALENDAR_ENDS[1], "b"),
    ]
    assert [f[1] for f in order_findings(out_of_order)] == ["record 3"]
    assert out_of_order[1].gen_time.year == 1
    assert order_findings(out_of_order)[0][4] == "<= 0001-01-01T00:00:00.000000Z"
    in_order = [
        ValidToken(3, 2, 3, CALENDAR_ENDS[1], "a"),
        ValidToken(5, 4, 5, CALENDAR_ENDS[0], "b"),
    ]
    assert order_findings(in_order) == []


# --- 7. a nonce that is not hex --------------------------------------------------------------


def with_bad_nonce(lines: list[bytes], sign: Callable[[bytes], bytes]) -> tuple[list[bytes], int]:
    number = first_of(lines, "timestamp")
    signed = signed_of(lines[number])
    signed["body"]["nonce"] = "not hex"
    out = list(lines)
    out[number] = resign(signed, sign)
    return out, number


@pytest.mark.parametrize("signer", ["documenter", "unknown key"])
def test_timestamp_record_whose_nonce_is_not_hex_is_malformed(
    case: Case, tmp_path: Path, signer: str
) -> None:
    root = copy_root(case, tmp_path / "evidence")
    key = case.key().sign if signer == "documenter" else Ed25519PrivateKey.generate().sign
    lines, number = with_bad_nonce(ledger_lines(root), key)
    write_ledger(root, lines)
    done = run(["verify", root, "--json"], case.env)
    no_crash(done, "verify")
    assert done.returncode == 1
    malformed = [f for f in findings(done) if f["code"] == "RECORD_MALFORMED"]
    assert [f["seq"] for f in malformed] == [number]
    assert "nonce" in malformed[0]["message"]
    made = run(["report", root, "--out", tmp_path / "r.html"], case.env)
    no_crash(made, "report")
    # A report reads the root through its index, which refuses a malformed ledger (exit 3,
    # one line naming the record and pointing at 'custody verify').
    assert made.returncode == 3, made.stderr
    assert f"record {number}" in one_line(made.stderr)


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
def test_bundle_timestamp_record_whose_nonce_is_not_hex_is_a_finding(
    case: Case, tmp_path: Path, zipped: bool
) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(case.bundle, folder)
    records = folder / "custody" / "records.jsonl"
    lines, _ = with_bad_nonce(records.read_bytes().split(b"\n")[:-1], case.key().sign)
    records.write_bytes(b"".join(x + b"\n" for x in lines))
    rebag(folder)
    subject = zip_folder(folder, tmp_path / "bundle.zip") if zipped else folder
    done = run(["verify", subject, "--json"], case.env)
    no_crash(done, "verify")
    assert done.returncode == 1
    assert "RECORD_MALFORMED" in codes(done)
    for argv in (
        ["report", subject, "--out", tmp_path / "r.html"],
        ["import", subject, "--root", lawyer_root(case, tmp_path)],
    ):
        other = run(argv, case.env)
        no_crash(other, argv[0])
        assert other.returncode == 1, (argv[0], other.stderr)


# --- 8. a proof that is an array, a timeout of 1e300, a passphrase that is not UTF-8 ---------


@pytest.mark.parametrize("content", [b"[]", b"[1, 2]", b'"a string"', b"null", b"7"])
def test_consistency_proof_that_is_not_an_object_is_a_finding(
    case: Case, tmp_path: Path, content: bytes
) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(case.bundle, folder)
    index = json.loads((folder / "custody" / "index.json").read_bytes())
    assert index["consistency"], "the case bundle carries a consistency proof"
    proof = folder / index["consistency"][0]["file"]
    proof.write_bytes(content)
    rebag(folder)
    held = tmp_path / "held.jsonl"
    lines = ledger_lines(case.root)
    held.write_bytes(lines[first_of(lines, "checkpoint")] + b"\n")
    for argv in (
        ["verify", folder, "--json"],
        ["verify", folder, "--json", "--checkpoint", held],
        ["report", folder, "--out", tmp_path / "r.html"],
    ):
        done = run(argv, case.env)
        no_crash(done, " ".join(map(str, argv)))
        assert done.returncode == 1, (argv, done.stderr)
        if argv[0] == "verify":
            assert codes(done) & {"NOT_APPEND_ONLY", "PROOF_INVALID", "HELD_CHECKPOINT_UNPROVEN"}


@pytest.mark.parametrize(
    ("section", "name", "command"),
    [
        ("catalogue", "exiftool_timeout", "catalogue"),
        ("timestamps", "timeout", "timestamp"),
    ],
)
@pytest.mark.parametrize("value", [1e300, 1e10, 10**30])
def test_absurd_timeouts_in_the_config_are_a_config_error(
    case: Case, tmp_path: Path, section: str, name: str, command: str, value: float
) -> None:
    root = copy_root(case, tmp_path / "evidence")
    config = root / ".custody" / "config.toml"
    document = tomllib.loads(config.read_text())
    document.setdefault(section, {})[name] = value
    config.write_text(tomli_w.dumps(document))
    (root / "media" / "new.txt").write_bytes(b"a file to catalogue")
    argv = ["catalogue", root / "media", "--root", root] if command == "catalogue" else [
        "timestamp", "--root", root, "--tsa", "http://127.0.0.1:9/"]  # fmt: skip
    done = run(argv, case.env)
    no_crash(done, command)
    line = one_line(done.stderr)
    assert done.returncode == 4, line  # RootError: "... is not a valid custody config"
    assert f"{section}.{name}" in line and str(config) in line


@pytest.mark.parametrize(
    ("section", "name", "value"),
    [
        ("timestamps", "min_success", float("inf")),
        ("timestamps", "min_success", "many"),
        ("catalogue", "exiftool_timeout", "soon"),
        ("catalogue", "digests", 7),
    ],
)
def test_config_values_of_the_wrong_kind_are_a_config_error(
    case: Case, tmp_path: Path, section: str, name: str, value: Any
) -> None:
    """The same class of hole: every value read from config.toml is checked, none crashes."""
    root = copy_root(case, tmp_path / "evidence")
    config = root / ".custody" / "config.toml"
    document = tomllib.loads(config.read_text())
    document.setdefault(section, {})[name] = value
    config.write_text(tomli_w.dumps(document))
    done = run(["timestamp", "--root", root, "--tsa", "http://127.0.0.1:9/"], case.env)
    no_crash(done, "timestamp")
    assert done.returncode == 4, one_line(done.stderr)


SECRET = b"Sesame\xffopen-sesame"


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "generate", "--name", "bob"],
        ["sign", "--root", "ROOT"],
        ["catalogue", "ROOT/media", "--root", "ROOT"],
    ],
    ids=["generate", "sign", "catalogue"],
)
def test_passphrase_that_is_not_utf8_is_refused_without_echoing_it(
    case: Case, tmp_path: Path, argv: list[str]
) -> None:
    root = copy_root(case, tmp_path / "evidence")
    (root / "media" / "new.txt").write_bytes(b"a file to catalogue")
    env = {k: v for k, v in os.environb.items() if k != b"CUSTODY_PASSPHRASE"}
    env.update({k.encode(): v.encode() for k, v in case.env.items()})
    env[b"CUSTODY_PASSPHRASE"] = SECRET
    done = subprocess.run(
        [sys.executable, "-m", "custody", *[a.replace("ROOT", str(root)) for a in argv]],
        env=env,
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    stderr = done.stderr.decode("utf-8", "replace")
    line = one_line(stderr)
    assert done.returncode == 5, line  # KEY_ERROR
    assert "UTF-8" in line
    for piece in (b"Sesame", b"open", b"\xff", b"xff", b"0xff", b"position", b"\\udcff"):
        assert piece not in done.stderr and piece not in done.stdout, (piece, line)
    assert b"in position" not in done.stderr


@pytest.mark.parametrize("shape", ["deep", "not an object", "endless", "argon2 asks 1 TiB"])
def test_hostile_key_file_is_refused_in_one_line(case: Case, tmp_path: Path, shape: str) -> None:
    """The same class of hole: a key file from elsewhere ('keys import') is input too."""
    home = tmp_path / "home"
    shutil.copytree(case.home, home)
    env = {**case.env, "CUSTODY_HOME": str(home)}
    backup = tmp_path / "backup.key"
    if shape == "deep":
        backup.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    elif shape == "not an object":
        backup.write_bytes(b"[1, 2]")
    elif shape == "endless":
        backup = Path("/dev/zero")
    else:
        document = json.loads((home / "keys" / "alice.key").read_bytes())
        document["sealed"]["kdf"]["memory_kib"] = 1 << 30
        (home / "keys" / "alice.key").write_text(json.dumps(document))
    if shape != "argon2 asks 1 TiB":
        done = run(["keys", "import", backup], env, timeout=60)
    else:
        done = run(["sign", "--root", copy_root(case, tmp_path / "evidence")], env, timeout=60)
    no_crash(done, shape)
    line = one_line(done.stderr)
    assert done.returncode == 5, line
    assert "damaged" in line or "out of range" in line, line


# --- 9. zip bundles: damaged members, disagreeing headers, duplicate names --------------------


def lawyer_root(case: Case, tmp_path: Path) -> Path:
    root = tmp_path / "lawyer"
    if not root.exists():
        done = run(["init", root], case.env)
        assert done.returncode == 0, done.stderr
    return root


PAYLOAD = "bundle/data/media/note.txt"


def check_zip_everywhere(case: Case, tmp_path: Path, archive: Path, expect: str, item: str) -> None:
    """verify, import and report: the finding, exit 1, nothing imported."""
    verified = run(["verify", archive, "--json"], case.env)
    no_crash(verified, "verify")
    assert verified.returncode == 1, verified.stderr
    found = [f for f in findings(verified) if f["code"] == expect]
    assert found, [(f["code"], f["item"]) for f in findings(verified)]
    assert any(item in f["item"] for f in found), [f["item"] for f in found]
    lawyer = lawyer_root(case, tmp_path)
    before = sorted(p.relative_to(lawyer) for p in lawyer.rglob("*") if "cache" not in p.parts)
    imported = run(["import", archive, "--root", lawyer], case.env)
    no_crash(imported, "import")
    assert imported.returncode == 1, imported.stderr
    after = sorted(p.relative_to(lawyer) for p in lawyer.rglob("*") if "cache" not in p.parts)
    assert after == before
    out = tmp_path / "report.html"
    made = run(["report", archive, "--out", out], case.env)
    no_crash(made, "report")
    assert made.returncode == 1, made.stderr
    assert expect in out.read_text()


def test_zip_payload_with_a_flipped_byte_is_file_modified(case: Case, tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    data, _ = member_data_offset(case.zip, PAYLOAD)
    raw = case.zip.read_bytes()
    archive.write_bytes(patched(raw, data, bytes([raw[data] ^ 0x01])))
    with zipfile.ZipFile(archive) as z:
        assert z.testzip() == PAYLOAD  # the CRC no longer matches: zipfile itself says so
    check_zip_everywhere(case, tmp_path, archive, "FILE_MODIFIED", "data/media/note.txt")


def test_zip_local_header_naming_another_file_is_malformed(case: Case, tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    _, name_at = member_data_offset(case.zip, PAYLOAD)
    raw = case.zip.read_bytes()
    other = PAYLOAD.replace("note", "nope").encode()
    assert raw[name_at : name_at + len(other)] == PAYLOAD.encode()
    archive.write_bytes(patched(raw, name_at, other))
    check_zip_everywhere(case, tmp_path, archive, "BUNDLE_MALFORMED", "note.txt")


def duplicate_zip(case: Case, target: Path, twin: str, content: bytes, first: bool) -> Path:
    """The case's zip with one more entry named ``twin``, before or after all others."""
    with zipfile.ZipFile(case.zip) as original:
        members = [(i, original.read(i)) for i in original.infolist()]
    with zipfile.ZipFile(target, "w") as archive:
        if first:
            archive.writestr(twin, content)
        for info, data in members:
            archive.writestr(info, data)
        if not first:
            archive.writestr(twin, content)
    return target


@pytest.mark.parametrize(
    ("twin", "first"),
    [
        (PAYLOAD, True),  # unzip extracts the first copy, custody read the last
        (PAYLOAD, False),
        ("bundle/data/media/NOTE.txt", False),  # one file on a case-insensitive disk
        ("bundle/data/media/Note.TXT", True),
        ("bundle/custody/INDEX.json", False),
    ],
    ids=["same-first", "same-last", "case-folded", "case-folded-first", "tag-file"],
)
def test_zip_with_two_entries_of_one_name_is_unsafe(
    case: Case, tmp_path: Path, twin: str, first: bool
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate: that is the point
        archive = duplicate_zip(case, tmp_path / "bundle.zip", twin, b"planted\n", first)
    check_zip_everywhere(case, tmp_path, archive, "BUNDLE_UNSAFE", twin.split("/", 1)[1])


def test_zip_with_unicode_twins_is_unsafe(case: Case, tmp_path: Path) -> None:
    """NFC and NFD spellings of one name: one file on macOS, two in the zip."""
    folder = tmp_path / "bundle"
    shutil.copytree(case.bundle, folder)
    (folder / "data" / "media" / "caf\u00e9.txt").write_bytes(b"composed")
    (folder / "data" / "media" / "cafe\u0301.txt").write_bytes(b"decomposed")
    rebag(folder)
    archive = zip_folder(folder, tmp_path / "bundle.zip")
    check_zip_everywhere(case, tmp_path, archive, "BUNDLE_UNSAFE", "caf")


def test_zip_central_directory_lying_about_a_size_is_a_finding(case: Case, tmp_path: Path) -> None:
    """The same class of hole: a declared size that is not the member's real size."""
    archive = tmp_path / "bundle.zip"
    raw = bytearray(case.zip.read_bytes())
    with zipfile.ZipFile(case.zip) as z:
        info = z.getinfo(PAYLOAD)
        directory = z.start_dir  # type: ignore[attr-defined]
    # Find the central directory entry of PAYLOAD and add one to its uncompressed size.
    at = directory
    while True:
        name_len, extra_len, comment_len = struct.unpack("<HHH", raw[at + 28 : at + 34])
        if raw[at + 46 : at + 46 + name_len] == PAYLOAD.encode():
            break
        at += 46 + name_len + extra_len + comment_len
    struct.pack_into("<L", raw, at + 24, info.file_size + 1)
    archive.write_bytes(bytes(raw))
    done = run(["verify", archive, "--json"], case.env)
    no_crash(done, "verify")
    assert done.returncode == 1
