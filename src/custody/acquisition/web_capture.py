"""Web captures into an evidence root: the library side of ``custody capture``.

For each URL, in the order given:

1. a new folder inside the root, ``<into>/<UTC start time>-<host>[-<port>]`` (``-2``,
   ``-3`` ... if that name is taken), its parents made one component at a time without
   following symbolic links;
2. ``capture.capture_url`` into it (``acquisition/capture``: WACZ, screenshot, PDF, media,
   yt-dlp's info JSON, ``capture.json``);
3. every file it wrote catalogued as an item (``acquisition/catalogue.py``, with the URL as
   each item's ``source``);
4. one signed ``event`` of action ``capture`` (``ledger/bodies.py``, ``ledger/captures.py``)
   naming all those items and carrying ``capture.json``'s record, read back from the file
   that was catalogued. Its body checks that every item has the digest the record lists.

A capture that fails after its folder was claimed - the host unreachable, a certificate
refused, no document, the browser failing - leaves a ``capture.json`` that says what was
attempted and why it failed; it is recorded the same way (the one item is that file), so the
attempt is in the chain of custody too, and the run goes on with the next URL. A failure
before anything was written (Chromium missing, bad arguments) records nothing and stops the
run. The run ends with a checkpoint; trusted timestamps are the caller's (the CLI asks for
them at once, as ``catalogue --timestamp`` does).

Imports ``acquisition.capture``, ``acquisition.catalogue``, the ledger, ``root``, ``clock``,
``errors`` and ``i18n`` (its errors are said in the language of the run; what it records, the
capture event and ``capture.json``, never changes with it).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from custody.acquisition.capture import browser
from custody.acquisition.capture.capture import MAX_TIMEOUT_S, capture_url, check_url
from custody.acquisition.capture.errors import (
    CaptureError,
    CaptureToolError,
    CaptureUsageError,
)
from custody.acquisition.catalogue import Descriptive, Outcome, catalogue
from custody.clock import Clock, utc_now
from custody.errors import RecordError, StorageError, UsageError
from custody.i18n import _
from custody.keys.keyring import SigningKey
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import EventBody, ItemRef
from custody.ledger.captures import FAILED_OUTCOMES, RECORD_FILE, capture_summary
from custody.root import STATE_DIR, EvidenceRoot

DEFAULT_INTO = "captures"
MAX_URLS = 10_000
MAX_URL_FILE = 16 * 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class CapturedItem:
    """One file of a capture as catalogued: its item record and its role in the capture."""

    seq: int
    path: str
    sha256: str
    size: int
    role: str
    kind: str  # catalogue's: "new" or "duplicate" (of content recorded before)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "path": self.path, "sha256": self.sha256, "size": self.size,
                "role": self.role, "kind": self.kind}


@dataclass
class CaptureOutcome:
    """What became of one URL."""

    url: str
    folder: str | None = None  # root-relative; None if nothing was written
    outcome: str | None = None
    error: str | None = None
    event: int | None = None
    items: list[CapturedItem] = field(default_factory=list)
    summary: dict[str, Any] | None = None  # ledger.captures.capture_summary of the record
    seconds: float = 0.0

    @property
    def captured(self) -> bool:
        """The page itself was captured (whatever its HTTP status), and recorded."""
        return self.event is not None and self.outcome not in FAILED_OUTCOMES

    @property
    def complete(self) -> bool:
        """Captured, and the page finished loading within the time limit."""
        return self.captured and self.outcome != "timed-out"

    def to_json(self) -> dict[str, Any]:
        summary = self.summary or {}
        return {
            "url": self.url,
            "folder": self.folder,
            "outcome": self.outcome,
            "captured": self.captured,
            "error": self.error,
            "event": self.event,
            "final_url": summary.get("final_url"),
            "http_status": summary.get("http_status"),
            "server_ip": summary.get("server_ip"),
            "insecure": summary.get("insecure"),
            "items": [i.to_json() for i in self.items],
            "capture": self.summary,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class CaptureRunReport:
    captures: list[CaptureOutcome] = field(default_factory=list)
    checkpoint: int | None = None
    ledger_size: int = 0

    @property
    def failed(self) -> list[CaptureOutcome]:
        return [c for c in self.captures if not c.complete]


# --- arguments ------------------------------------------------------------------------------


def read_url_file(path: Path) -> list[str]:
    """URLs from a text file: one a line; blank lines and lines starting '#' are skipped."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_URL_FILE + 1)
    except OSError as exc:
        raise UsageError(_("cannot read {path}: {why}").format(path=path, why=exc.strerror)
                         ) from None
    if len(data) > MAX_URL_FILE:
        raise UsageError(_("{path} is larger than {size} MiB").format(
            path=path, size=MAX_URL_FILE // (1024 * 1024)))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(_("{path} is not UTF-8 text").format(path=path)) from None
    urls = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            urls.append(line)
    if len(urls) > MAX_URLS:
        raise UsageError(_("{path} lists more than {limit} URLs").format(path=path, limit=MAX_URLS))
    return urls


def check_arguments(urls: Sequence[str], into: str, timeout_s: float,
                    user_agent: str | None) -> str:
    """Refuse the whole run before anything is written; return ``into`` normalised."""
    if not urls:
        raise UsageError(_("give at least one URL (or --from-file)"))
    if len(urls) > MAX_URLS:
        raise UsageError(_("more than {limit} URLs in one run").format(limit=MAX_URLS))
    for url in urls:
        try:
            check_url(url)
        except CaptureUsageError as exc:
            raise UsageError(_("{why} ({url})").format(why=exc, url=printable(url))) from None
    if not (0 < timeout_s <= MAX_TIMEOUT_S):
        raise UsageError(_("--timeout must be more than 0 and at most {seconds} s").format(
            seconds=f"{MAX_TIMEOUT_S:.0f}"))
    if user_agent is not None and (not user_agent or not user_agent.isprintable()
                                   or len(user_agent) > 512):
        raise UsageError(_("--user-agent must be one printable line of at most 512 characters"))
    parts = [p for p in into.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or parts[0] == STATE_DIR or into.startswith("/"):
        raise UsageError(_("--into {folder} must be a folder inside the evidence root, given "
                           "relative to it").format(folder=repr(into)))
    return "/".join(parts)


def printable(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:300])


# --- folders --------------------------------------------------------------------------------


def folder_name(moment: datetime, url: str) -> str:
    """``20261205T101500Z-example.org`` (``-<port>`` when not the scheme's default)."""
    scheme, host, port = check_url(url)
    stamp = moment.strftime("%Y%m%dT%H%M%SZ")
    default = 443 if scheme == "https" else 80
    name = host.replace(":", "-")  # an IPv6 literal
    return f"{stamp}-{name}" + ("" if port == default else f"-{port}")


def _make_folders(root: EvidenceRoot, rel: str) -> None:
    """Make ``rel`` (and its parents) inside the root, never through a symbolic link."""
    fd = os.open(root.path, _DIR_FLAGS)
    try:
        for part in rel.split("/"):
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise UsageError(
                    _("{folder}: {part} is not a folder custody may write into ({why}; "
                      "symbolic links are not followed)").format(
                        folder=rel, part=repr(part), why=exc.strerror)
                ) from None
            os.close(fd)
            fd = nxt
    except OSError as exc:
        raise StorageError(_("cannot create {path}: {why}").format(
            path=root.path / rel, why=exc.strerror)) from None
    finally:
        os.close(fd)


def _claim_name(root: EvidenceRoot, into: str, base: str) -> str:
    for attempt in range(1, 1000):
        rel = f"{into}/{base}" + ("" if attempt == 1 else f"-{attempt}")
        if not os.path.lexists(root.path / rel):
            return rel
    raise StorageError(_("no free folder name for {name} in {folder}").format(
        name=base, folder=into))


# --- the run --------------------------------------------------------------------------------


def capture_urls(
    root: EvidenceRoot,
    urls: Sequence[str],
    signer: SigningKey,
    *,
    into: str = DEFAULT_INTO,
    descriptive: Descriptive | None = None,
    timeout_s: float = 120.0,
    insecure: bool = False,
    user_agent: str | None = None,
    trust_anchors: Path | None = None,
    clock: Clock = utc_now,
    announce: Callable[[str, str], None] | None = None,
) -> CaptureRunReport:
    """Capture each URL into its own new folder under ``into`` and record it (see above).

    ``announce(url, folder)`` is called before each capture starts (captures take seconds
    to minutes). Raises ``UsageError`` for arguments that cannot be used (before anything
    is written), ``CaptureToolError`` when Chromium or Playwright is missing.
    """
    into = check_arguments(urls, into, timeout_s, user_agent)
    if trust_anchors is not None:
        try:
            os.stat(trust_anchors)
        except OSError as exc:
            raise UsageError(_("cannot read {path}: {why}").format(
                path=trust_anchors, why=exc.strerror)) from None
    browser.check_tools()
    with open_ledger(root) as ledger:
        ledger.check_appendable()  # a ledger that refuses appends: say so before capturing
    descriptive = descriptive or Descriptive()
    report = CaptureRunReport()
    _make_folders(root, into)
    for url in urls:
        rel = _claim_name(root, into, folder_name(clock(), url))
        if announce is not None:
            announce(url, rel)
        report.captures.append(
            _one(root, url, rel, signer, descriptive, clock, timeout_s=timeout_s,
                 insecure=insecure, user_agent=user_agent, trust_anchors=trust_anchors)
        )
    with open_ledger(root) as ledger, ledger.writer(signer, clock=clock) as writer:
        if ledger.needs_checkpoint():
            report.checkpoint = writer.checkpoint().seq
        report.ledger_size = writer.size
    return report


def _one(root: EvidenceRoot, url: str, rel: str, signer: SigningKey, descriptive: Descriptive,
         clock: Clock, **options: Any) -> CaptureOutcome:
    result = CaptureOutcome(url)
    folder = root.path / rel
    began = time.monotonic()
    failure: CaptureError | CaptureToolError | None = None
    try:
        capture_url(url, folder, clock=clock, timeout_s=options["timeout_s"],
                    insecure=options["insecure"], user_agent=options["user_agent"],
                    trust_anchors=options["trust_anchors"])
    except (CaptureError, CaptureToolError) as exc:
        # The account of a failed attempt is in capture.json once the folder was claimed.
        failure = exc
    result.seconds = time.monotonic() - began
    result.error = str(failure) if failure is not None else None
    record = _read_record(folder)
    if record is None:
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # only if the capture left it empty
        if failure is not None:
            raise failure  # nothing was written, so there is nothing to record
        raise StorageError(_("the capture of {url} wrote no capture.json; nothing is recorded"
                             ).format(url=url))
    result.folder = rel
    result.outcome = str(record.get("outcome"))
    _record(root, rel, record, signer, descriptive, clock, result)
    return result


def _read_record(folder: Path) -> dict[str, Any] | None:
    """capture.json as written, read without following a link; None if there is none."""
    try:
        fd = os.open(folder / RECORD_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        data = handle.read()
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StorageError(_("{path} is not readable JSON: {why}").format(
            path=folder / RECORD_FILE, why=exc)) from None
    return record if isinstance(record, dict) else None


def _record(root: EvidenceRoot, rel: str, record: Mapping[str, Any], signer: SigningKey,
            descriptive: Descriptive, clock: Clock, result: CaptureOutcome) -> None:
    """Catalogue the folder's files and append the capture event naming them."""
    described = Descriptive(
        collector=descriptive.collector,
        source=str(record.get("requested_url") or result.url),
        location=descriptive.location,
        note=descriptive.note,
        tags=descriptive.tags,
    )
    catalogued = catalogue(root, [root.path / rel], signer, descriptive=described, clock=clock,
                           checkpoint=False)
    if catalogued.skipped:
        first = catalogued.skipped[0]
        raise StorageError(_("{path}: {why}; the capture in {folder} is not recorded").format(
            path=first.path, why=first.reason, folder=rel))
    roles = {f"{rel}/{f['path']}": str(f["role"]) for f in record.get("files", [])
             if isinstance(f, dict) and isinstance(f.get("path"), str)}
    roles[f"{rel}/{RECORD_FILE}"] = "record"
    outcomes: dict[str, Outcome] = {o.path: o for o in catalogued.outcomes}
    missing = sorted(set(roles) - set(outcomes))
    if missing or set(outcomes) - set(roles):
        odd = missing[0] if missing else sorted(set(outcomes) - set(roles))[0]
        raise StorageError(_("{path}: the capture folder {folder} does not hold exactly the "
                             "files its capture.json lists; the capture is not recorded").format(
            path=odd, folder=rel))
    items = tuple(ItemRef(outcomes[p].seq, outcomes[p].sha256, p) for p in sorted(outcomes,
                  key=lambda p: outcomes[p].seq))
    try:
        body = EventBody("capture", items, folder=rel, capture=dict(record))
    except RecordError as exc:
        raise StorageError(_("the files of {folder} changed between the capture and their "
                             "cataloguing, or capture.json is not a capture record ({why}); "
                             "the capture is not recorded").format(folder=rel, why=exc)
                           ) from None
    with open_ledger(root) as ledger, ledger.writer(signer, clock=clock) as writer:
        result.event = writer.append("event", body.to_json()).seq
    result.items = [
        CapturedItem(o.seq, o.path, o.sha256, o.size, roles[o.path], o.kind)
        for o in sorted(outcomes.values(), key=lambda o: o.seq)
    ]
    result.summary = capture_summary(record)
