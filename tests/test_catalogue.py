"""Cataloguing real media: every fact recorded is checked against an independent tool.

The module-scoped ``run`` fixture catalogues a copy of the shipped samples (always) and of
the full corpus (when ``../shared/corpus`` exists) with the real CLI in a subprocess; the
tests then compare the ledger with ``sha256sum``, ``b3sum``, ``exiftool -n -j``, the
manifest and the file system. Tests that change the tree get their own evidence root.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import os
import re
import shutil
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import (
    Item,
    b3sum_file,
    committed_value,
    exiftool_n_j,
    files_under,
    gps_entries,
    items,
    latest_items,
    ledger_lines,
    ledger_records,
    manifest,
    manifest_name,
    merkle_root,
    sha256sum_tree,
    tool,
)

from conftest import (
    PASSPHRASE,
    SAMPLES,
    SHARED_CORPUS,
    Result,
    copy_media,
    needs_corpus,
    run_custody,
    snapshot,
    validate,
)
from custody.acquisition.catalogue import catalogue
from custody.keys.keyring import Keyring
from custody.root import find_root, init_root

CREATED = "2026-11-27T07:02:10.123456Z"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
DUPLICATES = (
    b"field-dump-01/Telegram/Telegram Images/photo_2024-03-12_10-15-00.jpg",
    b"field-dump-01/WhatsApp/Media/WhatsApp Images/IMG-20240312-WA0001.jpg",
)
# The exact on-disk bytes, written out: NFC Arabic, NFD Arabic (U+0627 U+0654), NFD Latin.
UNICODE_NAMES = {
    "arabic-nfc": bytes.fromhex(
        "6669656c642d64756d702d30312f57686174734170702f4d656469612f576861747341707020446f63"
        "756d656e74732fd8aad982d8b1d98ad8b120d8a3d988d984d98a2e706466"
    ),
    "arabic-nfd": bytes.fromhex(
        "6669656c642d64756d702d30312f57686174734170702f4d656469612f576861747341707020496d61"
        "6765732fd8a7d994d8afd984d8a92030322e6a7067"
    ),
    "latin-nfd": bytes.fromhex("6d6973632f6f64642f43616665cc81205465cc816d6f696e2030342e6a7067"),
}
CORRUPT = {
    b"misc/broken/empty.jpg": "File is empty",
    b"misc/broken/IMG_0999.MOV": "Truncated 'mdat' data",
    b"misc/broken/IllegalArgumentException.HeifReader.processBoxes.heif": "Invalid atom size",
}


@dataclass
class Run:
    root: Path
    media: Path
    entries: list[dict[str, Any]]
    report: dict[str, Any]
    code: int
    stderr: str
    before: dict[bytes, tuple[int, int, bytes]]
    after: dict[bytes, tuple[int, int, bytes]]

    def item(self, name: bytes) -> Item:
        return latest_items(self.root)[b"media/" + name]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(SAMPLES, id="samples"),
        pytest.param(SHARED_CORPUS, id="corpus", marks=needs_corpus),
    ],
)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    source: Path = request.param
    base = tmp_path_factory.mktemp("catalogue")
    env = {"CUSTODY_HOME": str(base / "home"), "CUSTODY_PASSPHRASE": PASSPHRASE}
    root = base / "evidence"
    assert run_custody("init", root, env=env).returncode == 0
    assert run_custody("keys", "generate", "--name", "alice", env=env).returncode == 0
    media = copy_media(source, root / "media")
    before = snapshot(media)
    done = run_custody(
        "catalogue", media, "--root", root, "--collector", "Alice", "--json", env=env
    )
    return Run(
        root=root,
        media=media,
        entries=manifest(source),
        report=json.loads(done.stdout) if done.stdout else {},
        code=done.returncode,
        stderr=done.stderr,
        before=before,
        after=snapshot(media),
    )


def parse_file_time(text: str) -> int:
    """Nanoseconds since the epoch of '...T..:..:..nnnnnnnnnZ', without custody's parser."""
    match = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{9})Z", text)
    assert match, text
    parts = [int(g) for g in match.groups()[:6]]
    return calendar.timegm((*parts, 0, 0, 0)) * 1_000_000_000 + int(match.group(7))


# --- one catalogue run, checked from the outside -----------------------------------------


