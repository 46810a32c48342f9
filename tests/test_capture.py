"""Web capture against real loopback servers, real Chromium, real yt-dlp, real checkers.

A local HTTP server and an HTTPS server (a throw-away root CA -> intermediate -> leaf for
127.0.0.1, made here with ``cryptography``) serve pages with text, an image, an HTML5
``<video>`` (the real sample ``VID_20201023_202729.mp4``), a chunked script, a redirect
chain from HTTP to HTTPS, a page that fetches a video by script in two Range requests, an
Arabic page, a page that hangs and a 404. Trust in the test root reaches the capture only
as ``trust_anchors`` (a CA file the caller gives); Chromium itself never sees the test CA,
it trusts only the capture's own proxy key (see ``tls.py``).

Independent checks: ``wacz validate -f`` (py-wacz), ``warcio check`` (block digests of
every record; payload digests of all but the chunked responses, which warcio digests with
their chunk framing, webrecorder/warcio issue 74, while the capture follows WARC 1.1's
entity-body: those are recomputed here by a separate dechunker), pywb's
WarcServer (the replay back-end of pywb) reading the WACZ's own CDXJ index and WARC,
``cdxj-indexer`` over the WARC, ``ffprobe``/``ffmpeg`` decoding the screenshot,
``pdftotext`` reading the PDF, the servers' own access logs and file digests. pywb's
full ``wayback`` front end is not started: it imports pyOpenSSL, whose release in this
environment does not load with the project's cryptography (``lib.GEN_EMAIL`` missing).

Each scenario runs Chromium once (module-scoped fixtures); after each, no process may still
name the capture's output folder on its command line.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from warcio.archiveiterator import ArchiveIterator

from custody.acquisition.capture import (
    CaptureNetworkError,
    CaptureResult,
    CaptureTLSError,
    CaptureUsageError,
    capture_url,
)
from custody.acquisition.capture.browser import leftover_processes
from custody.acquisition.capture.check import check_capture
from custody.acquisition.capture.proxy import CAPTURE_ENDED, TIME_LIMIT
from custody.ledger.canonical import decode, encode

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "field-dump"
VIDEO = SAMPLES / "field-dump-01" / "DCIM" / "Camera" / "VID_20201023_202729.mp4"
MOV = SAMPLES / "field-dump-02" / "DCIM" / "100APPLE" / "IMG_0412.MOV"
PHOTO = SAMPLES / "field-dump-01" / "DCIM" / "Camera" / "20160912_100531.jpg"
BIN = Path(sys.executable).parent
ARABIC = "شهادة من حلب: قصف السوق في الصباح الباكر"

pytestmark = [
    pytest.mark.skipif(not Path("/usr/bin/chromium").is_file(), reason="needs Debian chromium"),
    pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffmpeg/ffprobe"),
]


# --- the servers -------------------------------------------------------------------------


@dataclass
class Site:
    http_port: int = 0
    https_port: int = 0
    # (scheme, method, path, status) of every response the servers finished sending
    log: list[tuple[str, str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    served_chain: tuple[bytes, ...] = ()
    root_pem: Path = Path()
    env_leaks: list[str] = field(default_factory=list)
    marker: str = ""

    def entries(self, start: int) -> list[tuple[str, str, str, int]]:
        with self.lock:
            return list(self.log[start:])

    def mark(self) -> int:
        with self.lock:
            return len(self.log)


def _pages(site: Site) -> dict[str, tuple[int, str, bytes, dict[str, str]]]:
    html = (
        b"<!doctype html><html><head><meta charset='utf-8'><title>Witness page</title>"
        b"<link rel='stylesheet' href='/style.css'></head><body>"
        b"<h1>Witness statement 7</h1><p id='js'>script not run</p>"
        b"<img src='/img/photo.jpg' width='400' alt='photo'>"
        b"<video src='/media/clip.mp4' controls preload='auto' width='320'></video>"
        b"<script src='/app.js'></script><script src='/truncated_body.js'></script>"
        b"<link rel='stylesheet' href='/corrupt_gzip.css'>"
        b"<script src='/bad_chunks.js'></script></body></html>"
    )
    script_media = (
        b"<!doctype html><html><head><meta charset='utf-8'><title>Scripted video</title></head>"
        b"<body><p id='s'>loading</p><script>"
        b"async function go(){"
        b"const a=await fetch('/media/late.mp4',{headers:{Range:'bytes=0-499999'}});"
        b"const b1=await a.arrayBuffer();"
        b"const b=await fetch('/media/late.mp4',{headers:{Range:'bytes=500000-'}});"
        b"const b2=await b.arrayBuffer();"
        b"const v=document.createElement('video');v.muted=true;"
        b"v.src=URL.createObjectURL(new Blob([b1,b2],{type:'video/mp4'}));"
        b"document.body.appendChild(v);"
        b"document.getElementById('s').textContent='loaded '+(b1.byteLength+b2.byteLength);"
        b"await fetch('/media/partial.mov',{headers:{Range:'bytes=0-99999'}});}"
        b"go();</script></body></html>"
    )
    arabic = (
        "<!doctype html><html lang='ar' dir='rtl'><head><meta charset='utf-8'>"
        f"<title>شهادة</title></head><body><h1>{ARABIC}</h1></body></html>"
    ).encode()
    return {
        "/index.html": (200, "text/html; charset=utf-8", html, {}),
        "/style.css": (200, "text/css", b"body{background:#faf0c8;font-family:sans-serif}", {}),
        "/img/photo.jpg": (200, "image/jpeg", PHOTO.read_bytes(), {}),
        "/app.js": (200, "application/javascript",
                    b"document.getElementById('js').textContent='script ran';", {"chunked": "1"}),
        "/media/clip.mp4": (200, "video/mp4", VIDEO.read_bytes(), {"ranges": "1"}),
        "/media/late.mp4": (200, "video/mp4", VIDEO.read_bytes(), {"ranges": "1"}),
        "/media/partial.mov": (200, "video/quicktime", MOV.read_bytes(), {"ranges": "1"}),
        "/script-media.html": (200, "text/html; charset=utf-8", script_media, {}),
        "/arabic.html": (200, "text/html; charset=utf-8", arabic, {}),
        "/hang.html": (200, "text/html", b"<html><title>hangs</title><body>waiting"
                       b"<img src='/hang-forever'></body></html>", {}),
        "/go-secure": (301, "text/plain", b"moved",
                       {"Location": f"https://127.0.0.1:{site.https_port}/r2"}),
        "/r2": (302, "text/plain", b"moved again", {"Location": "/arabic.html"}),
    }


def _handler(site: Site, scheme: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def _log(self, status: int) -> None:
            with site.lock:
                site.log.append((scheme, self.command, self.path, status))

        def do_GET(self) -> None:
            pages = _pages(site)
            path = self.path.split("?", 1)[0]
            if path == "/index.html" and site.marker:
                _check_env(site)
            if path == "/hang-forever":
                site.release.wait(60)
                return
            if path == "/truncated_body.js":  # promises 1000 bytes, sends 10, hangs up
                self.send_response(200)
                self.send_header("Content-Type", "application/javascript")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"var x = 1;")
                self.close_connection = True
                self._log(200)
                return
            if path == "/bad_chunks.js":  # a chunk-size line that is not hexadecimal
                self.send_response(200)
                self.send_header("Content-Type", "application/javascript")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"5\r\nvar y\r\nzz; not hex\r\nrest of it\r\n0\r\n\r\n")
                self.close_connection = True
                self._log(200)
                return
            if path == "/corrupt_gzip.css":  # claims gzip, is not
                body = b"\x1f\x8b\x08\x00" + b"not really gzip at all" * 10
                self.send_response(200)
                self.send_header("Content-Type", "text/css")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self._log(200)
                return
            if path not in pages:
                body = b"<html><body>not here</body></html>"
                self.send_response(404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self._log(404)
                return
            status, ctype, body, extra = pages[path]
            if "Location" in extra:
                self.send_response(status)
                self.send_header("Location", extra["Location"])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self._log(status)
                return
            if extra.get("chunked"):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in (body[:20], body[20:]):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
                self._log(200)
                return
            wanted = self.headers.get("Range")
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted or "")
            if extra.get("ranges") and match:
                first = int(match.group(1))
                last = int(match.group(2)) if match.group(2) else len(body) - 1
                last = min(last, len(body) - 1)
                part = body[first:last + 1]
                self.send_response(206)
                self.send_header("Content-Type", ctype)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Range", f"bytes {first}-{last}/{len(body)}")
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                try:
                    self.wfile.write(part)
                finally:
                    self._log(206)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            if extra.get("ranges"):
                self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            finally:
                self._log(200)

    return Handler


def _check_env(site: Site) -> None:
    """While Chromium fetches the page: none of the capture's processes has our secret."""
    for pid in leftover_processes(site.marker):
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if b"CUSTODY_PASSPHRASE" in environ or b"not-for-children" in environ:
            site.env_leaks.append(str(pid))
    with site.lock:
        site.log.append(("check", "ENV", str(len(leftover_processes(site.marker))), 0))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _make_pki(folder: Path) -> tuple[Path, Path, Path, tuple[bytes, ...]]:
    """Root CA -> intermediate CA -> leaf for 127.0.0.1; returns root, chain, key, chain DER."""
    now = datetime.now(UTC)
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))

    def cert(subject: str, issuer: str, key: Any, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
        else:
            import ipaddress

            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    root = cert("Test Root", "Test Root", root_key, root_key, True)
    inter = cert("Test Intermediate", "Test Root", inter_key, root_key, True)
    leaf = cert("127.0.0.1", "Test Intermediate", leaf_key, inter_key, False)
    pem = serialization.Encoding.PEM
    root_file, chain_file, key_file = folder / "root.pem", folder / "chain.pem", folder / "key.pem"
    root_file.write_bytes(root.public_bytes(pem))
    chain_file.write_bytes(leaf.public_bytes(pem) + inter.public_bytes(pem))
    key_file.write_bytes(leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    der = serialization.Encoding.DER
    return root_file, chain_file, key_file, (leaf.public_bytes(der), inter.public_bytes(der))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    pki = tmp_path_factory.mktemp("pki")
    root, chain, key, chain_der = _make_pki(pki)
    state = Site(served_chain=chain_der, root_pem=root)
    plain = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, "http"))
    secure = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, "https"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key)
    secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
    plain.daemon_threads = secure.daemon_threads = True
    state.http_port, state.https_port = plain.server_port, secure.server_port
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (plain, secure)]
    for t in threads:
        t.start()
    yield state
    state.release.set()
    for s in (plain, secure):
        s.shutdown()
        s.server_close()


