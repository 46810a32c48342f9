"""Shared by every command: the Typer app, its consoles, common options, passphrases and
progress display. Command modules register on ``app``; ``custody.cli.app`` imports them all.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from custody import __version__
from custody.cli.fastpath import printable
from custody.errors import SigningKeyError
from custody.i18n import UnknownLanguage, _, parse_languages


def _plain_help_records() -> None:
    """Show ``[required]`` and ``[default: x]`` in --help as they are meant to read.

    With rich installed, typer 0.15 escapes these brackets for rich markup (``\\[required]``)
    even when, as here, help is rendered as plain text (``rich_markup_mode=None``), so the
    backslash reaches the reader. Undo exactly that escape in each option's help record.
    """
    from typer import core

    for cls in (core.TyperOption, core.TyperArgument):
        original = cls.get_help_record

        def get_help_record(self: Any, ctx: Any, _original: Any = original) -> Any:
            record = _original(self, ctx)
            if record is None:
                return None
            name, text = record
            return name, text.replace("\\[", "[")

        cls.get_help_record = get_help_record  # type: ignore[method-assign]


_plain_help_records()


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


def _language(value: str | None) -> str | None:
    # custody.cli.language chose the language from argv before parsing; this only refuses
    # a language custody has no catalog for.
    if value is not None:
        try:
            parse_languages(value)
        except UnknownLanguage as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            callback=_language,
            help="Language of messages and help: en or ar (default: CUSTODY_LANG, then "
            "LANGUAGE, LC_ALL, LC_MESSAGES, LANG). --json output is the same in every language.",
        ),
    ] = None,
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
        raise SigningKeyError(_("no passphrase: set CUSTODY_PASSPHRASE or run in a terminal"))
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


AllowWeakOpt = Annotated[
    bool,
    typer.Option(
        "--allow-weak-passphrase",
        help="Accept a short or easily guessed passphrase for the new key (not advised).",
    ),
]


def new_passphrase(prompt: str, user_inputs: list[str], allow_weak: bool) -> str:
    """A passphrase for a new key, judged by the policy (custody.keys.passphrase).

    At a terminal a refused passphrase is explained and asked for again (three tries);
    from CUSTODY_PASSPHRASE it is an error, since nobody is there to choose another.
    """
    from custody.keys.passphrase import WeakPassphraseError, check_new_passphrase

    interactive = os.environ.get("CUSTODY_PASSPHRASE") is None
    for attempt in range(3):
        passphrase = ask_passphrase(prompt, confirm=True)
        try:
            check_new_passphrase(passphrase, user_inputs=user_inputs, allow_weak=allow_weak)
        except WeakPassphraseError as exc:
            if not interactive or attempt == 2:
                raise
            err.print(f"[yellow]{shown(str(exc))}[/]")
            continue
        return passphrase
    raise AssertionError("unreachable")


def signer_for(name: str | None) -> Any:
    return unlocker_for(name)()


def unlocker_for(name: str | None) -> Any:
    """Ask for the passphrase now; unlock (the slow, memory-hard part) when called.

    When this user's agent holds the key ('custody agent start'), nothing is asked: the
    key signs through the agent."""
    from custody.keys.keyring import Keyring

    key_file = Keyring().select(name)
    from custody.keys.agent import agent_signer

    held = agent_signer(key_file)
    if held is not None:
        return lambda: held
    passphrase = ask_passphrase(passphrase_prompt(key_file.name))
    return lambda: key_file.unlock(passphrase)


def passphrase_prompt(name: str) -> str:
    """The question asked for the passphrase of the key ``name`` (quoted as Python would)."""
    return _("Passphrase for key {name}").format(name=repr(name))


def new_passphrase_prompt(name: str) -> str:
    """The question asked for the passphrase of a key being created."""
    return _("New passphrase for key {name}").format(name=repr(name))


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
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    # The task advances in bytes (the bar, size and speed); files are counted apart, in
    # the task's "files" field, so the files column says files and never bytes.
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[files]}"),
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
        self.files_done = 0
        self.files_total = 0
        self.bytes_task = progress.add_task(label, total=None, files=self._files())

    def _files(self) -> str:
        # "3/10 files" (the column reads rich markup: no square brackets in any language).
        return _("{done}/{total} files").format(done=self.files_done, total=self.files_total or "?")

    def planned(self, files: int, total_bytes: int) -> None:
        self.files_total += files
        self.progress.update(self.bytes_task, total=total_bytes, files=self._files())

    def advance(self, nbytes: int) -> None:
        self.progress.advance(self.bytes_task, nbytes)

    def finished_file(self, path: str) -> None:
        self.files_done += 1
        self.progress.update(self.bytes_task, files=self._files())

    def copy_written(self, source: str, copy: str) -> None:
        pass


class Listing:
    """Rows for people. On a terminal: a rich table whose cells fold long paths, digests and
    fingerprints onto further lines (never cut with an ellipsis); columns named in
    ``fixed`` (short, fixed-width content such as times) never wrap. Anywhere else (a file,
    a pipe, a clerk's paste): plain lines, one row per line, cells joined by " | " (or
    "name: value" for a two-column table without headers), whole and greppable.

    Cells are plain text (never markup); ``style`` colours a whole row on a terminal.
    """

    def __init__(
        self,
        *columns: str,
        title: str | None = None,
        show_header: bool = True,
        fixed: Sequence[str] = (),
    ) -> None:
        self.columns = columns
        self.title = title
        self.show_header = show_header
        self.fixed = set(fixed)
        self.rows: list[tuple[tuple[str, ...], str | None]] = []

    def add_row(self, *cells: str, style: str | None = None) -> None:
        self.rows.append((tuple(printable(c) for c in cells), style))

    def print(self) -> None:
        if not out.is_terminal:
            self._print_plain()
            return
        from rich.table import Table

        if self.show_header and len(self.columns) >= 4 and out.width < 120:
            self._print_blocks()
            return

        table = Table(
            *self.columns,
            title=escape(self.title) if self.title else None,
            show_header=self.show_header,
        )
        for number, column in enumerate(table.columns):
            column.overflow = "fold"
            column.no_wrap = self.columns[number] in self.fixed if self.columns else False
        if not self.columns:
            width = max((len(cells) for cells, _style in self.rows), default=0)
            for _column in range(width):
                table.add_column(overflow="fold")
        for cells, style in self.rows:
            table.add_row(*(escape(c) for c in cells), style=style)
        out.print(table)

    def _print_blocks(self) -> None:
        """A narrow terminal: each row as its own two-column block, every value whole."""
        from rich.table import Table

        if self.title:
            out.print(escape(self.title), soft_wrap=False)
        for cells, style in self.rows:
            block = Table(show_header=False, title_justify="left")
            block.add_column(style="dim", no_wrap=True)
            block.add_column(overflow="fold")
            for name, value in zip(self.columns, cells, strict=False):
                block.add_row(escape(name), escape(value), style=style)
            out.print(block)

    def _print_plain(self) -> None:
        p = out.out
        if self.title:
            p(self.title, highlight=False)
        pairs = not self.show_header and all(len(cells) == 2 for cells, _style in self.rows)
        if self.show_header and self.columns:
            p(" | ".join(self.columns), highlight=False)
        for cells, _style in self.rows:
            p(f"{cells[0]}: {cells[1]}" if pairs else " | ".join(cells), highlight=False)


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


IncidentSelectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--incident",
        help="Also every item a note places in this incident ('event note --incident'; "
        "repeatable).",
    ),
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
        raise UsageError(
            _("{option} wants YYYY-MM-DD or an RFC 3339 time with Z, not {text}").format(
                option=option, text=repr(text)
            )
        )
    return moment.astimezone(dt.UTC)


def select_items(
    ledger: Any,
    items: list[str] | None,
    tags: list[str] | None,
    incidents: list[str] | None = None,
    exhibits: list[str] | None = None,
) -> list[int]:
    from custody.errors import UsageError
    from custody.handling.lookup import resolve_items

    if not items and not tags and not incidents and not exhibits:
        raise UsageError(
            _(
                "name at least one item (path, record number, digest prefix), --tag, "
                "--incident or --exhibit"
            )
        )
    return resolve_items(
        ledger, items or [], tags=tags or [], incidents=incidents or [], exhibits=exhibits or []
    )
