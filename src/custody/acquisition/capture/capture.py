"""``capture_url``: one URL in; a WACZ, a screenshot, a PDF, the media and an account out.

The steps, each bounded by the one deadline ``timeout_s`` sets:

1. Check the URL and claim the output folder (new or empty; see ``package.OutputFolder``).
2. Pre-flight: for HTTPS, ``tls.probe_tls`` records the chain the server presents and
   whether it verifies; a chain that does not verify stops the capture with
   ``CaptureTLSError`` unless ``insecure=True`` (which is recorded). DNS failures and
   unreachable hosts stop it with ``CaptureNetworkError``. Either way ``capture.json`` is
   written with the outcome, and the error carries the same record.
3. The browser (``browser.run_browser``) loads the page through the recording proxy
   (``proxy``, writing through ``warc_writer``), about 60 % of the time limit; then a
   screenshot and a PDF.
4. yt-dlp fetches the page's media through a second recording proxy that only reaches the
   hosts the page used; media the browser fetched only in part is fetched whole once more.
5. The proxies stop (that is ``ended_at``), the WARC is closed, media files are rebuilt and
   linked to WARC records, the WACZ is written, and ``capture.json`` last.

Temporary files (Chromium's profile, spooled bodies, the WARC before packaging) live in
``.work`` inside the output folder and are removed at the end; only Chromium's runtime
sockets go to a short private folder under the system temp folder (UNIX socket paths are
limited to 108 bytes), removed as well.

Imports ``custody.clock``, ``custody.errors`` (through ``capture.errors``) and, for its
messages, ``custody.i18n`` and ``sources.said`` from custody: ``capture.json`` keeps every
message in English, the errors raised say them in the language of the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from custody.acquisition.capture import browser as browser_mod
from custody.acquisition.capture import media as media_mod
from custody.acquisition.capture.errors import (
    CaptureError,
    CaptureNetworkError,
    CaptureTLSError,
    CaptureToolError,
    CaptureUsageError,
)
from custody.acquisition.capture.package import OutputFolder, write_wacz
from custody.acquisition.capture.proxy import TIME_LIMIT, TLS_REFUSAL, RecordingProxy
from custody.acquisition.capture.result import (
    CaptureResult,
    ExchangeSummary,
    MainDocument,
    Redirect,
    TLSComparison,
)
from custody.acquisition.capture.tls import (
    CaptureAuthority,
    Certificate,
    TLSProbe,
    check_host,
    probe_tls,
)
from custody.acquisition.capture.warc_writer import Exchange, Recorder
from custody.acquisition.sources.said import Said, english
from custody.clock import format_time, utc_now
from custody.i18n import N_

# Chromium's own service endpoints: the browser calls them on its own (updates, sign-in,
# safe browsing) even with the background-networking switches; they are not part of the page
# and must not tell anyone that a capture runs. A page that itself needs one of them (a
# Google sign-in frame) loses it, and the record lists it under exchanges.blocked.
BROWSER_SERVICE_HOSTS = frozenset({
    "update.googleapis.com", "clients2.google.com", "clients2.googleusercontent.com",
    "accounts.google.com", "optimizationguide-pa.googleapis.com",
    "content-autofill.googleapis.com", "safebrowsing.googleapis.com",
    "safebrowsingohttpgateway.googleapis.com", "edgedl.me.gvt1.com", "redirector.gvt1.com",
})
MAX_TIMEOUT_S = 3600.0
INSECURE_HINT = Said(N_("to capture it anyway, unverified, use --insecure (insecure=True); "
                        "that is recorded"))
_URL_SAFE = "/%:@!$&'()*+,;=-._~"
_BROWSER_SHARE = 0.6


def normalise_url(url: str) -> str:
    """Lower-case scheme and host (IDNA), default port dropped, empty path as ``/``, and
    non-ASCII in path and query percent-encoded as UTF-8, the form a browser sends."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, default) else f"{host}:{port}"
    path = quote(parts.path or "/", safe=_URL_SAFE)
    query = quote(parts.query, safe=_URL_SAFE + "?")
    return urlunsplit((parts.scheme.lower(), netloc, path, query, ""))


