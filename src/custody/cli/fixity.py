"""``custody verify --fast``: the routine fixity check, rendered so nobody mistakes it for
a full verification.

The library (``custody.verify.roots.verify_root(fast=True)``) re-hashes the files with
BLAKE3 alone on every core; this module refuses options that cannot apply to it and
renders its result. The text never says "VERIFIED" and ends with a notice of what was
not checked; the JSON (schemas/cli-verify-fast.schema.json) has no ``verified`` member
at all, but ``"check": "fast-fixity"`` and ``"full_verification": false``, so a program
written for the full verification's JSON fails loudly instead of reading a pass.

Plain forms (``verify --fast [ROOT] [--root R] [--json]``) are answered here before Typer
and rich load (``custody.cli.fastpath``), as ``hash`` is: on a scheduled check of a large
archive nothing matters but the disk, and on a small one the CLI framework's import would
otherwise be most of the time. So this module imports neither typer nor rich; the Typer
command renders through the same functions.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from custody.cli.printable import columns, pad, printable
from custody.errors import UsageError
from custody.i18n import N_, _, ngettext

# English in the JSON ("notice"), which every language shares; translated in the text.
FAST_NOTICE = N_(
    "This was the FAST FIXITY CHECK, not a full verification: signatures, the hash chain, "
    "checkpoints and timestamps were not checked, and SHA-256 was not re-computed. "
    "For court, run 'custody verify'."
)


def check_fast_options(bundle: bool, **given: bool) -> None:
    """--fast checks an evidence root's files only: any option about something else cannot
    apply to it, and is a usage error (exit 2) rather than silently ignored."""
    if bundle:
        raise UsageError(_("--fast checks an evidence root's files; verify a bundle in full"))
    names = {
        "ledger_only": "--ledger-only",
        "checkpoint": "--checkpoint / --size / --root-hash",
        "tsa_root": "--tsa-root",
        "require_timestamps": "--require-timestamps",
        "trusted_key": "--trusted-key",
        "witness": "--witness / --min-witnesses",
        "at": "--at",
    }
    for name, present in given.items():
        if present:
            raise UsageError(
                _("--fast checks files only: {options} cannot apply to it").format(
                    options=names[name]
                )
            )


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


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def fixity_text(result: Any, width: int | None = None) -> str:
    """What a person sees: the verdict of the fast check, each finding in full, and what
    was not checked. Prose is wrapped at the terminal's width, never inside a word, a
    path or a digest; every name from the evidence is made printable (no control
    characters or bidirectional overrides can forge a line)."""
    import shutil
    import textwrap

    width = width or min(100, shutil.get_terminal_size((80, 24)).columns)

    def para(text: str, indent: str = "") -> list[str]:
        return textwrap.wrap(
            text,
            width=width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [indent]

    lines: list[str] = []
    if result.ok:
        verdict = ngettext(
            "FIXITY OK (fast check): {n} file matches its recorded digests in {root}",
            "FIXITY OK (fast check): {n} files match their recorded digests in {root}",
            result.files_checked,
        ).format(n=result.files_checked, root=printable(result.root))
    else:
        count = len(result.errors)
        verdict = ngettext(
            "FIXITY FAILED (fast check): {n} finding in {root}",
            "FIXITY FAILED (fast check): {n} findings in {root}",
            count,
        ).format(n=count, root=printable(result.root))
    lines += para(verdict)
    # "expected" and "found" are padded to one width, so the two values line up.
    labels = (_("expected"), _("found"))
    label_width = max(columns(label) for label in labels) + 1
    expected_label, found_label = (pad(label, label_width) for label in labels)
    for f in result.findings:
        lines.append("")
        lines.append(f"  {f.code}  {printable(f.item)}")
        lines += para(printable(f.message), "    ")
        if f.expected:
            lines.append(f"    {expected_label}{printable(f.expected)}")
        if f.found:
            lines.append(f"    {found_label}{printable(f.found)}")
    lines.append("")
    for check in result.checks:
        lines += para(printable(check.detail))
    lines.append(
        ngettext(
            "{n} file checked, {size} re-hashed.",
            "{n} files checked, {size} re-hashed.",
            result.files_checked,
        ).format(n=result.files_checked, size=_size(result.bytes_hashed))
    )
    lines.append("")
    lines += para(_(FAST_NOTICE))
    return "\n".join(lines) + "\n"


def run_fast(
    root_arg: str | None,
    *,
    json_output: bool,
    ledger: str | None = None,
    out: TextIO | None = None,
) -> int:
    """The whole ``verify --fast`` command: find the root, check, render; the exit code.

    The same for both doors (the Typer command and ``custody.cli.fastpath``). A root whose
    ledger is in PostgreSQL must be one this person confirmed (``--ledger``), as for the
    full check: the expected digests come from that ledger.
    """
    from custody.errors import ExitCode
    from custody.root import find_root
    from custody.trust.databases import confirm_ledger
    from custody.trust.policy import policy_for
    from custody.verify.roots import verify_root

    out = out or sys.stdout
    evidence = find_root(explicit=root_arg) if root_arg else find_root()
    confirm_ledger(evidence, ledger)
    # The fast check reports no signature and so no trust decision; the policy is only what
    # verify_root needs to read the ledger.
    result = verify_root(evidence, policy=policy_for(), fast=True)
    if json_output:
        out.write(json.dumps(fixity_json(result), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(fixity_text(result))
    out.flush()
    return ExitCode.OK if result.ok else ExitCode.FINDINGS


def parse_quick(words: Sequence[str]) -> tuple[str | None, bool] | None:
    """``verify --fast [ROOT] [--root R] [--json]`` -> (root, json); None for anything else
    (the full CLI then parses it, and refuses what cannot apply)."""
    if "--fast" not in words:
        return None
    root: str | None = None
    positional: str | None = None
    json_output = False
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word == "--fast":
            continue
        if word == "--json":
            json_output = True
        elif word == "--root" and rest:
            if root is not None:
                return None
            root = rest.pop(0)
        elif word.startswith("--root="):
            if root is not None:
                return None
            root = word.split("=", 1)[1]
        elif word.startswith("-") or positional is not None:
            return None
        else:
            positional = word
    chosen = root or positional
    if chosen is not None and positional is not None and root is not None:
        return None  # both: let the full CLI decide what they mean
    if chosen is not None and _looks_like_bundle(chosen):
        return None  # the full CLI refuses --fast on a bundle, with the usual message
    return chosen, json_output


def _looks_like_bundle(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "bagit.txt")) or (
        os.path.isfile(path) and path.lower().endswith(".zip")
    )
