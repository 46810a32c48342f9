"""Run Chromium for one capture, in a child process, and make sure it is gone afterwards.

``run_browser`` starts ``_chromium_worker.py`` (Playwright + Debian's ``/usr/bin/chromium``)
with an explicit minimal environment (PATH, LANG/LC_ALL, HOME and TMPDIR inside the capture's
work folder), in its own process group, with the job on stdin. It waits at most the
browser's time budget plus a grace period, then kills the group; afterwards it looks for any
process whose command line still names this capture's user-data-dir (a path unique to this
capture) and kills those by id, so that no Chromium outlives a capture even if the driver
died first. ``leftover_processes`` is what the tests use to check that.

Imports only the standard library, ``capture.errors``, ``custody.system.children`` and, for
its messages, ``custody.i18n`` and ``sources.said``.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody.acquisition.capture.errors import CaptureToolError
from custody.acquisition.sources.said import Said
from custody.i18n import N_
from custody.system.children import child_env

CHROMIUM = Path("/usr/bin/chromium")
_WORKER = Path(__file__).with_name("_chromium_worker.py")
_GRACE_S = 15.0


@dataclass(frozen=True)
class DocumentView:
    """A main-frame document response as Chromium reported it (``Network.responseReceived``)."""

    url: str
    status: int | None
    remote_ip: str | None
    remote_port: int | None
    protocol: str | None
    security_state: str | None
    certificate_subject: str | None
    certificate_issuer: str | None
    tls_protocol: str | None

    def to_record(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "remote_ip": self.remote_ip,
            "remote_port": self.remote_port,
            "protocol": self.protocol,
            "security_state": self.security_state,
            "certificate_subject": self.certificate_subject,
            "certificate_issuer": self.certificate_issuer,
            "tls_protocol": self.tls_protocol,
        }


@dataclass(frozen=True)
class BrowserReport:
    """What the browser did and said; screenshot and PDF paths are in the work folder."""

    browser_version: str | None
    user_agent: str | None
    final_url: str | None
    title: str | None
    status: int | None
    timed_out: bool
    settled: bool
    navigation_error: str | None
    documents: tuple[DocumentView, ...]
    certificate_chain: tuple[bytes, ...]
    screenshot: Path | None
    pdf: Path | None
    errors: tuple[str, ...]
    killed_leftovers: int


def check_tools() -> None:
    """Raise ``CaptureToolError`` unless Chromium and Playwright are installed."""
    if not CHROMIUM.is_file():
        raise CaptureToolError(
            Said(N_("Chromium is not installed at {path}: install the Debian package 'chromium'"),
                 path=str(CHROMIUM))
        )
    if importlib.util.find_spec("playwright") is None:
        raise CaptureToolError(
            Said(N_("Playwright for Python is not installed: pip install playwright")))


def minimal_env(home: Path) -> dict[str, str]:
    """The whole environment a capture's child processes get (``custody.system.children``:
    the one helper every child process of custody is started with)."""
    return child_env(home)


def leftover_processes(marker: str) -> list[int]:
    """Ids of live processes whose command line contains ``marker``."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            with open(f"/proc/{entry}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[-1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != b"Z":
            found.append(int(entry))
    return found


def _kill(pids: list[int]) -> int:
    killed = 0
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def run_browser(url: str, *, work: Path, proxy_port: int, spki: str, user_agent: str | None,
                budget_s: float, runtime: Path) -> BrowserReport:
    """Load ``url`` through the proxy on ``proxy_port``; never take much over ``budget_s``."""
    check_tools()
    home = work / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    profile = work / "chromium-profile"
    profile.mkdir(mode=0o700)
    env = minimal_env(home)
    env["TMPDIR"] = os.fspath(runtime)  # Chromium's UNIX sockets need a short path
    budget_ms = max(1000, int(budget_s * 1000))
    job = {
        "url": url,
        "user_data_dir": os.fspath(profile),
        "executable": os.fspath(CHROMIUM),
        "proxy_port": proxy_port,
        "spki": spki,
        "user_agent": user_agent,
        "env": env,
        "launch_timeout_ms": min(30_000, max(5000, budget_ms // 2)),
        "nav_timeout_ms": max(1000, int(budget_ms * 0.6)),
        "idle_timeout_ms": max(500, min(5000, budget_ms // 8)),
        "shot_timeout_ms": max(2000, budget_ms // 6),
        "screenshot_path": os.fspath(work / "screenshot.png"),
        "pdf_path": os.fspath(work / "page.pdf"),
    }
    proc = subprocess.Popen(
        # The profile path on the command line marks the worker as this capture's too.
        [sys.executable, "-I", os.fspath(_WORKER), os.fspath(profile)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, cwd=home, start_new_session=True,
    )
    fatal: str | None = None
    try:
        stdout, stderr = proc.communicate(json.dumps(job).encode(), timeout=budget_s + _GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        fatal = Said(N_("the browser did not finish within the time limit and was killed"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        # The group is the worker's own session: whatever is left in it (Playwright's Node
        # driver, a Chromium helper) was started by this capture.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    # Anything still running with this capture's profile path is a leftover of this capture.
    deadline = time.monotonic() + 2.0
    killed = 0
    while True:
        pids = leftover_processes(os.fspath(profile))
        if not pids or time.monotonic() > deadline:
            killed += _kill(pids)
            break
        killed += _kill(pids)
        time.sleep(0.05)
    data: dict[str, Any] = {}
    if stdout:
        try:
            data = json.loads(stdout)
        except ValueError:
            fatal = fatal or Said(N_("the browser process gave an unreadable answer"))
    if not data and fatal is None:
        last = stderr.decode("utf-8", "replace").strip().splitlines()
        fatal = Said(N_("the browser process failed: {why}"),
                     why=last[-1][:300] if last else Said(N_("no output")))
    if "fatal" in data:
        fatal = Said(N_("the browser failed: {why}"), why=str(data["fatal"]))
    if fatal is not None and not data.get("documents"):
        raise CaptureToolError(fatal)
    return _report(data, work, killed, fatal)


def _report(data: dict[str, Any], work: Path, killed: int, fatal: str | None) -> BrowserReport:
    docs = []
    for doc in data.get("documents", []):
        sec = doc.get("security_details") or {}
        docs.append(DocumentView(
            url=str(doc.get("url")), status=doc.get("status"), remote_ip=doc.get("remote_ip"),
            remote_port=doc.get("remote_port"), protocol=doc.get("protocol"),
            security_state=doc.get("security_state"),
            certificate_subject=sec.get("subjectName"), certificate_issuer=sec.get("issuer"),
            tls_protocol=sec.get("protocol"),
        ))
    errors = list(data.get("errors", []))
    if fatal:
        errors.append(fatal)
    shot = work / "screenshot.png"
    pdf = work / "page.pdf"
    return BrowserReport(
        browser_version=data.get("browser_version"),
        user_agent=data.get("user_agent"),
        final_url=data.get("final_url"),
        title=data.get("title"),
        status=data.get("status"),
        timed_out=bool(data.get("timed_out")) or fatal is not None,
        settled=bool(data.get("settled")),
        navigation_error=data.get("navigation_error"),
        documents=tuple(docs),
        certificate_chain=tuple(
            base64.b64decode(c) for c in data.get("certificate_chain_b64", [])
        ),
        screenshot=shot if data.get("screenshot") and shot.is_file() else None,
        pdf=pdf if data.get("pdf") and pdf.is_file() else None,
        errors=tuple(errors),
        killed_leftovers=killed,
    )
