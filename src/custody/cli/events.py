"""``custody event …`` and ``custody vault …``: the chain of custody after cataloguing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from custody.cli.common import (
    ExhibitSelectOpt,
    IncidentSelectOpt,
    ItemsArg,
    JsonOpt,
    KeyOpt,
    ReasonOpt,
    RootOpt,
    TagSelectOpt,
    app,
    emit_json,
    evidence_root,
    out,
    select_items,
    signer_for,
)
from custody.i18n import _, ngettext

event_app = typer.Typer(
    help="Record what happens to items after cataloguing.", no_args_is_help=True
)


app.add_typer(event_app, name="event")


vault_app = typer.Typer(help="Second copies of the evidence root.", no_args_is_help=True)


app.add_typer(vault_app, name="vault")


def _run_event(
    action: str,
    items: list[str] | None,
    tags: list[str] | None,
    exhibits: list[str] | None,
    key: str | None,
    root: Path | None,
    json_output: bool,
    incidents: list[str] | None = None,
    **details: Any,
) -> None:
    from custody.handling.events import event as record
    from custody.ledger.backends import open_ledger

    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        seqs = select_items(ledger, items, tags, incidents, exhibits)
    signer = signer_for(key)
    signed = record(evidence, signer, action, seqs, **details)
    _render_event(signed, json_output)


def _render_event(signed: Any, json_output: bool) -> None:
    from custody.ledger.describe import record_json, summarise

    if json_output:
        emit_json(record_json(signed))
    else:
        out.print(
            _("record {seq}: {summary}").format(
                seq=signed.seq, summary=escape(summarise(signed)["summary"])
            )
        )


@app.command("tag")
def tag_command(
    items: ItemsArg = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Add this tag (repeatable).")
    ] = None,
    untag: Annotated[
        list[str] | None, typer.Option("--untag", help="Remove this tag (repeatable).")
    ] = None,
    of_tag: Annotated[
        list[str] | None,
        typer.Option("--of-tag", help="Also every item that has this tag now (repeatable)."),
    ] = None,
    incident: IncidentSelectOpt = None,
    exhibit: ExhibitSelectOpt = None,
    reason: ReasonOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Add or remove tags on catalogued ITEMS, as signed events.

    Tags select items later: 'custody export --tag NAME', 'report --tag', 'history --tag',
    'event ... --tag'. Items that already carry a tag (or, with --untag, do not) are left
    alone and named; an instruction that changes nothing is refused."""
    from custody.errors import UsageError
    from custody.handling.events import plan_tags
    from custody.handling.events import tag as record_tag
    from custody.ledger.backends import open_ledger

    if not tag and not untag:
        raise UsageError(_("say which tag to add (--tag NAME) or remove (--untag NAME)"))
    both = set(tag or ()) & set(untag or ())
    if both:
        raise UsageError(
            _("--tag and --untag both name {tags}").format(tags=", ".join(sorted(both)))
        )
    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        seqs = select_items(ledger, items, of_tag, incident, exhibit)
    for names, remove in ((tag, False), (untag, True)):
        if names:  # every change is checked before any is signed
            plan_tags(evidence, seqs, names, remove=remove)
    signer = signer_for(key)
    changes = []
    for names, remove in ((tag, False), (untag, True)):
        if names:
            changes.append(record_tag(evidence, signer, seqs, names, remove=remove, reason=reason))
    if json_output:
        emit_json(
            {
                "changes": [
                    {
                        "record": c.record.seq,
                        "action": c.record.record.body["action"],
                        "tags": list(c.tags),
                        "items": list(c.items),
                        "unchanged": list(c.unchanged),
                    }
                    for c in changes
                ]
            }
        )
        return
    for c in changes:
        _render_event(c.record, False)
        if c.unchanged:
            out.print(
                ngettext(
                    "  left alone (already so): record {records}",
                    "  left alone (already so): records {records}",
                    len(c.unchanged),
                ).format(records=", ".join(map(str, c.unchanged)))
            )


