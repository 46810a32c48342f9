"""Help in Arabic: every command's and option's help, and Click's and Typer's own messages.

``custody --lang ar --help`` (and the help of every command and group) is read through the
real CLI, in-process, against the compiled catalog the package ships. The help texts stay
English in the code; ``custody.cli.language.translate_help`` passes the built command tree
through the catalog, and ``scripts/i18n.py extract`` collects the same texts from the same
tree. Tests that need a translation skip with "catalog not compiled yet" while the compiled
``ar`` catalog does not carry it (translations arrive as ``locale/incoming/*.po`` and are
compiled when merged); once it does, they hold every help text to it.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer.main

from conftest import REPO, Result
from custody import i18n
from custody.cli.app import COMMAND_ORDER, GROUP_ORDER, app
from custody.cli.language import help_texts

ARABIC = re.compile(r"[\u0600-\u06ff]")
NOT_COMPILED = "catalog not compiled yet: the ar catalog lacks the help translations"


@pytest.fixture(autouse=True)
def english_afterwards() -> Iterator[None]:
    """A run in Arabic leaves the process speaking Arabic; later tests expect English."""
    yield
    i18n.set_language(i18n.SOURCE_LANGUAGE)


def arabic(message: str) -> str:
    """``message`` as the compiled Arabic catalog has it (the English itself if it has none)."""
    with i18n.speaking("ar"):
        return i18n._(message)


def tree() -> click.Group:
    command = typer.main.get_command(app)
    assert isinstance(command, click.Group)
    return command


def needs_translation(*messages: str) -> None:
    for message in messages:
        if arabic(message) == message:
            pytest.skip(f"{NOT_COMPILED} ({message[:40]!r})")


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group below ``group``, as the words that name it."""
    paths: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


def squeeze(text: str) -> str:
    return " ".join(text.split())


def test_every_help_text_has_an_arabic_translation() -> None:
    texts = help_texts(tree())
    assert len(texts) > 200  # the whole tree, not one group
    needs_translation(tree().help or "")
    untranslated = sorted({text for text in texts if arabic(text) == text})
    assert not untranslated, f"help texts without Arabic: {untranslated}"
    # Click's and Typer's words on every help page.
    for word in ("Usage:", "Options", "Commands", "Show this message and exit."):
        assert ARABIC.search(arabic(word)), word


# Capitals in help texts that are English words, not something typed: the verdicts (said in
# Arabic, as docs/ar/glossary.md has them), emphasis, and TSA (جهة الختم الزمني).
NOT_TYPED = {"VERIFIED", "INTACT", "SIGNER", "NOT", "CONFIRMED", "INVALID"}
NOT_TYPED |= {"ENCRYPTED", "REPLACES", "TSA"}


def test_translations_keep_what_is_typed() -> None:
    """Option names, metavars, variables and commands quoted in a help text survive in Arabic."""
    texts = help_texts(tree())
    needs_translation(tree().help or "")
    typed = re.compile(r"--[a-z][a-z0-9-]*|\b[A-Z][A-Z_]{2,}\b|'custody [^']*'")
    lost: list[str] = []
    for text in texts:
        wanted = set(typed.findall(squeeze(text))) - NOT_TYPED
        got = set(typed.findall(squeeze(arabic(text))))
        lost.extend(f"{word} in {text[:50]!r}" for word in sorted(wanted - got))
    assert not lost, lost


def test_arabic_help_lists_every_command_by_its_name(cli: Callable[..., Result]) -> None:
    needs_translation(tree().help or "", "Commands", "Usage:")
    result = cli("--lang", "ar", "--help")
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith(arabic("Usage:") + " custody [OPTIONS] COMMAND [ARGS]...")
    assert squeeze(arabic(tree().help or "")) in squeeze(out)
    assert "Evidence preservation and chain of custody" not in out
    assert "Show this message and exit." not in out and "Usage:" not in out
    listed = {
        line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.strip()
    }
    for name in (*COMMAND_ORDER, *GROUP_ORDER, "--lang", "--version", "--help"):
        assert name in listed, f"{name} missing from custody --lang ar --help"


def test_every_command_help_is_arabic(cli: Callable[..., Result]) -> None:
    """``--help`` of every command and group, in Arabic: no English help sentence left."""
    root = tree()
    needs_translation(root.help or "")
    for path in command_paths(root):
        command: Any = root
        for word in path:
            command = command.commands[word]
        result = cli("--lang", "ar", *path, "--help")
        assert result.code == 0, (path, result.err)
        shown = squeeze(result.out)
        assert shown.startswith(f"{arabic('Usage:')} custody {' '.join(path)} "), path
        # The command's own help, opening the page after the usage line, is the Arabic one.
        assert squeeze(arabic(command.help or "")).split(" ")[0] in shown, path
        for text in help_texts(command):
            # Runs of four English words, unless the Arabic keeps them (an example, a command).
            for run in re.findall(r"[A-Za-z]+(?:[ ,]+[A-Za-z]+){3,}", squeeze(text)):
                if run not in squeeze(arabic(text)):
                    assert run not in shown, (path, run)


def test_path_options_keep_english_metavars(cli: Callable[..., Result]) -> None:
    """Click names a path option's value after its (translated) type; the help keeps PATH."""
    needs_translation("path", "Options")
    result = cli("--lang", "ar", "export", "--help")
    assert result.code == 0, result.err
    assert re.search(r"--out PATH\b", result.out), result.out
    assert arabic("path") not in result.out.split()


def test_usage_error_in_arabic_exits_2(cli: Callable[..., Result]) -> None:
    needs_translation("Error: {message}", "No such option: {name}", "Usage:")
    result = cli("--lang", "ar", "verify", "--no-such-option")
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(arabic("Usage:") + " custody verify [OPTIONS]")
    hint = arabic("Try '{command} {option}' for help.").format(
        command="custody verify", option="--help"
    )
    assert hint in result.err
    error = arabic("Error: {message}").format(
        message=arabic("No such option: {name}").format(name="--no-such-option")
    )
    assert error in result.err
    assert "No such option" not in result.err and "Error:" not in result.err


def test_missing_argument_in_arabic(cli: Callable[..., Result]) -> None:
    needs_translation("Missing argument", "Error: {message}")
    result = cli("--lang", "ar", "keys", "introduce")
    assert result.code == 2
    assert arabic("Missing argument") + " 'PUBLIC_KEY'." in result.err
    assert "Missing" not in result.err


def test_json_run_speaks_english_whatever_lang(cli: Callable[..., Result]) -> None:
    """With --json a run speaks English: its usage errors are the English ones, byte for byte."""
    english = cli("verify", "--json", "--no-such-option")
    arabic_run = cli("--lang", "ar", "verify", "--json", "--no-such-option")
    assert english.code == arabic_run.code == 2
    assert arabic_run.err == english.err
    assert "No such option: --no-such-option" in english.err
    assert not ARABIC.search(arabic_run.err)


def test_extraction_sees_messages_inside_f_strings() -> None:
    """Babel misses ``_()`` inside an f-string on this Python (Click's f"{_('Usage:')} ")."""
    spec = importlib.util.spec_from_file_location("i18n_script", REPO / "scripts" / "i18n.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    found = script._calls_in_f_strings(Path(click.__file__).parent, "formatting.py")
    assert "Usage:" in {message for _file, _line, message in found}