def test_run_succeeded_and_json_matches_schema(run: Run) -> None:
    assert run.code == 0, run.stderr
    validate(run.report, "cli-catalogue.schema.json")
    ledger = ledger_records(run.root)
    by_seq = {r["signed"]["seq"]: r["signed"] for r in ledger}
    for reported in run.report["items"]:
        body = by_seq[reported["seq"]]["body"]
        assert by_seq[reported["seq"]]["type"] == "item"
        assert body["path"] == reported["path"]
        assert body["digests"]["sha256"] == reported["sha256"]
        assert body["size"] == reported["size"]
        assert body.get("duplicate_of", body.get("supersedes")) == reported["related"]
    assert run.report["ledger_size"] == len(ledger)
    assert run.report["checkpoint"] == len(ledger) - 1


def test_every_file_catalogued_exactly_once(run: Run) -> None:
    on_disk = set(files_under(run.media))
    assert on_disk == {manifest_name(e) for e in run.entries}
    recorded = [i.name_bytes for i in items(run.root)]
    assert sorted(recorded) == sorted(b"media/" + n for n in on_disk)
    report = run.report
    assert report["files_seen"] == len(on_disk)
    assert report["added"] + report["duplicates"] == len(on_disk)
    assert report["versions"] == report["unchanged"] == 0
    assert report["skipped"] == []
    assert all(committed_value(run.root, i.body, "collector") == "Alice" for i in items(run.root))
    # Recorded as a salted commitment, never in the clear (docs/format.md, issue 17).
    assert all("collector" not in i.body for i in items(run.root))


def test_digests_sizes_and_mtimes_match_independent_tools(run: Run) -> None:
    sha256 = sha256sum_tree(run.media)
    by_manifest = {manifest_name(e): e["sha256"] for e in run.entries}
    for name, digest in sha256.items():
        item = run.item(name)
        assert item.sha256 == digest == by_manifest[name], name
        assert item.body["digests"]["blake3"] == b3sum_file(run.media / os.fsdecode(name))
        st = os.lstat(os.path.join(os.fsencode(run.media), name))
        assert item.body["size"] == st.st_size
        assert parse_file_time(item.body["mtime"]) == st.st_mtime_ns


def test_gps_make_and_model_match_exiftool(run: Run) -> None:
    photos = gps_entries(run.entries)
    assert len(photos) >= 3
    names = [manifest_name(entry) for entry, _, _ in photos]
    out = tool(
        "exiftool", "-n", "-j", "-GPSLatitude", "-GPSLongitude", "-Make", "-Model", "--", *names,
        cwd=run.media,
    ).stdout
    said = {os.fsencode(d["SourceFile"]): d for d in json.loads(out)}
    for (entry, lat, lon), name in zip(photos, names, strict=True):
        meta = run.item(name).body["metadata"]
        exif = said[name]
        assert meta["Composite:GPSLatitude"] == exif["GPSLatitude"], name
        assert meta["Composite:GPSLongitude"] == exif["GPSLongitude"], name
        assert abs(exif["GPSLatitude"] - lat) < 1e-5 and abs(exif["GPSLongitude"] - lon) < 1e-5
        makes = {v for k, v in meta.items() if k.endswith(":Make")}
        models = {v for k, v in meta.items() if k.endswith(":Model")}
        assert exif["Make"] in makes and exif["Model"] in models, name
        assert str(exif["Make"]) == entry["make"] and str(exif["Model"]) == entry["model"]


@pytest.mark.parametrize("which", sorted(UNICODE_NAMES))
def test_unicode_names_come_back_byte_exact(run: Run, which: str) -> None:
    name = UNICODE_NAMES[which]
    folder, _, leaf = name.rpartition(b"/")
    assert leaf in os.listdir(os.path.join(os.fsencode(run.media), folder))
    item = run.item(name)
    assert item.body["path"].encode("utf-8") == b"media/" + name
    assert "path_bytes" not in item.body  # valid UTF-8: the path itself is exact
    # The line holds the raw UTF-8 (canonical JSON never escapes it) and no other form.
    line = ledger_lines(run.root)[item.seq]
    assert b"media/" + name in line
    other = unicodedata.normalize(
        "NFC" if which.endswith("nfd") else "NFD", name.decode()
    ).encode()
    if other != name:
        assert other not in line
    assert item.sha256 == sha256sum_tree(run.media)[name]


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_files_catalogued_with_digest_and_metadata_problem(run: Run, name: bytes) -> None:
    item = run.item(name)
    assert item.sha256 == sha256sum_tree(run.media)[name]
    meta = item.body["metadata"]
    problems = [item.body.get("metadata_error") or ""] + [
        str(v) for k, v in meta.items() if k.endswith(":Warning") or k.endswith(":Error")
    ]
    assert any(CORRUPT[name] in p for p in problems), problems
    if name.endswith(b"empty.jpg"):
        assert item.body["size"] == 0 and item.sha256 == EMPTY_SHA256
        assert item.body["metadata_error"] == "File is empty"
        reported = [o for o in run.report["items"] if o["path"].endswith("empty.jpg")]
        assert reported[0]["metadata_error"] == "File is empty"


