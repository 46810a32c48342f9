"""custody's BagIt validator against the Library of Congress conformance suite, against
bagit-python on the same bags, and against hand-made hostile bags.

The suite lives beside the project at ``../shared/bagit-conformance-suite`` (not shipped);
tests that need it skip with a clear reason when it is absent. The hostile bags are
written byte by byte here, so each holds exactly the defect it is named after.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import bagit
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.acquisition.sources.bagit import (
    MAX_FINDINGS_PER_KIND,
    MAX_LINE_CHARS,
    BagInvalidError,
    BagValidation,
    Kind,
    main,
    require_valid,
    validate_bag,
)
from custody.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SUITE = SHARED / "bagit-conformance-suite"
needs_suite = pytest.mark.skipif(
    not SUITE.is_dir(),
    reason="needs the Library of Congress BagIt conformance suite at "
    "../shared/bagit-conformance-suite (not shipped with the project)",
)
CLI = [sys.executable, "-m", "custody.acquisition.sources.bagit"]


def child_env(home: Path) -> dict[str, str]:
    """A minimal environment: never the parent's, which may hold passphrases."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": str(home),
        "PYTHONPATH": str(REPO / "src"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def suite_bags() -> Iterator[tuple[str, str, Path]]:
    """(version, category, bag folder) for every bag in the suite, in a stable order."""
    for version in sorted(p for p in SUITE.iterdir() if p.is_dir() and p.name.startswith("v")):
        for category in sorted(p for p in version.iterdir() if p.is_dir()):
            for bag in sorted(p for p in category.iterdir() if p.is_dir()):
                yield version.name, category.name, bag


# --- (a) the suite's own harness -----------------------------------------------------------


# The command people and harnesses run (``python -m custody.acquisition.sources.bagit`` is the
# same validator; ``test_command_line_entry`` runs it).
CUSTODY_CLI = [sys.executable, "-m", "custody", "bagit", "validate"]


@needs_suite
def test_conformance_harness_reports_no_failures(tmp_path: Path) -> None:
    """``test-harness`` logs a WARNING or ERROR line for every bag judged wrongly.

    It must be run from the suite's folder (it lists ``os.listdir`` relative to the
    working directory). First a validator that accepts everything, to show this harness
    run can fail at all; then ours, which must leave it silent.
    """
    harness = [sys.executable, "test-harness", "--"]
    env = child_env(tmp_path)
    lax = subprocess.run([*harness, "/bin/true"], cwd=SUITE, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert "Expected invalid test" in lax.stderr, lax.stderr
    assert "ERROR" in lax.stderr

    started = time.perf_counter()
    ours = subprocess.run([*harness, *CUSTODY_CLI], cwd=SUITE, env=env, capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    elapsed = time.perf_counter() - started
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr.strip() == "", ours.stderr
    print(f"\nconformance harness over the suite (custody bagit validate, a process a bag): "
          f"{elapsed:.2f} s")  # fmt: skip


# --- (b) every bag walked, our verdict by folder --------------------------------------------

# Finding kinds each refused or warned bag must carry: the verdict for the right reason.
EXPECTED_KINDS: dict[str, set[Kind]] = {
    "v0.97/invalid/baginfo-missing-encoding": {Kind.BAG_DECLARATION_INVALID},
    "v0.97/invalid/bom-in-bagit.txt": {Kind.BYTE_ORDER_MARK},
    "v0.97/invalid/corrupt-data-file": {Kind.CHECKSUM_MISMATCH, Kind.PAYLOAD_OXUM_MISMATCH},
    "v0.97/invalid/corrupt-tag-file": {Kind.CHECKSUM_MISMATCH},
    "v0.97/invalid/extra-file-in-bag": {Kind.UNLISTED_FILE, Kind.PAYLOAD_OXUM_MISMATCH},
    "v0.97/invalid/invalid-version-number": {Kind.BAG_DECLARATION_INVALID},
    "v0.97/invalid/missing-baginfo": {Kind.FILE_MISSING},
    "v0.97/invalid/missing-bagit.txt": {Kind.BAG_DECLARATION_MISSING},
    "v0.97/invalid/out-of-scope-file-paths-using-dot-notation": {Kind.UNSAFE_PATH},
    "v0.97/invalid/out-of-scope-file-paths-using-dot-notation-for-fetch": {Kind.UNSAFE_PATH},
    "v0.97/invalid/same-filename-listed-twice-with-different-hashes": {Kind.CONFLICTING_ENTRY},
    "v0.97/linux-only/out-of-scope-file-paths-using-absolute-path": {Kind.UNSAFE_PATH},
    "v0.97/linux-only/out-of-scope-file-paths-using-absolute-path-for-fetch": {Kind.UNSAFE_PATH},
    "v0.97/linux-only/out-of-scope-file-paths-using-shortcut": {Kind.UNSAFE_PATH},
    "v0.97/linux-only/out-of-scope-file-paths-using-shortcut-for-fetch": {Kind.UNSAFE_PATH},
    "v0.97/linux-only/out-of-scope-file-paths-using-shortcut-username": {Kind.UNSAFE_PATH},
    "v0.97/linux-only/out-of-scope-file-paths-using-shortcut-username-for-fetch": {
        Kind.UNSAFE_PATH
    },
    "v0.97/warning/duplicate-file-with-different-case": {Kind.NAME_VARIANTS},
    "v0.97/warning/made-with-md5sum-tools": {Kind.MD5SUM_MARKER},
    "v0.97/warning/relative-path": {Kind.DOT_SLASH_PREFIX},
    "v0.97/warning/same-filename-listed-twice-with-different-normalization": {
        Kind.NAME_VARIANTS
    },
    "v0.97/warning/same-filename-listed-twice-with-the-same-hash": {Kind.DUPLICATE_ENTRY},
    "v0.97/warning/special-system-files": {Kind.ABSENT_SYSTEM_FILE, Kind.SYSTEM_FILE},
    "v1.0/invalid/bagit-with-invalid-whitespace": {Kind.BAG_DECLARATION_INVALID},
    "v1.0/invalid/notAllManifestsListAllFiles": {Kind.UNLISTED_FILE},
    "v1.0/invalid/same-filename-listed-twice-with-different-hashes": {Kind.CONFLICTING_ENTRY},
    "v1.0/invalid/same-filename-listed-twice-with-the-same-hash": {Kind.DUPLICATE_ENTRY},
}


@needs_suite
def test_every_suite_bag_gets_the_verdict_of_its_folder() -> None:
    seen: dict[str, BagValidation] = {}
    started = time.perf_counter()
    for version, category, bag in suite_bags():
        seen[f"{version}/{category}/{bag.name}"] = validate_bag(bag)
    elapsed = time.perf_counter() - started
    assert len(seen) >= 60, "commit 9ab4870 of the suite holds 60 bags"
    for name, result in seen.items():
        category = name.split("/")[1]
        if category == "valid":
            assert result.valid, (name, result.errors)
        elif category == "warning":
            assert result.valid, (name, result.errors)
            assert result.warnings, name
        else:
            # invalid/, linux-only/, and windows-only/ too: a Windows path is no safer here.
            assert not result.valid, name
        kinds = {f.kind for f in (result.errors if not result.valid else result.warnings)}
        assert EXPECTED_KINDS.get(name, set()) <= kinds, (name, result.findings)
    # The bags' own digests are what custody keeps; spot-check one against hashlib.
    basic = seen["v1.0/valid/basicBag"]
    hello = next(p for p in basic.payload if p.path == "data/hello.txt")
    data = (SUITE / "v1.0/valid/basicBag/data/hello.txt").read_bytes()
    assert hello.digest("sha512") == hashlib.sha512(data).hexdigest()
    assert hello.verified and hello.size == len(data)
    assert basic.version == "1.0" and basic.encoding == "UTF-8"
    print(f"\ncustody validated {len(seen)} suite bags in-process in {elapsed * 1000:.0f} ms")


@needs_suite
def test_suite_metadata_is_kept_as_written() -> None:
    """Repeated labels, their order and their case survive (RFC 8493 §2.2.2)."""
    result = validate_bag(SUITE / "v0.97/valid/duplicate-metadata-entries")
    labels = [f.label for f in result.info]
    assert labels == [
        "Bagging-Date", "Bagging-Date", "Contact-Email", "contact-name", "Contact-Email",
        "Contact-Name", "Case-Insensitivity-Test", "CASE-INSENSITIVITY-TEST",
        "case-insensitivity-test",
    ]
    assert result.info_values("case-insensitivity-test") == ("1", "2", "3")
    folded = validate_bag(SUITE / "v0.96/valid/basic-bag")
    (desc,) = folded.info_values("External-Description")
    assert desc == "Uncompressed greyscale TIFF images from the\nYoshimuri papers collection."
    old = validate_bag(SUITE / "v0.93/valid/basic-bag")
    assert old.info_file == "package-info.txt"
    assert old.payload_oxum == (25, 5) == (old.payload_octets, old.payload_streams)
    utf16 = validate_bag(SUITE / "v0.97/valid/UTF-16-encoded-tag-files")
    assert utf16.encoding == "UTF-16" and utf16.info_values("Contact-Name") == ("Chris Adams",)


# --- (c) bagit-python, the independent check ---------------------------------------------------

# Every bag on which custody and bagit-python disagree, and why. (ours, bagit-python's).
DISAGREEMENTS: dict[str, tuple[bool, bool, str]] = {
    # The bag was made on a case-insensitive filesystem: the manifest lists data/hello.txt
    # and data/HELLO.txt with one digest and only hello.txt exists. bagit-python on Linux
    # reports HELLO.txt missing; RFC 8493 §6.1.1.3 asks for a warning, which we give after
    # checking both entries' digests against the one file.
    "v0.97/warning/duplicate-file-with-different-case": (True, False, "case variants"),
    # The manifest lists the NFC and the NFD spelling of one file. bagit-python folds both
    # onto one key and then fails the checksum of the other; §6.1.1.3 says tolerate and
    # warn, which we do, checking both entries against the one file.
    "v0.97/warning/same-filename-listed-twice-with-different-normalization": (
        True, False, "normalisation variants"),
    # data/.DS_Store (empty, by its SHA-512) is absent from the suite's git copy, so
    # bagit-python fails the Payload-Oxum (2 files declared, 1 present). We accept an
    # absent OS metadata file whose every digest is that of zero bytes, with a warning.
    "v0.97/warning/special-system-files": (True, False, "absent empty .DS_Store"),
    # fetch.txt names C:\..., %HomeDrive%\... or \\?\UNC\... : bagit-python checks fetch
    # paths with POSIX rules only and accepts; the path is outside data/ (and a Windows
    # absolute path, §5.1), so we refuse on every platform.
    "v0.97/windows-only/out-of-scope-file-paths-using-absolute-path-for-fetch": (
        False, True, "Windows path in fetch.txt"),
    "v0.97/windows-only/out-of-scope-file-paths-using-shortcut-for-fetch": (
        False, True, "Windows path in fetch.txt"),
    "v0.97/windows-only/out-of-scope-file-paths-using-unc-for-fetch": (
        False, True, "Windows path in fetch.txt"),
    # "BagIt-Version : 1.0": whitespace before the colon is allowed only before 1.0
    # (§2.2.2, last paragraph); bagit-python strips it in every version and accepts.
    "v1.0/invalid/bagit-with-invalid-whitespace": (False, True, "1.0 whitespace rule"),
}


def bagit_python_accepts(bag: Path) -> bool:
    try:
        bagit.Bag(str(bag)).validate()
    except bagit.BagError:
        return False
    return True


@needs_suite
def test_disagreements_with_bagit_python_are_all_explained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.CRITICAL, logger="bagit")
    found: dict[str, tuple[bool, bool]] = {}
    theirs_time = 0.0
    for version, category, bag in suite_bags():
        name = f"{version}/{category}/{bag.name}"
        ours = validate_bag(bag).valid
        started = time.perf_counter()
        theirs = bagit_python_accepts(bag)
        theirs_time += time.perf_counter() - started
        if ours != theirs:
            found[name] = (ours, theirs)
    expected = {name: (o, t) for name, (o, t, _why) in DISAGREEMENTS.items()}
    assert found == expected
    print(f"\nbagit-python over the suite: {theirs_time * 1000:.0f} ms")


# --- hand-made hostile bags ----------------------------------------------------------------------


def encode_name(name: bytes) -> bytes:
    """RFC 8493 §2.1.3: exactly %, LF and CR are percent-encoded in a 1.0 manifest."""
    return name.replace(b"%", b"%25").replace(b"\n", b"%0A").replace(b"\r", b"%0D")


def write_bag(
    root: Path,
    payload: dict[bytes, bytes],
    *,
    version: str = "1.0",
    algorithms: tuple[str, ...] = ("sha256", "sha512"),
    info: bytes | None = b"Source-Organization: Example Archive\nContact-Name: A. Person\n",
    oxum: bool = True,
    tag_manifest: bool = True,
    extra_manifest_lines: bytes = b"",
    manifest_names: dict[bytes, bytes] | None = None,
) -> Path:
    """Write a bag byte by byte; ``manifest_names`` overrides how a file is listed."""
    root.mkdir(parents=True, exist_ok=True)
    bag = os.fsencode(root)
    os.mkdir(bag + b"/data")
    for name, content in payload.items():
        full = bag + b"/" + name
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as fh:
            fh.write(content)
    (root / "bagit.txt").write_bytes(
        f"BagIt-Version: {version}\nTag-File-Character-Encoding: UTF-8\n".encode()
    )
    if info is not None:
        if oxum:
            size = sum(len(c) for c in payload.values())
            info += f"Payload-Oxum: {size}.{len(payload)}\n".encode()
        (root / "bag-info.txt").write_bytes(info)
    names = manifest_names or {}
    for alg in algorithms:
        lines = b"".join(
            hashlib.new(alg, content).hexdigest().encode() + b"  "
            + names.get(name, encode_name(name) if version == "1.0" else name) + b"\n"
            for name, content in payload.items()
        )
        (root / f"manifest-{alg}.txt").write_bytes(lines + extra_manifest_lines)
    if tag_manifest:
        tags = sorted(p.name for p in root.iterdir() if p.is_file())
        for alg in algorithms:
            lines = b"".join(
                hashlib.new(alg, (root / t).read_bytes()).hexdigest().encode() + b"  "
                + t.encode() + b"\n"
                for t in tags
            )
            (root / f"tagmanifest-{alg}.txt").write_bytes(lines)
    return root


def kinds(result: BagValidation) -> set[Kind]:
    return {f.kind for f in result.findings}


def error_kinds(result: BagValidation) -> set[Kind]:
    return {f.kind for f in result.errors}


def snapshot(tree: Path) -> dict[bytes, tuple[int, int, int, bytes]]:
    """(mode, size, mtime_ns, sha256) of every entry, links not followed."""
    out: dict[bytes, tuple[int, int, int, bytes]] = {}
    for folder, dirs, files in os.walk(os.fsencode(tree)):
        for name in dirs + files:
            full = os.path.join(folder, name)
            st = os.lstat(full)
            digest = b""
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).digest()
            out[full] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


def test_a_well_formed_bag_is_valid_and_recorded_exactly(tmp_path: Path) -> None:
    payload = {b"data/report.pdf": b"%PDF-1.7 evidence", b"data/sub/empty.txt": b""}
    bag = write_bag(tmp_path / "bag", payload,
                    info=b"Source-Organization: Example\nExternal-Description: first line\n"
                         b"   continued here\nContact-Name: A\nContact-Name: B\n")
    before = snapshot(bag)
    result = require_valid(validate_bag(bag))
    assert snapshot(bag) == before, "validation must never write"
    assert result.errors == () and result.warnings == ()
    assert [(f.label, f.value) for f in result.info] == [
        ("Source-Organization", "Example"),
        ("External-Description", "first line\ncontinued here"),
        ("Contact-Name", "A"), ("Contact-Name", "B"),
        ("Payload-Oxum", "17.2"),
    ]
    assert result.info[1].raw == "External-Description: first line\n   continued here"
    pdf, empty = result.payload
    assert pdf.path_bytes == b"data/report.pdf" and pdf.size == 17 and pdf.verified
    assert pdf.digest("sha256") == hashlib.sha256(payload[b"data/report.pdf"]).hexdigest()
    assert pdf.digest("sha512") == hashlib.sha512(payload[b"data/report.pdf"]).hexdigest()
    # A 0-byte file is an ordinary payload file, recorded with size 0 and its digests.
    assert empty.size == 0 and empty.verified
    assert empty.digest("sha256") == hashlib.sha256(b"").hexdigest()
    assert {t.path: t.role for t in result.tag_files} == {
        "bag-info.txt": "metadata", "bagit.txt": "declaration",
        "manifest-sha256.txt": "payload-manifest", "manifest-sha512.txt": "payload-manifest",
        "tagmanifest-sha256.txt": "tag-manifest", "tagmanifest-sha512.txt": "tag-manifest",
    }
    assert all(t.verified for t in result.tag_files if t.role != "tag-manifest")
    assert result.payload_algorithms == ("sha256", "sha512")
    assert result.payload_oxum == (17, 2) == (result.payload_octets, result.payload_streams)
    assert bagit_python_accepts(bag), "the independent validator agrees"


def test_a_zero_byte_file_with_a_wrong_digest_is_refused(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", {b"data/empty": b""}, algorithms=("sha256",),
                    tag_manifest=False)
    (bag / "manifest-sha256.txt").write_bytes(b"0" * 64 + b"  data/empty\n")
    result = validate_bag(bag)
    assert error_kinds(result) == {Kind.CHECKSUM_MISMATCH}
    assert not result.payload[0].verified
    with pytest.raises(BagInvalidError, match="ChecksumMismatch"):
        require_valid(result)


def test_a_symlink_in_data_is_an_error_and_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "outside-secret"
    secret.write_bytes(b"not part of the bag")
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("sha256",))
    os.symlink(secret, bag / "data" / "link.txt")
    result = validate_bag(bag)
    assert Kind.SYMLINK in error_kinds(result)
    assert all(p.path != "data/link.txt" for p in result.payload)


