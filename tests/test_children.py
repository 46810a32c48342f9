"""Every child process custody starts gets an explicit minimal environment, no secret.

Issue 15, points 13 and 14: ``custody report`` started ffmpeg, exiftool and Chromium with
the whole environment (``CUSTODY_PASSPHRASE`` and ``PGPASSWORD`` included, readable in
``/proc/<pid>/environ`` for as long as they ran), and Chromium wrote its crash database into
the user's ``~/.config/chromium``.

The tools are replaced on PATH by wrappers that copy ``/proc/self/environ`` - exactly what
custody passed to ``execve``, before any shell adds to it - and then run the real tool, so
every command still does its real work. Each command that starts a child is run as a real
process with secrets and a canary in its environment; every environment recorded must hold
only the variables ``custody.system.children.child_env`` gives and no secret value, and at
least one child of each expected tool must have been recorded (the test cannot pass by
starting nothing). The user's HOME must stay empty. (GnuPG, started by the ProofMode
reader, is checked the same way in tests/test_proofmode.py.)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import PASSPHRASE, run_custody

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "field-dump"
PHOTO = SAMPLES / "field-dump-01" / "DCIM" / "Camera" / "PXL_20231006_225351.jpg"
ALLOWED = {"PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR", "GNUPGHOME"}
SECRETS = {
    "CUSTODY_PASSPHRASE": PASSPHRASE,
    "PGPASSWORD": "pg-password-5e0c8",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-93fe1",
    "CUSTODY_TEST_CANARY": "canary-55aa7",
}
TOOLS = ("exiftool", "ffmpeg", "chromium", "gpg")


def make_fakes(base: Path) -> tuple[Path, Path]:
    """Wrappers named like the tools: record the environment, then run the real tool."""
    bin_dir, logs = base / "fake-bin", base / "child-env"
    bin_dir.mkdir()
    logs.mkdir()
    for name in TOOLS:
        real = shutil.which(name)
        if real is None:
            continue
        wrapper = bin_dir / name
        wrapper.write_text(
            f"#!/bin/sh\n/bin/cat /proc/$$/environ > '{logs}/{name}.'$$\nexec '{real}' \"$@\"\n"
        )
        wrapper.chmod(0o755)
    return bin_dir, logs


def recorded(logs: Path) -> dict[str, list[dict[str, str]]]:
    """{tool: [environment of each child]} recorded since the folder was last emptied."""
    found: dict[str, list[dict[str, str]]] = {}
    for entry in sorted(logs.iterdir()):
        raw = entry.read_bytes()
        pairs = [item.split(b"=", 1) for item in raw.split(b"\0") if item]
        env = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in pairs}
        found.setdefault(entry.name.split(".")[0], []).append(env)
        entry.unlink()
    return found


def assert_minimal(step: str, children: dict[str, list[dict[str, str]]]) -> None:
    for tool, envs in children.items():
        for env in envs:
            extra = set(env) - ALLOWED
            assert not extra, f"{step}: {tool} inherited {sorted(extra)}"
            for name, value in env.items():
                for secret in SECRETS.values():
                    assert secret not in value, f"{step}: {tool} got a secret in {name}"


needs_tools = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("exiftool", "ffmpeg", "chromium")),
    reason="needs exiftool, ffmpeg and chromium (scripts/setup.sh installs them)",
)


@needs_tools
def test_every_command_that_starts_a_child_gives_it_the_minimal_environment(
    tmp_path: Path,
) -> None:
    bin_dir, logs = make_fakes(tmp_path)
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    base_env = {
        **SECRETS,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(user_home),
        "CUSTODY_HOME": str(tmp_path / "alice-home"),
    }
    root, card, lawyer = tmp_path / "root", tmp_path / "card", tmp_path / "chambers"
    (root / "media").mkdir(parents=True)
    shutil.copy2(PHOTO, root / "media" / PHOTO.name)
    card.mkdir()
    shutil.copy2(PHOTO, card / "again.jpg")

    def run(step: str, *args: str | os.PathLike[str], expect: set[str] = frozenset(),
            env: dict[str, str] | None = None) -> None:  # fmt: skip
        result = run_custody(*args, env={**base_env, **(env or {})})
        assert result.returncode == 0, (step, result.stderr)
        children = recorded(logs)
        assert expect <= set(children), f"{step}: expected {expect}, saw {set(children)}"
        assert_minimal(step, children)

    run("init", "init", root)
    run("keys", "keys", "generate", "--name", "alice")
    run("catalogue", "catalogue", root / "media", "--root", root, expect={"exiftool"})
    # --again: the card holds the photo catalogued above, which ingest would otherwise
    # recognise as already in the root and neither copy nor read with exiftool (main).
    run("ingest", "ingest", card, "--into", "cards", "--again", "--root", root,
        expect={"exiftool"})  # fmt: skip
    (root / "work").mkdir()
    (root / "work" / "still.jpg").write_bytes(PHOTO.read_bytes() + b"\0")
    run("derive", "event", "derive", f"media/{PHOTO.name}", "--output", root / "work" / "still.jpg",
        "--action", "still", "--root", root, expect={"exiftool"})  # fmt: skip
    run("sign", "sign", "--root", root)
    run("report pdf", "report", root, "--out", tmp_path / "r.pdf",
        expect={"ffmpeg", "chromium"})  # fmt: skip
    run("export", "export", "--all", "--out", tmp_path / "bundle", "--root", root)
    run("keys export", "keys", "export", "alice", "--out", tmp_path / "alice.pem")
    lawyer_env = {"CUSTODY_HOME": str(tmp_path / "lawyer-home")}
    run("lawyer init", "init", lawyer, env=lawyer_env)
    run("lawyer keys", "keys", "generate", "--name", "counsel", env=lawyer_env)
    run("import", "import", tmp_path / "bundle", "--root", lawyer,
        "--trusted-key", tmp_path / "alice.pem", expect={"exiftool"}, env=lawyer_env)  # fmt: skip
    run("bundle report", "report", tmp_path / "bundle", "--trusted-key", tmp_path / "alice.pem",
        "--out", tmp_path / "b.html", expect={"ffmpeg"}, env=lawyer_env)  # fmt: skip
    # Point 14: nothing of any child (Chromium's profile, crash database, NSS store, caches)
    # was written into the user's own HOME.
    assert sorted(p.relative_to(user_home).as_posix() for p in user_home.rglob("*")) == []


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_a_pdf_leaves_nothing_in_the_users_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chromium used to create ~/.config/chromium/Crash Reports (and ~/.cache) in the
    user's own HOME although its profile was a temporary folder."""
    from custody.delivery.report.pdf import write_pdf

    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    write_pdf("<html><body><p>report</p></body></html>", tmp_path / "report.pdf")
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []


def test_capture_children_get_the_minimal_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The capture's Chromium worker and yt-dlp are started with ``minimal_env``."""
    from custody.acquisition.capture.browser import minimal_env

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    env = minimal_env(tmp_path)
    assert_minimal("capture", {"capture": [env]})
    assert env["HOME"] == env["TMPDIR"] == str(tmp_path)


def test_no_caller_may_pass_a_secret_to_a_child() -> None:
    from custody.system.children import child_env

    with pytest.raises(ValueError, match="never passed"):
        child_env(extra={"PGPASSWORD": "x"})
    env = child_env(extra={"GNUPGHOME": "/nonexistent"})
    assert set(env) <= ALLOWED and all(isinstance(v, str) for v in env.values())
