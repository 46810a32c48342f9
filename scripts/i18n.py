"""Keep custody's message catalogs in step with the code (Babel), and check them.

    .venv/bin/python scripts/i18n.py extract   # src/custody/locale/custody.pot from the code
    .venv/bin/python scripts/i18n.py update    # bring each <lang>.po up to the template
    .venv/bin/python scripts/i18n.py merge F.po...  # take translations from other .po files
    .venv/bin/python scripts/i18n.py compile   # <lang>.po -> <lang>.mo (what custody reads)
    .venv/bin/python scripts/i18n.py check     # everything below; exit 1 with what is wrong
    .venv/bin/python scripts/i18n.py all       # extract, update, compile, check

The template has three sources, all English as the user sees it:

* every ``_()``, ``ngettext()`` and ``N_()`` in ``src/custody`` (Babel's Python extractor);
* every help text of the command tree, read from the tree Typer builds (the docstrings and
  ``help=`` texts exactly as ``--help`` shows them; ``custody.cli.language.translate_help``
  looks up those same strings);
* Click's and Typer's own messages ("Usage:", "Missing argument"...), extracted from their
  installed sources, which ``custody.cli.language.hook_framework`` sends to our catalog.

``check`` fails on: a template out of date with the code, a message without a translation or
with a fuzzy one, a translation whose ``{fields}`` differ from its message's (a field
missing or misspelled would raise or drop a path at run time), a compiled catalog older
than its ``.po``, and anything GNU ``msgfmt --check`` refuses.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
LOCALE = SRC / "custody" / "locale"
TEMPLATE = LOCALE / "custody.pot"
LANGUAGES = ("ar",)
KEYWORDS = {"_": None, "ngettext": (1, 2), "N_": None}
FIELD = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)(?:[!:][^}]*)?\}(?!\})")
PROJECT = "custody"


def po_path(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "custody.po"


def mo_path(language: str) -> Path:
    return po_path(language).with_suffix(".mo")


def _flags(message: str | tuple[str, ...]) -> set[str]:
    text = " ".join(message) if isinstance(message, tuple) else message
    return {"python-brace-format"} if FIELD.search(text) else set()


def build_template() -> Catalog:
    """The template catalog as the code and the command tree stand now."""
    catalog = Catalog(
        project=PROJECT,
        version="0",
        fuzzy=False,
        copyright_holder="the custody authors",
        msgid_bugs_address="the custody issue tracker",
        header_comment="# Messages custody shows people (scripts/i18n.py extracts them).\n"
        "# Copyright (C) the custody authors. Apache-2.0, as custody.\n",
    )
    package = SRC / "custody"
    for filename, lineno, message, comments, _context in extract_from_dir(
        package,
        method_map=[("**.py", "python")],
        keywords=KEYWORDS,
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    ):
        location = (f"custody/{filename}", lineno)
        catalog.add(message, None, [location], auto_comments=comments, flags=_flags(message))
    for filename, lineno, message in _calls_in_f_strings(package, "**/*.py"):
        if message not in catalog:
            catalog.add(message, None, [(f"custody/{filename}", lineno)], flags=_flags(message))
    sys.path.insert(0, str(SRC))
    import typer.main

    from custody.cli.app import app
    from custody.cli.language import help_texts

    for text in help_texts(typer.main.get_command(app)):
        catalog.add(text, None, [("custody --help", 0)], flags=_flags(text))
    import click
    import typer

    for module, folder, pattern in (
        ("click", Path(click.__file__).parent, "**.py"),
        ("typer", Path(typer.__file__).parent, "core.py"),
    ):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            folder, method_map=[(pattern, "python")], keywords={"_": None, "ngettext": (1, 2)}
        ):
            if module == "click" and filename.startswith("shell_completion"):
                continue  # custody adds no completion (add_completion=False)
            catalog.add(message, None, [(f"{module}/{filename}", lineno)], flags=_flags(message))
        files = "**/*.py" if pattern == "**.py" else pattern  # Babel's pattern, as pathlib's
        for filename, lineno, message in _calls_in_f_strings(folder, files):
            if module == "click" and filename.startswith("shell_completion"):
                continue
            if message not in catalog:
                location = (f"{module}/{filename}", lineno)
                catalog.add(message, None, [location], flags=_flags(message))
    return catalog


# ``_("...")`` with a plain literal, inside an f-string. Babel's extractor does not look into
# f-strings on this Python (an f-string is one token), so it misses Click's f"{_('Usage:')} ",
# the first word of every help page and usage error, and would miss any such call of ours.
_CALL = re.compile(r"""(?<![\w.])_\((?P<q>['"])(?P<text>(?:[^'"\\\n]|\\.)*)(?P=q)\)""")


def _calls_in_f_strings(folder: Path, pattern: str) -> list[tuple[str, int, str]]:
    """(file relative to folder, line, message) of each ``_("literal")`` inside an f-string."""
    found: list[tuple[str, int, str]] = []
    for path in sorted(folder.glob(pattern)):
        with path.open("rb") as handle:
            tokens = list(tokenize.tokenize(handle.readline))
        for token in tokens:
            prefix = token.string[: len(token.string) - len(token.string.lstrip("rRbBuUfF"))]
            if token.type != tokenize.STRING or "f" not in prefix.lower():
                continue
            for match in _CALL.finditer(token.string):
                quote = match.group("q")
                message = ast.literal_eval(quote + match.group("text") + quote)
                lineno = token.start[0] + token.string.count("\n", 0, match.start())
                found.append((path.relative_to(folder).as_posix(), lineno, message))
    return found


def _po_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(
        buffer,
        catalog,
        width=100,
        omit_header=False,
        sort_output=False,
        include_lineno=False,
        ignore_obsolete=True,
    )
    text = buffer.getvalue().decode("utf-8")
    # Dates in the header change every run; the repository keeps one fixed line.
    for header in ("POT-Creation-Date", "PO-Revision-Date"):
        text = re.sub(
            rf'"{header}: [^"]*"', lambda _m, h=header: f'"{h}: 2026-12-06 00:00+0000\\n"', text
        )
    text = re.sub(r'"Generated-By: [^"]*"\n', "", text)
    return text.encode("utf-8")


def extract() -> None:
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    TEMPLATE.write_bytes(_po_bytes(build_template()))
    print(f"wrote {TEMPLATE.relative_to(REPO)}")


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def update() -> None:
    template = _read(TEMPLATE)
    for language in LANGUAGES:
        path = po_path(language)
        if path.exists():
            catalog = _read(path, language)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(
                locale=language,
                project=PROJECT,
                version="0",
                fuzzy=False,
                copyright_holder="the custody authors",
                msgid_bugs_address="the custody issue tracker",
                header_comment=f"# custody's messages in {language} (docs/{language}/glossary.md"
                " lists the terms).\n# Copyright (C) the custody authors. Apache-2.0.\n",
            )
        # No fuzzy matching: a guessed translation of a changed message could say something
        # the English no longer says. A changed message is untranslated until someone looks.
        catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
        catalog.language_team = "custody translators"
        catalog.last_translator = "custody translators"
        path.write_bytes(_po_bytes(catalog))
        print(f"updated {path.relative_to(REPO)}")


def merge(files: list[Path]) -> None:
    """Copy the translations of ``files`` into each catalog, for messages it has."""
    for language in LANGUAGES:
        path = po_path(language)
        catalog = _read(path, language)
        taken = 0
        for file in files:
            for message in _read(file, language):
                if not message.id or not message.string:
                    continue
                here = catalog.get(message.id)
                if here is None:
                    continue
                wanted = message.string
                if isinstance(wanted, (list, tuple)) and not any(wanted):
                    continue
                here.string = wanted
                here.flags.discard("fuzzy")
                taken += 1
        path.write_bytes(_po_bytes(catalog))
        print(f"{path.relative_to(REPO)}: {taken} translations taken")


def compile_catalogs() -> None:
    for language in LANGUAGES:
        catalog = _read(po_path(language), language)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        mo_path(language).write_bytes(buffer.getvalue())
        print(f"compiled {mo_path(language).relative_to(REPO)}")


def problems() -> list[str]:
    """What is wrong with the catalogs, one line each; empty when they are in order."""
    found: list[str] = []
    if not TEMPLATE.exists() or TEMPLATE.read_bytes() != _po_bytes(build_template()):
        found.append(f"{TEMPLATE.relative_to(REPO)} is out of date: run scripts/i18n.py all")
    template_ids = {m.id for m in _read(TEMPLATE) if m.id} if TEMPLATE.exists() else set()
    for language in LANGUAGES:
        path = po_path(language)
        if not path.exists():
            found.append(f"{path.relative_to(REPO)} is missing")
            continue
        catalog = _read(path, language)
        ids = {m.id for m in catalog if m.id}
        for missing in sorted(template_ids - ids, key=str):
            found.append(f"{language}: not in the catalog: {missing!r}")
        for message in catalog:
            if not message.id:
                continue
            strings = (
                message.string if isinstance(message.string, (list, tuple)) else [message.string]
            )
            if "fuzzy" in message.flags or not all(strings):
                found.append(f"{language}: untranslated: {message.id!r}")
                continue
            ids = [message.id] if isinstance(message.id, str) else list(message.id)
            wanted: set[str] = set().union(*(FIELD.findall(text) for text in ids))
            # A plural form may leave out a field only one English form has (Click's
            # "Takes {nargs} values but 1 was given." / "... but {len} were given."), and
            # {n}/{count} (Arabic's one and two say the number in words).
            needed = set.intersection(*(set(FIELD.findall(text)) for text in ids))
            for string in strings:
                got = set(FIELD.findall(string))
                if got - wanted or (needed - got - {"n", "count"}):
                    found.append(
                        f"{language}: fields differ in {message.id!r}: "
                        f"{sorted(wanted)} vs {sorted(got)}"
                    )
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        if not mo_path(language).exists() or mo_path(language).read_bytes() != buffer.getvalue():
            found.append(f"{mo_path(language).relative_to(REPO)} is out of date: run compile")
        check = subprocess.run(
            ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            found.extend(f"msgfmt: {line}" for line in check.stderr.splitlines() if line)
    return found


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "extract":
        extract()
    elif command == "update":
        update()
    elif command == "merge":
        merge([Path(p) for p in rest])
    elif command == "compile":
        compile_catalogs()
    elif command in ("check", "all"):
        if command == "all":
            extract()
            update()
            compile_catalogs()
        wrong = problems()
        for line in wrong:
            print(line)
        print(f"{len(wrong)} problem(s)")
        return 1 if wrong else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
