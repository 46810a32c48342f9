"""``custody log``, ``show`` and ``history``: reading the ledger as a person."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from custody.cli.common import (
    ExhibitSelectOpt,
    JsonOpt,
    RootOpt,
    app,
    emit_json,
    evidence_root,
    out,
    shown,
)


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
    table = Table("#", "type", "time (UTC)", "signer", "summary")
    for row in rows:
        table.add_row(
            str(row["seq"]), row["type"], row["time"], row["signer"][:12], escape(row["summary"])
        )
    out.print(table)


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
    table = Table(title=f"Record {signed['seq']} ({signed['type']})", show_header=False)
    table.add_column()
    table.add_column(overflow="fold")  # digests and fingerprints wrap, never end in '…'
    table.add_row("time (UTC)", signed["time"])
    table.add_row("signer", signed["signer"])
    table.add_row("previous line SHA-256", str(signed["prev"]))
    table.add_row("this line SHA-256", doc["line_sha256"])
    for name, value in body.items():
        capture_part = name in ("capture", "items") and "capture" in doc  # shown below
        if name in ("metadata", "provenance") or capture_part:
            continue
        table.add_row(
            name,
            escape(json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value),
        )
    for name, value in doc.get("highlights", {}).items():
        table.add_row(f"[dim]{name}[/]", escape(str(value)))
    out.print(table)
    if "capture" in doc:
        _render_capture(signed["seq"], doc["capture"], body.get("items", []))
    for entry in doc.get("provenance", []):
        _render_provenance(entry)
    metadata = body.get("metadata")
    if metadata:
        meta = Table("tag", "value", title=f"exiftool metadata ({len(metadata)} tags)")
        for tag, value in metadata.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            meta.add_row(escape(tag), escape(text[:200]))
        out.print(meta)


def _render_capture(seq: int, summary: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """A capture's facts and files as lines, never cut short (URLs, digests, record ids)."""
    from custody.cli.capture import print_rows
    from custody.ledger.captures import capture_lines

    rows = capture_lines(summary)
    for item in items:
        rows += [(f"item {item['seq']}", str(item["path"])), ("  sha256", str(item["sha256"]))]
    out.print(f"[bold]Web capture[/] (record {seq}; every field: custody show {seq} --json)")
    print_rows(rows)


def _render_provenance(entry: dict[str, Any]) -> None:
    """One source's statement about the item: its claims, and custody's checks, labelled."""
    table = Table(show_header=False, title=shown(entry["summary"]), title_justify="left")
    table.add_column(overflow="fold")  # labels
    table.add_column(overflow="fold")  # values: paths, digests, claims, never cut short
    for fact in entry["facts"]:
        table.add_row(shown(fact["label"]), shown(fact["value"]))
    out.print(table)


@app.command()
def history(
    item: Annotated[
        str | None, typer.Argument(help="Path, record number or digest prefix.")
    ] = None,
    exhibit: ExhibitSelectOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """The item's whole life: acquisition, duplicates, versions, events, exhibit number,
    checkpoints, timestamps (ITEM, or --exhibit NUMBER)."""
    from custody.errors import UsageError
    from custody.handling.history import history as build
    from custody.handling.lookup import resolve_items, resolve_record
    from custody.ledger.backends import open_ledger

    if (item is None) == (not exhibit) or (exhibit and len(exhibit) > 1):
        raise UsageError("name one item: ITEM or --exhibit NUMBER")
    with open_ledger(evidence_root(root)) as ledger:
        if exhibit:
            (seq,) = resolve_items(ledger, [], exhibits=exhibit)
        else:
            assert item is not None
            seq = resolve_record(ledger, item)
        result = build(ledger, seq)
    if json_output:
        emit_json(result.to_json())
        return
    table = Table(title=f"{escape(result.path)}  sha256 {result.sha256}")
    for name in ("#", "time (UTC)", "what", "by", "detail"):
        # Paths, digests and claims fold onto more lines; they are never cut short.
        table.add_column(name, overflow="fold")
    for e in result.entries:
        table.add_row(str(e.seq), e.time, e.kind, shown(e.signer_name), shown(e.summary))
    out.print(table)
