"""The recording proxy: every HTTP exchange of a capture, byte for byte, into WARC 1.1.

Why a proxy and not the browser's own protocol: Chromium's DevTools protocol gives response
bodies after it has removed the transfer coding and the content coding
(``Network.getResponseBody``), headers as a re-assembled dictionary without the status line,
and often no body at all for media fetched by the media stack. A proxy sits on the wire: it
stores the status line, the header block and the body exactly as the server sent them
(gzip stays gzip, chunked stays chunked) and the address it actually connected to. Chromium
is pointed at this proxy with ``--proxy-server`` (``<-loopback>`` removed from the bypass
list, so even loopback goes through it), yt-dlp with ``--proxy``; HTTPS is intercepted with
the capture's throw-away CA (``tls.CaptureAuthority``) while the proxy's own upstream
connection verifies the real server and keeps the certificate chain it presented.

The WARC follows WARC 1.1 (iipc/warc-specifications, specifications/warc-format/warc-1.1/
index.md, commit 0867643a63d902dab36846445ba2c8f823f13868): one 'warcinfo' record first
(section 6 "warcinfo"), then per exchange a 'request' record holding the request as sent
upstream, a 'response' record holding the response as received (both
``application/http; msgtype=...``), and a 'metadata' record (``application/warc-fields``)
with the proxy's own observations (which client, peer address, TLS chain digests, whether the
client hung up early). Each carries WARC-Target-URI, WARC-Date (the moment the request was
sent, shared by the three records of one capture event as section 5.4 asks, microseconds as
WARC/1.1 allows), WARC-IP-Address (the address connected to), WARC-Concurrent-To linking the
three (section 5.7) and WARC-Refers-To from the metadata record to the response. A response
cut short by the capture's time limit is still written, with ``WARC-Truncated: time``; one
whose server hung up early with ``WARC-Truncated: disconnect`` (section "WARC-Truncated").

warcio writes the records (it is the Webrecorder reference library that pywb, cdxj-indexer
and py-wacz read with, so what it writes they read), with two deliberate changes: digests
are SHA-256 instead of its SHA-1 default (WARC names no algorithm; SHA-1 is broken for
collisions), and the HTTP header block is kept as received instead of warcio's
re-serialisation (``_RawHeaders``). The record block keeps the transfer coding exactly as
sent (chunk framing included), while WARC-Payload-Digest is computed here over the
'entity-body' as section 5.9 defines the payload: transfer coding removed, content coding
kept. That is the reading iipc/warc-specifications issue 22 settled on and Heritrix adopted
(internetarchive/heritrix3 pull request 770); warcio's own writer and ``warcio check``
still digest the chunked bytes (webrecorder/warcio issues 74 and 75, open), so ``warcio
check`` reports chunked records as payload-digest mismatches while their block digests
pass.

Limits, said plainly: HTTP/1.1 only upstream (ALPN ``http/1.1``); WebSocket upgrades are
recorded as an exchange and the tunnel is then closed; request bodies with chunked transfer
coding are refused (browsers send Content-Length).

Imports ``warcio``, the standard library and ``capture.tls`` / ``capture.errors``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import re
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from custody.acquisition.capture.tls import (
    CaptureAuthority,
    check_host,
    client_context,
    presented_chain,
)

_MAX_HEAD = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_MAX_LINES = 256
_CHUNK = 64 * 1024
_HOP_BY_HOP_PROXY = (b"proxy-connection", b"proxy-authorization")
# Only these are sent again when a kept-alive connection turns out to have been dropped.
_IDEMPOTENT = ("GET", "HEAD", "OPTIONS")
TLS_REFUSAL = "the server's certificate did not verify"  # how such an exchange's error starts


def warc_date(moment: datetime) -> str:
    """WARC/1.1 date with microseconds, always UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Writer(WARCWriter):  # type: ignore[misc]
    """warcio's writer with SHA-256 digests."""

    @staticmethod
    def _create_digester() -> Any:
        return Digester("sha256")


