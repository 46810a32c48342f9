"""A report in the languages asked for: the sentences custody itself writes (finding
messages, checks, event summaries, statuses, commands' purposes) come from the library in
the language it speaks while the report is built (``custody.i18n``), so a bilingual report
(``report --lang ar,en``) is built once in each language and the two are paired: every
sentence that differs becomes a ``Pair`` (the first language, carrying the second), and the
page shows both (``custody.delivery.report.html``).

Both builds verify the evidence. They must agree on every fact - the verdict, each item's
path, size and digests, each finding's class, record and values, the ledger's size and root,
the bundle's digests - or the report is refused: a page that paired the words of one
verification with the facts of another could say something neither said. Text that differs
between them is a translation; a number, a flag or a value that differs is not, and is
refused too (``paired``).

Languages custody has no messages for (a firm's own strings file under ``--template-dir``)
get the library's sentences in English.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from custody import i18n
from custody.delivery.report.html import Pair
from custody.delivery.report.model import Report
from custody.errors import InputError
from custody.i18n import _


def catalog_language(lang: str) -> str:
    """The language custody's own sentences are written in for a report in ``lang``."""
    return lang if lang in i18n.LANGUAGES else i18n.SOURCE_LANGUAGE


def build_in(languages: Sequence[str], build: Callable[[], Report]) -> Report:
    """``build()`` run in the first language, and for a bilingual report again in the
    second, the two paired (see the module docstring)."""
    first = catalog_language(languages[0])
    with i18n.speaking(first):
        report = build()
    if len(languages) < 2 or catalog_language(languages[1]) == first:
        return report
    with i18n.speaking(catalog_language(languages[1])):
        other = build()
    return paired(report, other)


class Disagreement(InputError):
    """The two verifications of a bilingual report did not find the same facts."""


def _facts(report: Report) -> Any:
    """What both builds of a bilingual report must agree on, whatever their language."""
    return (
        report.verdict_code,
        report.kind,
        report.source,
        report.ledger_size,
        report.tree_root,
        report.checkpoint,
        report.source_digest,
        [(i.seq, i.path, i.size, i.digests, i.intact, i.exhibit) for i in report.items],
        [
            (str(f.code), f.seq, _value(f.expected), _value(f.found), f.severity)
            for f in report.findings
        ],
        [(c.name, c.passed, c.covered) for c in report.checks],
        [(k.fingerprint, k.records, k.anchored) for k in report.keys],
        [t.get("record") for t in report.timestamps],
    )


def _value(text: str | None) -> str | None:
    """A finding's expected or found value when it is a value (a digest, a size, a name
    without spaces); None when it is words ("no root supplied"), which are translated."""
    return None if text is None or any(ch.isspace() for ch in text) else text


def paired(first: Report, second: Report) -> Report:
    """``first`` with every sentence that ``second`` words differently as a ``Pair``;
    Disagreement when the two differ in anything but words."""
    if _facts(first) != _facts(second):
        raise Disagreement(
            _(
                "the two verifications of a bilingual report did not find the same facts (did "
                "the evidence change while the report was being made?); make the report again"
            )
        )
    # When each was made, and the pictures (the same files, made twice), are the first's.
    second = dataclasses.replace(second, generated=first.generated)
    result = _pair(first, second, "report")
    assert isinstance(result, Report)
    return result


def _differ(where: str) -> Disagreement:
    return Disagreement(_("a bilingual report's two builds differ at {place}").format(place=where))


def _pair(a: Any, b: Any, where: str) -> Any:
    if isinstance(a, str) and isinstance(b, str):
        if a == b:
            return a
        if type(a) is not str or type(b) is not str:  # an enum (a finding class): a fact
            raise _differ(where)
        if where.endswith(".data_uri"):
            return a  # a thumbnail made twice: the first is shown
        return Pair(a, b)
    if type(a) is not type(b):
        raise _differ(where)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        changes = {}
        for field in dataclasses.fields(a):
            value = getattr(a, field.name)
            paired_value = _pair(value, getattr(b, field.name), f"{where}.{field.name}")
            if paired_value is not value:
                changes[field.name] = paired_value
        return dataclasses.replace(a, **changes) if changes else a
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            raise _differ(where)
        items = [_pair(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True))]
        if not isinstance(a, tuple):
            return items
        return type(a)(*items) if hasattr(a, "_fields") else type(a)(items)
    if isinstance(a, dict):
        if list(a) != list(b):
            raise _differ(where)
        return {k: _pair(v, b[k], f"{where}.{k}") for k, v in a.items()}
    if a != b:
        raise _differ(where)
    return a
