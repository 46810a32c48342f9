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
(keys it lacks fall back to English); ``second`` adds a second language (a bilingual page,
``report --lang ar,en``): each label in both, each paragraph in two columns side by side
(each column in its own direction), the data (digests, sizes, times) once. Library sentences
(finding messages, event summaries, checks) come in the language the report was built in
(``custody.delivery.report.bilingual`` builds it in both and pairs them as ``Pair``).

A page that is right to left, or bilingual, *isolates* every value that reads left to right
(digests, fingerprints, paths, commands, times, sizes, record numbers inside sentences): in
``<bdi dir="ltr">`` inline, ``dir="ltr"`` on code blocks and digest cells, so the bidi
algorithm neither reverses them nor moves their punctuation; library sentences get the
same isolation word run by word run (``isolate``). An English page is written as before.
Times in a language with month names (Arabic) also get the date in words, Syriac and
Western month names together; digits stay Western everywhere (docs/ar/glossary.md).

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
    ENGLISH,
    display_time,
    gps_text,
    grouped,
    size_text,
    visible,
    written_date,
)
from custody.delivery.report.model import Report
from custody.errors import UsageError
from custody.i18n import _

TEMPLATES = Path(__file__).with_name("templates")

_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
# Punctuation a sentence puts around a value, kept outside the value's isolation.
_LEADING = "\"'\u00ab\u201c\u2018([{<"
_TRAILING = ".,;:!?\u060c\u061b\u061f\"'\u00bb\u201d\u2019)]}>"


class Pair(str):
    """A library sentence in the report's language that also carries its translation in the
    second language of a bilingual report (``second``). It is the first language wherever
    it is used as a string."""

    second: str

    def __new__(cls, first: str, second: str) -> Pair:
        made = super().__new__(cls, first)
        made.second = second
        return made

    def __reduce__(self) -> Any:  # copy and pickle keep both
        return (Pair, (str(self), self.second))


def _strong(ch: str) -> str | None:
    kind = unicodedata.bidirectional(ch)
    return "rtl" if kind in ("R", "AL") else "ltr" if kind == "L" else None


def _token_direction(token: str) -> str | None:
    """The direction of a word: its first letter's (a path "media/تضامن" is a left-to-right
    value, "وopenssl" an Arabic word); ltr for digits alone; None for punctuation alone."""
    for ch in token:
        direction = _strong(ch)
        if direction is not None:
            return direction
    return "ltr" if any(ch.isdigit() for ch in token) else None


def sentence_direction(value: object) -> str:
    """The direction of a sentence: rtl when more of its words are right-to-left words than
    left-to-right words (values such as paths, digests and codes are not counted as words)."""
    rtl = ltr = 0
    for token in str(value).split():
        direction = _token_direction(token)
        if direction == "rtl":
            rtl += 1
        elif direction == "ltr":
            word = token.strip(_LEADING + _TRAILING)
            if word.isalpha() and not word.isupper():
                ltr += 1
    return "rtl" if rtl > ltr else "ltr"


# A run of words longer than this (a digest, a fingerprint, a path with its command) is
# never split between two lines of the sentence around it.
_LONG = 32

_PAIRS = {")": "(", "]": "[", "}": "{", ">": "<", "\u00bb": "\u00ab", "\u201d": "\u201c"}


def _outside(run: str) -> tuple[str, str, str]:
    """A run of words as (the sentence's punctuation before it, the run, the punctuation
    after it): quotes, brackets and stops at its ends belong to the sentence, unless the
    run itself opened the bracket ("f(x)" stays whole)."""
    core = run.lstrip(_LEADING)
    lead = run[: len(run) - len(core)]
    stripped = core.rstrip(_TRAILING)
    trail = core[len(stripped) :]
    core = stripped
    while trail and trail[0] in _PAIRS and core.count(_PAIRS[trail[0]]) > core.count(trail[0]):
        core, trail = core + trail[0], trail[1:]
    opening = {v: k for k, v in _PAIRS.items()}
    while lead and lead[-1] in opening and core.count(opening[lead[-1]]) > core.count(lead[-1]):
        core, lead = lead[-1] + core, lead[:-1]
    if not core:  # punctuation alone: nothing to isolate
        return "", run, ""
    return lead, core, trail