@dataclass
class Capture:
    result: CaptureResult
    out: Path
    log: list[tuple[str, str, str, int]]
    seconds: float
    leftovers: list[int]


def _capture(site: Site, url: str, out: Path, **kwargs: Any) -> Capture:
    start = site.mark()
    began = time.monotonic()
    result = capture_url(url, out, **kwargs)
    seconds = time.monotonic() - began
    return Capture(result, out, site.entries(start), seconds, leftover_processes(str(out)))


@pytest.fixture(scope="module")
def main_page(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capture]:
    out = tmp_path_factory.mktemp("main") / "capture"
    site.marker = str(out)
    os.environ["CUSTODY_PASSPHRASE"] = "not-for-children"
    try:
        yield _capture(site, f"http://127.0.0.1:{site.http_port}/index.html", out, timeout_s=45)
    finally:
        os.environ.pop("CUSTODY_PASSPHRASE", None)
        site.marker = ""


@pytest.fixture(scope="module")
def secure_page(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Capture:
    out = tmp_path_factory.mktemp("secure") / "capture"
    return _capture(site, f"http://127.0.0.1:{site.http_port}/go-secure", out, timeout_s=45,
                    trust_anchors=site.root_pem)


@pytest.fixture(scope="module")
def script_page(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Capture:
    out = tmp_path_factory.mktemp("script") / "capture"
    return _capture(site, f"http://127.0.0.1:{site.http_port}/script-media.html", out,
                    timeout_s=45)


# --- helpers -----------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _warc_bytes(out: Path) -> bytes:
    with zipfile.ZipFile(out / "archive.wacz") as zf:
        return zf.read("archive/data.warc.gz")


def _responses(out: Path) -> list[tuple[str, int, dict[str, str], bytes, bytes]]:
    """(url, status, headers, raw block after the head, decoded payload) of each response."""
    found = []
    for record in ArchiveIterator(io.BytesIO(_warc_bytes(out))):
        if record.rec_type != "response":
            continue
        headers = {k.lower(): v for k, v in record.http_headers.headers}
        payload = record.content_stream().read()
        found.append((record.rec_headers.get_header("WARC-Target-URI"),
                      int(record.http_headers.get_statuscode()), headers,
                      record.http_headers.headers_buff or b"", payload))
    return found


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, **kwargs)


def _one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text


# --- the main page ------------------------------------------------------------------------


def test_main_page_is_captured_completely(main_page: Capture, site: Site) -> None:
    r = main_page.result
    assert r.outcome == "complete", r.to_record()
    assert r.http_status == 200 and r.final_url and r.final_url.endswith("/index.html")
    assert r.title == "Witness page"
    assert r.main_document is not None
    assert r.main_document.server_ip == "127.0.0.1"
    assert r.main_document.server_port == site.http_port
    assert ("Content-Type", "text/html; charset=utf-8") in r.main_document.headers
    assert r.main_document.status_line == "HTTP/1.1 200 OK"
    tools = dict(r.tools)
    assert tools["chromium"].startswith("Chrome/") and tools["yt-dlp"] != "not installed"
    assert r.started_at < r.ended_at <= r.packaged_at
    assert main_page.leftovers == [], "Chromium or its helpers outlived the capture"
    assert not site.env_leaks, "a capture child process inherited the caller's secret"
    assert any(e[0] == "check" and int(e[2]) > 0 for e in main_page.log), \
        "the environment check did not see the capture's processes"


def test_wacz_passes_py_wacz_validation(main_page: Capture) -> None:
    done = _run([str(BIN / "wacz"), "validate", "-f", str(main_page.out / "archive.wacz")])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the passed WACZ is valid" in done.stdout
    with zipfile.ZipFile(main_page.out / "archive.wacz") as zf:
        package = json.loads(zf.read("datapackage.json"))
        assert package["wacz_version"] == "1.1.1"
        assert zf.getinfo("archive/data.warc.gz").compress_type == zipfile.ZIP_STORED
        pages = zf.read("pages/pages.jsonl").decode().splitlines()
        assert json.loads(pages[0])["format"] == "json-pages-1.0"
        assert json.loads(pages[1])["url"] == main_page.result.final_url


def test_warc_digests_check_with_warcio(main_page: Capture, tmp_path: Path) -> None:
    warc = tmp_path / "data.warc.gz"
    warc.write_bytes(_warc_bytes(main_page.out))
    done = _run([str(BIN / "warcio"), "check", "-v", str(warc)])
    assert "digest pass" in done.stdout
    # warcio digests chunked bodies with their framing (webrecorder/warcio issue 74); the
    # capture follows WARC 1.1's entity-body. So warcio must flag exactly the two chunked
    # responses, only their payload digests, and nothing else.
    flagged: dict[str, list[str]] = {}
    current = ""
    for line in done.stdout.splitlines():
        if "WARC-Record-ID" in line:
            current = line.split("WARC-Record-ID", 1)[1].split()[0]
        elif "fail" in line:
            flagged.setdefault(current, []).append(line.strip())
    uris = {r.rec_headers.get_header("WARC-Record-ID"): r.rec_headers.get_header("WARC-Target-URI")
            for r in ArchiveIterator(io.BytesIO(warc.read_bytes()))}
    assert sorted(uris[i].rsplit("/", 1)[-1] for i in flagged) == ["app.js", "bad_chunks.js"]
    assert all(p.startswith("payload digest failed") for ps in flagged.values() for p in ps)
    assert _sha(warc.read_bytes()) == main_page.result.warc_sha256
    types = Counter(r.rec_type for r in ArchiveIterator(io.BytesIO(warc.read_bytes())))
    assert types["warcinfo"] == 1 and types["request"] >= types["response"] > 0
    assert types["metadata"] >= types["response"]
    for record in ArchiveIterator(io.BytesIO(warc.read_bytes())):
        headers = record.rec_headers
        assert headers.protocol == "WARC/1.1"
        if record.rec_type in ("request", "response"):
            assert headers.get_header("WARC-Target-URI") and headers.get_header("WARC-Date")
            assert headers.get_header("WARC-IP-Address") == "127.0.0.1"
            assert headers.get_header("WARC-Payload-Digest").startswith("sha256:")


def _dechunk(body: bytes) -> bytes:
    """The entity-body of a chunked message, up to the first malformed chunk line."""
    out, rest = b"", body
    while True:
        line, sep, rest = rest.partition(b"\r\n")
        if not sep or not re.fullmatch(rb"[0-9a-fA-F]+", line.split(b";")[0].strip()):
            return out
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return out
        out, rest = out + rest[:size], rest[size + 2:]


def test_payload_digests_are_over_the_entity_body(main_page: Capture) -> None:
    """Independent of warcio's digesting: SHA-256 of each body, dechunked here."""
    checked = 0
    for record in ArchiveIterator(io.BytesIO(_warc_bytes(main_page.out))):
        if record.rec_type != "response":
            continue
        body = record.raw_stream.read()
        chunked = record.http_headers.get_header("Transfer-Encoding") == "chunked"
        entity = _dechunk(body) if chunked else body
        label, value = record.rec_headers.get_header("WARC-Payload-Digest").split(":", 1)
        assert label == "sha256"
        assert base64.b32decode(value) == hashlib.sha256(entity).digest(), \
            record.rec_headers.get_header("WARC-Target-URI")
        checked += 1
    assert checked >= 8


def test_every_resource_the_server_served_is_in_the_warc(main_page: Capture, site: Site) -> None:
    served = Counter(
        (f"http://127.0.0.1:{site.http_port}{path}", status)
        for scheme, _m, path, status in main_page.log if scheme == "http"
    )
    recorded = Counter((url, status) for url, status, *_ in _responses(main_page.out))
    missing = served - recorded
    assert not missing, f"served but not in the WARC: {missing}"
    paths = {p for _s, _m, p, _st in main_page.log}
    assert {"/index.html", "/style.css", "/img/photo.jpg", "/app.js", "/media/clip.mp4",
            "/truncated_body.js", "/corrupt_gzip.css", "/bad_chunks.js"} <= paths


def test_hostile_responses_are_kept_and_marked(main_page: Capture) -> None:
    truncated = dict(main_page.result.exchanges.truncated)
    url = main_page.result.final_url or ""
    assert truncated[url.replace("/index.html", "/truncated_body.js")] == "disconnect"
    marks = {rec.rec_headers.get_header("WARC-Target-URI"):
             rec.rec_headers.get_header("WARC-Truncated")
             for rec in ArchiveIterator(io.BytesIO(_warc_bytes(main_page.out)))
             if rec.rec_type == "response"}
    assert marks[url.replace("/index.html", "/truncated_body.js")] == "disconnect"
    assert marks[url.replace("/index.html", "/corrupt_gzip.css")] is None
    assert marks[url.replace("/index.html", "/bad_chunks.js")] == "unspecified"
    assert truncated[url.replace("/index.html", "/bad_chunks.js")] == "unspecified"
    raw = gzip.decompress(_warc_bytes(main_page.out))
    assert b"\x1f\x8b\x08\x00not really gzip at all" in raw


def test_bytes_are_recorded_as_sent(main_page: Capture, site: Site) -> None:
    responses = {url.rsplit("/", 1)[-1]: (st, h, head, body)
                 for url, st, h, head, body in _responses(main_page.out)}
    _st, headers, _head, body = responses["app.js"]
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"document.getElementById('js').textContent='script ran';"
    assert _sha(responses["photo.jpg"][3]) == _sha(PHOTO.read_bytes())
    # The raw block keeps the chunk framing: the WARC holds the wire bytes, not a re-encoding.
    raw = gzip.decompress(_warc_bytes(main_page.out))
    assert re.search(rb"\r\n\r\nHTTP/1\.1 200 OK\r\nServer: [^\r]+\r\nDate: [^\r]+\r\n"
                     rb"Content-Type: application/javascript\r\nTransfer-Encoding: chunked\r\n"
                     rb"\r\n14\r\ndocument\.getElementB\r\n23\r\nyId\('js'\)", raw)


def test_video_downloaded_whole_and_linked_to_the_warc(main_page: Capture) -> None:
    r = main_page.result
    want = _sha(VIDEO.read_bytes())
    videos = [m for m in r.media if m.sha256 == want]
    assert videos, r.to_record()["media"]
    video = videos[0]
    assert video.source == "yt-dlp" and video.match == "payload"
    assert video.warc_record_ids and any(u.endswith("/media/clip.mp4") for u in video.urls)
    assert _sha((main_page.out / video.path).read_bytes()) == want
    assert video.info_json and (main_page.out / video.info_json).is_file()
    ids = {rec.rec_headers.get_header("WARC-Record-ID")
           for rec in ArchiveIterator(io.BytesIO(_warc_bytes(main_page.out)))}
    assert set(video.warc_record_ids) <= ids


def test_screenshot_is_a_png_of_the_page(main_page: Capture) -> None:
    shot = main_page.out / "screenshot.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    probe = _run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height,codec_name",
                  "-of", "json", str(shot)])
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "png" and stream["width"] == 1280 and stream["height"] >= 800
    pixel = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(shot), "-vf", "crop=1:1:1200:5", "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"], capture_output=True, timeout=60, check=True,
    ).stdout
    assert pixel == bytes([0xFA, 0xF0, 0xC8]), "not the test page's background colour"
    assert main_page.result.file("screenshot") is not None


