"""Running exiftool: one long-lived process per thread, fed many files, with a deadline.

This module owns everything custody knows about exiftool:

* finding it (``exiftool_available``) and refusing to run without it (``ToolMissingError``);
* keeping one ``exiftool -stay_open`` process alive for a whole run (started and stopped
  with PyExifTool) and feeding it many files per ``-execute``; ``custody.evidence.exifpool``
  runs several of these, one per core, each on its own thread;
* the deadline: a hung or dead exiftool is killed and restarted, and only the file that
  caused it gets an error;
* passing awkward file names (newline/CR, leading ``-``, invalid UTF-8, NFD) so exiftool
  reads exactly the file we mean;
* handing exiftool's JSON to ``custody.evidence.metadata``, which makes ``FileMetadata``.

It never prints and never decides what a warning means for the evidence: callers do.
An ``ExifTool`` object is not thread-safe; use one per thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import select
import selectors
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import exiftool as pyexiftool

from custody.errors import ToolMissingError
from custody.evidence.metadata import (
    FileMetadata,
    capture_time,
    clean_text,
    named,
    parse_float,
    parse_int,
    sanitise,
    texts,
)
from custody.i18n import N_, _
from custody.system.children import child_env

__all__ = [
    "DEFAULT_TIMEOUT",
    "ExifTool",
    "ExifToolAborted",
    "FileMetadata",
    "PathArg",
    "exiftool_available",
]


DEFAULT_TIMEOUT = 30.0


_NOT_INSTALLED = N_(
    "exiftool is not installed; run the set-up command in README.md "
    "(Debian package libimage-exiftool-perl)"
)
# Only ToolMissingError speaks the run's language here. What goes wrong with one file (a
# FileMetadata's ``error``: crashes, timeouts, unreadable output) is written into its item
# record as ``metadata_error``, so it stays English whatever the language (never _()).


# Options sent with every command (not as pyexiftool ``common_args``, so that the
# ``-ver`` handshake run() performs stays a plain version query).
#   -j -a -G1 -n       JSON; same-named tags from different groups all kept, as
#                      "Group:Tag" keys (a second tag of the same name in the SAME
#                      group is still dropped by exiftool's JSON writer); numeric
#                      (not print-converted) values
#   LargeFileSupport   read files over 2 GB whole instead of stopping at 2 GB
#   charset filename   names are UTF-8 bytes (only matters on Windows; stated anyway)
#   TimeZone=UTC       exiftool renders file-system times (System:FileModifyDate) in
#                      the local zone of the reading machine; UTC makes the same file
#                      give the same record wherever it is catalogued
#   -progress          prints "======== NAME [i/n]" on stderr as each file starts (and
#                      implies -v0, which flushes stdout per file); that is what lets
#                      the timeout apply per file inside a batch, see _exchange()
_BASE_ARGS: tuple[bytes, ...] = (
    b"-j",
    b"-a",
    b"-G1",
    b"-n",
    b"-api",
    b"LargeFileSupport=1",
    b"-charset",
    b"filename=utf8",
    b"-api",
    b"TimeZone=UTC",
    b"-progress",
)


PathArg = str | bytes | os.PathLike[str] | os.PathLike[bytes]


_PROGRESS_PREFIX = b"======== "


_READ_CHUNK = 1 << 16


_COALESCE = 0.0005  # seconds to let output pile up between reads


# A pipe that selects writable accepts PIPE_BUF bytes without blocking (POSIX: >= 512).
_PIPE_BUF: int = getattr(select, "PIPE_BUF", 512)


_ALIAS_EXT = re.compile(rb"\.[A-Za-z0-9_-]{1,16}")


_ALIAS_CHARS = ("\n", "\r", "\ufffe", "\uffff")


class _ExchangeFailure(Exception):
    """exiftool did not finish a command; the process must be killed and restarted."""


class _Timeout(_ExchangeFailure):
    pass


class _Crash(_ExchangeFailure):
    pass


class ExifToolAborted(RuntimeError):
    """``ExifTool.abort()`` was called (from another thread) while this work was under way."""


class _OutputMismatch(Exception):
    """exiftool's answer cannot be attributed to the files we asked about."""


# Environment variables that may hold secrets given to custody (the key passphrase, a
# PostgreSQL password). exiftool parses files an adversary may have crafted; it must not
# inherit them.
_SECRET_ENV = ("CUSTODY_PASSPHRASE", "PGPASSWORD")


