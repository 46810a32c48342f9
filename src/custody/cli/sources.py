"""``custody ingest --as KIND`` (rendering what a source said) and ``custody bagit validate``.

The library does the work (``custody.acquisition.intake``, ``custody.acquisition.sources.
bagit``); this module parses, calls and renders: the copies and records as ``ingest``
shows them, then, phrased as the source's claims, which media the source names but does
not hold, what it says of itself, and every check of its own proofs that failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from custody.cli.common import (
    JsonOpt,
    app,
    err,
    evidence_root,
    progress_bar,
    shown,
    signer_for,
)
from custody.cli.render import said, styled
from custody.i18n import N_, _, ngettext

# What a source names but does not hold (custody.acquisition.intake), in words.
MISSING_WORDS = {
    "omitted": N_("OMITTED"),
    "unsafe": N_("UNSAFE NAME"),
    "missing": N_("MISSING"),
}


def run_intake(
    source: Path,
    kind: str,
    into: str | None,
    descriptive: Any,
    anchors: bytes | None,
    expected: list[str] | None,
    key: str | None,
    root: Path | None,
    json_output: bool,
) -> Any:
    """``custody ingest SOURCE --as KIND``: take it in (``ingest`` renders the result)."""
    from custody.acquisition.intake import intake
    from custody.acquisition.sources.bagit import BagInvalidError

    evidence = evidence_root(root)
    signer = signer_for(key)
    try:
        with progress_bar(_("Ingesting"), not json_output) as observer:
            return intake(
                evidence,
                str(source),
                kind,
                signer,
                into=into,
                descriptive=descriptive,
                observer=observer,
                c2pa_anchors=anchors,
                expected_fingerprints=expected,
            )
    except BagInvalidError as exc:
        # Every reason, one a line, before the one-line error the CLI always ends with; each
        # line framed as 'custody bagit validate' frames it ("error: " stays English in every
        # language, a format scripts key on; the finding's message is in the run's language).
        for finding in exc.validation.errors:
            err.print(f"error: {shown(str(finding))}", soft_wrap=True)
        raise


def intake_failed(report: Any) -> bool:
    """A check of the source's own proofs failed, or claims could not be attached."""
    return bool(report.failed_checks or report.unlinked)


def intake_json(report: Any) -> dict[str, Any]:
    return {
        "kind": report.kind,
        "given": report.given,
        "description": report.source,
        "folder": report.folder,
        "archive": report.archive,
        "roles": [{"path": p, "role": r} for p, r in sorted(report.roles.items())],
        "missing": [
            {
                "name": m.name,
                "where": m.where,
                "status": m.status,
                "reason": m.reason,
                "sender": m.sender,
                "time_as_written": m.time_as_written,
            }
            for m in report.missing
        ],
        "problems": [
            {"code": p.code, "message": p.message, "where": p.where} for p in report.problems
        ],
        "checks": [
            {"path": c.path, "name": c.name, "state": c.state, "reason": c.reason}
            for c in report.checks
        ],
        "warnings": list(report.warnings),
        "unlinked": [{"path": p, "reason": r} for p, r in report.unlinked],
        "already_recorded": list(report.already_recorded),
    }


def render_intake(report: Any) -> None:
    """What the source said, as its claims; what failed, loudly; nothing cut short."""
    err.print(shown(_("According to {source}:").format(source=report.source)))
    roles: dict[str, int] = {}
    for role in report.roles.values():
        roles[role] = roles.get(role, 0) + 1
    for role, count in sorted(roles.items()):
        # The role ("media", "chat") is the name the provenance entry records.
        text = ngettext(
            "{n} file(s) recorded as {role}", "{n} file(s) recorded as {role}", count
        ).format(n=count, role=role)
        err.print(f"  {shown(text)}")
    for m in report.missing:
        word = said(MISSING_WORDS, m.status if m.status in MISSING_WORDS else "missing")
        # What the source says of it (its sender, its time as written) is its claim.
        fields = {"name": m.name, "where": m.where, "sender": m.sender,
                  "time": m.time_as_written, "reason": m.reason}  # fmt: skip
        if m.sender and m.time_as_written:
            text = _("{name} ({where}, from {sender}, at {time}): {reason}")
        elif m.sender:
            text = _("{name} ({where}, from {sender}): {reason}")
        elif m.time_as_written:
            text = _("{name} ({where}, at {time}): {reason}")
        else:
            text = _("{name} ({where}): {reason}")
        err.print(f"  [bold yellow]{escape(word)}[/] {shown(text.format(**fields))}")
    note = _("note")
    for p in report.problems:
        # The problem's code is the reader's identifier; its message is the reader's words.
        if p.where:
            text = _("{code} ({where}): {message}").format(
                code=p.code, where=p.where, message=p.message
            )
        else:
            text = _("{code}: {message}").format(code=p.code, message=p.message)
        err.print(f"  {styled('yellow', note)} {shown(text)}")
    bag_warning = _("bag warning")
    for warning in report.warnings:
        err.print(f"  {styled('yellow', bag_warning)} {shown(warning)}")
    if report.checks:
        counts: dict[str, dict[str, int]] = {}
        for c in report.checks:
            states = counts.setdefault(c.name, {})
            states[c.state] = states.get(c.state, 0) + 1
        table = Table(
            *(escape(h) for h in (_("check"), _("passed"), _("failed"), _("not checkable"))),
            title=escape(_("Checks of the source's own proofs (files)")),
        )
        for name, states in counts.items():
            failed = states.get("failed", 0)
            table.add_row(
                escape(name),
                str(states.get("passed", 0)),
                f"[bold red]{failed}[/]" if failed else "0",
                str(states.get("not_checkable", 0)),
            )
        err.print(table)
        unchecked = {c.name: c.reason for c in report.checks if c.state == "not_checkable"}
        not_checkable = _("not checkable")
        for name, reason in unchecked.items():
            err.print(f"  {styled('yellow', not_checkable)} {shown(name)}: {shown(reason)}")
        check_failed = _("CHECK FAILED")
        for c in report.failed_checks:
            err.print(
                f"{styled('bold red', check_failed)} {shown(c.path)} {shown(c.name)}: "
                f"{shown(c.reason)}"
            )
    not_attached = _("CLAIMS NOT ATTACHED")
    for path, why in report.unlinked:
        err.print(f"{styled('bold red', not_attached)} {shown(path)}: {shown(why)}")
    already = _("already recorded")
    for path in report.already_recorded:
        text = _(
            "{path}: the same file was recorded earlier without this source's claims; ingest "
            "the source into another folder (--into) to record them"
        ).format(path=path)
        err.print(f"{styled('yellow', already)} {shown(text)}")


# --- custody bagit validate -----------------------------------------------------------------

bagit_app = typer.Typer(help="BagIt bags (RFC 8493).", no_args_is_help=True)


app.add_typer(bagit_app, name="bagit")


@bagit_app.command("validate")
def bagit_validate(
    bag: Annotated[Path, typer.Argument(help="The bag's folder.")],
    json_output: JsonOpt = False,
) -> None:
    """Validate a bag with custody's own RFC 8493 validator: exit 0 valid, 1 invalid;
    warnings and errors on stderr, one a line. Nothing is copied or recorded."""
    import sys

    from custody.cli.fastpath import run_bagit_validate

    sys.stdout.flush()
    raise typer.Exit(run_bagit_validate(str(bag), json_output=json_output))
