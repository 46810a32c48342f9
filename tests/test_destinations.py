"""Where custody writes: never outside the destination it was given, never through a link.

Each test reproduces one hole an outside review found (issue 15, points 2 to 5) with the
real CLI on real files, and then checks from the outside (``os.walk``, ``hashlib``) that
nothing was written where it must not be:

* an item record whose ``path_bytes`` is ``../x`` (signed by the documenter's own key, as
  a key holder could write with the format spec alone) made ``vault copy`` and
  ``event copy --dest`` write beside their destination; ``path`` and ``path_bytes`` that
  disagree showed people one name and checked another file;
* symbolic links already present at a destination were written through: a vault's
  sub-folder, an import's ``received/``, an ``event copy`` folder, a folder of the root a
  vault restore writes into, an ingest folder, and a link planted in
  ``.custody/timestamps`` that copied a private key file into a vault;
* ``import --into ./x`` made a root that no longer verified, ``--into ./.custody/x`` wrote
  into custody's own state;
* temporary files of ``--out`` writes had predictable names and were opened without
  ``O_EXCL``/``O_NOFOLLOW``: a link planted at that name in a shared folder redirected the
  write onto another file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import ledger_lines, ledger_path, one_line_error

from conftest import PASSPHRASE, Result, validate
from custody.clock import format_time, utc_now
from custody.keys.keyring import Keyring, SigningKey
from custody.ledger.records import Record, SignedRecord

CLI = Callable[..., Result]
IO_ERROR, USAGE, UNUSABLE = 9, 2, 3


# --- helpers --------------------------------------------------------------------------------


def forge_item(root: Path, signer: SigningKey, body: dict[str, Any]) -> int:
    """Append a correctly chained item record signed by ``signer`` (no CLI refusal applies)."""
    lines = ledger_lines(root)
    seq = len(lines)
    record = Record(seq, "item", format_time(utc_now()), signer.fingerprint,
                    hashlib.sha256(lines[-1]).hexdigest(), body)  # fmt: skip
    payload = record.signed_bytes()
    signed = SignedRecord.assemble(record, signer.sign(payload), payload)
    with open(ledger_path(root), "ab") as handle:
        handle.write(signed.line + b"\n")
    return seq


def item_body(path: str, data: bytes, path_bytes: bytes | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "digests": {"sha256": hashlib.sha256(data).hexdigest()},
        "mtime": "2024-01-01T00:00:00.000000000Z",
        "path": path,
        "size": len(data),
    }
    if path_bytes is not None:
        body["path_bytes"] = base64.b64encode(path_bytes).decode()
    return body


def everything_under(place: Path) -> dict[str, bytes | str]:
    """Every entry under ``place``: file bytes, 'dir', or the target of a link."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(place):
        for name in dirs + files:
            full = os.path.join(folder, name)
            if os.path.islink(full):
                found[full] = "-> " + os.readlink(full)
            elif os.path.isdir(full):
                found[full] = "dir"
            else:
                with open(full, "rb") as handle:
                    found[full] = handle.read()
    return found


def refused(result: Result, code: int, *words: str) -> None:
    assert result.code == code, (result.code, result.out, result.err)
    line = one_line_error(result.err)
    for word in words:
        assert word in line, line


@dataclass(frozen=True)
class Office:
    root: Path
    home: Path
    signer: SigningKey
    seqs: dict[str, int]  # path -> item record


@pytest.fixture
def office(evidence: Path, env: Path, cli: CLI) -> Office:
    """A small root: two notes catalogued and signed by alice."""
    (evidence / "media").mkdir()
    (evidence / "media" / "a.txt").write_bytes(b"first note\n")
    (evidence / "media" / "b.txt").write_bytes(b"second note\n")
    assert cli("catalogue", evidence / "media", "--root", evidence).code == 0
    assert cli("sign", "--root", evidence).code == 0
    signer = Keyring(env / "keys").get("alice").unlock(PASSPHRASE)
    seqs = {}
    for line in ledger_lines(evidence):
        signed = json.loads(line)["signed"]
        if signed["type"] == "item":
            seqs[signed["body"]["path"]] = signed["seq"]
    return Office(evidence, env, signer, seqs)