def test_a_symlinked_data_folder_or_tag_file_or_bag_is_refused(tmp_path: Path) -> None:
    real = write_bag(tmp_path / "real", {b"data/a.txt": b"a"}, algorithms=("sha256",))
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("sha256",))
    os.rename(bag / "data", tmp_path / "moved-data")
    os.symlink(real / "data", bag / "data")
    result = validate_bag(bag)
    assert {Kind.SYMLINK, Kind.PAYLOAD_DIRECTORY_MISSING} <= error_kinds(result)
    linked_manifest = write_bag(tmp_path / "bag2", {b"data/a.txt": b"a"},
                                algorithms=("sha256",), tag_manifest=False)
    os.replace(linked_manifest / "manifest-sha256.txt", tmp_path / "m.txt")
    os.symlink(tmp_path / "m.txt", linked_manifest / "manifest-sha256.txt")
    assert {Kind.SYMLINK, Kind.NO_PAYLOAD_MANIFEST} <= error_kinds(validate_bag(linked_manifest))
    os.symlink(real, tmp_path / "link-to-bag")
    with pytest.raises(InputError, match="symbolic link"):
        validate_bag(tmp_path / "link-to-bag")


@pytest.mark.parametrize(
    "line",
    [
        b"../outside.txt",
        b"data/../../outside.txt",
        b"data/../bagit.txt",
        b"/etc/passwd",
        b"~/outside.txt",
        b"data//a.txt",
        b"C:\\Windows\\win.ini",
    ],
)
def test_path_traversal_in_a_manifest_is_refused(tmp_path: Path, line: bytes) -> None:
    (tmp_path / "outside.txt").write_bytes(b"x")
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("md5",),
                    extra_manifest_lines=hashlib.md5(b"x").hexdigest().encode() + b"  "
                    + line + b"\n")
    result = validate_bag(bag)
    assert error_kinds(result) & {Kind.UNSAFE_PATH, Kind.OUTSIDE_PAYLOAD}, result.errors
    assert not result.valid


