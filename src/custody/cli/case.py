"""``custody case …`` and ``custody exhibit …``: the case the evidence is for, and exhibit
numbers, as signed records (``custody.handling.case``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from custody.cli.common import (
    ItemsArg,
    JsonOpt,
    KeyOpt,
    RootOpt,
    TagSelectOpt,
    app,
    emit_json,
    evidence_root,
    out,
    shown,
    signer_for,
)
from custody.i18n import _

case_app = typer.Typer(
    help="The case the evidence is for: name, number, court or mechanism, parties.",
    no_args_is_help=True,
)
app.add_typer(case_app, name="case")

exhibit_app = typer.Typer(
    help="Exhibit numbers for items: stable once assigned, never reused.", no_args_is_help=True
)
app.add_typer(exhibit_app, name="exhibit")


@case_app.command("set")
def case_set(
    name: Annotated[str | None, typer.Option("--name", help="The case's name.")] = None,
    number: Annotated[
        str | None, typer.Option("--number", help="The case number the court gave it.")
    ] = None,
    court: Annotated[
        str | None,
        typer.Option("--court", help="The court or mechanism (e.g. 'ICC, Pre-Trial Chamber I')."),
    ] = None,
    party: Annotated[
        list[str] | None,
        typer.Option("--party", help="A party to the case (repeatable; replaces the list)."),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What the case is about.")
    ] = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Record the case details as a signed record (what is not given stays as it was)."""
    from custody.errors import RecordError, UsageError
    from custody.handling.case import amend_case, latest_case, set_case
    from custody.ledger.backends import open_ledger

    changes = {
        "name": name,
        "number": number,
        "court": court,
        "parties": party,
        "description": description,
    }
    if all(v is None for v in changes.values()):
        raise UsageError(_("say what to record: --name, --number, --court, --party, --description"))
    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        current = latest_case(ledger)
    try:
        body = amend_case(current, changes)
    except RecordError as exc:
        raise UsageError(str(exc)) from None
    signed = set_case(evidence, signer_for(key), body)
    if json_output:
        emit_json({"record": signed.seq, "case": {**body.to_json(), "parties": list(body.parties)}})
        return
    out.print(_("record {seq}: case {name}").format(seq=signed.seq, name=shown(body.name)))


@case_app.command("show")
def case_show(root: RootOpt = None, json_output: JsonOpt = False) -> None:
    """The case as reports show it: the latest case record, else the root's config."""
    from custody.handling.case import case_details
    from custody.ledger.backends import open_ledger

    with open_ledger(evidence_root(root)) as ledger:
        details = case_details(ledger)
    if json_output:
        emit_json({"case": details.to_json() if details else None})
        return
    if details is None:
        out.print(_("No case recorded: 'custody case set --name NAME ...'"))
        return
    for label, value in (
        (_("name"), details.name),
        (_("number"), details.number),
        (_("court or mechanism"), details.court),
        (_("parties"), "; ".join(details.parties) or None),
        (_("description"), details.description),
    ):
        if value:
            out.print(f"{label}: {shown(value)}")
    if details.signed:
        where = _("from signed record {record} (key {signer})").format(
            record=details.record, signer=escape(str(details.signer))
        )
    else:
        where = _(
            "from the root's config.toml (not a signed record: 'custody case set' records it)"
        )
    out.print(where)


def _ordered_items(ledger: Any, items: list[str], tags: list[str]) -> list[int]:
    """Items in the order typed (a folder or tag in ledger order), each once."""
    from custody.handling.lookup import resolve_items

    chosen: dict[int, None] = {}
    for spec in items:
        chosen.update((s, None) for s in resolve_items(ledger, [spec]))
    for tag in tags:
        chosen.update((s, None) for s in resolve_items(ledger, [], tags=[tag]))
    return list(chosen)


@exhibit_app.command("assign")
def exhibit_assign(
    items: ItemsArg = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Put before each number (default 'P-').")
    ] = "P-",
    start: Annotated[
        int | None,
        typer.Option("--start", help="First number (default: one past the highest used)."),
    ] = None,
    tag: TagSelectOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Give ITEMS the next exhibit numbers, in the order named. An item that has a number
    keeps it; a number is never given to another item."""
    from custody.errors import UsageError
    from custody.handling.case import assign_exhibits
    from custody.ledger.backends import open_ledger

    if not items and not tag:
        raise UsageError(
            _("name the items to number (paths, record numbers, digest prefixes) or --tag")
        )
    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        seqs = _ordered_items(ledger, items or [], tag or [])
    result = assign_exhibits(evidence, signer_for(key), seqs, prefix=prefix, start=start)
    if json_output:
        emit_json(result.to_json())
        return
    for exhibit in result.assigned:
        out.print(
            _("exhibit {label}: item record {item} {path} (record {record})").format(
                label=shown(exhibit.label),
                item=exhibit.item,
                path=shown(exhibit.path),
                record=exhibit.record,
            )
        )
    for exhibit in result.kept:
        out.print(
            _("exhibit {label}: item record {item} {path} already had this number (kept)").format(
                label=shown(exhibit.label), item=exhibit.item, path=shown(exhibit.path)
            )
        )


@exhibit_app.command("list")
def exhibit_list(root: RootOpt = None, json_output: JsonOpt = False) -> None:
    """Every exhibit number, in order, with its item."""
    from rich.table import Table

    from custody.cli.fastpath import printable
    from custody.handling.case import exhibit_book
    from custody.ledger.backends import open_ledger

    with open_ledger(evidence_root(root)) as ledger:
        exhibits = exhibit_book(ledger).in_order()
    if json_output:
        emit_json({"exhibits": [e.to_json() for e in exhibits]})
        return
    if not exhibits:
        out.print(_("No exhibit numbers yet: 'custody exhibit assign ITEM...'"))
        return
    if not out.is_terminal:  # plain lines for files, pipes and pastes: nothing is cut
        for e in exhibits:
            out.out(
                _(
                    "exhibit {label} | item record {item} | {path} | sha256 {sha256} | "
                    "given at record {record}"
                ).format(
                    label=printable(e.label),
                    item=e.item,
                    path=printable(e.path),
                    sha256=e.sha256,
                    record=e.record,
                ),
                highlight=False,
            )
        return
    table = Table(_("exhibit"), _("item"), _("path"), "sha256", _("record"))
    for column in table.columns:
        column.overflow = "fold"  # long paths and digests fold, never cut
    for e in exhibits:
        table.add_row(shown(e.label), str(e.item), shown(e.path), e.sha256, str(e.record))
    out.print(table)
