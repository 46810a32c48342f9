"""Certifications and declarations for a filing, filled from the ledger's facts, for signature.

``render_certification`` fills a template with a verified ``Report`` (the case, each item
with its exhibit number, digests, collector, times, trusted timestamps and custody events,
the verdict and how each signer was confirmed, the digests of the bundle and of custody
itself) and the person certifying (``Certifier``). Templates are Jinja2 HTML files, one
per template and language: ``templates/certifications/<lang>/<name>.html.j2`` (shipped:
``fre-902-14``, a certification under US Federal Rule of Evidence 902(14) with 902(11);
``custodian-declaration``, a custodian's declaration for international mechanisms). A
translation is one more file in another language folder; a firm's changed copy is passed
as a path, or found first in ``template_dir``. They are starting points for counsel, not
legal advice (templates/README.md).

The same escaping as the report (``custody.delivery.report.html.environment``): autoescape,
``finalize``, invisible controls shown. May import: ``custody.delivery.report``,
``custody.errors``. Prints nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody.delivery.report.model import Report
from custody.errors import UsageError
from custody.i18n import _

CERTIFICATIONS = Path(__file__).resolve().parents[1] / "templates" / "certifications"
SUFFIX = ".html.j2"


@dataclass(frozen=True)
class Certifier:
    """Who certifies, as they will sign; blank fields become lines to fill in by hand."""

    name: str | None = None
    title: str | None = None
    organisation: str | None = None
    place: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    lang: str
    path: Path

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "lang": self.lang, "path": str(self.path)}


def available(template_dir: Path | None = None) -> list[TemplateInfo]:
    """Every certification template, a firm's (``template_dir``) before ours."""
    found: dict[tuple[str, str], TemplateInfo] = {}
    for base in (template_dir, CERTIFICATIONS):
        if base is None or not base.is_dir():
            continue
        for path in sorted(base.glob(f"*/*{SUFFIX}")):
            name = path.name.removesuffix(SUFFIX)
            found.setdefault((name, path.parent.name), TemplateInfo(name, path.parent.name, path))
    return sorted(found.values(), key=lambda t: (t.name, t.lang))


def _locate(template: str, lang: str, template_dir: Path | None) -> tuple[list[Path], str]:
    """The loader's folders and the template's name within them."""
    candidate = Path(template)
    if template.endswith(".j2") or "/" in template:
        if not candidate.is_file():
            raise UsageError(_("{template}: no such template file").format(template=template))
        # A copied template may still extend our base layout.
        return [candidate.resolve().parent, CERTIFICATIONS], candidate.name
    if not template.replace("-", "").replace("_", "").isalnum():
        raise UsageError(
            _("{template!r} is not a template name (see 'custody certify --list')").format(
                template=template
            )
        )
    name = f"{lang}/{template}{SUFFIX}"
    folders = [f for f in (template_dir, CERTIFICATIONS) if f is not None]
    if not any((f / name).is_file() for f in folders):
        names = ", ".join(sorted({t.name for t in available(template_dir)}))
        raise UsageError(
            _("no template {template!r} in language {lang!r} (templates: {names})").format(
                template=template, lang=lang, names=names
            )
        )
    return folders, name


def render_certification(
    report: Report,
    *,
    template: str,
    certifier: Certifier,
    lang: str = "en",
    template_dir: Path | None = None,
    today: dt.date | None = None,
) -> str:
    """The filled certification as one self-contained HTML page (A4 when printed)."""
    import jinja2

    from custody.delivery.report.html import environment

    folders, name = _locate(template, lang, template_dir)
    env = environment()
    env.loader = jinja2.FileSystemLoader([str(f) for f in folders])
    digests = sorted({a for item in report.items for a in item.digests})
    try:
        page = env.get_template(name).render(
            report=report,
            certifier=certifier,
            today=(today or dt.datetime.now(dt.UTC).date()).isoformat(),
            algorithms=digests,
        )
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or name
        raise UsageError(
            _("the template {template} cannot be filled: {why}").format(template=where, why=exc)
        ) from None
    return str(page)