def check_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a URL a capture can take; ``CaptureUsageError`` if not."""
    if not isinstance(url, str) or any(c in url for c in "\r\n\t ") or len(url) > 8192:
        raise CaptureUsageError(Said(N_("the URL must be one line without spaces")))
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise CaptureUsageError(Said(N_("only http and https URLs can be captured, not {url}"),
                                     url=repr(url[:200])))
    if parts.username or parts.password:
        raise CaptureUsageError(Said(N_("the URL must not carry a user name or password")))
    try:
        host = check_host(parts.hostname or "")
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise CaptureUsageError(Said(N_("the URL has no usable host: {url}"),
                                     url=repr(url[:200]))) from exc
    return parts.scheme.lower(), host, port


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _write_record(folder: OutputFolder, record: dict[str, Any]) -> None:
    data = json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")
    with folder.create("capture.json", "record") as out:
        out.write(data + b"\n")
    folder.files.pop()  # capture.json lists the other files, not itself
    folder.sync()


def _failure_record(url: str, outcome: str, message: str, started: datetime,
                    ended: datetime, timeout_s: float, insecure: bool,
                    probe: TLSProbe | None, anchors: str | None) -> dict[str, Any]:
    return {
        "format": "custody-web-capture/1",
        "outcome": outcome,
        "requested_url": url,
        "error": message,
        "started_at": format_time(started),
        "ended_at": format_time(ended),
        "timeout_ms": round(timeout_s * 1000),
        "insecure": insecure,
        "trust_anchors_sha256": anchors,
        "tls": [] if probe is None else [{
            "host": probe.host, "port": probe.port, "probe": probe.to_record(),
        }],
        "files": [],
    }


def _preflight_http(host: str, port: int, timeout_s: float) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CaptureNetworkError(Said(N_("could not resolve host {host}: {why}"),
                                       host=repr(host), why=str(exc.strerror))) from exc
    last: OSError | None = None
    for family, kind, proto, _name, addr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout_s)
            try:
                sock.connect(addr)
                return
            except OSError as exc:
                last = exc
    if isinstance(last, TimeoutError):
        raise CaptureNetworkError(Said(N_("no answer from {host}:{port} within {seconds} s"),
                                       host=host, port=port, seconds=f"{timeout_s:.0f}"))
    reason = (last.strerror if last is not None else None) or Said(N_("unreachable"))
    raise CaptureNetworkError(Said(N_("could not connect to {host}:{port}: {why}"),
                                   host=host, port=port, why=reason))


def capture_url(
    url: str,
    out_dir: Path,
    *,
    timeout_s: float,
    insecure: bool = False,
    user_agent: str | None = None,
    clock: Callable[[], datetime] = utc_now,
    trust_anchors: Path | None = None,
) -> CaptureResult:
    """Capture ``url`` into the new or empty folder ``out_dir`` within about ``timeout_s``.

    ``insecure`` captures even when the server's certificate does not verify (recorded).
    ``trust_anchors`` is an extra PEM file of CA certificates to trust besides the system
    store (its SHA-256 is recorded). Raises ``CaptureUsageError`` for bad arguments,
    ``CaptureNetworkError``/``CaptureTLSError`` (with ``.record``) when the page cannot be
    fetched, ``CaptureToolError`` when Chromium or Playwright is missing.
    """
    scheme, host, port = check_url(url)
    if not (0 < timeout_s <= MAX_TIMEOUT_S):
        raise CaptureUsageError(Said(N_("the time limit must be between 0 and {seconds} s"),
                                     seconds=f"{MAX_TIMEOUT_S:.0f}"))
    if user_agent is not None and (not user_agent.isprintable() or len(user_agent) > 512):
        raise CaptureUsageError(Said(N_("the user agent must be one printable line")))
    anchors_sha = None
    if trust_anchors is not None:
        try:
            anchors_sha = hashlib.sha256(trust_anchors.read_bytes()).hexdigest()
        except OSError as exc:
            raise CaptureUsageError(Said(N_("cannot read the trust anchors {path}: {why}"),
                                         path=str(trust_anchors), why=str(exc.strerror))) from exc
    browser_mod.check_tools()
    folder = OutputFolder(Path(out_dir))
    try:
        return _capture(url, scheme, host, port, folder, timeout_s=timeout_s, insecure=insecure,
                        user_agent=user_agent, clock=clock, anchors=trust_anchors,
                        anchors_sha=anchors_sha)
    finally:
        folder.close()


def _capture(url: str, scheme: str, host: str, port: int, folder: OutputFolder, *,
             timeout_s: float, insecure: bool, user_agent: str | None,
             clock: Callable[[], datetime], anchors: Path | None,
             anchors_sha: str | None) -> CaptureResult:
    started = clock()
    deadline = time.monotonic() + timeout_s
    connect_timeout = max(1.0, min(15.0, timeout_s / 4))
    probe: TLSProbe | None = None
    try:
        if scheme == "https":
            probe = probe_tls(host, port, timeout_s=connect_timeout, ca_file=anchors, now=clock())
        else:
            _preflight_http(host, port, connect_timeout)
    except CaptureNetworkError as exc:
        # capture.json keeps the English; the error says it in the language of the run.
        record = _failure_record(url, "network-error", str(english(exc)), started, clock(),
                                 timeout_s, insecure, None, anchors_sha)
        _write_record(folder, record)
        raise CaptureNetworkError(english(exc), record) from None
    if probe is not None and not probe.verified and not insecure:
        message = Said(N_("refused to capture {url}: the server's certificate did not verify "
                          "({why}); {hint}"),
                       url=url[:200], why=str(probe.verify_error), hint=INSECURE_HINT)
        record = _failure_record(url, "refused-tls", str(message), started, clock(), timeout_s,
                                 insecure, probe, anchors_sha)
        _write_record(folder, record)
        raise CaptureTLSError(message, record)

    work = folder.mkdir(".work", 0o700)
    runtime = Path(tempfile.mkdtemp(prefix="custody-capture-"))
    try:
        return _run(url, host, port, folder, work, runtime, probe=probe, started=started,
                    deadline=deadline, timeout_s=timeout_s, insecure=insecure,
                    user_agent=user_agent, clock=clock, anchors=anchors,
                    anchors_sha=anchors_sha, connect_timeout=connect_timeout)
    except CaptureToolError as exc:
        record = _failure_record(url, "browser-error", str(english(exc)), started, clock(),
                                 timeout_s, insecure, probe, anchors_sha)
        with contextlib.suppress(CaptureError, OSError):
            _write_record(folder, record)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


def _run(url: str, host: str, port: int, folder: OutputFolder, work: Path, runtime: Path, *,
         probe: TLSProbe | None, started: datetime, deadline: float, timeout_s: float,
         insecure: bool, user_agent: str | None, clock: Callable[[], datetime],
         anchors: Path | None, anchors_sha: str | None,
         connect_timeout: float) -> CaptureResult:
    notes: list[str] = []
    tools = {
        "playwright": _version("playwright"), "yt-dlp": _version("yt-dlp"),
        "warcio": _version("warcio"), "wacz": _version("wacz"),
        "cdxj-indexer": _version("cdxj-indexer"), "python": platform.python_version(),
    }
    # Certificate validity is about real time, whatever clock the record is stamped with.
    authority = CaptureAuthority(work, utc_now())
    warc_path = work / "data.warc.gz"
    spool = work / "spool"
    spool.mkdir(mode=0o700)
    warc_file = open(warc_path, "xb")  # noqa: SIM115 - closed in the finally below
    try:
        recorder = Recorder(warc_file, spool_dir=spool, clock=clock, filename="data.warc.gz",
                            info={
                                "software": "custody web capture (recording proxy, warcio "
                                            f"{tools['warcio']})",
                                "format": "WARC File Format 1.1",
                                "conformsTo": "https://iipc.github.io/warc-specifications/"
                                              "specifications/warc-format/warc-1.1/",
                                "description": f"capture of {url}",
                                "isPartOf": "custody web capture",
                            })
        browser_proxy = RecordingProxy(
            recorder, authority, client="browser", ca_file=anchors, insecure=insecure,
            deadline=deadline, allow=lambda h, _p: h not in BROWSER_SERVICE_HOSTS,
        )
        proxies = [browser_proxy]
        browser_proxy.start()
        report = None
        try:
            budget = max(1.0, min(timeout_s * _BROWSER_SHARE, deadline - time.monotonic()))
            report = browser_mod.run_browser(
                url, work=work, proxy_port=browser_proxy.port,
                spki=authority.spki_sha256_b64, user_agent=user_agent, budget_s=budget,
                runtime=runtime,
            )
            tools["chromium"] = report.browser_version or "unknown"
            # yt-dlp and the completion fetches may reach only the hosts the page used.
            page_hostnames = {str(urlsplit(ex.url).hostname) for ex in recorder.exchanges
                              if ex.client == "browser" and ex.status is not None} | {host}
            media_proxy = RecordingProxy(
                recorder, authority, client="yt-dlp", ca_file=anchors, insecure=insecure,
                deadline=deadline, allow=lambda h, _p: h in page_hostnames,
            )
            proxies.append(media_proxy)
            media_proxy.start()
            target = report.final_url if report.final_url and report.final_url.startswith(
                ("http://", "https://")) else url
            env = browser_mod.minimal_env(work / "home")
            env["TMPDIR"] = os.fspath(runtime)
            left = deadline - time.monotonic()
            ytdlp = media_mod.run_ytdlp(
                target, proxy_port=media_proxy.port, ca_file=authority.ca_file, work=work,
                env=env, budget_s=max(0.0, left * 0.85), user_agent=report.user_agent,
            )
            completion_proxy = RecordingProxy(
                recorder, authority, client="completion", ca_file=anchors, insecure=insecure,
                deadline=deadline, allow=lambda h, _p: h in page_hostnames,
            )
            proxies.append(completion_proxy)
            completion_proxy.start()
            completion_errors = []
            for wanted in media_mod.plan_completions(recorder.exchanges):
                error = media_mod.fetch_whole(
                    wanted, proxy_port=completion_proxy.port, ca_file=authority.ca_file,
                    timeout_s=deadline - time.monotonic(), user_agent=report.user_agent,
                )
                if error:
                    completion_errors.append(media_mod.MediaMiss(wanted, "recorder", error))
        finally:
            for proxy in proxies:
                proxy.stop()
        ended = clock()
        exchanges = recorder.exchanges
        # The WARC carries its own short account, so that it says what it is even alone.
        recorder.write_summary(url, {
            "capture-started": format_time(started),
            "capture-ended": format_time(ended),
            "requested-url": url,
            "browser-final-url": report.final_url or "",
            "browser": tools.get("chromium", ""),
            "user-agent": report.user_agent or "",
            "insecure": "true" if insecure else "false",
            "tls-probe-chain-sha256": " ".join(
                hashlib.sha256(c.der).hexdigest() for c in probe.chain) if probe else "",
            "tls-probe-verified": "" if probe is None else str(probe.verified).lower(),
        })
        blocked = sorted({b for p in proxies for b in p.refused})
        warcinfo_id = recorder.warcinfo_id
        chains = recorder.chains
    finally:
        warc_file.close()
    assert report is not None

    # --- what was captured, from where ---
    redirects, main = _redirect_chain(url, exchanges)
    final_url = report.final_url if report.final_url not in (None, "", "about:blank") else None
    script_moved = False
    if main is not None and final_url and normalise_url(final_url) != normalise_url(main.url):
        later = [e for e in exchanges if e.client == "browser" and e.status is not None
                 and normalise_url(e.url) == normalise_url(final_url)]
        if later:
            script_moved = True
            main = later[-1]
            notes.append("the browser ended on a page reached by script or meta refresh, "
                         "not by an HTTP redirect")
    main_doc = None
    if main is not None and main.status is not None:
        status_line = main.response_head.split(b"\r\n", 1)[0].decode("latin-1")
        main_doc = MainDocument(main.url, main.status, status_line, main.headers(), main.ip,
                                main.port, main.response_record_id, main.payload_sha256)

    tls = _tls_section(url, redirects, main, probe, chains, report, authority,
                       connect_timeout=connect_timeout, anchors=anchors, clock=clock)

    # --- media ---
    payloads = media_mod.scan_warc(warc_path, work / "payloads")
    clients = {e.response_record_id: e.client for e in exchanges if e.response_record_id}
    built = media_mod.build_media(payloads, ytdlp, work=work, clients=clients)
    media_files = []
    for item in built:
        rel = f"media/{item.name}"
        out = folder.copy_in(item.work_path, rel, "media")
        info_rel = None
        if item.info_json is not None:
            info_rel = f"media/{item.info_json.name}"
            if not any(f.path == info_rel for f in folder.files):
                folder.copy_in(item.info_json, info_rel, "media-info")
        media_files.append(media_mod.MediaFile(rel, out.sha256, out.bytes, item.source,
                                               item.urls, item.record_ids, item.match,
                                               info_rel))
    for info in ytdlp.info_jsons:
        rel = f"media/{info.name}"
        if not any(f.path == rel for f in folder.files):
            folder.copy_in(info, rel, "media-info")
    misses = list(completion_errors)
    if ytdlp.error and not ytdlp.files:
        misses.append(media_mod.MediaMiss(target, "yt-dlp", ytdlp.error))
    elif ytdlp.error:
        notes.append(f"yt-dlp reported an error after downloading some files: {ytdlp.error}")

    # --- screenshot, PDF, WACZ ---
    if report.screenshot is not None:
        folder.copy_in(report.screenshot, "screenshot.png", "screenshot")
    if report.pdf is not None:
        folder.copy_in(report.pdf, "page.pdf", "pdf")
    page_url = main.url if main is not None else url
    page_ts = main.started_at if main is not None else format_time(started)
    with folder.create("archive.wacz", "wacz") as out:
        write_wacz(out, warc=warc_path, page_url=page_url, page_ts=page_ts,
                   title=report.title or page_url, created=ended,
                   software=f"custody web capture; warcio {tools['warcio']}; "
                            f"cdxj-indexer {tools['cdxj-indexer']}")
    warc_sha, warc_size = _sha256_file(warc_path)
    packaged = clock()

    # --- outcome ---
    status = main.status if main is not None else None
    refused = [e for e in exchanges if e.error and e.error.startswith(TLS_REFUSAL)]
    # The browser may see its load event only because the recorder cut a request that never
    # ended at the time limit (on a slow machine the limit can come before the browser's
    # own wait ends): that page did not finish loading either.
    cut = [e for e in exchanges if e.client == "browser" and e.error == TIME_LIMIT]
    timed_out = report.timed_out or bool(cut)
    if (main is None or status is None) and refused:
        outcome = "refused-tls"
    elif main is None or status is None:
        outcome = "no-document"
    elif timed_out:
        outcome = "timed-out"
    elif status >= 400:
        outcome = "http-error"
    elif not report.settled:
        outcome = "unsettled"
    else:
        outcome = "complete"
    if timed_out:
        notes.append("the page did not finish loading within the time limit; "
                     "what had loaded by then is recorded")
    if cut and not report.timed_out:
        notes.append(f"{len(cut)} request(s) of the page were still open at the time limit "
                     "and were cut off by the recorder")
    if insecure:
        notes.append("captured with insecure=True: the server's certificate was not verified")
    counts = Counter(e.client for e in exchanges)
    summary = ExchangeSummary(
        count=len(exchanges), by_client=tuple(sorted(counts.items())),
        failed=tuple((e.url, e.error) for e in exchanges if e.error and not e.truncated),
        truncated=tuple((e.url, e.truncated) for e in exchanges if e.truncated),
        blocked=tuple(blocked),
    )
    result = CaptureResult(
        outcome=outcome, requested_url=url, final_url=final_url,
        title=report.title, http_status=status, redirects=tuple(redirects),
        script_moved=script_moved, main_document=main_doc, tls=tuple(tls), insecure=insecure,
        trust_anchors_sha256=anchors_sha, started_at=format_time(started),
        ended_at=format_time(ended), packaged_at=format_time(packaged), timeout_s=timeout_s,
        timed_out=timed_out, settled=report.settled,
        navigation_error=report.navigation_error, user_agent=report.user_agent,
        tools=tuple(sorted(tools.items())), documents=report.documents,
        browser_errors=report.errors, killed_leftovers=report.killed_leftovers,
        media=tuple(media_files), media_misses=tuple(misses), exchanges=summary,
        warc_sha256=warc_sha, warc_bytes=warc_size, warcinfo_id=warcinfo_id,
        files=tuple(folder.files), notes=tuple(notes),
    )
    _write_record(folder, result.to_record())
    if outcome == "refused-tls":
        record = result.to_record()
        raise CaptureTLSError(
            Said(N_("refused to capture {url}: {why}; {hint}"), url=refused[0].url[:200],
                 why=str(refused[0].error), hint=INSECURE_HINT),
            record)
    if outcome == "no-document":
        record = result.to_record()
        reason = report.navigation_error or Said(N_("nothing came back for the page itself"))
        raise CaptureNetworkError(Said(N_("the page {url} could not be loaded: {why}"),
                                       url=url[:200], why=reason), record)
    return result


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _redirect_chain(url: str, exchanges: tuple[Exchange, ...]
                    ) -> tuple[list[Redirect], Exchange | None]:
    """Follow HTTP redirects from ``url`` through the browser's recorded exchanges."""
    browser = [e for e in exchanges if e.client == "browser" and e.method == "GET"]
    wanted = normalise_url(url)
    after = -1
    redirects: list[Redirect] = []
    for _hop in range(25):
        current = next((e for e in browser if e.seq > after
                        and normalise_url(e.url) == wanted and e.status is not None), None)
        if current is None:
            return redirects, None
        location = current.header("location")
        if current.status not in (301, 302, 303, 307, 308) or not location:
            return redirects, current
        redirects.append(Redirect(current.url, current.status or 0, location))
        wanted = normalise_url(urljoin(current.url, location))
        after = current.seq
    return redirects, None