def test_pdf_prints_the_page_text(main_page: Capture) -> None:
    pdf = main_page.out / "page.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = _run(["pdftotext", str(pdf), "-"]).stdout
    assert "Witness statement 7" in text and "script ran" in text


def test_record_lists_every_file_with_its_digest(main_page: Capture) -> None:
    record = json.loads((main_page.out / "capture.json").read_text(encoding="utf-8"))
    assert record == json.loads(json.dumps(main_page.result.to_record()))
    assert record["format"] == "custody-web-capture/1"
    assert decode(encode(record)) == record, "the record must go into the ledger unchanged"
    listed = {f["path"]: f for f in record["files"]}
    on_disk = {str(p.relative_to(main_page.out)) for p in main_page.out.rglob("*") if p.is_file()}
    assert on_disk == set(listed) | {"capture.json"}
    for path, entry in listed.items():
        data = (main_page.out / path).read_bytes()
        assert entry["sha256"] == _sha(data) and entry["bytes"] == len(data)
    assert not (main_page.out / ".work").exists()


def test_pywb_replays_from_the_wacz_index(main_page: Capture, tmp_path: Path) -> None:
    from wsgiref.util import setup_testing_defaults

    # pywb is not a project dependency: its pyOpenSSL pin conflicts with our cryptography.
    warcserver = pytest.importorskip("pywb.warcserver.warcserver",
                                     reason="pywb is not installed (pip install pywb)")
    with zipfile.ZipFile(main_page.out / "archive.wacz") as zf:
        (tmp_path / "archive").mkdir()
        (tmp_path / "indexes").mkdir()
        (tmp_path / "archive" / "data.warc.gz").write_bytes(zf.read("archive/data.warc.gz"))
        (tmp_path / "indexes" / "index.cdxj").write_bytes(zf.read("indexes/index.cdx"))
    app = warcserver.WarcServer(config_file=None, custom_config={"collections": {"c": {
        "index_paths": str(tmp_path / "indexes") + "/",
        "archive_paths": str(tmp_path / "archive") + "/"}}})
    url = main_page.result.final_url
    assert url
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = "/c/resource"
    environ["QUERY_STRING"] = f"url={url}"
    status: list[str] = []
    body = b"".join(app(environ, lambda s, _h, _e=None: status.append(s)))
    assert status == ["200 OK"]
    record = next(ArchiveIterator(io.BytesIO(body)))
    assert record.rec_headers.get_header("WARC-Target-URI") == url
    assert b"Witness statement 7" in record.content_stream().read()


