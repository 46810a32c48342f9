"""``custody export``, ``report``, ``import`` and ``export-case``: what goes to a lawyer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from custody.cli.common import (
    ExhibitSelectOpt,
    IncidentSelectOpt,
    ItemsArg,
    JobsOpt,
    JsonOpt,
    KeyOpt,
    LedgerOpt,
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
from custody.cli.render import exit_code, render_verification, said, styled, verdict_word
from custody.cli.verify import (
    CheckpointOpt,
    DisclosuresOpt,
    RequireTimestampsOpt,
    RootHashOpt,
    SizeOpt,
    TrustedKeyOpt,
    load_disclosures,
    remember,
    trust_policy,
)
from custody.errors import ExitCode
from custody.i18n import N_, _, ngettext

# The members of an evidence record's data object (custody.timestamps.longterm_export: the
# names its --json gives them), in words.
MEMBERS = {"checkpoint line": N_("checkpoint line"), "token file": N_("token file")}


@app.command("export-case")
def export_case(
    items: ItemsArg = None,
    output: Annotated[Path | None, typer.Option("--out", help="The .jsonld file to write.")] = None,
    tag: TagSelectOpt = None,
    incident: IncidentSelectOpt = None,
    exhibit: ExhibitSelectOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """The chain of custody as CASE/UCO JSON-LD (all items, or ITEMS / --tag / --incident /
    --exhibit).

    The export restates the ledger; run 'custody verify' first to know it is sound.
    """
    from custody.delivery.case_uco import case_document, case_json
    from custody.errors import UsageError
    from custody.handling.lookup import resolve_items
    from custody.ledger.backends import open_ledger
    from custody.system.files import write_atomic

    if output is None:
        raise UsageError(_("say where to write with --out FILE.jsonld"))
    with open_ledger(evidence_root(root)) as ledger:
        selected = items or tag or incident or exhibit
        seqs = (
            resolve_items(
                ledger,
                items or [],
                tags=tag or [],
                incidents=incident or [],
                exhibits=exhibit or [],
            )
            if selected
            else None
        )
        document = case_document(ledger, seqs)
    write_atomic(output, case_json(document).encode("utf-8"))
    graph = document.get("@graph", [])
    if json_output:
        emit_json({"out": str(output), "objects": len(graph)})
    else:
        out.print(
            escape(
                ngettext(
                    "CASE/UCO JSON-LD with {n} objects written to {path}",
                    "CASE/UCO JSON-LD with {n} objects written to {path}",
                    len(graph),
                ).format(n=len(graph), path=output)
            )
        )


@app.command("export")
def export_command(
    items: ItemsArg = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="New folder for the bundle.")
    ] = None,
    all_items: Annotated[bool, typer.Option("--all", help="Every current item.")] = False,
    tag: TagSelectOpt = None,
    incident: IncidentSelectOpt = None,
    exhibit: ExhibitSelectOpt = None,
    make_zip: Annotated[
        bool, typer.Option("--zip", help="Also write the bundle as one .zip.")
    ] = False,
    withhold: Annotated[
        list[str] | None,
        typer.Option(
            "--withhold",
            help="Leave out values that could identify the people who collected the evidence: "
            "collector, source_path, volume (comma-separated or repeated; 'all' for all three). "
            "The records, which hold only salted commitments to them, still verify.",
        ),
    ] = None,
    ledger: LedgerOpt = None,
    jobs: JobsOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Write a self-contained, offline-verifiable evidence bundle (BagIt) of ITEMS."""
    from custody.delivery.bundle_export import export_bundle
    from custody.errors import UsageError
    from custody.handling.vault import current_items
    from custody.ledger.backends import open_ledger
    from custody.trust.databases import confirm_ledger

    if out_dir is None:
        raise UsageError(_("say where to write the bundle with --out DIR"))
    if all_items and (items or tag or incident or exhibit):
        raise UsageError(
            _("--all already names every item: drop ITEMS, --tag, --incident and --exhibit")
        )
    evidence = evidence_root(root)
    confirm_ledger(evidence, ledger)
    with open_ledger(evidence) as store:
        if all_items:
            seqs = [r.seq for r in current_items(store)]
        else:
            seqs = select_items(store, items, tag, incident, exhibit)
    report = export_bundle(
        evidence, seqs, out_dir, make_zip=make_zip, withhold=_fields(withhold or []), jobs=jobs
    )
    if json_output:
        emit_json(report.to_json())
        return
    label = _("warning")
    for warning in report.warnings:
        err.print(f"{styled('yellow', label)}: {escape(warning)}")
    if report.disclosed:
        # A whole sentence, yellow on a terminal (its first words were, before translation).
        err.print(
            escape(
                _(
                    "this bundle reveals {fields}: these can identify the people who collected "
                    "the evidence; to leave them out: --withhold collector,source_path,volume"
                ).format(fields=_field_counts(report.disclosed))
            ),
            style="yellow",
        )
    if report.withheld:
        err.print(
            escape(
                _("withheld (only salted commitments in the records): {fields}").format(
                    fields=_field_counts(report.withheld)
                )
            )
        )
    out.print(
        escape(
            ngettext(
                "bundle of {n} item(s), {size}, {records} ledger records with inclusion proofs "
                "against checkpoint {checkpoint}, {timestamps} timestamp token(s): {path}",
                "bundle of {n} item(s), {size}, {records} ledger records with inclusion proofs "
                "against checkpoint {checkpoint}, {timestamps} timestamp token(s): {path}",
                len(report.items),
            ).format(
                n=len(report.items),
                size=human_size(report.payload_bytes),
                records=report.records,
                checkpoint=report.checkpoint,
                timestamps=report.timestamps,
                path=report.out,
            )
        )
    )
    if report.zip:
        out.print(escape(_("zip: {path}").format(path=report.zip)))


