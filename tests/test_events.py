"""Events, working copies, vault copies, history and identities: a piece of footage's life.

The first test is the issue's whole story on real media (the corpus when present, else the
shipped samples), through the real CLI: catalogue; custody transferred to a lawyer; the
lawyer plays it; a note; a clip cut and a thumbnail grabbed by the real ffmpeg and
catalogued as working copies; copies made elsewhere; a vault on a second folder that
verifies on its own; the documenter's key rotated, the lawyer's key revoked by a
custodian. The ledger verifies; ``history`` tells that life in ledger order; and every
identity fault then injected (a revoked key and a retired key still signing, a documenter
disposing, revoking someone else's key and vouching for a custodian, a self-appointed
custodian, a key nobody introduced) is named by verify at its record, while the records
those keys made before stay valid.

Facts are checked from the outside: ``sha256sum`` for digests, ``os.stat`` for mtimes,
plain ``json`` for ledger lines; every ``--json`` output is validated against its schema.
Forged records are built with custody's record code and signed with the real keys, as
someone holding those keys (but not bound by the CLI's refusals) would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import (
    latest_items,
    ledger_lines,
    ledger_path,
    ledger_records,
    one_line_error,
    sha256sum_tree,
    tool,
)

from conftest import PASSPHRASE, Result, copy_media, media_source, snapshot, validate
from custody.clock import format_time, utc_now
from custody.errors import SigningKeyError
from custody.handling.events import event, revoke
from custody.keys.keyring import Keyring, SigningKey
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import EventBody, ItemRef, KeyBody, RevocationBody
from custody.ledger.records import Record, SignedRecord
from custody.root import EvidenceRoot, init_root
from custody.trust.policy import policy_for
from custody.verify.roots import verify_root

CAMERA = "media/field-dump-01/DCIM/Camera"
VIDEO = f"{CAMERA}/VID_20201023_202729.mp4"
PHOTO = f"{CAMERA}/20160912_100531.jpg"

CLI = Callable[..., Result]


# --- helpers --------------------------------------------------------------------------------


def run_json(cli: CLI, schema: str, *args: str | os.PathLike[str]) -> Any:
    result = cli(*args, "--json")
    assert result.code == 0, result.err
    document = result.json()
    validate(document, schema)
    return document


def verification(cli: CLI, root: Path) -> tuple[int, dict[str, Any]]:
    result = cli("verify", "--root", root, "--json")
    document = result.json()
    validate(document, "cli-verify.schema.json")
    return result.code, document


def errors(document: dict[str, Any]) -> set[tuple[str, int | None]]:
    return {(f["code"], f["seq"]) for f in document["findings"] if f["severity"] == "error"}


def items_by_path(root: Path) -> dict[str, dict[str, Any]]:
    """The latest item record per path, read with plain json: {path: {"seq", "body"}}."""
    found: dict[str, dict[str, Any]] = {}
    for record in ledger_records(root):
        signed = record["signed"]
        if signed["type"] == "item":
            found[signed["body"]["path"]] = {"seq": signed["seq"], "body": signed["body"]}
    return found


def events_naming(root: Path, seq: int) -> list[int]:
    """Event records naming item ``seq`` (as an item or as a derive output), plain json."""
    named = []
    for record in ledger_records(root):
        signed = record["signed"]
        if signed["type"] != "event":
            continue
        body = signed["body"]
        refs = [r["seq"] for r in body["items"]] + (
            [body["output"]["seq"]] if "output" in body else []
        )
        if seq in refs:
            named.append(signed["seq"])
    return named


def sha256_of(path: Path | bytes) -> str:
    out = tool("sha256sum", "--", path).stdout.split()[0]
    return out.decode()


def digest_prefix(sha256: str) -> str:
    """A prefix that cannot be read as a record number (it holds a letter)."""
    for length in range(10, 65):
        if not sha256[:length].isdigit():
            return sha256[:length]
    raise AssertionError("a SHA-256 of digits only")


def unlock(home: Path, name: str) -> SigningKey:
    return Keyring(home / "keys").get(name).unlock(PASSPHRASE)


def forge(root: Path, signer: SigningKey, record_type: str, body: dict[str, Any]) -> int:
    """Append a correctly chained record signed by ``signer``, bypassing every refusal.

    What a key holder could write with the format spec alone; returns its number.
    """
    lines = ledger_lines(root)
    seq = len(lines)
    record = Record(
        seq,
        record_type,
        format_time(utc_now()),
        signer.fingerprint,
        hashlib.sha256(lines[-1]).hexdigest(),
        body,
    )
    payload = record.signed_bytes()
    signed = SignedRecord.assemble(record, signer.sign(payload), payload)
    with open(ledger_path(root), "ab") as handle:
        handle.write(signed.line + b"\n")
    return seq


def ref(root: Path, path: str) -> ItemRef:
    item = items_by_path(root)[path]
    return ItemRef(item["seq"], item["body"]["digests"]["sha256"], path)


def ffmpeg(*args: str | os.PathLike[str]) -> None:
    assert shutil.which("ffmpeg"), "ffmpeg is needed (scripts/setup.sh installs it)"
    tool("ffmpeg", "-nostdin", "-v", "error", "-y", *args)


# --- the whole life -------------------------------------------------------------------------


@pytest.fixture
def footage(evidence: Path, cli: CLI) -> Path:
    """Real media in a root: the camera folder tagged 'camera', everything catalogued."""
    copy_media(media_source(), evidence / "media")
    if not (evidence / VIDEO).is_file():
        pytest.skip(f"{VIDEO} is not in the media set")
    for args in (
        (evidence / CAMERA, "--tag", "camera"),
        (evidence / "media",),
    ):
        result = cli(
            "catalogue", *args, "--root", evidence, "--collector", "Alice", "--key", "alice"
        )
        assert result.code == 0, result.err
    return evidence


@pytest.fixture
def camera(evidence: Path, cli: CLI) -> Path:
    """Only the camera folder of the media (a lighter root for the CLI's refusals)."""
    source = media_source() / "field-dump-01" / "DCIM" / "Camera"
    if not (source / os.path.basename(VIDEO)).is_file():
        pytest.skip(f"{VIDEO} is not in the media set")
    shutil.copytree(source, evidence / CAMERA)
    result = cli("catalogue", evidence / CAMERA, "--root", evidence, "--key", "alice")
    assert result.code == 0, result.err
    return evidence


def test_the_life_of_a_video(footage: Path, cli: CLI, env: Path, tmp_path: Path) -> None:
    root = footage
    media_before = snapshot(root / "media")
    for name, role in (("counsel", "lawyer"), ("keeper", "custodian")):
        assert cli("keys", "generate", "--name", name, "--role", role).code == 0
    items = items_by_path(root)
    video = items[VIDEO]["seq"]
    video_sha = items[VIDEO]["body"]["digests"]["sha256"]
    assert video_sha == sha256_of(root / VIDEO)

    # Custody passes to the lawyer (ITEM by path).
    transfer = run_json(
        cli, "cli-event.schema.json",
        "event", "transfer", root / VIDEO, "--to", "counsel", "--reason", "for the filing",
        "--key", "alice", "--root", root,
    )  # fmt: skip
    body = transfer["record"]["signed"]["body"]
    assert body == {
        "action": "transfer",
        "items": [{"path": VIDEO, "seq": video, "sha256": video_sha}],
        "reason": "for the filing",
        "to": "counsel",
    }
    # The lawyer plays it (ITEM by digest prefix) and the documenter annotates it (by number).
    access = run_json(
        cli, "cli-event.schema.json",
        "event", "access", digest_prefix(video_sha), "--reason", "viewed in full",
        "--key", "counsel", "--root", root,
    )  # fmt: skip
    assert access["record"]["signed"]["body"]["items"][0]["seq"] == video
    note = run_json(
        cli, "cli-event.schema.json",
        "event", "note", str(video), "--text", "march at the square",
        "--description", "crowd, police line", "--incident", "2020-10-23 dispersal",
        "--language", "ar", "--sensitivity", "faces visible",
        "--key", "alice", "--root", root,
    )  # fmt: skip
    assert note["record"]["signed"]["body"]["fields"] == {
        "description": "crowd, police line",
        "incident": "2020-10-23 dispersal",
        "language": "ar",
        "sensitivity": "faces visible",
    }
    assert note["record"]["signed"]["body"]["text"] == "march at the square"

    # Working copies made by the real ffmpeg, catalogued and linked by digest.
    (root / "work").mkdir()
    clip, thumb = root / "work" / "clip.mp4", root / "work" / "thumb.jpg"
    ffmpeg("-ss", "0", "-t", "1", "-i", root / VIDEO, "-c", "copy", clip)
    ffmpeg("-ss", "0.5", "-i", root / VIDEO, "-frames:v", "1", thumb)
    probe = tool("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                 "stream=codec_type", "-of", "csv=p=0", clip).stdout  # fmt: skip
    assert probe.strip().rstrip(b",") == b"video"
    derived = {}
    for output, action in ((clip, "clip 0-1 s (ffmpeg -c copy)"), (thumb, "thumbnail")):
        document = run_json(
            cli, "cli-event.schema.json",
            "event", "derive", VIDEO, "--output", output, "--action", action,
            "--key", "counsel", "--root", root,
        )  # fmt: skip
        body = document["record"]["signed"]["body"]
        assert body["action"] == "derive" and body["reason"] == action
        assert body["items"] == [{"path": VIDEO, "seq": video, "sha256": video_sha}]
        assert body["output"]["path"] == f"work/{output.name}"
        assert body["output"]["sha256"] == sha256_of(output)
        derived[output.name] = body["output"]["seq"]
        item = items_by_path(root)[f"work/{output.name}"]
        assert item["seq"] == body["output"]["seq"] < document["seq"]
        # By record number and digest only, never the original's path (issue 15, point 15).
        note = f"derived from record {video} (SHA-256 {video_sha}): {action}"
        assert item["body"]["note"] == note

    # Copies elsewhere (ITEM by --tag), each re-read: the recorded digest is the copy's.
    outside = tmp_path / "for-counsel"
    copied = run_json(
        cli, "cli-event.schema.json",
        "event", "copy", "--tag", "camera", "--dest", outside, "--key", "counsel", "--root", root,
    )  # fmt: skip
    body = copied["record"]["signed"]["body"]
    camera = sorted(p for p in items_by_path(root) if p.startswith(CAMERA + "/"))
    assert sorted(i["path"] for i in body["items"]) == camera
    assert body["destination"] == str(outside.resolve())
    on_disk = sha256sum_tree(outside)
    assert len(body["copies"]) == len(camera) == len(on_disk)
    for item, copy in zip(body["items"], body["copies"], strict=True):
        relative = os.fsencode(copy["path"])[len(os.fsencode(outside.resolve())) + 1 :]
        assert relative == os.fsencode(item["path"])
        assert copy["sha256"] == on_disk[relative] == item["sha256"]
        assert copy["size"] == os.stat(copy["path"]).st_size

    # A vault on a second folder: same layout, re-read copies, verifies on its own.
    vault = tmp_path / "vault"
    report = run_json(cli, "cli-vault.schema.json", "vault", "copy", vault,
                      "--key", "alice", "--root", root)  # fmt: skip
    current = items_by_path(root)
    assert report["destination"] == str(vault.resolve())
    assert report["copied"] == len(current)
    in_vault = {k: v for k, v in sha256sum_tree(vault).items() if not k.startswith(b".custody/")}
    assert in_vault == {name: i.sha256 for name, i in latest_items(root).items()}
    (copy_event,) = report["events"]
    assert ledger_lines(vault) == ledger_lines(root)
    assert report["ledger_records"] == len(ledger_lines(root)) == copy_event + 1
    code, checked = verification(cli, vault)
    assert code == 0 and checked["verified"], errors(checked)
    assert cli("verify", "--root", vault).code == 0

    # The documenter's key is rotated; the successor signs from now on.
    rotated = run_json(cli, "cli-keys-rotate.schema.json",
                       "keys", "rotate", "alice", "--new", "alice-2", "--root", root)  # fmt: skip
    alice = unlock(env, "alice")
    assert rotated["replaces"] == alice.fingerprint and rotated["role"] == "documenter"
    rotation = ledger_records(root)[rotated["record"]]["signed"]
    assert rotation["signer"] == alice.fingerprint
    assert rotation["body"]["replaces"] == alice.fingerprint
    assert rotation["body"]["fingerprint"] == rotated["fingerprint"]
    later = run_json(cli, "cli-event.schema.json", "event", "access", VIDEO,
                     "--key", "alice-2", "--root", root)  # fmt: skip
    assert later["record"]["signed"]["signer"] == rotated["fingerprint"]

    # The custodian revokes the lawyer's key (the lawyer's laptop was lost).
    counsel = unlock(env, "counsel")
    revoked = cli("keys", "revoke", "counsel", "--reason", "laptop lost", "--key", "keeper",
                  "--root", root, "--json")  # fmt: skip
    assert revoked.code == 0, revoked.err
    revocation = revoked.json()["record"]
    assert ledger_records(root)[revocation]["signed"]["body"] == {
        "key": counsel.fingerprint,
        "reason": "laptop lost",
    }
    assert cli("sign", "--key", "keeper", "--root", root).code == 0

    # Nothing touched the originals: not derive, not the copies, not the vault.
    assert snapshot(root / "media") == media_before

    # The genuine ledger verifies (warnings only: self-introduced keys, no timestamps yet).
    code, checked = verification(cli, root)
    assert code == 0 and checked["verified"], errors(checked)
    assert {f["code"] for f in checked["findings"]} <= {"KEY_UNVOUCHED", "TIMESTAMP_PENDING"}
    signers = {s["name"]: s for s in checked["signers"]}
    assert signers["alice"]["retired_at"] == rotated["record"]
    assert signers["counsel"]["revoked_at"] == revocation
    assert signers["alice-2"]["introduced_by"] == alice.fingerprint

    # history: the whole life, in ledger order, however the item is named.
    story = run_json(cli, "cli-history.schema.json", "history", root / VIDEO, "--root", root)
    for spec in (str(video), digest_prefix(video_sha), VIDEO):
        assert run_json(cli, "cli-history.schema.json", "history", spec, "--root", root) == story
    assert (story["item"], story["path"], story["sha256"]) == (video, VIDEO, video_sha)
    seqs = [e["seq"] for e in story["entries"]]
    assert seqs == sorted(set(seqs))
    records = ledger_records(root)
    checkpoints = [
        r["signed"]["seq"]
        for r in records
        if r["signed"]["type"] == "checkpoint" and r["signed"]["body"]["tree_size"] > video
    ]
    assert story["entries"][0]["seq"] == video and story["entries"][0]["kind"] == "catalogued"
    assert [e["seq"] for e in story["entries"] if e["kind"] == "checkpoint"] == checkpoints
    events = events_naming(root, video)
    assert [
        e["seq"] for e in story["entries"] if e["kind"] not in ("catalogued", "checkpoint")
    ] == (events)
    kinds = [e["kind"] for e in story["entries"] if e["seq"] in events]
    assert kinds == ["transfer", "access", "note", "derived", "derived", "copy", "copy", "access"]
    by_seq = {e["seq"]: e for e in story["entries"]}
    assert by_seq[transfer["seq"]]["signer_name"] == "alice (documenter)"
    assert by_seq[access["seq"]]["signer_name"] == "counsel (lawyer)"
    assert by_seq[later["seq"]]["signer_name"] == "alice-2 (documenter)"
    assert by_seq[copy_event]["summary"].startswith(f"copied to {vault.resolve()}")
    assert {
        by_seq[s]["detail"]["output"]["seq"] for s in events if "output" in by_seq[s]["detail"]
    } == (set(derived.values()))
    # The working copy's own history starts with its cataloguing and its derivation.
    clip_story = run_json(cli, "cli-history.schema.json", "history", clip, "--root", root)
    assert [e["kind"] for e in clip_story["entries"] if e["kind"] != "checkpoint"][:2] == [
        "catalogued",
        "derived from",
    ]

    # Now the identity faults, each signed with a real key and appended after the above.
    keeper, alice_2 = unlock(env, "keeper"), unlock(env, "alice-2")
    keyring = Keyring(env / "keys")
    rogue = keyring.generate("rogue", "custodian", PASSPHRASE, format_time(utc_now()))
    stranger = keyring.generate("stranger", "documenter", PASSPHRASE, format_time(utc_now()))
    rogue_key, stranger_key = rogue.unlock(PASSPHRASE), stranger.unlock(PASSPHRASE)
    evidence = EvidenceRoot(root.resolve())
    video_ref = ref(root, VIDEO)
    # The library refuses a key that may no longer sign; a rogue client could still write
    # such records with the format spec alone, and verify is what judges them.
    with pytest.raises(SigningKeyError, match="revoked"):
        event(evidence, counsel, "access", [video], reason="after revocation")
    with pytest.raises(SigningKeyError, match="replaced by a successor"):
        event(evidence, alice, "access", [video], reason="old key after rotation")
    by_revoked = forge(
        root, counsel, "event", EventBody("access", (video_ref,), "after revocation").to_json()
    )
    by_retired = forge(root, alice, "event", EventBody("access", (video_ref,), "old key").to_json())
    with pytest.raises(SigningKeyError, match="custodian"):
        event(evidence, alice_2, "dispose", [video], reason="not hers to decide")
    disposal = forge(root, alice_2, "event", EventBody("dispose", (video_ref,), "x").to_json())
    with pytest.raises(SigningKeyError, match="only the key itself or a custodian"):
        revoke(evidence, alice_2, keeper.fingerprint)
    coup = forge(root, alice_2, "revocation", RevocationBody(keeper.fingerprint).to_json())
    public = rogue_key.public
    rogue_body = KeyBody(public.fingerprint, public.raw, public.name, public.role).to_json()
    vouched = forge(root, alice_2, "key", rogue_body)
    self_made = forge(root, rogue_key, "key", rogue_body)
    unknown = forge(root, stranger_key, "event", EventBody("access", (video_ref,)).to_json())
    code, checked = verification(cli, root)
    assert code == 1 and not checked["verified"]
    assert errors(checked) == {
        ("KEY_REVOKED", by_revoked),
        ("KEY_REVOKED", by_retired),
        ("ROLE_NOT_ALLOWED", disposal),
        ("ROLE_NOT_ALLOWED", coup),
        ("ROLE_NOT_ALLOWED", vouched),
        ("ROLE_NOT_ALLOWED", self_made),
        ("UNKNOWN_KEY", unknown),
    }
    messages = {(f["code"], f["seq"]): f["message"] for f in checked["findings"]}
    assert "revoked at record" in messages[("KEY_REVOKED", by_revoked)]
    assert "retired" in messages[("KEY_REVOKED", by_retired)]
    assert "disposal needs the custodian role" in messages[("ROLE_NOT_ALLOWED", disposal)]
    assert "revoking another person's key" in messages[("ROLE_NOT_ALLOWED", coup)]
    assert "introducing a custodian's key" in messages[("ROLE_NOT_ALLOWED", vouched)]
    assert "by introducing itself" in messages[("ROLE_NOT_ALLOWED", self_made)]
    # Everything the revoked and retired keys signed before stays valid, and the failed
    # coup did not revoke the custodian, whose checkpoint and revocation still stand.
    signed_by = {r["signed"]["seq"]: r["signed"]["signer"] for r in ledger_records(root)}
    earlier = [s for s, who in signed_by.items() if who in (counsel.fingerprint, alice.fingerprint)]
    assert len([s for s in earlier if s < revocation]) >= 5
    flagged = {seq for _, seq in errors(checked)}
    assert flagged.isdisjoint(s for s in earlier if s < revocation)
    assert flagged.isdisjoint(s for s, who in signed_by.items() if who == keeper.fingerprint)


# --- roles, one fault at a time, and what follows from each ---------------------------------


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SigningKey]:
    """Real keys, made once (Argon2id costs ~0.1 s each)."""
    keyring = Keyring(tmp_path_factory.mktemp("people") / "keys")
    made = "2026-11-27T07:02:10.123456Z"
    return {
        name: keyring.generate(name, role, PASSPHRASE, made).unlock(PASSPHRASE)
        for name, role in (
            ("keeper", "custodian"),
            ("alice", "documenter"),
            ("counsel", "lawyer"),
            ("rogue", "custodian"),
            ("deputy", "custodian"),
        )
    }


@pytest.fixture
def office(tmp_path: Path, people: dict[str, SigningKey]) -> Path:
    """A root where the custodian came first and vouched for the documenter and the lawyer;
    the documenter catalogued two real photos."""
    from custody.acquisition.catalogue import catalogue

    root = init_root(tmp_path / "office")
    source = media_source() / "field-dump-01" / "DCIM" / "Camera"
    (root.path / "photos").mkdir()
    for name in sorted(os.listdir(source))[:2]:
        shutil.copy2(source / name, root.path / "photos" / name)
    with open_ledger(root) as ledger, ledger.writer(people["keeper"]) as writer:
        writer.introduce(people["keeper"])
        writer.introduce(people["alice"])
        writer.introduce(people["counsel"])
    catalogue(root, [root.path / "photos"], people["alice"])
    return root.path


def first_photo(root: Path) -> ItemRef:
    return ref(root, min(p for p in items_by_path(root) if p.startswith("photos/")))


def findings(root: Path, *trusted: SigningKey) -> list[tuple[str, int | None]]:
    """Error findings of verifying ``root`` as this test's person, trusting ``trusted`` too."""
    from custody.trust.policy import Anchor

    policy = policy_for()
    extra = tuple(Anchor(k.fingerprint, k.name, "this test") for k in trusted)
    policy = dataclasses.replace(policy, anchors=policy.anchors + extra)
    result = verify_root(EvidenceRoot(root.resolve()), policy=policy)
    validate(result.to_json(), "cli-verify.schema.json")
    return sorted((str(f.code), f.seq) for f in result.errors)


def test_vouched_keys_verify_cleanly(office: Path) -> None:
    result = verify_root(EvidenceRoot(office.resolve()), policy=policy_for())
    assert result.ok, result.errors
    assert {str(f.code) for f in result.findings} == {"TIMESTAMP_PENDING"}  # none unvouched


def test_documenter_may_not_dispose(office: Path, people: dict[str, SigningKey]) -> None:
    """The library refuses; forged anyway, verify flags it and the disposal does not count."""
    photo = first_photo(office)
    before = ledger_lines(office)
    with pytest.raises(SigningKeyError, match="disposal is a custodian's decision"):
        event(EvidenceRoot(office.resolve()), people["alice"], "dispose", [photo.seq], reason="x")
    assert ledger_lines(office) == before
    disposal = forge(
        office, people["alice"], "event", EventBody("dispose", (photo,), "x").to_json()
    )
    assert findings(office) == [("ROLE_NOT_ALLOWED", disposal)]
    os.unlink(office / photo.path)
    assert ("FILE_MISSING", photo.seq) in findings(office)


def test_custodian_disposal_lets_the_file_go(
    office: Path, people: dict[str, SigningKey], tmp_path: Path
) -> None:
    photo = first_photo(office)
    evidence = EvidenceRoot(office.resolve())
    event(evidence, people["keeper"], "dispose", [photo.seq], reason="returned to the family")
    os.unlink(office / photo.path)
    assert findings(office) == []
    result = verify_root(evidence, policy=policy_for())
    assert not [f for f in result.findings if str(f.code).startswith("FILE_")]
    # A later vault leaves the disposed item out and still verifies.
    from custody.handling.vault import vault_copy

    report = vault_copy(evidence, people["keeper"], tmp_path / "vault")
    assert photo.path not in [c.path for c in report.copied]
    assert not (tmp_path / "vault" / photo.path).exists()
    assert verify_root(EvidenceRoot((tmp_path / "vault").resolve()), policy=policy_for()).ok


def test_documenter_may_not_revoke_someone_else(
    office: Path, people: dict[str, SigningKey]
) -> None:
    evidence = EvidenceRoot(office.resolve())
    counsel = people["counsel"]
    with pytest.raises(SigningKeyError, match="only the key itself or a custodian"):
        revoke(evidence, people["alice"], counsel.fingerprint)
    coup = forge(
        office, people["alice"], "revocation", RevocationBody(counsel.fingerprint).to_json()
    )
    after = event(evidence, counsel, "access", [first_photo(office).seq]).seq
    assert findings(office) == [("ROLE_NOT_ALLOWED", coup)]  # the lawyer's key still counts
    assert after > coup


def test_a_key_may_revoke_itself_and_then_signs_no_more(
    office: Path, people: dict[str, SigningKey]
) -> None:
    evidence = EvidenceRoot(office.resolve())
    counsel = people["counsel"]
    earlier = event(evidence, counsel, "access", [first_photo(office).seq]).seq
    revoke(evidence, counsel, counsel.fingerprint, reason="leaving the case")
    with pytest.raises(SigningKeyError, match="revoked"):
        event(evidence, counsel, "access", [first_photo(office).seq])
    after = forge(office, counsel, "event", EventBody("access", (first_photo(office),)).to_json())
    assert findings(office) == [("KEY_REVOKED", after)]
    assert earlier < after


def test_only_a_custodian_introduces_a_custodian(
    office: Path, people: dict[str, SigningKey]
) -> None:
    """A documenter's vouching for a custodian is refused, so that key stays unknown."""
    rogue, evidence = people["rogue"], EvidenceRoot(office.resolve())
    with open_ledger(evidence) as ledger, ledger.writer(people["alice"]) as writer:
        vouched = writer.introduce(rogue).seq
    disposal = forge(
        office, rogue, "event", EventBody("dispose", (first_photo(office),), "x").to_json()
    )
    assert findings(office) == sorted([("ROLE_NOT_ALLOWED", vouched), ("UNKNOWN_KEY", disposal)])
    # A custodian may introduce another custodian, whose disposal then counts.
    with open_ledger(evidence) as ledger, ledger.writer(people["keeper"]) as writer:
        writer.introduce(people["deputy"])
    event(evidence, people["deputy"], "dispose", [first_photo(office).seq], reason="returned")
    assert findings(office) == sorted([("ROLE_NOT_ALLOWED", vouched), ("UNKNOWN_KEY", disposal)])


def test_a_self_appointed_custodian_gains_no_powers(
    office: Path, people: dict[str, SigningKey]
) -> None:
    """Claiming the custodian role by self-introduction, once a custodian exists, is refused
    and leaves the key unknown: its disposals and revocations do not count."""
    rogue, keeper = people["rogue"], people["keeper"]
    evidence = EvidenceRoot(office.resolve())
    photo = first_photo(office)
    with open_ledger(evidence) as ledger, ledger.writer(rogue) as writer:
        claim = writer.introduce(rogue).seq
    disposal = forge(office, rogue, "event", EventBody("dispose", (photo,), "x").to_json())
    coup = forge(office, rogue, "revocation", RevocationBody(keeper.fingerprint).to_json())
    still_custodian = event(evidence, keeper, "access", [photo.seq]).seq
    os.unlink(office / photo.path)
    assert findings(office) == sorted(
        [
            ("ROLE_NOT_ALLOWED", claim),
            ("UNKNOWN_KEY", disposal),
            ("UNKNOWN_KEY", coup),
            ("FILE_MISSING", photo.seq),
        ]
    )
    assert still_custodian > coup


def test_the_first_custodian_may_introduce_itself(
    tmp_path: Path, people: dict[str, SigningKey]
) -> None:
    """With no custodian yet, a key may introduce itself as one (a warning), but it gains no
    authority over the evidence unless the verifier trusts it: its disposal is then an error
    (UNAUTHORISED_SIGNER) and has no effect; anchored, the same ledger verifies."""
    from custody.acquisition.catalogue import catalogue
    from custody.trust.policy import Anchor, TrustPolicy

    root = init_root(tmp_path / "late")
    shutil.copy2(media_source() / "field-dump-01" / "DCIM" / "Camera" / "20160912_100531.jpg",
                 root.path / "photo.jpg")  # fmt: skip
    catalogue(root, [root.path / "photo.jpg"], people["alice"])
    photo = items_by_path(root.path)["photo.jpg"]["seq"]
    disposal = event(root, people["deputy"], "dispose", [photo], reason="returned").seq
    (root.path / "photo.jpg").unlink()
    unanchored = verify_root(root, policy=TrustPolicy())
    assert {(str(f.code), f.seq) for f in unanchored.errors} == {
        ("UNAUTHORISED_SIGNER", disposal),
        ("FILE_MISSING", photo),  # the disposal does not count
    }
    deputy = Anchor(people["deputy"].fingerprint, "deputy", "this test")
    result = verify_root(root, policy=TrustPolicy(anchors=(deputy,)))
    assert result.ok, result.errors
    assert not [f for f in result.findings if str(f.code) == "KEY_UNVOUCHED"]


def test_unknown_key(office: Path) -> None:
    stranger = Keyring(office.parent / "strangers").generate(
        "stranger", "documenter", PASSPHRASE, format_time(utc_now())
    )
    forged = forge(office, stranger.unlock(PASSPHRASE), "event",
                   EventBody("access", (first_photo(office),)).to_json())  # fmt: skip
    assert findings(office) == [("UNKNOWN_KEY", forged)]


# --- the CLI's own refusals, and the key backup ---------------------------------------------


def test_cli_refuses_what_the_roles_forbid(camera: Path, cli: CLI) -> None:
    root = camera
    assert cli("keys", "generate", "--name", "counsel", "--role", "lawyer").code == 0
    assert cli("event", "access", VIDEO, "--key", "counsel", "--root", root).code == 0
    before = ledger_lines(root)
    disposal = cli("event", "dispose", VIDEO, "--reason", "x", "--key", "alice", "--root", root)
    assert disposal.code != 0
    assert "custodian" in one_line_error(disposal.err)
    coup = cli("keys", "revoke", "counsel", "--key", "alice", "--root", root)
    assert coup.code != 0
    assert "only the key itself or a custodian" in one_line_error(coup.err)
    no_reason = cli("event", "dispose", VIDEO, "--key", "alice", "--root", root)
    assert no_reason.code != 0 and "--reason" in one_line_error(no_reason.err)
    nothing = cli("event", "access", "--key", "alice", "--root", root)
    assert nothing.code != 0 and "name at least one item" in one_line_error(nothing.err)
    assert ledger_lines(root) == before


def test_key_backup_restores_a_working_key(
    camera: Path, cli: CLI, env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = camera
    backup = tmp_path / "alice.backup"
    exported = cli("keys", "export", "alice", "--private", "--out", backup, "--json")
    assert exported.code == 0, exported.err
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    fingerprint = exported.json()["fingerprint"]
    # A new machine: an empty keyring.
    monkeypatch.setenv("CUSTODY_HOME", str(tmp_path / "new-home"))
    assert cli("keys", "list", "--json").json() == {"keys": []}
    restored = run_json(cli, "cli-keys-generate.schema.json", "keys", "import", backup)
    assert restored["fingerprint"] == fingerprint and restored["name"] == "alice"
    signed = run_json(cli, "cli-event.schema.json", "event", "access", PHOTO,
                      "--reason", "after restore", "--root", root)  # fmt: skip
    assert signed["record"]["signed"]["signer"] == fingerprint
    code, checked = verification(cli, root)
    assert code == 0, errors(checked)
    # The same key, not a new identity: no new key record was needed.
    assert [r["signed"]["type"] for r in ledger_records(root)].count("key") == 1
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint)


# --- fixed along the way --------------------------------------------------------------------


def test_copies_and_vaults_keep_names_that_are_not_utf8(
    office: Path, people: dict[str, SigningKey], tmp_path: Path
) -> None:
    """Items are copied by their exact name bytes, not by the display path (U+FFFD)."""
    from custody.acquisition.catalogue import catalogue
    from custody.handling.events import copy_event
    from custody.handling.vault import vault_copy

    name = b"photos/bad\xffname.jpg"
    with open(os.fsencode(office) + b"/" + name, "wb") as handle:
        handle.write(b"a file whose name is not UTF-8")
    evidence = EvidenceRoot(office.resolve())
    catalogue(evidence, [office / "photos"], people["alice"])
    item = latest_items(office)[name]
    copied = copy_event(evidence, people["counsel"], [item.seq], tmp_path / "out")
    (copy,) = EventBody.from_json(copied.record.body).copies
    written = os.fsencode((tmp_path / "out").resolve()) + b"/" + name
    assert copy.sha256 == sha256_of(written) == item.sha256
    assert copy.path == str((tmp_path / "out").resolve() / "photos/bad\ufffdname.jpg")
    vault_copy(evidence, people["keeper"], tmp_path / "vault")
    assert os.path.isfile(os.fsencode(tmp_path / "vault") + b"/" + name)
    result = verify_root(EvidenceRoot((tmp_path / "vault").resolve()), policy=policy_for())
    assert result.ok, result.errors


def test_rotating_a_key_that_never_signed_in_this_ledger(
    office: Path, people: dict[str, SigningKey], tmp_path: Path
) -> None:
    """The old key introduces itself before vouching for its successor (a key the verifier
    trusts: a self-introduced key it does not trust may not rotate, see test_trust.py)."""
    from custody.handling.events import rotate

    keyring = Keyring(tmp_path / "keys")
    made = format_time(utc_now())
    old, new = (
        keyring.generate(name, "documenter", PASSPHRASE, made).unlock(PASSPHRASE)
        for name in ("newcomer", "newcomer-2")
    )
    evidence = EvidenceRoot(office.resolve())
    rotation = rotate(evidence, old, new).seq
    photo = first_photo(office).seq
    by_new = event(evidence, new, "access", [photo]).seq
    with pytest.raises(SigningKeyError, match="replaced by a successor"):
        event(evidence, old, "access", [photo])
    by_old = forge(office, old, "event", EventBody("access", (first_photo(office),)).to_json())
    assert findings(office, old) == [("KEY_REVOKED", by_old)]
    assert ("UNAUTHORISED_SIGNER", rotation) in findings(office)
    from custody.trust.policy import Anchor, TrustPolicy

    result = verify_root(evidence, policy=TrustPolicy(anchors=(Anchor(old.fingerprint, None, ""),)))
    retired = {s["name"]: s for s in result.to_json()["signers"]}["newcomer"]["retired_at"]
    assert retired == rotation < by_new
