"""``custody verify --fast``: the routine fixity check, rendered so nobody mistakes it for
a full verification.

The library (``custody.verify.roots.verify_root(fast=True)``) re-hashes the files with
BLAKE3 alone on every core; this module refuses options that cannot apply to it and
renders its result. The text never says "VERIFIED" and ends with a notice of what was
not checked; the JSON (schemas/cli-verify-fast.schema.json) has no ``verified`` member
at all, but ``"check": "fast-fixity"`` and ``"full_verification": false``, so a program
written for the full verification's JSON fails loudly instead of reading a pass.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from custody.cli.common import human_size, out, shown
from custody.errors import UsageError

FAST_NOTICE = (
    "This was the FAST FIXITY CHECK, not a full verification: signatures, the hash chain, "
    "checkpoints and timestamps were not checked, and SHA-256 was not re-computed. "
    "For court, run 'custody verify'."
)


def check_fast_options(bundle: bool, **given: bool) -> None:
    """--fast checks an evidence root's files only: any option about something else cannot
    apply to it, and is a usage error (exit 2) rather than silently ignored."""
    if bundle:
        raise UsageError("--fast checks an evidence root's files; verify a bundle in full")
    names = {
        "ledger_only": "--ledger-only",
        "checkpoint": "--checkpoint / --size / --root-hash",
        "tsa_root": "--tsa-root",
        "require_timestamps": "--require-timestamps",
        "trusted_key": "--trusted-key",
    }
    for name, present in given.items():
        if present:
            raise UsageError(f"--fast checks files only: {names[name]} cannot apply to it")


def fixity_json(result: Any) -> dict[str, Any]:
    """``verify --fast --json``: no "verified" member, so no program can read it as one."""
    full = result.to_json()
    return {
        "check": "fast-fixity",
        "full_verification": False,
        "fixity_ok": result.ok,
        "notice": FAST_NOTICE,
        "root": full["root"],
        "ledger_size": full["ledger_size"],
        "files_checked": full["files_checked"],
        "bytes_hashed": full["bytes_hashed"],
        "checks": full["checks"],
        "findings": full["findings"],
    }


def render_fixity(result: Any) -> None:
    from rich.panel import Panel

    if result.ok:
        verdict = (
            f"[bold green]FIXITY OK[/] (fast check): {result.files_checked} files match "
            "their recorded digests"
        )
        style = "green"
    else:
        verdict = f"[bold red]FIXITY FAILED[/] (fast check): {len(result.errors)} finding(s)"
        style = "red"
    out.print(Panel(verdict, title=escape(result.root), border_style=style, expand=False))
    for check in result.checks:
        out.print(escape(check.detail))
    if result.findings:
        table = Table("finding", "item", "detail", "expected", "found")
        for f in result.findings:
            colour = "yellow" if f.severity == "warning" else "red"
            table.add_row(
                f"[{colour}]{f.code}[/]",
                shown(f.item),
                escape(f.message),
                escape(f.expected or ""),
                escape(f.found or ""),
            )
        out.print(table)
    out.print(f"{result.files_checked} files checked, {human_size(result.bytes_hashed)} re-hashed")
    out.print(f"[bold yellow]{escape(FAST_NOTICE)}[/]")