def _problems(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k.endswith((":Warning", ":Error"))}


def test_every_exiftool_warning_and_error_is_recorded(run: Run) -> None:
    """What exiftool itself says (same options, run here) is what the record keeps."""
    names = [manifest_name(e) for e in run.entries]
    out = tool(
        "exiftool", "-j", "-a", "-G1", "-n", "--", *names, cwd=run.media, check=False
    ).stdout
    said = {os.fsencode(d["SourceFile"]): _problems(d) for d in json.loads(out)}
    assert set(said) == set(names)
    for entry in run.entries:
        name = manifest_name(entry)
        body = run.item(name).body
        assert _problems(body["metadata"]) == said[name], entry["path"]
        errors = [w.partition(": ")[2] for w in entry["exiftool_warnings"] if w.startswith("Error")]
        assert body.get("metadata_error") == ("; ".join(errors) or None)


def test_originals_unchanged(run: Run) -> None:
    assert run.before == run.after
    assert len(run.after) == len(run.entries)


def test_exact_duplicate_pair_recorded_as_duplicate(run: Run) -> None:
    first, second = (run.item(n) for n in DUPLICATES)
    assert first.sha256 == second.sha256
    assert "duplicate_of" not in first.body
    assert second.body["duplicate_of"] == first.seq
    all_items = items(run.root)
    assert [i.seq for i in all_items if i.sha256 == first.sha256] == [first.seq, second.seq]
    # No other record claims to duplicate anything: the corpus has one exact pair.
    assert [i for i in all_items if "duplicate_of" in i.body] == [second]


def test_ledger_is_chained_and_ends_with_checkpoint_over_everything(run: Run) -> None:
    lines = ledger_lines(run.root)
    records = ledger_records(run.root)
    assert records[0]["signed"]["type"] == "key" and records[0]["signed"]["prev"] is None
    for seq, record in enumerate(records):
        assert record["signed"]["seq"] == seq
        if seq:
            assert record["signed"]["prev"] == hashlib.sha256(lines[seq - 1]).hexdigest()
    last = records[-1]["signed"]
    assert last["type"] == "checkpoint"
    assert last["body"]["tree_size"] == len(lines) - 1
    assert last["body"]["root"] == merkle_root(lines[:-1]).hex()


# --- runs that change the tree -------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A keyring and an evidence root holding a catalogued copy of the shipped samples."""
    base = tmp_path_factory.mktemp("template")
    home = base / "home"
    root = init_root(base / "evidence")
    signer = Keyring(home / "keys").generate("alice", "documenter", PASSPHRASE, CREATED)
    copy_media(SAMPLES, root.path / "media")
    report = catalogue(root, [root.path / "media"], signer.unlock(PASSPHRASE))
    assert not report.skipped and report.count("new") == len(files_under(SAMPLES)) - 1
    return home, root.path


@pytest.fixture
def small(template: tuple[Path, Path], env: Path, tmp_path: Path) -> Path:
    """A private copy of the template (mtimes kept, so nothing looks changed)."""
    home, root = template
    shutil.copytree(home, env)
    return shutil.copytree(root, tmp_path / "evidence", symlinks=True)


def test_recatalogue_adds_nothing(small: Path, cli: Callable[..., Result]) -> None:
    before = (small / ".custody" / "ledger.jsonl").read_bytes()
    count = len(files_under(small / "media"))
    for extra in ([], ["--rehash"]):
        result = cli("catalogue", small / "media", "--root", small, "--json", *extra)
        assert result.code == 0, result.err
        report = result.json()
        validate(report, "cli-catalogue.schema.json")
        assert report["unchanged"] == report["files_seen"] == count
        assert report["items"] == [] and report["checkpoint"] is None
        assert (small / ".custody" / "ledger.jsonl").read_bytes() == before