class _RawHeaders(StatusAndHeaders):  # type: ignore[misc]
    """Parsed HTTP headers that write back exactly the bytes they were parsed from."""

    def __init__(self, raw: bytes, kind: str) -> None:
        protocols = ["HTTP/1.0", "HTTP/1.1"] if kind == "response" else []
        parsed = StatusAndHeadersParser(protocols, verify=False).parse(io.BytesIO(raw))
        super().__init__(parsed.statusline, parsed.headers, parsed.protocol, parsed.total_len)
        self.headers_buff = raw

    def compute_headers_buffer(self, header_filter: Any = None) -> None:
        """Keep the header block as received; warcio would re-serialise it."""


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and its response (if any) as the recording proxy saw them."""

    seq: int
    client: str
    method: str
    url: str
    started_at: str
    ip: str | None
    port: int | None
    status: int | None
    response_head: bytes
    body_bytes: int
    payload_sha256: str | None
    truncated: str | None
    client_aborted: bool
    error: str | None
    tls_chain_sha256: tuple[str, ...]
    request_record_id: str | None
    response_record_id: str | None
    metadata_record_id: str | None

    def header(self, name: str) -> str | None:
        """First response header ``name`` (case-insensitive), decoded as Latin-1."""
        for key, value in self.headers():
            if key.lower() == name.lower():
                return value
        return None

    def headers(self) -> tuple[tuple[str, str], ...]:
        lines = self.response_head.split(b"\r\n")[1:]
        out = []
        for line in lines:
            if b":" in line:
                key, _, value = line.partition(b":")
                out.append((key.decode("latin-1").strip(), value.decode("latin-1").strip()))
        return tuple(out)


@dataclass
class _Pending:
    client: str
    method: str
    url: str
    started: datetime
    request_head: bytes
    request_body: bytes
    ip: str | None = None
    port: int | None = None
    chain: tuple[bytes, ...] = ()
    response_head: bytes = b""
    status: int | None = None
    body: IO[bytes] | None = None
    body_len: int = 0
    digest: Any = field(default_factory=hashlib.sha256)  # what was stored, framing and all
    entity: Any = field(default_factory=hashlib.sha256)  # the entity-body (no chunk framing)
    truncated: str | None = None
    client_aborted: bool = False
    error: str | None = None


class Recorder:
    """Owns the WARC file and the list of exchanges; every method is thread-safe."""

    def __init__(self, warc: BinaryIO, *, spool_dir: Path, clock: Callable[[], datetime],
                 info: dict[str, str], filename: str) -> None:
        self._lock = threading.Lock()
        self._writer = _Writer(warc, gzip=True, warc_version="1.1")
        self._spool_dir = spool_dir
        self.clock = clock
        self._exchanges: list[Exchange] = []
        self._chains: dict[str, list[tuple[bytes, ...]]] = {}
        record = self._writer.create_warcinfo_record(filename, info)
        record.rec_headers.replace_header("WARC-Date", warc_date(clock()))
        self._writer.write_record(record)
        self.warcinfo_id: str = record.rec_headers.get_header("WARC-Record-ID")

    def spool(self) -> IO[bytes]:
        return tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024, mode="w+b",
                                             dir=os.fspath(self._spool_dir))

    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        with self._lock:
            return tuple(self._exchanges)

    @property
    def chains(self) -> dict[str, tuple[tuple[bytes, ...], ...]]:
        """Distinct certificate chains presented on the recording connections, by host:port."""
        with self._lock:
            return {key: tuple(value) for key, value in self._chains.items()}

    def note_chain(self, host: str, port: int, chain: tuple[bytes, ...]) -> None:
        with self._lock:
            seen = self._chains.setdefault(f"{host}:{port}", [])
            if chain not in seen:
                seen.append(chain)

    def write_summary(self, uri: str, fields: dict[str, str]) -> str:
        """A free-standing 'metadata' record about the whole capture; returns its id."""
        payload = "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode("utf-8")
        with self._lock:
            record = self._writer.create_warc_record(
                uri, "metadata", payload=io.BytesIO(payload), length=len(payload),
                warc_content_type="application/warc-fields",
                warc_headers_dict={"WARC-Date": warc_date(self.clock()),
                                   "WARC-Warcinfo-ID": self.warcinfo_id},
            )
            self._writer.write_record(record)
            return str(record.rec_headers.get_header("WARC-Record-ID"))

    def finish(self, p: _Pending) -> Exchange:
        """Write the request, response and metadata records of one exchange."""
        date = warc_date(p.started)
        ids = [f"<urn:uuid:{uuid.uuid4()}>" for _ in range(3)]
        req_id, resp_id, meta_id = ids
        common = {"WARC-Date": date, "WARC-Warcinfo-ID": self.warcinfo_id}
        if p.ip:
            common["WARC-IP-Address"] = p.ip
        chain_digests = tuple(hashlib.sha256(c).hexdigest() for c in p.chain)
        meta_fields = {
            "client": p.client,
            "via": "custody capture recording proxy",
            "peer": f"{p.ip}:{p.port}" if p.ip else "",
            "tls-chain-sha256": " ".join(chain_digests),
            "client-aborted": "true" if p.client_aborted else "",
            "error": p.error or "",
        }
        meta = "".join(f"{k}: {v}\r\n" for k, v in meta_fields.items() if v).encode("utf-8")
        with self._lock:
            has_response = bool(p.response_head) and p.body is not None
            if has_response:
                assert p.body is not None
                p.body.seek(0)
                headers = {**common, "WARC-Record-ID": resp_id,
                           "WARC-Payload-Digest": "sha256:" + base64.b32encode(
                               p.entity.digest()).decode("ascii")}
                if p.truncated:
                    headers["WARC-Truncated"] = p.truncated
                response = self._writer.create_warc_record(
                    p.url, "response", payload=p.body, length=p.body_len,
                    http_headers=_RawHeaders(p.response_head, "response"),
                    warc_headers_dict=headers,
                )
                self._writer.write_record(response)
            request = self._writer.create_warc_record(
                p.url, "request", payload=io.BytesIO(p.request_body),
                length=len(p.request_body),
                http_headers=_RawHeaders(p.request_head, "request"),
                warc_headers_dict={**common, "WARC-Record-ID": req_id,
                                   **({"WARC-Concurrent-To": resp_id} if has_response else {})},
            )
            self._writer.write_record(request)
            metadata = self._writer.create_warc_record(
                p.url, "metadata", payload=io.BytesIO(meta), length=len(meta),
                warc_content_type="application/warc-fields",
                warc_headers_dict={**common, "WARC-Record-ID": meta_id,
                                   "WARC-Concurrent-To": resp_id if has_response else req_id,
                                   **({"WARC-Refers-To": resp_id} if has_response else {})},
            )
            self._writer.write_record(metadata)
            exchange = Exchange(
                seq=len(self._exchanges), client=p.client, method=p.method, url=p.url,
                started_at=date, ip=p.ip, port=p.port, status=p.status,
                response_head=p.response_head, body_bytes=p.body_len,
                payload_sha256=p.entity.hexdigest() if has_response else None,
                truncated=p.truncated, client_aborted=p.client_aborted, error=p.error,
                tls_chain_sha256=chain_digests, request_record_id=req_id,
                response_record_id=resp_id if has_response else None,
                metadata_record_id=meta_id,
            )
            self._exchanges.append(exchange)
        if p.body is not None:
            p.body.close()
        return exchange


class _Closed(Exception):
    """The peer closed the connection, or the capture ended."""


class _Malformed(_Closed):
    """The server broke HTTP/1.1 framing; what came before is kept, the rest is not read."""


def _read_head(reader: io.BufferedReader) -> bytes:
    """An HTTP head up to and including the blank line; b'' if the peer closed first."""
    lines: list[bytes] = []
    size = 0
    while True:
        line = reader.readline(_MAX_HEAD + 1)
        if not line:
            if lines:
                raise _Closed("connection closed inside an HTTP head")
            return b""
        if not lines and line in (b"\r\n", b"\n"):
            continue  # tolerated stray CRLF between messages (RFC 9112 section 2.2)
        lines.append(line)
        size += len(line)
        if size > _MAX_HEAD or len(lines) > _MAX_LINES:
            raise _Closed("HTTP head too large")
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _header_values(head: bytes, name: bytes) -> list[bytes]:
    out = []
    for line in head.split(b"\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            out.append(value.strip())
    return out


class RecordingProxy:
    """An HTTP/HTTPS forward proxy on 127.0.0.1 that records through a ``Recorder``."""

    def __init__(self, recorder: Recorder, authority: CaptureAuthority, *, client: str,
                 ca_file: Path | None, insecure: bool, deadline: float,
                 allow: Callable[[str, int], bool] | None = None) -> None:
        self._recorder = recorder
        self._authority = authority
        self._client = client
        self._upstream_ctx = client_context(ca_file=ca_file, insecure=insecure)
        self.deadline = deadline
        self._allow = allow
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = False
        self.refused: list[str] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> None:
        self._acceptor.start()

    def stop(self) -> None:
        """Stop accepting, cut every open connection, wait for the handlers to write."""
        with self._lock:
            self._stopping = True
            sockets = list(self._sockets)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() on Linux
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._acceptor.join(timeout=5)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            if self._stopping:
                raise _Closed("capture ended")
            self._sockets.add(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _untrack(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            try:
                self._track(conn)
            except _Closed:
                conn.close()
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _timeout(self) -> float:
        return max(0.05, min(30.0, self.deadline - time.monotonic()))

    def _serve(self, conn: socket.socket) -> None:
        upstream: _Upstream | None = None
        client: socket.socket = conn
        try:
            conn.settimeout(self._timeout())
            reader: io.BufferedReader = conn.makefile("rb")
            head = _read_head(reader)
            if not head:
                return
            method, target, _version = self._request_line(head)
            if method == "CONNECT":
                host, port = self._authority_of(target)
                if not self._allowed(host, port):
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                    return
                upstream = _Upstream(self, host, port, tls=True)
                try:
                    upstream.connect()
                except OSError as exc:
                    self._failed_connect(f"https://{host}:{port}/", host, port, exc)
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                    return
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                client = self._authority.server_context(host).wrap_socket(
                    conn, server_side=True
                )
                self._track(client)
                self._forget(conn)  # wrap_socket took over its descriptor
                reader = client.makefile("rb")
                head = _read_head(reader)
                while head:
                    keep = self._relay(head, reader, client, "https", host, port, upstream)
                    if not keep:
                        return
                    head = _read_head(reader)
                return
            while head:
                parts = urlsplit(target)
                if parts.scheme != "http" or not parts.hostname:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    return
                host = check_host(parts.hostname)
                port = parts.port or 80
                if not self._allowed(host, port):
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                    return
                if upstream is None or (upstream.host, upstream.port) != (host, port):
                    if upstream is not None:
                        upstream.close()
                    upstream = _Upstream(self, host, port, tls=False)
                if not self._relay(head, reader, conn, "http", host, port, upstream):
                    return
                head = _read_head(reader)
                if head:
                    method, target, _version = self._request_line(head)
        except (_Closed, OSError, ValueError):
            return
        finally:
            if upstream is not None:
                upstream.close()
            if client is not conn:
                self._untrack(client)
            self._untrack(conn)

    def _allowed(self, host: str, port: int) -> bool:
        if self._allow is None or self._allow(host, port):
            return True
        self.refused.append(f"{host}:{port}")
        return False

    @staticmethod
    def _request_line(head: bytes) -> tuple[str, str, str]:
        line = head.split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x request line: {line[:100]!r}")
        return parts[0], parts[1], parts[2]

    @staticmethod
    def _authority_of(target: str) -> tuple[str, int]:
        host, sep, port_text = target.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"bad CONNECT target {target[:100]!r}")
        return check_host(host.strip("[]")), int(port_text)

    def _failed_connect(self, url: str, host: str, port: int, exc: Exception) -> None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            error = f"{TLS_REFUSAL} ({exc.verify_message})"
        else:
            error = f"upstream connection failed: {exc or type(exc).__name__}"
        pending = _Pending(self._client, "CONNECT", url, self._recorder.clock(),
                           f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
                           .encode("latin-1"), b"", error=error)
        self._recorder.finish(pending)

    def _relay(self, head: bytes, reader: io.BufferedReader, client: socket.socket, scheme: str,
               host: str, port: int, upstream: _Upstream) -> bool:
        """Forward one request and its response; return whether the connection may go on."""
        method, target, version = self._request_line(head)
        if scheme == "http":
            parts = urlsplit(target)
            origin_form = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            url = target
        else:
            origin_form = target
            default = 443
            shown = f"[{host}]" if ":" in host else host
            url = f"https://{shown}{'' if port == default else f':{port}'}{target}"
        lines = head.split(b"\r\n")
        kept = [line for line in lines[1:]
                if line.partition(b":")[0].strip().lower() not in _HOP_BY_HOP_PROXY]
        out_head = b"\r\n".join(
            [f"{method} {origin_form} {version}".encode("latin-1"), *kept]
        )
        if _header_values(head, b"transfer-encoding"):
            raise _Closed("chunked request bodies are not supported")
        lengths = _header_values(head, b"content-length")
        length = int(lengths[0]) if lengths and lengths[0].isdigit() else 0
        body = reader.read(length) if length else b""
        if len(body) != length:
            raise _Closed("client closed inside a request body")
        pending = _Pending(self._client, method, url, self._recorder.clock(), out_head, body)
        try:
            self._exchange(pending, upstream, client)
        finally:
            self._recorder.finish(pending)
        request_close = any(v.lower() == b"close" for v in _header_values(head, b"connection"))
        return (not pending.error and not pending.truncated and not pending.client_aborted
                and not request_close and upstream.reusable)

    def _exchange(self, p: _Pending, upstream: _Upstream, client: socket.socket) -> None:
        for attempt in (0, 1):
            try:
                upstream.ensure()
                p.ip, p.port, p.chain = upstream.ip, upstream.port, upstream.chain
                upstream.sock_send(p.request_head + p.request_body)
                head = _read_head(upstream.reader)
                while head and self._status(head) // 100 == 1 and self._status(head) != 101:
                    self._to_client(p, client, head)
                    head = _read_head(upstream.reader)
            except (OSError, _Closed) as exc:
                if attempt == 0 and upstream.was_reused and p.method in _IDEMPOTENT:
                    upstream.close()  # a kept-alive connection the server had dropped
                    continue
                p.error = self._reason(exc)
                return
            if not head:
                if attempt == 0 and upstream.was_reused and p.method in _IDEMPOTENT:
                    upstream.close()
                    continue
                p.error = "the server closed the connection without answering"
                return
            break
        p.response_head = head
        p.status = self._status(head)
        p.body = self._recorder.spool()
        self._to_client(p, client, head)
        self._body(p, upstream, client, head)

    def _reason(self, exc: BaseException) -> str:
        if time.monotonic() >= self.deadline or self._stopping:
            return "no response before the capture's time limit"
        return str(exc) or type(exc).__name__

    @staticmethod
    def _status(head: bytes) -> int:
        parts = head.split(b" ", 2)
        if len(parts) < 2 or not parts[1][:3].isdigit():
            raise _Closed("not an HTTP status line")
        return int(parts[1][:3])

    def _to_client(self, p: _Pending, client: socket.socket, data: bytes) -> None:
        if p.client_aborted:
            return
        try:
            client.sendall(data)
        except OSError:
            # Keep reading from the server so that the record is complete.
            p.client_aborted = True

    def _keep(self, p: _Pending, client: socket.socket, data: bytes, *,
              entity: bool = True) -> None:
        assert p.body is not None
        p.body.write(data)
        p.body_len += len(data)
        p.digest.update(data)
        if entity:
            p.entity.update(data)
        self._to_client(p, client, data)

    def _body(self, p: _Pending, upstream: _Upstream, client: socket.socket,
              head: bytes) -> None:
        status = p.status or 0
        reader = upstream.reader
        if p.method == "HEAD" or status in (204, 304) or status == 101:
            upstream.reusable = status != 101
            return
        chunked = any(b"chunked" in v.lower() for v in _header_values(head, b"transfer-encoding"))
        lengths = _header_values(head, b"content-length")
        conn_close = any(v.lower() == b"close" for v in _header_values(head, b"connection"))
        upstream.reusable = not conn_close and head.startswith(b"HTTP/1.1")
        try:
            if chunked:
                self._chunked(p, reader, client)
            elif lengths and lengths[0].isdigit():
                remaining = int(lengths[0])
                while remaining:
                    self._check_time()
                    data = reader.read1(min(_CHUNK, remaining))
                    if not data:
                        p.truncated = "disconnect"
                        upstream.reusable = False
                        return
                    self._keep(p, client, data)
                    remaining -= len(data)
            else:
                upstream.reusable = False
                while True:
                    self._check_time()
                    data = reader.read1(_CHUNK)
                    if not data:
                        return
                    self._keep(p, client, data)
        except (OSError, _Closed) as exc:
            upstream.reusable = False
            timed = time.monotonic() >= self.deadline or self._stopping
            p.truncated = ("time" if timed else
                           "unspecified" if isinstance(exc, _Malformed) else "disconnect")
            p.error = self._reason(exc)

    def _check_time(self) -> None:
        if time.monotonic() >= self.deadline or self._stopping:
            raise _Closed("capture time limit")

    def _chunked(self, p: _Pending, reader: io.BufferedReader, client: socket.socket) -> None:
        while True:
            self._check_time()
            line = reader.readline(4096)
            if not line:
                raise _Closed("connection closed before the last chunk")
            self._keep(p, client, line, entity=False)
            digits = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(digits):
                raise _Malformed(f"malformed chunk-size line {line[:40]!r}")
            size = int(digits, 16)
            if size == 0:
                while True:
                    trailer = reader.readline(4096)
                    if not trailer:
                        raise _Closed("connection closed in chunked trailer")
                    self._keep(p, client, trailer, entity=False)
                    if trailer in (b"\r\n", b"\n"):
                        return
            remaining = size
            while remaining:
                self._check_time()
                data = reader.read1(min(_CHUNK, remaining))
                if not data:
                    raise _Closed("connection closed inside a chunk")
                self._keep(p, client, data)
                remaining -= len(data)
            ending = reader.readline(3)
            self._keep(p, client, ending, entity=False)
            if ending not in (b"\r\n", b"\n"):
                raise _Malformed("a chunk not followed by CRLF")


class _Upstream:
    """One connection from the proxy to the origin server, kept alive while it may be."""

    def __init__(self, proxy: RecordingProxy, host: str, port: int, *, tls: bool) -> None:
        self.proxy = proxy
        self.host, self.port, self.tls = host, port, tls
        self.sock: socket.socket | None = None
        self.reader: io.BufferedReader = io.BufferedReader(io.BytesIO())
        self.ip: str | None = None
        self.chain: tuple[bytes, ...] = ()
        self.reusable = True
        self.was_reused = False

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), timeout=self.proxy._timeout())
        try:
            self.proxy._track(raw)
        except _Closed:
            raw.close()
            raise OSError("capture ended") from None
        self.ip = str(raw.getpeername()[0])
        sock: socket.socket = raw
        if self.tls:
            try:
                tls_sock = self.proxy._upstream_ctx.wrap_socket(raw, server_hostname=self.host)
            except (ssl.SSLError, OSError):
                self.proxy._untrack(raw)
                raise
            self.chain = presented_chain(tls_sock)
            self.proxy._recorder.note_chain(self.host, self.port, self.chain)
            self.proxy._track(tls_sock)
            self.proxy._forget(raw)  # wrap_socket took over its descriptor
            sock = tls_sock
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.reusable = True
        self.was_reused = False

    def ensure(self) -> None:
        if self.sock is None:
            self.connect()
        else:
            self.was_reused = True
        assert self.sock is not None
        self.sock.settimeout(self.proxy._timeout())

    def sock_send(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def close(self) -> None:
        if self.sock is not None:
            self.proxy._untrack(self.sock)
        self.sock = None