def _field_counts(counts: dict[str, int]) -> str:
    """Counts by field, as "collector (3 item(s)), volume (1 item(s))"; the field names as
    the option takes them."""
    return ", ".join(
        ngettext("{field} ({n} item(s))", "{field} ({n} item(s))", c).format(field=name, n=c)
        for name, c in sorted(counts.items())
    )


def _fields(values: list[str], option: str = "--withhold") -> list[str]:
    from custody.errors import UsageError
    from custody.ledger.bodies import COMMITTED_FIELDS

    chosen: list[str] = []
    for value in values:
        for name in (v.strip() for v in value.split(",")):
            if name == "all":
                chosen.extend(COMMITTED_FIELDS)
            elif name in COMMITTED_FIELDS:
                chosen.append(name)
            else:
                raise UsageError(
                    _("{option} {name}: choose among {fields} or all").format(
                        option=option, name=repr(name), fields=", ".join(COMMITTED_FIELDS)
                    )
                )
    return list(dict.fromkeys(chosen))


@app.command("export-evidence-record")
def export_evidence_record(
    item: Annotated[str, typer.Argument(help="The item: path, record number or digest prefix.")],
    output: Annotated[
        Path | None, typer.Option("--out", help="The RFC 4998 evidence record to write (.ers).")
    ] = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Write the RFC 4998 evidence record (DER) that keeps ITEM's proof of time valid.

    It is the record of the earliest checkpoint under evidence that covers the item; an
    expert checks it with Bouncy Castle or by hand (docs/long-term.md section 4), against
    the checkpoint line and token files listed here.
    """
    import hashlib

    from custody.errors import UsageError
    from custody.handling.lookup import resolve_record
    from custody.ledger.backends import open_ledger
    from custody.system.files import write_atomic
    from custody.timestamps.longterm_export import item_evidence

    if output is None:
        raise UsageError(_("say where to write with --out FILE.ers"))
    evidence = evidence_root(root)
    target = Path(os.path.abspath(output))
    if evidence.path == target or evidence.path in target.parents:
        raise UsageError(
            _("{path} is inside the evidence root; write it somewhere else").format(path=output)
        )
    if os.path.lexists(target):
        raise UsageError(_("{path} exists; not overwritten").format(path=output))
    with open_ledger(evidence) as ledger:
        seq = resolve_record(ledger, item)
        found = item_evidence(ledger, seq)
    der = found.record.to_der()
    write_atomic(target, der)
    proof = f"custody proof inclusion {seq} --checkpoint {found.checkpoint} --out proof.json"
    if json_output:
        emit_json(
            {
                "out": str(output),
                "item": seq,
                "bytes": len(der),
                "sha256": hashlib.sha256(der).hexdigest(),
                **found.to_json(),
                "inclusion_proof": proof,
            }
        )
        return
    chains = len(found.record.chains)
    out.print(
        escape(
            ngettext(
                "RFC 4998 evidence record of checkpoint {checkpoint} (covers record {seq}), "
                "{n} chain(s), {size} bytes: {path}",
                "RFC 4998 evidence record of checkpoint {checkpoint} (covers record {seq}), "
                "{n} chain(s), {size} bytes: {path}",
                chains,
            ).format(checkpoint=found.checkpoint, seq=seq, n=chains, size=len(der), path=output)
        )
    )
    out.print(escape(_("Its data object is this group (all members, any order):")))
    for member in found.members:
        where = member.get("how") or member.get("file")
        out.print(
            "  "
            + escape(
                _("{member} of record {seq}: {where}").format(
                    member=said(MEMBERS, member["member"]), seq=member["record"], where=where
                )
            )
        )
        out.print(f"    sha256 {member['sha256']}")
    out.print(escape(_("The item is in that checkpoint: {command}").format(command=proof)))


@app.command()
def report(
    source: Annotated[
        Path | None, typer.Argument(help="Evidence root, bundle folder or .zip (default: here).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="report.html or report.pdf")] = None,
    exhibit: Annotated[
        list[str] | None,
        typer.Option("--exhibit", help="Show only this exhibit (repeatable); all are verified."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Show only items with this tag (repeatable); all are verified."),
    ] = None,
    sign: Annotated[
        bool,
        typer.Option(
            "--sign", help="Sign the PDF (PAdES, RFC 3161 timestamps) as its preparer, with --key."
        ),
    ] = False,
    level: Annotated[
        str, typer.Option("--level", help="With --sign: B-LTA (default) or B-LT.")
    ] = "B-LTA",
    tsa: Annotated[
        list[str] | None,
        typer.Option("--tsa", help="With --sign: a timestamp authority URL (tried first)."),
    ] = None,
    ca_out: Annotated[
        Path | None,
        typer.Option(
            "--ca-out", help="With --sign: also write the preparer's CA certificate (PEM) here."
        ),
    ] = None,
    template_dir: Annotated[
        Path | None,
        typer.Option("--template-dir", help="A folder of report templates that override ours."),
    ] = None,
    lang: Annotated[
        str,
        typer.Option(
            "--lang",
            help="The report's language: en or ar, or two side by side (ar,en); a "
            "--template-dir may add its own (strings/LANG.toml).",
        ),
    ] = "en",
    checkpoint: CheckpointOpt = None,
    tree_size: SizeOpt = None,
    root_hash: RootHashOpt = None,
    tsa_root: TsaRootOpt = None,
    require_timestamps: RequireTimestampsOpt = False,
    trusted_key: TrustedKeyOpt = None,
    ledger: LedgerOpt = None,
    incident: Annotated[
        list[str] | None,
        typer.Option(
            "--incident",
            help="Show only the items of this incident (repeatable); all are verified.",
        ),
    ] = None,
    disclosures: DisclosuresOpt = None,
    key: KeyOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """A chain-of-custody report a court can read: HTML or PDF (A4), by the --out suffix;
    with --sign, a PDF signed and timestamped by its preparer (PAdES).

    Exit 0 when the evidence is VERIFIED, 10 when it is intact but a signer is not confirmed,
    1 when it is not verified; the report is written in every case and says which."""
    from custody.delivery.report.bilingual import build_in
    from custody.delivery.report.build import build_report
    from custody.delivery.report.html import render_html, report_languages
    from custody.delivery.report.model import Preparer
    from custody.delivery.report.pdf import print_pdf
    from custody.errors import UsageError
    from custody.system.files import write_atomic

    languages = report_languages(lang, template_dir)
    if output is None or output.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise UsageError(_("say where to write with --out report.html or --out report.pdf"))
    is_pdf = output.suffix.lower() == ".pdf"
    if sign and not is_pdf:
        raise UsageError(_("--sign signs PDF reports: write one with --out report.pdf"))
    if not sign and (level != "B-LTA" or tsa or ca_out is not None or key is not None):
        raise UsageError(_("--level, --tsa, --ca-out and --key apply only with --sign"))
    if level not in ("B-LT", "B-LTA"):
        raise UsageError(_("--level is B-LTA or B-LT"))
    if sign and (output.exists() or output.is_symlink()):
        raise UsageError(
            _("{path} already exists; a signed report is always a new file").format(path=output)
        )
    from custody.cli.verify import is_bundle
    from custody.root import find_root
    from custody.trust.databases import confirm_ledger

    target = source if source is not None else evidence_root(None).path
    if is_bundle(target):
        if ledger is not None:
            raise UsageError(_("--ledger applies to evidence roots, not bundles"))
    elif disclosures is not None:
        raise UsageError(_("--disclosures applies to bundles: an evidence root keeps its own"))
    else:
        confirm_ledger(find_root(explicit=str(target)), ledger)
    # The trust options checked before the passphrase is asked (and made again per language
    # below).
    trust_policy(checkpoint, tree_size, root_hash, tsa_root, require_timestamps, trusted_key)
    preparer = _unlock_preparer(key) if sign else None
    # custody's own sentences in the report (findings, checks, events) are in its language,
    # in both for a bilingual report: built once per language (custody.delivery.report.
    # bilingual), whatever language this run speaks.
    # The policy is made again in each language: what it says of the preparer's anchors
    # ("--trusted-key FILE (this run only)") is shown in the report.
    built = build_in(
        languages,
        lambda: build_report(
            target,
            policy=trust_policy(
                checkpoint, tree_size, root_hash, tsa_root, require_timestamps, trusted_key
            ),
            exhibits=exhibit or [],
            tags=tag or [],
            incidents=incident or [],
            disclosures=load_disclosures(disclosures),  # type: ignore[arg-type]
            preparer=(
                Preparer(preparer.custody.name, preparer.custody.fingerprint) if preparer else None
            ),
        ),
    )
    html_text = render_html(
        built,
        lang=languages[0],
        second=languages[1] if len(languages) > 1 else None,
        template_dir=template_dir,
    )
    signed = None
    if preparer is not None:
        from custody.delivery.report.signing import sign_report

        urls, roots = _signing_tsas(target, tsa or [], tsa_root or [])
        signed = sign_report(
            print_pdf(html_text), output, preparer, tsa_urls=urls, tsa_roots_pem=roots,
            level="B-LT" if level == "B-LT" else "B-LTA",
        )  # fmt: skip
        if ca_out is not None:
            write_atomic(ca_out, preparer.identity.anchor_pem())
    elif is_pdf:
        write_atomic(output, print_pdf(html_text))
    else:
        write_atomic(output, html_text.encode("utf-8"))
    if json_output:
        document: dict[str, object] = {
            "out": str(output),
            "verified": built.verified,
            "verdict": built.verdict_code,
        }
        if signed is not None and preparer is not None:
            document["signed"] = {
                **signed.to_json(),
                "preparer_ca_pem": preparer.identity.anchor_pem().decode("ascii"),
                "preparer_ca_sha256": signed.anchor_certificate_sha256,
                "preparer_ca_created": preparer.created,
            }
        emit_json(document)
    else:
        out.print(
            escape(
                _("{verdict}: report written to {path}").format(
                    verdict=verdict_word(built.verdict_code), path=output
                )
            )
        )
        if signed is not None and preparer is not None:
            signing = {
                "level": signed.level,
                "sha256": signed.sha256,
                "time": signed.signature_timestamp,
                "tsa": signed.tsa_url,
                "ca_sha256": signed.anchor_certificate_sha256,
                "fingerprint": preparer.custody.fingerprint,
            }
            if preparer.created:
                text = _(
                    "signed: PAdES {level}, SHA-256 {sha256}; signature time {time} from {tsa}; "
                    "preparer CA certificate (made now) SHA-256 {ca_sha256}, bound to custody "
                    "key {fingerprint}"
                )
            else:
                text = _(
                    "signed: PAdES {level}, SHA-256 {sha256}; signature time {time} from {tsa}; "
                    "preparer CA certificate SHA-256 {ca_sha256}, bound to custody key "
                    "{fingerprint}"
                )
            out.print(escape(text.format(**signing)))
    raise typer.Exit(
        {"verified": ExitCode.OK, "unconfirmed": ExitCode.UNCONFIRMED}.get(
            built.verdict_code, ExitCode.FINDINGS
        )
    )


def _unlock_preparer(key: str | None) -> Any:
    """The preparer's custody key and PDF-signing identity (passphrase asked once)."""
    from custody.cli.common import ask_passphrase, passphrase_prompt
    from custody.delivery.report.signing import unlock_preparer
    from custody.keys.keyring import Keyring

    key_file = Keyring().select(key)
    passphrase = ask_passphrase(passphrase_prompt(key_file.name))
    return unlock_preparer(key_file, passphrase)


def _signing_tsas(
    target: Path, tsa: list[str], tsa_root: list[Path]
) -> tuple[list[str], list[bytes]]:
    """Timestamp authorities for signing: --tsa first, then the evidence root's config (the
    root reported on, else the root this command runs in, if any); their roots likewise."""
    from custody.cli.verify import is_bundle
    from custody.errors import InputError, RootError
    from custody.root import find_root

    urls = list(tsa)
    roots: list[Path] = list(tsa_root)
    try:
        evidence = find_root(explicit=None if is_bundle(target) else str(target))
    except RootError:
        evidence = None
    if evidence is not None:
        config = evidence.config()
        urls += [u for u in config.tsa_urls if u not in urls]
        roots += [evidence.state / Path(p).expanduser() for p in config.tsa_roots]
    pems = []
    for path in roots:
        try:
            pems.append(path.read_bytes()[: 4 << 20])
        except OSError as exc:
            raise InputError(
                _("cannot read TSA certificate file {path}: {why}").format(
                    path=path, why=exc.strerror
                )
            ) from None
    return urls, pems


@app.command("disclose")
def disclose(
    items: ItemsArg = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            help="collector, source_path, volume or all (comma-separated or repeated).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="The disclosures file to write (new).")
    ] = None,
    tag: TagSelectOpt = None,
    incident: IncidentSelectOpt = None,
    exhibit: ExhibitSelectOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Reveal withheld values of ITEMS (with their salts), for a court that holds the bundle.

    Each line of the file is one SD-JWT-style disclosure whose SHA-256 is the commitment in
    the item's signed record; 'custody verify BUNDLE --disclosures FILE' and 'custody report
    BUNDLE --disclosures FILE' check every one and show the values."""
    from custody.errors import UsageError
    from custody.ledger.backends import open_ledger
    from custody.ledger.bodies import ItemBody
    from custody.ledger.disclosures import DisclosureStore
    from custody.system.files import write_atomic

    if output is None:
        raise UsageError(_("say where to write the disclosures with --out FILE"))
    if output.exists():
        raise UsageError(_("{path} exists; not overwritten").format(path=output))
    fields = _fields(field or [], "--field")
    if not fields:
        raise UsageError(_("say which values to reveal with --field (collector, source_path, ...)"))
    evidence = evidence_root(root)
    with open_ledger(evidence) as ledger:
        seqs = select_items(ledger, items, tag, incident, exhibit)
        bodies = {seq: ItemBody.from_json(ledger.read(seq).record.body) for seq in seqs}
    known = DisclosureStore(evidence.state).known()
    chosen = []
    for seq, body in bodies.items():
        for name, digest in (body.commitments or {}).items():
            if name in fields and digest in known:
                chosen.append((seq, name, known[digest]))
    if not chosen:
        or_word = _("or")  # between field names, which stay as the option takes them
        raise UsageError(
            _(
                "none of these items has a committed {fields} whose value this root keeps "
                "(records made before commitments hold their values in the clear)"
            ).format(fields=f" {or_word} ".join(fields))
        )
    write_atomic(output, b"".join(d.text.encode("ascii") + b"\n" for *_seq, d in chosen))
    if json_output:
        emit_json(
            {
                "out": str(output),
                "disclosures": [
                    {"record": seq, "field": name, "commitment": d.digest, "value": d.parts()[2]}
                    for seq, name, d in chosen
                ],
            }
        )
        return
    for seq, name, d in chosen:
        out.print(
            escape(
                _("record {seq}: {field} = {value} (commitment {digest})").format(
                    seq=seq, field=name, value=d.parts()[2], digest=d.digest
                )
            )
        )
    out.print(
        escape(
            ngettext(
                "{n} disclosure(s) written to {path}",
                "{n} disclosure(s) written to {path}",
                len(chosen),
            ).format(n=len(chosen), path=output)
        )
    )


@app.command("import")
def import_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder or .zip.")],
    into: Annotated[str | None, typer.Option("--into", help="Folder inside the root.")] = None,
    checkpoint: CheckpointOpt = None,
    tree_size: SizeOpt = None,
    root_hash: RootHashOpt = None,
    tsa_root: TsaRootOpt = None,
    require_timestamps: RequireTimestampsOpt = False,
    trusted_key: TrustedKeyOpt = None,
    key: KeyOpt = None,
    root: RootOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Verify a received bundle and, only if it is VERIFIED (intact, and signed by keys you
    trust), bring it into this evidence root."""
    from custody.delivery.bundle_import import import_bundle

    evidence = evidence_root(root)
    policy = trust_policy(
        checkpoint, tree_size, root_hash, tsa_root, require_timestamps, trusted_key
    )
    signer = signer_for(key)
    report = import_bundle(bundle, evidence, signer, into=into, policy=policy)
    remember(report.verification, str(bundle))
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
        if report.event is None:
            render_verification(report.verification)
            why = (
                _("the bundle does not verify; nothing was written")
                if not report.verification.ok
                else _(
                    "a signer is not a key you trust: confirm its fingerprint with the sender "
                    "by another channel, then 'custody trust add' it (or pass --trusted-key); "
                    "nothing was written"
                )
            )
            refused = styled("bold red", _("refused"))
            err.print(f"{refused}: {escape(why)}")
        else:
            out.print(
                escape(
                    ngettext(
                        "imported {n} item(s) into {folder}; receipt recorded as record {seq}",
                        "imported {n} item(s) into {folder}; receipt recorded as record {seq}",
                        report.imported,
                    ).format(n=report.imported, folder=report.folder, seq=report.event)
                )
            )
    raise typer.Exit(exit_code(report.verification))