def test_traversal_in_a_tag_manifest_and_fetch_is_refused(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("sha256",))
    with open(bag / "tagmanifest-sha256.txt", "ab") as fh:
        fh.write(b"0" * 64 + b"  ../../etc/passwd\n")
    assert Kind.UNSAFE_PATH in error_kinds(validate_bag(bag))
    bag2 = write_bag(tmp_path / "bag2", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                     tag_manifest=False)
    (bag2 / "fetch.txt").write_bytes(b"https://example.org/x - data/../../x\n")
    assert Kind.UNSAFE_PATH in error_kinds(validate_bag(bag2))


def test_a_huge_declared_payload_oxum_is_compared_never_used(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"abc"}, algorithms=("sha256",),
                    oxum=False, tag_manifest=False,
                    info=b"Payload-Oxum: " + b"9" * 4000 + b".1\n")
    started = time.perf_counter()
    result = validate_bag(bag)
    assert time.perf_counter() - started < 2
    assert error_kinds(result) == {Kind.PAYLOAD_OXUM_MISMATCH}
    assert result.payload_octets == 3 and result.payload_streams == 1
    twice = write_bag(tmp_path / "twice", {b"data/a.txt": b"abc"}, algorithms=("sha256",),
                      info=b"Payload-Oxum: 3.1\n")
    assert error_kinds(validate_bag(twice)) == {Kind.PAYLOAD_OXUM_MALFORMED}
    bad = write_bag(tmp_path / "bad", {b"data/a.txt": b"abc"}, algorithms=("sha256",),
                    oxum=False, info=b"Payload-Oxum: 3 bytes\n")
    assert error_kinds(validate_bag(bad)) == {Kind.PAYLOAD_OXUM_MALFORMED}