def verify_codes(cli: CLI, root: Path) -> set[tuple[str, int | None]]:
    result = cli("verify", "--root", root, "--json")
    document = result.json()
    validate(document, "cli-verify.schema.json")
    return {(f["code"], f["seq"]) for f in document["findings"] if f["severity"] == "error"}


# --- point 2: path_bytes and path ------------------------------------------------------------


def test_an_item_whose_path_bytes_leave_the_root_is_malformed_and_never_copied(
    office: Office, cli: CLI, tmp_path: Path
) -> None:
    """path_bytes ``../x`` (path ``x``): vault copy and event copy wrote beside their DEST."""
    data = b"bytes kept beside the evidence root\n"
    (office.root.parent / "x").write_bytes(data)  # what ROOT/../x names
    seq = forge_item(office.root, office.signer, item_body("x", data, b"../x"))
    assert ("RECORD_MALFORMED", seq) in verify_codes(cli, office.root)
    vaults, copies = tmp_path / "vaults", tmp_path / "copies"
    vaults.mkdir()
    copies.mkdir()
    before = everything_under(tmp_path)
    vault = cli("vault", "copy", vaults / "v1", "--root", office.root)
    refused(vault, UNUSABLE, "record")
    copied = cli("event", "copy", str(seq), "--dest", copies / "c1", "--root", office.root)
    refused(copied, UNUSABLE, "record")
    assert not (vaults / "x").exists() and not (copies / "x").exists()
    after = everything_under(tmp_path)
    assert {k for k in after if k.startswith(str(vaults) + "/")} <= {str(vaults / "v1")} | {
        k for k in after if k.startswith(str(vaults / "v1") + "/")
    }
    assert {k: v for k, v in after.items() if str(office.root) not in k and "vaults/v1" not in k
            and "copies/c1" not in k} == {
        k: v for k, v in before.items() if str(office.root) not in k
    }  # fmt: skip


BAD_NAMES = {
    # path, path_bytes: each must be RECORD_MALFORMED
    "path and path_bytes disagree": ("media/a.txt", b"media/b.txt"),
    "path_bytes for a UTF-8 name": ("media/a.txt", b"media/a.txt"),
    "path is not the display form": ("media/x\ufffd.txt", b"media/y\xff.txt"),
    "path_bytes with ..": ("media/\ufffd", b"media/../../\xff"),
    "path_bytes absolute": ("/etc/\ufffd", b"/etc/\xff"),
    "path_bytes with an empty component": ("media//\ufffd", b"media//\xff"),
    "path_bytes with NUL": ("media/a\x00\ufffd", b"media/a\x00\xff"),
    "empty component": ("media//a.txt", None),
    "dot component": ("./media/a.txt", None),
    "trailing slash": ("media/a.txt/", None),
    "NUL in path": ("media/a\x00.txt", None),
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_item_names_are_checked_together(case: str, office: Office, cli: CLI) -> None:
    """A record may not show people one name and check another file (docs/format.md)."""
    path, path_bytes = BAD_NAMES[case]
    data = (office.root / "media" / "b.txt").read_bytes()
    seq = forge_item(office.root, office.signer, item_body(path, data, path_bytes))
    assert ("RECORD_MALFORMED", seq) in verify_codes(cli, office.root)


# --- point 3: links at the destination -------------------------------------------------------


def test_vault_copy_never_writes_through_a_link_in_the_destination(
    office: Office, cli: CLI, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "media").symlink_to(elsewhere)
    result = cli("vault", "copy", vault, "--root", office.root)
    refused(result, IO_ERROR, "symbolic link", "media")
    assert everything_under(elsewhere) == {}


def test_event_copy_never_writes_through_a_link_in_the_destination(
    office: Office, cli: CLI, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "media").symlink_to(elsewhere)
    seq = office.seqs["media/a.txt"]
    result = cli("event", "copy", str(seq), "--dest", dest, "--root", office.root)
    refused(result, IO_ERROR, "symbolic link")
    assert everything_under(elsewhere) == {}
    # ...and a link planted at the file's own name is not written through either.
    (dest / "media").unlink()
    (dest / "media").mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"someone else's file\n")
    (dest / "media" / "a.txt").symlink_to(victim)
    result = cli("event", "copy", str(seq), "--dest", dest, "--root", office.root)
    refused(result, IO_ERROR, "symbolic link")
    assert victim.read_bytes() == b"someone else's file\n"