_ENV_LOCK = threading.Lock()


class _SecretsWithheld:
    """Start a child without the secret variables (pyexiftool offers no ``env``).

    Why: with CUSTODY_PASSPHRASE set, the passphrase was readable in
    /proc/<exiftool>/environ for as long as exiftool ran. The variables are out of
    ``os.environ`` only from here until the fork is done (``restore``, called by the
    version handshake that follows it), under one lock, so that the pool's threads, which
    start processes side by side, never fork while another thread has put them back.
    """

    def __init__(self) -> None:
        self._saved: dict[str, str] | None = None

    def __enter__(self) -> _SecretsWithheld:
        _ENV_LOCK.acquire()
        self._saved = {name: os.environ.pop(name) for name in _SECRET_ENV if name in os.environ}
        return self

    def restore(self) -> None:
        """Put the variables back (once): the child has been forked."""
        if self._saved is not None:
            saved, self._saved = self._saved, None
            os.environ.update(saved)
            _ENV_LOCK.release()

    def __exit__(self, *exc: object) -> None:
        self.restore()


class _ChildEnvSubprocess:
    """What pyexiftool sees as ``subprocess``: the real module, except that every process
    it starts gets custody's explicit minimal environment (``custody.system.children``).

    pyexiftool offers no ``env`` argument; before this, exiftool - which parses files an
    adversary may have crafted - inherited the whole environment (every variable, and a
    HOME whose ``.ExifTool_config`` would change what it reports).
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(args: Sequence[Any], **kwargs: Any) -> subprocess.Popen[bytes]:
        kwargs["env"] = child_env(program=os.fsdecode(args[0]))
        return subprocess.Popen(args, **kwargs)


pyexiftool.exiftool.subprocess = _ChildEnvSubprocess()


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C back while exiftool is forked, then deliver it.

    Why: pyexiftool starts exiftool with a ``preexec_fn``, so Python runs its at-fork
    callbacks (logging's among them) around the fork; a KeyboardInterrupt raised inside
    one cannot propagate and is printed as an "Exception ignored" traceback.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals (and may set handlers)
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def exiftool_available(executable: str = "exiftool") -> bool:
    """True if ``executable`` names an executable file (on PATH or as a path)."""
    return shutil.which(executable) is not None


def _exchange(
    proc: subprocess.Popen[bytes], args: Sequence[bytes], timeout: float
) -> tuple[bytes, bytes]:
    """Send one command to a ``-stay_open`` exiftool and return (stdout, stderr).

    Why not pyexiftool's ``execute()``: it has no timeout, and its reader
    ``_read_fd_endswith`` loops forever once exiftool dies (select() reports EOF as
    readable, os.read() returns b"" and the end marker never comes), so one bad file
    would hang the whole run at 100 % CPU. Here we wait with a deadline on stdout AND
    stderr together (draining stderr so its pipe can never fill and block exiftool),
    feed stdin only when it is writable (a hung exiftool stops reading its arguments),
    and raise on timeout or EOF so the caller can kill and restart the process.

    The deadline is per file: ``-progress`` makes exiftool print a line on stderr as it
    starts each file, and every such line restarts the clock. A batch of 64 slow but
    healthy videos is therefore not killed for being a batch, and a file that hangs is
    noticed ``timeout`` seconds after exiftool started it.
    """
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    tag = secrets.randbelow(900_000_000) + 100_000_000
    ready = b"{ready%d}\n" % tag
    post = b"{post%d}\n" % tag
    # -echo4 prints to stderr after the files are processed: our end-of-stderr marker.
    payload = b"\n".join([*args, b"-echo4", post.rstrip(b"\n"), b"-execute%d" % tag]) + b"\n"

    out_fd, err_fd, in_fd = proc.stdout.fileno(), proc.stderr.fileno(), proc.stdin.fileno()
    out, err = bytearray(), bytearray()
    sent = 0
    scanned = 0  # stderr bytes already searched for progress lines
    out_done = err_done = False
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(out_fd, selectors.EVENT_READ)
        sel.register(err_fd, selectors.EVENT_READ)
        sel.register(in_fd, selectors.EVENT_WRITE)
        while not (out_done and err_done):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout(timeout)
            for key, _events in sel.select(remaining):
                fd = key.fd
                if fd == in_fd:
                    try:
                        sent += os.write(in_fd, payload[sent : sent + _PIPE_BUF])
                    except (BrokenPipeError, ConnectionResetError):
                        raise _Crash(_describe_exit(proc, err)) from None
                    if sent >= len(payload):
                        sel.unregister(in_fd)
                    continue
                chunk = os.read(fd, _READ_CHUNK)
                if not chunk:
                    raise _Crash(_describe_exit(proc, err))
                if fd == out_fd:
                    out += chunk
                    out_done = out.endswith(ready)
                else:
                    err += chunk
                    end = err.rfind(b"\n")
                    if end >= scanned:
                        lines = bytes(err[scanned : end + 1])
                        scanned = end + 1
                        if lines.startswith(_PROGRESS_PREFIX) or (
                            b"\n" + _PROGRESS_PREFIX in lines
                        ):
                            deadline = time.monotonic() + timeout
                        err_done = err_done or _has_line(err, post)
            if sent >= len(payload) and not (out_done and err_done):
                # -v0 (implied by -progress) makes exiftool write line by line; without
                # a pause we would wake for every line (~200 per photo) and spend more
                # CPU than parsing the JSON. The pipe holds 64 KiB meanwhile.
                time.sleep(_COALESCE)
    stdout = bytes(out[: -len(ready)])
    cut = err.rfind(post)
    return stdout, bytes(err[:cut])


def _has_line(buf: bytearray, line: bytes) -> bool:
    return buf.startswith(line) or (b"\n" + line) in buf


def _describe_exit(proc: subprocess.Popen[bytes], err: bytes | bytearray) -> str:
    """Say how exiftool ended, with its last words on stderr if it left any."""
    try:
        # EOF on the pipes usually arrives a moment before the exit status.
        rc = proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        how = "closed its output but did not exit"
    else:
        if rc < 0:
            try:
                how = f"killed by signal {signal.Signals(-rc).name}"
            except ValueError:
                how = f"killed by signal {-rc}"
        else:
            how = f"exited with status {rc}"
    last = ""
    for raw in reversed(bytes(err).splitlines()):
        if raw.strip() and not raw.startswith(_PROGRESS_PREFIX):
            last = clean_text(raw.decode("utf-8", "replace")).strip()
            break
    return f"{how} ({last[:200]})" if last else how


class _PyExifTool(pyexiftool.ExifTool):  # type: ignore[misc]  # pyexiftool has no type hints
    """PyExifTool with a deadline on the version handshake.

    ``run()`` ends by asking for ``-ver`` through the same unbounded reader as
    ``execute()``: an executable that starts but never answers (or dies at once) would
    hang start-up for ever. We keep ``run()``/``terminate()``/``version`` and only swap
    that one read for ``_exchange``.
    """

    # The last process run() started. pyexiftool forgets its Popen in some failure
    # paths (a process that dies during run()), leaving the pipes to the garbage
    # collector; we keep hold of it so it can always be killed, reaped and closed.
    popen: subprocess.Popen[bytes] | None = None
    _custody_current: subprocess.Popen[bytes] | None = None

    def __init__(self, executable: str, handshake_timeout: float) -> None:
        super().__init__(executable=executable, common_args=None)
        self._custody_handshake_timeout = handshake_timeout
        self._custody_forked: Callable[[], None] | None = None

    @property
    def _process(self) -> subprocess.Popen[bytes] | None:
        return self._custody_current

    @_process.setter
    def _process(self, proc: subprocess.Popen[bytes] | None) -> None:
        self._custody_current = proc
        if proc is not None:
            self.popen = proc

    def _parse_ver(self) -> str:
        assert self.popen is not None
        # run() has forked exiftool: the parent may have its secrets back (and the next
        # thread may start its own process) while this one waits for the handshake.
        forked = self._custody_forked
        if forked is not None:
            forked()
        out, _err = _exchange(self.popen, [b"-ver"], self._custody_handshake_timeout)
        ver = out.decode("utf-8", "replace").strip()
        if not re.fullmatch(r"\d+\.\d+[\w.]*", ver):
            raise _Crash(f"answered {ver[:80]!r} to -ver, which is not an exiftool version")
        return ver


@dataclass
class _Job:
    index: int  # position in the caller's list
    arg: bytes  # absolute path or alias we hand to exiftool
    label: str  # arg as exiftool will echo it back in SourceFile


class ExifTool:
    """One ``exiftool -stay_open`` process for a whole run. Use as a context manager.

    The process starts in the constructor (so a missing exiftool is reported at once)
    and stops in ``close()``/``__exit__``. ``extract()`` may be called many times.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        embedded: bool = False,
        executable: str = "exiftool",
        batch_size: int = 64,
        scratch: str | os.PathLike[str] | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.timeout = float(timeout)
        self.embedded = embedded
        self.batch_size = batch_size
        self.restarts = 0  # how many times a failure forced a new exiftool process
        self._executable = executable
        self._args = _BASE_ARGS + ((b"-ee",) if embedded else ())
        self._et: _PyExifTool | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._alias_dir: str | None = None
        self._scratch = scratch  # where alias folders go (default: the system temp)
        self._alias_count = 0
        self._closed = False
        self._aborted = False
        self.version: str = self._start()

    # -- process life cycle -------------------------------------------------------

    def _start(self) -> str:
        path = shutil.which(self._executable)
        if path is None:
            raise ToolMissingError(_(_NOT_INSTALLED)) from None
        try:
            et = _PyExifTool(path, handshake_timeout=max(self.timeout, 10.0))
        except OSError as exc:  # vanished between which() and here
            raise ToolMissingError(
                _("exiftool ({path}) could not be started: {why}").format(path=path, why=exc)
            ) from None
        try:
            with _SecretsWithheld() as withheld, _interrupts_deferred():
                et._custody_forked = withheld.restore
                et.run()
        except (
            OSError,
            RuntimeError,
            _ExchangeFailure,
            pyexiftool.exceptions.ExifToolException,
        ) as exc:
            self._discard(et)
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, _Timeout):
                reason = _("no answer to -ver within {seconds:g} s").format(seconds=exc.args[0])
            raise ToolMissingError(
                _("exiftool ({path}) could not be started: {why}").format(path=path, why=reason)
            ) from None
        except BaseException:
            # Ctrl-C held back during the start is raised when it ends: the process runs,
            # but nobody would own it (pyexiftool warns about it when collected).
            self._discard(et)
            raise
        self._et = et
        self._proc = et.popen  # we drive its pipes ourselves, see _exchange()
        return str(et.version)

    @staticmethod
    def _discard(et: _PyExifTool) -> None:
        """Kill et's process (if any), reap it and make pyexiftool forget it quietly."""
        proc = et.popen
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        # pyexiftool notices the death on its next `running` check and warns about it;
        # the death was ours, so silence that one warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _running = et.running

    def _restart(self) -> None:
        if self._aborted:
            # The process was killed on purpose (see abort()): never start another.
            raise ExifToolAborted("exiftool was stopped: the run was interrupted")
        if self._et is not None:
            self._discard(self._et)
        self._et = self._proc = None
        self.restarts += 1
        self.version = self._start()

    @property
    def pid(self) -> int | None:
        """PID of the current exiftool process (changes only when one had to be replaced)."""
        return self._proc.pid if self._proc is not None else None

    def abort(self) -> None:
        """Kill the process now, from any thread; the ``extract`` under way (on its own
        thread) raises ``ExifToolAborted`` instead of restarting it. ``close`` still
        follows, on the owning thread."""
        self._aborted = True
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()

    def close(self) -> None:
        """Stop exiftool and remove the private alias directory. Safe to call twice."""
        self._closed = True
        et, self._et, self._proc = self._et, None, None
        if et is not None:
            # "process died" warnings: exiftool may die on its own, or between our check
            # and terminate()'s own one (a kill by _exchange on Ctrl-C is not reaped yet).
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if et.running:
                        # Ask politely first (-stay_open False); _discard kills the rest.
                        with contextlib.suppress(Exception):
                            et.terminate(timeout=5)
            finally:
                # Also after a Ctrl-C inside terminate(): otherwise the dead process is
                # noticed (and warned about) when pyexiftool's object is collected.
                self._discard(et)
        if self._alias_dir is not None:
            shutil.rmtree(self._alias_dir, ignore_errors=True)
            self._alias_dir = None

    def __enter__(self) -> ExifTool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- extraction ---------------------------------------------------------------

    def extract(self, paths: Sequence[PathArg]) -> list[FileMetadata]:
        """Metadata for each path, in the same order. Never raises for a bad file.

        A file exiftool cannot parse, a file that makes it hang or crash, and a path that
        is missing or not a regular file each get a ``FileMetadata`` with ``error`` set.
        Raises ``ToolMissingError`` only if exiftool cannot be (re)started.
        """
        if self._closed:
            raise RuntimeError("this ExifTool has been closed")
        if self._aborted:
            raise ExifToolAborted("exiftool was stopped: the run was interrupted")
        results: list[FileMetadata | None] = [None] * len(paths)
        jobs: list[_Job] = []
        aliases: list[bytes] = []
        try:
            for index, path in enumerate(paths):
                job_or_error = self._prepare(index, path, aliases)
                if isinstance(job_or_error, FileMetadata):
                    results[index] = job_or_error
                else:
                    jobs.append(job_or_error)
            for start in range(0, len(jobs), self.batch_size):
                batch = jobs[start : start + self.batch_size]
                for job, meta in zip(batch, self._run_batch(batch), strict=True):
                    results[job.index] = meta
        finally:
            for alias in aliases:
                with contextlib.suppress(OSError):
                    os.unlink(alias)
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    def _prepare(self, index: int, path: PathArg, aliases: list[bytes]) -> _Job | FileMetadata:
        raw = os.fsencode(path)
        try:
            # Absolute: a name starting with "-" can then never read as an option, and
            # one starting with "#" or white space is never an argfile comment or
            # trimmed. Joined by hand, not abspath(): normpath would resolve ".."
            # lexically, which is wrong across symlinks.
            if not os.path.isabs(raw):
                raw = os.path.join(os.getcwdb(), raw)
            st = os.stat(raw)
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return _failed(f"cannot read file: {reason}")
        if not stat.S_ISREG(st.st_mode):
            # A directory would make exiftool read every file in it; a FIFO or device
            # would block it until the timeout.
            return _failed("not a regular file")
        try:
            label: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            label = None
        # The -@ protocol is one argument per line and exiftool strips trailing CR/LF,
        # so such names cannot be sent at all. Names that are not UTF-8 (or contain
        # U+FFFE/U+FFFF, which exiftool also counts as invalid) are sent fine, but
        # exiftool echoes them in SourceFile with "?" for the bad bytes, and then we
        # could not prove which answer belongs to which file. All of these get a
        # symlink with a plain name in our private directory instead.
        if label is None or any(c in label for c in _ALIAS_CHARS):
            alias = self._make_alias(raw)
            aliases.append(alias)
            raw, label = alias, alias.decode("utf-8")
        return _Job(index=index, arg=raw, label=label)

    def _make_alias(self, target: bytes) -> bytes:
        if self._alias_dir is None:
            self._alias_dir = self._new_alias_dir()
        self._alias_count += 1
        # Keep the extension: exiftool falls back on it when the content is ambiguous.
        ext = os.path.splitext(os.path.basename(target))[1]
        if not _ALIAS_EXT.fullmatch(ext):
            ext = b""
        alias = os.path.join(os.fsencode(self._alias_dir), b"f%08d%s" % (self._alias_count, ext))
        os.symlink(target, alias)
        return alias

    def _new_alias_dir(self) -> str:
        """A private (0700) folder for aliases; never next to evidence."""
        # Why ``scratch``: a run killed with SIGKILL cannot remove its aliases. In the
        # system temp they stayed behind for good, naming evidence files outside the
        # evidence root; under the root's .custody/tmp, named "<pid>-exiftool-...", the
        # next run removes them. The folder's own path must be sendable to exiftool.
        if self._scratch is not None:
            base = os.fsencode(self._scratch)
            try:
                text = base.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            sendable = text is not None and not any(c in text for c in _ALIAS_CHARS)
            if text is not None and sendable and os.path.isabs(text):
                with contextlib.suppress(OSError):
                    os.makedirs(text, exist_ok=True)
                    return tempfile.mkdtemp(prefix=f"{os.getpid()}-exiftool-", dir=text)
        return tempfile.mkdtemp(prefix="custody-exiftool-")

    def _run_batch(self, batch: list[_Job]) -> list[FileMetadata]:
        try:
            stdout, stderr = self._send(batch)
        except _ExchangeFailure as exc:
            self._restart()
            if len(batch) == 1:
                return [_failed(_failure_message(exc, self.timeout))]
            # Which file was it? Ask again one at a time, so that only the file that
            # hangs or kills exiftool is charged with it.
            return [self._run_one(job) for job in batch]
        try:
            return _attribute(batch, stdout, stderr)
        except _OutputMismatch as exc:
            if len(batch) == 1:
                return [_failed(f"exiftool output could not be read: {exc}")]
            return [self._run_one(job) for job in batch]

    def _run_one(self, job: _Job) -> FileMetadata:
        try:
            stdout, stderr = self._send([job])
        except _ExchangeFailure as exc:
            self._restart()
            return _failed(_failure_message(exc, self.timeout))
        try:
            return _attribute([job], stdout, stderr)[0]
        except _OutputMismatch as exc:
            return _failed(f"exiftool output could not be read: {exc}")

    def _send(self, batch: list[_Job]) -> tuple[bytes, bytes]:
        if self._proc is None:
            self._restart()
        assert self._et is not None and self._proc is not None
        try:
            return _exchange(self._proc, [*self._args, *(job.arg for job in batch)], self.timeout)
        except _ExchangeFailure:
            raise
        except BaseException:
            # Interrupted mid-command (Ctrl-C, MemoryError...): exiftool is still busy
            # with it and would hand its answer to the next command. Start afresh.
            self._discard(self._et)
            self._et = self._proc = None
            raise


