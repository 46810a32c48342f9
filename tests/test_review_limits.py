"""Resource exhaustion found by the outside review (issue 15, points 10-12), each reproduced.

10. the ledger line reader was quadratic in the length of one line (64 / 128 / 256 MiB took
    2.4 / 8 / 33 s): reading is linear, and a record line longer than the cap
    (``custody.ledger.records.MAX_LINE_BYTES``, docs/format.md §2) is RECORD_MALFORMED -
    and custody never writes one;
11. a 65 KB PNG whose compressed text chunk expands to 64 MiB made a 67 MB ledger line
    (exiftool's output stored whole): stored metadata is capped per item, the whole of
    exiftool's JSON is kept beside the ledger and hashed into the record;
12. a zip of about a megabyte that passed the zip-bomb check and then cost minutes and
    gigabytes (huge manifests, index lists, record files): work and memory are bounded by
    the bundle's real and declared sizes.

Each runs the real CLI as a process, under a wall-clock timeout and (for 12) an address
space limit, so exhaustion fails the test instead of the machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from custody.root import EvidenceRoot
from custody.trust.policy import policy_for
from custody.verify.roots import verify_root
from review_case import Case, ledger_lines, make_case, resign, signed_of, write_ledger
from test_crash import custody_env, run


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return make_case(tmp_path_factory.mktemp("review-limits"), extreme=False)


def copy_root(case: Case, dest: Path) -> Path:
    shutil.copytree(case.root, dest, symlinks=True, ignore=shutil.ignore_patterns("cache"))
    return dest


# --- 10. one huge ledger line ---------------------------------------------------------------


def test_one_huge_ledger_line_is_read_in_linear_time_and_refused(
    case: Case, tmp_path: Path
) -> None:
    """256 MiB in one line: 33 s before (quadratic); now a second or two, and malformed."""
    root = copy_root(case, tmp_path / "evidence")
    lines = ledger_lines(root)
    huge = b'{"sig":"' + b"A" * (256 << 20) + b'"}'
    write_ledger(root, [*lines, huge])
    started = time.monotonic()
    done = run(["verify", root, "--ledger-only", "--json"], case.env, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)["findings"]
    malformed = [f for f in found if f["code"] == "RECORD_MALFORMED"]
    assert [f["seq"] for f in malformed] == [len(lines)]
    assert elapsed < 20, f"{elapsed:.1f} s for one 256 MiB line"
    from custody.ledger.records import MAX_LINE_BYTES

    assert f"{MAX_LINE_BYTES >> 20} MiB" in malformed[0]["message"]


def test_line_reader_is_linear_in_the_length_of_a_line(tmp_path: Path) -> None:
    """The reader alone: a line four times longer costs about four times as much."""
    from custody.ledger.filestore import iter_line_data

    timings = {}
    for mib in (16, 64):
        path = tmp_path / f"{mib}.jsonl"
        path.write_bytes(b"x" * (mib << 20) + b"\n" + b"short\n")
        started = time.perf_counter()
        got = [(len(data), complete) for data, complete in iter_line_data(path)]
        timings[mib] = time.perf_counter() - started
        assert got == [(mib << 20, True), (5, True)]
        path.unlink()
    # Quadratic reading makes the ratio ~16; linear ~4 (noise allowed for).
    assert timings[64] < 9 * timings[16] + 0.5, timings


def signed_item_line(case: Case, lines: list[bytes], size: int) -> bytes:
    """A validly signed item record whose line is exactly ``size`` bytes long."""
    template = signed_of(lines[next(n for n, x in enumerate(lines) if b'"type":"item"' in x)])
    signed = json.loads(json.dumps(template))
    signed["seq"] = len(lines)
    signed["prev"] = hashlib.sha256(lines[-1]).hexdigest()
    signed["body"]["note"] = ""
    base = len(resign(signed, case.key().sign))
    signed["body"]["note"] = "n" * (size - base)
    line = resign(signed, case.key().sign)
    assert len(line) == size
    return line


def test_record_line_cap_is_exact(case: Case, tmp_path: Path) -> None:
    from custody.ledger.records import MAX_LINE_BYTES

    for size, ok in ((MAX_LINE_BYTES, True), (MAX_LINE_BYTES + 1, False)):
        root = copy_root(case, tmp_path / f"evidence-{size}")
        lines = ledger_lines(root)
        write_ledger(root, [*lines, signed_item_line(case, lines, size)])
        result = verify_root(EvidenceRoot(root), policy=policy_for(), files=False)
        malformed = [f for f in result.errors if f.code == "RECORD_MALFORMED"]
        assert (malformed == []) is ok, (size, [f.message for f in malformed])
        shutil.rmtree(root)


def test_writer_refuses_a_record_longer_than_the_cap(case: Case, tmp_path: Path) -> None:
    from custody.errors import CustodyError
    from custody.ledger.backends import open_ledger
    from custody.ledger.records import MAX_LINE_BYTES

    root = copy_root(case, tmp_path / "evidence")
    before = (root / ".custody" / "ledger.jsonl").read_bytes()
    lines = ledger_lines(root)
    body = dict(
        signed_of(lines[next(n for n, x in enumerate(lines) if b'"type":"item"' in x)])["body"]
    )
    body["note"] = "n" * MAX_LINE_BYTES
    with (
        open_ledger(EvidenceRoot(root)) as ledger,
        pytest.raises(CustodyError, match="MiB"),
        ledger.writer(case.key()) as writer,
    ):
        writer.append("item", body)
    assert (root / ".custody" / "ledger.jsonl").read_bytes() == before


# --- 11. metadata that expands -----------------------------------------------------------------


def png_with_text(text_bytes: int) -> bytes:
    """A 1x1 grey PNG with a zTXt chunk: ``text_bytes`` of 'A', deflated (PNG 1.2 §4.2.3.2)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    text = b"Comment\x00\x00" + zlib.compress(b"A" * text_bytes, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"zTXt", text)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def test_metadata_that_expands_is_capped_and_kept_whole_beside_the_ledger(
    case: Case, tmp_path: Path
) -> None:
    root = copy_root(case, tmp_path / "evidence")
    png = png_with_text(64 << 20)
    assert len(png) < 70_000
    (root / "media" / "expands.png").write_bytes(png)
    (root / "media" / "plain.png").write_bytes(png_with_text(100))
    done = run(["catalogue", root / "media", "--root", root], case.env)
    assert done.returncode == 0, done.stderr
    lines = ledger_lines(root)
    assert max(len(x) for x in lines) < 1 << 20  # a 67 MB line before
    from custody.evidence.metadata import MAX_METADATA_BYTES

    assert max(len(x) for x in lines) < MAX_METADATA_BYTES + (64 << 10)
    items = {signed_of(x)["body"]["path"]: signed_of(x)["body"] for x in lines if b'"item"' in x}
    capped = items["media/expands.png"]
    plain = items["media/plain.png"]
    assert "metadata_full" not in plain
    assert plain["metadata"]["PNG:Comment"] == "A" * 100
    full = capped["metadata_full"]
    assert set(full) == {"sha256", "size"}
    # Small tags are kept; the one that blew up is not in the record.
    assert capped["metadata"]["File:MIMEType"] == "image/png"
    assert "PNG:Comment" not in capped["metadata"]
    kept = root / ".custody" / "metadata" / f"{full['sha256']}.json"
    raw = kept.read_bytes()
    assert len(raw) == full["size"] > 64 << 20
    assert hashlib.sha256(raw).hexdigest() == full["sha256"]
    assert json.loads(raw)["PNG:Comment"] == "A" * (64 << 20)
    from conftest import validate

    validate(json.loads(next(x for x in lines if b"expands.png" in x)), "record.schema.json")
    checked = run(["verify", root, "--json"], case.env)
    assert checked.returncode == 0, checked.stdout[-2000:]
    # A vault copy carries it, and verifies on its own.
    vault = tmp_path / "vault"
    assert run(["vault", "copy", vault, "--root", root], case.env).returncode == 0
    assert (vault / ".custody" / "metadata" / kept.name).read_bytes() == raw
    assert run(["verify", vault, "--json"], case.env).returncode == 0
    # The whole metadata is held to its record like any other file the ledger names.
    kept.write_bytes(raw[:-2] + b"}")
    changed = run(["verify", root, "--json"], case.env)
    assert changed.returncode == 1
    found = json.loads(changed.stdout)["findings"]
    assert any(
        f["code"] == "FILE_MODIFIED" and f["item"] == f".custody/metadata/{full['sha256']}.json"
        for f in found
    ), found
    kept.unlink()
    gone = run(["verify", root, "--json"], case.env)
    assert gone.returncode == 1
    assert any(f["code"] == "FILE_MISSING" for f in json.loads(gone.stdout)["findings"])


