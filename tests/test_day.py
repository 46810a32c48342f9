"""The documenter's and the lawyer's day (issue 17), each rough edge through the real CLI.

Output that hides nothing (whole paths, digests and fingerprints, piped or at a terminal of
80 columns; one finding per changed file; "none" explained; unread metadata named; the
files column counting files; ``[required]`` in --help), names people have (a holder's full
name in any script; typed Arabic names under Unicode normalisation), tags and incidents as
selections, a second ingest of the same card recognised, an interrupted ingest explained
and finished, passphrases judged, and a tampered zip reported as tampering.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import ledger_records

from conftest import PASSPHRASE, SAMPLES, Result, run_custody, validate
from custody.errors import ExitCode

CLI = Callable[..., Result]
CAMERA = SAMPLES / "field-dump-01" / "DCIM" / "Camera"
HEX64 = re.compile(r"[0-9a-f]{64}")


def grouped(fingerprint: str) -> str:
    return " ".join(fingerprint[i : i + 4] for i in range(0, 64, 4))


@pytest.fixture
def small(tmp_path: Path, cli: CLI) -> Path:
    """A root with the camera folder and the WhatsApp images catalogued (one key)."""
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "Amina Haddad").code == 0
    media = root / "card"
    shutil.copytree(CAMERA, media / "DCIM" / "Camera")
    shutil.copytree(
        SAMPLES / "field-dump-01" / "WhatsApp" / "Media" / "WhatsApp Images", media / "images"
    )
    done = cli("catalogue", media, "--root", root, "--collector", "A. Field")
    assert done.code == 0, done.err
    return root


def in_terminal(argv: list[str], columns: int, env: dict[str, str]) -> str:
    """Run a command as if at a terminal of ``columns`` (util-linux script(1) gives it a pty)."""
    command = " ".join(f"'{a}'" for a in argv)
    result = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        env={**os.environ, **env, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stdout)


def unboxed(text: str) -> str:
    """Terminal text without table borders and whitespace: folded cells joined again."""
    return re.sub(r"[\s│┃┆┊║|]+", "", text)


# --- 1, 2, 3: nothing cut, one finding per file, "none" explained ----------------------------


def test_a_modified_file_is_one_whole_finding_piped_and_at_80_columns(
    small: Path, cli: CLI, env: Path
) -> None:
    target = small / "card" / "DCIM" / "Camera" / "VID_20201023_202729.mp4"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 1
    target.chmod(0o644)
    target.write_bytes(bytes(data))
    piped = run_custody("verify", "--root", small, env={"CUSTODY_HOME": str(env)})
    assert piped.returncode == ExitCode.FINDINGS
    findings = [line for line in piped.stdout.splitlines() if line.startswith("finding ")]
    modified = [line for line in findings if "FILE_MODIFIED" in line]
    assert len(modified) == 1, piped.stdout  # one file, one finding: every digest in it
    line = modified[0]
    assert "card/DCIM/Camera/VID_20201023_202729.mp4" in line and "…" not in piped.stdout
    expected = re.search(r"expected (sha256:\S+ blake3:\S+|blake3:\S+ sha256:\S+)", line)
    assert expected is not None and len(HEX64.findall(line)) == 4, line
    record = json.loads(cli("show", "card/DCIM/Camera/VID_20201023_202729.mp4", "--root",
                            small, "--json").out)["record"]["signed"]["body"]  # fmt: skip
    for algorithm, value in record["digests"].items():
        assert f"{algorithm}:{value}" in line
    # "nothing to check" is not a pass: no tokens reads "none", and says what that means.
    timestamps = next(x for x in piped.stdout.splitlines() if x.startswith("check timestamps"))
    assert timestamps.startswith("check timestamps: none (0): no RFC 3161 timestamp token")
    # At a terminal of 80 columns the cells fold: every character is still there.
    shown = in_terminal([sys.executable, "-m", "custody", "verify", "--root", str(small)], 80,
                        {"CUSTODY_HOME": str(env)})  # fmt: skip
    assert "…" not in shown and "NOT VERIFIED" in shown
    flat = unboxed(shown)
    for value in record["digests"].values():
        assert value in flat
    assert "card/DCIM/Camera/VID_20201023_202729.mp4" in flat


def test_keys_list_and_event_output_are_never_cut(small: Path, cli: CLI, env: Path) -> None:
    listed = cli("keys", "list")
    fingerprint = cli("keys", "list", "--json").json()["keys"][0]["fingerprint"]
    assert grouped(fingerprint) in listed.out and "Amina Haddad" in listed.out
    at80 = in_terminal([sys.executable, "-m", "custody", "keys", "list"], 80,
                       {"CUSTODY_HOME": str(env)})  # fmt: skip
    assert "…" not in at80 and fingerprint in unboxed(at80)
    long_text = "a long note that goes on " * 12
    noted = cli("event", "note", "card", "--text", long_text, "--incident", "Market, 12 March",
                "--root", small)  # fmt: skip
    assert noted.code == 0, noted.err
    assert "…" not in noted.out and long_text.strip() in noted.out
    assert "card/DCIM/Camera/VID_20201023_202729.mp4" in noted.out
    logged = cli("log", "--root", small)
    assert "…" not in logged.out and fingerprint in logged.out


def test_a_changed_bundle_file_is_one_finding_with_every_digest(
    small: Path, cli: CLI, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    assert cli("export", "card/DCIM", "--out", out, "--root", small).code == 0
    victim = out / "data" / "card" / "DCIM" / "Camera" / "20160912_100531.jpg"
    data = bytearray(victim.read_bytes())
    data[100] ^= 1
    victim.write_bytes(bytes(data))
    checked = cli("verify", out, "--json")
    validate(checked.json(), "cli-verify.schema.json")
    modified = [f for f in checked.json()["findings"] if f["code"] == "FILE_MODIFIED"]
    assert len(modified) == 1, modified
    # Every digest re-hashed is named: SHA-256 and BLAKE3, which the signed item record
    # carries (the unsigned manifest-sha512.txt is re-hashed only on request, since it
    # proves nothing the signed digests do not).
    for algorithm in ("sha256", "blake3"):
        assert f"{algorithm}:" in modified[0]["expected"] and algorithm in modified[0]["message"]
        assert f"{algorithm}:" in modified[0]["found"]


# --- 4: catalogue names unread metadata; files column; [required] ---------------------------


def test_catalogue_names_each_file_whose_metadata_could_not_be_read(
    tmp_path: Path, cli: CLI
) -> None:
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    shutil.copytree(SAMPLES / "misc" / "broken", root / "broken")
    result = cli("catalogue", root / "broken", "--root", root)
    assert result.code == 0, result.err
    named = dict(re.findall(r"metadata not read (.+?) \(record (\d+)", result.err))
    records = {r["signed"]["seq"]: r["signed"]["body"] for r in ledger_records(root)}
    unread = {b["path"]: seq for seq, b in records.items() if b.get("metadata_error")}
    assert unread and {p: int(s) for p, s in named.items()} == unread
    assert f"metadata not read (catalogued anyway, listed above): {len(unread)}" in result.out


def test_progress_files_column_counts_files_not_bytes() -> None:
    from rich.console import Console

    from custody.cli import common

    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    original = common.err
    common.err = console
    try:
        with common.progress_bar("Cataloguing", True) as observer:
            observer.planned(17, 3 * 1024 * 1024)
            observer.advance(1024 * 1024)
            for name in ("a", "b", "c"):
                observer.finished_file(name)
            observer.progress.refresh()
            text = console.file.getvalue()  # type: ignore[attr-defined]
    finally:
        common.err = original
    assert "3/17 files" in text
    assert "1048576" not in text  # bytes are shown as sizes, never as a file count


def test_help_shows_required_without_a_backslash(cli: CLI) -> None:
    shown = run_custody("event", "derive", "--help")
    assert "[required]" in shown.stdout and "\\[" not in shown.stdout


# --- 5: Ctrl-C during ingest ------------------------------------------------------------------


def test_ctrl_c_during_ingest_says_what_is_left_and_the_same_command_finishes(
    tmp_path: Path, cli: CLI, env: Path
) -> None:
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    card = tmp_path / "card"
    card.mkdir()
    for number in range(1500):
        (card / f"IMG_{number:04d}.jpg").write_bytes(os.urandom(64 * 1024))
    argv = [sys.executable, "-m", "custody", "ingest", str(card), "--into", "cards",
            "--root", str(root)]  # fmt: skip
    child_env = {**os.environ, "CUSTODY_HOME": str(env), "CUSTODY_PASSPHRASE": PASSPHRASE}
    proc = subprocess.Popen(argv, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    copies = root / "cards" / "card"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if copies.is_dir() and len(os.listdir(copies)) >= 20:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the ingest finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    message = err.decode()
    assert proc.returncode == ExitCode.INTERRUPTED, message
    assert "interrupted:" in message and "Run the same command again" in message
    assert "NOT yet catalogued" in message or "cataloguing had begun" in message
    assert len(os.listdir(copies)) >= 20
    again = subprocess.run(argv, env=child_env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    paths = {r["signed"]["body"]["path"] for r in ledger_records(root)
             if r["signed"]["type"] == "item"}  # fmt: skip
    assert len(paths) == 1500
    assert cli("verify", "--root", root).code == 0


# --- 6, 12, 13: holders' names, passphrases, what keys generate says ------------------------


def test_holders_full_names_in_any_script(tmp_path: Path, cli: CLI) -> None:
    made = cli("keys", "generate", "--name", "Amina Haddad")
    assert made.code == 0, made.err
    assert "amina-haddad" in made.out
    key_file = re.search(r"Key file:\s+(\S+)", made.out)
    assert key_file and Path(key_file.group(1)).is_file()
    assert "custody keys export amina-haddad --private --out" in made.out
    assert "another channel" in made.out
    fingerprint = cli("keys", "list", "--json").json()["keys"][0]["fingerprint"]
    assert grouped(fingerprint) in made.out
    arabic = cli("keys", "generate", "--name", "أمينة", "--role", "lawyer", "--json")
    assert arabic.code == 0, arabic.err
    validate(arabic.json(), "cli-keys-generate.schema.json")
    assert arabic.json()["holder"] == "أمينة" and arabic.json()["name"].startswith("key-")
    assert cli("keys", "generate", "--name", "x", "--handle", "not a handle").code == ExitCode.USAGE
    assert cli("keys", "generate", "--name", "x", "--role", "boss").code == ExitCode.USAGE
    # The holder is in the key's introduction record, and shown where the key signed.
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    shutil.copytree(CAMERA, root / "media")
    assert cli("catalogue", root / "media", "--root", root, "--key", "amina-haddad").code == 0
    keys = [r["signed"]["body"] for r in ledger_records(root) if r["signed"]["type"] == "key"]
    assert keys[0]["holder"] == "Amina Haddad" and keys[0]["name"] == "amina-haddad"
    verified = cli("verify", "--root", root)
    assert "signer amina-haddad (Amina Haddad)" in verified.out
    story = cli("history", "media/20160912_100531.jpg", "--root", root, "--json").json()
    assert story["entries"][0]["signer_name"] == "amina-haddad (documenter, Amina Haddad)"
    bundle = tmp_path / "bundle"
    assert cli("export", "--all", "--out", bundle, "--root", root).code == 0
    index = json.loads((bundle / "custody" / "index.json").read_text())
    assert index["keys"][0]["holder"] == "Amina Haddad"
    assert "amina-haddad (Amina Haddad)" in (bundle / "HOW-TO-VERIFY.txt").read_text()
    report = tmp_path / "report.html"
    assert cli("report", bundle, "--out", report).code == 0
    assert "Amina Haddad" in report.read_text()


@pytest.mark.parametrize(
    "passphrase, why",
    [("", "empty passphrase is refused"), ("x", "fewer than 12"),
     ("password12345", "could guess it in")],
)
def test_weak_passphrases_are_refused_for_new_keys(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, passphrase: str, why: str
) -> None:
    monkeypatch.setenv("CUSTODY_PASSPHRASE", passphrase)
    refused = cli("keys", "generate", "--name", "bob")
    assert refused.code == ExitCode.KEY_ERROR and why in refused.err
    assert cli("keys", "list", "--json").json()["keys"] == []
    allowed = cli("keys", "generate", "--name", "bob", "--allow-weak-passphrase")
    assert (allowed.code == 0) == bool(passphrase), allowed.err


# --- 7: typed Arabic names ----------------------------------------------------------------------


def test_typed_names_match_under_normalisation_and_lookalikes_are_listed(
    tmp_path: Path, cli: CLI
) -> None:
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    images = root / "images"
    shutil.copytree(SAMPLES / "field-dump-01" / "WhatsApp" / "Media" / "WhatsApp Images", images)
    stored = next(n for n in os.listdir(images) if n.startswith("أ") or n.startswith("ا"))
    assert not unicodedata.is_normalized("NFC", stored)  # the sample is stored decomposed
    (images / unicodedata.normalize("NFD", "Café.jpg")).write_bytes(b"one")
    (images / unicodedata.normalize("NFC", "Café.jpg")).write_bytes(b"two")
    assert cli("catalogue", images, "--root", root).code == 0
    typed = "images/" + unicodedata.normalize("NFC", stored)
    shown = cli("show", typed, "--root", root, "--json")
    assert shown.code == 0, shown.err
    assert shown.json()["record"]["signed"]["body"]["path"] == "images/" + stored
    both = cli("show", "images/Café.jpg", "--root", root)
    assert both.code == ExitCode.USAGE
    numbers = re.findall(r"record\(s\) (\d+): ", both.err)
    assert len(numbers) == 2 and "decomposed (NFD)" in both.err and "composed (NFC)" in both.err
    for number in numbers:
        assert cli("show", number, "--root", root).code == 0


# --- 10: tags and incidents as selections; options that cannot apply -------------------------


def test_tags_and_incidents_select_items_everywhere(small: Path, cli: CLI, tmp_path: Path) -> None:
    tagged = cli("tag", "card/DCIM", "--tag", "march", "--root", small, "--json")
    assert tagged.code == 0, tagged.err
    validate(tagged.json(), "cli-tag.schema.json")
    camera = set(tagged.json()["changes"][0]["items"])
    assert len(camera) == 5
    assert cli("tag", "card/DCIM", "--tag", "march", "--root", small).code == ExitCode.USAGE
    noted = cli("event", "note", "card/images", "--incident", "Market", "--root", small)
    assert noted.code == 0
    assert cli("sign", "--root", small).code == 0  # exports need their records under a checkpoint
    bundle = tmp_path / "march"
    exported = cli("export", "--tag", "march", "--out", bundle, "--root", small, "--json")
    assert exported.code == 0 and set(exported.json()["items"]) == camera
    incident = cli("history", "--incident", "Market", "--root", small, "--json")
    validate(incident.json(), "cli-history.schema.json")
    assert all(h["path"].startswith("card/images/") for h in incident.json()["histories"])
    access = cli("event", "access", "--tag", "march", "--incident", "Market", "--reason",
                 "review", "--root", small, "--json")  # fmt: skip
    assert access.code == 0 and len(access.json()["record"]["signed"]["body"]["items"]) == 8
    report = tmp_path / "march.html"
    assert cli("report", small, "--tag", "march", "--out", report).code == 0
    html = report.read_text()
    # The report says it shows only some items, which, and that verification covered all.
    assert "This report shows 5 of the" in html and ": tag march. The verification" in html
    assert "20160912_100531.jpg" in html
    assert "IMG-20240312-WA0001.jpg" not in html
    untag = cli("tag", "card/DCIM/Camera/20160912_100531.jpg", "--untag", "march", "--root",
                small, "--json")  # fmt: skip
    assert untag.code == 0
    again = cli("export", "--tag", "march", "--out", tmp_path / "b2", "--root", small, "--json")
    assert len(again.json()["items"]) == 4
    # Options that could not apply are refused, never silently ignored.
    assert cli("export", "--all", "--tag", "march", "--out", tmp_path / "b3", "--root",
               small).code == ExitCode.USAGE  # fmt: skip
    assert cli("export", "--tag", "nope", "--out", tmp_path / "b4", "--root",
               small).code == ExitCode.USAGE  # fmt: skip
    # catalogue --tag on files already catalogued records a tag event for them...
    relabel = cli("catalogue", small / "card" / "images", "--tag", "witness", "--root", small,
                  "--json")  # fmt: skip
    assert relabel.code == 0 and len(relabel.json()["tagged"]["items"]) == 3
    validate(relabel.json(), "cli-catalogue.schema.json")
    # ...and a description that only a new record could carry is refused.
    described = cli("catalogue", small / "card" / "images", "--collector", "B", "--root", small)
    assert described.code == ExitCode.USAGE and "did not apply" in described.err


# --- 11: the same card twice --------------------------------------------------------------------


def test_a_second_ingest_of_the_same_card_is_recognised(tmp_path: Path, cli: CLI) -> None:
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    card = tmp_path / "sdcard"
    shutil.copytree(CAMERA, card)
    assert cli("ingest", card, "--into", "card-01", "--root", root).code == 0
    second = cli("ingest", card, "--into", "card-02", "--root", root, "--json")
    assert second.code == 0, second.err
    validate(second.json(), "cli-ingest.schema.json")
    known = second.json()["already_ingested"]
    assert second.json()["copied"] == 0 and len(known) == 5
    assert all(k["path"].startswith("card-01/sdcard/") and k["how"] == "ingested" for k in known)
    assert not (root / "card-02").exists()
    said = cli("ingest", card, "--into", "card-02", "--root", root)
    assert "ALREADY IN THE EVIDENCE ROOT" in said.err and "card-01/sdcard" in said.err
    forced = cli("ingest", card, "--into", "card-02", "--again", "--root", root, "--json")
    assert forced.json()["copied"] == 5
    assert cli("verify", "--root", root).code == 0


# --- 18: a tampered zip ----------------------------------------------------------------------


def test_a_tampered_zip_is_reported_as_tampering_and_still_reported(
    small: Path, cli: CLI, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    assert cli("export", "card/DCIM", "--out", out, "--zip", "--root", small).code == 0
    archive = tmp_path / "bundle.zip"
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(".mp4"))
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 1
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(bytes(data))
    checked = cli("verify", tampered, "--json")
    assert checked.code == ExitCode.FINDINGS
    document: dict[str, Any] = checked.json()
    validate(document, "cli-verify.schema.json")
    (finding,) = [f for f in document["findings"] if f["severity"] == "error"]
    assert finding["code"] == "FILE_MODIFIED" and finding["item"].endswith(".mp4")
    assert "altered or damaged inside the zip" in finding["message"]
    report = tmp_path / "tampered.html"
    reported = cli("report", tampered, "--out", report)
    assert reported.code == ExitCode.FINDINGS and "NOT VERIFIED" in reported.out
    assert "NOT VERIFIED" in report.read_text()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    assert cli("verify", truncated).code == ExitCode.UNUSABLE_INPUT
    half = cli("report", truncated, "--out", tmp_path / "truncated.html")
    assert half.code == ExitCode.FINDINGS and "NOT VERIFIED" in half.out
    assert "cannot be verified" in (tmp_path / "truncated.html").read_text()
