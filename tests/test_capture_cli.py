"""``custody capture`` end to end: the real CLI, real Chromium, real yt-dlp, loopback only.

The loopback site of ``tests/test_capture.py`` (HTTP and HTTPS with a throw-away CA: a page
with text, a picture, an HTML5 video, scripts, a redirect chain to an Arabic page, a page
that hangs) is captured into a real evidence root with the loopback RFC 3161 TSA of
``tests/tsa.py``, through ``python -m custody`` in a child process. Independent checks:
``wacz validate -f`` (py-wacz), warcio's ``ArchiveIterator`` over the WARC, ``ffprobe`` and
``ffmpeg`` on the screenshot, the servers' own access logs, file digests and certificate
chains, ``openssl pkeyutl`` on the capture record's signature, the JSON schemas.
Tampering is done on copies of the root, each test to its own copy.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import tomllib
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import tomli_w
from tests.helpers import committed_value, ledger_records, schema, signed_part
from tests.test_capture import (  # noqa: F401 - 'site' is the module's loopback site fixture
    ARABIC,
    BIN,
    PHOTO,
    VIDEO,
    Site,
    site,
)
from tests.tsa import OPENSSL, running_tsa
from warcio.archiveiterator import ArchiveIterator

from conftest import PASSPHRASE, run_custody
from custody.errors import RecordError
from custody.ledger.bodies import EventBody

pytestmark = [
    pytest.mark.skipif(not Path("/usr/bin/chromium").is_file(), reason="needs Debian chromium"),
    pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffmpeg/ffprobe"),
]

CAPTURE_SCHEMA = schema("cli-capture.schema.json")
RECORD_SCHEMA = schema("record.schema.json")


# --- the world: a root, a TSA, the site ---------------------------------------------------


@dataclass
class World:
    root: Path
    home: Path
    site: Site
    base: Path

    def custody(self, *args: str | os.PathLike[str], root: Path | None = None,
                rooted: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {"CUSTODY_HOME": str(self.home), "CUSTODY_PASSPHRASE": PASSPHRASE,
               "CUSTODY_ROOT": ""}
        where = ["--root", root or self.root] if rooted else []
        return run_custody(*args, *where, env=env, timeout=timeout)

    def url(self, path: str, *, secure: bool = False) -> str:
        if secure:
            return f"https://127.0.0.1:{self.site.https_port}{path}"
        return f"http://127.0.0.1:{self.site.http_port}{path}"


def _configure_tsa(root: Path, url: str) -> None:
    path = root / ".custody" / "config.toml"
    document = tomllib.loads(path.read_text())
    document["timestamps"] = {"tsa": [url], "min_success": 1, "timeout": 10.0}
    path.write_text(tomli_w.dumps(document))


def _new_root(base: Path, home: Path, name: str, tsa_url: str) -> Path:
    root = base / name
    env = {"CUSTODY_HOME": str(home), "CUSTODY_PASSPHRASE": PASSPHRASE}
    assert run_custody("init", root, env=env).returncode == 0
    _configure_tsa(root, tsa_url)
    return root


@pytest.fixture(scope="module")
def world(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:  # noqa: F811
    base = tmp_path_factory.mktemp("capture-cli")
    home = base / "home"
    with running_tsa(base, "ok", include_chain=True) as tsa:
        root = _new_root(base, home, "evidence", tsa.url)
        env = {"CUSTODY_HOME": str(home), "CUSTODY_PASSPHRASE": PASSPHRASE}
        assert run_custody("keys", "generate", "--name", "amina", env=env).returncode == 0
        yield World(root, home, site, base)


@dataclass
class Run:
    done: subprocess.CompletedProcess[str]
    log: list[tuple[str, str, str, int]]

    @property
    def json(self) -> Any:
        return json.loads(self.done.stdout)

    def capture(self, n: int = 0) -> dict[str, Any]:
        found: dict[str, Any] = self.json["captures"][n]
        return found


def _run(world: World, *args: str) -> Run:
    start = world.site.mark()
    done = world.custody("capture", *args, "--json")
    run = Run(done, world.site.entries(start))
    jsonschema.validate(run.json, CAPTURE_SCHEMA, cls=jsonschema.Draft202012Validator)
    return run


@pytest.fixture(scope="module")
def main_page(world: World) -> Run:
    return _run(world, world.url("/index.html"), "--tag", "case-7", "--collector", "Amina",
                "--timeout", "60")


@pytest.fixture(scope="module")
def secure_page(world: World, main_page: Run) -> Run:
    return _run(world, world.url("/go-secure"), "--tls-roots", str(world.site.root_pem),
                "--timeout", "60")


@pytest.fixture(scope="module")
def failures(world: World, secure_page: Run) -> Run:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    return _run(world, f"http://127.0.0.1:{closed}/gone", world.url("/arabic.html", secure=True),
                world.url("/hang.html"), "--timeout", "8")


# --- helpers ------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _folder(world: World, run: Run, n: int = 0) -> Path:
    return world.root / str(run.capture(n)["folder"])


def _record(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / "capture.json").read_text(encoding="utf-8"))
    return document


def _warc(folder: Path) -> bytes:
    with zipfile.ZipFile(folder / "archive.wacz") as zf:
        return zf.read("archive/data.warc.gz")


def _event(root: Path, seq: int) -> dict[str, Any]:
    (record,) = [r for r in ledger_records(root) if r["signed"]["seq"] == seq]
    return record


def _verify(world: World, root: Path) -> tuple[int, dict[str, Any]]:
    done = world.custody("verify", "--json", root=root)
    result: dict[str, Any] = json.loads(done.stdout)
    jsonschema.validate(result, schema("cli-verify.schema.json"),
                        cls=jsonschema.Draft202012Validator)
    return done.returncode, result


def _copy_root(world: World, name: str) -> Path:
    copy = world.base / name
    shutil.copytree(world.root, copy, symlinks=True)
    return copy


# --- the capture and its record -----------------------------------------------------------


def test_every_file_is_an_item_of_one_signed_capture_record(world: World, main_page: Run) -> None:
    assert main_page.done.returncode == 0, main_page.done.stderr
    capture = main_page.capture()
    assert capture["outcome"] == "complete" and capture["captured"] and capture["error"] is None
    folder = _folder(world, main_page)
    assert folder.parent == world.root / "captures"
    assert folder.name.endswith(f"-127.0.0.1-{world.site.http_port}")
    on_disk = sorted(str(p.relative_to(world.root)) for p in folder.rglob("*") if p.is_file())
    assert sorted(i["path"] for i in capture["items"]) == on_disk
    roles = Counter(i["role"] for i in capture["items"])
    assert roles["wacz"] == roles["screenshot"] == roles["pdf"] == roles["record"] == 1
    assert roles["media"] >= 1 and roles["media-info"] >= 1
    for item in capture["items"]:
        assert _sha((world.root / item["path"]).read_bytes()) == item["sha256"]
    event = _event(world.root, capture["event"])
    jsonschema.validate(event, RECORD_SCHEMA, cls=jsonschema.Draft202012Validator)
    body = event["signed"]["body"]
    assert event["signed"]["type"] == "event" and body["action"] == "capture"
    assert body["folder"] == capture["folder"]
    assert body["capture"] == _record(folder), "the signed record is capture.json"
    assert [(i["seq"], i["sha256"]) for i in body["items"]] == [
        (i["seq"], i["sha256"]) for i in capture["items"]]
    items = {r["signed"]["seq"]: r["signed"]["body"] for r in ledger_records(world.root)
             if r["signed"]["type"] == "item"}
    for ref in body["items"]:
        assert ref["seq"] < capture["event"]
        assert items[ref["seq"]]["digests"]["sha256"] == ref["sha256"]
        assert items[ref["seq"]]["source"] == world.url("/index.html")
        assert items[ref["seq"]]["tags"] == ["case-7"]
        # The collector is a salted commitment in the record; its value is kept beside it.
        assert "collector" not in items[ref["seq"]]
        assert committed_value(world.root, items[ref["seq"]], "collector") == "Amina"
    record = body["capture"]
    assert record["final_url"] == world.url("/index.html")
    assert record["main_document"]["server_ip"] == "127.0.0.1"
    assert record["insecure"] is False and record["user_agent"].startswith("Mozilla/5.0")
    assert {"chromium", "yt-dlp", "warcio", "playwright"} <= set(record["tools"])


def test_timestamped_at_once(world: World, main_page: Run) -> None:
    stamp = main_page.json["timestamp"]
    assert stamp["stamped"] is True
    checkpoint = main_page.json["checkpoint"]
    assert checkpoint == main_page.capture()["event"] + 1, "one checkpoint closes the run"
    stamps = [r for r in ledger_records(world.root) if r["signed"]["type"] == "timestamp"
              and r["signed"]["body"]["checkpoint"] == checkpoint]
    assert len(stamps) == 1


def test_wacz_validates_with_py_wacz(world: World, main_page: Run) -> None:
    done = subprocess.run([str(BIN / "wacz"), "validate", "-f",
                           str(_folder(world, main_page) / "archive.wacz")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the passed WACZ is valid" in done.stdout


def test_every_page_resource_is_in_the_warc(world: World, main_page: Run) -> None:
    served = Counter((world.url(path), status) for scheme, _m, path, status in main_page.log
                     if scheme == "http")
    assert {world.url(p) for p in ("/index.html", "/style.css", "/img/photo.jpg", "/app.js",
                                   "/media/clip.mp4")} <= {url for url, _ in served}
    recorded: Counter[tuple[str, int]] = Counter()
    for record in ArchiveIterator(io.BytesIO(_warc(_folder(world, main_page)))):
        if record.rec_type == "response":
            recorded[(record.rec_headers.get_header("WARC-Target-URI"),
                      int(record.http_headers.get_statuscode()))] += 1
    assert not served - recorded, f"served but not in the WARC: {served - recorded}"


def test_video_is_the_served_file(world: World, main_page: Run) -> None:
    want = _sha(VIDEO.read_bytes())
    media = main_page.capture()["capture"]["media"]
    (video,) = [m for m in media if m["sha256"] == want]
    folder = _folder(world, main_page)
    assert _sha((folder / video["path"]).read_bytes()) == want
    assert video["match"] == "payload" and video["warc_record_ids"]
    payloads = {r.rec_headers.get_header("WARC-Record-ID"): _sha(r.content_stream().read())
                for r in ArchiveIterator(io.BytesIO(_warc(folder))) if r.rec_type == "response"}
    assert {payloads[i] for i in video["warc_record_ids"]} == {want}


def test_screenshot_is_a_png_of_the_page(world: World, main_page: Run) -> None:
    shot = _folder(world, main_page) / "screenshot.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                            "stream=width,height,codec_name", "-of", "json", str(shot)],
                           capture_output=True, text=True, timeout=60, check=True)
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "png" and stream["width"] == 1280
    pixel = subprocess.run(["ffmpeg", "-v", "error", "-i", str(shot), "-vf", "crop=1:1:1200:5",
                            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                           capture_output=True, timeout=60, check=True).stdout
    assert pixel == bytes([0xFA, 0xF0, 0xC8]), "not the test page's background colour"


def test_certificate_chain_recorded_is_the_servers(world: World, secure_page: Run) -> None:
    assert secure_page.done.returncode == 0, secure_page.done.stderr
    capture = secure_page.capture()
    record = _record(_folder(world, secure_page))
    assert capture["final_url"] == world.url("/arabic.html", secure=True)
    assert [r["status"] for r in record["redirects"]] == [301, 302]
    (tls,) = record["tls"]
    served = [_sha(der) for der in world.site.served_chain]
    assert [c["sha256"] for c in tls["probe"]["chain"]] == served
    assert [base64.b64decode(c["der_b64"]) for c in tls["probe"]["chain"]] == list(
        world.site.served_chain)
    assert tls["recorded_chains_sha256"] == [served] and tls["probe"]["verified"] is True
    assert record["trust_anchors_sha256"] == _sha(world.site.root_pem.read_bytes())
    summary = capture["capture"]["tls"][0]
    assert [c["sha256"] for c in summary["chain"]] == served
    assert summary["chain"][0]["subject"] == "CN=127.0.0.1"
    assert ARABIC.encode() in gzip.decompress(_warc(_folder(world, secure_page)))


# --- verify -------------------------------------------------------------------------------


def test_verify_passes_and_checks_every_capture(world: World, failures: Run) -> None:
    code, result = _verify(world, world.root)
    assert code == 0 and result["verified"], result["findings"]
    (check,) = [c for c in result["checks"] if c["name"] == "web captures"]
    events = [r for r in ledger_records(world.root) if r["signed"]["type"] == "event"]
    assert check["passed"] and check["covered"] == len(events) == 5


def _flip_in_member(wacz: Path, url: str) -> int:
    """Flip one byte in the middle of the gzip member that holds ``url``'s response."""
    with zipfile.ZipFile(wacz) as zf:
        info = zf.getinfo("archive/data.warc.gz")
        index = zf.read("indexes/index.cdx").decode()
    entry = next(json.loads(line.split(" ", 2)[2]) for line in index.splitlines()
                 if json.loads(line.split(" ", 2)[2])["url"] == url)
    data = bytearray(wacz.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:
                                                    info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + int(entry["offset"]) + int(entry["length"]) // 2] ^= 0x01
    wacz.write_bytes(bytes(data))
    return int(entry["offset"])


def test_a_changed_warc_byte_is_caught(world: World, main_page: Run) -> None:
    root = _copy_root(world, "flipped")
    folder = root / main_page.capture()["folder"]
    offset = _flip_in_member(folder / "archive.wacz", world.url("/img/photo.jpg"))
    code, result = _verify(world, root)
    assert code == 1 and not result["verified"]
    found = {(f["code"], f["item"]) for f in result["findings"]}
    rel = main_page.capture()["folder"]
    assert ("FILE_MODIFIED", f"{rel}/archive.wacz") in found
    archive = [f for f in result["findings"] if f["code"] == "CAPTURE_ARCHIVE_INVALID"]
    assert {f["item"] for f in archive} == {f"{rel}/archive.wacz:archive/data.warc.gz"}
    details = " ".join(f["message"] for f in archive)
    assert f"bad-warc: at byte {offset} of the WARC" in details
    assert world.url("/img/photo.jpg") in details, "the damaged record is named"
    assert "changed-warc" in details and "CRC-32" in details
    assert all(f["seq"] == main_page.capture()["event"] for f in archive)


def test_a_recatalogued_forgery_is_caught_by_the_signed_record(world: World,
                                                               main_page: Run) -> None:
    """The photo is changed inside the WARC, every listing outside it is redone, and the
    folder is catalogued again (new versions, validly signed): every current file matches
    its latest record, the replaced originals are missing (ORIGINAL_MISSING), and the
    capture check holds the folder to the capture record that was signed and says what
    changed inside the archive."""
    root = _copy_root(world, "forged")
    folder = root / main_page.capture()["folder"]
    wacz = folder / "archive.wacz"
    with zipfile.ZipFile(wacz) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    members = []
    raw = entries["archive/data.warc.gz"]
    while raw:  # one gzip member per record: change the photo's bytes in its own member
        inflate = __import__("zlib").decompressobj(16 + 15)
        plain = inflate.decompress(raw)
        raw = inflate.unused_data
        original = PHOTO.read_bytes()[1000:1200]
        if original in plain:
            plain = plain.replace(original, bytes([original[0] ^ 1]) + original[1:])
        members.append(gzip.compress(plain))
    warc = b"".join(members)
    entries["archive/data.warc.gz"] = warc
    package = json.loads(entries["datapackage.json"])
    for resource in package["resources"]:
        blob = entries[resource["path"]]
        resource["hash"], resource["bytes"] = f"sha256:{_sha(blob)}", len(blob)
    entries["datapackage.json"] = json.dumps(package).encode()
    entries["datapackage-digest.json"] = json.dumps(
        {"path": "datapackage.json", "hash": f"sha256:{_sha(entries['datapackage.json'])}"}
    ).encode()
    wacz.unlink()
    with zipfile.ZipFile(wacz, "w") as zf:
        for name, blob in entries.items():
            zf.writestr(name, blob)
    record = _record(folder)
    record["warc"]["sha256"] = _sha(warc)
    for entry in record["files"]:
        if entry["path"] == "archive.wacz":
            entry["sha256"], entry["bytes"] = _sha(wacz.read_bytes()), wacz.stat().st_size
    (folder / "capture.json").write_text(json.dumps(record), encoding="utf-8")
    recatalogued = world.custody("catalogue", folder, root=root)
    assert recatalogued.returncode == 1 and "CHANGED" in recatalogued.stderr
    code, result = _verify(world, root)
    assert code == 1
    checks = {c["name"]: c["passed"] for c in result["checks"]}
    assert not checks["web captures"]
    rel = main_page.capture()["folder"]
    files = {(f["code"], f["item"]) for f in result["findings"] if f["code"].startswith("FILE_")}
    assert not files, "every current file matches its latest (forged) record"
    missing = {f["item"] for f in result["findings"] if f["code"] == "ORIGINAL_MISSING"}
    assert missing == {f"{rel}/archive.wacz", f"{rel}/capture.json"}
    found = {(f["code"], f["message"].split(": ")[1]) for f in result["findings"]
             if f["code"].startswith("CAPTURE_")}
    assert ("CAPTURE_FOLDER_CHANGED", "record-differs") in found
    assert ("CAPTURE_FOLDER_CHANGED", "changed-file") in found
    assert ("CAPTURE_ARCHIVE_INVALID", "bad-warc-record") in found


def test_a_missing_file_is_reported_once(world: World, main_page: Run) -> None:
    root = _copy_root(world, "missing")
    rel = main_page.capture()["folder"]
    (root / rel / "screenshot.png").unlink()
    code, result = _verify(world, root)
    assert code == 1
    about = [f for f in result["findings"] if f["item"] == f"{rel}/screenshot.png"]
    assert [f["code"] for f in about] == ["FILE_MISSING"]


# --- reading it back: show, history, bundle, report ---------------------------------------


def test_show_and_history_say_what_was_captured(world: World, secure_page: Run) -> None:
    capture = secure_page.capture()
    shown = world.custody("show", str(capture["event"]))
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    record = _record(_folder(world, secure_page))
    for fact in (capture["url"], capture["final_url"], "server 127.0.0.1",
                 "insecure no", "CN=127.0.0.1", "CN=Test Intermediate",
                 *(c["sha256"] for c in record["tls"][0]["probe"]["chain"]),
                 *(m["error"] for m in record["media_misses"])):
        assert fact in text, fact
    as_json = world.custody("show", str(capture["event"]), "--json")
    jsonschema.validate(json.loads(as_json.stdout), schema("cli-show.schema.json"),
                        cls=jsonschema.Draft202012Validator)
    history = world.custody("history", f"{capture['folder']}/screenshot.png", "--json")
    document = json.loads(history.stdout)
    jsonschema.validate(document, schema("cli-history.schema.json"),
                        cls=jsonschema.Draft202012Validator)
    (entry,) = [e for e in document["entries"] if e["kind"] == "capture"]
    assert entry["seq"] == capture["event"] and capture["url"] in entry["summary"]
    assert entry["detail"]["capture"]["tls"][0]["chain"][0]["subject"] == "CN=127.0.0.1"


def test_media_and_their_warc_records_are_shown(world: World, main_page: Run) -> None:
    capture = main_page.capture()
    text = " ".join(world.custody("show", str(capture["event"])).stdout.split())
    for media in capture["capture"]["media"]:
        assert media["path"] in text and media["sha256"] in text
        assert all(i in text for i in media["warc_record_ids"])


def test_capture_record_travels_in_a_bundle_and_its_report(world: World,
                                                           secure_page: Run) -> None:
    capture = secure_page.capture()
    out = world.base / "bundle"
    exported = world.custody("export", capture["folder"], "--out", out)
    assert exported.returncode == 0, exported.stderr
    line = next(line for line in (world.root / ".custody" / "ledger.jsonl").read_bytes()
                .split(b"\n") if b'"seq":%d,' % capture["event"] in line)
    lines = (out / "custody" / "records.jsonl").read_bytes().split(b"\n")
    assert line in lines, "the capture record, byte for byte"
    document = json.loads(line)
    pem = out / "custody" / "keys" / f"{document['signed']['signer']}.pem"
    (world.base / "msg.bin").write_bytes(signed_part(line))
    (world.base / "sig.bin").write_bytes(base64.b64decode(document["sig"]))
    checked = subprocess.run([OPENSSL, "pkeyutl", "-verify", "-pubin", "-inkey", str(pem),
                              "-rawin", "-in", str(world.base / "msg.bin"), "-sigfile",
                              str(world.base / "sig.bin")],
                             capture_output=True, text=True, timeout=30)
    assert "Signature Verified Successfully" in checked.stdout
    verified = world.custody("verify", out, "--json", rooted=False)
    assert verified.returncode == 0 and json.loads(verified.stdout)["verified"]
    assert "inclusion proofs" in {c["name"] for c in json.loads(verified.stdout)["checks"]}
    report = world.base / "report.html"
    made = world.custody("report", out, "--out", report, rooted=False)
    assert made.returncode == 0, made.stderr
    page = report.read_text(encoding="utf-8")
    assert "Web captures" in page and f"Capture record {capture['event']}" in page
    for fact in (capture["final_url"], "CN=Test Intermediate",
                 _sha(world.site.served_chain[1])):
        assert fact in page, fact


# --- failures -----------------------------------------------------------------------------


def test_failures_are_said_plainly_and_recorded(world: World, failures: Run) -> None:
    done = failures.done
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    gone, refused, hung = (failures.capture(n) for n in range(3))
    assert gone["outcome"] == "network-error" and "refused" in gone["error"]
    assert refused["outcome"] == "refused-tls" and "--insecure" in refused["error"]
    for failed in (gone, refused):
        assert not failed["captured"] and failed["event"] is not None
        assert [i["role"] for i in failed["items"]] == ["record"]
        body = _event(world.root, failed["event"])["signed"]["body"]
        assert body["capture"]["outcome"] == failed["outcome"]
        assert body["capture"]["error"] == failed["error"] and body["capture"]["files"] == []
    chain = _record(world.root / refused["folder"])["tls"][0]["probe"]["chain"]
    assert [c["sha256"] for c in chain] == [_sha(d) for d in world.site.served_chain]
    assert hung["outcome"] == "timed-out" and hung["captured"] and hung["event"] is not None
    assert hung["seconds"] < 8 + 12
    assert any("did not finish loading" in n for n in hung["capture"]["notes"])


def test_insecure_is_recorded_and_a_pending_timestamp_exits_7(world: World,
                                                              failures: Run) -> None:
    root = _new_root(world.base, world.home, "offline", "http://127.0.0.1:9/tsa")
    urls = world.base / "urls.txt"
    urls.write_text(f"# the refused page again\n\n{world.url('/arabic.html', secure=True)}\n",
                    encoding="utf-8")
    done = world.custody("capture", "--from-file", urls, "--insecure", "--timeout", "40",
                         "--json", root=root)
    assert done.returncode == 7, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, CAPTURE_SCHEMA, cls=jsonschema.Draft202012Validator)
    (capture,) = document["captures"]
    assert capture["outcome"] == "complete" and capture["insecure"] is True
    assert document["timestamp"]["stamped"] is False
    body = _event(root, capture["event"])["signed"]["body"]
    assert body["capture"]["insecure"] is True
    assert body["capture"]["tls"][0]["probe"]["verified"] is False
    assert any("insecure" in n for n in body["capture"]["notes"])
    text = world.custody("show", str(capture["event"]), root=root).stdout
    assert "YES: the server's certificate was not required to verify" in text


