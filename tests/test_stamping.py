"""Trusted timestamps in the ledger (custody.timestamps.stamping, `custody timestamp`, verify).

Everything runs against REAL timestamp authorities on loopback (tests/tsa.py: OpenSSL's
`ts -reply` behind an HTTP server, one misbehaviour per mode), real media copied from the
corpus, the real CLI, and checks facts with independent tools: `openssl ts -verify` /
`-text`, `sed | tr | sha256sum`, `exiftool`, `hashlib` and `json` over the ledger bytes.

Every evidence root here has a config naming loopback TSAs only (the public defaults
would fail with DNS errors on a machine without internet, slowly).

Cost control: one catalogued copy of the media and one unlocked key are made per module
and copied into each test (Argon2id and exiftool are the slow parts); one pair of
well-behaved TSAs and one stamped copy are shared by the verification tests, each of which
works on its own copy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import tomli_w
from tests.tsa import OPENSSL, POLICY, TSA, make_pki, openssl_ok, running_tsa

from conftest import PASSPHRASE, SCHEMAS, Result, copy_media, media_source, validate
from custody.acquisition.catalogue import Descriptive, catalogue
from custody.clock import format_time, parse_time, utc_now
from custody.keys.keyring import Keyring, SigningKey
from custody.ledger.backends import open_ledger
from custody.root import EvidenceRoot, init_root
from custody.timestamps import rfc3161 as timestamps
from custody.timestamps.stamping import parse_capture_time, stamp

CLI = Callable[..., Result]
SCHEMA = "cli-timestamp.schema.json"
PENDING_EXIT = 7
A_JPEG = Path("field-dump-01/DCIM/Camera/IMG_20110506_095948.jpg")  # in corpus and samples


# --- evidence roots -----------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    root: Path
    keys: Path
    signer: SigningKey


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """A catalogued copy of the media and the key that signed it, made once."""
    base = tmp_path_factory.mktemp("stamping-template")
    keyring = Keyring(base / "home" / "keys")
    key_file = keyring.generate("alice", "documenter", PASSPHRASE, format_time(utc_now()))
    signer = key_file.unlock(PASSPHRASE)
    root = init_root(base / "evidence")
    copy_media(media_source(), root.path / "media")
    report = catalogue(
        root, [root.path / "media"], signer, descriptive=Descriptive(collector="Alice")
    )
    assert not report.skipped and report.checkpoint is not None
    return Template(root.path, keyring.directory, signer)


def clone(source: Path, env: Path, keys: Path, dest: Path) -> Path:
    """Copy an evidence root (mtimes kept) and the keyring into this test's own places."""
    if not (env / "keys").exists():
        shutil.copytree(keys, env / "keys")
    shutil.copytree(source, dest, symlinks=True)
    return dest


@pytest.fixture
def root(template: Template, env: Path, tmp_path: Path) -> Path:
    """This test's own catalogued evidence root (ends with an unstamped checkpoint)."""
    return clone(template.root, env, template.keys, tmp_path / "evidence")


@pytest.fixture
def signer(template: Template) -> SigningKey:
    return template.signer


def configure(
    root: Path,
    urls: Sequence[str],
    *,
    min_success: int = 1,
    timeout: float = 5.0,
    roots: Sequence[Path] = (),
) -> None:
    """Point the root's config at these TSAs only (never the public defaults)."""
    path = root / ".custody" / "config.toml"
    document = tomllib.loads(path.read_text())
    document["timestamps"] = {
        "tsa": list(urls),
        "min_success": min_success,
        "timeout": timeout,
        "roots": [str(r) for r in roots],
    }
    path.write_text(tomli_w.dumps(document))


# --- reading the ledger from the outside ----------------------------------------------------


def ledger_bytes(root: Path) -> bytes:
    return (root / ".custody" / "ledger.jsonl").read_bytes()


def lines(root: Path) -> list[bytes]:
    data = ledger_bytes(root)
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def signed(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line)["signed"] for line in lines(root)]


def of_type(root: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in signed(root) if r["type"] == kind]


def stored_tokens(root: Path) -> set[str]:
    """Token files at the top of .custody/timestamps/ (refused ones live in refused/)."""
    return {p.name for p in (root / ".custody" / "timestamps").glob("*.tsr")}


def refused_tokens(root: Path) -> list[Path]:
    return sorted((root / ".custody" / "timestamps" / "refused").glob("*"))


def line_digest_with_shell_tools(root: Path, seq: int) -> str:
    """SHA-256 of record ``seq``'s line, as docs/timestamps-expert.md tells an examiner."""
    script = f"sed -n '{seq + 1}p' .custody/ledger.jsonl | tr -d '\\n' | sha256sum"
    out = subprocess.run(
        ["sh", "-c", script], cwd=root, capture_output=True, text=True, check=True, timeout=30
    ).stdout
    digest = out.split()[0]
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    return digest


