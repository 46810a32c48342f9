"""The timeline of one ``custody catalogue`` run: what happens from process start to exit.

    CUSTODY_HOME=... CUSTODY_PASSPHRASE=... .venv/bin/python bench/timeline.py ROOT FOLDER

Runs the real CLI in this process (``custody.cli.app.run``), with light wrappers around the
functions that mark each phase: interpreter start (from /proc/self/stat), imports, key
unlock (Argon2id), each exiftool start, the first and last file hashed, each metadata
batch, each batch recorded under the ledger lock, the checkpoint, and exit. Prints one
line per event, in milliseconds since the kernel started the process, and which thread
it ran on. Nothing in custody is changed; the wrappers only read the clock.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

EVENTS: list[tuple[float, float, str, str]] = []  # (start ms, end ms, thread, what)


def process_start() -> float:
    """perf_counter() value at which the kernel started this process."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/self/stat") as stat, open("/proc/uptime") as up:
        start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        uptime = float(up.read().split()[0])
    age = uptime - start_ticks / ticks
    return time.perf_counter() - age


T0 = process_start()


def ms() -> float:
    return (time.perf_counter() - T0) * 1000


def mark(what: str, start: float | None = None) -> None:
    now = ms()
    EVENTS.append((start if start is not None else now, now, threading.current_thread().name,
                   what))


def wrap(owner: Any, name: str, label: str | Callable[..., str]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = ms()
        try:
            return original(*args, **kwargs)
        finally:
            text = label(*args, **kwargs) if callable(label) else label
            mark(text, start)

    setattr(owner, name, timed)


def main() -> None:
    root, folder = sys.argv[1], sys.argv[2]
    mark("python running this script (interpreter start-up before it)")
    start = ms()
    import custody.cli.app as app  # the CLI: typer, rich, every command module

    mark("import custody.cli.app (typer, rich, command modules)", start)
    start = ms()
    from custody.acquisition import catalogue as cat
    from custody.evidence import exiftool, hashing
    from custody.keys import keyring
    from custody.ledger import store

    mark("import the catalogue path (ledger, keys, evidence, exiftool)", start)
    wrap(keyring.KeyFile, "unlock", "unlock the key (Argon2id)")
    wrap(exiftool.ExifTool, "_start", "start one exiftool (Perl, -ver handshake)")
    wrap(exiftool.ExifTool, "extract", lambda self, paths: f"exiftool reads {len(paths)} file(s)")
    wrap(cat._Run, "_commit", lambda self, batch: f"record {len(batch)} item(s) under the lock")
    wrap(store.LedgerWriter, "checkpoint", "checkpoint (Merkle root) signed and appended")
    wrap(cat, "open_ledger", "open the ledger and its index")
    wrap(cat._Run, "_hash", lambda self, c: f"hash {c.display} ({c.size / (1 << 20):.0f} MiB)")
    del hashing
    start = ms()
    code = app.run(["catalogue", folder, "--root", root, "--json"])
    mark(f"custody catalogue returned {code}", start)
    sys.stdout.flush()
    for begin, end, thread, what in sorted(EVENTS):
        print(f"{begin:8.1f} {end:8.1f} {end - begin:7.1f}  {thread:<14} {what}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