def test_cdxj_indexer_reads_the_warc(main_page: Capture, tmp_path: Path) -> None:
    warc = tmp_path / "data.warc.gz"
    warc.write_bytes(_warc_bytes(main_page.out))
    listed = _run([str(BIN / "cdxj-indexer"), str(warc)])
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line.split(" ", 2)[2]) for line in listed.stdout.splitlines()]
    urls = {entry["url"] for entry in lines}
    assert main_page.result.final_url in urls
    with zipfile.ZipFile(main_page.out / "archive.wacz") as zf:
        assert zf.read("indexes/index.cdx").decode().count("\n") == len(lines)


# --- HTTPS, redirects, Arabic ------------------------------------------------------------


def test_redirects_and_tls_chain_recorded(secure_page: Capture, site: Site) -> None:
    r = secure_page.result
    assert r.outcome == "complete", r.to_record()
    start = f"http://127.0.0.1:{site.http_port}/go-secure"
    r2 = f"https://127.0.0.1:{site.https_port}/r2"
    assert [(x.url, x.status, x.location) for x in r.redirects] == [
        (start, 301, r2), (r2, 302, "/arabic.html")]
    assert r.final_url == f"https://127.0.0.1:{site.https_port}/arabic.html"
    assert r.main_document and r.main_document.server_port == site.https_port
    (tls,) = r.tls
    assert (tls.host, tls.port) == ("127.0.0.1", site.https_port)
    assert tls.probe is not None and tls.probe.verified
    assert tuple(c.der for c in tls.probe.chain) == site.served_chain
    assert tls.recorded_chains_sha256 == (tuple(_sha(d) for d in site.served_chain),)
    assert tls.probe_matches_recording is True
    assert tls.browser_saw_capture_proxy is True
    assert tls.browser_chain_sha256 and tls.browser_chain_sha256[0] != _sha(site.served_chain[0])
    assert secure_page.leftovers == []


