"""Where the format spec and the code disagreed (issue 15, points 18-22), each reproduced.

18. a later checkpoint with a *smaller* ``tree_size`` (down to 0, with the empty tree's
    root) must be NOT_APPEND_ONLY;
19. a record ``time`` without microseconds, an ``mtime`` without nanoseconds, and members
    that docs/events.md allows only on other actions (``to`` on ``access``) must be
    RECORD_MALFORMED - and the spec's table is the code's table;
20. a record that is not authentic has no effect - in a bundle too: a forged item record
    must not make a swapped payload file pass the file check;
21. exports carry every selected file or refuse loudly: two names that are not UTF-8 but
    display the same, names that fold to one another, and line separators (U+2028 and
    the others ``str.splitlines`` splits at) in names;
22. ``custody keys introduce`` as the first record of an empty ledger writes the vouching
    key's own record first.

Forgeries are made from the bytes with the documenter's real key (a validly signed lie)
or a key nobody introduced; every verdict comes from the real CLI as a process or from
``verify_root``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import REPO
from custody.root import EvidenceRoot
from custody.trust.policy import policy_for
from custody.verify.roots import verify_root
from review_case import (
    Case,
    first_of,
    ledger_lines,
    make_case,
    mth,
    rebag,
    resign,
    signed_of,
    write_ledger,
    zip_folder,
)
from test_crash import custody_env, one_line, run


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return make_case(tmp_path_factory.mktemp("review-strictness"), extreme=False)


def copy_root(case: Case, dest: Path) -> Path:
    shutil.copytree(case.root, dest, symlinks=True, ignore=shutil.ignore_patterns("cache"))
    return dest


def verify_json(case: Case, root: Path, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    done = run(["verify", root, "--json", *extra], case.env)
    assert done.returncode in (0, 1, 10), done.stderr
    assert "internal error" not in done.stderr
    return done.returncode, json.loads(done.stdout)["findings"]


def errors(found: list[dict[str, Any]]) -> set[tuple[str, int | None]]:
    return {(f["code"], f["seq"]) for f in found if f["severity"] == "error"}


def append_signed(case: Case, lines: list[bytes], kind: str, body: dict[str, Any]) -> list[bytes]:
    """One more record, validly signed by the documenter and chained to the last line."""
    last = signed_of(lines[-1])
    signed = {
        "body": body,
        "prev": hashlib.sha256(lines[-1]).hexdigest(),
        "seq": len(lines),
        "signer": last["signer"],
        "time": "2026-12-05T10:00:00.000000Z",
        "type": kind,
        "v": 1,
    }
    return [*lines, resign(signed, case.key().sign)]


# --- 18. a later checkpoint may not be smaller --------------------------------------------------


@pytest.mark.parametrize("size", [0, 2, "previous - 1"])
def test_later_checkpoint_with_a_smaller_tree_is_not_append_only(
    case: Case, tmp_path: Path, size: int | str
) -> None:
    root = copy_root(case, tmp_path / "evidence")
    lines = ledger_lines(root)
    sizes = [
        signed_of(x)["body"]["tree_size"] for x in lines if signed_of(x)["type"] == "checkpoint"
    ]
    tree_size = sizes[-1] - 1 if size == "previous - 1" else int(size)
    assert tree_size < sizes[-1]
    body = {"root": mth(lines[:tree_size]).hex(), "tree_size": tree_size}
    lines = append_signed(case, lines, "checkpoint", body)
    write_ledger(root, lines)
    code, found = verify_json(case, root)
    assert code == 1
    assert errors(found) == {("NOT_APPEND_ONLY", len(lines) - 1)}, found
    # The root is right for that size: this is not a mismatch, it is a rollback.
    assert all(f["code"] != "CHECKPOINT_MISMATCH" for f in found)


def test_later_checkpoint_of_the_same_size_is_accepted(case: Case, tmp_path: Path) -> None:
    root = copy_root(case, tmp_path / "evidence")
    lines = ledger_lines(root)
    previous = [signed_of(x) for x in lines if signed_of(x)["type"] == "checkpoint"][-1]
    lines = append_signed(case, lines, "checkpoint", dict(previous["body"]))
    write_ledger(root, lines)
    code, found = verify_json(case, root)
    assert code == 0 and not errors(found), found


# --- 19. time precision and members per action, as the spec says ------------------------------


def rewrite(case: Case, root: Path, number: int, change: Any) -> list[bytes]:
    lines = ledger_lines(root)
    signed = signed_of(lines[number])
    change(signed)
    lines[number] = resign(signed, case.key().sign)
    # Later records chain to the new bytes, re-signed too: only the change is left to find.
    for later in range(number + 1, len(lines)):
        following = signed_of(lines[later])
        following["prev"] = hashlib.sha256(lines[later - 1]).hexdigest()
        if following["type"] == "checkpoint":
            size = following["body"]["tree_size"]
            following["body"]["root"] = mth(lines[:size]).hex()
        lines[later] = resign(following, case.key().sign)
    write_ledger(root, lines)
    return lines


BAD_RECORD_TIMES = [
    "2026-12-05T10:00:00Z",  # no fraction
    "2026-12-05T10:00:00.123Z",  # milliseconds
    "2026-12-05T10:00:00.123456789Z",  # nanoseconds
    "2026-12-05T10:00:00.123456+00:00",  # an offset, not Z
    "2026-12-05t10:00:00.123456z",  # lower case
]


@pytest.mark.parametrize("time", BAD_RECORD_TIMES)
def test_record_time_must_have_microseconds_and_z(case: Case, tmp_path: Path, time: str) -> None:
    root = copy_root(case, tmp_path / "evidence")
    lines = ledger_lines(root)
    number = first_of(lines, "item")

    def change(signed: dict[str, Any]) -> None:
        signed["time"] = time

    rewrite(case, root, number, change)
    result = verify_root(EvidenceRoot(root), policy=policy_for())
    malformed = [f for f in result.errors if f.code == "RECORD_MALFORMED"]
    assert [f.seq for f in malformed] == [number], [(f.code, f.seq) for f in result.errors]
    assert "fractional seconds" in malformed[0].message or "UTC" in malformed[0].message


BAD_FILE_TIMES = [
    "2024-03-12T10:15:00Z",
    "2024-03-12T10:15:00.000000Z",
    "2024-03-12T10:15:00.0000000000Z",
    "2024-03-12T10:15:00.000000000+00:00",
]


@pytest.mark.parametrize("mtime", BAD_FILE_TIMES)
def test_item_mtime_must_have_nanoseconds_and_z(case: Case, tmp_path: Path, mtime: str) -> None:
    root = copy_root(case, tmp_path / "evidence")
    number = first_of(ledger_lines(root), "item")

    def change(signed: dict[str, Any]) -> None:
        signed["body"]["mtime"] = mtime

    rewrite(case, root, number, change)
    result = verify_root(EvidenceRoot(root), policy=policy_for())
    assert ("RECORD_MALFORMED", number) in {(f.code, f.seq) for f in result.errors}


@pytest.mark.parametrize("gen_time", ["2026-12-05T10:00:00Z", "2026-12-05T10:00:00.000000+01:00"])
def test_timestamp_gen_time_must_have_microseconds_and_z(
    case: Case, tmp_path: Path, gen_time: str
) -> None:
    root = copy_root(case, tmp_path / "evidence")
    number = first_of(ledger_lines(root), "timestamp")

    def change(signed: dict[str, Any]) -> None:
        signed["body"]["gen_time"] = gen_time

    rewrite(case, root, number, change)
    result = verify_root(EvidenceRoot(root), policy=policy_for())
    assert ("RECORD_MALFORMED", number) in {(f.code, f.seq) for f in result.errors}


def item_ref(lines: list[bytes]) -> dict[str, Any]:
    number = first_of(lines, "item")
    body = signed_of(lines[number])["body"]
    return {"path": body["path"], "seq": number, "sha256": body["digests"]["sha256"]}


def copy_ref() -> dict[str, Any]:
    return {"path": "/elsewhere/x.jpg", "sha256": "ab" * 32, "size": 1}


# Members docs/events.md allows only on other actions, on an action that passes otherwise.
OUT_OF_PLACE = [
    ("access", "to", "Mallory"),
    ("note", "to", "Mallory"),
    ("transfer", "source", "somewhere"),
    ("access", "destination", "/tmp/x"),
    ("access", "copies", "COPY"),
    ("access", "output", "ITEM"),
    ("transfer", "text", "words"),
    ("access", "fields", {"language": "ar"}),
    ("receive", "text", "words"),
    ("dispose", "source", "somewhere"),
]


@pytest.mark.parametrize(("action", "member", "value"), OUT_OF_PLACE)
def test_event_member_for_another_action_is_malformed(
    case: Case, tmp_path: Path, action: str, member: str, value: Any
) -> None:
    root = copy_root(case, tmp_path / "evidence")
    lines = ledger_lines(root)
    ref = item_ref(lines)
    body: dict[str, Any] = {"action": action, "items": [ref], "reason": "a test"}
    if action == "transfer":
        body["to"] = "Bob"
    body[member] = (
        {"COPY": [copy_ref()], "ITEM": ref}.get(value, value) if isinstance(value, str) else value
    )
    lines = append_signed(case, lines, "event", body)
    write_ledger(root, lines)
    code, found = verify_json(case, root, "--ledger-only")
    assert code == 1
    malformed = [f for f in found if f["code"] == "RECORD_MALFORMED"]
    assert [f["seq"] for f in malformed] == [len(lines) - 1], found
    assert member in malformed[0]["message"]


def test_events_md_member_table_is_the_code_table() -> None:
    """docs/events.md §1.1 names, for each member, the actions it may appear on."""
    from custody.ledger.bodies import ACTIONS, EVENT_MEMBERS

    text = (REPO / "docs" / "events.md").read_text()
    table = text[text.index("### 1.1 The body") : text.index("An **item reference**")]
    documented: dict[str, set[str]] = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`") or cells[0] == "`action`":
            continue
        member = cells[0].strip("`")
        if cells[2].startswith("every action"):
            documented[member] = set(ACTIONS)
        else:
            documented[member] = set(re.findall(r"`([a-z]+)`", cells[2]))
    common = {"items", "reason"}  # besides ``action``, on every action
    allowed = {m: {a for a in ACTIONS if m in common | EVENT_MEMBERS[a]} for m in documented}
    assert set(documented) == common | set().union(*EVENT_MEMBERS.values())
    assert documented == allowed


# --- 20. a forged record has no effect, in a bundle too -----------------------------------------


@pytest.mark.parametrize("forger", ["unsigned edit", "unknown key"])
def test_bundle_forged_item_does_not_make_a_swapped_file_pass(
    case: Case, tmp_path: Path, forger: str
) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(case.bundle, folder)
    target = "media/note.txt"
    swapped = b"another text, planted\n"
    (folder / "data" / target).write_bytes(swapped)
    records = folder / "custody" / "records.jsonl"
    lines = records.read_bytes().split(b"\n")[:-1]
    number = next(n for n, x in enumerate(lines) if signed_of(x)["body"].get("path") == target)
    signed = signed_of(lines[number])
    signed["body"]["size"] = len(swapped)
    signed["body"]["digests"] = {"sha256": hashlib.sha256(swapped).hexdigest()}
    if forger == "unknown key":
        intruder = Ed25519PrivateKey.generate()
        lines[number] = resign(signed, intruder.sign)
    else:
        kept = base64.b64decode(json.loads(lines[number])["sig"])  # the old signature, kept
        lines[number] = resign(signed, lambda _: kept)
    records.write_bytes(b"".join(x + b"\n" for x in lines))
    index = json.loads((folder / "custody" / "index.json").read_bytes())
    for entry in index["items"]:
        if entry["path"] == target:
            entry["size"] = len(swapped)
            entry["digests"] = dict(signed["body"]["digests"])
    (folder / "custody" / "index.json").write_text(json.dumps(index, ensure_ascii=False))
    rebag(folder)
    for subject in (folder, zip_folder(folder, tmp_path / "bundle.zip")):
        done = run(["verify", subject, "--json"], case.env)
        assert done.returncode == 1, done.stderr
        found = json.loads(done.stdout)["findings"]
        file_codes = {f["code"] for f in found if f["item"] == f"data/{target}"}
        # The swapped file is described by no authentic record: never "matches" the forgery.
        assert file_codes & {"FILE_UNEXPECTED", "FILE_MODIFIED"}, found
        checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
        assert checks["files"]["passed"] is False


# --- 21. exports carry every selected file or refuse loudly ------------------------------------


def names_root(case: Case, tmp_path: Path, names: list[bytes]) -> tuple[Path, dict[str, str]]:
    env = custody_env(case.home, tmp_path)
    root = tmp_path / "evidence"
    assert run(["init", root], env).returncode == 0
    folder = os.fsencode(root / "names")
    os.mkdir(folder)
    for number, name in enumerate(names):
        with open(folder + b"/" + name, "wb") as handle:
            handle.write(b"file %d\n" % number)
    done = run(["catalogue", root / "names", "--root", root], env)
    assert done.returncode == 0, done.stderr
    return root, env


@pytest.mark.parametrize(
    "names",
    [
        [b"a\xff.txt", b"a\xfe.txt"],  # both display as "a\ufffd.txt"
        [b"a\xff.txt", "a\ufffd.txt".encode()],  # the display form is itself a name
        [b"Report.txt", b"report.txt"],  # one file on a case-insensitive disk
        ["caf\u00e9.txt".encode(), "cafe\u0301.txt".encode()],  # NFC and NFD
    ],
    ids=["two-not-utf8", "not-utf8-and-its-display", "case", "nfc-nfd"],
)
@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
def test_export_of_names_that_collide_refuses_loudly(
    case: Case, tmp_path: Path, names: list[bytes], zipped: bool
) -> None:
    root, env = names_root(case, tmp_path, names)
    out = tmp_path / "bundle"
    argv = ["export", "--all", "--out", out, "--root", root, *(["--zip"] if zipped else [])]
    done = run(argv, env)
    if done.returncode == 0:
        # Carried: then every file is in the bundle and the bundle verifies.
        subject = out.with_suffix(".zip") if zipped else out
        checked = run(["verify", subject, "--json"], env)
        assert checked.returncode == 0, checked.stdout[-3000:]
        index = json.loads((out / "custody" / "index.json").read_bytes())
        assert len(index["items"]) == len(names)
        assert sum(1 for p in (out / "data").rglob("*") if p.is_file()) == len(names)
        return
    line = one_line(done.stderr)
    assert done.returncode == 2, line
    assert re.search(r"records? \d+ and \d+", line), line
    assert not out.exists() or not any(out.iterdir())
    assert not out.with_suffix(".zip").exists()


SEPARATORS = "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"  # what str.splitlines splits at, but "\n\r"


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
def test_export_of_names_with_line_separators_verifies_and_imports(
    case: Case, tmp_path: Path, zipped: bool
) -> None:
    names = [f"line{c}sep-{ord(c):04x}.txt".encode() for c in SEPARATORS]
    root, env = names_root(case, tmp_path, [*names, b"plain.txt"])
    out = tmp_path / "bundle"
    argv = ["export", "--all", "--out", out, "--root", root, *(["--zip"] if zipped else [])]
    done = run(argv, env)
    assert done.returncode == 0, done.stderr
    subject = out.with_suffix(".zip") if zipped else out
    checked = run(["verify", subject, "--json"], env)
    assert checked.returncode == 0, checked.stdout[-3000:]
    lawyer = tmp_path / "lawyer"
    assert run(["init", lawyer], env).returncode == 0
    imported = run(["import", subject, "--root", lawyer, "--into", "in"], env)
    assert imported.returncode == 0, imported.stderr
    got = {n for n in os.listdir(os.fsencode(lawyer / "in" / "names"))}
    assert got == {*names, b"plain.txt"}


# --- 22. keys introduce on an empty ledger ----------------------------------------------------


def test_keys_introduce_as_the_first_record_writes_the_vouching_key_first(
    case: Case, tmp_path: Path
) -> None:
    env = custody_env(case.home, tmp_path)
    root = tmp_path / "evidence"
    assert run(["init", root], env).returncode == 0
    other = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization

    pem = tmp_path / "bob.pem"
    pem.write_bytes(
        other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    done = run(
        [
            "keys",
            "introduce",
            pem,
            "--name",
            "bob",
            "--role",
            "documenter",
            "--root",
            root,
            "--json",
        ],
        env,
    )
    assert done.returncode == 0, done.stderr
    lines = ledger_lines(root)
    alice = signed_of(lines[0])
    assert alice["type"] == "key" and alice["body"]["fingerprint"] == alice["signer"]
    bob = signed_of(lines[1])
    assert bob["type"] == "key" and bob["signer"] == alice["signer"]
    assert json.loads(done.stdout)["record"] == 1
    checked = run(["verify", root, "--ledger-only", "--json"], env)
    assert checked.returncode == 0, checked.stdout
    found = json.loads(checked.stdout)["findings"]
    assert {f["code"] for f in found} <= {"NO_CHECKPOINT", "TIMESTAMP_PENDING"}, found