def test_changed_file_recorded_as_new_version_and_reported(
    small: Path, cli: Callable[..., Result]
) -> None:
    name = b"media/field-dump-01/DCIM/Camera/PXL_20231006_225351.jpg"
    old = latest_items(small)[name]
    with open(small / os.fsdecode(name), "ab") as handle:
        handle.write(b"edited")
    result = cli("catalogue", small / "media", "--root", small)
    # Recorded, and loudly: the run finished but a person must look (docs/exit-codes.md).
    assert result.code == 1, result.err
    assert "CHANGED" in result.err and "PXL_20231006_225351.jpg" in result.err
    assert f"record {old.seq}" in result.err
    new = latest_items(small)[name]
    assert new.seq > old.seq
    assert new.body["supersedes"] == old.seq and "duplicate_of" not in new.body
    assert new.sha256 == sha256sum_tree(small / "media")[name[len(b"media/"):]]
    assert new.sha256 != old.sha256
    assert len([i for i in items(small) if i.name_bytes == name]) == 2


def test_silent_same_size_change_needs_rehash(small: Path, cli: Callable[..., Result]) -> None:
    """Size and mtime restored: only --rehash reads the file again (documented trade-off)."""
    name = b"media/" + UNICODE_NAMES["latin-nfd"]
    path = Path(os.fsdecode(os.fsencode(small) + b"/" + name))
    st = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(st.st_size - 100)
        handle.write(b"\x00" * 10)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    plain = cli("catalogue", small / "media", "--root", small, "--json").json()
    assert plain["versions"] == 0
    rehash = cli("catalogue", small / "media", "--root", small, "--json", "--rehash").json()
    assert rehash["versions"] == 1
    assert rehash["items"][0]["path"].encode() == name
    assert rehash["items"][0]["related"] == latest_items(small)[name].body["supersedes"]


def test_moved_file_is_a_duplicate_of_its_earlier_record(
    small: Path, cli: Callable[..., Result]
) -> None:
    old_name = b"media/field-dump-01/DCIM/Camera/IMG_20110506_095948.jpg"
    old = latest_items(small)[old_name]
    (small / "media" / "sorted").mkdir()
    os.rename(os.fsencode(small) + b"/" + old_name, small / "media" / "sorted" / "moved.jpg")
    report = cli("catalogue", small / "media", "--root", small, "--json").json()
    assert [(o["path"], o["kind"], o["related"]) for o in report["items"]] == [
        ("media/sorted/moved.jpg", "duplicate", old.seq)
    ]
    moved = latest_items(small)[b"media/sorted/moved.jpg"]
    assert moved.body["duplicate_of"] == old.seq and moved.sha256 == old.sha256