def test_unicode_nfc_nfd_collision_is_verified_and_warned(tmp_path: Path) -> None:
    nfc = unicodedata.normalize("NFC", "data/é.txt").encode()
    nfd = unicodedata.normalize("NFD", "data/é.txt").encode()
    assert nfc != nfd
    bag = write_bag(tmp_path / "bag", {nfc: b"composed", nfd: b"decomposed"})
    result = validate_bag(bag)
    assert result.valid, result.errors
    assert Kind.NAME_COLLISION in kinds(result)
    assert {p.path_bytes for p in result.payload} == {nfc, nfd}
    assert all(p.verified for p in result.payload)
    # Each file is checked against its own entry: swapping the contents must fail.
    (bag / os.fsdecode(nfc)).write_bytes(b"decomposed")
    assert Kind.CHECKSUM_MISMATCH in error_kinds(validate_bag(bag))


def test_a_manifest_name_in_another_normalisation_form_is_tolerated(tmp_path: Path) -> None:
    nfc = unicodedata.normalize("NFC", "data/Núñez").encode()
    nfd = unicodedata.normalize("NFD", "data/Núñez").encode()
    bag = write_bag(tmp_path / "bag", {nfc: b"x"}, manifest_names={nfc: nfd})
    result = validate_bag(bag)
    assert result.valid, result.errors
    assert Kind.NORMALISATION_MISMATCH in kinds(result)
    (p,) = result.payload
    assert p.path_bytes == nfc and p.listed_as == (nfd.decode(),) and p.verified
    # Case alone is not tolerated: on Linux data/nunez is another file.
    bag2 = write_bag(tmp_path / "bag2", {b"data/Hello.txt": b"x"},
                     manifest_names={b"data/Hello.txt": b"data/hello.txt"})
    assert {Kind.FILE_MISSING, Kind.UNLISTED_FILE} <= error_kinds(validate_bag(bag2))


