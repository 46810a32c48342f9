"""Sentences custody both records and shows: English in every record, the run's language on
screen.

What a source reader finds (a chat export's problems, why a medium is missing, a ProofMode
check's reason, a bag's findings) is written into item records as the source's provenance,
and the same words are shown to the documenter at intake. Records never change with the
language (``custody.i18n``), so such a sentence is built once as a ``Said``: a ``str`` whose
value is the English sentence - what records, JSON and comparisons see - and which remembers
its catalog message and fields, so ``translated`` can say it again in the language of the
run. A ``Said`` put through any ``str`` operation (slicing, ``+``, an f-string) is plain
English text from then on; only ``translated`` gives the other language.

An error that custody shows and may also record (a capture's failure, written into
``capture.json``) keeps its ``Said`` too: ``refusal`` builds the exception with the message
in the run's language, and ``english`` gives back the English a record keeps.

Messages are marked for the catalog where they are written: ``Said(N_("..."), field=...)``,
and ``Said.ngettext(singular, plural, n, ...)`` for a count (``scripts/i18n.py`` extracts
both: ``N_`` and ``ngettext`` are its keywords). Imports only ``custody.i18n``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from custody.i18n import _, ngettext

_E = TypeVar("_E", bound=BaseException)


class Said(str):
    """An English sentence (the ``str`` value) that can say itself in the run's language."""

    template: str
    plural: str | None
    number: int | None
    fields: dict[str, Any]

    def __new__(cls, template: str, /, **fields: Any) -> Said:
        english = template.format(**fields) if fields else template
        said = super().__new__(cls, english)
        said.template, said.plural, said.number, said.fields = template, None, None, fields
        return said

    @classmethod
    def ngettext(cls, singular: str, plural: str, n: int, /, **fields: Any) -> Said:
        """The sentence for ``n`` things: ``{n}`` is a field of both forms."""
        english = (singular if n == 1 else plural).format(n=n, **fields)
        said = super().__new__(cls, english)
        said.template, said.plural, said.number, said.fields = singular, plural, n, fields
        return said

    @classmethod
    def joined(cls, separator: str, parts: Sequence[str], /) -> Said:
        """``parts`` (each said in the run's language) joined by ``separator``."""
        fields = {f"part{i}": part for i, part in enumerate(parts)}
        template = separator.join(f"{{part{i}}}" for i in range(len(parts)))
        return cls(template, **fields)  # not a catalog message: the parts are

    def translated(self) -> str:
        """The sentence in the language of the run (English when that is English)."""
        if not self.template:
            return ""  # gettext("") is the catalog's header, never a message
        values = {name: translated(value) for name, value in self.fields.items()}
        if self.plural is not None and self.number is not None:
            return ngettext(self.template, self.plural, self.number).format(n=self.number, **values)
        if not values:
            return _(self.template)
        return _(self.template).format(**values)


def translated(value: Any) -> Any:
    """``value`` in the language of the run if it is a ``Said``; anything else unchanged."""
    return value.translated() if isinstance(value, Said) else value


def shown_text(value: str | None) -> str | None:
    """Text for people: a ``Said`` translated, plain text (a name, a path) as it is."""
    return None if value is None else str(translated(value))


def refusal(kind: type[_E], said: Said | str) -> _E:
    """``kind(message)`` with the message in the run's language; ``english`` gives it back in
    English (what a record of the failure keeps)."""
    error = kind(translated(said))
    error.said = said  # type: ignore[attr-defined]
    return error


def english(error: BaseException) -> str:
    """The message of ``error`` as a record keeps it: the ``Said`` that ``refusal`` kept
    (English, still able to say itself in another language), else ``str(error)``."""
    said = getattr(error, "said", None)
    return said if isinstance(said, str) else str(error)