def isolate(value: object, direction: str | None = None) -> Any:
    """A sentence as HTML, each run of words in the other direction isolated in a ``<bdi>``
    (left-to-right runs with ``dir="ltr"``), the sentence's own punctuation left outside it.

    "الملف media/a b.jpg تغيّر." keeps the path in one piece, in its order, and the full stop
    at the sentence's end. ``direction``: the sentence's own (``sentence_direction`` if None).
    """
    from markupsafe import Markup, escape

    text = shown(value)
    own = direction or sentence_direction(text)
    other = "ltr" if own == "rtl" else "rtl"
    parts = re.split(r"(\s+)", text)
    out: list[str] = []
    i = 0
    while i < len(parts):
        token = parts[i]
        if i % 2 == 1 or _token_direction(token) != other:
            out.append(str(escape(token)))
            i += 1
            continue
        # A run: this token and every following one that is the other direction or
        # punctuation alone, up to the last one of the other direction.
        j, last = i, i
        while j < len(parts):
            if j % 2 == 0:
                kind = _token_direction(parts[j])
                if kind == own:
                    break
                if kind == other:
                    last = j
            j += 1
        run = "".join(parts[i : last + 1])
        lead, core, trail = _outside(run)
        attr = ' dir="ltr"' if other == "ltr" else ' dir="rtl"'
        if len(core) > _LONG:  # a digest, a path: kept whole on a line (report.css.j2)
            attr += ' class="long"'
        out.append(f"{escape(lead)}<bdi{attr}>{escape(core)}</bdi>{escape(trail)}")
        i = last + 1
    return Markup("".join(out))


def shown(value: object) -> str:
    """Text as shown to a court: NFC, invisible controls made visible (module docstring)."""
    return visible(unicodedata.normalize("NFC", str(value)))


def _css_string(value: object) -> Any:
    """A CSS string literal (quotes included) for ``content:``: every character outside
    printable ASCII, and every quote, backslash and angle bracket, as a CSS escape. An
    escape is followed by a space, which CSS takes as its end: a space after it in the text
    ("الصفحة 3") would otherwise be taken so, and lost."""
    from markupsafe import Markup

    out = []
    for ch in str(value):
        if " " <= ch <= "~" and ch not in "\"'\\<>&":
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):06x} ")
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


STRINGS = TEMPLATES / "strings"