def _failure_message(exc: _ExchangeFailure, timeout: float) -> str:
    if isinstance(exc, _Timeout):
        return f"exiftool timed out after {timeout:g} s"
    return f"exiftool crashed: {exc}"


def _failed(error: str) -> FileMetadata:
    return FileMetadata(tags={}, mime=None, error=error, warnings=(), capture_time=None)


def _stderr_error(stderr: bytes, label: str) -> str:
    """exiftool's own reason for skipping a file ("Error: File not found - NAME")."""
    suffix = f" - {label}"
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("Error: ") and line.endswith(suffix):
            return clean_text(line[len("Error: ") : -len(suffix)]) or "exiftool error"
    return "exiftool returned no metadata for this file"


def _to_metadata(obj: Mapping[str, Any]) -> FileMetadata:
    tags = sanitise(obj)
    mime = tags.get("File:MIMEType")
    errors = [t for _name, v in named(tags, "Error") for t in texts(v)]
    return FileMetadata(
        tags=tags,
        mime=mime if isinstance(mime, str) and mime else None,
        error="; ".join(errors) if errors else None,
        warnings=tuple(t for _name, v in named(tags, "Warning") for t in texts(v)),
        capture_time=capture_time(tags),
    )


def _attribute(batch: list[_Job], stdout: bytes, stderr: bytes) -> list[FileMetadata]:
    """Pair each job with its JSON object, proving the pairing by SourceFile."""
    # We decode (not pyexiftool): exiftool promises UTF-8 JSON and puts "?" for bad
    # bytes, but we do not stake a signed record on that promise.
    text = stdout.decode("utf-8", "replace").strip()
    try:
        objects = (
            json.loads(
                text,
                parse_int=parse_int,
                parse_float=parse_float,
                parse_constant=str,  # NaN / Infinity stay text
                strict=False,
            )
            if text
            else []
        )
    except ValueError as exc:
        raise _OutputMismatch(f"invalid JSON ({exc})") from None
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise _OutputMismatch("JSON is not a list of objects")
    # exiftool answers in argument order but writes no object for a file it could not
    # open; walk both lists and insist every object names the file we sent.
    if len(batch) == 1 and len(objects) == 1:
        # One file asked, one answer: the pairing needs no proof (and exiftool may have
        # rewritten an odd but valid name in SourceFile).
        return [_to_metadata(objects[0])]
    results: list[FileMetadata] = []
    pos = 0
    for job in batch:
        if pos < len(objects) and objects[pos].get("SourceFile") == job.label:
            results.append(_to_metadata(objects[pos]))
            pos += 1
        else:
            results.append(_failed(_stderr_error(stderr, job.label)))
    if pos != len(objects):
        raise _OutputMismatch(f"{len(objects) - pos} answer(s) match no file that was sent")
    return results
