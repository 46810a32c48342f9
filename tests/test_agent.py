"""The signing agent (``custody agent``): a passphrase typed once, keys never on disk.

Real processes throughout: the agent is started by the CLI, signing commands run as new
processes with no passphrase at all, the socket is inspected with ``stat``, a connection
from another user is made with ``setpriv`` (when the test runs as root) and must get no
answer, and after ``agent stop`` the commands ask for the passphrase again. The agent's
memory is checked not to be readable by another process of the same user (``PR_SET_
DUMPABLE`` 0 makes /proc/PID/mem unreadable without CAP_SYS_PTRACE), and no file the run
leaves anywhere under the test's folders holds the key's seed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PASSPHRASE, SAMPLES


def custody(*args: str | os.PathLike[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "custody", *map(os.fspath, args)],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def agent_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("CUSTODY_PASSPHRASE", "CUSTODY_ROOT")},
        "CUSTODY_HOME": str(tmp_path / "home"),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    with_pass = {**env, "CUSTODY_PASSPHRASE": PASSPHRASE}
    assert custody("keys", "generate", "--name", "Amina Haddad", env=with_pass).returncode == 0
    root = tmp_path / "evidence"
    assert custody("init", root, env=env).returncode == 0
    shutil.copytree(SAMPLES / "misc" / "odd", root / "media")
    yield {**env, "ROOT": str(root)}
    custody("agent", "stop", env=env)


def test_passphrase_typed_once_then_every_signing_command_uses_the_agent(
    agent_env: dict[str, str],
) -> None:
    env, root = agent_env, agent_env["ROOT"]
    # Without the agent and without a passphrase, signing is refused.
    refused = custody("catalogue", Path(root) / "media", "--root", root, env=env)
    assert refused.returncode == 5 and "passphrase" in refused.stderr
    started = custody("agent", "start", "--timeout", "10m", "--json",
                      env={**env, "CUSTODY_PASSPHRASE": PASSPHRASE})  # fmt: skip
    assert started.returncode == 0, started.stderr
    status = json.loads(started.stdout)
    assert status["running"] and status["keys"][0]["holder"] == "Amina Haddad"
    assert 540 < status["seconds_left"] <= 600
    socket_path = Path(env["XDG_RUNTIME_DIR"]) / "custody"
    (sock,) = list(socket_path.iterdir())
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(socket_path).st_mode) == 0o700
    # Signing commands, in new processes, with no passphrase anywhere.
    for argv in (("catalogue", Path(root) / "media"), ("sign", "--statement", "end of day"),
                 ("event", "note", "media", "--text", "seen")):  # fmt: skip
        done = custody(*argv, "--root", root, env=env)
        assert done.returncode == 0, (argv, done.stderr)
    verified = custody("verify", "--root", root, env=env)
    assert verified.returncode == 0, verified.stdout
    # Stopped: the keys are gone, and commands ask for the passphrase again.
    assert custody("agent", "stop", env=env).returncode == 0
    assert not sock.exists()
    again = custody("sign", "--root", root, env=env)
    assert again.returncode == 5 and "passphrase" in again.stderr


def test_the_agent_answers_only_its_own_user_and_its_memory_is_not_readable(
    agent_env: dict[str, str], tmp_path: Path
) -> None:
    # A runtime folder another user may walk through (mode 0711, like /run/user/UID's
    # parent): only the modes of the agent's own folder and socket keep them out.
    runtime = Path(tempfile.mkdtemp(prefix="custody-agent-test-", dir="/tmp"))
    os.chmod(runtime, 0o711)
    env = {**agent_env, "XDG_RUNTIME_DIR": str(runtime)}
    try:
        _check_isolation(env, tmp_path)
    finally:
        custody("agent", "stop", env=env)
        shutil.rmtree(runtime, ignore_errors=True)


def _check_isolation(env: dict[str, str], tmp_path: Path) -> None:
    started = custody("agent", "start", "--json", env={**env, "CUSTODY_PASSPHRASE": PASSPHRASE})
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    # The process is not dumpable: another process of the same user cannot read its memory
    # (checked when not running as root, for whom CAP_SYS_PTRACE opens it anyway).
    dumpable = subprocess.run(
        [sys.executable, "-c", f"import os; os.open('/proc/{pid}/mem', os.O_RDONLY)"],
        capture_output=True, text=True,
    )  # fmt: skip
    if os.getuid() != 0:
        assert dumpable.returncode != 0  # EACCES: PR_SET_DUMPABLE is 0
    (sock,) = list((Path(env["XDG_RUNTIME_DIR"]) / "custody").iterdir())
    setpriv = shutil.which("setpriv")
    if os.getuid() == 0 and setpriv:
        # Another user (nobody). The folder and socket modes keep them out...
        probe = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX); s.settimeout(5)\n"
            "try:\n s.connect(sys.argv[1])\n"
            "except PermissionError:\n print('refused by the file modes'); sys.exit()\n"
            "try:\n s.sendall(b'{\"op\": \"list\"}\\n'); print(repr(s.recv(100)))\n"
            # The agent closes without a word: seen as a reset, or as a broken pipe when it
            # closed before the request was sent.
            "except (ConnectionResetError, BrokenPipeError):\n print(repr(b''))\n"
        )
        argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                sys.executable, "-c", probe, str(sock)]  # fmt: skip
        first = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert first.stdout.strip() == "refused by the file modes", first.stdout + first.stderr
        # ...and with the socket made reachable, the agent checks SO_PEERCRED and says
        # nothing at all.
        os.chmod(sock.parent, 0o711)
        os.chmod(sock, 0o666)
        other = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert other.stdout.strip() == "b''", other.stdout + other.stderr
        os.chmod(sock, 0o600)
        os.chmod(sock.parent, 0o700)
    # This user gets an answer, and the client refuses a socket folder others could enter.
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(sock))
    client.sendall(b'{"op": "sign", "fingerprint": "00", "message": ""}\n')
    assert b"does not hold that key" in client.recv(200)
    client.close()
    # No file anywhere under the test's folders holds the seed (it only went through a pipe).
    from custody.keys.keyring import Keyring

    key = Keyring(Path(env["CUSTODY_HOME"]) / "keys").list()[0].unlock(PASSPHRASE)
    from cryptography.hazmat.primitives import serialization

    seed = key._private.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    import base64

    forms = [seed, seed.hex().encode(), base64.b64encode(seed)]
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert not any(f in data for f in forms), path


def test_agent_timeout_and_usage(agent_env: dict[str, str]) -> None:
    env = agent_env
    assert custody("agent", "start", "--timeout", "5s", env=env).returncode == 2
    assert custody("agent", "start", "--timeout", "forever", env=env).returncode == 2
    stopped = custody("agent", "stop", env=env)
    assert stopped.returncode == 0 and "No agent is running" in stopped.stdout
    status = custody("agent", "status", "--json", env=env)
    assert json.loads(status.stdout) == {"running": False}
