"""Concurrency: several real custody processes on one evidence root at the same time.

* four ``custody catalogue`` processes started together over overlapping folders, three
  rounds (the corpus, then the shipped samples twice), the last one with a ``custody sign``
  racing them: exit 0 for all, one valid chain, every file recorded exactly once;
* while they run, the test process reads and verifies the ledger over and over, as a
  ``custody verify`` on a shared server would: every complete line it sees verifies and
  stays, byte for byte, in every later read;
* four processes again, one of them killed with SIGKILL mid-run: the others finish, the
  killed one's folders complete on a re-run, still exactly once.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

from conftest import SAMPLES, copy_media, media_source, snapshot
from custody.ledger.checks import verify_ledger_lines
from custody.verify.roots import VerificationResult
from test_crash import (
    SEED,
    Chain,
    custody_env,
    files_under,
    item_paths,
    ledger_file,
    outputs,
    reap_session,
    run,
    spawn,
    split_ledger,
)


def overlapping(folder: Path) -> list[list[Path]]:
    """Four argument lists over ``folder`` that overlap: every file is in two or more."""
    tops = sorted(p for p in folder.iterdir() if p.is_dir())
    deeper = sorted(p for p in folder.rglob("*") if p.is_dir() and p.parent != folder)
    return [
        [folder],
        tops[: max(1, len(tops) // 2 + 1)],
        [*tops[len(tops) // 2 :], *deeper[:2]],
        [*deeper[::2], tops[0]],
    ]


class Reader(threading.Thread):
    """Reads the ledger as it grows, as a ``custody verify`` on a shared server would.

    Every complete line it sees must verify, and must still be there, unchanged, in every
    later read. A last line without its newline is counted, not failed: Linux does not
    make a ``write`` atomic for a reader of a regular file, so a read can catch an append
    in progress (it completes; the final checks see it whole).
    """

    def __init__(self, ledger: Path) -> None:
        super().__init__(daemon=True)
        self.ledger = ledger
        self.stop = threading.Event()
        self.reads = 0
        self.in_progress = 0
        self.problems: list[str] = []

    def run(self) -> None:
        seen = b""
        while not self.stop.is_set():
            data = self.ledger.read_bytes()
            self.reads += 1
            complete = data[: data.rfind(b"\n") + 1]
            if len(complete) < len(data):
                self.in_progress += 1
            if not complete.startswith(seen):
                self.problems.append(f"read {self.reads}: complete lines changed")
            seen = complete
            if self.reads % 20 == 0:
                result = VerificationResult(root=str(self.ledger))
                verify_ledger_lines(lambda d=complete: _lines(d), result, collect_items=False)
                self.problems += [f"{f.code}: {f.message}" for f in result.errors]
            time.sleep(0.001)


def _lines(data: bytes) -> list[tuple[bytes, bool]]:
    return [(p, True) for p in data.split(b"\n")[:-1]]


def test_four_catalogues_on_one_root_make_one_chain_with_each_file_once(
    evidence: Path, env: Path, tmp_path: Path
) -> None:
    watched_tmp = tmp_path / "tmpdir"
    watched_tmp.mkdir()
    child_env = custody_env(env, watched_tmp)
    ledger = ledger_file(evidence)
    chain = Chain()
    rng = random.Random(SEED)
    processes = 0
    reader = Reader(ledger)
    reader.start()
    snapshots = {}
    try:
        for number, source in enumerate([media_source(), SAMPLES, SAMPLES], 1):
            folder = copy_media(source, evidence / f"round-{number}")
            snapshots[folder] = snapshot(folder)
            plans: list[list[Any]] = [
                ["catalogue", *paths, "--root", evidence, "--json"] for paths in overlapping(folder)
            ]
            if number == 3:
                plans.append(["sign", "--root", evidence, "--statement", "checked mid-run"])
            started = []
            for index, argv in enumerate(plans):
                out = tmp_path / "logs" / f"round-{number}-{index}"
                started.append((spawn(argv, child_env, out), out))
                time.sleep(rng.uniform(0, 0.05))
            processes += len(started)
            for proc, out in started:
                assert proc.wait(timeout=300) == 0, outputs(out)
                assert reap_session(proc.pid) == []
            data = ledger.read_bytes()
            lines, tail = split_ledger(data)
            assert tail == b""
            names = item_paths(chain.extend(lines))
            for name in files_under(folder, evidence):
                assert names.count(name) == 1, f"{name!r} recorded {names.count(name)} times"
            reports = [json.loads(outputs(out)[0]) for _, out in started[:4]]
            # Together the four recorded each file once; each saw the others' records.
            assert sum(r["added"] + r["duplicates"] for r in reports) == len(
                files_under(folder, evidence)
            )
    finally:
        reader.stop.set()
        reader.join()
    assert reader.problems == [], reader.problems[:5]
    signed = chain.signed
    assert any(s["type"] == "checkpoint" and s["body"].get("statement") for s in signed)
    full = run(["verify", evidence, "--json"], child_env)
    assert full.returncode == 0, full.stdout[-3000:]
    for folder, before in snapshots.items():
        assert snapshot(folder) == before
    assert list(watched_tmp.iterdir()) == []
    print(
        f"\nconcurrency: {processes} processes; reader: {reader.reads} reads, "
        f"{reader.in_progress} caught an append in progress"
    )


def test_one_of_four_killed_the_others_finish_and_a_rerun_completes(
    evidence: Path, env: Path, tmp_path: Path
) -> None:
    watched_tmp = tmp_path / "tmpdir"
    watched_tmp.mkdir()
    child_env = custody_env(env, watched_tmp)
    rng = random.Random(SEED + 7)
    folder = copy_media(media_source(), evidence / "media")
    plans = overlapping(folder)
    victim = 1
    started = []
    for index, paths in enumerate(plans):
        out = tmp_path / "logs" / f"p{index}"
        started.append((spawn(["catalogue", *paths, "--root", evidence], child_env, out), out))
    time.sleep(rng.uniform(0.6, 1.6))
    proc, _ = started[victim]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reap_session(proc.pid) == []
    for index, (other, out) in enumerate(started):
        if index != victim:
            assert other.wait(timeout=300) == 0, outputs(out)
    lines, tail = split_ledger(ledger_file(evidence).read_bytes())
    assert tail == b""
    Chain().extend(lines)
    # The killed process's share was covered by the overlapping others or is finished now.
    again = run(["catalogue", *plans[victim], "--root", evidence], child_env)
    assert again.returncode == 0, again.stderr
    names = item_paths(Chain().extend(split_ledger(ledger_file(evidence).read_bytes())[0]))
    assert sorted(names) == sorted(files_under(folder, evidence))
    assert run(["verify", evidence], child_env).returncode == 0
    assert list(watched_tmp.iterdir()) == []
