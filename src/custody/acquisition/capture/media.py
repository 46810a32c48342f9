"""The media on a captured page: yt-dlp's download, and media rebuilt from the browser's fetches.

Two sources, both going through the recording proxy so that every byte is in the WARC:

* ``run_ytdlp`` runs yt-dlp (``python -I -m yt_dlp``) as a child process with a minimal
  environment, ``--ignore-config`` and ``--no-cache-dir`` so no user setting changes what is
  fetched, ``--proxy`` pointing at a recording proxy that only lets it reach the hosts the
  page itself used, ``SSL_CERT_FILE`` + ``--compat-options no-certifi`` so it trusts only
  the capture's throw-away CA (behind which the proxy verifies the real server),
  ``--fixup never`` so downloaded files are not rewritten, ``-k`` so the original streams
  survive a merge, and ``--write-info-json`` to keep yt-dlp's own account of the media. The
  default format choice (``bv*+ba/b``) is its best available quality. When it cannot get
  anything its last ``ERROR:`` line is kept as the reason.
* ``plan_completions`` / ``build_media`` look at what the browser itself fetched: video and
  audio responses, including partial ``206`` responses to Range requests. Pieces that cover
  the whole resource are joined into one file (overlaps must agree byte for byte); a resource
  the browser only sampled is fetched whole once more through the recorder
  (``fetch_whole``), so the WARC holds a complete copy either way.

Each resulting file is linked to the WARC: ``match`` says whether its bytes equal one
recorded response payload (``payload``), the join of recorded ranges (``ranges``), or were
made from recorded responses by yt-dlp (``derived``, e.g. merged audio and video).

Imports warcio, the standard library and ``capture.warc_writer`` / ``capture.errors``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from custody.acquisition.capture.warc_writer import Exchange

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class MediaFile:
    """One media file in the output folder and the WARC records it came from."""

    path: str
    sha256: str
    bytes: int
    source: str
    urls: tuple[str, ...]
    warc_record_ids: tuple[str, ...]
    match: str
    info_json: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "path": self.path, "sha256": self.sha256, "bytes": self.bytes,
            "source": self.source, "urls": list(self.urls),
            "warc_record_ids": list(self.warc_record_ids), "match": self.match,
            "info_json": self.info_json,
        }


@dataclass(frozen=True)
class MediaMiss:
    """Media that could not be had, and the tool's own words for why."""

    url: str
    tool: str
    error: str

    def to_record(self) -> dict[str, str]:
        return {"url": self.url, "tool": self.tool, "error": self.error}


@dataclass(frozen=True)
class YtdlpRun:
    files: tuple[Path, ...]
    info_jsons: tuple[Path, ...]
    error: str | None
    timed_out: bool


def _is_media(content_type: str | None) -> bool:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind.startswith(("video/", "audio/"))


