"""``custody timestamp``: RFC 3161 tokens for pending checkpoints; ``custody renew``: RFC
4998 evidence records that keep them valid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from custody.cli.common import (
    JsonOpt,
    KeyOpt,
    RootOpt,
    TsaRootOpt,
    app,
    emit_json,
    err,
    evidence_root,
    out,
    parse_date,
    shown,
    signer_for,
    unlocker_for,
)
from custody.errors import ExitCode


def root_trust(evidence: Any, tsa_root: list[Path]) -> Any:
    """The TSA roots of config.toml (read beside it) and of --tsa-root (read from here)."""
    from custody.timestamps.stamping import load_trust

    configured = [evidence.state / Path(p).expanduser() for p in evidence.config().tsa_roots]
    return load_trust([*configured, *tsa_root])


def stamp_root(
    evidence: Any, signer: Any, tsa: list[str], min_success: int | None, tsa_root: list[Path]
) -> Any:
    from custody.timestamps.stamping import stamp

    config = evidence.config()
    urls = [*tsa, *config.tsa_urls] if tsa else None
    trust = root_trust(evidence, tsa_root)
    return stamp(evidence, signer, tsa_urls=urls, min_success=min_success, trust=trust)


@app.command()
def timestamp(
    tsa: Annotated[
        list[str] | None,
        typer.Option("--tsa", help="A timestamp authority URL, tried before the configured ones."),
    ] = None,
    min_success: Annotated[
        int | None, typer.Option("--min", help="Tokens needed per checkpoint (policy).")
    ] = None,
    tsa_root: TsaRootOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Get RFC 3161 timestamps for every checkpoint not yet stamped.

    Makes a checkpoint first if records were added since the last one. When no authority
    answers, the checkpoints stay pending (exit 7) and a later run stamps them.
    """
    evidence = evidence_root(root)
    signer = signer_for(key)
    report = stamp_root(evidence, signer, tsa or [], min_success, tsa_root or [])
    if json_output:
        emit_json(report.to_json())
    else:
        render_stamp(report)
    if not report.ok:
        raise typer.Exit(ExitCode.TIMESTAMP_PENDING)


def render_stamp(report: Any) -> None:
    if report.new_checkpoint is not None:
        err.print(f"made checkpoint record {report.new_checkpoint}")
    if not report.checkpoints:
        out.print("Every checkpoint already has its timestamps.")
        return
    for entry in report.checkpoints:
        for o in entry.outcomes:
            mark = "[green]stamped[/]" if o.ok else "[red]failed[/]"
            out.print(
                f"checkpoint {entry.checkpoint}: {mark} by {escape(o.tsa)}: {escape(o.reason)}"
            )
    pending = report.pending
    if pending:
        listing = ", ".join(str(c.checkpoint) for c in pending)
        out.print(
            f"[bold yellow]PENDING[/]: checkpoint(s) {listing} have fewer than the "
            f"{report.min_success} token(s) the policy asks for; run 'custody timestamp' "
            "again when the timestamp authorities can be reached"
        )
    else:
        out.print(f"[bold green]Stamped[/]: {len(report.checkpoints)} checkpoint(s).")


@app.command()
def renew(
    tsa: Annotated[
        list[str] | None,
        typer.Option("--tsa", help="A timestamp authority URL, tried before the configured ones."),
    ] = None,
    hash_name: Annotated[
        str | None,
        typer.Option(
            "--hash",
            help="Migrate to this hash algorithm (sha256, sha384, sha512, sha3-512): "
            "hash-tree renewal of every evidence set on another one.",
        ),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            help="Renew everything that lapses before this date (YYYY-MM-DD or RFC 3339); "
            "default: within 180 days.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be renewed and why; change nothing.")
    ] = False,
    tsa_root: TsaRootOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Keep timestamps verifiable for decades: RFC 4998 evidence records over the ledger.

    Puts newly stamped checkpoints under an evidence record, renews the archive
    timestamps that lapse soon (or all of them, with --hash, under a stronger algorithm),
    and fetches validation material earlier runs could not. Offline, what is due stays
    pending (exit 7) for a later run. docs/long-term.md says when and why.
    """
    from custody.ledger.backends import open_ledger
    from custody.timestamps.longterm import renew as run_renew

    evidence = evidence_root(root)
    moment = parse_date(before, "--before") if before is not None else None
    config = evidence.config()
    urls = list(dict.fromkeys([*(tsa or []), *config.tsa_urls]))
    trust = root_trust(evidence, tsa_root or [])
    unlock = None if dry_run else unlocker_for(key)
    with open_ledger(evidence) as ledger:
        report = run_renew(
            ledger,
            tsa_urls=urls,
            trust=trust,
            unlock=unlock,
            algorithm=hash_name,
            before=moment,
            dry_run=dry_run,
            timeout=config.tsa_timeout,
        )
    if json_output:
        emit_json(report.to_json())
    else:
        render_renew(report)
    if report.failed:
        raise typer.Exit(ExitCode.UNUSABLE_INPUT)
    if report.pending:
        raise typer.Exit(ExitCode.TIMESTAMP_PENDING)


def render_renew(report: Any) -> None:
    from custody.clock import format_time

    verb = "would" if report.dry_run else "did"
    out.print(f"Evidence records (RFC 4998), judged {format_time(report.at)}")
    out.print(
        f"renewing what lapses before {format_time(report.renew_before)}"
        + (f", migrating to {report.requested_algorithm}" if report.requested_algorithm else "")
    )
    for action in report.actions:
        target = f" of record {action.renews}" if action.renews is not None else ""
        checkpoints = ", ".join(str(g.checkpoint) for g in action.objects)
        if action.outcome == "planned":
            mark = "[yellow]would[/]" if report.dry_run else "[yellow]planned[/]"
        elif action.outcome == "done":
            mark = "[green]done[/]"
        else:
            mark = f"[red]{action.outcome}[/]"
        out.print(f"  {mark} {action.action}{target}, checkpoint(s) {checkpoints}")
        out.print(f"    why: {shown(action.reason)}")
        if action.outcome == "done":
            out.print(
                f"    {action.algorithm} archive timestamp of {action.gen_time} by "
                f"{shown(action.tsa or '')}"
            )
            out.print(f"    record {action.record}, {action.bytes_added} bytes added")
        elif action.message:
            out.print(f"    {shown(action.message)}")
    for row in report.current:
        checkpoints = ", ".join(str(c) for c in row["checkpoints"])
        out.print(
            f"  [green]current[/] record {row['evidence_record']}, checkpoint(s) {checkpoints}"
        )
        out.print(f"    {shown(row['reason'])}")
    for row in report.skipped:
        out.print(f"  [yellow]skipped[/] checkpoint {row['checkpoint']}: {shown(row['reason'])}")
    for row in report.validation:
        if row["record"] is None:
            out.print(
                f"  [yellow]{verb} fetch[/] validation material for record {row['for']} "
                f"({row['missing']} item(s) missing)"
            )
        else:
            out.print(
                f"  [green]validation[/] record {row['record']}: {row['files']} file(s) for "
                f"record {row['for']}, {row['missing']} still missing"
            )
    if not report.actions and not report.validation:
        out.print("Nothing is due.")
    if report.failed:
        err.print(
            f"[bold red]FAILED[/]: {len(report.failed)} evidence set(s) cannot be read: "
            "run 'custody verify'"
        )
    elif report.pending:
        err.print(
            f"[bold yellow]PENDING[/]: {len(report.pending)} renewal(s) could not be made (no "
            "timestamp authority answered); run 'custody renew' again before the deadlines"
        )
