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
from custody.cli.render import said, styled
from custody.errors import ExitCode, InputError, UsageError
from custody.i18n import N_, _, ngettext

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
                _(
                    "{options} apply to 'custody timestamp' itself, not to "
                    "'timestamp {subcommand}': put them after the subcommand"
                ).format(options=", ".join(named), subcommand=ctx.invoked_subcommand)
            )
        return
    if request_out is not None and responses is not None:
        raise UsageError(_("--request-out and --responses are two ends of the air gap: use one"))
    if request_out is not None and tsa_root:
        raise UsageError(
            _("--tsa-root checks replies: give it with --responses, not --request-out")
        )
    if responses is not None and (tsa or min_success is not None):
        raise UsageError(
            _(
                "--tsa and --min choose what to request: give them with --request-out; the "
                "replies are checked against the requests as they were made"
            )
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
        raise UsageError(_("{path} exists; not overwritten").format(path=target))
    signer = signer_for(key)
    batch = write_requests(evidence, signer, tsa_urls=tsa or None, min_success=min_success)
    if batch.new_checkpoint is not None:
        err.print(_("made checkpoint record {seq}").format(seq=batch.new_checkpoint))
    if not batch.count:
        if json_output:
            emit_json({**batch.to_json(), "out": None})
        else:
            out.print(_("Every checkpoint already has its timestamps: no request to carry."))
        return
    write_atomic(target, _dump(batch.document))
    if json_output:
        emit_json({**batch.to_json(), "out": str(target)})
        return
    document = batch.document
    checkpoints = sorted({r["checkpoint"] for r in document["requests"]})
    authorities = sorted({r["tsa"] for r in document["requests"]})
    out.print(
        escape(
            ngettext(
                "{n} request(s) for checkpoint(s) {checkpoints} to {authorities} "
                "authority(ies) written to {path}",
                "{n} request(s) for checkpoint(s) {checkpoints} to {authorities} "
                "authority(ies) written to {path}",
                batch.count,
            ).format(
                n=batch.count,
                checkpoints=", ".join(map(str, checkpoints)),
                authorities=len(authorities),
                path=target,
            )
        )
    )
    out.print(
        "  "
        + escape(
            _("a copy is kept in {path}; replies are checked against it").format(path=batch.kept)
        )
    )
    out.print(
        escape(
            _(
                "Next: carry the file to any online machine (it holds no key and no evidence) "
                "and run 'custody timestamp fetch {name} --out replies.json'; bring "
                "replies.json back and run 'custody timestamp --responses replies.json' here."
            ).format(name=target.name)
        )
    )


def _accept(
    evidence: Any, key: str | None, responses: Path, tsa_root: list[Path], json_output: bool
) -> None:
    from custody.timestamps.stamping import RESPONSES_FORMAT, accept_responses, load_exchange

    try:
        data = responses.read_bytes()
    except OSError as exc:
        raise InputError(
            _("cannot read {path}: {why}").format(path=responses, why=exc.strerror)
        ) from None
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
        raise UsageError(_("say where to write the replies with --out FILE"))
    if output.exists():
        raise UsageError(_("{path} exists; not overwritten").format(path=output))
    if not 0 < timeout <= 600:
        raise UsageError(_("--timeout is a number of seconds between 0 and 600"))
    try:
        data = requests_file.read_bytes()
    except OSError as exc:
        raise InputError(
            _("cannot read {path}: {why}").format(path=requests_file, why=exc.strerror)
        ) from None
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
            escape(
                ngettext(
                    "{received} of {n} reply(ies) written to {path}; take it back to the "
                    "evidence machine: custody timestamp --responses {name}",
                    "{received} of {n} reply(ies) written to {path}; take it back to the "
                    "evidence machine: custody timestamp --responses {name}",
                    len(outcomes),
                ).format(received=received, n=len(outcomes), path=output, name=output.name)
            )
        )
    if received < len(outcomes):
        raise typer.Exit(ExitCode.TIMESTAMP_PENDING)


def _authority_failed(tsa: str, reason: str, checkpoints: list[int], *, skipped: bool) -> str:
    """One line for an authority that failed, as "failed TSA: why (checkpoint(s) 4, 9)",
    the authority named once (markup included)."""
    # The library's reason names the authority again ("timestamp authority URL ..."); said
    # once is enough. Replaced in the reason's own language: English, or left as it is.
    said = reason.replace(f"timestamp authority {tsa}", "the authority")
    mark = styled("dim", _("not recorded")) if skipped else styled("red", _("failed"))
    rest = _("{tsa}: {reason} (checkpoint(s) {checkpoints})").format(
        tsa=tsa, reason=said, checkpoints=", ".join(map(str, checkpoints))
    )
    return f"{mark} {escape(rest)}"


