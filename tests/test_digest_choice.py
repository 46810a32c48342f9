"""The digests of a root, chosen at ``custody init --digest`` and honoured everywhere after.

SHA-256 is always recorded; the default adds BLAKE3. A root that chose SHA-256 and SHA-512
records exactly those for every file (checked against ``sha256sum``/``sha512sum``), verify
re-hashes exactly those, and its bundle verifies. The bundle check re-hashes SHA-256 and
the digests the records carry; the unsigned SHA-512 manifest is re-hashed only on request,
and bagit-python is the tool that checks it by default.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import items, tool

from conftest import Result, validate
from custody.delivery.bundle_check import verify_bundle
from custody.evidence.hashing import ALGORITHMS
from custody.root import DEFAULT_DIGESTS, DIGEST_ALGORITHMS
from custody.trust.policy import policy_for

BAGIT = Path(sys.executable).with_name("bagit.py")


def config_digests(root: Path) -> list[str]:
    doc = tomllib.loads((root / ".custody" / "config.toml").read_text())
    return list(doc["catalogue"]["digests"])


def test_root_and_hashing_know_the_same_algorithms() -> None:
    assert DIGEST_ALGORITHMS == ALGORITHMS
    assert DEFAULT_DIGESTS == ("sha256", "blake3")


def test_default_is_sha256_and_blake3(tmp_path: Path, cli: Callable[..., Result]) -> None:
    result = cli("init", tmp_path / "r", "--json")
    assert result.code == 0
    document = result.json()
    validate(document, "cli-init.schema.json")
    assert document["digests"] == ["sha256", "blake3"]
    assert config_digests(tmp_path / "r") == ["sha256", "blake3"]


@pytest.mark.parametrize(
    "given, stored",
    [
        (["sha512"], ["sha256", "sha512"]),
        (["sha256"], ["sha256"]),
        (["SHA3-256", "sha256", "blake3", "sha3-256"], ["sha256", "sha3-256", "blake3"]),
    ],
)
def test_sha256_is_always_first_and_names_are_not_repeated(
    tmp_path: Path, cli: Callable[..., Result], given: list[str], stored: list[str]
) -> None:
    args = [a for name in given for a in ("--digest", name)]
    result = cli("init", tmp_path / "r", *args, "--json")
    assert result.code == 0, result.err
    assert result.json()["digests"] == stored
    assert config_digests(tmp_path / "r") == stored


def test_unknown_digest_is_a_usage_error_and_nothing_is_made(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    result = cli("init", tmp_path / "r", "--digest", "crc32")
    assert result.code == 2
    assert "unknown digest 'crc32'" in result.err
    assert not (tmp_path / "r" / ".custody").exists()


def test_hand_edited_config_with_an_unknown_digest_is_refused(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    root = tmp_path / "r"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    config = root / ".custody" / "config.toml"
    config.write_text(config.read_text().replace('"blake3"', '"whirlpool"'))
    (root / "a.txt").write_text("x")
    result = cli("catalogue", root / "a.txt", "--root", root)
    assert result.code != 0
    assert "catalogue.digests must be distinct names" in result.err


@pytest.fixture
def sha512_root(tmp_path: Path, cli: Callable[..., Result], env: Path) -> Path:
    root = tmp_path / "r"
    assert cli("init", root, "--digest", "sha512").code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    media = root / "media"
    media.mkdir()
    for i in range(3):
        (media / f"f{i}.bin").write_bytes(os.urandom(100_000 * (i + 1)))
    assert cli("catalogue", media, "--root", root).code == 0
    return root


def test_catalogue_verify_and_ingest_honour_the_choice(
    sha512_root: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    recorded = items(sha512_root)
    assert len(recorded) == 3
    for item in recorded:
        path = sha512_root / item.body["path"]
        assert set(item.body["digests"]) == {"sha256", "sha512"}
        assert item.body["digests"]["sha512"] == tool("sha512sum", path).stdout.split()[0].decode()
    outside = tmp_path / "card"
    outside.mkdir()
    (outside / "new.bin").write_bytes(os.urandom(5000))
    assert cli("ingest", outside, "--root", sha512_root).code == 0
    ingested = items(sha512_root)[-1]
    assert set(ingested.body["digests"]) == {"sha256", "sha512"}

    assert cli("verify", sha512_root, "--files-only").code == 0
    target = sha512_root / "media" / "f1.bin"
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    document = cli("verify", sha512_root, "--files-only", "--json").json()
    [finding] = document["findings"]
    assert finding["code"] == "FILE_MODIFIED"
    # One changed file is one finding naming every digest that differs.
    assert finding["message"] == "content differs from the record: sha256, sha512 digests differ"


def test_bundle_of_a_sha512_root_verifies_and_passes_bagit(
    sha512_root: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    assert cli("export", "--all", "--out", out, "--root", sha512_root).code == 0
    result = verify_bundle(out, policy=policy_for())
    assert result.ok, [f.to_json() for f in result.findings]
    structure = next(c for c in result.checks if c.name == "bag structure")
    # Both algorithms are in the signed records, so both manifests are re-hashed.
    assert "re-hashed with sha256, sha512" in structure.detail
    subprocess.run([sys.executable, BAGIT, "--validate", out], check=True, capture_output=True)


def test_unsigned_sha512_manifest_is_rehashed_only_when_asked(
    tmp_path: Path, cli: Callable[..., Result], env: Path
) -> None:
    root = tmp_path / "r"
    assert cli("init", root).code == 0  # the default: sha256 + blake3
    assert cli("keys", "generate", "--name", "alice").code == 0
    (root / "a.bin").write_bytes(os.urandom(4096))
    assert cli("catalogue", root / "a.bin", "--root", root).code == 0
    out = tmp_path / "bundle"
    assert cli("export", "--all", "--out", out, "--root", root).code == 0
    manifest = out / "manifest-sha512.txt"
    digest, name = manifest.read_text().split("  ", 1)
    manifest.write_text(("0" * 128) + "  " + name)  # a wrong, unsigned SHA-512 line
    # ... and the tag manifests recomputed over it, as anyone can (they are unsigned too).
    for algorithm in ("sha256", "sha512"):
        tags = out / f"tagmanifest-{algorithm}.txt"
        lines = []
        for line in tags.read_text().splitlines():
            rel = line.split("  ", 1)[1]
            lines.append(f"{hashlib.new(algorithm, (out / rel).read_bytes()).hexdigest()}  {rel}")
        tags.write_text("\n".join(lines) + "\n")

    default = verify_bundle(out, policy=policy_for())
    # The evidence still matches the signed SHA-256 and BLAKE3 digests; the report says
    # which digests were re-hashed and that the SHA-512 manifest's were not.
    assert default.ok, [f.to_json() for f in default.findings]
    structure = next(c for c in default.checks if c.name == "bag structure")
    assert "re-hashed with sha256, blake3" in structure.detail
    assert "manifest-sha512.txt: entries checked, digests not re-hashed" in structure.detail

    strict = verify_bundle(out, policy=policy_for(), all_manifests=True)
    assert not strict.ok
    [finding] = [f for f in strict.findings if f.code == "FILE_MODIFIED"]
    assert finding.message == "content differs from the payload manifest: sha512 digest differs"
    assert finding.found == f"sha512:{digest}"
    bagit = subprocess.run([sys.executable, BAGIT, "--validate", out], capture_output=True)
    assert bagit.returncode != 0  # bagit-python, the BagIt tool, catches it by default