@pytest.mark.timeout(60)
def test_symlinks_and_fifo_are_skipped_never_followed(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    media = copy_media(SAMPLES, evidence / "media")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.jpg"
    secret.write_bytes(b"not evidence: must never be read into the ledger")
    (outside / "inner.jpg").write_bytes(b"inside a linked folder")
    (media / "link.jpg").symlink_to(secret)
    (media / "linked-folder").symlink_to(outside, target_is_directory=True)
    os.mkfifo(media / "pipe")
    result = cli("catalogue", media, "--root", evidence, "--json")
    assert result.code == 1, result.err  # FINDINGS
    report = result.json()
    validate(report, "cli-catalogue.schema.json")
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert skipped == {
        "media/link.jpg": "symbolic link, not followed",
        "media/linked-folder": "symbolic link, not followed",
        "media/pipe": "not a regular file (device, FIFO or socket)",
    }
    assert report["added"] + report["duplicates"] == len(files_under(SAMPLES))
    ledger = (evidence / ".custody" / "ledger.jsonl").read_bytes()
    assert b"not evidence" not in ledger and b"inner.jpg" not in ledger
    assert hashlib.sha256(secret.read_bytes()).hexdigest().encode() not in ledger
    # Text mode says so on stderr, one line per skipped entry, and still exits 1.
    again = cli("catalogue", media, "--root", evidence)
    assert again.code == 1
    assert again.err.count("skipped") == 3


def test_awkward_names_are_read_by_exiftool_as_themselves(
    evidence: Path, cli: Callable[..., Result]
) -> None:
    media = evidence / "media"
    media.mkdir()
    gps = SAMPLES / "field-dump-01" / "DCIM" / "Camera" / "PXL_20231006_225351.jpg"
    other = Path(os.fsdecode(os.fsencode(SAMPLES) + b"/" + UNICODE_NAMES["latin-nfd"]))
    names = [b"-n.jpg", b"line\nbreak.jpg", b"#comment.jpg", b" lead.jpg", b"bad\xffname.jpg"]
    for index, name in enumerate(names):
        shutil.copyfile(gps if index % 2 == 0 else other, os.fsencode(media) + b"/" + name)
    result = cli("catalogue", media, "--root", evidence, "--json")
    assert result.code == 0, result.err
    recorded = latest_items(evidence)
    for name in names:
        item = recorded[b"media/" + name]
        exif = exiftool_n_j(os.fsencode(media) + b"/" + name, "Model", "GPSLatitude")
        assert item.body["metadata"]["IFD0:Model"] == exif["Model"], name
        assert item.body["metadata"]["Composite:GPSLatitude"] == exif["GPSLatitude"]
        assert item.body["metadata"].get("File:FileName") is None  # where WE read it: dropped
    bad = recorded[b"media/bad\xffname.jpg"]
    assert bad.body["path"] == "media/bad\ufffdname.jpg"
    assert base64.b64decode(bad.body["path_bytes"]) == b"media/bad\xffname.jpg"


class _ChangeOnRead:
    """An Observer that appends to a file from inside the hashing thread's progress."""

    def __init__(self, path: Path, times: int) -> None:
        self.path = path
        self.times = times
        self.lock = threading.Lock()

    def planned(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        with self.lock:
            if self.times > 0:
                self.times -= 1
                with open(self.path, "ab") as handle:
                    handle.write(b"more footage")

    def finished_file(self, path: str) -> None:
        pass


@pytest.mark.parametrize("changes, recorded", [(1, True), (1000, False)])
def test_file_changing_while_catalogued_is_reread_or_skipped(
    evidence: Path, env: Path, changes: int, recorded: bool
) -> None:
    video = evidence / "VID_0001.mp4"
    video.write_bytes(os.urandom(3 << 20))
    os.utime(video, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    root = find_root(explicit=str(evidence))
    signer = Keyring().select(None).unlock(PASSPHRASE)
    observer = _ChangeOnRead(video, changes)
    report = catalogue(root, [str(video)], signer, observer=observer, jobs=1)
    if recorded:
        assert report.skipped == []
        (item,) = items(evidence)
        # The digest describes the file as it is now, not the bytes that were changing.
        assert item.sha256 == tool("sha256sum", video).stdout.split()[0].decode()
        assert item.body["size"] == video.stat().st_size == (3 << 20) + len(b"more footage")
    else:
        assert [s.reason for s in report.skipped] == ["file changed while it was being read"]
        assert items(evidence) == []


# --- --jobs ------------------------------------------------------------------------------


def test_jobs_change_nothing_recorded_but_the_time(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    """Files hashed and read by exiftool on several threads are recorded in walk order, with
    the same digests and metadata as one thread records; export on several threads makes a
    bundle that verifies. The first file is the largest, so it finishes last."""
    source = tmp_path / "card"
    source.mkdir()
    (source / "a-large.bin").write_bytes(os.urandom(3 << 20))
    for n in range(12):
        (source / f"b-{n:02}.txt").write_bytes(os.urandom(100 + n * 997))
    recorded = []
    for jobs in ("1", "3"):
        root = tmp_path / f"root-{jobs}"
        assert cli("init", root).code == 0
        if jobs == "1":
            assert cli("keys", "generate", "--name", "alice").code == 0
        shutil.copytree(source, root / "card")
        result = cli("catalogue", root / "card", "--root", root, "--jobs", jobs)
        assert result.code == 0, result.err
        recorded.append(
            [(i.name_bytes, i.body["digests"], i.body.get("metadata")) for i in items(root)]
        )
    assert [name for name, _, _ in recorded[0]] == sorted(name for name, _, _ in recorded[0])
    assert recorded[0] == recorded[1]
    bundle = tmp_path / "bundle"
    exported = cli("export", "--all", "--out", bundle, "--root", root, "--jobs", "3")
    assert exported.code == 0, exported.err
    assert sha256sum_tree(bundle / "data" / "card") == sha256sum_tree(source)
    verified = cli("verify", bundle)
    assert verified.code == 0, verified.out  # the signer is in this verifier's own keyring


def test_jobs_below_one_is_a_usage_error(evidence: Path, cli: Callable[..., Result]) -> None:
    (evidence / "f.txt").write_bytes(b"x")
    result = cli("catalogue", evidence / "f.txt", "--root", evidence, "--jobs", "0")
    assert result.code == 2
    assert items(evidence) == []