def content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``(first, last, total)`` from a Content-Range header, or None if it is not one."""
    match = _CONTENT_RANGE.match(value or "")
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def run_ytdlp(url: str, *, proxy_port: int, ca_file: Path, work: Path, env: dict[str, str],
              budget_s: float, user_agent: str | None) -> YtdlpRun:
    """Download the media yt-dlp finds at ``url`` into ``work/yt-dlp``; never over budget."""
    target = work / "yt-dlp"
    target.mkdir(mode=0o700)
    if budget_s < 1:
        return YtdlpRun((), (), "no time left for yt-dlp within the capture's time limit", True)
    if importlib.util.find_spec("yt_dlp") is None:
        return YtdlpRun((), (), "yt-dlp is not installed (pip install yt-dlp)", False)
    cmd = [
        sys.executable, "-I", "-m", "yt_dlp",
        "--ignore-config", "--no-cache-dir", "--no-progress", "--no-color",
        "--proxy", f"http://127.0.0.1:{proxy_port}",
        "--compat-options", "no-certifi",
        "--fixup", "never", "-k", "--write-info-json", "--no-write-comments",
        "--restrict-filenames", "--max-downloads", "50",
        "--socket-timeout", str(max(1, min(30, int(budget_s)))),
        "-P", os.fspath(target), "-o", "%(id).60B.%(format_id).40B.%(ext)s",
    ]
    if user_agent:
        cmd += ["--user-agent", user_agent]
    cmd += ["--", url]
    child_env = {**env, "SSL_CERT_FILE": os.fspath(ca_file)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env,
                            cwd=target, start_new_session=True)
    timed_out = False
    try:
        _out, err = proc.communicate(timeout=budget_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate()
    errors = [line[len("ERROR:"):].strip() for line in err.decode("utf-8", "replace").splitlines()
              if line.startswith("ERROR:")]
    files: list[Path] = []
    infos: list[Path] = []
    for path in sorted(target.iterdir()):
        if path.is_symlink() or not path.is_file() or path.name.endswith((".part", ".ytdl")):
            continue
        (infos if path.name.endswith(".info.json") else files).append(path)
    error = errors[-1][:1000] if errors else None
    if timed_out:
        error = "yt-dlp did not finish within the capture's time limit" + (
            f" (last error: {error})" if error else "")
    elif proc.returncode not in (0, 101) and error is None:
        error = f"yt-dlp exited with status {proc.returncode}"
    return YtdlpRun(tuple(files), tuple(infos), error, timed_out)


def plan_completions(exchanges: Iterable[Exchange]) -> list[str]:
    """URLs of media the browser fetched only in part: they need one whole fetch."""
    coverage: dict[str, list[tuple[int, int, int | None]]] = {}
    complete: set[str] = set()
    for ex in exchanges:
        if ex.client != "browser" or ex.status is None or ex.truncated:
            continue
        ctype = ex.header("content-type")
        if ex.status == 200 and _is_media(ctype):
            complete.add(ex.url)
        elif ex.status == 206:
            span = content_range(ex.header("content-range"))
            if span is not None and (_is_media(ctype) or ex.url in coverage):
                coverage.setdefault(ex.url, []).append(span)
    wanted = []
    for url, spans in coverage.items():
        if url in complete:
            continue
        totals = {s[2] for s in spans}
        if len(totals) != 1 or None in totals or not _covers(spans, totals.pop() or 0):
            wanted.append(url)
    return wanted


def _covers(spans: list[tuple[int, int, int | None]], total: int) -> bool:
    reach = 0
    for first, last, _t in sorted(spans):
        if first > reach:
            return False
        reach = max(reach, last + 1)
    return reach >= total > 0


def fetch_whole(url: str, *, proxy_port: int, ca_file: Path, timeout_s: float,
                user_agent: str | None) -> str | None:
    """GET ``url`` in full through the recorder; return an error text or None."""
    if timeout_s < 0.5:
        return "no time left to fetch the whole file within the capture's time limit"
    context = ssl.create_default_context(cafile=os.fspath(ca_file))
    proxy = f"http://127.0.0.1:{proxy_port}"
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": proxy, "https": proxy}),
        urllib.request.HTTPSHandler(context=context),
    )
    request = urllib.request.Request(url, headers={"User-Agent": user_agent or "custody-capture"})
    try:
        with opener.open(request, timeout=timeout_s) as response:
            while response.read(1 << 20):
                pass
    except (OSError, ValueError) as exc:
        return str(exc)[:500] or type(exc).__name__
    return None


@dataclass
class _Payload:
    record_id: str
    url: str
    status: int
    content_type: str | None
    content_range: str | None
    truncated: bool
    sha256: str
    length: int
    saved: Path | None


def scan_warc(warc: Path, spool: Path) -> list[_Payload]:
    """Every response payload's decoded digest; media payloads are also saved to ``spool``."""
    spool.mkdir(mode=0o700)
    found = []
    with open(warc, "rb") as handle:
        for n, record in enumerate(ArchiveIterator(handle)):
            if record.rec_type != "response" or record.http_headers is None:
                continue
            headers = record.http_headers
            status = int(headers.get_statuscode() or 0)
            ctype = headers.get_header("Content-Type")
            crange = headers.get_header("Content-Range")
            keep = _is_media(ctype) or (status == 206 and crange)
            saved = spool / f"{n:06d}" if keep else None
            digest = hashlib.sha256()
            length = 0
            undecodable = False
            out = open(saved, "xb") if saved else None  # noqa: SIM115 - closed below
            try:
                stream = record.content_stream()
                while True:
                    block = stream.read(1 << 20)
                    if not block:
                        break
                    digest.update(block)
                    length += len(block)
                    if out:
                        out.write(block)
            except Exception:  # a hostile body: warcio's decoders raise many kinds
                undecodable = True
            finally:
                if out:
                    out.close()
            if undecodable:  # keep it out of media matching; the WARC still holds it
                if saved is not None:
                    saved.unlink()
                continue
            found.append(_Payload(
                record_id=str(record.rec_headers.get_header("WARC-Record-ID")),
                url=str(record.rec_headers.get_header("WARC-Target-URI")), status=status,
                content_type=ctype, content_range=crange,
                truncated=bool(record.rec_headers.get_header("WARC-Truncated")),
                sha256=digest.hexdigest(), length=length, saved=saved,
            ))
    return found


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class Built:
    """A media file made in the work folder, before it is moved into the output folder."""

    work_path: Path
    name: str
    source: str
    urls: tuple[str, ...]
    record_ids: tuple[str, ...]
    match: str
    sha256: str
    info_json: Path | None = None