def openssl_text(token: Path) -> dict[str, str]:
    """`openssl ts -reply -text` fields of a stored response."""
    out = subprocess.run(
        [OPENSSL, "ts", "-reply", "-in", str(token), "-text"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    fields = {}
    for line in out.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name in (
            "Status",
            "Policy OID",
            "Hash Algorithm",
            "Serial number",
            "Time stamp",
            "Nonce",
            "TSA",
        ):
            fields[name] = value.strip()
    # The imprint is printed as a hex dump under "Message data:".
    dump = out.split("Message data:")[1].split("Serial number:")[0]
    fields["imprint"] = "".join(
        "".join(row.split(" - ")[1].split("  ")[0].replace("-", " ").split())
        for row in dump.strip().splitlines()
    ).lower()
    return fields


# --- TSAs -------------------------------------------------------------------------------------


@pytest.fixture
def tsas(tmp_path: Path) -> Iterator[Callable[..., TSA]]:
    """Start loopback TSAs for this test; all are stopped at its end."""
    with contextlib.ExitStack() as stack:

        def start(mode: str = "ok", include_chain: bool = True, name: str = "Test TSA") -> TSA:
            return stack.enter_context(running_tsa(tmp_path, mode, include_chain, name=name))

        yield start


def closed_url() -> str:
    """A loopback URL where nothing listens (connection refused, at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"


def revive(tsa: TSA, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start a stopped TSA again on its old port, so its configured URL works again."""
    port = urlsplit(tsa.url).port
    original = http.server.ThreadingHTTPServer

    class SamePort(original):  # type: ignore[misc, valid-type]
        def __init__(self, address: tuple[str, int], handler: Any) -> None:
            super().__init__((address[0], port), handler)

    old_url = tsa.url
    tsa._stopping.clear()
    with monkeypatch.context() as patch:
        patch.setattr(http.server, "ThreadingHTTPServer", SamePort)
        tsa.start()
    assert tsa.url == old_url


def trust_args(*tsa_list: TSA) -> list[str | Path]:
    args: list[str | Path] = []
    for tsa in tsa_list:
        args += ["--tsa-root", tsa.root_pem, "--tsa-root", tsa.chain_pem]
    return args


def record_an_access(root: Path, signer: SigningKey) -> int:
    """Counsel viewed an item: a record after the last checkpoint (events add none)."""
    from custody.handling.events import event

    item = of_type(root, "item")[0]["seq"]
    return event(EvidenceRoot(root), signer, "access", [item], reason="viewed by counsel").seq


def findings(document: dict[str, Any], *codes: str) -> list[dict[str, Any]]:
    return [f for f in document["findings"] if f["code"] in codes]


TIMESTAMP_CODES = (
    "TIMESTAMP_INVALID",
    "TIMESTAMP_UNTRUSTED",
    "TIMESTAMP_MISMATCH",
    "TIMESTAMP_PENDING",
    "CAPTURE_AFTER_TIMESTAMP",
    "CATALOGUED_AFTER_TIMESTAMP",
    "CATALOGUE_TIME_FAR",
)


def verify_json(cli: CLI, root: Path, *args: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli("verify", "--root", root, "--json", *args)
    document = result.json()
    validate(document, "cli-verify.schema.json")
    return result.code, document


# === the happy path =============================================================================


def test_two_tsas_stamp_the_checkpoint_and_openssl_agrees(
    catalogued: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    full = tsas(include_chain=True, name="Alpha TSA")  # sends intermediate and root
    bare = tsas(include_chain=False, name="Beta TSA")  # sends only its own certificate
    configure(catalogued, [full.url, bare.url], min_success=2)
    before = lines(catalogued)
    checkpoint = json.loads(before[-1])["signed"]
    assert checkpoint["type"] == "checkpoint"  # catalogue ends with one
    seq = checkpoint["seq"]

    result = cli("timestamp", "--root", catalogued, "--json")
    assert result.code == 0, result.out + result.err
    report = result.json()
    validate(report, SCHEMA)
    assert report["stamped"] is True
    assert report["min_success"] == 2
    assert report["new_checkpoint"] is None  # nothing was added since the catalogue's
    [entry] = report["checkpoints"]
    assert (entry["checkpoint"], entry["tree_size"], entry["tokens"], entry["pending"]) == (
        seq,
        checkpoint["body"]["tree_size"],
        2,
        False,
    )

    # The ledger grew by exactly two timestamp records, appended after the old bytes.
    after = lines(catalogued)
    assert after[: len(before)] == before
    for line in after[len(before) :]:
        validate(json.loads(line), "record.schema.json")
    new = [json.loads(line)["signed"] for line in after[len(before) :]]
    assert [r["type"] for r in new] == ["timestamp", "timestamp"]
    assert {r["body"]["tsa"] for r in new} == {full.url, bare.url}
    outcomes = {o["tsa"]: o for o in entry["outcomes"]}
    assert all(o["ok"] for o in outcomes.values())

    # The imprint is SHA-256 of the checkpoint line, recomputed with standard tools.
    digest = line_digest_with_shell_tools(catalogued, seq)
    assert digest == hashlib.sha256(before[seq]).hexdigest()
    for tsa in (full, bare):
        assert len(tsa.queries) == 1 and bytes.fromhex(digest) in tsa.queries[0]

    timestamps_dir = catalogued / ".custody" / "timestamps"
    for tsa, record in (
        (t, next(r for r in new if r["body"]["tsa"] == t.url)) for t in (full, bare)
    ):
        body = record["body"]
        assert outcomes[tsa.url]["record"] == record["seq"]
        assert outcomes[tsa.url]["gen_time"] == body["gen_time"]
        assert body["checkpoint"] == seq and body["imprint"] == digest
        assert set(body) >= {"gen_time", "serial", "token_sha256", "token_file", "nonce"}
        token = catalogued / ".custody" / body["token_file"]
        assert token.parent == timestamps_dir and token.suffix == ".tsr"
        assert hashlib.sha256(token.read_bytes()).hexdigest() == body["token_sha256"]

        # What OpenSSL reads in the stored bytes is what the record says.
        text = openssl_text(token)
        assert text["Status"] == "Granted."
        assert text["Hash Algorithm"] == "sha256"
        assert text["imprint"] == digest
        assert int(text["Serial number"], 16) == int(body["serial"], 16)
        assert int(text["Nonce"], 16) == int(body["nonce"], 16)
        assert text["Policy OID"] == POLICY == body["policy"]
        gen_time = parse_time(body["gen_time"])
        openssl_time = dt.datetime.strptime(text["Time stamp"], "%b %d %H:%M:%S %Y %Z")
        assert openssl_time.replace(tzinfo=dt.UTC) == gen_time
        assert abs(gen_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
        name = "Alpha TSA" if tsa is full else "Beta TSA"
        assert f"CN={name}" in body["tsa_name"] and f"CN={name}" in text["TSA"]

        # Every stored token passes `openssl ts -verify` at its own genTime.
        argv = timestamps.openssl_verify_command(
            token=token,
            digest=digest,
            ca_file=tsa.root_pem,
            untrusted=tsa.chain_pem,
            at_time=gen_time,
        )
        ok, output = openssl_ok(argv)
        assert ok, f"{' '.join(argv)}\n{output}"
        # ... and OpenSSL is really checking: another digest fails.
        other = timestamps.openssl_verify_command(
            token=token,
            digest=hashlib.sha256(before[seq - 1]).hexdigest(),
            ca_file=tsa.root_pem,
            untrusted=tsa.chain_pem,
            at_time=gen_time,
        )
        assert not openssl_ok(other)[0]

    code, document = verify_json(cli, catalogued, *trust_args(full, bare))
    assert code == 0, document["findings"]
    assert findings(document, *TIMESTAMP_CODES) == []
    assert document["verified"] is True
    assert sorted(
        (t["tsa"], t["checkpoint"], t["trust"]) for t in document["timestamps"]
    ) == sorted([(full.url, seq, "roots"), (bare.url, seq, "roots")])
    [check] = [c for c in document["checks"] if c["name"] == "timestamps"]
    assert check["passed"] and check["covered"] == 2


def test_text_output_names_each_tsa_and_the_result(
    root: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    tsa = tsas()
    configure(root, [tsa.url])
    result = cli("timestamp", "--root", root)
    assert result.code == 0, result.err
    seq = of_type(root, "checkpoint")[-1]["seq"]
    assert f"checkpoint {seq}: stamped by {tsa.url}" in result.out
    assert "Stamped: 1 token(s) over 1 checkpoint(s)." in result.out


# === policy: pending, offline, coming back ======================================================


def test_min_success_two_with_one_tsa_down_stays_pending(
    root: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    up = tsas()
    down = closed_url()
    configure(root, [up.url, down], min_success=2)
    seq = of_type(root, "checkpoint")[-1]["seq"]
    size_before = len(lines(root))

    result = cli("timestamp", "--root", root)
    assert result.code == PENDING_EXIT, result.out + result.err
    assert f"checkpoint {seq}: stamped by {up.url}" in result.out
    # A failing authority is one line, naming the checkpoints it failed for (issue 17).
    assert f"failed {down}: " in result.out and f"(checkpoint(s) {seq})" in result.out
    assert "connection refused" in result.out
    assert "PENDING" in result.out and f"checkpoint(s) {seq} " in result.out
    assert "2 token(s)" in result.out and "custody timestamp" in result.out

    # The one token that did come is kept; the checkpoint is still pending.
    [record] = of_type(root, "timestamp")
    assert record["body"]["tsa"] == up.url and len(lines(root)) == size_before + 1

    # Another run asks only the TSA that has not stamped yet.
    again = cli("timestamp", "--root", root, "--json")
    assert again.code == PENDING_EXIT
    report = again.json()
    validate(report, SCHEMA)
    assert report["stamped"] is False
    [entry] = report["checkpoints"]
    assert entry["tokens"] == 1 and entry["pending"] is True
    assert [o["tsa"] for o in entry["outcomes"]] == [down]
    assert len(up.queries) == 1
    assert len(lines(root)) == size_before + 1


def test_offline_then_back_online(
    root: Path,
    cli: CLI,
    signer: SigningKey,
    tsas: Callable[..., TSA],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = tsas(), tsas(include_chain=False)
    configure(root, [first.url, second.url], min_success=2)
    first.stop()
    second.stop()
    catalogue_checkpoint = of_type(root, "checkpoint")[-1]["seq"]

    # All TSAs down and nothing new: exit 7, the ledger is byte for byte unchanged.
    before = ledger_bytes(root)
    started = time.monotonic()
    result = cli("timestamp", "--root", root)
    assert result.code == PENDING_EXIT
    assert time.monotonic() - started < 10
    assert "PENDING" in result.out and str(catalogue_checkpoint) in result.out
    assert ledger_bytes(root) == before
    assert stored_tokens(root) == set()

    # Records added since the checkpoint: the run makes a checkpoint, and nothing else.
    event_record = record_an_access(root, signer)
    before = lines(root)
    result = cli("timestamp", "--root", root, "--json")
    assert result.code == PENDING_EXIT
    report = result.json()
    validate(report, SCHEMA)
    new_checkpoint = event_record + 1
    assert report["new_checkpoint"] == new_checkpoint
    assert [c["checkpoint"] for c in report["checkpoints"]] == [
        catalogue_checkpoint,
        new_checkpoint,
    ]
    assert all(c["pending"] and c["tokens"] == 0 for c in report["checkpoints"])
    after = lines(root)
    assert after[:-1] == before
    assert json.loads(after[-1])["signed"]["type"] == "checkpoint"
    assert json.loads(after[-1])["signed"]["body"]["tree_size"] == new_checkpoint

    # The TSAs come back: a later run stamps every pending checkpoint from both.
    revive(first, monkeypatch)
    revive(second, monkeypatch)
    result = cli("timestamp", "--root", root, "--json")
    assert result.code == 0, result.out
    report = result.json()
    validate(report, SCHEMA)
    assert report["stamped"] and report["new_checkpoint"] is None
    assert [(c["checkpoint"], c["tokens"]) for c in report["checkpoints"]] == [
        (catalogue_checkpoint, 2),
        (new_checkpoint, 2),
    ]
    stamps = of_type(root, "timestamp")
    assert sorted((r["body"]["checkpoint"], r["body"]["tsa"]) for r in stamps) == sorted(
        (c, t.url) for c in (catalogue_checkpoint, new_checkpoint) for t in (first, second)
    )
    assert len(stored_tokens(root)) == 4

    # Nothing new: a second run stamps nothing, makes no checkpoint, asks no TSA.
    before = ledger_bytes(root)
    queries = len(first.queries) + len(second.queries)
    result = cli("timestamp", "--root", root, "--json")
    assert result.code == 0
    report = result.json()
    validate(report, SCHEMA)
    assert report == {
        "stamped": True,
        "min_success": 2,
        "new_checkpoint": None,
        "checkpoints": [],
    }
    assert ledger_bytes(root) == before
    assert len(first.queries) + len(second.queries) == queries
    text = cli("timestamp", "--root", root)
    assert text.code == 0 and "Every checkpoint already has its timestamps." in text.out
    assert ledger_bytes(root) == before

    code, document = verify_json(cli, root, *trust_args(first, second))
    assert code == 0, document["findings"]
    assert findings(document, *TIMESTAMP_CODES) == []
    assert len(document["timestamps"]) == 4


# === rejections: each refused for its reason, nothing recorded, the checkpoint pending =========

# mode -> (regular expression the outcome's reason must match, with <DIGEST> the checkpoint
# line's SHA-256 and <URL> the TSA's; whether the response was kept in refused/)
REJECTIONS = {
    "wrong_imprint": (
        r"response refused \(TIMESTAMP_MISMATCH\): imprint: the token stamps [0-9a-f]{64}, "
        r"not <DIGEST>$",
        True,
    ),
    "wrong_nonce": (
        r"response refused \(TIMESTAMP_INVALID\): nonce: nonce 0x[0-9a-f]+ is not the "
        r"request's 0x[0-9a-f]+$",
        True,
    ),
    "reject": (
        r"response refused \(TIMESTAMP_INVALID\): status: the TSA refused: rejection: .*"
        r"\(failInfo badAlg\)$",
        True,
    ),
    "noncritical_eku": (
        r"response refused \(TIMESTAMP_INVALID\): eku: the signer certificate's "
        r"extendedKeyUsage is not critical",
        True,
    ),
    "expired": (
        r"response refused \(TIMESTAMP_INVALID\): validity: not valid at genTime .*'CN=Test TSA,"
        r".*' is valid from .* to ",
        True,
    ),
    "garbage": (r"response refused \(TIMESTAMP_INVALID\): parse: not a TimeStampResp", True),
    "http_500": (r"unreachable: timestamp authority <URL> answered HTTP 500", False),
    "hang": (r"unreachable: timestamp authority <URL> did not answer within 0\.5 s$", False),
    "wrong_content_type": (
        r"unreachable: timestamp authority <URL> answered with content type 'text/html'",
        False,
    ),
    "redirect": (r"unreachable: timestamp authority <URL> answered HTTP 302", False),
    "oversized": (r"unreachable: timestamp authority <URL> sent more than 1048576 bytes", False),
}


def assert_refused(
    root: Path, result: Result, before: bytes, tsa: TSA, pattern: str, kept: bool
) -> dict[str, Any]:
    """Exit 7, the ledger byte for byte unchanged, no token stored, the reason given."""
    assert result.code == PENDING_EXIT, result.out + result.err
    assert ledger_bytes(root) == before
    assert stored_tokens(root) == set()
    assert len(refused_tokens(root)) == (1 if kept else 0)
    report = result.json()
    validate(report, SCHEMA)
    assert report["stamped"] is False
    [entry] = report["checkpoints"]
    assert entry["pending"] is True and entry["tokens"] == 0
    [outcome] = entry["outcomes"]
    assert outcome["tsa"] == tsa.url and outcome["ok"] is False
    assert outcome["gen_time"] is None and outcome["record"] is None
    seq = entry["checkpoint"]
    digest = hashlib.sha256(lines(root)[seq]).hexdigest()
    expected = pattern.replace("<DIGEST>", digest).replace("<URL>", re.escape(tsa.url))
    assert re.search(expected, outcome["reason"]), outcome["reason"]
    return outcome


@pytest.mark.parametrize("mode", list(REJECTIONS))
def test_misbehaving_tsa_is_refused(
    root: Path, cli: CLI, tsas: Callable[..., TSA], mode: str
) -> None:
    tsa = tsas(mode)
    configure(root, [tsa.url], timeout=0.5)
    before = ledger_bytes(root)
    started = time.monotonic()
    result = cli("timestamp", "--root", root, "--json")
    elapsed = time.monotonic() - started
    pattern, kept = REJECTIONS[mode]
    assert_refused(root, result, before, tsa, pattern, kept)
    assert len(tsa.queries) == 1
    assert elapsed < 6, f"{mode} took {elapsed:.1f} s with a 0.5 s timeout"


def test_refusal_is_explained_in_plain_text(root: Path, cli: CLI, tsas: Callable[..., TSA]) -> None:
    tsa = tsas("wrong_nonce")
    configure(root, [tsa.url])
    seq = of_type(root, "checkpoint")[-1]["seq"]
    result = cli("timestamp", "--root", root)
    assert result.code == PENDING_EXIT
    assert f"failed {tsa.url}: response refused" in result.out
    assert f"(checkpoint(s) {seq})" in result.out
    assert "nonce" in result.out and "PENDING" in result.out


def test_hung_tsa_costs_one_timeout_per_run(
    root: Path, cli: CLI, signer: SigningKey, tsas: Callable[..., TSA]
) -> None:
    """Two pending checkpoints, one silent TSA: asked once, the run bounded by the timeout."""
    tsa = tsas("hang")
    configure(root, [tsa.url], timeout=0.5)
    record_an_access(root, signer)
    started = time.monotonic()
    result = cli("timestamp", "--root", root, "--json")
    elapsed = time.monotonic() - started
    assert result.code == PENDING_EXIT
    report = result.json()
    validate(report, SCHEMA)
    assert len(report["checkpoints"]) == 2 and all(c["pending"] for c in report["checkpoints"])
    reasons = {o["reason"] for c in report["checkpoints"] for o in c["outcomes"]}
    assert reasons == {f"unreachable: timestamp authority {tsa.url} did not answer within 0.5 s"}
    assert len(tsa.queries) == 1
    assert elapsed < 6
    assert of_type(root, "timestamp") == []


def test_untrusted_root_refused_with_roots_from_config(
    root: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    """The rogue TSA's chain ends in a root with the published root's name but another key."""
    good = tsas(name="Good TSA")
    rogue = tsas("untrusted_root", name="Rogue TSA")
    configure(
        root,
        [good.url, rogue.url],
        min_success=2,
        roots=[good.root_pem, good.chain_pem, rogue.root_pem, rogue.chain_pem],
    )
    before = lines(root)
    result = cli("timestamp", "--root", root, "--json")
    assert result.code == PENDING_EXIT
    report = result.json()
    validate(report, SCHEMA)
    [entry] = report["checkpoints"]
    assert entry["pending"] is True and entry["tokens"] == 1
    outcomes = {o["tsa"]: o for o in entry["outcomes"]}
    # The good TSA's token is anchored in the configured root, and recorded.
    assert outcomes[good.url]["ok"] is True
    assert outcomes[good.url]["reason"].startswith("valid timestamp of ")
    [record] = of_type(root, "timestamp")
    assert record["body"]["tsa"] == good.url and len(lines(root)) == len(before) + 1
    # The rogue one is refused as untrusted; nothing is recorded for it.
    assert outcomes[rogue.url]["ok"] is False
    assert re.match(
        r"response refused \(TIMESTAMP_UNTRUSTED\): chain: no chain from 'CN=Rogue TSA,.*' to "
        r"a trust anchor",
        outcomes[rogue.url]["reason"],
    )
    assert len(stored_tokens(root)) == 1 and len(refused_tokens(root)) == 1


def test_untrusted_root_refused_with_tsa_root_option(
    root: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    rogue = tsas("untrusted_root")
    configure(root, [rogue.url])
    before = ledger_bytes(root)
    result = cli("timestamp", "--root", root, "--json", *trust_args(rogue))
    assert_refused(
        root,
        result,
        before,
        rogue,
        r"response refused \(TIMESTAMP_UNTRUSTED\): chain: no chain from .* to a trust anchor",
        True,
    )


def test_without_roots_a_rogue_chain_is_accepted_but_verify_with_roots_catches_it(
    root: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    """With no trust anchors configured, custody can only check the token against the root
    the TSA sent (self-contained mode) - the verifier's --tsa-root is what establishes trust."""
    rogue = tsas("untrusted_root")
    configure(root, [rogue.url])
    result = cli("timestamp", "--root", root)
    assert result.code == 0, result.out
    code, document = verify_json(cli, root, *trust_args(rogue))
    assert code == 1 and document["verified"] is False
    [finding] = findings(document, "TIMESTAMP_UNTRUSTED")
    assert finding["severity"] == "error"
    assert finding["item"] == f"record {of_type(root, 'timestamp')[0]['seq']}"
    assert "no chain" in finding["message"]
    # Its token counts for nothing: the records stay uncovered by trusted time.
    assert document["timestamps"] == []
    assert [f["severity"] for f in findings(document, "TIMESTAMP_PENDING")] == ["warning"]


# === verification of a stamped ledger ==========================================================


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TSA, TSA]]:
    """Two well-behaved TSAs for the module: one sends its whole chain, one only itself."""
    base = tmp_path_factory.mktemp("tsa-pair")
    with (
        running_tsa(base, include_chain=True, name="Alpha TSA") as full,
        running_tsa(base, include_chain=False, name="Beta TSA") as bare,
    ):
        yield full, bare


@pytest.fixture(scope="module")
def stamped_template(
    template: Template, pair: tuple[TSA, TSA], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    root = tmp_path_factory.mktemp("stamped") / "evidence"
    shutil.copytree(template.root, root, symlinks=True)
    configure(root, [t.url for t in pair], min_success=2)
    report = stamp(EvidenceRoot(root), template.signer)
    assert report.ok and [c.tokens for c in report.checkpoints] == [2]
    return root


@pytest.fixture
def stamped(stamped_template: Path, template: Template, env: Path, tmp_path: Path) -> Path:
    """This test's own copy of a catalogued ledger stamped by both TSAs of ``pair``."""
    return clone(stamped_template, env, template.keys, tmp_path / "evidence")


def token_of(root: Path, tsa: TSA) -> tuple[dict[str, Any], Path]:
    [record] = [r for r in of_type(root, "timestamp") if r["body"]["tsa"] == tsa.url]
    return record, root / ".custody" / record["body"]["token_file"]


def test_stamped_ledger_verifies_with_the_tsa_roots(
    stamped: Path, cli: CLI, pair: tuple[TSA, TSA]
) -> None:
    code, document = verify_json(cli, stamped, *trust_args(*pair))
    assert code == 0 and findings(document, *TIMESTAMP_CODES) == []
    assert {t["trust"] for t in document["timestamps"]} == {"roots"}
    result = cli("verify", "--root", stamped, "--require-timestamps", *trust_args(*pair))
    assert result.code == 0 and "VERIFIED" in result.out


def test_altered_token_file_is_invalid(stamped: Path, cli: CLI, pair: tuple[TSA, TSA]) -> None:
    full, bare = pair
    record, token = token_of(stamped, full)
    data = bytearray(token.read_bytes())
    data[len(data) // 2] ^= 0x01
    token.write_bytes(bytes(data))
    code, document = verify_json(cli, stamped, *trust_args(*pair))
    assert code == 1 and document["verified"] is False
    [finding] = findings(document, *TIMESTAMP_CODES)
    assert (finding["code"], finding["severity"], finding["item"], finding["seq"]) == (
        "TIMESTAMP_INVALID",
        "error",
        f"record {record['seq']}",
        record["seq"],
    )
    assert "is not the one recorded" in finding["message"]
    assert finding["expected"] == record["body"]["token_sha256"]
    assert finding["found"] == hashlib.sha256(bytes(data)).hexdigest()
    # The other TSA's token still stands, and still covers every record.
    assert [t["tsa"] for t in document["timestamps"]] == [bare.url]


def test_deleted_token_file_is_invalid(stamped: Path, cli: CLI, pair: tuple[TSA, TSA]) -> None:
    record, token = token_of(stamped, pair[1])
    token.unlink()
    code, document = verify_json(cli, stamped, *trust_args(*pair))
    assert code == 1
    [finding] = findings(document, *TIMESTAMP_CODES)
    assert finding["code"] == "TIMESTAMP_INVALID" and finding["severity"] == "error"
    assert finding["item"] == f"record {record['seq']}"
    assert "cannot be read" in finding["message"]


def test_another_ca_as_tsa_root_makes_tokens_untrusted(
    stamped: Path, cli: CLI, tmp_path: Path
) -> None:
    other = make_pki(tmp_path / "other-ca", name="Other CA")
    code, document = verify_json(
        cli, stamped, "--tsa-root", other.root_pem, "--tsa-root", other.chain_pem
    )
    assert code == 1 and document["verified"] is False
    untrusted = findings(document, "TIMESTAMP_UNTRUSTED")
    assert sorted(f["seq"] for f in untrusted) == sorted(
        r["seq"] for r in of_type(stamped, "timestamp")
    )
    assert {f["severity"] for f in untrusted} == {"error"}
    assert all("no chain" in f["message"] for f in untrusted)
    assert document["timestamps"] == []
    # Nothing else is wrong with them.
    assert findings(document, "TIMESTAMP_INVALID", "TIMESTAMP_MISMATCH") == []


def test_no_tsa_root_and_a_tsa_without_root_is_only_a_warning(
    stamped: Path, cli: CLI, pair: tuple[TSA, TSA]
) -> None:
    full, bare = pair
    code, document = verify_json(cli, stamped)
    assert code == 0 and document["verified"] is True
    [finding] = findings(document, *TIMESTAMP_CODES)
    assert finding["code"] == "TIMESTAMP_UNTRUSTED" and finding["severity"] == "warning"
    # Both tokens were checked without anchors from the verifier: one carries its own
    # root (which anyone can make), one carries none.
    assert finding["message"].startswith("2 token(s) checked without trust anchors from you")
    assert "1 against a root they carry themselves, 1 with no root at all" in finding["message"]
    assert "--tsa-root" in finding["message"]
    # Both tokens count, in the weaker self-contained mode, and the report says which.
    assert sorted((t["tsa"], t["trust"]) for t in document["timestamps"]) == sorted(
        [(full.url, "embedded"), (bare.url, "embedded")]
    )
    [check] = [c for c in document["checks"] if c["name"] == "timestamps"]
    assert "weaker" in check["detail"]
    text = cli("verify", "--root", stamped)
    assert text.code == 0 and "VERIFIED" in text.out and "(1 warning(s))" in text.out


def forge_timestamp(root: Path, change: Callable[[dict[str, Any], list[bytes], int], None]) -> int:
    """Append, with the real key, a copy of the first timestamp record's body after a new
    checkpoint, altered by ``change(body, lines, new_checkpoint_seq)``; its seq."""
    key = Keyring().get("alice").unlock(PASSPHRASE)
    body = dict(of_type(root, "timestamp")[0]["body"])
    with open_ledger(EvidenceRoot(root)) as ledger, ledger.writer(key) as writer:
        new_checkpoint = writer.checkpoint().seq
        writer.flush()
        change(body, lines(root), new_checkpoint)
        return writer.append("timestamp", body).seq


def _sha(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


FORGERIES: dict[str, tuple[Callable[[dict[str, Any], list[bytes], int], None], str]] = {
    # The record names its checkpoint, but its imprint is another checkpoint's digest.
    "imprint of another checkpoint": (
        lambda body, ls, new: body.update(imprint=_sha(ls[new])),
        "the recorded imprint is not the SHA-256 of the checkpoint line",
    ),
    # Record and imprint agree on the new checkpoint, but the token stamps the old one.
    "token of another checkpoint": (
        lambda body, ls, new: body.update(checkpoint=new, imprint=_sha(ls[new])),
        "imprint: the token stamps",
    ),
    # The record moved to the new checkpoint, keeping the old imprint.
    "checkpoint renamed": (
        lambda body, ls, new: body.update(checkpoint=new),
        "the recorded imprint is not the SHA-256 of the checkpoint line",
    ),
    # The record names a record that is not a checkpoint.
    "not a checkpoint": (
        lambda body, ls, new: body.update(checkpoint=3),
        "names record 3, which is not an earlier checkpoint",
    ),
    # The record claims a time a year before the token's.
    "backdated": (
        lambda body, ls, new: body.update(
            gen_time=format_time(parse_time(body["gen_time"]) - dt.timedelta(days=365))
        ),
        "the recorded genTime differs from the token's",
    ),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_forged_timestamp_record_is_a_mismatch(
    stamped: Path, cli: CLI, pair: tuple[TSA, TSA], forgery: str
) -> None:
    change, message = FORGERIES[forgery]
    forged = forge_timestamp(stamped, change)
    code, document = verify_json(cli, stamped, *trust_args(*pair))
    assert code == 1 and document["verified"] is False
    # The ledger itself is sound: the forgery is validly signed and chained.
    assert all(c["passed"] for c in document["checks"] if c["name"] != "timestamps")
    [finding] = findings(document, "TIMESTAMP_MISMATCH", "TIMESTAMP_INVALID")
    assert (finding["code"], finding["severity"], finding["item"]) == (
        "TIMESTAMP_MISMATCH",
        "error",
        f"record {forged}",
    )
    assert message in finding["message"]
    assert forged not in [t["record"] for t in document["timestamps"]]


def test_records_after_the_last_stamp_are_pending(
    stamped: Path, cli: CLI, pair: tuple[TSA, TSA]
) -> None:
    extra = stamped / "later"
    extra.mkdir()
    shutil.copy2(media_source() / A_JPEG, extra / "late.jpg")
    assert cli("catalogue", extra, "--root", stamped).code == 0
    first_new = of_type(stamped, "timestamp")[-1]["seq"] + 1
    last = len(lines(stamped)) - 1

    code, document = verify_json(cli, stamped, *trust_args(*pair))
    assert code == 0 and document["verified"] is True
    [pending] = findings(document, *TIMESTAMP_CODES)
    assert (pending["code"], pending["severity"]) == ("TIMESTAMP_PENDING", "warning")
    assert pending["item"] == f"records {first_new}-{last}" and pending["seq"] == first_new
    assert "custody timestamp" in pending["message"]
    # The new item's clock row has no trusted time yet.
    [row] = [r for r in document["clock"] if r["path"] == "later/late.jpg"]
    assert row["earliest_timestamp"] is None

    code, document = verify_json(cli, stamped, "--require-timestamps", *trust_args(*pair))
    assert code == 1 and document["verified"] is False
    [pending] = findings(document, *TIMESTAMP_CODES)
    assert (pending["code"], pending["severity"]) == ("TIMESTAMP_PENDING", "error")

    # Stamping the new checkpoint satisfies --require-timestamps.
    assert cli("timestamp", "--root", stamped).code == 0
    code, document = verify_json(cli, stamped, "--require-timestamps", *trust_args(*pair))
    assert code == 0 and findings(document, *TIMESTAMP_CODES) == []


# === clock reconciliation ======================================================================


def exif_copy(dest: Path, original: str, offset: str | None) -> Path:
    """A COPY of a corpus JPEG claiming DateTimeOriginal ``original`` (exiftool's format),
    with OffsetTimeOriginal ``offset`` or none; the corpus file is never touched."""
    source = media_source() / A_JPEG
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    subprocess.run(
        [
            "exiftool",
            "-q",
            "-overwrite_original",
            f"-DateTimeOriginal={original}",
            f"-OffsetTimeOriginal={offset or ''}",
            str(dest),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    written = json.loads(
        subprocess.run(
            ["exiftool", "-j", "-G1", "-DateTimeOriginal", "-OffsetTimeOriginal", str(dest)],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout
    )[0]
    assert written["ExifIFD:DateTimeOriginal"] == original
    assert written.get("ExifIFD:OffsetTimeOriginal") == offset
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    return dest


def test_capture_time_after_the_trusted_timestamp_is_flagged(
    root: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    tsa = tsas()
    configure(root, [tsa.url])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    local = (now + dt.timedelta(hours=1)).strftime("%Y:%m:%d %H:%M:%S")
    # The same wall-clock reading an hour from now, in two zones: in Berlin-like +02:00 it
    # was an hour ago (fine); in New-York-like -05:00 it is six hours from now (impossible
    # for a file that a TSA has already seen).
    exif_copy(root / "clocks" / "east.jpg", local, "+02:00")
    exif_copy(root / "clocks" / "west.jpg", local, "-05:00")
    # Without a zone the time may be local anywhere on Earth (UTC-12 .. UTC+14).
    near = (now + dt.timedelta(hours=3)).strftime("%Y:%m:%d %H:%M:%S")
    far = (now + dt.timedelta(hours=20)).strftime("%Y:%m:%d %H:%M:%S")
    exif_copy(root / "clocks" / "nozone-near.jpg", near, None)
    exif_copy(root / "clocks" / "nozone-far.jpg", far, None)

    assert cli("catalogue", root / "clocks", "--root", root).code == 0
    result = cli("timestamp", "--root", root)
    assert result.code == 0, result.out

    code, document = verify_json(cli, root, *trust_args(tsa))
    assert code == 0 and document["verified"] is True  # clock flags are warnings
    rows = {r["path"]: r for r in document["clock"]}
    items = {r["body"]["path"]: r for r in of_type(root, "item")}
    stamps = of_type(root, "timestamp")
    tree_sizes = {c["seq"]: c["body"]["tree_size"] for c in of_type(root, "checkpoint")}
    iso = local.replace(":", "-", 2).replace(" ", "T")
    expected_capture = {
        "clocks/east.jpg": iso + "+02:00",
        "clocks/west.jpg": iso + "-05:00",
        "clocks/nozone-near.jpg": near,
        "clocks/nozone-far.jpg": far,
    }
    for path, capture in expected_capture.items():
        row, item = rows[path], items[path]
        assert item["body"]["capture_time"] == capture
        assert row["capture_time"] == capture
        assert row["seq"] == item["seq"] and row["catalogued"] == item["time"]
        # The earliest trusted time is the token over the checkpoint covering the item.
        covering = [
            s["body"]["gen_time"]
            for s in stamps
            if tree_sizes[s["body"]["checkpoint"]] > item["seq"]
        ]
        assert row["earliest_timestamp"] == min(covering)
    assert rows["clocks/east.jpg"]["flags"] == []
    assert rows["clocks/west.jpg"]["flags"] == ["CAPTURE_AFTER_TIMESTAMP"]
    assert rows["clocks/nozone-near.jpg"]["flags"] == []
    assert rows["clocks/nozone-far.jpg"]["flags"] == ["CAPTURE_AFTER_TIMESTAMP"]

    flagged = findings(document, "CAPTURE_AFTER_TIMESTAMP")
    assert sorted(f["item"] for f in flagged) == ["clocks/nozone-far.jpg", "clocks/west.jpg"]
    for finding in flagged:
        assert finding["severity"] == "warning"
        assert finding["expected"] == rows[finding["item"]]["earliest_timestamp"]
        assert finding["found"] == rows[finding["item"]]["capture_time"]
    # Nothing else in the corpus claims to have been captured after it was stamped.
    assert findings(document, *TIMESTAMP_CODES) == flagged
    # Every catalogued item has a clock row.
    assert set(rows) == set(items)


def test_skewed_catalogue_clocks_are_flagged(
    root: Path, cli: CLI, signer: SigningKey, tsas: Callable[..., TSA]
) -> None:
    """The documenter's computer clock is wrong; the TSAs' is not."""
    tsa = tsas()
    configure(root, [tsa.url])
    evidence = EvidenceRoot(root)
    now = dt.datetime.now(dt.UTC)
    behind = now - dt.timedelta(days=30)
    ahead = now + dt.timedelta(hours=2)
    for folder, moment in (("behind", behind), ("ahead", ahead)):
        (root / folder).mkdir()
        shutil.copy2(media_source() / A_JPEG, root / folder / "photo.jpg")
        report = catalogue(evidence, [root / folder], signer, clock=lambda m=moment: m)
        assert report.checkpoint is not None and not report.skipped
    report = stamp(evidence, signer, clock=lambda: ahead)
    assert report.ok and len(report.checkpoints) == 3  # the template's and both of these

    code, document = verify_json(cli, root, *trust_args(tsa))
    assert code == 0 and document["verified"] is True
    rows = {r["path"]: r for r in document["clock"]}
    assert rows["behind/photo.jpg"]["catalogued"] == format_time(behind)
    assert rows["ahead/photo.jpg"]["catalogued"] == format_time(ahead)
    gen_time = parse_time(rows["ahead/photo.jpg"]["earliest_timestamp"])
    assert abs(gen_time - now) < dt.timedelta(minutes=5)  # the TSA's own clock
    assert rows["behind/photo.jpg"]["flags"] == ["CATALOGUE_TIME_FAR"]
    assert rows["ahead/photo.jpg"]["flags"] == ["CATALOGUED_AFTER_TIMESTAMP"]
    others = [r for path, r in rows.items() if r["flags"] and "photo.jpg" not in path]
    assert others == []
    flagged = {f["item"]: f for f in findings(document, *TIMESTAMP_CODES)}
    assert set(flagged) == {"behind/photo.jpg", "ahead/photo.jpg"}
    assert flagged["behind/photo.jpg"]["code"] == "CATALOGUE_TIME_FAR"
    assert flagged["ahead/photo.jpg"]["code"] == "CATALOGUED_AFTER_TIMESTAMP"
    assert {f["severity"] for f in flagged.values()} == {"warning"}
    assert flagged["ahead/photo.jpg"]["found"] == format_time(ahead)
    # The records the skewed clock wrote carry its times, not the TSA's.
    assert {r["time"] for r in of_type(root, "timestamp")} == {format_time(ahead)}


UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "moment", "zoned"),
    [
        # exiftool's own format, no zone: read as UTC, zone unknown
        ("2017:11:27 01:01:01", dt.datetime(2017, 11, 27, 1, 1, 1, tzinfo=UTC), False),
        ("  2017:11:27 01:01:01 ", dt.datetime(2017, 11, 27, 1, 1, 1, tzinfo=UTC), False),
        ("2017:11:27 01:01:01.57", dt.datetime(2017, 11, 27, 1, 1, 1, tzinfo=UTC), False),
        # with an offset, as exiftool prints composite or XMP dates
        ("2017:11:27 01:01:01+02:00", dt.datetime(2017, 11, 26, 23, 1, 1, tzinfo=UTC), True),
        ("2017:11:27 01:01:01-05:30", dt.datetime(2017, 11, 27, 6, 31, 1, tzinfo=UTC), True),
        ("2017:11:27 01:01:01+0200", dt.datetime(2017, 11, 26, 23, 1, 1, tzinfo=UTC), True),
        ("2017:11:27 01:01:01+05", dt.datetime(2017, 11, 26, 20, 1, 1, tzinfo=UTC), True),
        ("2017:11:27 01:01:01.250+01:00", dt.datetime(2017, 11, 27, 0, 1, 1, tzinfo=UTC), True),
        ("2017:11:27 01:01:01Z", dt.datetime(2017, 11, 27, 1, 1, 1, tzinfo=UTC), True),
        # RFC 3339, as custody records a capture time whose zone it knows
        ("2017-11-27T01:01:01+02:00", dt.datetime(2017, 11, 26, 23, 1, 1, tzinfo=UTC), True),
        ("2017-11-27T01:01:01.5Z", dt.datetime(2017, 11, 27, 1, 1, 1, tzinfo=UTC), True),
        ("2016-02-29T23:30:00-01:00", dt.datetime(2016, 3, 1, 0, 30, 0, tzinfo=UTC), True),
    ],
)
def test_parse_capture_time(text: str, moment: dt.datetime, zoned: bool) -> None:
    assert parse_capture_time(text) == (moment, zoned)


@pytest.mark.parametrize(
    "text",
    [
        "2004:02:26",  # a date without a time (IPTC DateCreated)
        "0000:00:00 00:00:00",  # unset EXIF date
        "    :  :     :  :  ",
        "2017:13:01 10:00:00",
        "2017:02:30 10:00:00",
        "2017:11:27 24:00:00",
        "2017:11:27 01:01",
        "2017:11:27 01:01:01 +02:00",
        "27/11/2017 01:01:01",
        "",
        "yesterday",
    ],
)
def test_parse_capture_time_refuses_what_is_not_a_time(text: str) -> None:
    assert parse_capture_time(text) is None


# === custody catalogue --timestamp ==============================================================


def small_media(evidence: Path) -> Path:
    """A copy of one camera folder of the media (real files, quick to catalogue)."""
    media = evidence / "media"
    copy_media(media_source() / "field-dump-01" / "DCIM", media)
    return media


def test_catalogue_with_timestamp_stamps_as_its_last_step(
    evidence: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    tsa = tsas()
    configure(evidence, [tsa.url])
    media = small_media(evidence)
    result = cli("catalogue", media, "--root", evidence, "--timestamp")
    assert result.code == 0, result.out + result.err
    records = signed(evidence)
    kinds = [r["type"] for r in records]
    files = len(list(media.rglob("*.*")))
    assert kinds == ["key"] + ["item"] * files + ["checkpoint", "timestamp"]
    checkpoint, stamp_record = records[-2], records[-1]
    assert stamp_record["body"]["checkpoint"] == checkpoint["seq"]
    assert stamp_record["body"]["imprint"] == line_digest_with_shell_tools(
        evidence, checkpoint["seq"]
    )
    assert f"checkpoint {checkpoint['seq']}: stamped by {tsa.url}" in result.out
    code, document = verify_json(cli, evidence, *trust_args(tsa))
    assert code == 0 and findings(document, *TIMESTAMP_CODES) == []


def test_catalogue_with_timestamp_json_carries_the_stamp_report(
    evidence: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    tsa = tsas()
    configure(evidence, [tsa.url])
    result = cli("catalogue", small_media(evidence), "--root", evidence, "--timestamp", "--json")
    assert result.code == 0, result.err
    document = result.json()
    validate(document["timestamp"], SCHEMA)
    [entry] = document["timestamp"]["checkpoints"]
    assert entry["checkpoint"] == document["checkpoint"] and entry["tokens"] == 1


def test_catalogue_json_with_timestamp_matches_the_catalogue_schema(
    evidence: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    """`catalogue --timestamp --json` adds a "timestamp" member: the cli-timestamp document
    (embedded in cli-catalogue.schema.json; tests/test_schemas.py keeps the copies in step)."""
    tsa = tsas()
    configure(evidence, [tsa.url])
    result = cli("catalogue", small_media(evidence), "--root", evidence, "--timestamp", "--json")
    assert result.code == 0, result.err
    validate(result.json(), "cli-catalogue.schema.json")


def test_catalogue_with_timestamp_offline_keeps_the_items_and_is_pending(
    evidence: Path, cli: CLI
) -> None:
    configure(evidence, [closed_url()])
    media = small_media(evidence)
    result = cli("catalogue", media, "--root", evidence, "--timestamp")
    assert result.code == PENDING_EXIT
    assert "PENDING" in result.out and "connection refused" in result.out
    kinds = [r["type"] for r in signed(evidence)]
    assert kinds[-1] == "checkpoint" and "timestamp" not in kinds
    assert kinds.count("item") == len(list(media.rglob("*.*")))


def test_catalogue_with_timestamp_run_again_adds_nothing(
    evidence: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    """Re-running the same command with nothing new must not grow the ledger.

    BUG (src/custody/acquisition/catalogue.py, end of catalogue(): `_type_of(ledger, last) !=
    "checkpoint"`): after a stamp the ledger ends with timestamp records, so a catalogue run
    that recorded nothing appends a checkpoint over them anyway, which --timestamp then
    stamps; every re-run adds a checkpoint and a token per TSA. stamping._needs_checkpoint
    already skips trailing timestamp records; catalogue should too."""
    tsa = tsas()
    configure(evidence, [tsa.url])
    media = small_media(evidence)
    assert cli("catalogue", media, "--root", evidence, "--timestamp").code == 0
    before = len(lines(evidence))
    again = cli("catalogue", media, "--root", evidence, "--timestamp", "--json")
    assert again.code == 0
    assert again.json()["added"] == 0
    appended = [r["type"] for r in signed(evidence)[before:]]
    assert appended == []  # today: ['checkpoint', 'timestamp']
    assert len(tsa.queries) == 1


# === token files ===============================================================================


@contextlib.contextmanager
def one_host_two_tsas(first: TSA, second: TSA) -> Iterator[tuple[str, str]]:
    """A front end on one host and port serving two TSA units under two paths, as a TSA
    operator with, say, an RSA and an ECDSA unit does; each unit counts its own serials."""
    routes = {"/unit-a": first.url, "/unit-b": second.url}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            forward = urllib.request.Request(
                routes[self.path],
                data=query,
                method="POST",
                headers={"Content-Type": "application/timestamp-query"},
            )
            with opener.open(forward, timeout=10) as response:
                body, ctype = response.read(), response.headers["Content-Type"]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield f"{base}/unit-a", f"{base}/unit-b"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_two_tsas_on_one_host_keep_their_own_token_files(
    root: Path, cli: CLI, tsas: Callable[..., TSA]
) -> None:
    """Two units behind one host:port both issue the same serial for the same checkpoint. Each
    token must stay in its own file (stamping._file_name named files after host, checkpoint
    and serial only, so the second overwrote the first)."""
    first, second = tsas(name="Unit A"), tsas(name="Unit B", include_chain=False)
    with one_host_two_tsas(first, second) as (url_a, url_b):
        configure(root, [url_a, url_b], min_success=2)
        result = cli("timestamp", "--root", root)
        assert result.code == 0, result.out
    records = of_type(root, "timestamp")
    [serial_a, serial_b] = [r["body"]["serial"] for r in records]
    assert serial_a == serial_b  # each unit's first token
    files = {r["body"]["token_file"] for r in records}
    assert len(files) == 2
    for record in records:
        token = root / ".custody" / record["body"]["token_file"]
        assert hashlib.sha256(token.read_bytes()).hexdigest() == record["body"]["token_sha256"]
    code, document = verify_json(cli, root, *trust_args(first, second))
    assert code == 0 and findings(document, *TIMESTAMP_CODES) == []
    assert len(document["timestamps"]) == 2


def test_timestamp_schema_is_not_vacuous() -> None:
    """The schema refuses what StampReport.to_json never produces."""
    schema = json.loads((SCHEMAS / SCHEMA).read_text())
    good_outcome = {
        "tsa": "http://127.0.0.1:1/tsa",
        "ok": True,
        "reason": "valid timestamp",
        "gen_time": "2026-11-27T07:16:14.000000Z",
        "record": 9,
    }
    good = {
        "stamped": True,
        "min_success": 1,
        "new_checkpoint": None,
        "checkpoints": [
            {
                "checkpoint": 8,
                "tree_size": 8,
                "tokens": 1,
                "pending": False,
                "outcomes": [good_outcome],
            }
        ],
    }
    jsonschema.validate(good, schema, cls=jsonschema.Draft202012Validator)
    failed = {**good_outcome, "ok": False, "reason": "unreachable: x"}
    bad_documents = [
        {**good, "min_success": 0},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "new_checkpoint"},
        {**good, "checkpoints": [{**good["checkpoints"][0], "outcomes": [failed]}]},
        {
            **good,
            "checkpoints": [
                {**good["checkpoints"][0], "outcomes": [{**good_outcome, "record": None}]}
            ],
        },
        {
            **good,
            "checkpoints": [
                {
                    **good["checkpoints"][0],
                    "outcomes": [{**good_outcome, "gen_time": "2026-11-27T07:16:14Z"}],
                }
            ],
        },
    ]
    for bad in bad_documents:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)
    jsonschema.validate(
        {
            **good,
            "stamped": False,
            "checkpoints": [
                {
                    **good["checkpoints"][0],
                    "tokens": 0,
                    "pending": True,
                    "outcomes": [{**failed, "gen_time": None, "record": None}],
                }
            ],
        },
        schema,
        cls=jsonschema.Draft202012Validator,
    )


def test_a_lost_token_file_is_not_counted_as_a_token(
    stamped: Path, cli: CLI, pair: tuple[TSA, TSA]
) -> None:
    """`custody timestamp` must not say every checkpoint has its tokens when a recorded
    token's file is gone (stamping.stamp counted timestamp records without looking at their
    files, so nothing could ever stamp that checkpoint again)."""
    full, bare = pair
    lost, token = token_of(stamped, bare)
    token.unlink()
    result = cli("timestamp", "--root", stamped, "--json")
    assert result.code == 0, result.out
    report = result.json()
    validate(report, SCHEMA)
    [entry] = report["checkpoints"]
    assert entry["checkpoint"] == lost["body"]["checkpoint"] and entry["tokens"] == 2
    assert [(o["tsa"], o["ok"]) for o in entry["outcomes"]] == [(bare.url, True)]
    fresh = of_type(stamped, "timestamp")[-1]
    assert fresh["body"]["tsa"] == bare.url and fresh["seq"] > lost["seq"]
    # The loss itself stays on the record; the checkpoint has its two tokens again.
    code, document = verify_json(cli, stamped, *trust_args(*pair))
    assert code == 1
    [finding] = findings(document, *TIMESTAMP_CODES)
    assert finding["code"] == "TIMESTAMP_INVALID" and finding["seq"] == lost["seq"]
    assert sorted(t["record"] for t in document["timestamps"]) == sorted(
        [token_of(stamped, full)[0]["seq"], fresh["seq"]]
    )


def test_tsa_root_without_a_root_certificate_is_refused(
    stamped: Path, cli: CLI, pair: tuple[TSA, TSA]
) -> None:
    """Given only intermediates, load_trust had no anchor and verify silently fell back to
    the self-contained mode the user had asked to leave - trusting whatever root a token
    carries. A --tsa-root with no root in it is a usage error."""
    full, _bare = pair
    result = cli("verify", "--root", stamped, "--tsa-root", full.chain_pem)
    assert result.code == 2, result.out
    assert "no root" in result.err and str(full.chain_pem) in result.err
    result = cli("timestamp", "--root", stamped, "--tsa-root", full.chain_pem)
    assert result.code == 2 and "no root" in result.err
    # A root alone, or a root with its intermediates, is fine.
    assert cli("verify", "--root", stamped, "--ledger-only", *trust_args(*pair)).code == 0


def test_relative_roots_in_config_are_read_beside_the_config(
    root: Path, cli: CLI, tsas: Callable[..., TSA], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BUG (src/custody/cli/app.py, _stamp: `load_trust([*config.tsa_roots, ...])`): relative
    paths in config.toml's [timestamps] roots are opened relative to the current directory,
    so the same evidence root stamps or fails depending on where the command is run. They
    should be resolved against the folder holding config.toml (.custody/)."""
    tsa = tsas()
    anchors = root / ".custody" / "tsa-roots"
    anchors.mkdir()
    shutil.copyfile(tsa.root_pem, anchors / "root.pem")
    shutil.copyfile(tsa.chain_pem, anchors / "chain.pem")
    configure(root, [tsa.url], roots=[Path("tsa-roots/root.pem"), Path("tsa-roots/chain.pem")])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = cli("timestamp", "--root", root, "--json")
    assert result.code == 0, result.err
    [entry] = result.json()["checkpoints"]
    assert entry["outcomes"][0]["reason"].startswith("valid timestamp of ")


# === docs/timestamps.md stays true ============================================================

DOC = Path(__file__).resolve().parents[1] / "docs" / "timestamps.md"


def test_documented_defaults_are_the_real_defaults() -> None:
    from custody.root import DEFAULT_TSAS, Config

    text = DOC.read_text()
    block = text.split("```toml\n")[1].split("```")[0]
    assert tomllib.loads(block)["timestamps"] == Config().to_toml()["timestamps"]
    assert tomllib.loads(block)["timestamps"]["tsa"] == list(DEFAULT_TSAS)


def test_documented_timestamp_record_is_exact() -> None:
    from custody.ledger.bodies import TimestampBody
    from custody.ledger.records import SignedRecord

    text = DOC.read_text()
    line = text.split("```json\n")[1].split("\n```")[0].encode()
    record = SignedRecord.parse(line).record  # canonical, well-formed
    assert record.type == "timestamp"
    body = TimestampBody.from_json(record.body)
    assert body.to_json() == record.body
    # Every member is in the table, and the table has no other.
    table = text.split("### 6.3")[1].split("No other members")[0]
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", table, re.MULTILINE))
    assert documented == set(record.body) == set(TimestampBody.__dataclass_fields__)
    # The record after a checkpoint chains to the very digest the token stamps.
    assert record.prev == body.imprint
