"""``custody timestamp``: RFC 3161 tokens for pending checkpoints, online or across an
air gap (``--request-out`` here, ``timestamp fetch`` on an online machine, ``--responses``
back here); ``custody renew``: RFC 4998 evidence records that keep them valid."""

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
from custody.errors import ExitCode, InputError, UsageError

timestamp_app = typer.Typer(invoke_without_command=True)
app.add_typer(timestamp_app, name="timestamp")


def root_trust(evidence: Any, tsa_root: list[Path]) -> Any:
    """The TSA roots of config.toml (read beside it) and of --tsa-root (read from here)."""
    from custody.timestamps.stamping import load_trust

    configured = [evidence.state / Path(p).expanduser() for p in evidence.config().tsa_roots]
    return load_trust([*configured, *tsa_root])


def stamp_root(
    evidence: Any, signer: Any, tsa: list[str], min_success: int | None, tsa_root: list[Path]
) -> Any:
    from custody.timestamps.stamping import stamp

    # Authorities named on the command line replace the configured ones for this run.
    return stamp(
        evidence,
        signer,
        tsa_urls=tsa or None,
        min_success=min_success,
        trust=root_trust(evidence, tsa_root),
    )


TsaOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--tsa",
        help="A timestamp authority URL (repeatable). Naming any REPLACES the configured "
        "list for this run: only the authorities named are asked.",
    ),
]