def test_a_carriage_return_inside_a_manifest_line_is_refused(tmp_path: Path) -> None:
    name = b"data/a\rb.txt"
    bag = write_bag(tmp_path / "bag", {name: b"x"}, algorithms=("sha256",),
                    manifest_names={name: name})
    result = validate_bag(bag)
    assert Kind.MALFORMED_LINE in error_kinds(result)
    assert not result.valid
    # Written as RFC 8493 requires (%0D), the same name is found and verified.
    ok = write_bag(tmp_path / "ok", {name: b"x", b"data/new\nline": b"y", b"data/100%": b"z"})
    result = validate_bag(ok)
    assert result.valid, result.errors
    assert {p.path_bytes for p in result.payload} == {name, b"data/new\nline", b"data/100%"}


def test_percent_signs_in_1_0_names(tmp_path: Path) -> None:
    # bagit-python writes '%' unencoded: the literal file is used, with a warning.
    bag = write_bag(tmp_path / "bag", {b"data/100%25.txt": b"x", b"data/50%.txt": b"y"},
                    manifest_names={b"data/100%25.txt": b"data/100%25.txt",
                                    b"data/50%.txt": b"data/50%.txt"})
    result = validate_bag(bag)
    assert result.valid, result.errors
    assert {Kind.PERCENT_LITERAL_NAME, Kind.UNENCODED_PERCENT} <= kinds(result)
    assert all(p.listed_as == () and p.verified for p in result.payload)
    # Before 1.0 nothing is decoded: %0A is three characters of a name.
    old = write_bag(tmp_path / "old", {b"data/a%0Ab": b"x"}, version="0.97")
    assert validate_bag(old).valid


