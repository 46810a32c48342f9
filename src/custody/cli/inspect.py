"""``custody log``, ``show`` and ``history``: reading the ledger as a person."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from custody.cli.common import (
    ExhibitSelectOpt,
    IncidentSelectOpt,
    JsonOpt,
    Listing,
    RootOpt,
    TagSelectOpt,
    app,
    emit_json,
    evidence_root,
    out,
    select_items,
)
from custody.i18n import N_, _, ngettext


@app.command()
def log(
    record_type: Annotated[
        str | None, typer.Option("--type", help="Only records of this type.")
    ] = None,
    last: Annotated[int | None, typer.Option("--last", help="Only the last N records.")] = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List the ledger's records."""
    from custody.ledger.backends import open_ledger
    from custody.ledger.describe import summarise

    with open_ledger(evidence_root(root)) as ledger:
        start = max(0, ledger.index.size - last) if last is not None else 0
        rows = [
            summarise(r)
            for r in ledger.records(start)
            if record_type is None or r.record.type == record_type
        ]
    if json_output:
        emit_json({"records": rows})
        return
    time_column = _("time (UTC)")
    table = Listing("#", _("type"), time_column, _("signer"), _("summary"), fixed=(time_column,))
    for row in rows:
        table.add_row(str(row["seq"]), row["type"], row["time"], row["signer"], row["summary"])
    table.print()


@app.command()
def show(
    item: Annotated[str, typer.Argument(help="Record number, path, or digest prefix.")],
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Show one record in full."""
    from custody.handling.lookup import resolve_record
    from custody.ledger.backends import open_ledger
    from custody.ledger.describe import record_json

    with open_ledger(evidence_root(root)) as ledger:
        signed = ledger.read(resolve_record(ledger, item))
    document = record_json(signed)
    if json_output:
        emit_json(document)
        return
    _render_record(document)


def _render_record(doc: dict[str, Any]) -> None:
    signed = doc["record"]["signed"]
    body = signed["body"]
    title = _("Record {seq} ({type})").format(seq=signed["seq"], type=signed["type"])
    table = Listing(title=title, show_header=False)
    table.add_row(_("time (UTC)"), signed["time"])
    table.add_row(_("signer"), signed["signer"])
    table.add_row(_("previous line SHA-256"), str(signed["prev"]))
    table.add_row(_("this line SHA-256"), doc["line_sha256"])
    for name, value in body.items():
        capture_part = name in ("capture", "items") and "capture" in doc  # shown below
        if name in ("metadata", "provenance") or capture_part:
            continue
        table.add_row(
            name, json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        )
    for name, value in doc.get("highlights", {}).items():
        table.add_row(name, str(value))
    table.print()
    if "capture" in doc:
        _render_capture(signed["seq"], doc["capture"], body.get("items", []))
    for entry in doc.get("provenance", []):
        _render_provenance(entry)
    metadata = body.get("metadata")
    if metadata:
        meta = Listing(
            _("tag"),
            _("value"),
            title=ngettext(
                "exiftool metadata ({n} tag)", "exiftool metadata ({n} tags)", len(metadata)
            ).format(n=len(metadata)),
        )
        for tag, value in metadata.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            meta.add_row(tag, text)
        meta.print()


def _render_capture(seq: int, summary: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """A capture's facts and files as lines, never cut short (URLs, digests, record ids)."""
    from custody.cli.capture import print_rows
    from custody.ledger.captures import capture_lines

    rows = capture_lines(summary)
    for item in items:
        rows += [
            (_("item {seq}").format(seq=item["seq"]), str(item["path"])),
            ("  sha256", str(item["sha256"])),
        ]
    heading = _("[bold]Web capture[/] (record {seq}; every field: custody show {seq} --json)")
    out.print(heading.format(seq=seq))
    print_rows(rows)


def _render_provenance(entry: dict[str, Any]) -> None:
    """One source's statement about the item: its claims, and custody's checks, labelled."""
    # Values (paths, digests, claims) fold at a terminal and are whole lines in a pipe.
    table = Listing(title=entry["summary"], show_header=False)
    for fact in entry["facts"]:
        table.add_row(fact["label"], fact["value"])
    table.print()


# What each entry of an item's history is, as a person reads it (the JSON keeps the English
# word, custody.handling.history). A kind not listed here is shown as it is.
_HISTORY_KINDS = {
    "ingested": N_("ingested"),
    "catalogued": N_("catalogued"),
    "same content": N_("same content"),
    "earlier version": N_("earlier version"),
    "later version": N_("later version"),
    "exhibit": N_("exhibit"),
    "checkpoint": N_("checkpoint"),
    "timestamp": N_("timestamp"),
    "capture": N_("capture"),
    "derived from": N_("derived from"),
    "derived": N_("derived"),
    "transfer": N_("transfer"),
    "access": N_("access"),
    "copy": N_("copy"),
    "note": N_("note"),
    "dispose": N_("dispose"),
    "receive": N_("receive"),
    "supersede": N_("supersede"),
    "tag": N_("tag"),
    "untag": N_("untag"),
}


def _history_kind(kind: str) -> str:
    known = _HISTORY_KINDS.get(kind)
    return _(known) if known is not None else kind


@app.command()
def history(
    item: Annotated[
        str | None, typer.Argument(help="Path, record number or digest prefix.")
    ] = None,
    tag: TagSelectOpt = None,
    incident: IncidentSelectOpt = None,
    exhibit: ExhibitSelectOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """The item's whole life: acquisition, duplicates, versions, events, exhibit number,
    checkpoints, timestamps.

    ITEM, or one --exhibit NUMBER: that item. With --tag, --incident or several --exhibit
    (instead of ITEM): the history of every item they select."""
    from custody.errors import UsageError
    from custody.handling.history import history as build
    from custody.handling.lookup import resolve_items, resolve_record
    from custody.ledger.backends import open_ledger

    if item is None and not (tag or incident or exhibit):
        raise UsageError(
            _("name one item: ITEM, or select items with --tag, --incident, --exhibit")
        )
    if item is not None and (tag or incident or exhibit):
        raise UsageError(
            _("name one ITEM, or select items with --tag / --incident / --exhibit, not both")
        )
    one = item is not None or (not tag and not incident and len(exhibit or []) == 1)
    with open_ledger(evidence_root(root)) as ledger:
        if item is not None:
            results = [build(ledger, resolve_record(ledger, item))]
        elif one:
            (seq,) = resolve_items(ledger, [], exhibits=exhibit or [])
            results = [build(ledger, seq)]
        else:
            seqs = select_items(ledger, None, tag, incident, exhibit)
            results = [build(ledger, seq) for seq in seqs]
    if json_output:
        if one:
            emit_json(results[0].to_json())
        else:
            emit_json({"histories": [r.to_json() for r in results]})
        return
    time_column = _("time (UTC)")
    for result in results:
        table = Listing(
            "#",
            time_column,
            _("what"),
            _("by"),
            _("detail"),
            title=f"{result.path}  sha256 {result.sha256}",
            fixed=(time_column,),
        )
        for e in result.entries:
            table.add_row(str(e.seq), e.time, _history_kind(e.kind), e.signer_name, e.summary)
        table.print()
