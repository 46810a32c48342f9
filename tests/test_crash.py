"""Crash safety: real catalogue processes killed with SIGKILL, torn tails, full and read-only disks.

Everything here runs the real CLI in real subprocesses and checks the ledger from the
outside (``json``, ``hashlib``, ``cryptography``), besides custody's own verifier:

* **kill loop** - copies of the corpus catalogued by ``python -m custody catalogue`` that is
  killed with SIGKILL at seeded random points (after a random delay, or the moment the
  ledger has grown by a random number of bytes). After every kill: every complete line
  seen before is still there byte for byte, the ledger verifies (or only ends with a
  TRUNCATED_RECORD, which ``custody repair`` cuts, keeps and records), nothing the killed
  process started is left running, and nothing is written outside the evidence root. The
  final uninterrupted run of each round hashes only what the killed runs had not recorded,
  and every file ends up catalogued exactly once.
  ``CUSTODY_CRASH_SEED`` / ``CUSTODY_CRASH_KILLS`` reproduce or lengthen a run.
* **power cut** - a batch write torn at seeded random byte offsets (what a power cut can
  leave on disk): appending refuses, verify reports TRUNCATED_RECORD, repair removes only the
  torn tail, and a re-run records exactly the files whose records were lost.
* **disk full** (a small tmpfs), **read-only file system** (remount ro), **read-only
  ledger** and **permission denied mid-run** (capabilities dropped with ``setpriv``, since
  the suite runs as root): one line on stderr naming the file, exit 9, the ledger intact.

The helpers at the top are shared with test_concurrency.py, test_hostile.py and
test_secrets.py (``from test_crash import ...``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conftest import PASSPHRASE, SAMPLES, copy_media, snapshot
from custody.root import EvidenceRoot
from custody.trust.policy import policy_for
from custody.verify.roots import verify_root

SEED = int(os.environ.get("CUSTODY_CRASH_SEED", "20261127"))
KILLS = int(os.environ.get("CUSTODY_CRASH_KILLS", "52"))
SAMPLES_ONLY = SAMPLES  # small and always there: for the tests that loop
IO_ERROR = 9
UNUSABLE_INPUT = 3

# --- shared helpers ---------------------------------------------------------------------


def custody_env(home: Path, tmpdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a custody subprocess: its own keyring, TMPDIR we can watch."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env.update(CUSTODY_HOME=str(home), CUSTODY_PASSPHRASE=PASSPHRASE, TMPDIR=str(tmpdir))
    env.update(extra)
    return env


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    env: dict[str, str],
    out: Path,
    *,
    prefix: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start ``python -m custody ARGV`` in a session of its own, output to files."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".out"), "wb") as stdout, open(out.with_suffix(".err"), "wb") as err:
        return subprocess.Popen(
            [*prefix, sys.executable, "-m", "custody", *[os.fspath(a) for a in argv]],
            stdout=stdout,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )


def outputs(out: Path) -> tuple[str, str]:
    return (
        out.with_suffix(".out").read_text(errors="replace"),
        out.with_suffix(".err").read_text(errors="replace"),
    )


def session_members(sid: int) -> list[int]:
    """Processes still alive in session ``sid`` (the killed process's exiftool, say)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry))
    return found


def reap_session(sid: int, grace: float = 10.0) -> list[int]:
    """Wait for a dead process's children to go; kill and return any that stay."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        left = session_members(sid)
        if not left:
            return []
        time.sleep(0.02)
    left = session_members(sid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sid, signal.SIGKILL)
    return left


def ledger_file(root: Path) -> Path:
    return root / ".custody" / "ledger.jsonl"


def split_ledger(data: bytes) -> tuple[list[bytes], bytes]:
    """(complete lines without newline, torn tail) of ledger bytes."""
    cut = data.rfind(b"\n") + 1
    return (data[:cut].split(b"\n")[:-1] if cut else []), data[cut:]


def signed_part(line: bytes) -> bytes:
    marker = b',"signed":'
    start = line.index(marker) + len(marker)
    assert line.endswith(b"}")
    return line[start:-1]


def check_chain(lines: Sequence[bytes]) -> list[dict[str, Any]]:
    """Check a ledger with json/hashlib/cryptography only; return the ``signed`` objects.

    Every line parses, ``seq`` counts from 0, ``prev`` is the SHA-256 of the line before,
    and every signature verifies with the key its ``key`` record introduced.
    """
    return Chain().extend(lines)


class Chain:
    """``check_chain`` done incrementally over a ledger that only grows."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}
        self.prev: str | None = None
        self.lines: list[bytes] = []
        self.signed: list[dict[str, Any]] = []

    def extend(self, lines: Sequence[bytes]) -> list[dict[str, Any]]:
        assert list(lines[: len(self.lines)]) == self.lines, "earlier lines changed"
        for line in lines[len(self.lines) :]:
            doc = json.loads(line)
            signed = doc["signed"]
            assert signed["seq"] == len(self.lines), f"line {len(self.lines)}: seq {signed['seq']}"
            assert signed["prev"] == self.prev, f"record {signed['seq']}: chain broken"
            if signed["type"] == "key":
                fingerprint = signed["body"]["fingerprint"]
                self.keys.setdefault(fingerprint, base64.b64decode(signed["body"]["public_key"]))
            public = Ed25519PublicKey.from_public_bytes(self.keys[signed["signer"]])
            public.verify(base64.b64decode(doc["sig"]), signed_part(line))  # raises if bad
            self.prev = hashlib.sha256(line).hexdigest()
            self.lines.append(line)
            self.signed.append(signed)
        return self.signed


def item_paths(signed: Sequence[dict[str, Any]]) -> list[bytes]:
    """Exact name bytes of every item record, in ledger order (repeats kept)."""
    names = []
    for record in signed:
        if record["type"] != "item":
            continue
        body = record["body"]
        raw = body.get("path_bytes")
        names.append(base64.b64decode(raw) if raw is not None else body["path"].encode())
    return names


def ledger_codes(root: Path) -> set[str]:
    """Error finding codes of custody's own ledger check (warnings left out)."""
    result = verify_root(EvidenceRoot(root.resolve()), files=False, policy=policy_for())
    return {f.code.value for f in result.errors}


def files_under(tree: Path, rel_to: Path) -> dict[bytes, int]:
    """{name bytes relative to ``rel_to``: size} of every regular file under ``tree``."""
    found: dict[bytes, int] = {}
    base = os.fsencode(rel_to)
    for folder, _dirs, names in os.walk(os.fsencode(tree)):
        for name in names:
            full = os.path.join(folder, name)
            st = os.lstat(full)
            if not os.path.islink(full):
                found[os.path.relpath(full, base)] = st.st_size
    return found


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {stderr!r}"
    assert "Traceback" not in stderr
    assert lines[0].startswith("custody: error: "), lines[0]
    return lines[0]


def run(
    argv: Sequence[str | os.PathLike[str]],
    env: dict[str, str],
    *,
    prefix: Sequence[str] = (),
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "custody", *[os.fspath(a) for a in argv]],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``path`` (root only); skips the test with the reason if impossible."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) here: cannot make a small file system for disk-full tests")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "custody-test", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def without_dac_override() -> list[str]:
    """A prefix running a command as root without the capabilities that bypass permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip(
            "running as root and setpriv (util-linux) is not installed to drop capabilities"
        )
    return [setpriv, "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"]


def fill(fs: Path, leave: int) -> Path:
    """Fill the file system holding ``fs`` until ``leave`` bytes are free."""
    filler = fs / "filler"
    filler.unlink(missing_ok=True)
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as handle:
        remaining = max(0, free - leave)
        block = bytes(1 << 20)
        while remaining:
            remaining -= handle.write(block[: min(remaining, len(block))])
    return filler


# --- the kill loop ----------------------------------------------------------------------


@dataclass
class KillStats:
    seed: int
    kills: int = 0
    interrupts: int = 0
    kills_after_a_write: int = 0
    completed_before_kill: int = 0
    startup_tracebacks: int = 0
    torn_tails: int = 0
    torn_by: list[str] = field(default_factory=list)
    repairs: int = 0
    rounds: int = 0
    orphans: list[int] = field(default_factory=list)
    strategies: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def timed(self, what: str, since: float) -> None:
        self.seconds[what] = round(self.seconds.get(what, 0.0) + time.monotonic() - since, 1)


def make_round(root: Path, number: int, rng: random.Random) -> Path:
    """A folder to catalogue: the shipped samples plus small files, some awkwardly named."""
    folder = root / f"round-{number:02d}"
    copy_media(SAMPLES_ONLY, folder / "media")
    notes = folder / "notes"
    notes.mkdir()
    for index in range(60):
        (notes / f"note-{index:03d}.txt").write_bytes(rng.randbytes(rng.randint(0, 3000)))
    # Names exiftool is given through a private alias (newline, invalid UTF-8).
    (notes / "line\nbreak.txt").write_bytes(rng.randbytes(100))
    with open(os.fsencode(notes) + b"/bad-\xff-name.txt", "wb") as handle:
        handle.write(rng.randbytes(100))
    stamp = 1_700_000_000_000_000_000 + number
    for name in os.listdir(os.fsencode(notes)):
        os.utime(os.fsencode(notes) + b"/" + name, ns=(stamp, stamp))
    return folder


@dataclass
class Pace:
    """What an uninterrupted run of a round takes: to aim kills inside a run, not after."""

    seconds: float = 1.8  # a whole run of a round, here (2 cores)
    growth: int = 120_000  # ledger bytes a whole round adds; learned from the first

    def learn(self, growth: int) -> None:
        self.growth = max(1000, growth)


def interrupted_while_starting(stderr: str) -> bool:
    """Ctrl-C while Python imports custody: Python itself prints the KeyboardInterrupt.

    True when every custody frame in the traceback is module-level code or ``__main__``:
    no command had started, nothing was read or written. A known wart of
    ``__main__.py`` (its imports are outside any handler), in docs/robustness.md.
    """
    frames = re.findall(r'File "([^"]+)", line \d+, in (\S+)', stderr)
    ours = [(path, where) for path, where in frames if "/custody/" in path]
    return stderr.rstrip().endswith("KeyboardInterrupt") and all(
        where == "<module>" or path.endswith("__main__.py") for path, where in ours
    )


def interrupted_in_python_start_up(stderr: str) -> bool:
    """Ctrl-C while the interpreter itself initialises (importing ``site``, before any
    custody code): CPython prints "Fatal Python error: init_import_site" and exits 1. No
    custody code ran, so there is nothing custody could have done or left behind."""
    return stderr.startswith("Fatal Python error: init_") and stderr.rstrip().endswith(
        "KeyboardInterrupt"
    )


def wait_for_kill(
    proc: subprocess.Popen[bytes],
    ledger: Path,
    start_size: int,
    grown: int,
    pace: Pace,
    rng: random.Random,
) -> str:
    """SIGKILL ``proc`` at a random point of its run; returns how (or 'finished').

    delay: after a random time; growth: just after the ledger first grows (a batch has
    been written: the kill lands in the index update, the next batch or the checkpoint);
    bytes: the moment the ledger has grown by a random number of bytes; interrupt: SIGINT
    (Ctrl-C) after a random time instead of SIGKILL.
    """
    strategy = rng.choice(["delay", "delay", "growth", "bytes", "delay", "growth", "interrupt"])
    if strategy in ("delay", "interrupt"):
        # Python, the key and exiftool take ~0.6 s to start; the rest shrinks as earlier
        # runs of the round get further.
        left = max(0.1, 1 - grown / pace.growth)
        deadline = time.monotonic() + rng.uniform(0.05, 0.6 + (pace.seconds - 0.6) * left)
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.002)
    else:
        left = max(1, pace.growth - grown)
        target = start_size + (1 if strategy == "growth" else rng.randint(1, left))
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if ledger.stat().st_size >= target:
                    break
            except OSError:
                pass
            time.sleep(0.0005)
        if strategy == "growth":
            time.sleep(rng.uniform(0, 0.05))
    if proc.poll() is not None:
        return "finished"
    if strategy == "interrupt":
        # Ctrl-C, for comparison: custody stops itself (exit 130) and must leave no torn line.
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        return strategy
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return strategy


def test_sigkill_at_random_points_never_loses_a_written_record(
    evidence: Path, env: Path, tmp_path: Path, cli: Any
) -> None:
    """Two evidence roots side by side (one per core), each with its own seeded kill loop."""
    second = tmp_path / "evidence-2"
    assert cli("init", second).code == 0
    loops = [(evidence, SEED, (KILLS + 1) // 2), (second, SEED + 1, KILLS // 2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(kill_loop, root, seed, kills, env, tmp_path / f"loop-{seed}")
            for root, seed, kills in loops
        ]
        results = [f.result() for f in futures]
    print(f"\nkill loops: {results}")
    assert sum(r.kills for r in results) >= KILLS
    assert sum(r.kills_after_a_write for r in results) >= KILLS // 4, results


def kill_loop(evidence: Path, seed: int, kills: int, env: Path, work: Path) -> KillStats:
    rng = random.Random(seed)
    stats = KillStats(seed)
    pace = Pace()
    watched_tmp = work / "tmpdir"
    watched_tmp.mkdir(parents=True)
    child_env = custody_env(env, watched_tmp)
    ledger = ledger_file(evidence)
    kept = b""  # every complete line seen so far, in order
    chain = Chain()
    logs = work / "logs"
    round_snapshots: dict[Path, Any] = {}
    attempt = 0
    while stats.kills < kills:
        stats.rounds += 1
        began = time.monotonic()
        folder = make_round(evidence, stats.rounds, rng)
        round_snapshots[folder] = snapshot(folder)
        round_files = files_under(folder, evidence)
        stats.timed("making rounds", began)
        round_start = ledger.stat().st_size
        kills_this_round = rng.randint(3, 8)
        killed_here = 0
        while True:
            attempt += 1
            before = ledger.read_bytes()
            recorded_before = set(item_paths(chain.extend(split_ledger(before)[0])))
            out = logs / f"attempt-{attempt}"
            began = time.monotonic()
            proc = spawn(["catalogue", folder, "--root", evidence, "--json"], child_env, out)
            if killed_here < kills_this_round and stats.kills < kills:
                how = wait_for_kill(proc, ledger, len(before), len(before) - round_start, pace, rng)
            else:
                proc.wait(timeout=300)
                how = "finished"
            stats.timed("runs", began)
            began = time.monotonic()
            left = reap_session(proc.pid)
            stats.orphans.extend(left)
            assert not left, f"attempt {attempt}: processes outlived the killed custody: {left}"
            data = ledger.read_bytes()
            # No record that reached the ledger is ever lost or changed.
            assert data.startswith(kept), f"attempt {attempt} (seed {seed}): earlier lines changed"
            if how == "finished":
                break
            killed_here += 1
            stats.strategies[how] = stats.strategies.get(how, 0) + 1
            if how == "interrupt":
                stats.interrupts += 1
                stderr = outputs(out)[1]
                python_starting = interrupted_in_python_start_up(stderr)
                allowed = (0, 130, -signal.SIGINT) + ((1,) if python_starting else ())
                assert proc.returncode in allowed, (proc.returncode, stderr)
                if python_starting or interrupted_while_starting(stderr):
                    stats.startup_tracebacks += 1  # __main__.py: see docs/robustness.md
                else:
                    assert "Traceback" not in stderr and len(stderr.splitlines()) <= 1, stderr
                if proc.returncode == 0:
                    break
            else:
                stats.kills += 1
            lines, tail = split_ledger(data)
            if len(data) > len(before):
                stats.kills_after_a_write += 1
            chain.extend(lines)
            if tail:
                stats.torn_tails += 1
                stats.torn_by.append(how)
                assert ledger_codes(evidence) == {"TRUNCATED_RECORD"}
                repaired = run(["repair", "--root", evidence, "--json"], child_env)
                assert repaired.returncode == 0, repaired.stderr
                stats.repairs += 1
                doc = json.loads(repaired.stdout)
                assert doc["repaired"] is True and doc["removed_bytes"] == len(tail)
                assert doc["offset"] == len(data) - len(tail)
                assert (evidence / ".custody" / doc["saved_as"]).read_bytes() == tail
                after = ledger.read_bytes()
                assert after.startswith(data[: len(data) - len(tail)])
                data = after
                lines, tail = split_ledger(data)
                assert tail == b""
                assert chain.extend(lines)[-1]["type"] == "repair"
            # (Killed before its first record, a new root's ledger is still empty.)
            if data:
                assert ledger_codes(evidence) == set(), f"attempt {attempt} (seed {seed})"
            kept = data
            stats.timed("checks and repairs", began)
        # The run that finished the round: it continued where the killed ones stopped.
        assert proc.returncode == 0, outputs(out)
        if killed_here < kills_this_round and stats.kills < kills:
            stats.completed_before_kill += 1
        pace.learn(len(data) - round_start)
        report = json.loads(outputs(out)[0])
        already = set(round_files) & recorded_before
        assert report["unchanged"] == len(already), "the re-run did not continue where it stopped"
        assert report["bytes_hashed"] == sum(
            size for name, size in round_files.items() if name not in already
        )
        kept = data
        names = item_paths(chain.extend(split_ledger(data)[0]))
        for name in round_files:
            assert names.count(name) == 1, f"{name!r} catalogued {names.count(name)} times"
        stats.timed("checks and repairs", began)
    # Everything catalogued exactly once, the whole root verifies with files re-hashed.
    names = item_paths(check_chain(split_ledger(ledger.read_bytes())[0]))
    assert len(names) == len(set(names))
    on_disk = {n for n in files_under(evidence, evidence) if not n.startswith(b".custody/")}
    assert set(names) == on_disk
    full = run(["verify", evidence, "--json"], child_env)
    assert full.returncode == 0, full.stdout[-2000:]
    for folder, before_snapshot in round_snapshots.items():
        assert snapshot(folder) == before_snapshot, f"{folder.name}: originals changed"
    # Killed runs left nothing behind outside the root, and their scratch inside it
    # (exiftool's aliases for awkward names) was removed by the runs after them.
    assert list(watched_tmp.iterdir()) == []
    scratch = evidence / ".custody" / "tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    return stats


# --- a write torn by a power cut ----------------------------------------------------------

POWER_CUTS = 5


def test_torn_batch_is_reported_repaired_and_the_rerun_completes(
    evidence: Path, env: Path, tmp_path: Path, cli: Any
) -> None:
    """Any prefix of a batch write can be what a power cut leaves on disk.

    One real catalogue, then for each seeded cut point: the ledger as the cut left it;
    appending refuses; verify reports TRUNCATED_RECORD at the right record; ``custody
    repair`` (a real process) removes only the torn tail, keeps it and signs a repair
    record; a re-run records exactly the files whose records were lost.
    """
    rng = random.Random(SEED + 1)
    watched_tmp = tmp_path / "tmpdir"
    watched_tmp.mkdir()
    child_env = custody_env(env, watched_tmp)
    media = copy_media(SAMPLES_ONLY, evidence / "media")
    before_media = snapshot(media)
    done = run(["catalogue", media, "--root", evidence, "--json"], child_env)
    assert done.returncode == 0, done.stderr
    ledger = ledger_file(evidence)
    pristine = ledger.read_bytes()
    lines = pristine.split(b"\n")[:-1]
    everything = set(item_paths(check_chain(lines)))
    boundaries = {i + 1 for i, b in enumerate(pristine) if b == 0x0A}
    cuts = []
    while len(cuts) < POWER_CUTS:
        # After the key record, never on a line boundary (that is a clean, shorter ledger).
        cut = rng.randint(len(lines[0]) + 2, len(pristine) - 1)
        if cut not in boundaries:
            cuts.append(cut)
    for cut in cuts:
        # Each cut is a separate what-if from the same pristine ledger: a verifier that
        # remembered the previous iteration's longer history would rightly call this one a
        # rollback (NOT_APPEND_ONLY), so each starts as one that never saw it.
        shutil.rmtree(env / "ledgers", ignore_errors=True)
        torn = pristine[:cut]
        ledger.write_bytes(torn)
        complete, tail = split_ledger(torn)
        lost = everything - set(item_paths(check_chain(complete)))

        # Nothing may be appended after a torn line.
        refused = cli("catalogue", media, "--root", evidence)
        assert refused.code == UNUSABLE_INPUT
        assert "custody repair" in one_line(refused.err)
        assert ledger.read_bytes() == torn

        verified = cli("verify", evidence, "--ledger-only", "--json")
        assert verified.code == 1
        errors = [f for f in verified.json()["findings"] if f["severity"] == "error"]
        assert [(f["code"], f["seq"]) for f in errors] == [("TRUNCATED_RECORD", len(complete))]

        repaired = run(["repair", "--root", evidence, "--json"], child_env)
        assert repaired.returncode == 0, repaired.stderr
        doc = json.loads(repaired.stdout)
        assert (doc["offset"], doc["removed_bytes"]) == (len(torn) - len(tail), len(tail))
        assert doc["removed_sha256"] == hashlib.sha256(tail).hexdigest()
        assert (evidence / ".custody" / doc["saved_as"]).read_bytes() == tail
        now = ledger.read_bytes()
        assert now.startswith(torn[: len(torn) - len(tail)])
        after_repair = check_chain(split_ledger(now)[0])
        assert after_repair[-1]["type"] == "repair" and after_repair[-1]["seq"] == doc["record"]
        if cut == cuts[0]:
            assert cli("repair", "--root", evidence, "--json").json()["repaired"] is False

        rerun = cli("catalogue", media, "--root", evidence, "--json")
        assert rerun.code == 0, rerun.err
        report = rerun.json()
        assert {i["path"] for i in report["items"]} == {p.decode("utf-8", "replace") for p in lost}
        assert report["unchanged"] == len(everything - lost)
        names = item_paths(check_chain(split_ledger(ledger.read_bytes())[0]))
        assert sorted(names) == sorted(everything)
        assert cli("verify", evidence, "--json").code == 0
    assert snapshot(media) == before_media
    assert list(watched_tmp.iterdir()) == []


# --- the operating system says no ----------------------------------------------------------


def small_files(folder: Path, count: int, seed: int) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for index in range(count):
        (folder / f"msg-{index:03d}.txt").write_bytes(rng.randbytes(rng.randint(1, 2000)))
    return folder


def test_disk_full_at_any_stage_is_a_clear_error_and_the_ledger_stays_intact(
    env: Path, tmp_path: Path
) -> None:
    """The disk fills up before the index exists, while it grows, and between batches."""
    watched_tmp = tmp_path / "tmpdir"
    watched_tmp.mkdir()
    child_env = custody_env(env, watched_tmp)
    assert run(["keys", "generate", "--name", "alice"], child_env).returncode == 0
    failures: list[tuple[int, str, bool]] = []
    with tmpfs(tmp_path / "small-disk", "32m") as disk:
        root = disk / "evidence"
        assert run(["init", root], child_env).returncode == 0
        media = copy_media(SAMPLES_ONLY, root / "media")
        before = snapshot(media)
        # (free KiB, what to catalogue): nothing fits, not even the index; plenty (the
        # index exists from here on); too little for one batch of records; room for some
        # batches but not for the index to follow them.
        steps = [(0, "small"), (None, "media"), (64, "media"), (160, "small"), (240, "small")]
        for step, (leave_kib, kind) in enumerate(steps):
            if kind == "small":
                folder = small_files(root / f"batch-{step}", 150, SEED + step)
            else:
                folder = copy_media(SAMPLES_ONLY, root / f"copy-{step}")
            data = ledger_file(root).read_bytes()
            filler = fill(disk, leave_kib * 1024) if leave_kib is not None else None
            try:
                full = run(["catalogue", folder, media, "--root", root], child_env)
            finally:
                if filler is not None:
                    filler.unlink()
            now = ledger_file(root).read_bytes()
            assert now.startswith(data), "a failed run changed records already written"
            lines, tail = split_ledger(now)
            assert tail == b"", "a failed append left a torn line"
            check_chain(lines)
            if lines:
                assert ledger_codes(root) == set()
            if full.returncode == 0:
                continue
            line = one_line(full.stderr)
            assert full.returncode == IO_ERROR, line
            assert "the disk is full" in line
            assert str(root / ".custody") in line  # names the file that could not be written
            kind = "index" if "ledger index" in line else "append" if "append to" in line else line
            failures.append((leave_kib, kind, len(now) > len(data)))
        # With space again, a re-run completes the set, each file exactly once.
        again = run(["catalogue", root, "--root", root, "--json"], child_env)
        assert again.returncode == 0, again.stderr
        names = item_paths(check_chain(split_ledger(ledger_file(root).read_bytes())[0]))
        on_disk = {n for n in files_under(root, root) if not n.startswith(b".custody/")}
        assert sorted(names) == sorted(on_disk)
        assert run(["verify", root], child_env).returncode == 0
        assert snapshot(media) == before
    assert list(watched_tmp.iterdir()) == []
    print(f"\ndisk full: {failures}")
    assert failures[:2] == [(0, "index", False), (64, "append", False)], failures
    assert any(partial for _, _, partial in failures), f"no failure between batches: {failures}"


def test_init_killed_at_any_moment_never_blocks_the_next_init(env: Path, tmp_path: Path) -> None:
    """SIGKILL a real `custody init` at random moments, and as soon as its staging folder
    shows: each time, either a complete .custody/ or none, and `init` then succeeds."""
    rng = random.Random(SEED)
    child_env = custody_env(env, tmp_path)
    outcomes = {"complete": 0, "none": 0, "staging seen": 0}
    for attempt in range(24):
        root = tmp_path / f"card-{attempt}"
        proc = spawn(["init", root], child_env, tmp_path / "logs" / f"init-{attempt}")
        if attempt % 2:
            time.sleep(rng.uniform(0.0, 0.4))
        else:  # aim at the moment the state folder is being built
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                if root.is_dir() and list(root.glob(".custody.init-*")):
                    outcomes["staging seen"] += 1
                    break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = root / ".custody"
        if state.exists():
            outcomes["complete"] += 1
            assert (state / "config.toml").is_file() and ledger_file(root).read_bytes() == b""
            assert run(["init", root], child_env).returncode != 0  # already a root
        else:
            outcomes["none"] += 1
            again = run(["init", root], child_env)
            assert again.returncode == 0, again.stderr
            assert state.is_dir()
        # Whatever the kill left behind is gone; nothing but .custody/ in the new root.
        assert [p.name for p in root.iterdir()] == [".custody"]
        assert run(["verify", root, "--ledger-only"], child_env).returncode == UNUSABLE_INPUT
    assert outcomes["staging seen"] >= 1, outcomes  # the critical moment was hit at least once


def test_read_only_file_system_refuses_cleanly(env: Path, tmp_path: Path) -> None:
    watched_tmp = tmp_path / "tmpdir"
    watched_tmp.mkdir()
    child_env = custody_env(env, watched_tmp)
    assert run(["keys", "generate", "--name", "alice"], child_env).returncode == 0
    with tmpfs(tmp_path / "card", "16m") as disk:
        root = disk / "evidence"
        assert run(["init", root], child_env).returncode == 0
        media = copy_media(SAMPLES_ONLY, root / "media")
        first = sorted(p for p in media.iterdir() if p.is_dir())[0]
        assert run(["catalogue", first, "--root", root], child_env).returncode == 0
        data = ledger_file(root).read_bytes()
        before = snapshot(media)
        remount = subprocess.run(
            ["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True, check=False
        )
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
        try:
            for argv in (
                ["catalogue", media, "--root", root],
                ["sign", "--root", root],
                ["repair", "--root", root],
            ):
                refused = run(argv, child_env)
                line = one_line(refused.stderr)
                assert refused.returncode == IO_ERROR, (argv, line)
                assert "read-only" in line and str(root / ".custody") in line
            # Reading still works on a write-protected card.
            assert run(["verify", root, "--ledger-only"], child_env).returncode == 0
            assert run(["log", "--root", root, "--json"], child_env).returncode == 0
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=False)
        assert ledger_file(root).read_bytes() == data
        assert snapshot(media) == before
        assert run(["catalogue", media, "--root", root], child_env).returncode == 0
        assert run(["verify", root], child_env).returncode == 0
    assert list(watched_tmp.iterdir()) == []


def test_read_only_ledger_file_is_permission_denied(
    catalogued: Path, env: Path, tmp_path: Path
) -> None:
    prefix = without_dac_override()
    watched_tmp = tmp_path / "tmpdir"
    watched_tmp.mkdir()
    child_env = custody_env(env, watched_tmp)
    ledger = ledger_file(catalogued)
    data = ledger.read_bytes()
    extra = catalogued / "media" / "late-arrival.txt"
    extra.write_bytes(b"a file added after the first catalogue")
    ledger.chmod(0o444)
    try:
        for argv in (
            ["catalogue", catalogued / "media", "--root", catalogued],
            ["sign", "--root", catalogued],
        ):
            refused = run(argv, child_env, prefix=prefix)
            line = one_line(refused.stderr)
            assert refused.returncode == IO_ERROR, line
            assert f"cannot append to {ledger}: permission denied" in line
    finally:
        ledger.chmod(0o644)
    assert ledger.read_bytes() == data
    assert run(["catalogue", catalogued / "media", "--root", catalogued], child_env).returncode == 0
    assert run(["verify", catalogued], child_env).returncode == 0
    assert list(watched_tmp.iterdir()) == []


def test_permission_withdrawn_mid_run_keeps_every_written_record(
    evidence: Path, env: Path, tmp_path: Path
) -> None:
    """The ledger becomes unwritable between two batches of one run (a shared server)."""
    prefix = without_dac_override()
    watched_tmp = tmp_path / "tmpdir"
    watched_tmp.mkdir()
    child_env = custody_env(env, watched_tmp)
    folder = evidence / "dump"
    folder.mkdir()
    for index in range(100):
        (folder / f"a{index:03d}.txt").write_bytes(b"message %d" % index)
    # Hashing this takes long enough for the ledger to change hands after the first batch.
    with open(folder / "z-disk-image.raw", "wb") as handle:
        handle.truncate(384 << 20)
        handle.write(b"partition table")
    before = snapshot(folder)
    ledger = ledger_file(evidence)
    start = ledger.stat().st_size
    out = tmp_path / "logs" / "mid-run"
    proc = spawn(["catalogue", folder, "--root", evidence, "--json"], child_env, out, prefix=prefix)
    try:
        deadline = time.monotonic() + 120
        while ledger.stat().st_size == start and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        ledger.chmod(0o444)
        code = proc.wait(timeout=300)
    finally:
        ledger.chmod(0o644)
        if proc.poll() is None:
            proc.kill()
    _, stderr = outputs(out)
    assert code == IO_ERROR, (code, stderr)
    assert f"cannot append to {ledger}: permission denied" in one_line(stderr)
    data = ledger.read_bytes()
    lines, tail = split_ledger(data)
    assert tail == b""
    written = item_paths(check_chain(lines))
    assert written  # the first batch, durable before the permission went
    assert ledger_codes(evidence) == set()
    again = run(["catalogue", folder, "--root", evidence, "--json"], child_env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["unchanged"] == len(written)
    names = item_paths(check_chain(split_ledger(ledger.read_bytes())[0]))
    assert sorted(names) == sorted(files_under(folder, evidence))
    assert snapshot(folder) == before
    assert list(watched_tmp.iterdir()) == []


def test_ctrl_c_during_large_files_stops_at_once_and_records_nothing_half_read(
    env: Path, tmp_path: Path
) -> None:
    """Ctrl-C must not first finish reading every queued multi-GB file.

    Eight sparse 2 GiB files: hashing them all takes several seconds on two cores, so an
    interrupt that waited for the queued files (as ThreadPoolExecutor does on exit) would
    show here. The bound is generous for a loaded CI machine; the measured time is ~0.1 s.
    """
    child_env = custody_env(env, tmp_path)
    root = tmp_path / "evidence"
    assert run(["init", root], child_env).returncode == 0
    assert run(["keys", "generate", "--name", "alice"], child_env).returncode == 0
    big = root / "big"
    big.mkdir()
    for i in range(8):
        with open(big / f"video-{i}.mp4", "wb") as handle:
            handle.truncate(2 << 30)
    out = tmp_path / "logs" / "catalogue"
    proc = spawn(["catalogue", big, "--root", root], child_env, out)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if bytes_read(proc.pid) > 256 << 20:  # hashing is well under way
            break
        time.sleep(0.01)
    assert proc.poll() is None, outputs(out)
    interrupted = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    took = time.monotonic() - interrupted
    stderr = outputs(out)[1]
    assert proc.returncode == 130, stderr
    assert stderr.strip() == "custody: interrupted"
    assert took < 3.0, f"Ctrl-C took {took:.1f} s to take effect"
    # Nothing was recorded for files that were not read to the end.
    assert b'"type":"item"' not in ledger_file(root).read_bytes()
    assert run(["verify", root, "--ledger-only"], child_env).returncode in (0, 3)


def bytes_read(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/io") as handle:
            for line in handle:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