def test_arabic_text_is_in_the_warc(secure_page: Capture) -> None:
    bodies = {url: body for url, _s, _h, _raw, body in _responses(secure_page.out)}
    page = bodies[secure_page.result.final_url or ""]
    assert ARABIC.encode("utf-8") in page
    assert secure_page.result.title == "شهادة"
    record = json.loads((secure_page.out / "capture.json").read_text(encoding="utf-8"))
    assert record["title"] == "شهادة"


# --- media fetched by script -------------------------------------------------------------


def test_range_fetched_video_is_reassembled(script_page: Capture) -> None:
    r = script_page.result
    want = _sha(VIDEO.read_bytes())
    joined = [m for m in r.media if m.source == "browser-ranges"]
    assert joined, r.to_record()["media"]
    assert joined[0].sha256 == want and joined[0].match == "ranges"
    assert len(joined[0].warc_record_ids) == 2
    assert _sha((script_page.out / joined[0].path).read_bytes()) == want
    ranges = [e for e in script_page.log if e[2] == "/media/late.mp4"]
    assert [e[3] for e in ranges] == [206, 206], "the page did not fetch in two ranges"
    # The script sampled only the start of partial.mov: the recorder fetched it whole.
    (whole,) = [m for m in r.media if m.urls[0].endswith("/media/partial.mov")]
    assert whole.source == "completion" and whole.match == "payload"
    assert whole.sha256 == _sha(MOV.read_bytes())
    assert _sha((script_page.out / whole.path).read_bytes()) == whole.sha256
    assert dict(r.exchanges.by_client)["completion"] == 1
    assert [e[3] for e in script_page.log if e[2] == "/media/partial.mov"] == [206, 200]
    (miss,) = [m for m in r.media_misses if m.tool == "yt-dlp"]
    assert "Unsupported URL" in miss.error
    assert script_page.leftovers == []