def _tls_section(url: str, redirects: list[Redirect], main: Exchange | None,
                 probe: TLSProbe | None, chains: dict[str, tuple[tuple[bytes, ...], ...]],
                 report: browser_mod.BrowserReport, authority: CaptureAuthority, *,
                 connect_timeout: float, anchors: Path | None,
                 clock: Callable[[], datetime]) -> list[TLSComparison]:
    origins: list[tuple[str, int]] = []
    for link in [*(r.url for r in redirects), *([main.url] if main else []), url]:
        parts = urlsplit(link)
        if parts.scheme == "https" and parts.hostname:
            key = (check_host(parts.hostname), parts.port or 443)
            if key not in origins:
                origins.append(key)
    final_host = urlsplit(report.final_url or "").hostname
    out = []
    for host, port in origins:
        this_probe = probe if probe is not None and (probe.host, probe.port) == (host, port) \
            else None
        if this_probe is None:
            with contextlib.suppress(CaptureError):
                this_probe = probe_tls(host, port, timeout_s=connect_timeout, ca_file=anchors,
                                       now=clock())
        recorded = chains.get(f"{host}:{port}", ())
        recorded_sha = tuple(tuple(hashlib.sha256(c).hexdigest() for c in chain)
                             for chain in recorded)
        matches = None
        if this_probe is not None and recorded:
            probe_chain = tuple(c.der for c in this_probe.chain)
            matches = all(chain == probe_chain for chain in recorded)
        browser_sha: tuple[str, ...] = ()
        saw_proxy = None
        if final_host is not None and check_host(final_host) == host:
            browser_sha = tuple(Certificate(d).to_record()["sha256"]
                                for d in report.certificate_chain)
            expected = authority.leaf_sha256(host)
            saw_proxy = bool(browser_sha) and expected is not None and browser_sha[0] == expected
        out.append(TLSComparison(host, port, this_probe, recorded_sha, matches, browser_sha,
                                 saw_proxy))
    return out
