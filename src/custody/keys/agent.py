"""The signing agent: unlocked keys held in memory, so a passphrase is typed once a day.

``custody agent start`` unlocks the keys of the keyring (one Argon2id derivation each)
and hands their 32-byte seeds, through a pipe, to a new process (``python -m
custody.keys.agent``) that keeps them in memory only, for a limited time (default 8 hours).
Every command that signs asks it through a Unix socket before asking for a passphrase
(``agent_signer``); ``custody agent stop`` or the end of the time ends the process and its
memory with it. The design follows ssh-agent and gpg-agent:

* **Reachable only by this user.** The socket lives in a folder only this user may enter
  (``$XDG_RUNTIME_DIR/custody`` or ``/tmp/custody-<uid>``, mode 0700, owner checked) and is
  itself created mode 0600 (umask 0177 before ``bind``). On every connection the agent
  reads the peer's credentials with ``SO_PEERCRED`` (socket(7)) and closes the connection
  unless its uid is the agent's own; the client checks the agent's uid the same way.
* **No key touches disk unencrypted.** The seeds go from the unlocking process to the agent
  through a pipe, are never written to a file, and the agent marks itself non-dumpable
  (``prctl(PR_SET_DUMPABLE, 0)``: no core file, and other processes of the same user cannot
  ptrace it to read its memory). A swap partition could still receive its pages: use
  encrypted swap (docs/robustness.md).
* **It signs, it never gives keys out.** The protocol (one JSON object per line) has three
  requests: ``list`` (the public halves held and the expiry time), ``sign`` (a fingerprint
  and a message, answered with the Ed25519 signature) and ``stop``.

Imports: ``custody.keys.keyring``, ``custody.encoding``, ``custody.errors``, ``custody.home``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody.encoding import b64decode, b64encode
from custody.errors import SigningKeyError, StorageError, UsageError
from custody.home import keyring_dir
from custody.i18n import N_, _
from custody.keys.keyring import KeyFile, PublicKey, SigningKey

DEFAULT_TIMEOUT = 8 * 3600
MAX_TIMEOUT = 7 * 24 * 3600
MAX_LINE = 64 * 1024 * 1024  # a signed item record with a large metadata block
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
PR_SET_DUMPABLE = 4


# --- where the agent listens ----------------------------------------------------------------


def agent_dir() -> Path:
    """A folder only this user may enter: XDG_RUNTIME_DIR (a per-user tmpfs) when set."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "custody"
    return Path(f"/tmp/custody-{os.getuid()}")


def socket_path(keyring: Path | None = None) -> Path:
    """One agent per keyring: the socket is named after the keyring folder."""
    folder = (keyring or keyring_dir()).resolve()
    tag = hashlib.sha256(os.fsencode(folder)).hexdigest()[:16]
    return agent_dir() / f"agent-{tag}.sock"


def _private_dir(path: Path, *, create: bool) -> None:
    """Refuse a socket folder someone else owns or may enter (a planted socket)."""
    if create:
        try:
            path.mkdir(mode=0o700, parents=False, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                _("cannot create {path}: {strerror}").format(path=path, strerror=exc.strerror)
            ) from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise SigningKeyError(
            _(
                "{path} is not a private folder of this user (owner {uid}, mode "
                "{mode:o}); the agent is not used"
            ).format(path=path, uid=st.st_uid, mode=stat.S_IMODE(st.st_mode))
        )


