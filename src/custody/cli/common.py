"""Shared by every command: the Typer app, its consoles, common options, passphrases and
progress display. Command modules register on ``app``; ``custody.cli.app`` imports them all.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from custody import __version__
from custody.cli.fastpath import printable
from custody.errors import SigningKeyError

app = typer.Typer(
    name="custody",
    help="Evidence preservation and chain of custody: catalogue, sign, timestamp, verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)


out = Console(highlight=False, soft_wrap=True)


err = Console(stderr=True, highlight=False, soft_wrap=True)  # one message, one line


RootOpt = Annotated[
    Path | None,
    typer.Option("--root", help="Evidence root (default: CUSTODY_ROOT, else search upwards)."),
]


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (see schemas/) instead of text.")]


TsaRootOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--tsa-root",
        help="PEM file of TSA certificates to trust: roots, and intermediates to reach them.",
    ),
]


LedgerOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        help="Confirm the PostgreSQL ledger this root's config names (remembered afterwards).",
    ),
]


JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        help="Files hashed at once, and exiftool processes (default: every core available).",
    ),
]


KeyOpt = Annotated[
    str | None, typer.Option("--key", help="Signing key name (default: the only key).")
]


def shown(text: str) -> str:
    """Text from files or users, safe for one rich line: no markup, no control characters."""
    return escape(printable(text))


def _version(value: bool) -> None:
    if value:
        print(f"custody {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """custody keeps evidence provable: what each file was, who held it, and when."""


def evidence_root(root: Path | None) -> Any:
    from custody.root import find_root

    return find_root(explicit=str(root) if root else None)


def ask_passphrase(prompt: str, *, confirm: bool = False) -> str:
    from_env = os.environ.get("CUSTODY_PASSPHRASE")
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():
        raise SigningKeyError("no passphrase: set CUSTODY_PASSPHRASE or run in a terminal")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def signer_for(name: str | None) -> Any:
    return unlocker_for(name)()


def unlocker_for(name: str | None) -> Any:
    """Ask for the passphrase now; unlock (the slow, memory-hard part) when called."""
    from custody.keys.keyring import Keyring

    key_file = Keyring().select(name)
    passphrase = ask_passphrase(f"Passphrase for key {key_file.name!r}")
    return lambda: key_file.unlock(passphrase)


def emit_json(document: Any) -> None:
    out.out(json.dumps(document, ensure_ascii=False, indent=2), highlight=False)


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Any]:
    """A rich progress bar (files and bytes) on stderr, or a silent observer."""
    if not enabled or not err.is_terminal:
        from custody.progress import NullObserver

        yield NullObserver()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        yield RichObserver(progress, label)


class RichObserver:
    def __init__(self, progress: Any, label: str) -> None:
        self.progress = progress
        self.bytes_task = progress.add_task(label, total=None)
        self.files_done = 0
        self.files_total = 0

    def planned(self, files: int, total_bytes: int) -> None:
        self.files_total += files
        self.progress.update(self.bytes_task, total=total_bytes)

    def advance(self, nbytes: int) -> None:
        self.progress.advance(self.bytes_task, nbytes)

    def finished_file(self, path: str) -> None:
        self.files_done += 1

    def copy_written(self, source: str, copy: str) -> None:
        pass


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


ItemsArg = Annotated[
    list[str] | None, typer.Argument(help="Items: paths, record numbers or digest prefixes.")
]


TagSelectOpt = Annotated[
    list[str] | None, typer.Option("--tag", help="Also every item with this tag (repeatable).")
]


ExhibitSelectOpt = Annotated[
    list[str] | None,
    typer.Option("--exhibit", help="Also the item with this exhibit number (repeatable)."),
]


ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why, in words.")]


def parse_date(text: str, option: str) -> Any:
    """A date or time given on the command line: ``YYYY-MM-DD`` (00:00 UTC) or RFC 3339
    with ``Z`` or an offset; UsageError (exit 2) naming ``option`` otherwise."""
    import datetime as dt

    from custody.errors import UsageError

    value = text.strip()
    try:
        if len(value) == 10:
            return dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UsageError(f"{option} wants YYYY-MM-DD or an RFC 3339 time with Z, not {text!r}")
    return moment.astimezone(dt.UTC)


def select_items(
    ledger: Any,
    items: list[str] | None,
    tags: list[str] | None,
    exhibits: list[str] | None = None,
) -> list[int]:
    from custody.errors import UsageError
    from custody.handling.lookup import resolve_items

    if not items and not tags and not exhibits:
        raise UsageError(
            "name at least one item (path, record number, digest prefix), --tag or --exhibit"
        )
    return resolve_items(ledger, items or [], tags=tags or [], exhibits=exhibits or [])