def _render_fetched(outcomes: list[Any]) -> None:
    seen_dead: set[str] = set()
    for o in outcomes:
        if o.ok:
            # A whole sentence, green on a terminal (its one word "received" was, before).
            out.print(
                escape(
                    _("checkpoint {checkpoint}: received from {tsa}").format(
                        checkpoint=o.checkpoint, tsa=o.tsa
                    )
                ),
                style="green",
            )
        elif o.tsa not in seen_dead:
            seen_dead.add(o.tsa)
            others = sorted({x.checkpoint for x in outcomes if x.tsa == o.tsa and not x.ok})
            out.print(_authority_failed(o.tsa, o.reason, others, skipped=False))


def render_stamp(report: Any) -> None:
    """Stamped tokens one line each; an authority that failed, once, with the checkpoints it
    was not asked for again; then the pending summary."""
    if report.new_checkpoint is not None:
        err.print(_("made checkpoint record {seq}").format(seq=report.new_checkpoint))
    if not report.checkpoints:
        out.print(_("Every checkpoint already has its timestamps."))
        return
    failures: dict[tuple[str, str], list[int]] = {}
    for entry in report.checkpoints:
        for o in entry.outcomes:
            if o.ok:
                # A whole sentence, green on a terminal (its one word "stamped" was, before).
                # The reason is the library's account of the token.
                out.print(
                    escape(
                        _(
                            "checkpoint {checkpoint}: stamped by {tsa} at {time} "
                            "(record {seq}): {reason}"
                        ).format(
                            checkpoint=entry.checkpoint,
                            tsa=o.tsa,
                            time=o.gen_time,
                            seq=o.record,
                            reason=o.reason,
                        )
                    ),
                    style="green",
                )
            else:
                failures.setdefault((o.tsa, o.reason), []).append(entry.checkpoint)
    for (tsa, reason), checkpoints in failures.items():
        # "skipped ..." is how the library says an authority was not asked again.
        out.print(_authority_failed(tsa, reason, checkpoints, skipped=reason.startswith("skipped")))
    pending = report.pending
    added = sum(1 for entry in report.checkpoints for o in entry.outcomes if o.ok)
    if pending:
        listing = ", ".join(str(c.checkpoint) for c in pending)
        text = ngettext(
            "checkpoint(s) {checkpoints} have fewer than the {n} token(s) the policy asks "
            "for; run 'custody timestamp' again when the timestamp authorities can be reached "
            "(or, on a machine that must stay offline, 'custody timestamp --request-out FILE')",
            "checkpoint(s) {checkpoints} have fewer than the {n} token(s) the policy asks "
            "for; run 'custody timestamp' again when the timestamp authorities can be reached "
            "(or, on a machine that must stay offline, 'custody timestamp --request-out FILE')",
            report.min_success,
        ).format(checkpoints=listing, n=report.min_success)
        pending_word = _("PENDING")
        out.print(f"{styled('bold yellow', pending_word)}: {escape(text)}")
    elif added:
        stamped = sum(1 for entry in report.checkpoints if any(o.ok for o in entry.outcomes))
        text = ngettext(
            "{n} token(s) over {checkpoints} checkpoint(s).",
            "{n} token(s) over {checkpoints} checkpoint(s).",
            added,
        ).format(n=added, checkpoints=stamped)
        stamped_word = _("Stamped")
        out.print(f"{styled('bold green', stamped_word)}: {escape(text)}")
    else:
        out.print(_("No new token recorded; no checkpoint is pending."))


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

    out.print(
        escape(_("Evidence records (RFC 4998), judged {time}").format(time=format_time(report.at)))
    )
    before = format_time(report.renew_before)
    if report.requested_algorithm:
        out.print(
            escape(
                _("renewing what lapses before {time}, migrating to {algorithm}").format(
                    time=before, algorithm=report.requested_algorithm
                )
            )
        )
    else:
        out.print(escape(_("renewing what lapses before {time}").format(time=before)))
    for action in report.actions:
        checkpoints = ", ".join(str(g.checkpoint) for g in action.objects)
        if action.outcome == "planned":
            word = _("would") if report.dry_run else _("planned")
            mark = f"[yellow]{escape(word)}[/]"
        else:
            colour = "green" if action.outcome == "done" else "red"
            mark = f"[{colour}]{escape(said(OUTCOMES, action.outcome))}[/]"
        doing = said(ACTIONS, action.action)
        if action.renews is not None:
            what = _("{action} of record {seq}, checkpoint(s) {checkpoints}").format(
                action=doing, seq=action.renews, checkpoints=checkpoints
            )
        else:
            what = _("{action}, checkpoint(s) {checkpoints}").format(
                action=doing, checkpoints=checkpoints
            )
        out.print(f"  {mark} {escape(what)}")
        out.print("    " + shown(_("why: {reason}").format(reason=action.reason)))
        if action.outcome == "done":
            out.print(
                "    "
                + shown(
                    _("{algorithm} archive timestamp of {time} by {tsa}").format(
                        algorithm=action.algorithm, time=action.gen_time, tsa=action.tsa or ""
                    )
                )
            )
            out.print(
                "    "
                + escape(
                    _("record {seq}, {size} bytes added").format(
                        seq=action.record, size=action.bytes_added
                    )
                )
            )
        elif action.message:
            out.print(f"    {shown(action.message)}")
    current = _("current")
    for row in report.current:
        checkpoints = ", ".join(str(c) for c in row["checkpoints"])
        text = _("record {seq}, checkpoint(s) {checkpoints}").format(
            seq=row["evidence_record"], checkpoints=checkpoints
        )
        out.print(f"  {styled('green', current)} {escape(text)}")
        out.print(f"    {shown(row['reason'])}")
    skipped = _("skipped")
    for row in report.skipped:
        text = _("checkpoint {checkpoint}: {reason}").format(
            checkpoint=row["checkpoint"], reason=row["reason"]
        )
        out.print(f"  {styled('yellow', skipped)} {shown(text)}")
    validation = _("validation")
    for row in report.validation:
        if row["record"] is None:
            word = _("would fetch") if report.dry_run else _("did fetch")
            text = ngettext(
                "validation material for record {seq} ({n} item(s) missing)",
                "validation material for record {seq} ({n} item(s) missing)",
                row["missing"],
            ).format(seq=row["for"], n=row["missing"])
            out.print(f"  [yellow]{escape(word)}[/] {escape(text)}")
        else:
            text = ngettext(
                "record {seq}: {n} file(s) for record {target}, {missing} still missing",
                "record {seq}: {n} file(s) for record {target}, {missing} still missing",
                row["files"],
            ).format(seq=row["record"], n=row["files"], target=row["for"], missing=row["missing"])
            out.print(f"  {styled('green', validation)} {escape(text)}")
    if not report.actions and not report.validation:
        out.print(_("Nothing is due."))
    if report.failed:
        text = ngettext(
            "{n} evidence set(s) cannot be read: run 'custody verify'",
            "{n} evidence set(s) cannot be read: run 'custody verify'",
            len(report.failed),
        ).format(n=len(report.failed))
        failed_word = _("FAILED")
        err.print(f"{styled('bold red', failed_word)}: {escape(text)}")
    elif report.pending:
        text = ngettext(
            "{n} renewal(s) could not be made (no timestamp authority answered); run "
            "'custody renew' again before the deadlines",
            "{n} renewal(s) could not be made (no timestamp authority answered); run "
            "'custody renew' again before the deadlines",
            len(report.pending),
        ).format(n=len(report.pending))
        pending_word = _("PENDING")
        err.print(f"{styled('bold yellow', pending_word)}: {escape(text)}")


# How a renewal went (custody.timestamps.longterm.RenewAction.outcome), in words.
OUTCOMES = {"done": N_("done"), "pending": N_("pending"), "failed": N_("failed")}

# What a renewal does (RenewAction.action: the name the record and --json give it), in words.
ACTIONS = {
    # Translators: custody renew puts a stamped checkpoint under its first evidence record.
    "initial": N_("initial"),
    # Translators: a new archive timestamp over an evidence record (RFC 4998 section 5.2).
    "timestamp-renewal": N_("timestamp-renewal"),
    # Translators: a new hash tree and archive timestamp, under another algorithm (5.3).
    "hashtree-renewal": N_("hashtree-renewal"),
}