def test_a_non_utf8_name_is_refused(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", {b"data/ok.txt": b"x"}, algorithms=("sha256",))
    with open(os.fsencode(bag) + b"/data/caf\xe9.txt", "wb") as fh:
        fh.write(b"latin-1 name")
    result = validate_bag(bag)
    assert {Kind.NON_UTF8_NAME, Kind.UNLISTED_FILE} <= error_kinds(result)
    named = next(f for f in result.errors if f.kind == Kind.NON_UTF8_NAME)
    assert named.path == "data/caf\\xe9.txt"


def test_fetch_entries_not_present_make_the_bag_incomplete(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a", b"data/b.txt": b"b"},
                    algorithms=("sha256",), tag_manifest=False)
    os.remove(bag / "data" / "b.txt")
    (bag / "fetch.txt").write_bytes(b"https://example.org/b.txt 1 data/b.txt\n")
    result = validate_bag(bag)
    assert Kind.FETCH_INCOMPLETE in error_kinds(result)
    assert result.fetch[0].url == "https://example.org/b.txt" and not result.fetch[0].present
    assert not any(f.kind == Kind.FILE_MISSING for f in result.errors), "one reason, once"


def test_fifo_in_payload_is_refused_without_blocking(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("sha256",))
    os.mkfifo(bag / "data" / "pipe")
    result = validate_bag(bag)
    assert Kind.SPECIAL_FILE in error_kinds(result)


def test_byte_order_marks(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                    tag_manifest=False)
    manifest = bag / "manifest-sha256.txt"
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())
    result = validate_bag(bag)
    assert error_kinds(result) == {Kind.BYTE_ORDER_MARK}
    assert result.payload[0].verified, "the entry after the BOM is still read and checked"


def test_weak_algorithms_only_warn_and_every_manifest_is_checked(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("md5", "sha1"))
    result = validate_bag(bag)
    assert result.valid and Kind.WEAK_ALGORITHMS_ONLY in kinds(result)
    # A wrong digest in the weaker of two manifests is still an error.
    strong = write_bag(tmp_path / "strong", {b"data/a.txt": b"a"},
                       algorithms=("md5", "sha512"), tag_manifest=False)
    (strong / "manifest-md5.txt").write_bytes(b"f" * 32 + b"  data/a.txt\n")
    checked = validate_bag(strong)
    assert error_kinds(checked) == {Kind.CHECKSUM_MISMATCH}
    assert Kind.WEAK_ALGORITHMS_ONLY not in kinds(checked)


def test_unknown_algorithm_and_encoding_are_refused(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                    tag_manifest=False)
    (bag / "manifest-whirlpool.txt").write_bytes(b"00  data/a.txt\n")
    assert Kind.UNSUPPORTED_ALGORITHM in error_kinds(validate_bag(bag))
    rot = write_bag(tmp_path / "rot", {b"data/a.txt": b"a"}, algorithms=("sha256",))
    (rot / "bagit.txt").write_bytes(b"BagIt-Version: 1.0\nTag-File-Character-Encoding: rot13\n")
    assert Kind.UNSUPPORTED_ENCODING in error_kinds(validate_bag(rot))


