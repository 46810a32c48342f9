"""``custody export``, ``report``, ``import`` and ``export-case``: what goes to a lawyer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from custody.cli.common import (
    ItemsArg,
    JsonOpt,
    KeyOpt,
    RootOpt,
    TagSelectOpt,
    TsaRootOpt,
    app,
    emit_json,
    err,
    evidence_root,
    human_size,
    out,
    select_items,
    signer_for,
)
from custody.cli.verify import render_verification
from custody.errors import ExitCode


@app.command("export-case")
def export_case(
    items: ItemsArg = None,
    output: Annotated[Path | None, typer.Option("--out", help="The .jsonld file to write.")] = None,
    tag: TagSelectOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """The chain of custody as CASE/UCO JSON-LD (all items, or ITEMS / --tag).

    The export restates the ledger; run 'custody verify' first to know it is sound.
    """
    from custody.delivery.case_uco import case_document, case_json
    from custody.errors import UsageError
    from custody.handling.lookup import resolve_items
    from custody.ledger.backends import open_ledger
    from custody.system.files import write_atomic

    if output is None:
        raise UsageError("say where to write with --out FILE.jsonld")
    with open_ledger(evidence_root(root)) as ledger:
        seqs = resolve_items(ledger, items or [], tags=tag or []) if (items or tag) else None
        document = case_document(ledger, seqs)
    write_atomic(output, case_json(document).encode("utf-8"))
    graph = document.get("@graph", [])
    if json_output:
        emit_json({"out": str(output), "objects": len(graph)})
    else:
        out.print(f"CASE/UCO JSON-LD with {len(graph)} objects written to {escape(str(output))}")


@app.command("export")
def export_command(
    items: ItemsArg = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="New folder for the bundle.")
    ] = None,
    all_items: Annotated[bool, typer.Option("--all", help="Every current item.")] = False,
    tag: TagSelectOpt = None,
    make_zip: Annotated[
        bool, typer.Option("--zip", help="Also write the bundle as one .zip.")
    ] = False,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Write a self-contained, offline-verifiable evidence bundle (BagIt) of ITEMS."""
    from custody.delivery.bundle_export import export_bundle
    from custody.errors import UsageError
    from custody.handling.vault import current_items
    from custody.ledger.backends import open_ledger

    if out_dir is None:
        raise UsageError("say where to write the bundle with --out DIR")
    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        if all_items:
            seqs = [r.seq for r in current_items(ledger)]
        else:
            seqs = select_items(ledger, items, tag)
    report = export_bundle(evidence, seqs, out_dir, make_zip=make_zip)
    if json_output:
        emit_json(report.to_json())
        return
    for warning in report.warnings:
        err.print(f"[yellow]warning[/]: {escape(warning)}")
    out.print(
        f"bundle of {len(report.items)} item(s), {human_size(report.payload_bytes)}, "
        f"{report.records} ledger records with inclusion proofs against checkpoint "
        f"{report.checkpoint}, {report.timestamps} timestamp token(s): {escape(report.out)}"
    )
    if report.zip:
        out.print(f"zip: {escape(report.zip)}")


@app.command()
def report(
    source: Annotated[
        Path | None, typer.Argument(help="Evidence root, bundle folder or .zip (default: here).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="report.html or report.pdf")] = None,
    tsa_root: TsaRootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """A chain-of-custody report a court can read: HTML or PDF (A4), by the --out suffix."""
    from custody.delivery.report.build import build_report
    from custody.delivery.report.html import render_html
    from custody.delivery.report.pdf import write_pdf
    from custody.errors import UsageError
    from custody.system.files import write_atomic
    from custody.timestamps.stamping import load_trust

    if output is None or output.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise UsageError("say where to write with --out report.html or --out report.pdf")
    target = source if source is not None else evidence_root(None).path
    built = build_report(target, tsa_trust=load_trust(tsa_root or []))
    html_text = render_html(built)
    if output.suffix.lower() == ".pdf":
        write_pdf(html_text, output)
    else:
        write_atomic(output, html_text.encode("utf-8"))
    if json_output:
        emit_json({"out": str(output), "verified": built.verified, "verdict": built.verdict})
    else:
        out.print(f"{built.verdict}: report written to {escape(str(output))}")
    raise typer.Exit(ExitCode.OK if built.verified else ExitCode.FINDINGS)


@app.command("import")
def import_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder or .zip.")],
    into: Annotated[str | None, typer.Option("--into", help="Folder inside the root.")] = None,
    tsa_root: TsaRootOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Verify a received bundle and, only if it passes, bring it into this evidence root."""
    from custody.delivery.bundle_import import import_bundle
    from custody.timestamps.stamping import load_trust

    evidence = evidence_root(root)
    signer = signer_for(key)
    report = import_bundle(
        bundle, evidence, signer, into=into, tsa_trust=load_trust(tsa_root or [])
    )
    if json_output:
        emit_json(
            {
                "imported": report.imported,
                "folder": report.folder,
                "event": report.event,
                "verification": report.verification.to_json(),
            }
        )
    else:
        if not report.verification.ok:
            render_verification(report.verification)
            err.print("[bold red]refused[/]: the bundle does not verify; nothing was written")
        else:
            out.print(
                f"imported {report.imported} item(s) into {escape(report.folder)}; "
                f"receipt recorded as record {report.event}"
            )
    raise typer.Exit(ExitCode.OK if report.verification.ok else ExitCode.FINDINGS)
