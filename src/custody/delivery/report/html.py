"""``render_html`` turns a ``Report`` into one self-contained page with the Jinja2 templates
in ``templates/`` (a firm may copy that folder, change the layout and words, and pass it as
``template_dir``): inline CSS, images as ``data:`` URIs, a content security policy that
forbids fetching anything, A4 print rules, and ``dir="auto"``/``lang`` on every text that
came from people or file names so that Arabic (and any right-to-left script) is shown right
to left.

Everything shown is escaped: the environment autoescapes, and its ``finalize`` escapes every
value with ``html.escape`` first (so quotes become ``&quot;``, as the report always wrote
them). Text from people also passes through ``shown``: NFC, and the invisible characters
that could reorder or hide what surrounds them (bidi embeddings, overrides and isolates,
C0/C1 controls other than tab and line feed) replaced by a visible ``[U+202E]``.

Words come from ``templates/strings/<lang>.toml``, grouped by the part of the page; the
page's ``lang`` and ``dir`` come from the same file. A translation is one more strings file
(keys it lacks fall back to English); ``second`` adds a second language beside every
label (a bilingual page). Library sentences (finding messages, event summaries) stay in
the language the library writes them in.

Followed: Jinja2 3.1 "API" (autoescape, finalize, loaders), OWASP XSS Prevention Cheat
Sheet (output encoding for HTML body and attribute contexts, CSS string escaping), Unicode
UAX #9 (explicit directional formatting characters), the "Trojan Source" paper
(Boucher and Anderson, 2021) on bidi controls in displayed text.
"""

from __future__ import annotations

import functools
import html
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from custody.delivery.report.formats import (
    display_time,
    gps_text,
    grouped,
    size_text,
    visible,
)
from custody.delivery.report.model import Report
from custody.errors import UsageError

TEMPLATES = Path(__file__).with_name("templates")

_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")


def shown(value: object) -> str:
    """Text as shown to a court: NFC, invisible controls made visible (module docstring)."""
    return visible(unicodedata.normalize("NFC", str(value)))


def _css_string(value: object) -> Any:
    """A CSS string literal (quotes included) for ``content:``: every character outside
    printable ASCII, and every quote, backslash and angle bracket, as a CSS escape."""
    from markupsafe import Markup

    out = []
    for ch in str(value):
        if " " <= ch <= "~" and ch not in "\"'\\<>&":
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):06x}")
    return Markup('"' + "".join(out) + '"')


def _escape_first(value: object) -> object:
    """``finalize``: escape with ``html.escape`` (quote=True); autoescape leaves Markup be."""
    from jinja2 import Undefined
    from markupsafe import Markup

    if isinstance(value, Markup | Undefined):
        return value
    return Markup(html.escape(str(value), quote=True))


def _record_number(value: object) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "?"


def number_ranges(values: object) -> str:
    """Record numbers as runs: [0, 1, 2, 5, 7, 8] -> "0-2, 5, 7-8"."""
    numbers = sorted(v for v in values if isinstance(v, int)) if isinstance(values, list) else []
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(f"{a}" if a == b else f"{a}\u2013{b}" for a, b in runs)


def capture_rows(capture: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """A web capture's facts as (label, value, monospace) rows; a nested fact's label says
    whose it is ("certificate 0 SHA-256")."""
    from custody.ledger.captures import capture_lines

    mono = ("sha256", "WARC", "media", "cert", "requested", "final URL", "redirect")
    parents: dict[int, str] = {}
    rows: list[tuple[str, str, bool]] = []
    for label, value in capture_lines(capture):
        depth = len(label) - len(label.lstrip())
        name = label.strip().replace("sha256", "SHA-256").replace("cert ", "certificate ")
        parents[depth] = name
        if depth:  # a detail of the row above it: say whose
            name = f"{parents.get(depth - 2, '')} {name}".strip()
        rows.append((name[:1].upper() + name[1:], value, any(w in label for w in mono)))
    return rows


def trust_words(mode: str) -> str:
    strings = load_strings("en", None)
    return str(strings["signers"]["trust_roots" if mode == "roots" else "trust_embedded"])


def _digest_order(digests: Mapping[str, str]) -> list[str]:
    return sorted(digests, key=lambda a: (a != "sha256", a))


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_strings(lang: str, template_dir: Path | None) -> dict[str, Any]:
    """The words of ``lang`` over English, from ``template_dir`` first, then the package."""
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*", lang):
        raise UsageError(f"{lang!r} is not a language tag (e.g. en, ar)")
    english = _read_strings(TEMPLATES / "strings" / "en.toml")
    if template_dir is not None and (template_dir / "strings" / "en.toml").is_file():
        english = _merge(english, _read_strings(template_dir / "strings" / "en.toml"))
    if lang == "en":
        return english
    for folder in (template_dir, TEMPLATES):
        if folder is not None and (folder / "strings" / f"{lang}.toml").is_file():
            return _merge(english, _read_strings(folder / "strings" / f"{lang}.toml"))
    raise UsageError(f"no report strings for language {lang!r} (templates/strings/{lang}.toml)")


@functools.lru_cache(maxsize=16)
def _read_strings(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read report strings {path}: {exc}") from None


def environment(template_dir: Path | None = None) -> Any:
    """The Jinja2 environment of the report (also used for certifications' shared filters)."""
    import jinja2

    folders = [str(TEMPLATES)]
    if template_dir is not None:
        if not template_dir.is_dir():
            raise UsageError(f"{template_dir} is not a folder of report templates")
        folders.insert(0, str(template_dir))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=True,
        finalize=_escape_first,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        shown=shown,
        visible=visible,
        grouped=grouped,
        size=size_text,
        gps=gps_text,
        when=display_time,
        capture=display_time,
        css_string=_css_string,
        digest_order=_digest_order,
        record_number=_record_number,
        number_ranges=number_ranges,
    )
    env.tests["arabic"] = lambda value: bool(_ARABIC.search(str(value)))
    env.globals["trust_words"] = trust_words
    env.globals["capture_rows"] = capture_rows
    return env


def render_html(
    report: Report,
    *,
    lang: str = "en",
    second: str | None = None,
    template_dir: Path | None = None,
) -> str:
    """The whole report as one self-contained HTML page (see module docstring)."""
    import jinja2

    strings = load_strings(lang, template_dir)
    strings2 = load_strings(second, template_dir) if second else None
    env = environment(template_dir)
    try:
        page = env.get_template("report.html.j2").render(
            report=report,
            t=strings,
            t2=strings2,
            lang=strings["meta"]["lang"],
            dir=strings["meta"]["dir"],
        )
    except jinja2.TemplateError as exc:
        name, line = getattr(exc, "filename", None), getattr(exc, "lineno", None)
        where = f" ({name}, line {line})" if name else ""
        raise UsageError(f"the report template cannot be rendered: {exc}{where}") from None
    return str(page)
