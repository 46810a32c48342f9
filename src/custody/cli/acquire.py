"""``custody hash``, ``catalogue`` and ``ingest`` (with ``--as`` for a WhatsApp or Telegram
export, a ProofMode bundle or a BagIt bag): reading evidence in."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from custody.cli.common import (
    JobsOpt,
    JsonOpt,
    KeyOpt,
    Listing,
    RootOpt,
    app,
    emit_json,
    err,
    evidence_root,
    human_size,
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
    # Files already catalogued and unchanged are not re-recorded, so what was said about
    # them here would silently do nothing: tags become a signed tag event; the rest, which
    # only a new record could carry, is refused when it applied to nothing at all.
    tagged = None
    if report.unchanged and tag:
        tagged = _tag_unchanged(
            evidence, paths, report, tag, lambda: unlocked[-1] if unlocked else unlock()
        )
    described = [
        f"--{n}" for n, v in (("collector", collector), ("source", source),
                               ("location", location), ("note", note)) if v
    ]  # fmt: skip
    if report.unchanged and described:
        message = (
            f"{', '.join(described)} did not apply to the {report.unchanged} file(s) already "
            "catalogued and unchanged: their records stand as written (add to them with "
            "'custody event note ITEM --text ...')"
        )
        if not report.outcomes:
            from custody.errors import UsageError

            raise UsageError(message)
        err.print(f"[yellow]note[/]: {shown(message)}")
    stamped = None
    if timestamp:
        stamped = stamp_root(evidence, unlocked[-1] if unlocked else unlock(), [], None, [])
    if json_output:
        document = _catalogue_json(report)
        if stamped is not None:
            document["timestamp"] = stamped.to_json()
        if tagged is not None:
            document["tagged"] = {
                "record": tagged.record.seq,
                "tags": list(tagged.tags),
                "items": list(tagged.items),
            }
        emit_json(document)
    else:
        _render_catalogue(report)
        if tagged is not None:
            err.print(
                f"tagged {len(tagged.items)} already-catalogued item(s) "
                f"{shown(', '.join(tagged.tags))}: record {tagged.record.seq}"
            )
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


def _tag_unchanged(
    evidence: Any, paths: list[Path], report: Any, tags: list[str], signer: Any
) -> Any:
    # ``signer`` is called only when there is something to sign.
    """Tag the unchanged items under PATHS (those this run did not record) that lack a tag."""
    from custody.errors import UsageError
    from custody.handling.events import tag as record_tag
    from custody.handling.lookup import resolve_items
    from custody.ledger.backends import open_ledger

    recorded = {o.seq for o in report.outcomes}
    with open_ledger(evidence) as ledger:
        under = resolve_items(ledger, [str(p) for p in paths])
    unchanged = [seq for seq in under if seq not in recorded]
    with open_ledger(evidence) as ledger:
        lacking = [s for s in unchanged if any(s not in ledger.index.items_tagged(t) for t in tags)]
    if not lacking:
        err.print(
            f"the {len(unchanged)} already-catalogued item(s) already carry "
            f"{shown(', '.join(tags))}: nothing to add"
        )
        return None
    try:
        return record_tag(evidence, signer(), lacking, tags)
    except UsageError:
        return None


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
    for o in report.metadata_errors:
        err.print(
            f"[yellow]metadata not read[/] {shown(o.path)} (record {o.seq}, catalogued with "
            f"its digests): {shown(o.metadata_error or '')}",
            soft_wrap=not err.is_terminal,  # at a terminal, wrap between words
        )
    for o in report.outcomes:
        if o.c2pa == "invalid":
            err.print(
                f"[bold red]C2PA INVALID[/] {shown(o.path)}: the file's C2PA manifest does not "
                "validate (the file or its manifest was changed after signing); recorded as "
                f"found in record {o.seq} ('custody show {o.seq}')"
            )
    table = Listing(title="Catalogue summary", show_header=False)
    table.add_row("new items", str(report.count("new")))
    table.add_row("duplicates of earlier content", str(report.count("duplicate")))
    table.add_row("changed since last recorded", str(report.count("version")))
    table.add_row("unchanged, not re-recorded", str(report.unchanged))
    table.add_row("skipped", str(len(report.skipped)))
    table.add_row(
        "metadata not read (catalogued anyway, listed above)", str(len(report.metadata_errors))
    )
    manifests = [o.c2pa for o in report.outcomes if o.c2pa]
    if manifests:
        states = ", ".join(f"{manifests.count(s)} {s}" for s in ("trusted", "valid", "invalid"))
        table.add_row("C2PA manifests", states)
    table.add_row("bytes hashed", human_size(report.bytes_hashed))
    table.add_row("ledger records", str(report.ledger_size))
    if report.checkpoint is not None:
        table.add_row("checkpoint", f"record {report.checkpoint}")
    table.print()


def _render_already_ingested(known: list[Any]) -> None:
    """Content the root already holds elsewhere: one line per earlier destination and day
    (with the records), then every file, so nothing is hidden and the summary stays short."""
    if not known:
        return
    groups: dict[tuple[str, str], list[Any]] = {}
    for a in known:
        how = "ingested" if a.ingested else "catalogued"
        groups.setdefault((a.time[:10], how), []).append(a)
    total = sum(a.size for a in known)
    err.print(
        f"[bold yellow]ALREADY IN THE EVIDENCE ROOT[/]: {len(known)} file(s) "
        f"({human_size(total)}) have the same content as earlier records, so they were "
        "not copied again (--again copies them anyway):"
    )
    for (day, how), members in sorted(groups.items()):
        seqs = sorted({a.seq for a in members})
        folders = [a.path.split("/")[:-1] for a in members]
        common = folders[0]
        for parts in folders[1:]:
            while parts[: len(common)] != common:
                common = common[:-1]
        folder = "/".join(common) or "the root folder"
        err.print(
            f"  {len(members)} {how} on {day} into {shown(folder)} "
            f"(record(s) {_ranges(seqs)}; first at {members[0].time})"
        )
    for a in known:
        err.print(f"  {shown(a.source)} = record {a.seq} {shown(a.path)}")


def _ranges(numbers: list[int]) -> str:
    """1, 2, 3, 7 -> '1-3, 7' (every number is named, never '…')."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


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
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Copy files whose content the evidence root already holds elsewhere (by "
            "default they are named and not copied again).",
        ),
    ] = False,
    jobs: JobsOpt = None,
    c2pa_trust: C2paTrustOpt = None,
    proofmode_key: ProofModeKeyOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Copy files into the evidence root, prove each copy identical, then catalogue it.

    Content already in the evidence root (the same card ingested before, into another
    folder) is recognised by its digests and not copied again; --again copies it anyway.
    Interrupted (Ctrl-C)? Run the same command again: it finishes the job.

    With --as, SOURCE is one export, bundle or bag: it is read (and a bag validated) before
    anything is copied, and each file's record keeps what the source says of it.
    """
    from custody.acquisition.ingest import ingest as run_ingest
    from custody.errors import UsageError

    if as_kind is None and proofmode_key:
        raise UsageError("--proofmode-key applies to --as proofmode only")
    if as_kind is not None and again:
        raise UsageError("--again applies to a plain ingest, not to --as")
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
                again=again,
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
        "already_ingested": [
            {
                "source": a.source,
                "size": a.size,
                "sha256": a.sha256,
                "record": a.seq,
                "path": a.path,
                "time": a.time,
                "how": "ingested" if a.ingested else "catalogued",
            }
            for a in report.already_ingested
        ],
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
    _render_already_ingested(report.already_ingested)
    err.print(
        f"Copied {report.copied} files ({human_size(report.bytes_copied)}), "
        f"{report.already_present} already present"
    )
    if report.catalogue is not None and (report.catalogue.outcomes or report.copied):
        _render_catalogue(report.catalogue)