def available_languages(template_dir: Path | None = None) -> list[str]:
    """Every language the report can be written in: a strings file in the package or in
    ``template_dir`` (a firm's own)."""
    names = {p.stem for p in STRINGS.glob("*.toml")}
    if template_dir is not None and (template_dir / "strings").is_dir():
        names |= {p.stem for p in (template_dir / "strings").glob("*.toml")}
    return sorted(n for n in names if re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*", n))


def report_languages(value: str, template_dir: Path | None = None) -> list[str]:
    """The languages ``report --lang`` names: one (``ar``) or two (``ar,en``, a bilingual
    report whose first language leads). UsageError for a language without report strings,
    naming those there are."""
    chosen: list[str] = []
    for part in value.split(","):
        lang = part.strip()
        if lang and lang not in chosen:
            chosen.append(lang)
    known = available_languages(template_dir)
    if not chosen:
        raise UsageError(
            _("--lang needs a language: the report is written in {languages}").format(
                languages=", ".join(known)
            )
        )
    for lang in chosen:
        if lang not in known:
            raise UsageError(
                _(
                    "no report strings for language {lang!r}: the report is written in "
                    "{languages} (a translation is one more strings/LANG.toml, in the package "
                    "or a --template-dir)"
                ).format(lang=lang, languages=", ".join(known))
            )
    if len(chosen) > 2:
        raise UsageError(
            _(
                "--lang names at most two languages (a bilingual report, e.g. ar,en), not {value!r}"
            ).format(value=value)
        )
    return chosen


def load_strings(lang: str, template_dir: Path | None) -> dict[str, Any]:
    """The words of ``lang`` over English, from ``template_dir`` first, then the package."""
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*", lang):
        raise UsageError(_("{lang!r} is not a language tag (e.g. en, ar)").format(lang=lang))
    english = _read_strings(STRINGS / "en.toml")
    if template_dir is not None and (template_dir / "strings" / "en.toml").is_file():
        english = _merge(english, _read_strings(template_dir / "strings" / "en.toml"))
    if lang == "en":
        return english
    for folder in (template_dir, TEMPLATES):
        if folder is not None and (folder / "strings" / f"{lang}.toml").is_file():
            return _merge(english, _read_strings(folder / "strings" / f"{lang}.toml"))
    raise UsageError(
        _("no report strings for language {lang!r}: the report is written in {languages}").format(
            lang=lang, languages=", ".join(available_languages(template_dir))
        )
    )


@functools.lru_cache(maxsize=16)
def _read_strings(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            _("cannot read report strings {path}: {why}").format(path=path, why=exc)
        ) from None


def _ltr(value: object) -> Any:
    """A value that reads left to right, isolated (``<bdi dir="ltr">``); a long one is marked
    so, to be kept whole on a line of its own rather than unbroken (report.css.j2)."""
    from markupsafe import Markup, escape

    text = shown(value)
    if len(text) > _LONG:
        return Markup('<bdi dir="ltr" class="long">{}</bdi>').format(escape(text))
    return Markup('<bdi dir="ltr">{}</bdi>').format(escape(text))


def _time(value: object) -> Any:
    """A time, isolated left to right and kept on one line where there is room."""
    from markupsafe import Markup, escape

    return Markup('<bdi dir="ltr" class="time">{}</bdi>').format(escape(shown(value)))


def _auto(value: object) -> Any:
    """A value of unknown direction (a name), isolated with its direction from its letters."""
    from markupsafe import Markup, escape

    v = shown(value)
    lang = ' lang="ar"' if _ARABIC.search(v) else ""
    return Markup('<bdi dir="auto"{}>{}</bdi>').format(Markup(lang), escape(v))


class Localized:
    """A value written in words (a time with its date in words, a size in bytes) whose words
    depend on the language of the sentence it is put into (``fill``'s ``_table``)."""

    def __init__(self, render: Any) -> None:
        self.render = render

    def __call__(self, table: Mapping[str, Any] | None) -> Any:
        return self.render(table)


class _Words:
    """How values are written on one page: the words of ``formats`` (the page's strings'
    [formats], over English), the month names of the first of the page's languages that has
    them, and whether values are isolated (right-to-left and bilingual pages)."""

    def __init__(
        self,
        strings: Mapping[str, Any] | None = None,
        second: Mapping[str, Any] | None = None,
        *,
        isolating: bool = False,
    ) -> None:
        self.formats: Mapping[str, Any] = {**ENGLISH, **(strings or {}).get("formats", {})}
        self.isolating = isolating
        self.months: list[str] = []
        self.written = "{day} {month} {year}"
        self.written_pattern = "{written}"
        for table in (strings, second):
            formats = (table or {}).get("formats", {})
            if len(formats.get("months") or []) == 12:
                self.months = list(formats["months"])
                self.written = str(formats.get("written_date") or self.written)
                self.written_pattern = str(formats.get("with_written_date") or "{time} ({written})")
                break

    def wrap(self) -> Any:
        from custody.delivery.report import formats

        return _ltr if self.isolating else formats._plain

    def time(self, value: object, *, capture: bool = False) -> Any:
        from markupsafe import Markup, escape

        text = None if value is None else str(value)
        wrap = _time if self.isolating else self.wrap()
        shown_time = display_time(text, words=self.formats, wrap=wrap)
        written = written_date(text, self.months, self.written) if text else None
        if not written:
            return shown_time
        return Markup(escape(self.written_pattern)).format(
            time=shown_time, written=Markup('<span class="written">{}</span>').format(written)
        )

    def size(self, n: int) -> Any:
        return size_text(n, words=self.formats, wrap=self.wrap())

    def gps(self, gps: tuple[float, float]) -> Any:
        return gps_text(gps, words=self.formats, wrap=self.wrap())

    def seconds(self, n: object) -> Any:
        from custody.delivery.report.formats import _format

        return _format(str(self.formats["seconds"]), self.wrap(), n=n)


def environment(
    template_dir: Path | None = None,
    *,
    strings: Mapping[str, Any] | None = None,
    second: Mapping[str, Any] | None = None,
    isolating: bool = False,
) -> Any:
    """The Jinja2 environment of the report (also used for certifications' shared filters).

    ``strings`` (and ``second``, a bilingual page's second language) say how values are
    written; ``isolating`` makes every left-to-right value an isolated one.
    """
    import jinja2
    from markupsafe import Markup, escape

    folders = [str(TEMPLATES)]
    if template_dir is not None:
        if not template_dir.is_dir():
            raise UsageError(
                _("{path} is not a folder of report templates").format(path=template_dir)
            )
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
    words = _Words(strings, second, isolating=isolating)

    def fill(pattern: str, _table: Mapping[str, Any] | None = None, **values: object) -> Any:
        """A sentence of the strings file with its ``{fields}``: on an isolating page each
        value is isolated (left to right, or by its letters for text from people) unless it
        is already HTML (a macro's output) or a number. A value written in words (a time, a
        size: ``Localized``) is written in the words of ``_table``, the sentence's language
        (the page's first language if not given)."""
        table = _table if _table is not None else strings
        values = {k: v(table) if isinstance(v, Localized) else v for k, v in values.items()}
        if not isolating:
            return pattern.format(**values)
        filled: dict[str, object] = {}
        own = sentence_direction(pattern)
        for key, value in values.items():
            if hasattr(value, "__html__") or isinstance(value, int):
                filled[key] = value
            elif " " in str(value).strip() and sentence_direction(value) == own:
                filled[key] = escape(shown(value))  # words in the sentence's own language
            elif _token_direction(str(value)) == "rtl":
                filled[key] = _auto(value)
            else:
                filled[key] = _ltr(value)
        return Markup(escape(pattern)).format(**filled)

    def in_words(table: Mapping[str, Any] | None) -> _Words:
        """How values are written in one language of the page (its own month names only)."""
        return _Words(table or strings, None, isolating=isolating)

    def timed(value: object) -> Localized:
        """A time to be written in the words of the sentence it goes into."""
        return Localized(lambda table: in_words(table).time(value))

    def sized(n: int) -> Localized:
        """A size to be written in the words of the sentence it goes into."""
        return Localized(lambda table: in_words(table).size(n))

    def ltr(value: object) -> Any:
        return _ltr(value) if isolating else value

    def fingerprint(value: object) -> Any:
        """A key's fingerprint in groups of four; on an isolating page a left-to-right block
        of its own that breaks only between groups."""
        text = grouped(str(value))
        if not isolating:
            return text
        return Markup('<span class="hash fp" dir="ltr">{}</span>').format(text)

    def lang_for(direction: str) -> str:
        """The language of a sentence in ``direction`` on this page."""
        for table in (strings, second):
            if table is not None and table["meta"]["dir"] == direction:
                return str(table["meta"]["lang"])
        return "ar" if direction == "rtl" else "en"

    def sentence(value: object) -> Any:
        """A sentence custody wrote, as one isolated span in its own direction."""
        if not isolating:
            return value
        direction = sentence_direction(value)
        return Markup('<span dir="{}" lang="{}">{}</span>').format(
            direction, lang_for(direction), isolate(value, direction)
        )

    def col(value: object, n: int) -> str:
        """A sentence as column ``n`` of a bilingual paragraph shows it (a Pair's second
        language in column 2)."""
        return value.second if n == 2 and isinstance(value, Pair) else str(value)

    def seconds(values: Mapping[str, object]) -> dict[str, object]:
        return {k: v.second if isinstance(v, Pair) else v for k, v in values.items()}

    def trust_words(mode: str, table: Mapping[str, Any] | None = None) -> str:
        signers = (table or strings or load_strings("en", None))["signers"]
        return str(signers["trust_roots" if mode == "roots" else "trust_embedded"])

    env.filters.update(
        shown=shown,
        visible=visible,
        grouped=grouped,
        size=words.size,
        gps=words.gps,
        seconds=words.seconds,
        when=words.time,
        capture=words.time,
        css_string=_css_string,
        digest_order=_digest_order,
        record_number=_record_number,
        number_ranges=number_ranges,
        isolate=isolate if isolating else (lambda value, direction=None: value),
        ltr=ltr,
        direction=sentence_direction,
        sentence=sentence,
        col=col,
        fingerprint=fingerprint,
    )
    env.tests["arabic"] = lambda value: bool(_ARABIC.search(str(value)))
    env.tests["paired"] = lambda value: isinstance(value, Pair)
    env.globals["trust_words"] = trust_words
    env.globals["capture_rows"] = capture_rows
    env.globals["fill"] = fill
    env.globals["timed"] = timed
    env.globals["sized"] = sized
    env.globals["lang_for"] = lang_for
    env.globals["seconds"] = seconds
    env.globals["isolating"] = isolating
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
    strings2 = load_strings(second, template_dir) if second and second != lang else None
    isolating = strings2 is not None or strings["meta"]["dir"] == "rtl"
    env = environment(template_dir, strings=strings, second=strings2, isolating=isolating)
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
        if name:
            message = _("the report template cannot be rendered: {why} ({file}, line {line})")
        else:
            message = _("the report template cannot be rendered: {why}")
        raise UsageError(message.format(why=exc, file=name, line=line)) from None
    return str(page)