# --- failures ------------------------------------------------------------------------------


def test_hanging_page_is_bounded_and_recorded(site: Site, tmp_path: Path) -> None:
    cap = _capture(site, f"http://127.0.0.1:{site.http_port}/hang.html", tmp_path / "c",
                   timeout_s=8)
    r = cap.result
    assert cap.seconds < 8 + 12, f"took {cap.seconds:.1f} s for an 8 s limit"
    assert r.outcome == "timed-out" and r.timed_out
    assert any(url.endswith("/hang.html") and st == 200
               for url, st, *_ in _responses(cap.out))
    hung = [e for e in r.exchanges.failed if e[0].endswith("/hang-forever")]
    # Cut at the time limit, or when the capture ended before it (the browser gave up first).
    assert hung and hung[0][1] in (TIME_LIMIT, CAPTURE_ENDED)
    assert any("did not finish loading" in n for n in r.notes)
    assert cap.leftovers == []


def test_404_is_captured_with_its_status(site: Site, tmp_path: Path) -> None:
    # An Arabic path: the browser sends it percent-encoded; the capture must still find it.
    cap = _capture(site, f"http://127.0.0.1:{site.http_port}/missing/وثيقة", tmp_path / "c",
                   timeout_s=30, user_agent="custody-test-agent/1.0")
    assert cap.result.outcome == "http-error" and cap.result.http_status == 404
    assert cap.result.final_url == (f"http://127.0.0.1:{site.http_port}/missing/"
                                    "%D9%88%D8%AB%D9%8A%D9%82%D8%A9")
    assert cap.result.user_agent == "custody-test-agent/1.0"
    agents = {rec.http_headers.get_header("User-Agent")
              for rec in ArchiveIterator(io.BytesIO(_warc_bytes(cap.out)))
              if rec.rec_type == "request" and rec.http_headers is not None
              and rec.rec_headers.get_header("WARC-Target-URI") == cap.result.final_url}
    assert agents == {"custody-test-agent/1.0"}
    summary = [rec for rec in ArchiveIterator(io.BytesIO(_warc_bytes(cap.out)))
               if rec.rec_type == "metadata" and rec.rec_headers.get_header("WARC-Refers-To")
               is None and b"capture-started" in rec.content_stream().read()]
    assert len(summary) == 1
    assert any(st == 404 and b"not here" in body for _u, st, _h, _r, body in _responses(cap.out))
    done = _run([str(BIN / "wacz"), "validate", "-f", str(cap.out / "archive.wacz")])
    assert done.returncode == 0, done.stdout
    assert cap.leftovers == []


