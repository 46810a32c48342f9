"""Which language a run of ``custody`` speaks, and the help and framework messages in it.

Owns three things, all done before a command runs:

* the choice of language from the command line: the first language of any ``--lang``
  (the global ``custody --lang ar ...`` or a document's own ``report --lang ar,en``), else the
  environment (``custody.i18n.language_from_environment``); a run with ``--json`` speaks
  English, so that JSON, and any message carried in it, is the same in every language;
* the help of every command and option in that language: Typer builds the help from
  docstrings and ``help=`` texts, which stay English in the code; ``translate_help`` passes
  each through the catalog once the command tree is built (``scripts/i18n.py`` extracts
  them from that same tree, so the catalog and the help cannot drift apart);
* Click's and Typer's own messages ("Usage:", "Missing argument", "No such option"...),
  which they send through the standard ``gettext`` module: their ``_`` is pointed at
  custody's catalog, which carries their messages too.

Imports ``custody.i18n``; imports Click only inside the functions that need it, so the fast
path (``custody.cli.fastpath``) can choose a language without loading it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from custody import i18n

# Modules of Click and Typer that bind ``from gettext import gettext as _`` (and ngettext).
FRAMEWORK_MODULES = (
    "click.core",
    "click.decorators",
    "click.exceptions",
    "click.formatting",
    "click.parser",
    "click.termui",
    "click.types",
    "typer.core",
)


def requested_languages(argv: Sequence[str]) -> list[str] | None:
    """The languages the first ``--lang`` on the command line names, or None.

    A value custody has no catalog for gives None here: the option's own check then refuses
    it with a usage error.
    """
    words = list(argv)
    for i, word in enumerate(words):
        if word == "--":
            break
        value: str | None = None
        if word == "--lang" and i + 1 < len(words):
            value = words[i + 1]
        elif word.startswith("--lang="):
            value = word.split("=", 1)[1]
        if value is not None:
            try:
                return i18n.parse_languages(value)
            except i18n.UnknownLanguage:
                return None
    return None


def choose(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """The language of the interface for this command line."""
    words = list(argv)
    options = words[: words.index("--")] if "--" in words else words
    if "--json" in options:
        return i18n.SOURCE_LANGUAGE
    asked = requested_languages(words)
    if asked:
        return asked[0]
    return i18n.language_from_environment(os.environ if environ is None else environ)


def speak_for(argv: Sequence[str]) -> str:
    """Choose the language for ``argv`` and speak it from now on; returns it."""
    language = choose(argv)
    i18n.set_language(language)
    return language


def hook_framework() -> None:
    """Point Click's and Typer's message functions at custody's catalog."""
    import importlib

    for name in FRAMEWORK_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "_"):
            module._ = i18n._  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = i18n.ngettext  # type: ignore[attr-defined]


_COMMAND_TEXTS = ("help", "short_help", "epilog")


def _commands(command: Any) -> Iterator[Any]:
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _commands(sub)


def _help_places(command: Any) -> Iterator[tuple[Any, str]]:
    """(holder, attribute) of every help text of a Click command tree, in the order
    ``--help`` would show them: the one walk both extraction and translation use."""
    for cmd in _commands(command):
        for attribute in _COMMAND_TEXTS:
            if getattr(cmd, attribute, None):
                yield cmd, attribute
        for param in cmd.params:
            if getattr(param, "help", None):
                yield param, "help"


def help_texts(command: Any) -> list[str]:
    """Every help text of a Click command tree, in the order ``--help`` would show them."""
    return [getattr(holder, attribute) for holder, attribute in _help_places(command)]


def translate_help(command: Any) -> None:
    """Put every help text of the tree through the catalog (a no-op in English)."""
    if i18n.current_language() == i18n.SOURCE_LANGUAGE:
        return
    for holder, attribute in list(_help_places(command)):
        setattr(holder, attribute, i18n._(getattr(holder, attribute)))
    for cmd in _commands(command):
        for param in cmd.params:
            _keep_path_metavar(param)


def _keep_path_metavar(param: Any) -> None:
    """Keep a path option's metavar (``--out FILE``) as it is in English.

    Click names the value of a path option after its type (FILE, DIRECTORY, PATH) and passes
    that name through gettext, for its messages ("File 'x' does not exist."). Translated, the
    help would read ``--out الملف``: a placeholder in another script than the option it
    belongs to. The messages keep the translated name; the metavar is pinned to the English
    one, as Click would build it.
    """
    import click

    if not isinstance(param, click.Option) or param.metavar is not None:
        return
    kind = param.type
    if not isinstance(kind, click.Path):
        return
    if kind.file_okay and not kind.dir_okay:
        name = "FILE"
    elif kind.dir_okay and not kind.file_okay:
        name = "DIRECTORY"
    else:
        name = "PATH"
    param.metavar = name if param.nargs == 1 else f"{name}..."
