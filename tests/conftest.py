"""Shared fixtures: real evidence roots, real keys, the real CLI, real media.

Media come from the full corpus at ``../shared/corpus`` when it is beside the project,
else from the subset shipped in ``samples/field-dump`` (tests that need the full corpus
use ``needs_corpus`` and skip with a clear reason).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# Property tests explore fixed example sequences by default, so a landing never depends on
# the luck of a draw; CUSTODY_FUZZ=1 lets them roam (and finds new cases to pin).
settings.register_profile("pinned", derandomize=True, print_blob=True)
settings.register_profile("roaming", derandomize=False, print_blob=True)
settings.load_profile("roaming" if os.environ.get("CUSTODY_FUZZ") else "pinned")
SHARED_CORPUS = REPO.parent / "shared" / "corpus"
SAMPLES = REPO / "samples" / "field-dump"
SCHEMAS = REPO / "schemas"
PASSPHRASE = "correct horse battery staple"

needs_corpus = pytest.mark.skipif(
    not SHARED_CORPUS.is_dir(),
    reason="needs the full media corpus at ../shared/corpus (not shipped with the project)",
)


def media_source() -> Path:
    """The full corpus if present, else the shipped sample subset."""
    return SHARED_CORPUS if SHARED_CORPUS.is_dir() else SAMPLES


def copy_media(source: Path, dest: Path) -> Path:
    """Copy a media tree keeping mtimes and exact name bytes; skip the corpus's docs."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("PROVENANCE.md", "MANIFEST.json"))
    for folder, dirs, _files in os.walk(dest):
        os.chmod(folder, 0o755)
        for d in dirs:
            os.chmod(os.path.join(folder, d), 0o755)
    for folder, _dirs, files in os.walk(dest):
        for f in files:
            os.chmod(os.path.join(folder, f), 0o644)
    return dest


def snapshot(tree: Path) -> dict[bytes, tuple[int, int, bytes]]:
    """(size, mtime_ns, sha256) of every file, keyed by exact relative name bytes."""
    import hashlib

    state: dict[bytes, tuple[int, int, bytes]] = {}
    base = os.fsencode(tree)
    for folder, _dirs, files in os.walk(base):
        for name in files:
            full = os.path.join(folder, name)
            st = os.lstat(full)
            with open(full, "rb") as handle:
                digest = hashlib.sha256(handle.read()).digest()
            state[os.path.relpath(full, base)] = (st.st_size, st.st_mtime_ns, digest)
    return state


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def _english_after_each_test() -> Iterator[None]:
    """A test that ran the CLI with ``--lang ar`` in this process must not leave the next
    test's library calls speaking Arabic: the language is process state (custody.i18n)."""
    yield
    from custody import i18n

    i18n.set_language(i18n.SOURCE_LANGUAGE)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private keyring and a passphrase for automation; no inherited root."""
    home = tmp_path / "custody-home"
    monkeypatch.setenv("CUSTODY_HOME", str(home))
    monkeypatch.setenv("CUSTODY_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("CUSTODY_ROOT", raising=False)
    monkeypatch.delenv("CUSTODY_DEBUG", raising=False)
    return home


@pytest.fixture
def cli(env: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the CLI in-process, as the console script would, capturing its output."""
    from custody.cli.app import run

    def invoke(*args: str | os.PathLike[str]) -> Result:
        capsys.readouterr()
        code = run([os.fspath(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def run_custody(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script in a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "custody", *[os.fspath(a) for a in args]],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def evidence(tmp_path: Path, cli: Callable[..., Result]) -> Path:
    """An initialised evidence root with one key ('alice') in the keyring."""
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    return root


@pytest.fixture
def catalogued(evidence: Path, cli: Callable[..., Result]) -> Iterator[Path]:
    """An evidence root holding a copy of the media, catalogued once."""
    copy_media(media_source(), evidence / "media")
    result = cli("catalogue", evidence / "media", "--root", evidence, "--collector", "Alice")
    assert result.code == 0, result.err
    yield evidence


def validate(document: Any, schema_name: str) -> None:
    """Validate a JSON document against one of the schemas in schemas/."""
    import jsonschema

    schema = json.loads((SCHEMAS / schema_name).read_text())
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
