"""README.md's "Everyday use" block, run as written on the shipped samples.

The block is taken from README.md itself, and run line by line by bash with ``set -e``
after one substitution only: its example places (``/cases``, ``/media/sdcard``,
``/mnt/nas``) become folders of this test. ``/media/sdcard`` holds the sample phone dump
(``samples/field-dump/field-dump-01``), ``uploads/`` a sample file already inside the root,
and timestamps come from the loopback authority (tests/tsa.py) instead of the public ones.
``custody`` is the real console command, found on PATH as a reader's shell would.
Every path the README names must exist where it says, and every command must succeed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w
from tests.tsa import running_tsa

from conftest import PASSPHRASE, REPO, SAMPLES

BLOCK = re.compile(r"## Everyday use.*?```sh\n(.*?)```", re.S)


def readme_block() -> list[str]:
    match = BLOCK.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md has an 'Everyday use' sh block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_everyday_block_runs_as_written(tmp_path: Path) -> None:
    lines = readme_block()
    places = {
        "/cases": tmp_path / "cases",
        "/media/sdcard": tmp_path / "media" / "sdcard",
        "/mnt/nas": tmp_path / "mnt" / "nas",
    }
    shutil.copytree(SAMPLES / "field-dump-01", places["/media/sdcard"])
    places["/cases"].mkdir()
    places["/mnt/nas"].mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "custody"
    source = Path(__file__).resolve().parents[1] / "src"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{source}" exec "{sys.executable}" -m custody "$@"\n'
    )
    wrapper.chmod(0o755)
    script = []
    for line in lines:
        for place, real in places.items():
            line = line.replace(place + "/", f"{real}/").replace(place + " ", f"{real} ")
        script.append(line)
        if line.startswith("custody init "):
            # Between init and the rest: a file already inside the root, and the loopback
            # timestamp authority instead of the public ones (no network in tests).
            script.append('mkdir -p "$ROOT/uploads" && cp "$UPLOAD" "$ROOT/uploads/"')
            script.append('"$PYTHON" "$CONFIGURE" "$ROOT" "$TSA_URL"')
    configure = tmp_path / "configure.py"
    configure.write_text(
        "import sys, tomllib, tomli_w, pathlib\n"
        "p = pathlib.Path(sys.argv[1]) / '.custody' / 'config.toml'\n"
        "d = tomllib.loads(p.read_text())\n"
        "d['timestamps'] = {'tsa': [sys.argv[2]], 'min_success': 1, 'timeout': 10.0}\n"
        "p.write_text(tomli_w.dumps(d))\n"
    )
    assert tomllib and tomli_w  # the configure script uses them from this interpreter
    upload = next((SAMPLES / "misc" / "odd").iterdir())
    with running_tsa(tmp_path, "ok", include_chain=True) as tsa:
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("CUSTODY_ROOT", "PYTHONPATH")},
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "CUSTODY_HOME": str(tmp_path / "home"),
            "CUSTODY_PASSPHRASE": PASSPHRASE,
            "ROOT": str(places["/cases"] / "case-001"),
            "UPLOAD": str(upload),
            "PYTHON": sys.executable,
            "CONFIGURE": str(configure),
            "TSA_URL": tsa.url,
        }
        run = subprocess.run(
            ["/bin/bash", "-e", "-x", "-c", "\n".join(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert run.returncode == 0, run.stderr[-4000:]
    root = places["/cases"] / "case-001"
    video = root / "card-01" / "sdcard" / "DCIM" / "Camera" / "VID_20201023_202729.mp4"
    assert video.is_file()  # where the README says ingest put it
    cases = places["/cases"]
    assert (cases / "bundle-001.zip").is_file() and (cases / "report.pdf").is_file()
    assert (cases / "case-001-checkpoint.txt").is_file() and (cases / "proof.json").is_file()
    assert (places["/mnt/nas"] / "case-001" / ".custody" / "ledger.jsonl").is_file()
    # The bundle has only the tagged card, and nothing of the collector's identity.
    bundle = cases / "bundle-001"
    assert (bundle / "data" / "card-01" / "sdcard").is_dir()
    assert not (bundle / "data" / "uploads").exists()
    assert not (bundle / "custody" / "disclosures.jsonl").exists()
    assert str(places["/media/sdcard"]).encode() not in b"".join(
        p.read_bytes() for p in bundle.rglob("*") if p.is_file() and "data" not in p.parts
    )


def test_setup_puts_custody_on_path_for_a_new_login_shell(tmp_path: Path) -> None:
    """Issue 17 point 9: after set-up, a new terminal finds ``custody``. The set-up's PATH
    step (scripts/link-path.sh) runs with a fresh HOME holding Debian's own ~/.profile
    (/etc/skel), then a login shell with a bare PATH runs ``custody --version``."""
    skel = Path("/etc/skel/.profile")
    if not skel.is_file():
        pytest.skip("no /etc/skel/.profile: not a Debian or Ubuntu system")
    if not (REPO / ".venv" / "bin" / "custody").exists():
        pytest.skip("no .venv/bin/custody: run scripts/setup.sh first")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(skel, home / ".profile")
    bare = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    linked = subprocess.run(["bash", str(REPO / "scripts" / "link-path.sh")], env=bare,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert linked.returncode == 0, linked.stderr
    # This shell had no custody on PATH, so the step says what to type in it.
    assert 'export PATH="' in linked.stdout and "new terminals find it" in linked.stdout
    link = home / ".local" / "bin" / "custody"
    assert link.is_symlink() and link.resolve() == (REPO / ".venv/bin/custody").resolve()
    login = subprocess.run(["bash", "-lc", "command -v custody && custody --version"],
                           env=bare, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert login.returncode == 0, login.stderr
    assert login.stdout.splitlines()[0] == str(link)
    assert login.stdout.splitlines()[1].startswith("custody ")
    # A file of the user's own at that place is left alone.
    link.unlink()
    link.write_text("#!/bin/sh\necho mine\n")
    again = subprocess.run(["bash", str(REPO / "scripts" / "link-path.sh")], env=bare,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert again.returncode == 0 and "left alone" in again.stdout
    assert link.read_text() == "#!/bin/sh\necho mine\n"
