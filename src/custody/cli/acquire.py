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
from custody.i18n import _, ngettext


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
        raise UsageError(
            _("--c2pa-trust {path}: {why}").format(path=path, why=exc.strerror)
        ) from None
    try:
        if not x509.load_pem_x509_certificates(data):
            raise ValueError(_("no certificate"))
    except ValueError as exc:
        raise UsageError(
            _("--c2pa-trust {path}: not PEM certificates ({why})").format(path=path, why=exc)
        ) from None
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

    with progress_bar(_("Cataloguing"), not json_output) as observer:
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
        message = ngettext(
            "{options} did not apply to the {n} file already catalogued and unchanged: its "
            "record stands as written (add to it with 'custody event note ITEM --text ...')",
            "{options} did not apply to the {n} files already catalogued and unchanged: their "
            "records stand as written (add to them with 'custody event note ITEM --text ...')",
            report.unchanged,
        ).format(options=", ".join(described), n=report.unchanged)
        if not report.outcomes:
            from custody.errors import UsageError

            raise UsageError(message)
        err.print(_("[yellow]note[/]: {message}").format(message=shown(message)))
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
                ngettext(
                    "tagged {n} already-catalogued item {tags}: record {record}",
                    "tagged {n} already-catalogued items {tags}: record {record}",
                    len(tagged.items),
                ).format(
                    n=len(tagged.items),
                    tags=shown(", ".join(tagged.tags)),
                    record=tagged.record.seq,
                )
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
            ngettext(
                "the {n} already-catalogued item already carries {tags}: nothing to add",
                "the {n} already-catalogued items already carry {tags}: nothing to add",
                len(unchanged),
            ).format(n=len(unchanged), tags=shown(", ".join(tags)))
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
                _(
                    "[bold yellow]CHANGED[/] {path}: content differs from record {record}; "
                    "recorded as new version {seq}. The bytes acquired as record {record} are "
                    "no longer in the evidence root, and 'custody verify' reports that "
                    "(ORIGINAL_MISSING) until they are restored from a vault copy ('custody "
                    "vault restore {record} --from VAULT') or an 'custody event supersede "
                    "{record} --reason ...' says what happened"
                ).format(path=shown(o.path), record=o.related, seq=o.seq)
            )
    for s in report.skipped:
        err.print(_skipped_line(s))
    for o in report.metadata_errors:
        err.print(
            _(
                "[yellow]metadata not read[/] {path} (record {seq}, catalogued with its "
                "digests): {why}"
            ).format(path=shown(o.path), seq=o.seq, why=shown(o.metadata_error or "")),
            soft_wrap=not err.is_terminal,  # at a terminal, wrap between words
        )
    for o in report.outcomes:
        if o.c2pa == "invalid":
            err.print(
                _(
                    "[bold red]C2PA INVALID[/] {path}: the file's C2PA manifest does not "
                    "validate (the file or its manifest was changed after signing); recorded "
                    "as found in record {seq} ('custody show {seq}')"
                ).format(path=shown(o.path), seq=o.seq)
            )
    table = Listing(title=_("Catalogue summary"), show_header=False)
    table.add_row(_("new items"), str(report.count("new")))
    table.add_row(_("duplicates of earlier content"), str(report.count("duplicate")))
    table.add_row(_("changed since last recorded"), str(report.count("version")))
    table.add_row(_("unchanged, not re-recorded"), str(report.unchanged))
    table.add_row(_("skipped"), str(len(report.skipped)))
    table.add_row(
        _("metadata not read (catalogued anyway, listed above)"),
        str(len(report.metadata_errors)),
    )
    manifests = [o.c2pa for o in report.outcomes if o.c2pa]
    if manifests:
        states = _("{trusted} trusted, {valid} valid, {invalid} invalid").format(
            trusted=manifests.count("trusted"),
            valid=manifests.count("valid"),
            invalid=manifests.count("invalid"),
        )
        table.add_row(_("C2PA manifests"), states)
    table.add_row(_("bytes hashed"), human_size(report.bytes_hashed))
    table.add_row(_("ledger records"), str(report.ledger_size))
    if report.checkpoint is not None:
        table.add_row(_("checkpoint"), _("record {seq}").format(seq=report.checkpoint))
    table.print()


def _skipped_line(skipped: Any) -> str:
    return _("[red]skipped[/] {path}: {why}").format(
        path=shown(skipped.path), why=shown(skipped.reason)
    )


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
        ngettext(
            "[bold yellow]ALREADY IN THE EVIDENCE ROOT[/]: {n} file ({size}) has the same "
            "content as an earlier record, so it was not copied again (--again copies it "
            "anyway):",
            "[bold yellow]ALREADY IN THE EVIDENCE ROOT[/]: {n} files ({size}) have the same "
            "content as earlier records, so they were not copied again (--again copies them "
            "anyway):",
            len(known),
        ).format(n=len(known), size=human_size(total))
    )
    for (day, how), members in sorted(groups.items()):
        seqs = sorted({a.seq for a in members})
        folders = [a.path.split("/")[:-1] for a in members]
        common = folders[0]
        for parts in folders[1:]:
            while parts[: len(common)] != common:
                common = common[:-1]
        folder = shown("/".join(common)) if common else _("the root folder")
        if how == "ingested":
            line = ngettext(
                "  {n} ingested on {day} into {folder} (record {records}; first at {time})",
                "  {n} ingested on {day} into {folder} (records {records}; first at {time})",
                len(members),
            )
        else:
            line = ngettext(
                "  {n} catalogued on {day} into {folder} (record {records}; first at {time})",
                "  {n} catalogued on {day} into {folder} (records {records}; first at {time})",
                len(members),
            )
        err.print(
            line.format(
                n=len(members),
                day=day,
                folder=folder,
                records=_ranges(seqs),
                time=members[0].time,
            )
        )
    for a in known:
        err.print(
            _("  {source} = record {seq} {path}").format(
                source=shown(a.source), seq=a.seq, path=shown(a.path)
            )
        )


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
        raise UsageError(_("--proofmode-key applies to --as proofmode only"))
    if as_kind is not None and again:
        raise UsageError(_("--again applies to a plain ingest, not to --as"))
    descriptive = _descriptive(collector, source, location, note, tag)
    anchors = _anchors(c2pa_trust)
    intake = None
    if as_kind is not None:
        from custody.cli import sources as intake_cli

        if len(sources) != 1:
            raise UsageError(
                _("--as {kind} takes one export, bundle or bag at a time").format(kind=as_kind)
            )
        intake = intake_cli.run_intake(sources[0], as_kind, into, descriptive, anchors,
                                       proofmode_key, key, root, json_output)  # fmt: skip
        report = intake.ingest
    else:
        evidence = evidence_root(root)
        signer = signer_for(key)
        with progress_bar(_("Ingesting"), not json_output) as observer:
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
        err.print(
            _("[bold red]COPY FAILED[/] {source} -> {copy}: {why}").format(
                source=shown(f.source), copy=shown(f.copy), why=shown(f.reason)
            )
        )
    for s in report.skipped:
        err.print(_skipped_line(s))
    _render_already_ingested(report.already_ingested)
    err.print(
        ngettext(
            "Copied {n} file ({size}), {present} already present",
            "Copied {n} files ({size}), {present} already present",
            report.copied,
        ).format(
            n=report.copied,
            size=human_size(report.bytes_copied),
            present=report.already_present,
        )
    )
    if report.catalogue is not None and (report.catalogue.outcomes or report.copied):
        _render_catalogue(report.catalogue)
