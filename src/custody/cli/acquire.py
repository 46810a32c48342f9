"""``custody hash``, ``catalogue`` and ``ingest`` (with ``--as`` for a WhatsApp or Telegram
export, a ProofMode bundle or a BagIt bag): reading evidence in."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from custody.cli.common import (
    JobsOpt,
    JsonOpt,
    KeyOpt,
    RootOpt,
    app,
    emit_json,
    err,
    evidence_root,
    human_size,
    out,
    progress_bar,
    shown,
    signer_for,
    unlocker_for,
)
from custody.cli.timestamps import render_stamp, stamp_root
from custody.errors import ExitCode


@app.command("hash")
def hash_command(
    files: Annotated[list[Path], typer.Argument(help="Files to hash.")],
    algo: Annotated[
        list[str] | None,
        typer.Option("--algo", "-a", help="sha256 (default), sha512, sha3-256, blake3, sha1, md5."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Print streaming digests; with SHA-256 alone the output suits 'sha256sum -c'."""
    from custody.cli.fastpath import run_hash

    sys.stdout.flush()
    code = run_hash([os.fsencode(p) for p in files], algo or [], json_output=json_output)
    if code:
        raise typer.Exit(code)


CollectorOpt = Annotated[str | None, typer.Option("--collector", help="Who collected the files.")]


SourceOpt = Annotated[
    str | None, typer.Option("--source", help="Where they came from (device, person, platform).")
]


LocationOpt = Annotated[str | None, typer.Option("--location", help="Where they were collected.")]


NoteOpt = Annotated[str | None, typer.Option("--note", help="A free-text note.")]


TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")]


C2paTrustOpt = Annotated[
    Path | None,
    typer.Option(
        "--c2pa-trust",
        help="PEM file of C2PA trust anchors: a manifest signed under one is recorded "
        "'trusted' (otherwise at best 'valid').",
    ),
]


def _anchors(path: Path | None) -> bytes | None:
    """The C2PA trust list, checked now: a bad file is a usage error before any work."""
    if path is None:
        return None
    from cryptography import x509

    from custody.errors import UsageError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--c2pa-trust {path}: {exc.strerror}") from None
    try:
        if not x509.load_pem_x509_certificates(data):
            raise ValueError("no certificate")
    except ValueError as exc:
        raise UsageError(f"--c2pa-trust {path}: not PEM certificates ({exc})") from None
    return data


def _descriptive(
    collector: str | None,
    source: str | None,
    location: str | None,
    note: str | None,
    tags: list[str] | None,
) -> Any:
    from custody.acquisition.catalogue import Descriptive

    return Descriptive(collector, source, location, note, tuple(tags or ()))


