"""``custody init``: making a folder an evidence root."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from custody.cli.common import JsonOpt, app, emit_json, err


@app.command()
def init(
    root: Annotated[Path, typer.Argument(help="Folder to place under custody.")] = Path("."),
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", help="postgresql://... to keep the ledger in PostgreSQL."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Make ROOT an evidence root (creates ROOT/.custody/)."""
    from custody.ledger.backends import create_root

    created = create_root(root, ledger=ledger)
    if ledger is not None:
        from custody.trust.databases import remember_ledger

        # This person chose this database for this root: later verifications follow it.
        remember_ledger(created, ledger)
    if json_output:
        emit_json({"root": str(created.path), "ledger": str(created.ledger_path)})
    else:
        err.print(f"Initialised evidence root [bold]{escape(str(created.path))}[/]")
