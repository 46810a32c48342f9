"""``custody register`` and ``custody certify``: documents for a filing, made from a verified
report (``custody.delivery.register``, ``custody.delivery.certify``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from custody.cli.common import (
    JsonOpt,
    LedgerOpt,
    TsaRootOpt,
    app,
    emit_json,
    evidence_root,
    out,
)
from custody.cli.render import verdict_word
from custody.cli.verify import (
    CheckpointOpt,
    RequireTimestampsOpt,
    RootHashOpt,
    SizeOpt,
    TrustedKeyOpt,
    trust_policy,
)
from custody.errors import ExitCode
from custody.i18n import _, ngettext

SourceArg = Annotated[
    Path | None, typer.Argument(help="Evidence root, bundle folder or .zip (default: here).")
]
ShowExhibitOpt = Annotated[
    list[str] | None, typer.Option("--exhibit", help="Only this exhibit (repeatable).")
]
ShowTagOpt = Annotated[
    list[str] | None, typer.Option("--tag", help="Only items with this tag (repeatable).")
]


def verified_report(
    source: Path | None,
    exhibits: list[str] | None,
    tags: list[str] | None,
    ledger: str | None,
    policy_args: tuple[Any, ...],
) -> Any:
    """Verify the source under the caller's trust and gather its report, without pictures."""
    from custody.cli.verify import is_bundle
    from custody.delivery.report.build import build_report
    from custody.errors import UsageError
    from custody.root import find_root
    from custody.trust.databases import confirm_ledger

    target = source if source is not None else evidence_root(None).path
    if is_bundle(target):
        if ledger is not None:
            raise UsageError(_("--ledger applies to evidence roots, not bundles"))
    else:
        confirm_ledger(find_root(explicit=str(target)), ledger)
    return build_report(
        target,
        policy=trust_policy(*policy_args),
        exhibits=exhibits or [],
        tags=tags or [],
        thumbnails=False,
    )


def _exit(report: Any) -> None:
    raise typer.Exit(
        {"verified": ExitCode.OK, "unconfirmed": ExitCode.UNCONFIRMED}.get(
            report.verdict_code, ExitCode.FINDINGS
        )
    )


@app.command()
def register(
    source: SourceArg = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="register.csv or register.xlsx")
    ] = None,
    withhold_collector: Annotated[
        bool,
        typer.Option("--withhold-collector", help="Write 'withheld' instead of collectors' names."),
    ] = False,
    exhibit: ShowExhibitOpt = None,
    tag: ShowTagOpt = None,
    checkpoint: CheckpointOpt = None,
    tree_size: SizeOpt = None,
    root_hash: RootHashOpt = None,
    tsa_root: TsaRootOpt = None,
    require_timestamps: RequireTimestampsOpt = False,
    trusted_key: TrustedKeyOpt = None,
    ledger: LedgerOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """An evidence register, one row per item (CSV or XLSX, by the --out suffix), for a
    court registry or a spreadsheet. Exit codes as for 'custody report'."""
    from custody import __version__
    from custody.delivery.register import (
        build_register,
        made_in,
        register_format,
        rows_of,
        write_register,
    )
    from custody.errors import UsageError

    if output is None:
        raise UsageError(_("say where to write with --out register.csv or --out register.xlsx"))
    register_format(output)
    # The register is a file with no language of its own (English column headings, a file
    # format): everything it takes from the report - statuses, what was trusted - is made
    # in English, whatever the language this run speaks.
    built = made_in("en", lambda: verified_report(
        source, exhibit, tag, ledger,
        (checkpoint, tree_size, root_hash, tsa_root, require_timestamps, trusted_key),
    ))  # fmt: skip
    table = build_register(built, withhold_collector=withhold_collector)
    kind = write_register(table, output, creator=f"custody {__version__}")
    if json_output:
        emit_json(
            {
                "out": str(output),
                "format": kind,
                "verdict": built.verdict_code,
                "verified": built.verified,
                "rows": rows_of(table),
            }
        )
    else:
        rows = len(table.rows)
        out.print(
            escape(
                ngettext(
                    "{verdict}: register of {n} item(s) written to {path}",
                    "{verdict}: register of {n} item(s) written to {path}",
                    rows,
                ).format(verdict=verdict_word(built.verdict_code), n=rows, path=output)
            )
        )
    _exit(built)


