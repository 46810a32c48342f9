"""``custody init``: making a folder an evidence root."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from custody.cli.common import JsonOpt, app, emit_json, err
from custody.i18n import _


@app.command()
def init(
    root: Annotated[Path, typer.Argument(help="Folder to place under custody.")] = Path("."),
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", help="postgresql://... to keep the ledger in PostgreSQL."),
    ] = None,
    digest: Annotated[
        list[str] | None,
        typer.Option(
            "--digest",
            help="A digest to record for every file (repeatable): sha256 is always recorded; "
            "default sha256 and blake3 (docs/design.md). Also sha512, sha3-256, sha1, md5.",
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Make ROOT an evidence root (creates ROOT/.custody/)."""
    from custody.ledger.backends import create_root
    from custody.root import Config, chosen_digests

    config = Config(digests=chosen_digests(digest)) if digest else None
    created = create_root(root, config, ledger=ledger)
    if ledger is not None:
        from custody.trust.databases import remember_ledger

        # This person chose this database for this root: later verifications follow it.
        remember_ledger(created, ledger)
    digests = list(created.config().digests)
    if json_output:
        emit_json(
            {"root": str(created.path), "ledger": str(created.ledger_path), "digests": digests}
        )
    else:
        err.print(
            _("Initialised evidence root [bold]{path}[/] (digests: {digests})").format(
                path=escape(str(created.path)), digests=", ".join(digests)
            )
        )