# --- 12. small zips that cost minutes and gigabytes ---------------------------------------------

LIMIT_AS = 2 << 30  # a verifier that needs more than 2 GiB of address space has lost
WALL = 60.0


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))


def run_limited(
    argv: list[Any], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "custody", *map(os.fspath, argv)],
            env=env,
            capture_output=True,
            text=True,
            timeout=WALL,
            stdin=subprocess.DEVNULL,
            preexec_fn=limited,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv[0]} ran for more than {WALL:.0f} s")
    return done, time.monotonic() - started


def bomb_zip(case: Case, target: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    files = {
        p.relative_to(case.bundle).as_posix(): p.read_bytes()
        for p in sorted(case.bundle.rglob("*"))
        if p.is_file()
    }
    change(files)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for rel, data in files.items():
            archive.writestr("bundle/" + rel, data)
    return target


def padded_index(files: dict[str, bytes], change: Callable[[dict[str, Any]], None]) -> None:
    index = json.loads(files["custody/index.json"])
    change(index)
    # Random padding keeps the compression ratio under the zip-bomb limit (200 to 1).
    index["padding"] = base64.b64encode(os.urandom(400_000)).decode()
    files["custody/index.json"] = json.dumps(index).encode()


def many_consistency(files: dict[str, bytes]) -> None:
    def change(index: dict[str, Any]) -> None:
        entry = index["consistency"][0]
        index["consistency"] = [entry] * ((60 << 20) // len(json.dumps(entry)))

    padded_index(files, change)


def many_items(files: dict[str, bytes]) -> None:
    def change(index: dict[str, Any]) -> None:
        entry = index["items"][0]
        index["items"] = [*index["items"], *[entry] * ((60 << 20) // len(json.dumps(entry)))]

    padded_index(files, change)


def many_missing(files: dict[str, bytes]) -> None:
    zeros = "0" * 64
    listed = "".join(f"{zeros}  data/{n:09d}\n" for n in range(1_000_000)).encode()
    files["manifest-sha256.txt"] += listed


def many_tag_entries(files: dict[str, bytes]) -> None:
    zeros = "0" * 64
    listed = "".join(f"{zeros}  custody/{n:09d}\n" for n in range(1_000_000)).encode()
    files["tagmanifest-sha256.txt"] += listed


def many_records(files: dict[str, bytes]) -> None:
    lines = files["custody/records.jsonl"].split(b"\n")[:-1]
    files["custody/records.jsonl"] += (lines[1] + b"\n") * ((200 << 20) // (len(lines[1]) + 1))


BOMBS = {
    "consistency entries": many_consistency,
    "index items": many_items,
    "missing payload entries": many_missing,
    "tag manifest entries": many_tag_entries,
    "repeated records": many_records,
}


@pytest.mark.parametrize("shape", sorted(BOMBS))
def test_small_zip_with_huge_manifests_costs_little(case: Case, tmp_path: Path, shape: str) -> None:
    archive = bomb_zip(case, tmp_path / "bundle.zip", BOMBS[shape])
    assert archive.stat().st_size < 8 << 20
    env = custody_env(case.home, tmp_path)
    for argv in (
        ["verify", archive, "--json"],
        ["verify", archive],
        ["report", archive, "--out", tmp_path / "report.html"],
    ):
        done, elapsed = run_limited(argv, env)
        assert done.returncode in (1, 3), (shape, argv[0], done.returncode, done.stderr[-500:])
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr
        assert len(done.stdout) < 4 << 20, (shape, argv[0], len(done.stdout))
        assert elapsed < 45, (shape, argv[0], elapsed)
    report = tmp_path / "report.html"
    if report.exists():
        assert report.stat().st_size < 8 << 20
