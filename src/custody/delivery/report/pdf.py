"""``print_pdf`` prints a report page to PDF (A4) with Debian's ``chromium`` in headless
mode; ``write_pdf`` writes it to a file. Chromium runs with an explicit minimal
environment (no passphrase, no database password reaches it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from custody.delivery.report.model import RenderError
from custody.errors import ToolMissingError

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


def _child_env(folder: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {**keep, "HOME": str(folder), "XDG_CONFIG_HOME": str(folder / "config")}


def print_pdf(html_text: str, *, timeout: float = PDF_TIMEOUT) -> bytes:
    """The HTML printed to an A4 PDF by headless Chromium, as bytes."""
    browser = find_chromium()
    if browser is None:
        raise ToolMissingError(
            "chromium is not installed: install Debian's 'chromium' package "
            "(apt-get install chromium) to write PDF reports, or write HTML with --out FILE.html"
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
            f"--user-data-dir={folder / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]
        if os.geteuid() == 0:
            argv.insert(2, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
                env=_child_env(folder),
            )
        except subprocess.TimeoutExpired:
            raise RenderError(f"chromium did not finish printing within {timeout:.0f} s") from None
        except OSError as exc:
            raise RenderError(f"chromium could not be started: {exc.strerror}") from None
        data = pdf.read_bytes() if pdf.is_file() else b""
        if proc.returncode != 0 or not data.startswith(b"%PDF"):
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise RenderError(f"chromium could not print the report: {detail[0][:200]}")
        return data