def parse_duration(text: str) -> int:
    """'8h', '30m', '90s', '1d' or a number of seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    factor = units.get(value[-1:], 0) if value else 0
    number = value[:-1] if factor else value
    try:
        seconds = float(number) * (factor or 1)
    except ValueError:
        raise UsageError(
            _("--timeout {text!r}: say e.g. 8h, 30m or 3600").format(text=text)
        ) from None
    if not 60 <= seconds <= MAX_TIMEOUT:
        raise UsageError(
            _("--timeout {text!r}: between one minute and {days} days").format(
                text=text, days=MAX_TIMEOUT // 86400
            )
        )
    return int(seconds)


# --- the client side --------------------------------------------------------------------------


class AgentClient:
    """A connection to this user's agent; every call is one request and one answer."""

    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        self.path = path
        _private_dir(path.parent, create=False)
        st = os.lstat(path)
        if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid():
            raise SigningKeyError(_("{path} is not this user's agent socket").format(path=path))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(os.fspath(path))
        except OSError as exc:
            self.sock.close()
            raise SigningKeyError(
                _("the agent at {path} does not answer: {strerror}").format(
                    path=path, strerror=exc.strerror
                )
            ) from None
        _pid, uid, _gid = _PEERCRED.unpack(
            self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
        if uid != os.getuid():
            self.close()
            raise SigningKeyError(
                _("the process behind {path} belongs to uid {uid}, not you").format(
                    path=path, uid=uid
                )
            )
        self.reader = self.sock.makefile("rb")
        self.lock = threading.Lock()

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            try:
                self.sock.sendall(json.dumps(request).encode() + b"\n")
                line = self.reader.readline(MAX_LINE)
            except OSError as exc:
                raise SigningKeyError(
                    _("the agent stopped answering: {why}").format(why=exc)
                ) from None
        if not line:
            raise SigningKeyError(
                _("the agent closed the connection (stopped, or its time ran out)")
            )
        answer = json.loads(line)
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise SigningKeyError(
                _("the agent refused: {why}").format(
                    why=_(error) if error else _("no reason given")
                )
            )
        return answer

    def status(self) -> dict[str, Any]:
        return self.call({"op": "list"})

    def sign(self, fingerprint: str, message: bytes) -> bytes:
        answer = self.call(
            {"op": "sign", "fingerprint": fingerprint, "message": b64encode(message)}
        )
        return b64decode(str(answer.get("signature")), "signature")

    def stop(self) -> None:
        self.call({"op": "stop"})

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass(frozen=True)
class _AgentPrivateKey:
    """Stands where an Ed25519 private key would: ``sign`` asks the agent."""

    client: AgentClient
    fingerprint: str

    def sign(self, message: bytes) -> bytes:
        return self.client.sign(self.fingerprint, message)


def agent_signer(key_file: KeyFile) -> SigningKey | None:
    """The key, signing through this user's agent, if an agent holds it; else None.

    A missing, stale or foreign socket means no agent: the caller asks for the passphrase.
    """
    path = socket_path()
    if not os.path.exists(path):
        return None
    try:
        client = AgentClient(path)
        held = client.status().get("keys", [])
    except (SigningKeyError, OSError, ValueError):
        return None
    fingerprint = key_file.public.fingerprint
    if not any(isinstance(k, dict) and k.get("fingerprint") == fingerprint for k in held):
        client.close()
        return None
    return SigningKey(key_file.public, _AgentPrivateKey(client, fingerprint))


def running_agent() -> AgentClient | None:
    path = socket_path()
    if not os.path.exists(path):
        return None
    try:
        return AgentClient(path)
    except (SigningKeyError, OSError):
        return None


# --- starting the agent -----------------------------------------------------------------------


def start_agent(keys: Sequence[SigningKey], seconds: int) -> dict[str, Any]:
    """Start the agent process holding ``keys`` for ``seconds``; returns its status.

    The seeds travel through the child's stdin (a pipe) and nowhere else; the child gets an
    explicit minimal environment (no passphrase variables).
    """
    from cryptography.hazmat.primitives import serialization

    path = socket_path()
    _private_dir(path.parent, create=True)
    existing = running_agent()
    if existing is not None:
        with contextlib.closing(existing.sock):
            status = existing.status()
        raise UsageError(
            _("an agent is already running (until {until}): 'custody agent stop' first").format(
                until=status.get("expires_at")
            )
        )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a stale socket of an agent that is gone
    held = []
    for key in keys:
        private = key._private
        seed = private.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        held.append(
            {
                "name": key.public.name,
                "role": key.public.role,
                "holder": key.public.holder,
                "public": b64encode(key.public.raw),
                "seed": b64encode(seed),
            }
        )
    package_parent = str(Path(__file__).resolve().parents[2])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(
            p for p in (package_parent, os.environ.get("PYTHONPATH", "")) if p
        ),
        "LC_ALL": "C.UTF-8",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "custody.keys.agent"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd="/",
        close_fds=True,
        start_new_session=True,  # outlives this command and its terminal's Ctrl-C
    )
    assert child.stdin is not None and child.stdout is not None
    payload = json.dumps(
        {"socket": str(path), "expires": time.time() + seconds, "keys": held}
    ).encode()
    try:
        child.stdin.write(payload)
        child.stdin.close()
        ready = child.stdout.readline()
    finally:
        del payload, held
    child.stdout.close()
    if ready.strip() != b"ready":
        child.kill()
        raise SigningKeyError(_("the agent did not start"))
    client = AgentClient(path)
    with contextlib.closing(client.sock):
        return client.status()


