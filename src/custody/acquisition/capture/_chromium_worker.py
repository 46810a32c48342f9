"""Child process: load one page in a throw-away headless Chromium and describe it.

Run by ``browser.py`` as ``python -I _chromium_worker.py`` with a minimal environment, the
job as JSON on stdin and the answer as one JSON object on stdout. It is a separate process
so that Playwright's Node driver and Chromium inherit only that environment (never the
caller's, which may hold CUSTODY_PASSPHRASE), and so that the parent can kill the whole
process group if the browser wedges.

It drives Debian's ``/usr/bin/chromium`` through Playwright for Python with
``executable_path`` (no browser is downloaded), a fresh user-data-dir given by the parent,
every request sent through the parent's recording proxy, and the DevTools protocol
(``Network`` domain events for the main document, ``Network.getCertificate``,
``Browser.getVersion``) for what the browser itself reports.

Imports only Playwright and the standard library: it is run by path, outside custody.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def run(job: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    out: dict[str, Any] = {"documents": [], "errors": []}
    args = [
        *FLAGS,
        f"--proxy-server=http://127.0.0.1:{job['proxy_port']}",
        "--proxy-bypass-list=<-loopback>",
        f"--ignore-certificate-errors-spki-list={job['spki']}",
    ]
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            job["user_data_dir"],
            executable_path=job["executable"],
            headless=True,
            args=args,
            env=job["env"],
            user_agent=job.get("user_agent") or None,
            viewport={"width": 1280, "height": 800},
            accept_downloads=False,
            # A service worker could answer the page from its own cache, not the network.
            service_workers="block",
            timeout=job["launch_timeout_ms"],
        )
        try:
            context.set_default_timeout(job["shot_timeout_ms"])
            page = context.pages[0] if context.pages else context.new_page()
            cdp = context.new_cdp_session(page)
            version = cdp.send("Browser.getVersion")
            out["browser_version"] = version.get("product")
            out["user_agent"] = version.get("userAgent")
            if job.get("user_agent"):
                out["user_agent"] = job["user_agent"]
            cdp.send("Network.enable")

            def on_response(event: dict[str, Any]) -> None:
                if event.get("type") != "Document":
                    return
                response = event.get("response", {})
                out["documents"].append({
                    "url": response.get("url"),
                    "status": response.get("status"),
                    "remote_ip": response.get("remoteIPAddress"),
                    "remote_port": response.get("remotePort"),
                    "protocol": response.get("protocol"),
                    "security_state": response.get("securityState"),
                    "security_details": response.get("securityDetails"),
                })

            cdp.on("Network.responseReceived", on_response)
            out["timed_out"] = False
            out["settled"] = False
            try:
                response = page.goto(job["url"], wait_until="load", timeout=job["nav_timeout_ms"])
                out["status"] = response.status if response is not None else None
                try:
                    page.wait_for_load_state("networkidle", timeout=job["idle_timeout_ms"])
                    out["settled"] = True
                except PlaywrightTimeout:
                    out["settled"] = False
            except PlaywrightTimeout:
                out["timed_out"] = True
            except PlaywrightError as exc:
                out["navigation_error"] = _first_line(exc)
            out["final_url"] = page.url
            try:
                out["title"] = page.title()
            except PlaywrightError as exc:
                out["errors"].append(f"title: {_first_line(exc)}")
            origin = urlsplit(page.url)
            if origin.scheme == "https":
                try:
                    cert = cdp.send("Network.getCertificate",
                                    {"origin": f"{origin.scheme}://{origin.netloc}"})
                    out["certificate_chain_b64"] = [
                        base64.b64encode(base64.b64decode(c)).decode("ascii")
                        for c in cert.get("tableNames", [])
                    ]
                except PlaywrightError as exc:
                    out["errors"].append(f"Network.getCertificate: {_first_line(exc)}")
            if "navigation_error" not in out or page.url not in ("", "about:blank"):
                try:
                    page.screenshot(path=job["screenshot_path"], full_page=True,
                                    timeout=job["shot_timeout_ms"], animations="disabled")
                    out["screenshot"] = True
                except PlaywrightError as exc:
                    out["errors"].append(f"screenshot: {_first_line(exc)}")
                try:
                    page.pdf(path=job["pdf_path"], print_background=True)
                    out["pdf"] = True
                except PlaywrightError as exc:
                    out["errors"].append(f"pdf: {_first_line(exc)}")
        finally:
            try:
                context.close()
            except PlaywrightError as exc:
                out["errors"].append(f"close: {_first_line(exc)}")
    out["elapsed_s"] = round(time.monotonic() - started, 3)
    return out


def main() -> int:
    job = json.loads(sys.stdin.read())
    try:
        result = run(job)
    except PlaywrightError as exc:
        result = {"fatal": _first_line(exc)}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