def test_version_specific_rules(tmp_path: Path) -> None:
    dup = hashlib.sha256(b"a").hexdigest().encode() + b"  data/a.txt\n"
    new = write_bag(tmp_path / "new", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                    extra_manifest_lines=dup)
    assert Kind.DUPLICATE_ENTRY in error_kinds(validate_bag(new))
    old = write_bag(tmp_path / "old", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                    version="0.97", extra_manifest_lines=dup)
    result = validate_bag(old)
    assert result.valid and Kind.DUPLICATE_ENTRY in kinds(result)
    # One payload file missing from the second manifest: allowed before 1.0, not in 1.0.
    for version, ok in (("1.0", False), ("0.97", True)):
        bag = write_bag(tmp_path / f"partial-{version}", {b"data/a.txt": b"a", b"data/b": b"b"},
                        version=version, tag_manifest=False)
        lines = (bag / "manifest-sha512.txt").read_bytes().splitlines(keepends=True)
        (bag / "manifest-sha512.txt").write_bytes(lines[0])
        result = validate_bag(bag)
        assert result.valid is ok, result.errors
        assert Kind.NOT_IN_EVERY_MANIFEST in kinds(result)
    spaced = write_bag(tmp_path / "spaced", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                       info=b"Contact-Name :  A\n", version="0.97")
    assert validate_bag(spaced).info_values("Contact-Name") == ("A",)
    strict = write_bag(tmp_path / "strict", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                       info=b"Contact-Name : A\n")
    assert Kind.BAG_INFO_MALFORMED in error_kinds(validate_bag(strict))


def test_tag_manifests_protect_the_tag_files(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("sha256",))
    with open(bag / "bag-info.txt", "ab") as fh:
        fh.write(b"Contact-Name: inserted later\n")
    assert Kind.CHECKSUM_MISMATCH in error_kinds(validate_bag(bag))
    bag2 = write_bag(tmp_path / "bag2", {b"data/a.txt": b"a"}, algorithms=("sha256",))
    tm = bag2 / "tagmanifest-sha256.txt"
    tm.write_bytes(b"".join(line + b"\n" for line in tm.read_bytes().splitlines()
                            if b"manifest-sha256.txt" not in line))
    assert Kind.PAYLOAD_MANIFEST_UNCOVERED in error_kinds(validate_bag(bag2))


def test_caps_bound_work_by_the_bags_real_size(tmp_path: Path) -> None:
    long_line = b"0" * 64 + b"  data/" + b"a" * (MAX_LINE_CHARS + 10) + b"\n"
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                    tag_manifest=False, extra_manifest_lines=long_line)
    assert Kind.LINE_TOO_LONG in error_kinds(validate_bag(bag))
    many = b"".join(b"0" * 64 + f"  data/missing-{i}\n".encode() for i in range(10_010))
    bag2 = write_bag(tmp_path / "bag2", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                     tag_manifest=False, extra_manifest_lines=many)
    result = validate_bag(bag2)
    assert Kind.TOO_MANY_ENTRIES in error_kinds(result)
    missing = [f for f in result.errors if f.kind == Kind.FILE_MISSING]
    assert len(missing) == MAX_FINDINGS_PER_KIND
    assert any(f.kind == Kind.FINDINGS_TRUNCATED for f in result.errors)


def test_bag_declaration_rules(tmp_path: Path) -> None:
    cases = {
        b"\xef\xbb\xbfBagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n":
            Kind.BYTE_ORDER_MARK,
        b"BagIt-Version: 1.0\n": Kind.BAG_DECLARATION_INVALID,
        b"Tag-File-Character-Encoding: UTF-8\nBagIt-Version: 1.0\n":
            Kind.BAG_DECLARATION_INVALID,
        b"BagIt-Version: 2.0\nTag-File-Character-Encoding: UTF-8\n": Kind.UNSUPPORTED_VERSION,
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\nExtra: line\n":
            Kind.BAG_DECLARATION_INVALID,
    }
    for n, (declaration, kind) in enumerate(cases.items()):
        bag = write_bag(tmp_path / f"b{n}", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                        tag_manifest=False)
        (bag / "bagit.txt").write_bytes(declaration)
        assert kind in error_kinds(validate_bag(bag)), declaration


def test_input_that_is_not_a_bag_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        validate_bag(tmp_path / "absent")
    (tmp_path / "file.zip").write_bytes(b"PK")
    with pytest.raises(InputError, match="not a folder"):
        validate_bag(tmp_path / "file.zip")
    (tmp_path / "empty").mkdir()
    result = validate_bag(tmp_path / "empty")
    assert {Kind.BAG_DECLARATION_MISSING, Kind.PAYLOAD_DIRECTORY_MISSING} <= error_kinds(result)