def test_untrusted_certificate_refused_then_captured_insecure(site: Site, tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{site.https_port}/arabic.html"
    with pytest.raises(CaptureTLSError) as info:
        capture_url(url, tmp_path / "refused", timeout_s=30)
    _one_line(info.value)
    assert "insecure" in str(info.value)
    record = json.loads((tmp_path / "refused" / "capture.json").read_text(encoding="utf-8"))
    assert record == info.value.record and record["outcome"] == "refused-tls"
    probe = record["tls"][0]["probe"]
    assert probe["verified"] is False and "issuer" in probe["verify_error"]
    assert [c["sha256"] for c in probe["chain"]] == [_sha(d) for d in site.served_chain]
    assert sorted(p.name for p in (tmp_path / "refused").iterdir()) == ["capture.json"]

    cap = _capture(site, url, tmp_path / "insecure", timeout_s=30, insecure=True)
    r = cap.result
    assert r.insecure and r.outcome == "complete"
    assert r.tls[0].probe is not None and r.tls[0].probe.verified is False
    assert r.to_record()["insecure"] is True
    assert any("insecure" in n for n in r.notes)
    assert cap.leftovers == []

    # The same URL with the test root given as a trust anchor: verified, nothing insecure.
    cap = _capture(site, url, tmp_path / "anchored", timeout_s=30, trust_anchors=site.root_pem)
    r = cap.result
    assert r.outcome == "complete" and not r.insecure
    assert r.trust_anchors_sha256 == _sha(site.root_pem.read_bytes())
    (tls,) = r.tls
    assert tls.probe is not None and tls.probe.verified and tls.probe_matches_recording
    assert tls.browser_saw_capture_proxy is True
    assert cap.leftovers == []


def test_redirect_to_an_untrusted_certificate_is_refused(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "c"
    with pytest.raises(CaptureTLSError) as info:
        capture_url(f"http://127.0.0.1:{site.http_port}/go-secure", out, timeout_s=30)
    _one_line(info.value)
    record = info.value.record
    assert record is not None and record["outcome"] == "refused-tls"
    assert record["redirects"][0]["status"] == 301
    assert json.loads((out / "capture.json").read_text(encoding="utf-8")) == record
    assert leftover_processes(str(out)) == []


def test_unreachable_and_unresolvable_hosts(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CaptureNetworkError) as info:
        capture_url(f"http://127.0.0.1:{port}/", tmp_path / "a", timeout_s=10)
    _one_line(info.value)
    assert "refused" in str(info.value)
    assert json.loads((tmp_path / "a" / "capture.json").read_text())["outcome"] == "network-error"
    with pytest.raises(CaptureNetworkError) as info:
        capture_url("https://no-such-host.invalid/x", tmp_path / "b", timeout_s=10)
    _one_line(info.value)
    assert "could not resolve" in str(info.value)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    cases = [
        ("ftp://example.org/x", tmp_path / "n1", 10.0),
        ("http://127.0.0.1:1/", used, 10.0),
        ("http://127.0.0.1:1/", link, 10.0),
        ("http://127.0.0.1:1/", tmp_path / "n2", 0.0),
        ("http://user:pw@127.0.0.1:1/", tmp_path / "n3", 10.0),
    ]
    for url, out, limit in cases:
        with pytest.raises(CaptureUsageError) as info:
            capture_url(url, out, timeout_s=limit)
        _one_line(info.value)
    assert not any((tmp_path / "elsewhere").iterdir())
    assert sorted(p.name for p in used.iterdir()) == ["x"]


# --- checking a capture folder offline ----------------------------------------------------


def test_check_passes_on_untouched_captures(main_page: Capture, secure_page: Capture,
                                            script_page: Capture) -> None:
    for cap in (main_page, secure_page, script_page):
        result = check_capture(cap.out)
        assert result.ok, result.to_record()
        assert any(c.startswith("archive/data.warc.gz (") for c in result.checked)


def _copy(cap: Capture, dest: Path) -> Path:
    shutil.copytree(cap.out, dest, symlinks=True)
    return dest


def test_check_finds_changed_missing_and_unlisted_files(main_page: Capture,
                                                       tmp_path: Path) -> None:
    folder = _copy(main_page, tmp_path / "c")
    shot = folder / "screenshot.png"
    data = bytearray(shot.read_bytes())
    data[100] ^= 0x01
    shot.write_bytes(bytes(data))
    (folder / "page.pdf").unlink()
    (folder / "page.pdf").symlink_to(main_page.out / "page.pdf")  # the right bytes, via a link
    (folder / "media" / "extra.mp4").write_bytes(b"planted")
    codes = {(f.code, f.path) for f in check_capture(folder).findings}
    assert codes == {("changed-file", "screenshot.png"), ("missing-file", "page.pdf"),
                     ("unlisted-file", "media/extra.mp4")}
    (folder / "capture.json").unlink()
    result = check_capture(folder)
    assert not result.ok and result.findings[0].code == "missing-record"


def test_check_finds_a_warc_record_changed_behind_consistent_listings(
        main_page: Capture, tmp_path: Path) -> None:
    """Someone swaps photo bytes in the WARC and re-lists every digest outside the WARC:
    the WARC's own record digests still give it away."""
    folder = _copy(main_page, tmp_path / "c")
    wacz = folder / "archive.wacz"
    with zipfile.ZipFile(wacz) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    plain = gzip.decompress(entries["archive/data.warc.gz"])
    original = PHOTO.read_bytes()[:200]
    assert plain.count(original) == 1
    changed = original[:150] + bytes([original[150] ^ 0x01]) + original[151:]
    warc = gzip.compress(plain.replace(original, changed))
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
    record = json.loads((folder / "capture.json").read_text(encoding="utf-8"))
    record["warc"]["sha256"] = _sha(warc)
    for entry in record["files"]:
        if entry["path"] == "archive.wacz":
            entry["sha256"], entry["bytes"] = _sha(wacz.read_bytes()), wacz.stat().st_size
    (folder / "capture.json").write_text(json.dumps(record), encoding="utf-8")
    findings = check_capture(folder).findings
    assert {f.code for f in findings} == {"bad-warc-record"}
    assert {f.detail for f in findings} == {"WARC-Block-Digest fails",
                                            "WARC-Payload-Digest fails"}
