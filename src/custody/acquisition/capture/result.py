"""The frozen results of a capture, and ``CaptureResult.to_record()``: its JSON account.

Key names in ``to_record()`` are stable (format ``custody-web-capture/1``); a change of
meaning gets a new format string. Times are UTC RFC 3339 with microseconds and ``Z``.

``to_record()`` keys:

- ``format``: ``"custody-web-capture/1"``.
- ``outcome``: ``complete`` (the page loaded and the network went quiet), ``unsettled``
  (it loaded but kept fetching until the idle wait ran out), ``timed-out`` (the load event
  never came within the time limit: what did load is recorded), ``http-error`` (the final
  document's status is 4xx/5xx: captured as served), ``no-document`` (nothing came back for
  the page itself), and in records attached to errors ``refused-tls`` and ``network-error``.
- ``requested_url``, ``final_url`` (after HTTP redirects, as the browser ended up),
  ``title``, ``http_status`` (of the final document), ``redirects`` (each ``url``,
  ``status``, ``location``), ``script_moved`` (the browser's final URL is not the end of the
  HTTP redirect chain: a script or meta refresh moved it).
- ``main_document``: ``url``, ``status``, ``status_line``, ``headers`` (list of
  ``[name, value]`` exactly as received, in order), ``server_ip``, ``server_port``,
  ``warc_response_id``, ``payload_sha256`` (of the entity-body: chunked transfer coding
  removed, any content coding such as gzip kept; the hex form of WARC-Payload-Digest).
- ``tls``: one entry per HTTPS origin of the redirect chain: ``host``, ``port``, ``probe``
  (the separate handshake: ``ip``, ``verified``, ``verify_error``, ``protocol``, ``cipher``,
  ``probed_at``, ``chain`` with each certificate's ``sha256``, ``subject``, ``issuer``,
  ``serial``, ``not_before``, ``not_after``, ``der_b64``), ``recorded_chains_sha256`` (the
  chains presented on the connections whose bytes are in the WARC),
  ``probe_matches_recording``, ``browser_chain_sha256`` (``Network.getCertificate``),
  ``browser_saw_capture_proxy`` (the browser's leaf is the capture proxy's certificate for
  this host: its traffic went through the recorder).
- ``insecure`` (verification of the server was switched off by the caller),
  ``trust_anchors_sha256`` (extra CA file given by the caller, or null).
- ``started_at``, ``ended_at`` (network activity over), ``packaged_at``, ``timeout_ms``
  (the time limit; an integer, as every number in the record is, so that the record goes
  into custody's canonical JSON unchanged),
  ``timed_out``, ``settled``, ``navigation_error``.
- ``user_agent``, ``tools`` (``chromium``, ``playwright``, ``yt-dlp``, ``warcio``, ``wacz``,
  ``cdxj-indexer``, ``python``).
- ``browser``: ``documents`` (what Chromium reported for each main-frame document) and
  ``errors`` (screenshot/PDF/certificate steps that failed), ``killed_leftovers``.
- ``media``: one entry per distinct file, with ``path``, ``sha256``, ``bytes``, ``source``
  (``yt-dlp``; ``browser``, a whole response the browser got; ``browser-ranges``, joined from
  the browser's 206 responses; ``completion``, fetched whole by the recorder because the
  browser only sampled it), ``urls``, ``warc_record_ids`` (the response records holding
  those bytes), ``match`` (``payload``: the file equals a recorded response payload;
  ``ranges``: it equals the recorded ranges joined; ``derived``: yt-dlp made it from the
  recorded responses, e.g. by merging; ``unlinked``: no record found), ``info_json``
  (yt-dlp's own description, kept beside it). ``media_misses``: ``url``, ``tool``
  (``yt-dlp`` or ``recorder``), ``error`` (the tool's own words).
- ``exchanges``: ``count``, ``by_client``, ``failed`` (list of ``url``, ``error``),
  ``truncated`` (list of ``url``, ``reason``), ``blocked`` (host:port the recorder refused).
- ``warc``: ``path`` (inside the WACZ), ``sha256``, ``bytes``, ``warcinfo_id``.
- ``files``: every file written except ``capture.json`` (``path``, ``role``, ``sha256``,
  ``bytes``).
- ``notes``: plain sentences about anything unusual.

Imports only the standard library and sibling modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from custody.acquisition.capture.browser import DocumentView
from custody.acquisition.capture.media import MediaFile, MediaMiss
from custody.acquisition.capture.package import OutputFile
from custody.acquisition.capture.tls import TLSProbe

FORMAT = "custody-web-capture/1"


@dataclass(frozen=True)
class Redirect:
    url: str
    status: int
    location: str

    def to_record(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "location": self.location}


@dataclass(frozen=True)
class MainDocument:
    url: str
    status: int
    status_line: str
    headers: tuple[tuple[str, str], ...]
    server_ip: str | None
    server_port: int | None
    warc_response_id: str | None
    payload_sha256: str | None

    def to_record(self) -> dict[str, Any]:
        return {
            "url": self.url, "status": self.status, "status_line": self.status_line,
            "headers": [list(h) for h in self.headers], "server_ip": self.server_ip,
            "server_port": self.server_port, "warc_response_id": self.warc_response_id,
            "payload_sha256": self.payload_sha256,
        }


@dataclass(frozen=True)
class TLSComparison:
    host: str
    port: int
    probe: TLSProbe | None
    recorded_chains_sha256: tuple[tuple[str, ...], ...]
    probe_matches_recording: bool | None
    browser_chain_sha256: tuple[str, ...]
    browser_saw_capture_proxy: bool | None

    def to_record(self) -> dict[str, Any]:
        return {
            "host": self.host, "port": self.port,
            "probe": self.probe.to_record() if self.probe else None,
            "recorded_chains_sha256": [list(c) for c in self.recorded_chains_sha256],
            "probe_matches_recording": self.probe_matches_recording,
            "browser_chain_sha256": list(self.browser_chain_sha256),
            "browser_saw_capture_proxy": self.browser_saw_capture_proxy,
        }


@dataclass(frozen=True)
class ExchangeSummary:
    count: int
    by_client: tuple[tuple[str, int], ...]
    failed: tuple[tuple[str, str], ...]
    truncated: tuple[tuple[str, str], ...]
    blocked: tuple[str, ...]

    def to_record(self) -> dict[str, Any]:
        return {
            "count": self.count, "by_client": dict(self.by_client),
            "failed": [{"url": u, "error": e} for u, e in self.failed],
            "truncated": [{"url": u, "reason": r} for u, r in self.truncated],
            "blocked": list(self.blocked),
        }


@dataclass(frozen=True)
class CaptureResult:
    """Everything a capture recorded. ``to_record()`` is its stable JSON form."""

    outcome: str
    requested_url: str
    final_url: str | None
    title: str | None
    http_status: int | None
    redirects: tuple[Redirect, ...]
    script_moved: bool
    main_document: MainDocument | None
    tls: tuple[TLSComparison, ...]
    insecure: bool
    trust_anchors_sha256: str | None
    started_at: str
    ended_at: str
    packaged_at: str
    timeout_s: float
    timed_out: bool
    settled: bool
    navigation_error: str | None
    user_agent: str | None
    tools: tuple[tuple[str, str], ...]
    documents: tuple[DocumentView, ...]
    browser_errors: tuple[str, ...]
    killed_leftovers: int
    media: tuple[MediaFile, ...]
    media_misses: tuple[MediaMiss, ...]
    exchanges: ExchangeSummary
    warc_sha256: str | None
    warc_bytes: int | None
    warcinfo_id: str | None
    files: tuple[OutputFile, ...]
    notes: tuple[str, ...]

    def file(self, role: str) -> OutputFile | None:
        """The first output file with ``role`` (``wacz``, ``screenshot``, ``pdf``, ...)."""
        return next((f for f in self.files if f.role == role), None)

    def to_record(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "outcome": self.outcome,
            "requested_url": self.requested_url,
            "final_url": self.final_url,
            "title": self.title,
            "http_status": self.http_status,
            "redirects": [r.to_record() for r in self.redirects],
            "script_moved": self.script_moved,
            "main_document": self.main_document.to_record() if self.main_document else None,
            "tls": [t.to_record() for t in self.tls],
            "insecure": self.insecure,
            "trust_anchors_sha256": self.trust_anchors_sha256,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "packaged_at": self.packaged_at,
            "timeout_ms": round(self.timeout_s * 1000),
            "timed_out": self.timed_out,
            "settled": self.settled,
            "navigation_error": self.navigation_error,
            "user_agent": self.user_agent,
            "tools": dict(self.tools),
            "browser": {
                "documents": [d.to_record() for d in self.documents],
                "errors": list(self.browser_errors),
                "killed_leftovers": self.killed_leftovers,
            },
            "media": [m.to_record() for m in self.media],
            "media_misses": [m.to_record() for m in self.media_misses],
            "exchanges": self.exchanges.to_record(),
            "warc": {"path": "archive/data.warc.gz", "sha256": self.warc_sha256,
                     "bytes": self.warc_bytes, "warcinfo_id": self.warcinfo_id},
            "files": [f.to_record() for f in self.files],
            "notes": list(self.notes),
        }
