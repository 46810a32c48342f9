"""A real PostgreSQL server for tests and benchmarks: one per session, a fresh database per test.

``PgServer`` finds the PostgreSQL binaries (``$CUSTODY_PG_BINDIR``, else ``pg_config
--bindir`` when ``pg_config`` is on PATH, else the newest ``/usr/lib/postgresql/*/bin``),
runs ``initdb`` into a private temporary folder and starts ``postgres`` on 127.0.0.1 at a
free port, its unix socket in that folder. PostgreSQL refuses to run as root, so under root
the server runs as the ``postgres`` system user (``runuser``) in a folder that user owns.

Authentication (``pg_hba.conf``): everything from loopback is ``trust`` except two roles
made for the tests - ``custody_pw`` needs its password (SCRAM), ``custody_tls`` is only
accepted over TLS. The server also speaks TLS with a certificate for ``localhost`` and
``127.0.0.1`` issued by a throwaway CA (``server.ca_file``).

Used by ``tests/test_pgledger.py`` (the fixtures at the bottom) and ``bench/pg_bench.py``
(``PgServer`` directly). When no PostgreSQL can be found or started, the fixtures skip
with the reason, so the suite stays green on a machine without it.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import glob
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PASSWORD_ROLE = "custody_pw"
PASSWORD = "s3cret-pw-for-tests"
TLS_ROLE = "custody_tls"


class PgUnavailable(Exception):
    """PostgreSQL cannot be found or started here; the message says why."""


def find_bindir() -> Path:
    """The folder holding initdb, pg_ctl and postgres."""
    candidates: list[Path] = []
    chosen = os.environ.get("CUSTODY_PG_BINDIR")
    if chosen:  # named explicitly: that folder or nothing
        if all((Path(chosen) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(chosen)
        raise PgUnavailable(f"CUSTODY_PG_BINDIR={chosen} holds no initdb/pg_ctl/postgres")
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))

    def version(path: str) -> tuple[int, ...]:
        found = re.search(r"/postgresql/([\d.]+)/bin$", path)
        return tuple(int(p) for p in found.group(1).split(".")) if found else (0,)

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    ]
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PgUnavailable(
        "PostgreSQL server binaries not found (no initdb/pg_ctl/postgres via "
        "pg_config --bindir or /usr/lib/postgresql/*/bin); install the 'postgresql' package "
        "(scripts/setup.sh with CUSTODY_WITH_POSTGRES=1)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1 (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "custody test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.crt", folder / "server.crt", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


HBA = f"""\
local   all  all                      trust
hostssl all  {TLS_ROLE}   127.0.0.1/32  trust
host    all  {TLS_ROLE}   127.0.0.1/32  reject
host    all  {PASSWORD_ROLE}    127.0.0.1/32  scram-sha-256
host    all  {PASSWORD_ROLE}    ::1/128       scram-sha-256
host    all  all          127.0.0.1/32  trust
host    all  all          ::1/128       trust
"""


class PgServer:
    """A private PostgreSQL cluster in a temporary folder (``start()`` / ``stop()``)."""

    def __init__(self, *, durable: bool = False, settings: dict[str, str] | None = None) -> None:
        # durable=False turns fsync off: a test never survives an OS crash anyway, and
        # killing a client (what the tests do) does not depend on it.
        self.durable = durable
        self.settings = settings or {}
        self.bindir: Path | None = None
        self.base: Path | None = None
        self.port = 0
        self.host = "127.0.0.1"
        self.user = "postgres"
        self._as_user: list[str] = []
        self._running = False

    # --- paths ------------------------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.base is not None
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base is not None
        return self.base / "socket"

    @property
    def log_file(self) -> Path:
        assert self.base is not None
        return self.base / "server.log"

    @property
    def ca_file(self) -> Path:
        assert self.base is not None
        return self.base / "tls" / "ca.crt"

    def url(self, database: str = "postgres", user: str | None = None, **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{user or self.user}@{self.host}:{self.port}/{database}" + (
            f"?{query}" if query else ""
        )

    # --- life -------------------------------------------------------------------------------

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as_user, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            cwd="/",
        )

    def start(self) -> PgServer:
        self.bindir = find_bindir()
        owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            import pwd

            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable(
                    "running as root, and there is no 'postgres' system user to run the server "
                    "as (PostgreSQL refuses to run as root)"
                ) from None
            runuser = shutil.which("runuser")
            if runuser is None:
                raise PgUnavailable("running as root, and 'runuser' is missing")
            self._as_user = [runuser, "-u", "postgres", "--"]
            owner = (entry.pw_uid, entry.pw_gid)
        self.base = Path(tempfile.mkdtemp(prefix="custody-pg-"))
        self.socket_dir.mkdir()
        (self.base / "tls").mkdir()
        _write_tls_files(self.base / "tls")
        self.base.chmod(0o755)
        if owner is not None:
            for folder, _dirs, files in os.walk(self.base):
                os.chown(folder, *owner)
                for name in files:
                    os.chown(os.path.join(folder, name), *owner)
        init = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            self.user,
            "-E",
            "UTF8",
            "--no-sync",
        )
        if init.returncode != 0:
            raise PgUnavailable(f"initdb failed: {(init.stderr or init.stdout).strip()[-500:]}")
        hba = self.data / "pg_hba.conf"
        hba.write_text(HBA)
        if owner is not None:
            os.chown(hba, *owner)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "100",
            "ssl": "on",
            "ssl_cert_file": f"'{self.base / 'tls' / 'server.crt'}'",
            "ssl_key_file": f"'{self.base / 'tls' / 'server.key'}'",
            "log_min_messages": "warning",
            **({} if self.durable else {"fsync": "off", "full_page_writes": "off"}),
            **self.settings,
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")
        last = ""
        for _attempt in range(5):
            self.port = free_port()
            started = self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {self.port}",
                "-w",
                "-t",
                "60",
                "start",
            )
            if started.returncode == 0:
                self._running = True
                break
            last = (started.stderr or started.stdout).strip()
            with contextlib.suppress(OSError):
                last += " | " + self.log_file.read_text()[-500:]
        else:
            raise PgUnavailable(f"PostgreSQL did not start: {last[-800:]}")
        atexit.register(self.stop)  # even if the session ends without its teardown
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
            conn.execute(f"CREATE ROLE {TLS_ROLE} LOGIN SUPERUSER")
        return self

    def stop(self) -> None:
        if self._running and self.bindir is not None:
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
            self._running = False
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- databases --------------------------------------------------------------------------

    @contextlib.contextmanager
    def admin(self, database: str = "postgres") -> Iterator[Any]:
        import psycopg

        conn = psycopg.connect(self.url(database), autocommit=True, connect_timeout=10)
        try:
            yield conn
        finally:
            conn.close()

    def create_database(self, name: str) -> str:
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def clone_database(self, template: str, name: str) -> str:
        """A new database copied from ``template`` (which nobody may be connected to)."""
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_or_reason(**kwargs: Any) -> tuple[PgServer | None, str]:
    """A started server, or None and why not (psycopg missing, no binaries, start failed)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg is not installed (pip install -e '.[dev]')"
    server = PgServer(**kwargs)
    try:
        server.start()
    except (PgUnavailable, OSError, subprocess.SubprocessError) as exc:
        server.stop()
        return None, f"PostgreSQL unavailable: {exc}"
    return server, ""