@pytest.mark.parametrize(
    "args",
    [
        ["ftp://example.org/x"],
        ["http://user:pw@127.0.0.1:1/"],
        ["http://127.0.0.1:1/", "--timeout", "0"],
        ["http://127.0.0.1:1/", "--into", "../outside"],
        ["http://127.0.0.1:1/", "--into", ".custody/x"],
        ["http://127.0.0.1:1/", "--user-agent", "two\nlines"],
        [],
    ],
    ids=["ftp", "credentials", "timeout", "into-outside", "into-state", "user-agent", "none"],
)
def test_bad_arguments_are_refused_before_anything_is_written(world: World,
                                                              args: list[str]) -> None:
    before = (world.root / ".custody" / "ledger.jsonl").read_bytes()
    folders = sorted((world.root / "captures").iterdir())
    done = world.custody("capture", *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("custody: error:")
    assert (world.root / ".custody" / "ledger.jsonl").read_bytes() == before
    assert sorted((world.root / "captures").iterdir()) == folders


# --- the ledger's own rules, without a browser --------------------------------------------


def test_a_capture_event_must_name_exactly_its_files(world: World, main_page: Run) -> None:
    body = _event(world.root, main_page.capture()["event"])["signed"]["body"]
    EventBody.from_json(body)  # as recorded: well-formed

    def refused(changed: dict[str, Any], words: str) -> None:
        with pytest.raises(RecordError, match=words):
            EventBody.from_json(changed)

    wrong = json.loads(json.dumps(body))
    wrong["items"][0]["sha256"] = "0" * 64
    refused(wrong, "another sha256")
    fewer = json.loads(json.dumps(body))
    fewer["items"] = [i for i in fewer["items"] if not i["path"].endswith("page.pdf")]
    refused(fewer, "not the files it lists")
    newer = json.loads(json.dumps(body))
    newer["capture"]["format"] = "custody-web-capture/2"
    refused(newer, "upgrade custody")
    extra = json.loads(json.dumps(body))
    extra["capture"]["surprise"] = 1
    refused(extra, "unknown field")
    outside = json.loads(json.dumps(body))
    outside["folder"] = "../elsewhere"
    refused(outside, "plain relative path")
    note = {"action": "note", "items": body["items"][:1], "text": "x", "capture": body["capture"]}
    refused(note, "only a capture event")
    for changed in (newer, extra, outside):
        line = {"sig": "A" * 86 + "==", "signed": {
            "v": 1, "seq": 5, "type": "event", "time": "2026-12-05T10:00:00.000000Z",
            "signer": "0" * 64, "prev": "0" * 64, "body": changed}}
        assert not jsonschema.Draft202012Validator(RECORD_SCHEMA).is_valid(line)


def test_hostile_url_files_and_linked_folders_are_refused(world: World, tmp_path: Path) -> None:
    before = (world.root / ".custody" / "ledger.jsonl").read_bytes()
    binary = tmp_path / "urls.bin"
    binary.write_bytes(b"http://127.0.0.1:1/\xff\xfe\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (world.root / "linked").symlink_to(elsewhere, target_is_directory=True)
    try:
        cases = [
            (["--from-file", str(binary)], "not UTF-8"),
            (["--from-file", str(tmp_path / "absent.txt")], "cannot read"),
            (["http://127.0.0.1:1/", "--into", "linked"], "symbolic links are not followed"),
            (["http://127.0.0.1:1/", "--into", "linked/deeper"], "symbolic links"),
        ]
        for args, words in cases:
            done = world.custody("capture", *args)
            assert done.returncode == 2, (args, done.stderr)
            assert words in done.stderr and "Traceback" not in done.stderr
    finally:
        (world.root / "linked").unlink()
    assert not any(elsewhere.iterdir())
    assert (world.root / ".custody" / "ledger.jsonl").read_bytes() == before


def test_a_capture_folder_swapped_for_a_link_is_not_followed(world: World,
                                                             main_page: Run) -> None:
    root = _copy_root(world, "linked-folder")
    rel = main_page.capture()["folder"]
    moved = world.base / "moved-capture"
    (root / rel).rename(moved)  # the very same files, now outside the root
    (root / rel).symlink_to(moved, target_is_directory=True)
    code, result = _verify(world, root)
    assert code == 1
    (finding,) = [f for f in result["findings"] if f["code"] == "CAPTURE_FOLDER_CHANGED"]
    assert finding["item"] == rel and "not followed" in finding["message"]
    assert not [f for f in result["findings"] if f["code"] == "CAPTURE_ARCHIVE_INVALID"]


def test_the_capture_summary_is_described_once() -> None:
    """Schemas are self-contained: the copies of the capture summary must not drift."""
    summary = schema("cli-capture.schema.json")["$defs"]["capture_summary"]
    assert schema("cli-show.schema.json")["$defs"]["capture_summary"] == summary
    assert schema("cli-history.schema.json")["$defs"]["capture_summary"] == summary


def test_long_values_wrap_at_words_and_never_break_a_word() -> None:
    """A user agent wraps under its label within 80 columns; a URL or digest stays whole."""
    from custody.cli.capture import print_rows
    from custody.cli.common import out

    agent = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "HeadlessChrome/156.0.0.0 Safari/537.36")
    url = "https://example.org/" + "a" * 90
    with out.capture() as captured:
        print_rows([("user agent", agent), ("final URL", url), ("error", "a\nb [red]c[/]")])
    lines = captured.get().splitlines()
    assert lines[0] == "  user agent"
    assert len(lines[1]) <= 80 and len(lines[2]) <= 80 and lines[3] == "  final URL"
    assert " ".join(line.strip() for line in lines[1:3]) == agent
    assert lines[4] == "      " + url
    assert "[red]c[/]" in lines[5] and len(lines) == 6  # no markup run, no line break injected
