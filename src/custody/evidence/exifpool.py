"""A pool of long-lived exiftool processes: metadata extraction on every core.

exiftool is single-threaded: one ``-stay_open`` process reads one file at a time, so a
catalogue of small photos ran at exiftool's pace while the other cores idled (issue
"Performance ... close to the hardware"). This pool keeps up to ``size`` processes (by
default one per core available), each owned by one dedicated thread that feeds it whole
batches through ``custody.evidence.exiftool.ExifTool`` - which keeps everything the single
process had: the per-file deadline, the kill and restart of a hung or crashed process with
only the guilty file charged, awkward names through private aliases, and the secrets
withheld from the child's environment.

Why a thread per process, which also starts it: pyexiftool starts exiftool with
``PR_SET_PDEATHSIG``, which signals the child when the *thread* that forked it ends. A
process started (or restarted after a hang) on a short-lived worker thread would be
killed when that thread ended; here each process lives exactly as long as its owner
thread, which lives as long as the pool. If custody itself dies, every owner thread dies
with it and the kernel stops every exiftool.

Processes start lazily: the first at once (so start-up overlaps the caller's own work and
a broken exiftool is known early), another only when every running one is busy and work
piles up. A run over eight large files never pays for more than one Perl start-up; a run
over thousands of photos gets every core within the first batches.

May import: ``custody.errors``, ``custody.evidence.exiftool`` and ``.hashing``. Never prints.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future

from custody.errors import ToolMissingError
from custody.evidence.exiftool import DEFAULT_TIMEOUT, ExifTool, FileMetadata, PathArg
from custody.evidence.hashing import available_cores

__all__ = ["ExifToolPool", "available_cores"]


_Job = tuple[list[PathArg], "Future[list[FileMetadata]]"]


class ExifToolPool:
    """Up to ``size`` ``ExifTool`` processes fed batches from one queue. A context manager.

    ``submit(paths)`` returns a future of the metadata, in the order given; ``extract``
    splits a long list over every process and waits. Each batch goes whole to one
    process, so its answers are attributed exactly as the single process attributes them.
    A process that cannot be started fails the batches it takes with ``ToolMissingError``
    (never a hang); everything else about one file is that file's ``FileMetadata.error``.
    """

    def __init__(
        self,
        size: int | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        embedded: bool = False,
        executable: str = "exiftool",
        batch_size: int = 64,
        scratch: str | os.PathLike[str] | None = None,
    ) -> None:
        if size is not None and size < 1:
            raise ValueError("size must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.size = size if size is not None else available_cores()
        self.batch_size = batch_size
        self._options = {
            "timeout": float(timeout),
            "embedded": embedded,
            "executable": executable,
            "batch_size": batch_size,
            "scratch": scratch,
        }
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._tools: list[ExifTool] = []
        self._idle = 0  # started owners waiting for work (or still starting)
        self._waiting = 0  # jobs queued and not yet taken
        self._closed = False
        self._stopping = False  # stop() sent the owners home
        self._start_error: ToolMissingError | None = None
        self._first_ready = threading.Event()
        with self._lock:
            self._grow()

    # -- life cycle -------------------------------------------------------------------

    def _grow(self) -> None:
        """Start one more owner thread (and so one more exiftool). Caller holds the lock."""
        thread = threading.Thread(
            target=self._owner, name=f"exiftool-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        self._idle += 1
        thread.start()

    def _owner(self) -> None:
        tool: ExifTool | None = None
        error: ToolMissingError | None = None
        try:
            tool = ExifTool(**self._options)  # type: ignore[arg-type]
            with self._lock:
                self._tools.append(tool)
        except ToolMissingError as exc:
            error = exc
            with self._lock:
                if self._start_error is None:
                    self._start_error = exc
        finally:
            self._first_ready.set()
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                paths, future = job
                with self._lock:
                    self._waiting -= 1
                    self._idle -= 1
                try:
                    if not future.set_running_or_notify_cancel():
                        continue
                    if tool is None:
                        assert error is not None
                        future.set_exception(error)
                    else:
                        try:
                            future.set_result(tool.extract(paths))
                        except BaseException as exc:  # handed to whoever waits on the batch
                            future.set_exception(exc)
                finally:
                    with self._lock:
                        self._idle += 1
        finally:
            if tool is not None:
                tool.close()  # on this thread: the process is this thread's child

    def wait_started(self) -> str:
        """Wait for the first process; its exiftool version. Raises ``ToolMissingError``."""
        self._first_ready.wait()
        with self._lock:
            if self._tools:
                return self._tools[0].version
            assert self._start_error is not None
            raise self._start_error

    @property
    def restarts(self) -> int:
        """How many times a hang or crash forced a new process, over the whole pool."""
        with self._lock:
            return sum(t.restarts for t in self._tools)

    @property
    def started(self) -> int:
        """How many processes (owner threads) the pool has started so far."""
        return len(self._threads)

    @property
    def idle(self) -> bool:
        """True when a started process is waiting for work (a batch sent now starts now)."""
        with self._lock:
            return self._idle > self._waiting

    def stop(self) -> None:
        """Let every process finish its batch and stop, without waiting: the owners close
        their exiftool in the background while the caller goes on (``close`` waits)."""
        with self._lock:
            if self._closed or self._stopping:
                return
            self._stopping = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)

    def close(self, *, abort: bool = False) -> None:
        """Stop every process and wait for its owner. Safe to call twice.

        Batches still queued are cancelled. Normally the batches already taken finish
        first; with ``abort`` (the run failed or was interrupted) the processes are killed
        at once and those batches fail with ``ExifToolAborted``, so Ctrl-C never waits for
        a slow video or a hung file's deadline.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
            tools = list(self._tools)
        with contextlib.suppress(queue.Empty):
            while True:
                job = self._jobs.get_nowait()
                if job is not None:
                    job[1].cancel()
        if abort:
            for tool in tools:
                tool.abort()
        # One stop sign per owner, again: the queue was just emptied, signs from stop()
        # included (spare signs are harmless).
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join()

    def __enter__(self) -> ExifToolPool:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        self.close(abort=kind is not None)

    # -- work -------------------------------------------------------------------------

    def submit(self, paths: Sequence[PathArg]) -> Future[list[FileMetadata]]:
        """Queue one batch for the next free process; a future of its metadata, in order."""
        future: Future[list[FileMetadata]] = Future()
        with self._lock:
            if self._closed or self._stopping:
                raise RuntimeError("this ExifToolPool has been closed")
            self._waiting += 1
            # Grow only on a backlog (two batches waiting beyond the idle processes): a
            # momentary queue of one, as at the end of a run over large files, is not
            # worth a Perl start-up.
            if self._waiting > self._idle + 1 and len(self._threads) < self.size:
                self._grow()
        self._jobs.put((list(paths), future))
        return future

    def extract(self, paths: Sequence[PathArg]) -> list[FileMetadata]:
        """Metadata for each path, in order, spread over every process. Never raises for a
        bad file (see ``ExifTool.extract``); ``ToolMissingError`` if exiftool cannot run."""
        if not paths:
            return []
        # Enough batches for every process, none larger than the batch size.
        per = max(1, min(self.batch_size, -(-len(paths) // self.size)))
        futures = [self.submit(paths[i : i + per]) for i in range(0, len(paths), per)]
        results: list[FileMetadata] = []
        for future in futures:
            results.extend(future.result())
        return results