@app.command()
def certify(
    source: SourceArg = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template", help="fre-902-14, custodian-declaration, or a template file you changed."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="certification.html or certification.pdf")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Who certifies (full name).")] = None,
    title: Annotated[
        str | None, typer.Option("--title", help="Their position, e.g. 'Evidence custodian'.")
    ] = None,
    organisation: Annotated[
        str | None, typer.Option("--organisation", help="Their organisation.")
    ] = None,
    place: Annotated[str | None, typer.Option("--place", help="Where it is signed.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="The template's language.")] = "en",
    template_dir: Annotated[
        Path | None,
        typer.Option("--template-dir", help="A folder of certification templates before ours."),
    ] = None,
    list_templates: Annotated[
        bool, typer.Option("--list", help="List the templates and where they are.")
    ] = False,
    exhibit: ShowExhibitOpt = None,
    tag: ShowTagOpt = None,
    checkpoint: CheckpointOpt = None,
    tree_size: SizeOpt = None,
    root_hash: RootHashOpt = None,
    tsa_root: TsaRootOpt = None,
    require_timestamps: RequireTimestampsOpt = False,
    trusted_key: TrustedKeyOpt = None,
    ledger: LedgerOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Fill a certification or declaration (for signature by hand) from the verified
    ledger's facts: HTML or PDF by the --out suffix. The templates are starting points for
    counsel, not legal advice. Exit codes as for 'custody report'."""
    from custody.delivery.certify import Certifier, available, render_certification
    from custody.delivery.register import made_in
    from custody.errors import UsageError
    from custody.system.files import write_atomic

    if list_templates:
        given = [template, output, name, title, organisation, place, exhibit, tag, source]
        if any(v is not None for v in given):
            raise UsageError(_("--list lists the templates; it takes no other option"))
        found = available(template_dir)
        if json_output:
            emit_json({"templates": [t.to_json() for t in found]})
        else:
            for t in found:
                out.out(f"{t.name} ({t.lang}): {t.path}", highlight=False)
        return
    if template is None:
        raise UsageError(_("choose a template with --template NAME (see 'custody certify --list')"))
    if output is None or output.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise UsageError(_("say where to write with --out FILE.html or --out FILE.pdf"))
    # The certification is a document in its template's language: what it takes from the
    # report (findings, statuses) is made in that language, or in English when custody has
    # no messages in it - never in the language this run happens to speak.
    built = made_in(lang, lambda: verified_report(
        source, exhibit, tag, ledger,
        (checkpoint, tree_size, root_hash, tsa_root, require_timestamps, trusted_key),
    ))  # fmt: skip
    certifier = Certifier(name, title, organisation, place)
    page = render_certification(
        built, template=template, certifier=certifier, lang=lang, template_dir=template_dir
    )
    if output.suffix.lower() == ".pdf":
        from custody.delivery.report.pdf import print_pdf

        write_atomic(output, print_pdf(page))
    else:
        write_atomic(output, page.encode("utf-8"))
    if json_output:
        emit_json(
            {
                "out": str(output),
                "template": template,
                "lang": lang,
                "verdict": built.verdict_code,
                "verified": built.verified,
                "items": len(built.items),
                "certifier": certifier.to_json(),
            }
        )
    else:
        items = len(built.items)
        out.print(
            escape(
                ngettext(
                    "{verdict}: {template} filled for {n} item(s), written to {path}; review "
                    "it with counsel before signing",
                    "{verdict}: {template} filled for {n} item(s), written to {path}; review "
                    "it with counsel before signing",
                    items,
                ).format(
                    verdict=verdict_word(built.verdict_code),
                    template=template,
                    n=items,
                    path=output,
                )
            )
        )
    _exit(built)
