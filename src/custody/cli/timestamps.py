"""``custody timestamp``: RFC 3161 tokens for pending checkpoints."""

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
    signer_for,
)
from custody.errors import ExitCode


def stamp_root(
    evidence: Any, signer: Any, tsa: list[str], min_success: int | None, tsa_root: list[Path]
) -> Any:
    from custody.timestamps.stamping import load_trust, stamp

    config = evidence.config()
    urls = [*tsa, *config.tsa_urls] if tsa else None
    # Paths in config.toml are read beside it; paths on the command line from here.
    configured = [evidence.state / Path(p).expanduser() for p in config.tsa_roots]
    trust = load_trust([*configured, *tsa_root])
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
