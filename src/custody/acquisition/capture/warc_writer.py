"""The WARC file of a capture: every HTTP exchange the proxy saw, byte for byte, in WARC 1.1.

``Recorder`` owns the WARC file and the list of exchanges; the recording proxy (``proxy``)
hands it one ``Pending`` exchange at a time and it writes the records, under a lock, so
that several proxy threads can share one file.

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
sent (chunk framing included), while WARC-Payload-Digest is computed by the proxy over the
'entity-body' as section 5.9 defines the payload: transfer coding removed, content coding
kept. That is the reading iipc/warc-specifications issue 22 settled on and Heritrix adopted
(internetarchive/heritrix3 pull request 770); warcio's own writer and ``warcio check``
still digest the chunked bytes (webrecorder/warcio issues 74 and 75, open), so ``warcio
check`` reports chunked records as payload-digest mismatches while their block digests
pass.

Imports ``warcio`` and the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter


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
class Pending:
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

    def finish(self, p: Pending) -> Exchange:
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
