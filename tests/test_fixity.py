"""``custody verify --fast``: the routine fixity check, and that it never passes for more.

A real catalogue is checked with BLAKE3 alone; every fact asserted comes from outside
custody (``b3sum``, ``sha256sum``). What people and programs see is held to the rule that a
fast check never says "VERIFIED" and its JSON has no ``verified`` member at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import tool

from conftest import Result, run_custody, validate
from custody.evidence.hashing import MMAP_FROM, EvidenceReadError, blake3_file

FAST_SCHEMA = "cli-verify-fast.schema.json"


@pytest.fixture
def root(evidence: Path, cli: Callable[..., Result]) -> Path:
    """An evidence root with one large file (hashed through update_mmap) and small ones."""
    media = evidence / "media"
    media.mkdir()
    (media / "large.bin").write_bytes(os.urandom(MMAP_FROM + 12345))
    for i in range(5):
        (media / f"small-{i}.txt").write_bytes(os.urandom(1000 + i))
    result = cli("catalogue", media, "--root", evidence)
    assert result.code == 0, result.err
    return evidence


def b3sum(path: Path) -> str:
    return tool("b3sum", "--no-names", path).stdout.decode().strip()


def test_blake3_file_matches_b3sum_small_and_large(tmp_path: Path) -> None:
    for size in (0, 1, MMAP_FROM - 1, MMAP_FROM, MMAP_FROM * 2 + 7):
        path = tmp_path / f"f{size}"
        path.write_bytes(os.urandom(size))
        digest = blake3_file(path)
        assert digest.size == size
        assert digest.digests == {"blake3": b3sum(path)}


def test_blake3_file_never_follows_a_link(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(os.urandom(MMAP_FROM))
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(EvidenceReadError, match="symbolic link"):
        blake3_file(tmp_path / "link")


def test_untouched_root_passes_and_says_it_was_only_the_fast_check(
    root: Path, cli: Callable[..., Result]
) -> None:
    result = cli("verify", root, "--fast")
    assert result.code == 0, result.err
    text = result.out + result.err
    assert "FIXITY OK" in text
    assert "VERIFIED" not in text  # never the full verification's verdict
    assert "not a full verification" in text
    assert "For court, run 'custody verify'" in " ".join(text.split())

    document = cli("verify", root, "--fast", "--json").json()
    validate(document, FAST_SCHEMA)
    assert "verified" not in document
    assert document["check"] == "fast-fixity"
    assert document["full_verification"] is False
    assert document["fixity_ok"] is True
    assert document["files_checked"] == 6
    [check] = document["checks"]
    assert check["name"] == "fast fixity"
    assert "BLAKE3 alone" in check["detail"]


def test_flipped_byte_in_a_large_file_is_caught_with_b3sum_agreeing(
    root: Path, cli: Callable[..., Result]
) -> None:
    large = root / "media" / "large.bin"
    before = b3sum(large)
    stat = large.stat()
    with open(large, "r+b") as handle:
        handle.seek(MMAP_FROM // 2)
        byte = handle.read(1)
        handle.seek(MMAP_FROM // 2)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.utime(large, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = cli("verify", root, "--fast", "--json")
    assert result.code == 1
    document = result.json()
    validate(document, FAST_SCHEMA)
    assert document["fixity_ok"] is False
    [finding] = document["findings"]
    assert finding["code"] == "FILE_MODIFIED"
    assert finding["item"] == "media/large.bin"
    assert finding["message"] == "content differs from the record: blake3 digest differs"
    assert (finding["expected"], finding["found"]) == (f"blake3:{before}", f"blake3:{b3sum(large)}")
    text = cli("verify", root, "--fast")
    assert text.code == 1
    assert "FIXITY FAILED" in text.out and "VERIFIED" not in text.out + text.err


def test_missing_file_is_reported(root: Path, cli: Callable[..., Result]) -> None:
    (root / "media" / "small-3.txt").unlink()
    document = cli("verify", root, "--fast", "--json").json()
    assert [(f["code"], f["item"]) for f in document["findings"]] == [
        ("FILE_MISSING", "media/small-3.txt")
    ]


@pytest.mark.parametrize(
    "extra",
    [
        ["--ledger-only"],
        ["--require-timestamps"],
        ["--size", "3", "--root-hash", "0" * 64],
        ["--trusted-key", "nothing.pem"],
        ["--at", "2036-01-01"],
        ["--witness", "nothing.pub"],
        ["--min-witnesses", "1"],
    ],
)
def test_options_that_cannot_apply_are_usage_errors(
    root: Path, cli: Callable[..., Result], extra: list[str]
) -> None:
    result = cli("verify", root, "--fast", *extra)
    assert result.code == 2
    assert "--fast checks files only" in result.err


def test_root_without_blake3_is_checked_with_sha256_and_says_so(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    root = tmp_path / "plain"
    assert cli("init", root, "--digest", "sha256").code == 0
    assert cli("keys", "generate", "--name", "bob").code == 0
    (root / "a.txt").write_bytes(b"evidence\n")
    assert cli("catalogue", root / "a.txt", "--root", root).code == 0
    document = cli("verify", root, "--fast", "--json").json()
    validate(document, FAST_SCHEMA)
    assert document["fixity_ok"] is True
    assert "0 catalogued files re-hashed with BLAKE3 alone and 1 with SHA-256" in (
        document["checks"][0]["detail"]
    )
    (root / "a.txt").write_bytes(b"evidencE\n")
    changed = cli("verify", root, "--fast", "--json").json()
    [finding] = changed["findings"]
    assert finding["message"] == "content differs from the record: sha256 digest differs"
    expected = tool("sha256sum", root / "a.txt").stdout.split()[0].decode()
    assert finding["found"] == f"sha256:{expected}"


def test_fast_check_of_a_bundle_is_refused(
    root: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bagit.txt").write_text("BagIt-Version: 1.0\n")
    result = cli("verify", bundle, "--fast")
    assert result.code == 2
    assert "verify a bundle in full" in result.err
    assert result.err.count("\n") == 1  # one plain line


def test_fast_path_prints_what_the_full_cli_prints(
    root: Path, cli: Callable[..., Result], env: Path
) -> None:
    """``verify --fast`` is answered before Typer loads (cli/fastpath.py); same output."""
    for extra in ([], ["--json"]):
        quick = run_custody("verify", "--fast", root, *extra)
        full = cli("verify", root, "--fast", *extra)
        assert quick.returncode == full.code == 0
        if extra:
            a, b = json.loads(quick.stdout), json.loads(full.out)
            validate(a, FAST_SCHEMA)
            assert a == b
        else:
            assert quick.stdout == full.out
            assert "VERIFIED" not in quick.stdout


def test_fast_path_never_loads_the_cli_framework(root: Path, env: Path) -> None:
    script = (
        "import sys\n"
        "from custody.cli.fastpath import try_quick\n"
        f"code = try_quick(['verify', '--fast', {str(root)!r}, '--json'])\n"
        "assert code == 0, code\n"
        "print(sorted(m for m in ('typer', 'rich', 'click') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_fast_path_errors_are_one_line_with_the_usual_code(
    tmp_path: Path, cli: Callable[..., Result], env: Path
) -> None:
    nowhere = tmp_path / "not-a-root"
    nowhere.mkdir()
    quick = run_custody("verify", "--fast", "--root", nowhere)
    full = cli("verify", "--fast", "--root", nowhere)
    assert quick.returncode == full.code != 0
    assert quick.stderr.count("\n") == 1 and "not an evidence root" in quick.stderr
    # Anything the fast path does not know goes to the full CLI, which refuses it.
    refused = run_custody("verify", "--fast", "--ledger-only", "--root", nowhere)
    assert refused.returncode == 2 and "cannot apply" in refused.stderr
