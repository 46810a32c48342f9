"""``print_pdf`` prints a report page to PDF (A4) with Debian's ``chromium`` in headless
mode; ``write_pdf`` writes it to a file. Chromium runs with a throw-away profile and HOME in
a temporary folder removed afterwards, and an explicit minimal environment
(``custody.system.children``), so the user's own browser profile is never written and no
secret of custody's reaches the browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from custody.delivery.report.model import RenderError
from custody.errors import ToolMissingError
from custody.i18n import _
from custody.system.children import child_env

PDF_TIMEOUT = 300.0


# --- PDF ------------------------------------------------------------------------------------


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def write_pdf(html_text: str, out: Path, *, timeout: float = PDF_TIMEOUT) -> None:
    """Print the HTML to an A4 PDF at ``out`` with headless Chromium."""
    from custody.system.files import write_atomic

    write_atomic(out, print_pdf(html_text, timeout=timeout))  # StorageError with the reason


def print_pdf(html_text: str, *, timeout: float = PDF_TIMEOUT) -> bytes:
    """The HTML printed to an A4 PDF by headless Chromium, as bytes."""
    browser = find_chromium()
    if browser is None:
        raise ToolMissingError(
            _(
                "chromium is not installed: install Debian's 'chromium' package "
                "(apt-get install chromium) to write PDF reports, or write HTML with "
                "--out FILE.html"
            )
        )
    with tempfile.TemporaryDirectory(prefix="custody-pdf-") as tmp:
        folder = Path(tmp)
        page = folder / "report.html"
        page.write_text(html_text, encoding="utf-8")
        pdf = folder / "report.pdf"
        argv = [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--mute-audio",
            "--hide-scrollbars",
            # A throw-away profile, and HOME inside the same temporary folder: Chromium
            # also writes ~/.pki/nssdb, ~/.cache and crash reports under HOME, never the
            # user's ~/.config/chromium.
            f"--user-data-dir={folder / 'profile'}",
            f"--crash-dumps-dir={folder / 'crashes'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]
        if os.geteuid() == 0:
            argv.insert(2, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        try:
            home = folder / "home"
            home.mkdir(mode=0o700)
            proc = subprocess.run(
                argv,
                env=child_env(home, program=browser),  # no secret of ours, no user profile
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RenderError(
                _("chromium did not finish printing within {seconds} s").format(
                    seconds=f"{timeout:.0f}"
                )
            ) from None
        except OSError as exc:
            raise RenderError(
                _("chromium could not be started: {why}").format(why=exc.strerror)
            ) from None
        data = pdf.read_bytes() if pdf.is_file() else b""
        if proc.returncode != 0 or not data.startswith(b"%PDF"):
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise RenderError(
                _("chromium could not print the report: {why}").format(why=detail[0][:200])
            )
        return data
