"""The message catalogs and the choice of language (custody.i18n, custody.cli.language).

The catalogs are checked by GNU ``msgfmt --check`` (an implementation independent of the
Babel tooling that writes them) and by ``scripts/i18n.py check``: the template matches the
code and the command tree as they are now, every message has an Arabic translation with
the same ``{fields}``, and the compiled ``.mo`` is the one the ``.po`` makes.
"""

from __future__ import annotations

import gettext
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

LOCALE = REPO / "src" / "custody" / "locale"
ARABIC_PO = LOCALE / "ar" / "LC_MESSAGES" / "custody.po"


def _i18n_script() -> object:
    spec = importlib.util.spec_from_file_location("i18n_script", REPO / "scripts" / "i18n.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_msgfmt_accepts_the_arabic_catalog() -> None:
    done = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(ARABIC_PO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # "N translated messages." and nothing fuzzy or untranslated.
    assert "fuzzy" not in done.stderr and "untranslated" not in done.stderr, done.stderr


def test_the_catalogs_are_complete_and_in_step_with_the_code() -> None:
    script = _i18n_script()
    wrong = script.problems()  # type: ignore[attr-defined]
    assert not wrong, "\n".join(wrong[:60]) + f"\n({len(wrong)} in all; run scripts/i18n.py all)"


def test_arabic_has_six_plural_forms_and_uses_them() -> None:
    catalog = gettext.GNUTranslations((LOCALE / "ar" / "LC_MESSAGES" / "custody.mo").open("rb"))
    assert catalog.info()["plural-forms"].startswith("nplurals=6;")
    # zero, one, two, few (3-10), many (11-99), other (100-102)
    plural = catalog.plural  # type: ignore[attr-defined]
    assert [plural(n) for n in (0, 1, 2, 3, 10, 11, 99, 100, 102, 103)] == [
        0, 1, 2, 3, 3, 4, 4, 5, 5, 3,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "en"),
        ({"LANG": "ar_SY.UTF-8"}, "ar"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LC_ALL": "C", "LANG": "ar_SY.UTF-8"}, "en"),  # the first locale variable set decides
        ({"LANGUAGE": "fr:ar", "LANG": "en_GB.UTF-8"}, "ar"),  # the first one we have
        ({"CUSTODY_LANG": "ar", "LC_ALL": "en_US.UTF-8"}, "ar"),  # custody's own comes first
        ({"CUSTODY_LANG": "de", "LANG": "ar_EG.UTF-8"}, "ar"),  # one we lack is passed over
        ({"LC_MESSAGES": "ar_LB.UTF-8", "LANG": "en_US.UTF-8"}, "ar"),
    ],
)
def test_the_language_comes_from_the_environment_as_gettext_reads_it(
    environ: dict[str, str], expected: str
) -> None:
    from custody.i18n import language_from_environment

    assert language_from_environment(environ) == expected


def test_the_command_line_wins_and_json_speaks_english() -> None:
    from custody.cli.language import choose

    arabic = {"LANG": "ar_SY.UTF-8"}
    assert choose(["verify"], arabic) == "ar"
    assert choose(["--lang", "en", "verify"], arabic) == "en"
    assert choose(["report", "b", "--lang=ar,en"], {}) == "ar"
    assert choose(["--lang", "ar", "verify", "--json"], arabic) == "en"
    assert choose(["hash", "--", "--json", "--lang"], arabic) == "ar"  # file names, not options


def _custody(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "custody", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "src"), **(env or {})},
        timeout=120,
        check=False,
    )


def test_a_language_custody_does_not_have_is_a_usage_error(tmp_path: Path) -> None:
    done = _custody("--lang", "xx", "verify", "--root", str(tmp_path))
    assert done.returncode == 2
    assert "custody speaks en, ar" in done.stderr


def test_arabic_help_and_messages_through_the_environment(tmp_path: Path) -> None:
    done = _custody("verify", "--root", str(tmp_path / "none"), env={"LANG": "ar_SY.UTF-8"})
    english = _custody("verify", "--root", str(tmp_path / "none"), env={"LANG": "C.UTF-8"})
    assert done.returncode == english.returncode != 0
    assert done.stderr != english.stderr
    assert any("\u0600" <= ch <= "\u06ff" for ch in done.stderr), done.stderr