@app.command()
def catalogue(
    paths: Annotated[
        list[Path], typer.Argument(help="Files and folders inside the evidence root.")
    ],
    collector: CollectorOpt = None,
    source: SourceOpt = None,
    location: LocationOpt = None,
    note: NoteOpt = None,
    tag: TagOpt = None,
    rehash: Annotated[
        bool, typer.Option("--rehash", help="Re-read files even if size and time are unchanged.")
    ] = False,
    timestamp: Annotated[
        bool, typer.Option("--timestamp", help="Finish by getting trusted timestamps (RFC 3161).")
    ] = False,
    jobs: JobsOpt = None,
    c2pa_trust: C2paTrustOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Hash, describe and sign every file under PATHS into the ledger (with any C2PA
    manifest a file carries, validated)."""
    from custody.acquisition.catalogue import catalogue as run_catalogue

    evidence = evidence_root(root)
    unlock = unlocker_for(key)
    unlocked: list[Any] = []

    def signer() -> Any:  # unlocked while exiftool starts; kept for --timestamp
        unlocked.append(unlock())
        return unlocked[-1]

    with progress_bar("Cataloguing", not json_output) as observer:
        report = run_catalogue(
            evidence,
            [str(p) for p in paths],
            signer,
            descriptive=_descriptive(collector, source, location, note, tag),
            rehash=rehash,
            observer=observer,
            jobs=jobs,
            c2pa_anchors=_anchors(c2pa_trust),
        )
    stamped = None
    if timestamp:
        stamped = stamp_root(evidence, unlocked[-1] if unlocked else unlock(), [], None, [])
    if json_output:
        document = _catalogue_json(report)
        if stamped is not None:
            document["timestamp"] = stamped.to_json()
        emit_json(document)
    else:
        _render_catalogue(report)
        if stamped is not None:
            render_stamp(stamped)
    if report.skipped or report.count("version"):
        # Skipped files and originals that changed since they were recorded both need a
        # person to look: the run finished, but not cleanly.
        raise typer.Exit(ExitCode.FINDINGS)
    if any(o.c2pa == "invalid" for o in report.outcomes):
        raise typer.Exit(ExitCode.FINDINGS)  # a file's own C2PA manifest does not validate
    if stamped is not None and not stamped.ok:
        raise typer.Exit(ExitCode.TIMESTAMP_PENDING)


def _catalogue_json(report: Any) -> dict[str, Any]:
    return {
        "files_seen": report.files_seen,
        "added": report.count("new"),
        "duplicates": report.count("duplicate"),
        "versions": report.count("version"),
        "unchanged": report.unchanged,
        "bytes_hashed": report.bytes_hashed,
        "checkpoint": report.checkpoint,
        "ledger_size": report.ledger_size,
        "items": [
            {
                "seq": o.seq,
                "path": o.path,
                "kind": o.kind,
                "sha256": o.sha256,
                "size": o.size,
                "related": o.related,
                "metadata_error": o.metadata_error,
                "c2pa": o.c2pa,
            }
            for o in report.outcomes
        ],
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
    }


def _render_catalogue(report: Any) -> None:
    for o in report.outcomes:
        if o.kind == "version":
            err.print(
                f"[bold yellow]CHANGED[/] {shown(o.path)}: content differs from record "
                f"{o.related}; recorded as new version {o.seq}. The bytes acquired as record "
                f"{o.related} are no longer in the evidence root, and 'custody verify' reports "
                "that (ORIGINAL_MISSING) until they are restored from a vault copy ('custody "
                f"vault restore {o.related} --from VAULT') or an 'custody event supersede "
                f"{o.related} --reason ...' says what happened"
            )
    for s in report.skipped:
        err.print(f"[red]skipped[/] {shown(s.path)}: {shown(s.reason)}")
    for o in report.outcomes:
        if o.c2pa == "invalid":
            err.print(
                f"[bold red]C2PA INVALID[/] {shown(o.path)}: the file's C2PA manifest does not "
                "validate (the file or its manifest was changed after signing); recorded as "
                f"found in record {o.seq} ('custody show {o.seq}')"
            )
    table = Table(title="Catalogue summary", show_header=False)
    table.add_row("new items", str(report.count("new")))
    table.add_row("duplicates of earlier content", str(report.count("duplicate")))
    table.add_row("changed since last recorded", str(report.count("version")))
    table.add_row("unchanged, not re-recorded", str(report.unchanged))
    table.add_row("skipped", str(len(report.skipped)))
    table.add_row("metadata errors (catalogued anyway)", str(len(report.metadata_errors)))
    manifests = [o.c2pa for o in report.outcomes if o.c2pa]
    if manifests:
        states = ", ".join(f"{manifests.count(s)} {s}" for s in ("trusted", "valid", "invalid"))
        table.add_row("C2PA manifests", states)
    table.add_row("bytes hashed", human_size(report.bytes_hashed))
    table.add_row("ledger records", str(report.ledger_size))
    if report.checkpoint is not None:
        table.add_row("checkpoint", f"record {report.checkpoint}")
    out.print(table)


AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="What SOURCE is: whatsapp, telegram, proofmode or bagit (a folder or its .zip); "
        "what it says of each file is recorded as its claims.",
    ),
]


ProofModeKeyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--proofmode-key",
        help="With --as proofmode: an OpenPGP fingerprint you confirmed with the person who "
        "recorded (repeatable); the bundle's signing key is then checked against it.",
    ),
]


@app.command()
def ingest(
    sources: Annotated[list[Path], typer.Argument(help="Files or folders outside the root.")],
    into: Annotated[
        str | None, typer.Option("--into", help="Folder inside the root to copy into.")
    ] = None,
    as_kind: AsOpt = None,
    collector: CollectorOpt = None,
    source: SourceOpt = None,
    location: LocationOpt = None,
    note: NoteOpt = None,
    tag: TagOpt = None,
    jobs: JobsOpt = None,
    c2pa_trust: C2paTrustOpt = None,
    proofmode_key: ProofModeKeyOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Copy files into the evidence root, prove each copy identical, then catalogue it.

    With --as, SOURCE is one export, bundle or bag: it is read (and a bag validated) before
    anything is copied, and each file's record keeps what the source says of it.
    """
    from custody.acquisition.ingest import ingest as run_ingest
    from custody.errors import UsageError

    if as_kind is None and proofmode_key:
        raise UsageError("--proofmode-key applies to --as proofmode only")
    descriptive = _descriptive(collector, source, location, note, tag)
    anchors = _anchors(c2pa_trust)
    intake = None
    if as_kind is not None:
        from custody.cli import sources as intake_cli

        if len(sources) != 1:
            raise UsageError(f"--as {as_kind} takes one export, bundle or bag at a time")
        intake = intake_cli.run_intake(sources[0], as_kind, into, descriptive, anchors,
                                       proofmode_key, key, root, json_output)  # fmt: skip
        report = intake.ingest
    else:
        evidence = evidence_root(root)
        signer = signer_for(key)
        with progress_bar("Ingesting", not json_output) as observer:
            report = run_ingest(
                evidence,
                [str(s) for s in sources],
                signer,
                into=into,
                descriptive=descriptive,
                observer=observer,
                c2pa_anchors=anchors,
                jobs=jobs,
            )
    if json_output:
        document = ingest_json(report)
        if intake is not None:
            document["source"] = intake_cli.intake_json(intake)
        emit_json(document)
    else:
        render_ingest(report)
        if intake is not None:
            intake_cli.render_intake(intake)
    if intake is not None and intake_cli.intake_failed(intake):
        raise typer.Exit(ExitCode.FINDINGS)
    if report.failures or report.skipped or (report.catalogue and report.catalogue.skipped):
        raise typer.Exit(ExitCode.FINDINGS)
    if report.catalogue and any(o.c2pa == "invalid" for o in report.catalogue.outcomes):
        raise typer.Exit(ExitCode.FINDINGS)


def ingest_json(report: Any) -> dict[str, Any]:
    """The JSON of an ``IngestReport`` (schemas/cli-ingest.schema.json)."""
    return {
        "copied": report.copied,
        "already_present": report.already_present,
        "bytes_copied": report.bytes_copied,
        "failures": [
            {"source": f.source, "copy": f.copy, "reason": f.reason} for f in report.failures
        ],
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
        "catalogue": _catalogue_json(report.catalogue),
    }


def render_ingest(report: Any) -> None:
    """What was copied, what failed, and the catalogue summary."""
    for f in report.failures:
        err.print(f"[bold red]COPY FAILED[/] {shown(f.source)} -> {shown(f.copy)}: {f.reason}")
    for s in report.skipped:
        err.print(f"[red]skipped[/] {shown(s.path)}: {shown(s.reason)}")
    err.print(
        f"Copied {report.copied} files ({human_size(report.bytes_copied)}), "
        f"{report.already_present} already present"
    )
    _render_catalogue(report.catalogue)