@event_app.command("transfer")
def event_transfer(
    items: ItemsArg = None,
    to: Annotated[str, typer.Option("--to", help="Who receives custody.")] = "",
    reason: ReasonOpt = None,
    tag: TagSelectOpt = None,
    incident: IncidentSelectOpt = None,
    exhibit: ExhibitSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Custody of ITEMS passes to another person or organisation."""
    from custody.errors import UsageError

    if not to:
        raise UsageError(_("say who receives custody with --to NAME"))
    _run_event(
        "transfer", items, tag, exhibit, key, root, json_output, incident, to=to, reason=reason
    )


@event_app.command("access")
def event_access(
    items: ItemsArg = None,
    reason: ReasonOpt = None,
    tag: TagSelectOpt = None,
    incident: IncidentSelectOpt = None,
    exhibit: ExhibitSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """ITEMS were viewed, played or analysed."""
    _run_event("access", items, tag, exhibit, key, root, json_output, incident, reason=reason)


@event_app.command("note")
def event_note(
    items: ItemsArg = None,
    text: Annotated[str | None, typer.Option("--text", help="The annotation.")] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What the items show, in words.")
    ] = None,
    incident: Annotated[
        str | None,
        typer.Option(
            "--incident",
            help="The incident these items document (later selectable with --incident in "
            "export, report, history and event).",
        ),
    ] = None,
    language: Annotated[
        str | None,
        typer.Option("--language", help="The language spoken or written in the items (e.g. ar)."),
    ] = None,
    sensitivity: Annotated[
        str | None,
        typer.Option(
            "--sensitivity",
            help="What calls for care in handling or showing the items (e.g. 'faces visible').",
        ),
    ] = None,
    tag: TagSelectOpt = None,
    exhibit: ExhibitSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Annotate ITEMS: description, incident, language, sensitivity."""
    from custody.errors import UsageError

    fields = {
        k: v
        for k, v in (
            ("description", description),
            ("incident", incident),
            ("language", language),
            ("sensitivity", sensitivity),
        )
        if v
    }
    if not text and not fields:
        raise UsageError(
            _("a note needs --text or one of --description/--incident/--language/--sensitivity")
        )
    _run_event("note", items, tag, exhibit, key, root, json_output, text=text, fields=fields)


@event_app.command("dispose")
def event_dispose(
    items: ItemsArg = None,
    reason: Annotated[str, typer.Option("--reason", help="Returned, destroyed... and why.")] = "",
    tag: TagSelectOpt = None,
    incident: IncidentSelectOpt = None,
    exhibit: ExhibitSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """ITEMS were returned or destroyed (custodian role)."""
    from custody.errors import UsageError

    if not reason:
        raise UsageError(_("a disposal needs --reason"))
    _run_event("dispose", items, tag, exhibit, key, root, json_output, incident, reason=reason)


@event_app.command("supersede")
def event_supersede(
    items: Annotated[
        list[str],
        typer.Argument(help="The earlier version: its record number, or the path (all earlier)."),
    ],
    reason: Annotated[str, typer.Option("--reason", help="What happened to those bytes.")] = "",
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Say why an earlier version's bytes are gone from the root (else verify reports
    ORIGINAL_MISSING): e.g. replaced by a corrected copy, kept in a vault only."""
    from custody.errors import UsageError
    from custody.handling.events import earlier_versions, event
    from custody.ledger.backends import open_ledger

    if not reason:
        raise UsageError(_("say what happened to the earlier version with --reason"))
    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        seqs = earlier_versions(ledger, items)
    signed = event(evidence, signer_for(key), "supersede", seqs, reason=reason)
    _render_event(signed, json_output)


@event_app.command("copy")
def event_copy(
    items: ItemsArg = None,
    dest: Annotated[Path | None, typer.Option("--dest", help="Folder to copy into.")] = None,
    reason: ReasonOpt = None,
    tag: TagSelectOpt = None,
    incident: IncidentSelectOpt = None,
    exhibit: ExhibitSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Copy ITEMS elsewhere, re-read each copy to prove it, and record the copy."""
    from custody.errors import UsageError
    from custody.handling.events import copy_event
    from custody.ledger.backends import open_ledger

    if dest is None:
        raise UsageError(_("say where to copy with --dest PATH"))
    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        seqs = select_items(ledger, items, tag, incident, exhibit)
    signed = copy_event(evidence, signer_for(key), seqs, dest, reason=reason)
    _render_event(signed, json_output)


@event_app.command("derive")
def event_derive(
    original: Annotated[str, typer.Argument(help="The evidentiary original.")],
    output: Annotated[Path, typer.Option("--output", help="The working copy (inside the root).")],
    action: Annotated[str, typer.Option("--action", help="transcode, clip, redaction, still...")],
    reason: ReasonOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Catalogue a working copy made from ORIGINAL, linked by digest; ORIGINAL is untouched."""
    from custody.handling.events import derive
    from custody.handling.lookup import resolve_record
    from custody.ledger.backends import open_ledger

    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        seq = resolve_record(ledger, original)
    _copy, signed = derive(evidence, signer_for(key), seq, output, action, reason=reason)
    _render_event(signed, json_output)


@vault_app.command("copy")
def vault_copy(
    dest: Annotated[Path, typer.Argument(help="Second storage location (disk, NAS mount).")],
    reason: ReasonOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Copy every current item and the ledger to DEST, verifying each copy; DEST then verifies."""
    from custody.handling.vault import vault_copy as run

    evidence = evidence_root(root)
    report = run(evidence, signer_for(key), dest, reason=reason)
    if json_output:
        emit_json(
            {
                "destination": report.destination,
                "copied": len(report.copied),
                "events": report.events,
                "ledger_records": report.ledger_records,
            }
        )
    else:
        out.print(
            ngettext(
                "{n} item copied to {dest} and re-read; ledger of {records} records written; "
                "check it with: custody verify --root {dest}",
                "{n} items copied to {dest} and re-read; ledger of {records} records written; "
                "check it with: custody verify --root {dest}",
                len(report.copied),
            ).format(
                n=len(report.copied),
                dest=escape(report.destination),
                records=report.ledger_records,
            )
        )


@vault_app.command("restore")
def vault_restore(
    items: Annotated[
        list[str], typer.Argument(help="Item records to restore: record numbers or paths.")
    ],
    vault: Annotated[Path, typer.Option("--from", help="The vault copy to restore from.")],
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Copy verified originals back from a vault copy (re-hashed; unrecorded bytes at their
    path are moved to .custody/quarantine/, never deleted); a signed note records it."""
    from custody.handling.lookup import resolve_record
    from custody.handling.vault import vault_restore as run
    from custody.ledger.backends import open_ledger

    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        seqs = sorted({resolve_record(ledger, spec) for spec in items})
    report = run(evidence, signer_for(key), seqs, vault)
    if json_output:
        emit_json(
            {
                "vault": report.vault,
                "restored": [r.__dict__ for r in report.restored],
                "records": report.records,
            }
        )
        return
    for r in report.restored:
        if r.beside:
            line = _(
                "record {seq}: restored to {path} (beside the later version, and catalogued); "
                "SHA-256 {sha256}"
            )
        else:
            line = _("record {seq}: restored to {path} (in place); SHA-256 {sha256}")
        out.print(line.format(seq=r.seq, path=escape(r.path), sha256=r.sha256))
        if r.quarantined:
            out.print(
                _("  the bytes found there were moved to {path}").format(path=escape(r.quarantined))
            )
    out.print(
        ngettext(
            "recorded as record {records}", "recorded as records {records}", len(report.records)
        ).format(records=", ".join(map(str, report.records)))
    )
