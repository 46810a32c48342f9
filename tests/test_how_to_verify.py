"""HOW-TO-VERIFY.txt, followed literally by someone who does not have custody.

Every line of the file that starts with ``$ `` is run, in order, with bash, from the bundle
folder, in an environment with nothing of custody's: ``PATH=/usr/bin:/bin`` (Debian's own
python3, coreutils, openssl), a fresh empty HOME, no PYTHONPATH, and a check that
``import custody`` fails there. Each step's outcome is checked against what the file says
to expect (bagit's "is valid", "OK" lines, "ALL CHECKS PASSED", "Signature Verified
Successfully", the fingerprint, the checkpoint digest, "Verification: OK"). The bagit step
installs bagit from PyPI into the fresh venv exactly as written; when this machine has no
network, the test puts the bagit module it already has into that venv instead and says so.

The same bundle with one altered byte fails the file's own checks; a bundle without
timestamps says so in plain words.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import tomli_w
from tests.tsa import running_tsa

from conftest import SAMPLES, Result

COMMAND = re.compile(r"^   \$ (.+)$")
DEBIAN_PYTHON = Path("/usr/bin/python3")

pytestmark = pytest.mark.skipif(
    not DEBIAN_PYTHON.exists() or not shutil.which("openssl", path="/usr/bin:/bin"),
    reason="needs the system's /usr/bin/python3 and /usr/bin/openssl (a Debian machine)",
)


def _configure_tsa(root: Path, url: str) -> None:
    path = root / ".custody" / "config.toml"
    document = tomllib.loads(path.read_text())
    document["timestamps"] = {"tsa": [url], "min_success": 1, "timeout": 10.0}
    path.write_text(tomli_w.dumps(document))


def _make_bundle(
    tmp_path: Path, cli: Callable[..., Result], *, tsa_url: str | None
) -> tuple[Path, str]:
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    made = cli("keys", "generate", "--name", "Amina Haddad", "--json")
    assert made.code == 0, made.err
    media = root / "media"
    media.mkdir()
    for name in ("misc/odd", "field-dump-01/WhatsApp/Media/WhatsApp Images"):
        shutil.copytree(SAMPLES / name, media / name)
    assert cli("catalogue", media, "--root", root).code == 0
    if tsa_url is not None:
        _configure_tsa(root, tsa_url)
        # The checkpoint as a C2SP signed note too, which the bundle then carries.
        noted = cli("sign", "--format", "c2sp", "--out", tmp_path / "checkpoint.note",
                    "--root", root)  # fmt: skip
        assert noted.code == 0, noted.err
        stamped = cli("timestamp", "--root", root)
        assert stamped.code == 0, stamped.out + stamped.err
    else:
        assert cli("sign", "--root", root).code == 0
    out = tmp_path / "bundle"
    exported = cli("export", "--all", "--out", out, "--root", root)
    assert exported.code == 0, exported.err
    return out, str(made.json()["fingerprint"])


def _reader_env(home: Path, **extra: str) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


def _bash(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def _bagit_offline(home: Path) -> None:
    """No network here: give the fresh venv the bagit module this test environment has."""
    import bagit

    venv = home / "bagit-venv"
    site = next((venv / "lib").glob("python3*/site-packages"))
    shutil.copy(bagit.__file__, site / "bagit.py")
    script = venv / "bin" / "bagit.py"
    script.write_text(f"#!{venv}/bin/python\nimport bagit\nbagit.main()\n")
    script.chmod(0o755)


def test_every_step_of_how_to_verify_works_with_standard_tools_only(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    with running_tsa(tmp_path, "ok", include_chain=True) as tsa:
        bundle, fingerprint = _make_bundle(tmp_path, cli, tsa_url=tsa.url)
        root_pem = tmp_path / "tsa-root.pem"  # what the reader obtained from the authority
        shutil.copy(tsa.root_pem, root_pem)
    text = (bundle / "HOW-TO-VERIFY.txt").read_text()
    commands = [m.group(1) for line in text.splitlines() if (m := COMMAND.match(line))]
    assert len(commands) >= 12, text
    env = _reader_env(tmp_path / "reader-home", TSA_ROOT=str(root_pem))
    # The reader's machine has no custody: Debian's python3 cannot import it (asked from
    # their home folder: in the bundle folder, custody/ itself would be a namespace package).
    assert _bash("python3 -c 'import custody.cli'", Path(env["HOME"]), env).returncode != 0
    assert _bash("command -v custody", bundle, env).returncode != 0

    expected_digest = re.search(r"Expected: ([0-9a-f]{64})", text)
    assert expected_digest is not None, "step 5 names the checkpoint digest to expect"
    seen: set[str] = set()
    for command in commands:
        result = _bash(command, bundle, env)
        output = result.stdout + result.stderr
        if "pip install bagit" in command and result.returncode != 0:
            assert "Could not" in output or "Network" in output or "resolve" in output, output
            _bagit_offline(Path(env["HOME"]))
            seen.add("bagit-offline")
            continue
        assert result.returncode == 0, f"{command}\n{output}"
        if "bagit.py --validate" in command:
            assert "is valid" in output, output
            seen.add("bagit")
        elif command.startswith(("sha256sum -c", "sha512sum -c")):
            lines = result.stdout.splitlines()
            assert lines and all(line.endswith(": OK") for line in lines), output
            seen.add(command.split()[0])
        elif "verify-bundle.py" in command:
            assert result.stdout.rstrip().splitlines()[-1] == "ALL CHECKS PASSED", output
            assert "FAIL" not in result.stdout
            assert "signatures checked with openssl" in result.stdout
            assert " ".join(fingerprint[i : i + 4] for i in range(0, 64, 4)) in result.stdout
            seen.add("script")
        elif "pkeyutl -verify" in command:
            assert "Signature Verified Successfully" in output
            seen.add("signature")
        elif "tail -c 32 | sha256sum" in command:
            assert result.stdout.split()[0] == fingerprint
            seen.add("fingerprint")
        elif "records.jsonl | tr -d" in command and "sha256sum" in command:
            assert result.stdout.split()[0] == expected_digest.group(1)
            seen.add("checkpoint digest")
        elif "ts -reply" in command:
            assert "Time stamp:" in result.stdout
            seen.add("token read")
        elif "ts -verify" in command:
            assert "Verification: OK" in output
            seen.add("token verified")
        elif "custody/checkpoint.note" in command:
            expected = re.search(r"Expected: (\d+) and (\S+)\n", text)
            assert expected is not None, text
            assert result.stdout.splitlines() == [expected.group(1), expected.group(2)]
            index = json.loads((bundle / "custody" / "index.json").read_text())
            assert int(expected.group(1)) == index["checkpoint"]["tree_size"]
            assert base64.b64decode(expected.group(2)).hex() == index["checkpoint"]["root"]
            seen.add("note")
    assert seen >= {
        "sha256sum", "sha512sum", "script", "signature", "fingerprint", "checkpoint digest",
        "token read", "token verified", "note",
    }  # fmt: skip
    assert "bagit" in seen  # validated by bagit-python, installed as the file says
    # The file tells the reader what the format is, from inside the bundle.
    for name in ("format.md", "merkle.md", "proofs.md", "bundle.md", "long-term.md"):
        carried = (bundle / "custody" / "spec" / name).read_bytes()
        assert carried == (Path(__file__).parents[1] / "docs" / name).read_bytes()
    assert "ANOTHER CHANNEL" in text and "Amina Haddad" in text
    assert "golang.org/x/mod/sumdb/note" in text and "Witnesses: none" not in text


def test_an_altered_byte_fails_the_files_own_checks(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    bundle, _ = _make_bundle(tmp_path, cli, tsa_url=None)
    victim = next(p for p in (bundle / "data").rglob("*") if p.is_file())
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    env = _reader_env(tmp_path / "reader-home")
    script = _bash("python3 custody/verify-bundle.py", bundle, env)
    assert script.returncode == 1
    assert script.stdout.rstrip().splitlines()[-1].startswith("SOME CHECKS FAILED")
    failing = [line for line in script.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1 and victim.name in failing[0], script.stdout
    assert _bash("sha256sum -c manifest-sha256.txt", bundle, env).returncode != 0
    # An altered record line is caught by its proof and its signature.
    records = bundle / "custody" / "records.jsonl"
    records.write_bytes(records.read_bytes().replace(b'"size":', b'"size":1', 1))
    again = _bash("python3 custody/verify-bundle.py", bundle, env)
    assert again.returncode == 1
    assert any("bad for record(s)" in line for line in again.stdout.splitlines())


def test_a_bundle_without_timestamps_says_so_plainly(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    bundle, _ = _make_bundle(tmp_path, cli, tsa_url=None)
    text = (bundle / "HOW-TO-VERIFY.txt").read_text()
    assert "THIS BUNDLE CARRIES NO TRUSTED TIMESTAMP" in text
    assert "custody/timestamps/" not in text.split("5. When")[1].split("\n6. ")[0]
    # Nor does it point at evidence records, cosignatures or a note it does not carry.
    assert "NOT YET IN THIS BUNDLE" in text and "Witnesses: none" in text
    for absent in ("custody/evidence/", "custody/cosignatures/", "custody/checkpoint.note"):
        assert absent not in text
    script = _bash("python3 custody/verify-bundle.py", bundle, _reader_env(tmp_path / "h"))
    assert script.returncode == 0
    assert "NOTE this bundle carries no trusted timestamp" in script.stdout


def test_the_script_is_standard_library_only() -> None:
    source = (Path(__file__).parents[1] / "src" / "custody" / "delivery" / "standalone.py")
    imported = set(re.findall(r"^\s*(?:import|from) ([a-z_0-9.]+)", source.read_text(), re.M))
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names)
    assert os.access(source, os.R_OK)