def test_a_link_planted_in_custody_state_is_never_copied_into_a_vault(
    office: Office, cli: CLI, tmp_path: Path
) -> None:
    """A link in .custody/timestamps to the keyring's private key copied the key file."""
    key_file = office.home / "keys" / "alice.key"
    secret = key_file.read_bytes()
    (office.root / ".custody" / "timestamps" / "planted.tsr").symlink_to(key_file)
    vault = tmp_path / "vault"
    result = cli("vault", "copy", vault, "--root", office.root)
    refused(result, IO_ERROR, "symbolic link", "planted.tsr")
    for name, content in everything_under(tmp_path / "vault").items():
        assert not (isinstance(content, bytes) and secret in content), name


def test_vault_restore_never_writes_through_a_link_in_the_root(
    office: Office, cli: CLI, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    assert cli("vault", "copy", vault, "--root", office.root).code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    media = office.root / "media"
    media.rename(tmp_path / "old-media")
    media.symlink_to(elsewhere)
    seq = office.seqs["media/a.txt"]
    result = cli("vault", "restore", str(seq), "--from", vault, "--root", office.root)
    refused(result, IO_ERROR, "symbolic link")
    assert everything_under(elsewhere) == {}


def test_ingest_never_writes_through_a_link_in_the_root(
    office: Office, cli: CLI, tmp_path: Path
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    (card / "c.txt").write_bytes(b"a third note\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (office.root / "incoming").symlink_to(elsewhere)
    result = cli("ingest", card, "--into", "incoming", "--root", office.root)
    refused(result, IO_ERROR, "symbolic link")
    assert everything_under(elsewhere) == {}


# --- import: points 3 and 4 ------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    bundle: Path
    pem: Path


@pytest.fixture
def sent(office: Office, cli: CLI, tmp_path: Path) -> Sent:
    """The office's two notes exported as a bundle, and alice's public key."""
    out = tmp_path / "sent" / "notes"
    assert cli("export", "--all", "--out", out, "--root", office.root).code == 0
    pem = tmp_path / "sent" / "alice.pem"
    assert cli("keys", "export", "alice", "--out", pem).code == 0
    return Sent(out, pem)


@pytest.fixture
def chambers(tmp_path: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The lawyer's own root and keyring (another CUSTODY_HOME)."""
    monkeypatch.setenv("CUSTODY_HOME", str(tmp_path / "lawyer-home"))
    root = tmp_path / "chambers"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "counsel", "--role", "lawyer").code == 0
    return root


def import_(cli: CLI, sent: Sent, root: Path, *extra: str | os.PathLike[str]) -> Result:
    return cli("import", sent.bundle, "--root", root, "--trusted-key", sent.pem, *extra)


def test_import_never_writes_through_a_link_in_the_root(
    sent: Sent, chambers: Path, cli: CLI, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (chambers / "received").symlink_to(elsewhere)
    refused(import_(cli, sent, chambers), IO_ERROR, "symbolic link", "received")
    assert everything_under(elsewhere) == {}
    (chambers / "received").unlink()
    (chambers / ".custody" / "imports").symlink_to(elsewhere)
    refused(import_(cli, sent, chambers, "--into", "fresh"), IO_ERROR, "symbolic link")
    assert everything_under(elsewhere) == {}


@pytest.mark.parametrize("into", ["./x", "x/./y", "x//y/"])
def test_import_into_a_folder_written_loosely_is_normalised(
    into: str, sent: Sent, chambers: Path, cli: CLI
) -> None:
    result = import_(cli, sent, chambers, "--into", into, "--json")
    assert result.code == 0, result.err
    folder = Path(result.json()["folder"])
    assert folder == Path(os.path.normpath(chambers / into))
    assert (folder / "media" / "a.txt").read_bytes() == b"first note\n"
    verified = cli("verify", "--root", chambers, "--json")
    assert verified.code == 0, verified.out


@pytest.mark.parametrize(
    "into",
    ["./.custody/x", ".custody", "x/.custody/y", "../x", "x/../../y", "/tmp/x", "a\0b", "./", "."],
)
def test_import_into_a_folder_outside_the_root_or_into_its_state_is_refused(
    into: str, sent: Sent, chambers: Path, cli: CLI, tmp_path: Path
) -> None:
    before = everything_under(tmp_path)
    result = import_(cli, sent, chambers, "--into", into)
    refused(result, USAGE, "--into")
    assert everything_under(tmp_path) == before


def test_import_into_an_absolute_folder_inside_the_root(
    sent: Sent, chambers: Path, cli: CLI
) -> None:
    result = import_(cli, sent, chambers, "--into", str(chambers / "cases" / "one"), "--json")
    assert result.code == 0, result.err
    assert Path(result.json()["folder"]) == chambers / "cases" / "one"


# --- point 5: temporary files of --out ------------------------------------------------------


def out_command(command: str, root: Path, out: Path) -> list[str | os.PathLike[str]]:
    """The argv of each command that writes an --out file (custody.system.files)."""
    return {
        "keys export": ["keys", "export", "alice", "--out", out],
        "sign --out": ["sign", "--root", root, "--out", out],
        "proof inclusion --out": ["proof", "inclusion", "1", "--root", root, "--out", out],
        "export --zip": ["export", "--all", "--root", root, "--zip", "--out", out.with_suffix("")],
    }[command]


OUT_COMMANDS = ["keys export", "sign --out", "proof inclusion --out", "export --zip"]


@pytest.mark.parametrize("command", OUT_COMMANDS)
def test_a_link_at_the_temporary_name_in_a_shared_folder_is_never_written_through(
    command: str, office: Office, cli: CLI, tmp_path: Path
) -> None:
    """The old temporary name was '.NAME.tmp-PID': anyone who may write in the folder could
    plant a link there and have custody write onto another file (CWE-377, CWE-59)."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    out = shared / ("bundle.zip" if command == "export --zip" else "out.txt")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"the other user's file\n")
    (shared / f".{out.name}.tmp-{os.getpid()}").symlink_to(victim)
    result = cli(*out_command(command, office.root, out))
    assert result.code == 0, result.err
    assert victim.read_bytes() == b"the other user's file\n"
    assert out.is_file() and not out.is_symlink() and out.stat().st_size > 0
    leftovers = sorted(p.name for p in shared.iterdir() if ".tmp-" in p.name)
    assert leftovers == [f".{out.name}.tmp-{os.getpid()}"]  # only the planted link


def test_write_atomic_replaces_a_link_itself_never_its_target(tmp_path: Path) -> None:
    from custody.system.files import write_atomic

    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"untouched\n")
    out = tmp_path / "out.txt"
    out.symlink_to(victim)
    write_atomic(out, b"new\n")
    assert victim.read_bytes() == b"untouched\n"
    assert not out.is_symlink() and out.read_bytes() == b"new\n"


# --- point 1: import works from the bytes it verified ---------------------------------------


def _forged_records(bundle: Path) -> bytes:
    """records.jsonl plus an item nobody trusted signed: the payload of media/a.txt under
    another name (a key made here; path_bytes naming the planted file, as main accepted)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from custody.ledger import canonical

    lines = (bundle / "custody" / "records.jsonl").read_bytes().split(b"\n")[:-1]
    signed = [json.loads(line)["signed"] for line in lines]
    item = next(s for s in signed if s["type"] == "item" and s["body"]["path"] == "media/a.txt")
    body = {**item["body"], "path_bytes": base64.b64encode(b"media/planted.txt").decode()}
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    record = {"body": body, "prev": None, "seq": max(s["seq"] for s in signed) + 1,
              "signer": hashlib.sha256(raw).hexdigest(), "time": item["time"], "type": "item",
              "v": 1}  # fmt: skip
    sig = base64.b64encode(key.sign(canonical.encode(record))).decode()
    return b"".join(x + b"\n" for x in [*lines, canonical.encode({"sig": sig, "signed": record})])


def swap_records_at(swap_at: int, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make custody's bundle reader replace records.jsonl with the forged one (atomically,
    as another process sharing the folder would) just before it opens it the N-th time."""
    import custody.delivery.bundle_check as bundle_check
    import custody.delivery.bundle_import as bundle_import

    forged = _forged_records(bundle)
    records = bundle / "custody" / "records.jsonl"
    opened = [0]

    class SwappedMeanwhile(bundle_check.BundleSource):
        def open(self, rel: str) -> Any:
            if rel == "custody/records.jsonl":
                opened[0] += 1
                if opened[0] == swap_at:
                    spare = records.with_name(".swap")
                    spare.write_bytes(forged)
                    os.replace(spare, records)
            return super().open(rel)

    monkeypatch.setattr(bundle_check, "BundleSource", SwappedMeanwhile)
    monkeypatch.setattr(bundle_import, "BundleSource", SwappedMeanwhile)


@pytest.mark.parametrize("swap_at", [1, 2, 3, 4, 5, 6])
def test_import_copies_only_what_it_verified_even_if_the_bundle_changes_meanwhile(
    swap_at: int,
    sent: Sent,
    chambers: Path,
    cli: CLI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """records.jsonl is swapped (atomically, as a process sharing the folder would) just
    before the N-th time custody opens it. Import used to verify one copy and then decide
    what to copy, and under which names, from a second read nobody checked: it imported an
    unsigned item and recorded a signed receipt saying "bundle verified". Whenever the swap
    lands, the import must be refused or bring in exactly the verified items."""
    swap_records_at(swap_at, sent.bundle, monkeypatch)
    result = import_(cli, sent, chambers, "--json")
    planted = [p for p in chambers.rglob("*") if "planted" in p.name]
    assert planted == []
    items = [json.loads(x)["signed"] for x in ledger_lines(chambers)]
    names = sorted(s["body"]["path"] for s in items if s["type"] == "item")
    if result.code == 0:
        assert result.json()["imported"] == 2
        assert names == ["received/notes/media/a.txt", "received/notes/media/b.txt"]
    else:
        assert names == [] and not (chambers / "received").exists()
        assert not any(s["type"] == "event" for s in items)


@pytest.mark.parametrize("swap_at", [1, 2, 3, 4, 5, 6])
def test_a_bundle_report_shows_only_what_it_verified(
    swap_at: int, sent: Sent, office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same class of hole in ``custody report``: it verified the bundle, then listed
    the items of a second read of records.jsonl under the verdict VERIFIED."""
    from custody.delivery.report.build import build_report
    from custody.errors import CustodyError
    from custody.trust.policy import Anchor, TrustPolicy

    swap_records_at(swap_at, sent.bundle, monkeypatch)
    alice = Anchor(office.signer.fingerprint, "alice", "confirmed by the test")
    try:
        report = build_report(sent.bundle, policy=TrustPolicy(anchors=(alice,)))
    except CustodyError as exc:
        assert "changed while it was being checked" in str(exc)
        return
    if report.verified:
        assert len(report.items) == 2, [item.name for item in report.items]


def test_payload_hashed_on_threads_is_pinned_and_a_later_change_refused(
    sent: Sent, office: Office
) -> None:
    """Verification hashes a folder bundle's evidence files on several threads (main's
    perf work); each thread hashes through the one snapshot, so the SHA-256 pinned is of
    the bytes it hashed, and the tree digest a report prints of a file changed since is
    refused, never computed from the new bytes."""
    from custody.delivery.bundle_check import verify_source
    from custody.delivery.bundle_source import BundleSource
    from custody.delivery.digests import tree_digest
    from custody.errors import InputError
    from custody.trust.policy import Anchor, TrustPolicy

    alice = Anchor(office.signer.fingerprint, "alice", "confirmed by the test")
    with BundleSource(sent.bundle) as source:
        result = verify_source(source, policy=TrustPolicy(anchors=(alice,)))
        assert result.verdict == "verified", result.findings
        payload = sorted(r for r in source.files if r.startswith("data/"))
        assert len(payload) == 2
        for rel in payload:
            pinned = source.pinned(rel)
            assert pinned == hashlib.sha256((sent.bundle / rel).read_bytes()).hexdigest()
        before = tree_digest(sent.bundle, source)
        (sent.bundle / payload[0]).write_bytes(b"other bytes, after verification\n")
        with pytest.raises(InputError, match="changed while it was being checked"):
            source.read(payload[0])
        with pytest.raises(InputError, match="changed while it was being checked"):
            tree_digest(sent.bundle, source)
    assert before.files == len(source.files)
