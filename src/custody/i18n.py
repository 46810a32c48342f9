"""The language custody speaks to people in: gettext catalogs and the choice between them.

Owns ``_`` / ``ngettext`` / ``N_`` (the marks every message for a person goes through),
the catalogs under ``custody/locale/<lang>/LC_MESSAGES/custody.mo`` (compiled from the
``.po`` files beside them by ``scripts/i18n.py``), and which language a run speaks: ``--lang``,
then ``CUSTODY_LANG``, then ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES`` and ``LANG``, as
gettext itself would read them. Imports only the standard library.

What never goes through here: anything a program reads or a file keeps. ``--json``, finding
class names, exit codes, the ledger, bundles and every file format stay English and identical
whatever the language; a run with ``--json`` speaks English throughout
(``custody.cli.app``), so a message carried inside JSON is the English one. Catalog
messages use ``str.format`` fields (``{path}``), never positional ``%s``, so a translator
may reorder them; the Arabic catalog has the six plural forms of Arabic.

Why stdlib ``gettext`` and Babel: ``gettext`` reads compiled ``.mo`` catalogs with no
dependency at run time; Babel (a development tool here) extracts the messages, keeps the
catalogs in step with the code and compiles them, and ``msgfmt --check`` from GNU gettext
checks them independently.
"""

from __future__ import annotations

import gettext as _gettext
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

DOMAIN = "custody"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "ar")  # every language custody has a catalog for; en is the source
RIGHT_TO_LEFT = frozenset({"ar"})
ENVIRONMENT = ("CUSTODY_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_translation: _gettext.NullTranslations = _gettext.NullTranslations()
_language = SOURCE_LANGUAGE


class UnknownLanguage(ValueError):
    """``--lang`` named a language custody has no catalog for."""

    def __init__(self, value: str) -> None:
        super().__init__(
            f"no messages in language {value!r}: custody speaks {', '.join(LANGUAGES)}"
        )
        self.value = value


def _(message: str) -> str:
    """The message in the language of this run (the English itself when untranslated)."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message for ``n`` (Arabic has six: zero, one, two, few, many, other)."""
    return _translation.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a message for the catalog without translating it yet (tables built at import)."""
    return message


def _base(tag: str) -> str | None:
    """``ar_SY.UTF-8`` -> ``ar``; ``C``/``POSIX``/empty -> None (the C locale is English)."""
    code = tag.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    if not code or code in ("c", "posix"):
        return None
    return code


def parse_languages(value: str) -> list[str]:
    """The languages a ``--lang`` value names (``ar``, ``ar,en``), each one custody has.

    Raises UnknownLanguage for any other; the first is the language of the interface.
    """
    chosen: list[str] = []
    for part in value.split(","):
        code = _base(part)
        if code is None or code not in LANGUAGES:
            raise UnknownLanguage(part.strip())
        if code not in chosen:
            chosen.append(code)
    if not chosen:
        raise UnknownLanguage(value)
    return chosen


def language_from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language the environment asks for, as gettext reads it; English if none we have.

    ``CUSTODY_LANG`` first (one program's choice), then ``LANGUAGE`` (a colon-separated list
    of preferences, the first we have wins), ``LC_ALL``, ``LC_MESSAGES`` and ``LANG``. A
    variable set to a language we have no catalog for is passed over, as gettext does.
    """
    env = os.environ if environ is None else environ
    for name in ENVIRONMENT:
        value = env.get(name, "")
        if not value:
            continue
        for tag in value.split(":") if name == "LANGUAGE" else [value]:
            code = _base(tag)
            if code in LANGUAGES:
                return code
        if name in ("LC_ALL", "LC_MESSAGES", "LANG"):
            # The first locale variable that is set decides (POSIX): a C or unknown locale
            # is English rather than falling through to a weaker variable.
            return SOURCE_LANGUAGE
    return SOURCE_LANGUAGE


def set_language(language: str) -> None:
    """Speak ``language`` from now on in this process (one of LANGUAGES)."""
    global _translation, _language
    if language not in LANGUAGES:
        raise UnknownLanguage(language)
    if language == SOURCE_LANGUAGE:
        _translation = _gettext.NullTranslations()
    else:
        # fallback=False: a missing compiled catalog is a broken install, not English.
        _translation = _gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
    _language = language


def current_language() -> str:
    return _language


def is_right_to_left(language: str | None = None) -> bool:
    return (language or _language) in RIGHT_TO_LEFT


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """Speak ``language`` inside the block (e.g. English for text that goes into a file)."""
    before = _language
    set_language(language)
    try:
        yield
    finally:
        set_language(before)
