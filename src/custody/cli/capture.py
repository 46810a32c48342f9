"""``custody capture``: web pages into the evidence root, recorded and timestamped at once.

Parses the options, unlocks the key, calls ``acquisition.web_capture.capture_urls`` and
``cli.timestamps.stamp_root``, and renders the result (docs/capture.md).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from custody.cli.common import (
    JsonOpt,
    KeyOpt,
    RootOpt,
    app,
    emit_json,
    err,
    evidence_root,
    out,
    shown,
    signer_for,
)
from custody.cli.fastpath import printable
from custody.cli.printable import columns, pad
from custody.cli.render import styled
from custody.cli.timestamps import render_stamp, stamp_root
from custody.errors import ExitCode
from custody.i18n import _, ngettext


@app.command()
def capture(
    urls: Annotated[
        list[str] | None, typer.Argument(help="Web addresses (http or https) to capture.")
    ] = None,
    into: Annotated[
        str,
        typer.Option(
            "--into",
            help="Folder inside the root (relative to it) that gets one new folder per capture.",
        ),
    ] = "captures",
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="A text file of URLs, one a line ('#' comments)."),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag for every file (repeatable).")
    ] = None,
    collector: Annotated[
        str | None, typer.Option("--collector", help="Who made the capture.")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="A free-text note.")] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds a capture may take in all (page, media)."),
    ] = 120.0,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Capture even if the server's certificate does not verify (recorded).",
        ),
    ] = False,
    user_agent: Annotated[
        str | None, typer.Option("--user-agent", help="The User-Agent to send (recorded).")
    ] = None,
    tls_roots: Annotated[
        Path | None,
        typer.Option(
            "--tls-roots",
            help="PEM file of CA certificates to trust besides the system's (its SHA-256 is "
            "recorded).",
        ),
    ] = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Capture web pages: a WACZ web archive, screenshot, PDF and media, each a signed item,
    linked by one signed capture record, then timestamped (RFC 3161)."""
    from custody.acquisition.catalogue import Descriptive
    from custody.acquisition.web_capture import capture_urls, check_arguments, read_url_file

    wanted = list(urls or [])
    if from_file is not None:
        wanted += read_url_file(from_file)
    check_arguments(wanted, into, timeout, user_agent)  # before asking for a passphrase
    evidence = evidence_root(root)
    signer = signer_for(key)

    def announce(url: str, folder: str) -> None:
        if not json_output:
            err.print(
                shown(
                    _("capturing {url} into {folder}/ (at most {seconds} s)").format(
                        url=url, folder=folder, seconds=f"{timeout:g}"
                    )
                )
            )

    report = capture_urls(
        evidence,
        wanted,
        signer,
        into=into,
        descriptive=Descriptive(collector=collector, note=note, tags=tuple(tag or ())),
        timeout_s=timeout,
        insecure=insecure,
        user_agent=user_agent,
        trust_anchors=tls_roots,
        announce=announce,
    )
    stamped = stamp_root(evidence, signer, [], None, [])
    if json_output:
        emit_json(
            {
                "captures": [c.to_json() for c in report.captures],
                "checkpoint": report.checkpoint,
                "ledger_size": report.ledger_size,
                "timestamp": stamped.to_json(),
            }
        )
    else:
        for outcome in report.captures:
            render_capture(outcome)
        render_stamp(stamped)
    if report.failed:
        raise typer.Exit(ExitCode.FINDINGS)
    if not stamped.ok:
        raise typer.Exit(ExitCode.TIMESTAMP_PENDING)


def print_rows(rows: list[tuple[str, str]]) -> None:
    """Labelled lines; a value too long to sit beside its label goes under it, so that a
    digest or record id stays on one line of an 80-column terminal. Nothing is cut."""
    width = 12  # 2 + 12 + 2 + a 64-digit SHA-256 = 80
    for label, value in rows:
        # Widths in terminal columns: an Arabic label's vowel marks take none.
        if columns(label) > width or 4 + width + len(value) > max(out.width, 80):
            indent = len(label) - len(label.lstrip())
            out.print(f"  {shown(label)}")
            # A value with spaces (a user agent, an error) wraps at words; a word longer
            # than the line (a URL, a digest) is never broken.
            lead = " " * (indent + 6)
            lines = textwrap.wrap(
                printable(value),
                max(out.width, 80) - len(lead),
                break_long_words=False,
                break_on_hyphens=False,
            )
            for line in lines or [""]:
                out.print(lead + escape(line))
        else:
            out.print(f"  {shown(pad(label, width))}  {shown(value)}")


def render_capture(outcome: Any) -> None:
    from custody.ledger.captures import capture_lines

    if outcome.captured and outcome.complete:
        head = styled("bold green", _("Captured"))
    elif outcome.captured:
        head = styled("bold yellow", _("Captured in part"))
    else:
        head = styled("bold red", _("NOT captured"))
    out.print(f"{head} {shown(outcome.url)}")
    rows: list[tuple[str, str]] = [(_("folder"), f"{outcome.folder}/")]
    if outcome.summary is not None:
        # The capture's own lines (custody.ledger.captures), as `custody show` gives them.
        rows += capture_lines(outcome.summary)
    elif outcome.error:
        rows.append((_("error"), outcome.error))
    if outcome.items:
        first, last = outcome.items[0].seq, outcome.items[-1].seq
        count = len(outcome.items)
        rows.append(
            (
                _("items"),
                ngettext(
                    "{n} files, records {first}-{last}",
                    "{n} files, records {first}-{last}",
                    count,
                ).format(n=count, first=first, last=last)
                if first != last
                else _("1 file, record {seq}").format(seq=first),
            )
        )
    if outcome.event is not None:
        rows.append(
            (
                _("recorded"),
                _("capture record {seq} (custody show {seq})").format(seq=outcome.event),
            )
        )
    rows.append((_("took"), _("{seconds} s").format(seconds=f"{outcome.seconds:.1f}")))
    print_rows(rows)
    # The outcome ("timeout", "http-error"...) is the name the capture record gives it.
    if not outcome.captured and outcome.event is not None:
        err.print(
            shown(
                _(
                    "custody: NOT captured: {url} ({outcome}); the attempt is recorded as "
                    "record {seq}"
                ).format(url=outcome.url, outcome=outcome.outcome, seq=outcome.event)
            )
        )
    elif not outcome.captured:
        err.print(
            shown(
                _("custody: NOT captured: {url} ({outcome})").format(
                    url=outcome.url, outcome=outcome.outcome
                )
            )
        )
    elif not outcome.complete:
        err.print(
            shown(
                _("custody: captured only in part: {url} ({outcome})").format(
                    url=outcome.url, outcome=outcome.outcome
                )
            )
        )