def db_name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def wait_until(predicate: Any, timeout: float = 30.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


# --- pytest fixtures (imported by the test modules that use them) --------------------------

try:
    import pytest
except ImportError:  # bench/pg_bench.py imports this module without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def pg_server() -> Iterator[PgServer]:
        """One real PostgreSQL server for the whole test session (skips if there is none)."""
        server, reason = start_or_reason()
        if server is None:
            pytest.skip(reason)
        try:
            yield server
        finally:
            server.stop()

    _counter = iter(range(1_000_000))

    @pytest.fixture
    def pg_db(pg_server: PgServer) -> Iterator[str]:
        """A fresh, empty database on the session's server; its URL (no password)."""
        name = f"custody_t{os.getpid()}_{next(_counter)}"
        url = pg_server.create_database(name)
        try:
            yield url
        finally:
            pg_server.drop_database(name)

    @pytest.fixture
    def pg_db_factory(pg_server: PgServer) -> Iterator[Any]:
        """Make more fresh databases in one test: ``pg_db_factory()`` returns a URL."""
        made: list[str] = []

        def make() -> str:
            name = f"custody_t{os.getpid()}_{next(_counter)}"
            made.append(name)
            return pg_server.create_database(name)

        try:
            yield make
        finally:
            for name in made:
                pg_server.drop_database(name)
