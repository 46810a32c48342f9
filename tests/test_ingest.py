"""Ingest: copying a card into the evidence root, each copy proven identical to its source.

The "card" is a copy of a corpus dump outside the root. Every check is independent of
custody: ``sha256sum`` on both trees, ``stat``/``findmnt`` for the volume, os.lstat for
mtimes. Interruption is real (a subprocess killed with SIGKILL in the middle of a run) and
so is corruption (a byte of the written copy flipped through the copy_written hook).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import (
    committed_value,
    files_under,
    items,
    latest_items,
    ledger_path,
    sha256sum_tree,
    tool,
)

from conftest import PASSPHRASE, Result, copy_media, media_source, snapshot, validate
from custody.acquisition.ingest import CopyFailure, IngestReport, ingest, udev_unescape
from custody.errors import UsageError
from custody.keys.keyring import Keyring
from custody.root import find_root

CARD = "SDCARD"


class Hooks:
    """An IngestObserver whose hooks run test code at the real points of the run."""

    def __init__(
        self,
        on_copy: Callable[[str, str], None] | None = None,
        on_advance: Callable[[int], None] | None = None,
    ) -> None:
        self.on_copy = on_copy
        self.on_advance = on_advance
        self.copies: list[tuple[str, str]] = []

    def planned(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        if self.on_advance is not None:
            self.on_advance(nbytes)

    def finished_file(self, path: str) -> None:
        pass

    def copy_written(self, source: str, copy: str) -> None:
        self.copies.append((source, copy))
        if self.on_copy is not None:
            self.on_copy(source, copy)


@pytest.fixture
def card(tmp_path: Path) -> Path:
    """A camera card outside the evidence root: a copy of the first field dump."""
    return copy_media(media_source() / "field-dump-01", tmp_path / "outside" / CARD)


def run_ingest(evidence: Path, sources: list[Path], observer: Hooks | None = None) -> IngestReport:
    root = find_root(explicit=str(evidence))
    signer = Keyring().select(None).unlock(PASSPHRASE)
    return ingest(root, [str(s) for s in sources], signer, observer=observer)


def mtimes(tree: Path) -> dict[bytes, int]:
    base = os.fsencode(tree)
    return {name: os.lstat(base + b"/" + name).st_mtime_ns for name in files_under(tree)}


# --- a complete ingest ---------------------------------------------------------------------


def test_ingest_copies_verified_layout_mtimes_and_acquisition(
    evidence: Path, cli: Callable[..., Result], card: Path
) -> None:
    before = snapshot(card)
    result = cli("ingest", card, "--into", "cases/2024", "--root", evidence, "--collector", "Bo")
    assert result.code == 0, result.err
    names = files_under(card)
    assert f"Copied {len(names)} files" in result.err
    dest = evidence / "cases" / "2024" / CARD
    # Same names (layout), same bytes (sha256sum on both sides), same mtimes.
    source_sums = sha256sum_tree(card)
    assert sha256sum_tree(dest) == source_sums
    assert mtimes(dest) == mtimes(card)
    assert snapshot(card) == before  # the source is never touched
    mount = tool("stat", "-c", "%m", card).stdout.decode().strip()
    fstype = tool("findmnt", "-n", "-o", "FSTYPE", "--target", card).stdout.decode().strip()
    recorded = latest_items(evidence)
    assert len(items(evidence)) == len(names)
    for name in names:
        item = recorded[b"cases/2024/" + CARD.encode() + b"/" + name]
        acquisition = item.body["acquisition"]
        source_path = committed_value(evidence, item.body, "source_path")
        volume = committed_value(evidence, item.body, "volume")
        assert source_path == os.fsdecode(os.fsencode(card) + b"/" + name)
        assert acquisition["source_sha256"] == source_sums[name] == item.sha256
        assert volume["mount_point"] == mount
        assert volume.get("fstype") == fstype
        assert committed_value(evidence, item.body, "collector") == "Bo"
        assert set(acquisition) == {"source_sha256"}  # the rest only as commitments
        assert item.body["mtime"]  # and equal to the source's: checked through mtimes() above
    duplicates = [i for i in items(evidence) if "duplicate_of" in i.body]
    assert len(duplicates) == 1  # the card holds one exact duplicate pair


def test_ingest_json_output_matches_schema(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    small = tmp_path / "card"
    small.mkdir()
    (small / "a.jpg").write_bytes(b"first")
    (small / "b.jpg").write_bytes(b"first")
    result = cli("ingest", small, "--root", evidence, "--json")
    # Once a bug: with --json the CLI's silent observer lacked copy_written, so ingest
    # --json died with AttributeError (exit 70) after copying.
    assert result.code == 0, result.err
    document = result.json()
    validate(document, "cli-ingest.schema.json")
    assert document["copied"] == 2 and document["bytes_copied"] == 10
    assert document["catalogue"]["added"] == 1 and document["catalogue"]["duplicates"] == 1


def test_reingest_adds_nothing(evidence: Path, cli: Callable[..., Result], card: Path) -> None:
    assert cli("ingest", card, "--root", evidence).code == 0
    ledger = ledger_path(evidence).read_bytes()
    again = cli("ingest", card, "--root", evidence)
    assert again.code == 0, again.err
    assert f"Copied 0 files (0 B), {len(files_under(card))} already present" in again.err
    assert ledger_path(evidence).read_bytes() == ledger


def test_same_file_twice_in_one_run_is_not_a_new_version(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    """The card named twice (or two cards of the same name): identical content at the same
    path must not be recorded again as a CHANGED version of itself - a false tamper alarm."""
    card = tmp_path / "card"
    card.mkdir()
    (card / "clip.mp4").write_bytes(b"clip")
    result = cli("ingest", card, card, "--root", evidence)
    assert result.code == 0, result.err
    assert "CHANGED" not in result.err
    (item,) = items(evidence)
    assert "supersedes" not in item.body


# --- interruption ----------------------------------------------------------------------------


KILLER = textwrap.dedent(
    """
    import os, signal, sys, threading
    from custody.acquisition.ingest import ingest
    from custody.keys.keyring import Keyring
    from custody.root import find_root

    class KillAfter:
        # Copy threads report one at a time, and the kill happens while reporting: every
        # other thread is then stopped at its next report, one copy further at most.
        count = 0
        lock = threading.Lock()
        def planned(self, files, total_bytes): pass
        def advance(self, nbytes): pass
        def finished_file(self, path): pass
        def copy_written(self, source, copy):
            with self.lock:
                self.count += 1
                if self.count == int(sys.argv[3]):
                    print("killing", os.getpid(), flush=True)
                    os.kill(os.getpid(), signal.SIGKILL)

    root = find_root(explicit=sys.argv[1])
    signer = Keyring().select(None).unlock(os.environ["CUSTODY_PASSPHRASE"])
    ingest(root, [sys.argv[2]], signer, observer=KillAfter(), jobs=int(sys.argv[4]))
    """
)


@pytest.mark.parametrize("jobs", [1, 2])
def test_killed_ingest_resumes_without_duplicates(
    evidence: Path, cli: Callable[..., Result], card: Path, jobs: int
) -> None:
    names = files_under(card)
    killed_after = len(names) // 2
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(evidence), str(card), str(killed_after), str(jobs)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pid = proc.stdout.split()[1]
    dest = evidence / CARD
    # Copies made, not yet catalogued. With several copy threads, the others may each have
    # put one more copy in place before the kill arrived, never more.
    copied = len(files_under(dest))
    assert killed_after <= copied <= killed_after + jobs - 1
    assert items(evidence) == []
    assert [p.name.split("-")[0] for p in (evidence / ".custody" / "tmp").iterdir()] == [pid]

    result = cli("ingest", card, "--root", evidence)
    assert result.code == 0, result.err
    assert f"Copied {len(names) - copied} files" in result.err
    assert f"{copied} already present" in result.err
    recorded = [i.name_bytes for i in items(evidence)]
    assert sorted(recorded) == sorted(CARD.encode() + b"/" + n for n in names)  # once each
    assert sha256sum_tree(dest) == sha256sum_tree(card)
    assert list((evidence / ".custody" / "tmp").iterdir()) == []  # the dead run's tmp is gone


# --- corruption and refusals ---------------------------------------------------------------


def flip_byte(path: str) -> None:
    with open(os.fsencode(path), "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_copy_corrupted_after_write_is_caught_and_quarantined(
    evidence: Path, env: Path, card: Path
) -> None:
    victim = "IMG_20110506_095948.jpg"
    before = snapshot(card)

    def corrupt(source: str, copy: str) -> None:
        if source.endswith(victim):
            flip_byte(copy)

    report = run_ingest(evidence, [card], Hooks(on_copy=corrupt))
    rel = os.fsencode(f"{CARD}/DCIM/Camera/{victim}")
    source = os.fsencode(card) + b"/DCIM/Camera/" + victim.encode()
    assert report.failures == [
        CopyFailure(
            os.fsdecode(source),
            os.fsdecode(os.fsencode(evidence) + b"/" + rel),
            "copy does not match its source on re-read",
        )
    ]
    assert snapshot(card) == before
    assert not os.path.lexists(os.fsencode(evidence) + b"/" + rel)
    quarantined = os.fsencode(evidence) + b"/.custody/quarantine/" + rel
    with open(quarantined, "rb") as bad, open(source, "rb") as good:
        bad_bytes, good_bytes = bad.read(), good.read()
    assert len(bad_bytes) == len(good_bytes) and bad_bytes != good_bytes
    assert rel not in latest_items(evidence)
    assert report.catalogue is not None
    assert report.catalogue.count("new") + report.catalogue.count("duplicate") == len(
        files_under(card)
    ) - 1

    # Run again without interference: the file is copied afresh and catalogued.
    retry = run_ingest(evidence, [card])
    assert retry.failures == [] and retry.copied == 1
    assert latest_items(evidence)[rel].sha256 == sha256sum_tree(card)[
        b"DCIM/Camera/" + victim.encode()
    ]
    assert os.path.exists(quarantined)  # the bad copy is kept for study


def test_different_file_at_destination_is_never_replaced(
    evidence: Path, env: Path, tmp_path: Path
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    (card / "clip.mp4").write_bytes(b"the real clip")
    (evidence / "card").mkdir()
    (evidence / "card" / "clip.mp4").write_bytes(b"something else")
    report = run_ingest(evidence, [card])
    assert [(f.reason, f.made_by_us) for f in report.failures] == [
        ("a different file already exists at the destination", False)
    ]
    assert (evidence / "card" / "clip.mp4").read_bytes() == b"something else"
    assert not (evidence / ".custody" / "quarantine").exists()
    assert items(evidence) == []


def test_source_changing_while_copied_is_skipped(
    evidence: Path, env: Path, tmp_path: Path
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    clip = card / "recording.m4a"
    clip.write_bytes(os.urandom(3 << 20))
    os.utime(clip, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))

    def grow(nbytes: int) -> None:
        with open(clip, "ab") as handle:
            handle.write(b"still recording")

    report = run_ingest(evidence, [card], Hooks(on_advance=grow))
    assert [s.reason for s in report.skipped] == ["file changed while it was being copied"]
    assert not (evidence / "card" / "recording.m4a").exists()
    assert items(evidence) == []


def test_links_and_fifos_on_the_card_are_skipped(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    (card / "photo.jpg").write_bytes(b"photo")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"never copied")
    (card / "link.jpg").symlink_to(secret)
    os.mkfifo(card / "pipe")
    result = cli("ingest", card, "--root", evidence)
    assert result.code == 1, result.err  # FINDINGS
    assert "symbolic link, not followed" in result.err and "FIFO" in result.err
    assert sorted(os.listdir(evidence / "card")) == ["photo.jpg"]
    assert b"never copied" not in ledger_path(evidence).read_bytes()


def test_source_with_non_utf8_name_is_ingested_byte_exact(
    evidence: Path, env: Path, tmp_path: Path
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    name = b"VID\xff\xfe 01.mp4"
    with open(os.fsencode(card) + b"/" + name, "wb") as handle:
        handle.write(b"clip")
    report = run_ingest(evidence, [card])
    assert report.failures == [] and report.skipped == [] and report.copied == 1
    (item,) = items(evidence)
    assert item.name_bytes == b"card/" + name
    assert committed_value(evidence, item.body, "source_path").endswith(
        "/card/VID\ufffd\ufffd 01.mp4"
    )
    with open(os.fsencode(evidence) + b"/card/" + name, "rb") as handle:
        assert handle.read() == b"clip"


def test_refused_sources_and_destinations(evidence: Path, env: Path, card: Path) -> None:
    inside = evidence / "already-here"
    inside.mkdir()
    with pytest.raises(UsageError, match="already inside the evidence root"):
        run_ingest(evidence, [inside])
    with pytest.raises(UsageError, match="no such file"):
        run_ingest(evidence, [card / "missing"])
    root = find_root(explicit=str(evidence))
    signer = Keyring().select(None).unlock(PASSPHRASE)
    for into in ("../escape", "/abs", ".custody", "a/../../b"):
        with pytest.raises(UsageError, match="--into"):
            ingest(root, [str(card)], signer, into=into)
    assert not (evidence.parent / "escape").exists()
    assert items(evidence) == []


@pytest.mark.parametrize(
    "name, label",
    [("NO\\x20NAME", "NO NAME"), ("Témoin", "Témoin"), ("A\\x2fB\\x5cC", "A/B\\C")],
)
def test_volume_labels_are_unescaped_as_udev_writes_them(name: str, label: str) -> None:
    assert udev_unescape(name) == label
