"""Tests for custody.evidence.exifpool: several real exiftool processes, one per thread.

Each test runs the real exiftool (and, for hangs and crashes, the real one with a config
that misbehaves on cue, as in test_metadata.py) and compares the pool's answers with the
single process's, file by file.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest
from tests.test_metadata import CORPUS, EXIFTOOL, SAMPLE, TRAP_CONFIG, corpus_files, needs_corpus

from custody.errors import ToolMissingError
from custody.evidence.exifpool import ExifToolPool
from custody.evidence.exiftool import ExifTool, ExifToolAborted
from custody.evidence.hashing import available_cores

needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None, reason="exiftool is not installed (Debian package libimage-exiftool-perl)"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat_line = Path(f"/proc/{pid}/stat").read_text()
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


def _exiftool_children() -> set[int]:
    """PIDs of live exiftool processes whose parent is this test process."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"exiftool" in cmdline:
            found.add(int(entry))
    return found


@pytest.fixture
def trapped_exiftool(tmp_path: Path) -> str:
    assert EXIFTOOL is not None
    config = tmp_path / "trap.config"
    config.write_text(TRAP_CONFIG)
    wrapper = tmp_path / "exiftool"
    wrapper.write_text(f'#!/bin/sh\nexec "{EXIFTOOL}" -config "{config}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def _copies(tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for name in names:
        shutil.copy2(CORPUS / SAMPLE, tmp_path / name)
        out.append(tmp_path / name)
    return out


@needs_exiftool
@needs_corpus
def test_pool_answers_exactly_as_one_process_in_order() -> None:
    files = corpus_files()
    with ExifTool(batch_size=16) as single:
        expected = single.extract(files)
    with ExifToolPool(2, batch_size=4) as pool:
        got = pool.extract(files)
        assert pool.started == 2  # 52 files in batches of 4: both processes had work
    assert len(got) == len(expected)
    for path, a, b in zip(files, got, expected, strict=True):
        assert a == b, path


@needs_exiftool
@needs_corpus
def test_processes_start_only_when_work_waits(tmp_path: Path) -> None:
    [photo] = _copies(tmp_path, "one.jpg")
    with ExifToolPool(4) as pool:
        pool.wait_started()
        for _ in range(3):
            [meta] = pool.submit([photo]).result()
            assert meta.tags["IFD0:Make"] == "Apple"
        # One file at a time never finds the first process busy: no second Perl start-up.
        assert pool.started == 1
        assert len(_exiftool_children()) == 1
    assert _exiftool_children() == set()


@needs_exiftool
@needs_corpus
def test_hang_in_one_process_fails_only_that_file(tmp_path: Path, trapped_exiftool: str) -> None:
    names = [f"ok{i}.jpg" for i in range(8)]
    names.insert(2, "hang.jpg")
    files = _copies(tmp_path, *names)
    with ExifToolPool(2, executable=trapped_exiftool, timeout=2, batch_size=3) as pool:
        started = time.monotonic()
        futures = [pool.submit(files[i : i + 3]) for i in range(0, len(files), 3)]
        results = [meta for f in futures for meta in f.result()]
        assert time.monotonic() - started < 20  # two 2 s deadlines, not 3600 s
        for path, meta in zip(files, results, strict=True):
            if path.name == "hang.jpg":
                assert meta.error == "exiftool timed out after 2 s"
            else:
                assert meta.error is None, path
                assert meta.tags["IFD0:Make"] == "Apple"
        assert pool.restarts == 2  # once for the batch, once for the file on its own
        # The restarted process belongs to its owner thread and goes on working.
        [again] = pool.submit([files[0]]).result()
        assert again.tags == results[0].tags
    assert _exiftool_children() == set()


@needs_exiftool
@needs_corpus
def test_crash_in_one_process_fails_only_that_file(tmp_path: Path, trapped_exiftool: str) -> None:
    names = [f"ok{i}.jpg" for i in range(6)]
    names.insert(4, "crash.jpg")
    files = _copies(tmp_path, *names)
    with ExifToolPool(2, executable=trapped_exiftool, timeout=5, batch_size=2) as pool:
        results = pool.extract(files)
    for path, meta in zip(files, results, strict=True):
        if path.name == "crash.jpg":
            assert meta.error is not None
            assert meta.error.startswith("exiftool crashed: killed by signal SIGKILL")
        else:
            assert meta.error is None, path


@needs_exiftool
@needs_corpus
def test_abort_kills_a_hung_process_at_once(tmp_path: Path, trapped_exiftool: str) -> None:
    [hang] = _copies(tmp_path, "hang.jpg")
    pool = ExifToolPool(1, executable=trapped_exiftool, timeout=60)
    future = pool.submit([hang])
    time.sleep(1.0)  # let exiftool start on the file
    [pid] = _exiftool_children()
    started = time.monotonic()
    pool.close(abort=True)
    assert time.monotonic() - started < 10  # not the 60 s deadline
    with pytest.raises(ExifToolAborted):
        future.result()
    assert not _alive(pid)
    assert _exiftool_children() == set()


def test_missing_exiftool_fails_the_work_not_hangs(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-exiftool")
    with ExifToolPool(2, executable=missing) as pool:
        with pytest.raises(ToolMissingError):
            pool.wait_started()
        future = pool.submit([tmp_path])
        with pytest.raises(ToolMissingError):
            future.result(timeout=30)


@needs_exiftool
@needs_corpus
def test_no_process_inherits_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes started side by side on owner threads never see CUSTODY_PASSPHRASE."""
    monkeypatch.setenv("CUSTODY_PASSPHRASE", "not-for-children")
    files = _copies(tmp_path, *(f"p{i}.jpg" for i in range(12)))
    with ExifToolPool(3, batch_size=1) as pool:
        futures = [pool.submit([f]) for f in files]
        for f in futures:
            f.result()
        children = _exiftool_children()
        assert len(children) == pool.started >= 2
        for pid in children:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert b"not-for-children" not in environ
    assert os.environ["CUSTODY_PASSPHRASE"] == "not-for-children"


def test_available_cores_is_the_affinity() -> None:
    assert available_cores() == len(os.sched_getaffinity(0))
    assert threading.active_count() >= 1


@needs_exiftool
@needs_corpus
def test_stop_then_close_ends_every_process(tmp_path: Path) -> None:
    """stop() lets exiftool shut down in the background; close() then waits for it."""
    files = _copies(tmp_path, *(f"s{i}.jpg" for i in range(8)))
    pool = ExifToolPool(2, batch_size=1)
    for f in [pool.submit([f]) for f in files]:
        f.result()
    pool.stop()
    with pytest.raises(RuntimeError):
        pool.submit(files)
    started = time.monotonic()
    pool.close()
    assert time.monotonic() - started < 10
    assert _exiftool_children() == set()