@timestamp_app.callback()
def timestamp(
    ctx: typer.Context,
    tsa: TsaOpt = None,
    min_success: Annotated[
        int | None,
        typer.Option(
            "--min",
            help="Tokens needed per checkpoint (default: config.toml's, at most the number "
            "of authorities named with --tsa).",
        ),
    ] = None,
    tsa_root: TsaRootOpt = None,
    request_out: Annotated[
        Path | None,
        typer.Option(
            "--request-out",
            help="Air gap: write the requests for every pending checkpoint to this file "
            "instead of going online; carry it to an online machine for 'custody timestamp "
            "fetch'.",
        ),
    ] = None,
    responses: Annotated[
        Path | None,
        typer.Option(
            "--responses",
            help="Air gap: record the replies 'custody timestamp fetch' brought back, each "
            "checked against the request this root kept.",
        ),
    ] = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Get RFC 3161 timestamps for every checkpoint not yet stamped.

    Makes a checkpoint first if records were added since the last one. When no authority
    answers, the checkpoints stay pending (exit 7) and a later run stamps them. On a
    machine that must never go online: --request-out FILE here, 'custody timestamp fetch
    FILE --out REPLIES' on any online machine, then --responses REPLIES here.
    """
    given = {
        "--tsa": bool(tsa), "--min": min_success is not None, "--tsa-root": bool(tsa_root),
        "--request-out": request_out is not None, "--responses": responses is not None,
        "--key": key is not None, "--root": root is not None, "--json": json_output,
    }  # fmt: skip
    if ctx.invoked_subcommand is not None:
        named = [name for name, on in given.items() if on]
        if named:
            raise UsageError(
                f"{', '.join(named)} apply to 'custody timestamp' itself, not to "
                f"'timestamp {ctx.invoked_subcommand}': put them after the subcommand"
            )
        return
    if request_out is not None and responses is not None:
        raise UsageError("--request-out and --responses are two ends of the air gap: use one")
    if request_out is not None and tsa_root:
        raise UsageError("--tsa-root checks replies: give it with --responses, not --request-out")
    if responses is not None and (tsa or min_success is not None):
        raise UsageError(
            "--tsa and --min choose what to request: give them with --request-out; the "
            "replies are checked against the requests as they were made"
        )
    evidence = evidence_root(root)
    if request_out is not None:
        _write_requests(evidence, key, tsa, min_success, request_out, json_output)
        return
    if responses is not None:
        _accept(evidence, key, responses, tsa_root or [], json_output)
        return
    signer = signer_for(key)
    report = stamp_root(evidence, signer, tsa or [], min_success, tsa_root or [])
    if json_output:
        emit_json(report.to_json())
    else:
        render_stamp(report)
    if not report.ok:
        raise typer.Exit(ExitCode.TIMESTAMP_PENDING)


def _write_requests(
    evidence: Any,
    key: str | None,
    tsa: list[str] | None,
    min_success: int | None,
    target: Path,
    json_output: bool,
) -> None:
    from custody.system.files import write_atomic
    from custody.timestamps.stamping import _dump, write_requests

    if target.exists():
        raise UsageError(f"{target} exists; not overwritten")
    signer = signer_for(key)
    batch = write_requests(evidence, signer, tsa_urls=tsa or None, min_success=min_success)
    if batch.new_checkpoint is not None:
        err.print(f"made checkpoint record {batch.new_checkpoint}")
    if not batch.count:
        if json_output:
            emit_json({**batch.to_json(), "out": None})
        else:
            out.print("Every checkpoint already has its timestamps: no request to carry.")
        return
    write_atomic(target, _dump(batch.document))
    if json_output:
        emit_json({**batch.to_json(), "out": str(target)})
        return
    document = batch.document
    checkpoints = sorted({r["checkpoint"] for r in document["requests"]})
    authorities = sorted({r["tsa"] for r in document["requests"]})
    out.print(
        f"{batch.count} request(s) for checkpoint(s) {', '.join(map(str, checkpoints))} to "
        f"{len(authorities)} authority(ies) written to {escape(str(target))}"
    )
    out.print(f"  a copy is kept in {escape(str(batch.kept))}; replies are checked against it")
    out.print(
        "Next: carry the file to any online machine (it holds no key and no evidence) and "
        f"run 'custody timestamp fetch {escape(target.name)} --out replies.json'; bring "
        "replies.json back and run 'custody timestamp --responses replies.json' here."
    )


def _accept(
    evidence: Any, key: str | None, responses: Path, tsa_root: list[Path], json_output: bool
) -> None:
    from custody.timestamps.stamping import RESPONSES_FORMAT, accept_responses, load_exchange

    try:
        data = responses.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {responses}: {exc.strerror}") from None
    document = load_exchange(data, RESPONSES_FORMAT, str(responses))
    trust = root_trust(evidence, tsa_root)
    signer = signer_for(key)
    report = accept_responses(evidence, signer, document, trust=trust)
    if json_output:
        emit_json(report.to_json())
    else:
        render_stamp(report)
    if not report.ok:
        raise typer.Exit(ExitCode.TIMESTAMP_PENDING)


@timestamp_app.command("fetch")
def timestamp_fetch(
    requests_file: Annotated[
        Path, typer.Argument(help="A requests file from 'custody timestamp --request-out'.")
    ],
    output: Annotated[
        Path | None, typer.Option("--out", help="Where to write the replies (a new file).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each authority.")
    ] = 20.0,
    json_output: JsonOpt = False,
) -> None:
    """On an online machine: send the requests to their authorities and keep the replies.

    Needs no key, no evidence and no evidence root; the replies are judged on the evidence
    machine ('custody timestamp --responses')."""
    from custody.system.files import write_atomic
    from custody.timestamps.stamping import (
        REQUESTS_FORMAT,
        _dump,
        fetch_responses,
        load_exchange,
    )

    if output is None:
        raise UsageError("say where to write the replies with --out FILE")
    if output.exists():
        raise UsageError(f"{output} exists; not overwritten")
    if not 0 < timeout <= 600:
        raise UsageError("--timeout is a number of seconds between 0 and 600")
    try:
        data = requests_file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {requests_file}: {exc.strerror}") from None
    document = load_exchange(data, REQUESTS_FORMAT, str(requests_file))
    replies, outcomes = fetch_responses(document, timeout=timeout)
    write_atomic(output, _dump(replies))
    received = sum(1 for o in outcomes if o.ok)
    if json_output:
        emit_json(
            {
                "out": str(output),
                "requests": len(outcomes),
                "received": received,
                "outcomes": [o.__dict__ for o in outcomes],
            }
        )
    else:
        _render_fetched(outcomes)
        out.print(
            f"{received} of {len(outcomes)} reply(ies) written to {escape(str(output))}; "
            "take it back to the evidence machine: custody timestamp --responses "
            f"{escape(output.name)}"
        )
    if received < len(outcomes):
        raise typer.Exit(ExitCode.TIMESTAMP_PENDING)


def _render_fetched(outcomes: list[Any]) -> None:
    seen_dead: set[str] = set()
    for o in outcomes:
        if o.ok:
            out.print(f"checkpoint {o.checkpoint}: [green]received[/] from {escape(o.tsa)}")
        elif o.tsa not in seen_dead:
            seen_dead.add(o.tsa)
            others = sorted({x.checkpoint for x in outcomes if x.tsa == o.tsa and not x.ok})
            said = o.reason.replace(f"timestamp authority {o.tsa}", "the authority")
            out.print(
                f"[red]failed[/] {escape(o.tsa)}: {escape(said)} (checkpoint(s) "
                f"{', '.join(map(str, others))})"
            )


def render_stamp(report: Any) -> None:
    """Stamped tokens one line each; an authority that failed, once, with the checkpoints it
    was not asked for again; then the pending summary."""
    if report.new_checkpoint is not None:
        err.print(f"made checkpoint record {report.new_checkpoint}")
    if not report.checkpoints:
        out.print("Every checkpoint already has its timestamps.")
        return
    failures: dict[tuple[str, str], list[int]] = {}
    for entry in report.checkpoints:
        for o in entry.outcomes:
            if o.ok:
                out.print(
                    f"checkpoint {entry.checkpoint}: [green]stamped[/] by {escape(o.tsa)} at "
                    f"{o.gen_time} (record {o.record}): {escape(o.reason)}"
                )
            else:
                failures.setdefault((o.tsa, o.reason), []).append(entry.checkpoint)
    for (tsa, reason), checkpoints in failures.items():
        listing = ", ".join(map(str, checkpoints))
        said = reason.replace(f"timestamp authority {tsa}", "the authority")
        mark = "[dim]not recorded[/]" if reason.startswith("skipped") else "[red]failed[/]"
        out.print(f"{mark} {escape(tsa)}: {escape(said)} (checkpoint(s) {listing})")
    pending = report.pending
    added = sum(1 for entry in report.checkpoints for o in entry.outcomes if o.ok)
    if pending:
        listing = ", ".join(str(c.checkpoint) for c in pending)
        out.print(
            f"[bold yellow]PENDING[/]: checkpoint(s) {listing} have fewer than the "
            f"{report.min_success} token(s) the policy asks for; run 'custody timestamp' "
            "again when the timestamp authorities can be reached (or, on a machine that "
            "must stay offline, 'custody timestamp --request-out FILE')"
        )
    elif added:
        stamped = sum(1 for entry in report.checkpoints if any(o.ok for o in entry.outcomes))
        out.print(f"[bold green]Stamped[/]: {added} token(s) over {stamped} checkpoint(s).")
    else:
        out.print("No new token recorded; no checkpoint is pending.")


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