def build_media(payloads: list[_Payload], ytdlp: YtdlpRun, *, work: Path,
                clients: Mapping[str, str]) -> list[Built]:
    """yt-dlp's files linked to the WARC, plus whole media the browser fetched itself.

    ``clients`` maps response record ids to the client that made the request. Files with
    the same bytes are one item listing every URL and record they were seen under.
    """
    by_sha: dict[str, list[_Payload]] = {}
    for p in payloads:
        if p.status in (200, 206) and not p.truncated and p.length:
            by_sha.setdefault(p.sha256, []).append(p)
    built: list[Built] = []
    infos = {i.name[: -len(".info.json")]: i for i in ytdlp.info_jsons}
    for path in ytdlp.files:
        sha, _size = _sha256(path)
        stem = path.name.split(".", 1)[0]
        info = infos.get(path.name.rsplit(".", 1)[0]) or next(
            (v for k, v in infos.items() if k.split(".", 1)[0] == stem), None)
        hits = by_sha.get(sha, [])
        if hits:
            built.append(Built(path, path.name, "yt-dlp", tuple(sorted({h.url for h in hits})),
                               tuple(h.record_id for h in hits), "payload", sha, info))
            continue
        urls = _info_urls(info)
        ids = tuple(p.record_id for p in payloads if p.url in urls and p.status in (200, 206))
        built.append(Built(path, path.name, "yt-dlp", tuple(sorted(urls)), ids,
                           "derived" if ids else "unlinked", sha, info))
    # Media the browser (or the completion fetch) got: whole 200s and joined 206 ranges.
    index = {item.sha256: n for n, item in enumerate(built)}

    def add(item: Built) -> None:
        at = index.get(item.sha256)
        if at is None:
            index[item.sha256] = len(built)
            built.append(item)
            return
        old = built[at]
        built[at] = replace(old, urls=tuple(sorted({*old.urls, *item.urls})),
                            record_ids=tuple(dict.fromkeys(old.record_ids + item.record_ids)))

    groups: dict[str, list[_Payload]] = {}
    for p in payloads:
        if p.saved is not None and not p.truncated:
            groups.setdefault(p.url, []).append(p)
    out_dir = work / "joined"
    out_dir.mkdir(mode=0o700)
    for n, (url, group) in enumerate(sorted(groups.items())):
        whole = [(p, p.saved) for p in group if p.status == 200 and p.saved is not None]
        if whole:
            p, saved = whole[-1]
            source = "completion" if clients.get(p.record_id) == "completion" else "browser"
            add(Built(saved, f"{source}-{n:03d}{_extension(url, p.content_type)}", source,
                      (url,), (p.record_id,), "payload", p.sha256))
            continue
        joined = _join(group, out_dir / f"{n:03d}")
        if joined is None:
            continue
        sha, _size = _sha256(joined)
        add(Built(joined, f"browser-{n:03d}{_extension(url, group[0].content_type)}",
                  "browser-ranges", (url,),
                  tuple(p.record_id for p in group if p.status == 206), "ranges", sha))
    return built


def _join(group: list[_Payload], dest: Path) -> Path | None:
    """Join 206 pieces that cover the whole resource, checking overlaps agree; else None."""
    pieces = []
    for p in group:
        span = content_range(p.content_range)
        if p.status != 206 or span is None or p.saved is None:
            continue
        first, last, total = span
        if total is None or last - first + 1 != p.length:
            return None
        pieces.append((first, last, total, p.saved))
    totals = {t for _f, _l, t, _s in pieces}
    if not pieces or len(totals) != 1 or not _covers([(a, b, t) for a, b, t, _ in pieces],
                                                      totals.copy().pop()):
        return None
    with open(dest, "xb") as out:
        reach = 0
        for first, last, _total, saved in sorted(pieces):
            with open(saved, "rb") as src:
                if first < reach:  # overlap: must match what is already written
                    overlap = min(reach, last + 1) - first
                    out.flush()
                    with open(dest, "rb") as check:
                        check.seek(first)
                        agree = check.read(overlap) == src.read(overlap)
                    if not agree:
                        out.close()
                        dest.unlink()
                        return None
                if last + 1 > reach:
                    src.seek(reach - first if reach > first else 0)
                    shutil.copyfileobj(src, out, 1 << 20)
                    reach = last + 1
    return dest


def _extension(url: str, content_type: str | None) -> str:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    known = {"video/mp4": ".mp4", "video/webm": ".webm", "audio/mpeg": ".mp3",
             "audio/mp4": ".m4a", "audio/ogg": ".ogg", "video/ogg": ".ogv",
             "audio/webm": ".weba", "video/quicktime": ".mov"}
    if kind in known:
        return known[kind]
    suffix = Path(url.split("?", 1)[0]).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".bin"


def _info_urls(info: Path | None) -> set[str]:
    if info is None:
        return set()
    try:
        data = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    urls = set()
    for fmt in [data, *(data.get("requested_formats") or [])]:
        if isinstance(fmt, dict) and isinstance(fmt.get("url"), str):
            urls.add(fmt["url"])
    return urls


def wait_until(deadline: float) -> float:
    """Seconds left before ``deadline`` (monotonic), never negative."""
    return max(0.0, deadline - time.monotonic())