# --- the agent process ------------------------------------------------------------------------


class _Agent:
    def __init__(self, document: dict[str, Any]) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.path = Path(document["socket"])
        self.expires = float(document["expires"])
        self.keys: dict[str, tuple[PublicKey, Any]] = {}
        for entry in document["keys"]:
            public = PublicKey(
                b64decode(entry["public"], "public"), entry["name"], entry["role"], entry["holder"]
            )
            seed = bytearray(b64decode(entry["seed"], "seed"))
            self.keys[public.fingerprint] = (
                public,
                Ed25519PrivateKey.from_private_bytes(bytes(seed)),
            )
            seed[:] = bytes(len(seed))
        self.stopping = threading.Event()

    def status(self) -> dict[str, Any]:
        return {
            "ok": True,
            "pid": os.getpid(),
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires)),
            "seconds_left": max(0, int(self.expires - time.time())),
            "keys": [
                {
                    "name": p.name,
                    "role": p.role,
                    "holder": p.holder,
                    "fingerprint": p.fingerprint,
                    "public": b64encode(p.raw),
                }
                for p, _signer in self.keys.values()
            ],
        }

    def answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            # The agent's answers are a protocol, in English; N_ marks them so the client
            # says them in its own language (AgentClient.call).
            return {"ok": False, "error": N_("a request is a JSON object")}
        op = request.get("op")
        if op == "list":
            return self.status()
        if op == "stop":
            self.stopping.set()
            return {"ok": True}
        if op == "sign":
            held = self.keys.get(str(request.get("fingerprint")))
            if held is None:
                return {"ok": False, "error": N_("the agent does not hold that key")}
            try:
                message = b64decode(str(request.get("message")), "message")
            except Exception:
                return {"ok": False, "error": N_("the message is not base64")}
            return {"ok": True, "signature": b64encode(held[1].sign(message))}
        return {"ok": False, "error": f"unknown request {op!r}"}

    def serve_connection(self, conn: socket.socket) -> None:
        with conn:
            _pid, uid, _gid = _PEERCRED.unpack(
                conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            )
            if uid != os.getuid():
                return  # another user: not a word
            reader = conn.makefile("rb")
            while not self.stopping.is_set() and time.time() < self.expires:
                line = reader.readline(MAX_LINE)
                if not line:
                    return
                try:
                    request = json.loads(line)
                except ValueError:
                    request = None
                conn.sendall(json.dumps(self.answer(request)).encode() + b"\n")

    def serve(self, listener: socket.socket) -> None:
        while not self.stopping.is_set():
            left = self.expires - time.time()
            if left <= 0:
                break
            ready, _writable, _errors = select.select([listener], [], [], min(left, 1.0))
            if ready:
                conn, _address = listener.accept()
                threading.Thread(target=self.serve_connection, args=(conn,), daemon=True).start()

    def wipe(self) -> None:
        self.keys.clear()


def _not_dumpable() -> None:
    """No core file, and no ptrace by other processes of this user (prctl(2))."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def main() -> None:
    _not_dumpable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    document = json.loads(sys.stdin.buffer.read())
    agent = _Agent(document)
    del document
    old_umask = os.umask(0o177)  # the socket is created 0600
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(os.fspath(agent.path))
    finally:
        os.umask(old_umask)
    os.chmod(agent.path, 0o600)
    listener.listen(16)
    signal.signal(signal.SIGTERM, lambda *_args: agent.stopping.set())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdout.close()
    try:
        agent.serve(listener)
    finally:
        agent.wipe()
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(agent.path)
    os._exit(0)


if __name__ == "__main__":
    main()
