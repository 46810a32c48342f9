"""custody.evidence.hashing: digests equal the standard tools', and an original is read as it is.

Links are refused, not followed; FIFOs and devices are refused without blocking; and a
file that changes while it is read raises FileChangedError. The changes are real: a
writer thread modifies the file between two chunks of the read, handshaking through
events (hash_file's progress callback runs after each chunk), never through sleeps.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers import b3sum_file, tool

from custody.errors import UsageError
from custody.evidence.hashing import (
    ALGORITHMS,
    BUFFER_SIZE,
    EvidenceReadError,
    FileChangedError,
    check_algorithms,
    hash_file,
    open_evidence,
)

SIZES = [0, 1, 4096, BUFFER_SIZE - 1, BUFFER_SIZE, BUFFER_SIZE + 1, 3 * BUFFER_SIZE + 17]
TOOLS = {
    "sha256": ["sha256sum"],
    "sha512": ["sha512sum"],
    "sha1": ["sha1sum"],
    "md5": ["md5sum"],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("hashing")
    made = {}
    for size in SIZES:
        path = folder / f"file {size}.bin"
        path.write_bytes(os.urandom(size))
        made[size] = path
    return made


def reference(algorithm: str, path: Path) -> str:
    """The digest as the standard command-line tool prints it."""
    if algorithm == "blake3":
        return b3sum_file(path)
    if algorithm == "sha3-256":
        out = tool("openssl", "dgst", "-sha3-256", "-r", path).stdout
        return out.split()[0].decode()
    return tool(*TOOLS[algorithm], path).stdout.split()[0].decode()


@pytest.mark.parametrize("size", SIZES)
def test_all_digests_equal_the_standard_tools(files: dict[int, Path], size: int) -> None:
    path = files[size]
    result = hash_file(path, ALGORITHMS)
    assert result.size == size == path.stat().st_size
    assert result.mtime_ns == path.stat().st_mtime_ns
    assert set(result.digests) == set(ALGORITHMS)
    for algorithm in ALGORITHMS:
        assert result.digests[algorithm] == reference(algorithm, path), algorithm
    assert result.digests["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_small_buffer_and_progress_see_every_byte(files: dict[int, Path]) -> None:
    path = files[3 * BUFFER_SIZE + 17]
    seen: list[int] = []
    result = hash_file(path, ("sha256",), progress=seen.append, buffer=bytearray(1000))
    assert sum(seen) == result.size
    assert max(seen) <= 1000
    assert result.digests["sha256"] == reference("sha256", path)


def test_algorithm_names_are_checked() -> None:
    assert check_algorithms(["SHA256", "blake3", "sha256"]) == ("sha256", "blake3")
    with pytest.raises(UsageError, match="unknown digest algorithm 'crc32'"):
        check_algorithms(["crc32"])


def test_symlink_is_refused_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target.jpg"
    target.write_bytes(b"evidence")
    link = tmp_path / "link.jpg"
    link.symlink_to(target)
    with pytest.raises(EvidenceReadError, match="symbolic link, not followed"):
        hash_file(link)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(EvidenceReadError, match="symbolic link"):
        hash_file(dangling)


@pytest.mark.timeout(20)
def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    # No writer ever opens the FIFO: a blocking open or read would hang here.
    with pytest.raises(EvidenceReadError, match=r"not a regular file \(FIFO\)"):
        hash_file(fifo)


@pytest.mark.parametrize(
    "path, reason",
    [("/dev/null", "character device"), ("/", "directory"), ("/nonexistent/x", "no such file")],
)
def test_non_files_are_refused(path: str, reason: str) -> None:
    with pytest.raises(EvidenceReadError, match=reason):
        hash_file(path)


def test_original_is_opened_read_only_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "original.jpg"
    path.write_bytes(b"x" * 5000)
    os.utime(path, ns=(1_000_000_000, 2_000_000_000))
    before = os.stat(path)
    hash_file(path)
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    fd = open_evidence(os.fsencode(path))
    try:
        with pytest.raises(OSError):
            os.write(fd, b"y")
    finally:
        os.close(fd)


def test_unreadable_file_is_permission_denied(tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"private")
    secret.chmod(0o000)
    code = (
        "import sys\n"
        "from custody.evidence.hashing import hash_file, EvidenceReadError\n"
        "try:\n"
        "    hash_file(sys.argv[1])\n"
        "except EvidenceReadError as exc:\n"
        "    print(exc.reason)\n"
    )
    argv = [sys.executable, "-c", code, str(secret)]
    if os.geteuid() == 0:
        # Root reads mode-000 files; drop the capabilities that let it, keep uid 0.
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv (util-linux) is not installed")
        argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "permission denied"


# --- files that change while they are read ----------------------------------------------


class Interference:
    """Runs ``change`` in a writer thread right after the first chunk has been read."""

    def __init__(self, change: Callable[[], None]) -> None:
        self.change = change
        self.first_chunk = threading.Event()
        self.changed = threading.Event()
        self.thread = threading.Thread(target=self._writer, daemon=True)
        self.chunks = 0

    def _writer(self) -> None:
        if self.first_chunk.wait(30):
            self.change()
            self.changed.set()

    def progress(self, nbytes: int) -> None:
        self.chunks += 1
        if self.chunks == 1:
            self.first_chunk.set()
            assert self.changed.wait(30), "the writer thread never made its change"

    def __enter__(self) -> Interference:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.first_chunk.set()  # release the writer even if the read failed early
        self.thread.join(30)


@pytest.fixture
def big(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "VID_20240312.mp4"
    path.write_bytes(os.urandom(4 * BUFFER_SIZE))
    # An old mtime, so that any write moves it even on coarse-grained clocks.
    os.utime(path, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    yield path


def test_file_growing_during_read_raises(big: Path) -> None:
    def append() -> None:
        with open(big, "ab") as handle:
            handle.write(b"appended by another writer")

    with Interference(append) as interference, pytest.raises(
        FileChangedError, match="changed while it was being read"
    ):
        hash_file(big, progress=interference.progress)
    assert interference.changed.is_set()


def test_file_rewritten_in_place_same_size_raises(big: Path) -> None:
    def overwrite() -> None:
        with open(big, "r+b") as handle:
            handle.seek(3 * BUFFER_SIZE)  # a part not read yet
            handle.write(b"\x00" * 16)

    with Interference(overwrite) as interference, pytest.raises(FileChangedError):
        hash_file(big, progress=interference.progress)
    assert big.stat().st_size == 4 * BUFFER_SIZE


def test_file_truncated_during_read_raises(big: Path) -> None:
    def truncate() -> None:
        os.truncate(big, BUFFER_SIZE + 5)

    with Interference(truncate) as interference, pytest.raises(FileChangedError):
        hash_file(big, progress=interference.progress)


@pytest.mark.timeout(60)
def test_file_that_never_stops_growing_is_not_read_forever(big: Path) -> None:
    """A recording still in progress: every chunk read, the file grows again."""
    chunks = 0

    def grow(nbytes: int) -> None:
        nonlocal chunks
        chunks += 1
        assert chunks < 100, "still reading: a growing file would be read for ever"
        with open(big, "ab") as handle:
            handle.write(b"more footage")

    with pytest.raises(FileChangedError):
        hash_file(big, progress=grow)
    # The read stops one byte past the size seen at open: 4 full buffers and 1 byte.
    assert chunks == 5


def test_file_replaced_during_read_raises(big: Path) -> None:
    def replace() -> None:
        fresh = big.with_name("fresh")
        fresh.write_bytes(big.read_bytes())
        os.utime(fresh, ns=(big.stat().st_atime_ns, big.stat().st_mtime_ns))
        os.replace(fresh, big)  # same bytes, same mtime, another inode

    with Interference(replace) as interference, pytest.raises(FileChangedError, match="replaced"):
        hash_file(big, progress=interference.progress)


def test_file_grown_by_another_process_raises(big: Path) -> None:
    """The same check against a separate writer process, synchronised through pipes."""
    script = (
        "import sys\n"
        "sys.stdin.readline()\n"
        "open(sys.argv[1], 'ab').write(b'more')\n"
        "print('done', flush=True)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(big)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    calls = 0

    def progress(nbytes: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            assert writer.stdin is not None and writer.stdout is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "done"

    try:
        with pytest.raises(FileChangedError):
            hash_file(big, progress=progress)
    finally:
        writer.stdin.close()
        writer.wait(30)
    assert writer.returncode == 0


def test_unchanged_file_still_hashes_after_interference_checks(big: Path) -> None:
    with Interference(lambda: None) as interference:
        result = hash_file(big, ("sha256", "blake3"), progress=interference.progress)
    assert result.digests["sha256"] == reference("sha256", big)
    assert result.digests["blake3"] == reference("blake3", big)