def test_command_line_entry(tmp_path: Path) -> None:
    good = write_bag(tmp_path / "good", {b"data/a.txt": b"a"}, algorithms=("md5",))
    bad = write_bag(tmp_path / "bad", {b"data/a.txt": b"a"}, algorithms=("sha256",))
    (bad / "data" / "a.txt").write_bytes(b"b")
    lines: list[str] = []
    assert main([str(good)], err=lines.append) == 0
    assert lines and all(line.startswith("warning: WeakAlgorithmsOnly") for line in lines)
    lines.clear()
    assert main([str(bad)], err=lines.append) == 1
    assert any(line.startswith("error: ChecksumMismatch: data/a.txt") for line in lines)
    assert main([], err=lines.append) == 2
    with tempfile.TemporaryDirectory() as home:
        proc = subprocess.run([*CLI, str(bad)], env=child_env(Path(home)), capture_output=True,
                              text=True, timeout=60, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "error: ChecksumMismatch" in proc.stderr


def test_every_mismatch_is_unverified_even_past_the_findings_cap(tmp_path: Path) -> None:
    count = MAX_FINDINGS_PER_KIND + 10
    payload = {f"data/f{i:03d}".encode(): b"x" for i in range(count)}
    bag = write_bag(tmp_path / "bag", payload, algorithms=("sha256",), tag_manifest=False)
    (bag / "manifest-sha256.txt").write_bytes(
        b"".join(b"1" * 64 + b"  " + name + b"\n" for name in payload)
    )
    result = validate_bag(bag)
    assert not any(p.verified for p in result.payload)
    truncated = [f for f in result.errors if f.kind == Kind.FINDINGS_TRUNCATED]
    assert truncated and "10 more ChecksumMismatch" in truncated[0].message


def test_variant_entries_must_each_match_the_one_file(tmp_path: Path) -> None:
    """A second spelling of a listed file is accepted only with the same digest."""
    nfc = unicodedata.normalize("NFC", "data/é").encode()
    nfd = unicodedata.normalize("NFD", "data/é").encode()
    bag = write_bag(tmp_path / "bag", {nfc: b"x"}, algorithms=("sha256",), tag_manifest=False)
    with open(bag / "manifest-sha256.txt", "ab") as fh:
        fh.write(hashlib.sha256(b"other").hexdigest().encode() + b"  " + nfd + b"\n")
    assert Kind.CONFLICTING_ENTRY in error_kinds(validate_bag(bag))
    folder = write_bag(tmp_path / "folder", {b"data/sub/a": b"a"}, algorithms=("sha256",),
                       tag_manifest=False, extra_manifest_lines=b"0" * 64 + b"  data/sub\n")
    assert Kind.LISTS_DIRECTORY in error_kinds(validate_bag(folder))


@settings(max_examples=150, deadline=None)
@given(
    target=st.sampled_from(
        ["bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt",
         "fetch.txt"]
    ),
    content=st.binary(max_size=400)
    | st.lists(st.sampled_from([b"data/a.txt", b"  ", b"\t", b"\r", b"\n", b"%0A", b"%25",
                                b"..", b"/", b":", b"\xef\xbb\xbf", b"\xff", b"0" * 64,
                                b"BagIt-Version: 1.0", b"Payload-Oxum: 1.1", b"*", b"./"]),
               max_size=40).map(b"".join),
)
def test_arbitrary_tag_file_bytes_give_findings_never_a_traceback(
    target: str, content: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bag = write_bag(Path(tmp) / "bag", {b"data/a.txt": b"a"}, algorithms=("sha256",))
        (bag / target).write_bytes(content)
        result = validate_bag(bag)
        assert all(isinstance(f.kind, Kind) for f in result.findings)
        # Soundness: "valid" only ever stands on recomputed digests of the real bytes.
        if result.valid:
            (payload,) = result.payload
            assert payload.verified and payload.digests
            assert payload.digest("sha256") == hashlib.sha256(b"a").hexdigest()


def test_findings_print_as_one_honest_line(tmp_path: Path) -> None:
    """Names from the bag cannot break a line, colour a terminal or reorder the text."""
    name = b"data/evil\x1b[2J\nfdp.\xe2\x80\xaeexe"
    bag = write_bag(tmp_path / "bag", {b"data/a.txt": b"a"}, algorithms=("sha256",),
                    tag_manifest=False,
                    extra_manifest_lines=b"0" * 64 + b"  " + encode_name(name) + b"\n")
    lines: list[str] = []
    assert main([str(bag)], err=lines.append) == 1
    (missing,) = [line for line in lines if "FileMissing" in line]
    assert "\n" not in missing and "\x1b" not in missing and "\u202e" not in missing
    assert "\\x1b" in missing and "\\u202e" in missing
