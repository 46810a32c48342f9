"""custody benchmarks: custody beside the tools people use today, in the same run, as ratios.

    .venv/bin/python bench/run.py                # every benchmark at full size (~40 min)
    .venv/bin/python bench/run.py --quick        # a reduced subset (< 2 min)
    .venv/bin/python bench/run.py --only hash,catalogue-large
    .venv/bin/python bench/run.py --runs 5       # more repetitions (default 3)

Each benchmark builds its own inputs under bench/out/ (random data, copies of corpus files,
synthetic ledgers signed with a throwaway key; reused between runs), then times custody and
the reference tools on the same machine in the same run. Rules that keep it honest:

* every timed run checks its result before its time counts: custody's recorded digests are
  compared with those the reference tool printed (``openssl dgst``, ``b3sum``, ``hashdeep``,
  ``sha256sum``, bagit-python's manifests), verdicts and counts are read from ``--json``;
  a run whose result is wrong raises, and the benchmark fails rather than report a time;
* every time is the median of ``--runs`` runs (default 3), shown with its spread
  (min-max); ratios are computed from medians measured in this one run;
* the code measured is this repository's ``src/`` (PYTHONPATH is set to it), whatever the
  virtualenv's own install points to.

It prints one table (benchmark, measure, custody, reference, ratio, target, met, peak RSS,
note) and writes bench/out/results.json and bench/out/table.md; ``--plots`` also draws the
growth curves as PNG files (bench/plots.py). The exit status is 1 when a target is missed.
Absolute times on a shared machine are noise: the machine's load is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
BIN = Path(sys.executable).parent
CUSTODY = [str(BIN / "custody")]
BAGIT = str(BIN / "bagit.py")
MiB = 1 << 20
GiB = 1 << 30
PASSPHRASE = "benchmark passphrase"
RUNS = 3
RUNS_LARGE = 1  # runs of the 100,000-file catalogue (--runs-large)
SMALL_COUNTS = [1000, 10_000, 100_000]  # --small-counts
LEDGER_SIZES: list[int] | None = None  # --ledger-sizes (default 10k, 100k, 1M, the big one)
SIZE_MAX_GIB = 16  # --size-max: the largest set of the size curve
OTHER_TREE = False  # --src names another tree: only the rows every version can run


class WrongResult(AssertionError):
    """A timed run produced a wrong result: its time must not count."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise WrongResult(message)


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Timing:
    """The runs of one command: median and spread of wall time, peak RSS."""

    times: list[float]
    rss_mb: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> str:
        return f"{min(self.times):.2f}-{max(self.times):.2f}"


@dataclass
class Row:
    name: str
    measure: str
    custody: float
    custody_spread: str
    reference: float | None
    reference_spread: str | None
    ratio: float | None
    target: str
    met: bool | None  # None: informational (a peer beside custody, no target)
    rss_mb: float | None = None
    note: str = ""


@dataclass
class Curve:
    """Points of a growth curve for bench/plots.py: x, and one series per tool."""

    name: str
    x_label: str
    y_label: str
    x: list[float] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


CURVES: dict[str, Curve] = {}
# Catalogue timings of whole file sets already measured in this run (by total bytes), so
# the size curve does not measure the 2 GiB and 16 GiB sets twice.
MEASURED: dict[int, tuple[Timing, Timing]] = {}


def run_cmd(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ok: tuple[int, ...] = (0,),
    stdin: Any = None,
) -> tuple[float, float, str]:
    """Run a command under GNU time; (wall seconds, peak RSS in MB, stdout)."""
    stats = OUT / "time.txt"
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-o", str(stats), "-f", "%M", *map(str, argv)],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        stdin=stdin,
        text=True,
        errors="replace",
    )
    wall = time.perf_counter() - start
    if proc.returncode not in ok:
        raise WrongResult(
            f"{' '.join(map(str, argv))[:200]} exited {proc.returncode}: {proc.stderr[-1500:]}"
        )
    rss_kb = int(stats.read_text().strip().splitlines()[-1])
    return wall, rss_kb / 1024, proc.stdout


def repeat(n: int, once: Callable[[int], tuple[float, float]]) -> Timing:
    """Run ``once(i)`` n times (each checks its own result); median and spread."""
    results = [once(i) for i in range(n)]
    return Timing([r[0] for r in results], max(r[1] for r in results))


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- inputs ---------------------------------------------------------------------------------


def drop_in(path: Path, size: int, *, sparse: bool = False) -> Path:
    """A file of random bytes (or a sparse one), reused between runs when present."""
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as handle:
        if sparse:
            handle.truncate(size)
        else:
            remaining = size
            while remaining:
                chunk = min(remaining, 64 * MiB)
                handle.write(os.urandom(chunk))
                remaining -= chunk
    tmp.rename(path)
    return path


def large_set(count: int, each: int) -> list[Path]:
    folder = OUT / "data" / f"large-{count}x{each // MiB}M"
    return [drop_in(folder / f"part-{i:02d}.bin", each) for i in range(count)]


def warm(paths: Sequence[Path]) -> None:
    for p in paths:
        subprocess.run(["cat", str(p)], stdout=subprocess.DEVNULL, check=True)


def custody_env(home: Path) -> dict[str, str]:
    return {"CUSTODY_HOME": str(home), "CUSTODY_PASSPHRASE": PASSPHRASE, "CUSTODY_ROOT": ""}


def fresh_root(name: str, *digests: str) -> tuple[Path, dict[str, str]]:
    base = OUT / "roots" / name
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    env = custody_env(base / "home")
    root = base / "root"
    options = [a for d in digests for a in ("--digest", d)]
    subprocess.run([*CUSTODY, "init", str(root), *options], env={**os.environ, **env},
                   check=True, capture_output=True)
    subprocess.run([*CUSTODY, "keys", "generate", "--name", "bench"], env={**os.environ, **env},
                   check=True, capture_output=True)
    return root, env


def empty_ledger(root: Path) -> None:
    """Start a root's ledger afresh (keys and config stay): a re-run finds nothing new."""
    shutil.rmtree(root / ".custody" / "cache", ignore_errors=True)
    (root / ".custody" / "cache").mkdir()
    (root / ".custody" / "ledger.jsonl").write_bytes(b"")


def link_into(files: Sequence[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        os.link(f, folder / f.name)  # hard links: no copy, the same page cache


def recorded(root: Path) -> dict[str, dict[str, str]]:
    """{path: digests} of the item records, read with plain json (not custody)."""
    found = {}
    for line in (root / ".custody" / "ledger.jsonl").read_bytes().splitlines():
        signed = json.loads(line)["signed"]
        if signed["type"] == "item":
            found[signed["body"]["path"]] = signed["body"]["digests"]
    return found


def digest_lines(text: str) -> dict[str, str]:
    """{file name: hex} from ``openssl dgst`` (``SHA2-256(name)= hex``), ``sha256sum`` or
    ``b3sum`` (``hex  name``) output; names reduced to their last component."""
    found = {}
    for line in text.splitlines():
        m = re.match(r"^[\w-]+\((.*)\)= ([0-9a-f]+)$", line)
        if m:
            found[os.path.basename(m[1])] = m[2]
            continue
        m = re.match(r"^([0-9a-f]{64,128})  (.*)$", line)
        if m:
            found[os.path.basename(m[2])] = m[1]
    return found


def by_name(digests: dict[str, dict[str, str]], algorithm: str) -> dict[str, str]:
    return {os.path.basename(p): d[algorithm] for p, d in digests.items()}


REFERENCE_SCRIPT = (
    'for f in "$@"; do openssl dgst -sha256 "$f"; done; '
    'for f in "$@"; do b3sum --num-threads 1 "$f"; done'
)


def two_core_reference(files: Sequence[Path]) -> tuple[float, dict[str, str], dict[str, str]]:
    """The reference for SHA-256 + BLAKE3 on two cores: two processes, each running
    ``openssl dgst -sha256`` then ``b3sum --num-threads 1`` over half the files.
    Returns (seconds, {name: sha256}, {name: blake3})."""
    halves = [files[0::2], files[1::2]]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(["bash", "-c", REFERENCE_SCRIPT, "ref", *map(str, h)],
                         stdout=subprocess.PIPE, text=True)
        for h in halves if h
    ]
    outputs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - start
    expect(all(p.returncode == 0 for p in procs), "reference tools failed")
    sha, b3 = {}, {}
    for text in outputs:
        for line in text.splitlines():
            m = re.match(r"^SHA2?-?256\((.*)\)= ([0-9a-f]{64})$", line)
            if m:
                sha[os.path.basename(m[1])] = m[2]
            else:
                digest, name = line.split("  ", 1)
                b3[os.path.basename(name)] = digest
    expect(len(sha) == len(b3) == len(files), "reference tools did not hash every file")
    return wall, sha, b3


# --- benchmarks -----------------------------------------------------------------------------


def bench_startup(quick: bool, runs: int) -> list[Row]:
    times = [run_cmd([*CUSTODY, "--version"])[0] for _ in range(15)]
    median = statistics.median(times) * 1000
    return [Row("startup", "custody --version, ms (median of 15)", median,
                f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f}", None, None, None,
                "< 150 ms", median < 150)]


def bench_hash(quick: bool, runs: int) -> list[Row]:
    size = (512 if quick else 2048) * MiB
    path = drop_in(OUT / "data" / f"hash-{size // MiB}M.bin", size)
    warm([path])
    reference: dict[str, str] = {}

    def openssl(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd(["openssl", "dgst", "-sha256", path])
        reference.update(digest_lines(text))
        return wall, rss

    def ours(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd([*CUSTODY, "hash", path])
        expect(digest_lines(text) == reference, "custody hash differs from openssl dgst")
        return wall, rss

    ref = repeat(runs, openssl)
    mine = repeat(runs, ours)
    sha256sum = repeat(1, lambda _: run_cmd(["sha256sum", path])[:2])
    mb = size / MiB
    ratio = ref.median / mine.median
    return [Row("hash", f"custody hash, {mb:.0f} MiB, s", mine.median, mine.spread, ref.median,
                ref.spread, ratio, ">= 0.97x openssl dgst -sha256 (speed)", ratio >= 0.97,
                mine.rss_mb,
                f"{mb / mine.median:,.0f} MiB/s; sha256sum {mb / sha256sum.median:,.0f} MiB/s")]


def bench_hash_memory(quick: bool, runs: int) -> list[Row]:
    size = (2 if quick else 10) * GiB
    path = drop_in(OUT / "data" / f"sparse-{size // MiB}M.bin", size, sparse=True)
    wall, rss, _ = run_cmd([*CUSTODY, "hash", "--algo", "sha256", "--algo", "blake3", path])
    return [Row("hash-rss", f"peak RSS hashing {size // GiB} GiB, MB", rss, "", None, None, None,
                "< 150 MB", rss < 150, rss, f"{size / MiB / wall:,.0f} MiB/s (sparse file)")]


def _catalogue_files(
    files: Sequence[Path], name: str, runs: int, *, digests: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> tuple[Timing, Path, dict[str, str]]:
    """Catalogue ``files`` (hard-linked into a fresh root) ``runs`` times; each run checked
    against openssl's and b3sum's digests. Returns (timing, root, env)."""
    root, env = fresh_root(name, *digests)
    link_into(files, root / "data")
    _, sha, b3 = two_core_reference(files)

    def once(_: int) -> tuple[float, float]:
        empty_ledger(root)
        wall, rss, _ = run_cmd([*CUSTODY, "catalogue", "data", *extra], env=env, cwd=root)
        got = recorded(root)
        expect(len(got) == len(files), f"{len(got)} items recorded, {len(files)} expected")
        expect(by_name(got, "sha256") == sha, "recorded SHA-256 differs from openssl dgst")
        if "blake3" in next(iter(got.values())):
            expect(by_name(got, "blake3") == b3, "recorded BLAKE3 differs from b3sum")
        return wall, rss

    return repeat(runs, once), root, env


def bench_catalogue_large(quick: bool, runs: int) -> list[Row]:
    count, each = 8, (32 if quick else 256) * MiB
    files = large_set(count, each)
    warm(files)
    mine, root, env = _catalogue_files(files, "catalogue-large", runs)
    ref = repeat(runs, lambda _: (two_core_reference(files)[0], 0.0))
    MEASURED[count * each] = (mine, ref)
    mb = count * each / MiB
    ratio = ref.median / mine.median
    rows = [Row("catalogue-large", f"catalogue {count} x {each // MiB} MiB, s", mine.median,
                mine.spread, ref.median, ref.spread, ratio,
                ">= 0.90x 2 x (openssl sha256 + b3sum -1) (speed)", ratio >= 0.90, mine.rss_mb,
                f"{mb / mine.median:,.0f} MiB/s vs {mb / ref.median:,.0f} MiB/s")]
    if quick or OTHER_TREE:
        return rows
    # What BLAKE3 costs: the same files into a root that records SHA-256 alone.
    alone, _, _ = _catalogue_files(files, "catalogue-sha256-only", runs, digests=("sha256",))
    cost = mine.median / alone.median - 1
    rows.append(Row("blake3-cost", "catalogue 2 GiB, SHA-256 alone (root init --digest sha256), s",
                    alone.median, alone.spread, mine.median, mine.spread,
                    mine.median / alone.median, "(informational)", None, alone.rss_mb,
                    f"BLAKE3 adds {cost:+.0%} to the default catalogue"))
    # Scaling with --jobs: 1 and 2 workers.
    one, _, _ = _catalogue_files(files, "catalogue-jobs-1", runs, extra=("--jobs", "1"))
    rows.append(Row("jobs-scaling", "catalogue 2 GiB --jobs 1 vs default (2 cores), s",
                    one.median, one.spread, mine.median, mine.spread, one.median / mine.median,
                    "(informational)", None, one.rss_mb,
                    f"{mb / one.median:,.0f} MiB/s with 1 worker, {mb / mine.median:,.0f} with 2"))
    rows.extend(_peers(files, mine, root, env, runs))
    return rows


def _peers(files: Sequence[Path], mine: Timing, root: Path, env: dict[str, str],
           runs: int) -> list[Row]:
    """The tools a documenter or lawyer would use instead, on the same 2 GiB, each checked."""
    mb = sum(f.stat().st_size for f in files) / MiB
    _, sha, b3 = two_core_reference(files)
    folder = root / "data"
    rows = []

    def peer(name: str, measure: str, once: Callable[[int], tuple[float, float]],
             n: int = runs) -> Timing:
        timing = repeat(n, once)
        rows.append(Row(f"peer: {name}", measure, mine.median, mine.spread, timing.median,
                        timing.spread, timing.median / mine.median, "(beside custody catalogue)",
                        None, timing.rss_mb, f"{mb / timing.median:,.0f} MiB/s"))
        return timing

    def hashdeep(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd(["hashdeep", "-c", "sha256", "-r", folder])
        got = {os.path.basename(line.split(",", 2)[2]): line.split(",", 2)[1]
               for line in text.splitlines() if line and line[0].isdigit()}
        expect(got == sha, "hashdeep digests differ from openssl")
        return wall, rss

    def sha256sum(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd(["sha256sum", *files])
        expect(digest_lines(text) == sha, "sha256sum digests differ from openssl")
        return wall, rss

    def b3sum(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd(["b3sum", *files])
        expect(digest_lines(text) == b3, "b3sum digests differ")
        return wall, rss

    def bagit_make(i: int) -> tuple[float, float]:
        bag = OUT / "peers" / f"bag-{i}"
        shutil.rmtree(bag, ignore_errors=True)
        link_into(files, bag)
        wall, rss, _ = run_cmd([sys.executable, BAGIT, "--sha256", "--processes", "2", bag])
        manifest = digest_lines((bag / "manifest-sha256.txt").read_text())
        expect(manifest == sha, "bagit-python's manifest differs from openssl")
        return wall, rss

    def bagit_validate(i: int) -> tuple[float, float]:
        wall, rss, _ = run_cmd([sys.executable, BAGIT, "--validate", "--processes", "2",
                                OUT / "peers" / "bag-0"])
        return wall, rss

    def exif_openssl(_: int) -> tuple[float, float]:
        # -ext "*": every file (exiftool's folder scan skips extensions it does not know).
        w1, r1, text = run_cmd(["exiftool", "-json", "-r", "-ext", "*", folder], ok=(0, 1))
        expect(len(json.loads(text)) == len(files), "exiftool did not read every file")
        w2, r2, text = run_cmd(["openssl", "dgst", "-sha256", *files])
        expect(digest_lines(text) == sha, "openssl digests differ")
        return w1 + w2, max(r1, r2)

    peer("hashdeep -c sha256 -r", "catalogue 2 GiB vs hashdeep, s", hashdeep, 1)
    peer("sha256sum", "catalogue 2 GiB vs sha256sum, s", sha256sum, 1)
    peer("b3sum", "catalogue 2 GiB vs b3sum (all cores), s", b3sum)
    peer("exiftool -json -r + openssl dgst", "catalogue 2 GiB vs both tools, s", exif_openssl)
    peer("bagit.py --sha256 --processes 2 (make)", "catalogue 2 GiB vs making a bag, s",
         bagit_make)
    peer("bagit.py --validate --processes 2", "catalogue 2 GiB vs validating that bag, s",
         bagit_validate)
    shutil.rmtree(OUT / "peers", ignore_errors=True)
    return rows


def bench_catalogue_huge(quick: bool, runs: int) -> list[Row]:
    count, each = 16, GiB
    free = shutil.disk_usage(OUT).free
    folder = OUT / "data" / f"large-{count}x{each // MiB}M"
    have = sum(p.stat().st_size for p in folder.glob("*.bin")) if folder.exists() else 0
    if free + have < count * each + 8 * GiB:
        return [Row("catalogue-huge", "16 x 1 GiB: skipped", 0, "", None, None, None,
                    ">= 0.97x reference", False, None,
                    f"not enough disk: {free / GiB:.0f} GiB free")]
    files = large_set(count, each)
    warm(files)
    mine, root, env = _catalogue_files(files, "catalogue-huge", runs)
    ref = repeat(runs, lambda _: (two_core_reference(files)[0], 0.0))
    MEASURED[count * each] = (mine, ref)
    ratio = ref.median / mine.median
    mb = count * each / MiB
    rows = [Row("catalogue-huge", "catalogue 16 x 1 GiB, s", mine.median, mine.spread,
                ref.median, ref.spread, ratio, ">= 0.97x reference (speed)", ratio >= 0.97,
                mine.rss_mb, f"{mb / mine.median:,.0f} MiB/s vs {mb / ref.median:,.0f} MiB/s; "
                "16 GiB may not all fit the page cache: then both read the disk")]
    if OTHER_TREE:
        return rows
    # The routine fixity check where it is meant to run: a large archive.
    b3_expected = by_name(recorded(root), "blake3")

    def fast(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd([*CUSTODY, "verify", "--fast", "--json"], env=env, cwd=root)
        doc = json.loads(text)
        expect(doc["fixity_ok"] and doc["files_checked"] == count, "verify --fast did not pass")
        return wall, rss

    def b3sum(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd(["b3sum", *files])
        expect(digest_lines(text) == b3_expected, "b3sum differs from the recorded BLAKE3")
        return wall, rss

    quick_check, b3 = repeat(runs, fast), repeat(runs, b3sum)
    rows.append(Row("verify-fast-16G", "verify --fast vs b3sum, 16 x 1 GiB, s",
                    quick_check.median, quick_check.spread, b3.median, b3.spread,
                    b3.median / quick_check.median, ">= 0.90x b3sum (speed)",
                    b3.median / quick_check.median >= 0.90, quick_check.rss_mb,
                    f"{mb / quick_check.median:,.0f} MiB/s vs {mb / b3.median:,.0f} MiB/s"))
    return rows


def bench_size_curve(quick: bool, runs: int) -> list[Row]:
    """Catalogue time against total size, 256 MiB to 16 GiB, with the reference."""
    sets = [(8, 32 * MiB), (8, 128 * MiB), (8, 256 * MiB), (4, GiB), (16, GiB)]
    if quick:
        sets = sets[:2]
    sets = [(c, e) for c, e in sets if c * e <= SIZE_MAX_GIB * GiB]
    curve = Curve("catalogue-size", "total size (GiB)", "seconds")
    curve.series = {"custody catalogue": [], "2 x (openssl sha256 + b3sum -1)": [],
                    "hashdeep -c sha256 -r (1 run)": []}
    for count, each in sets:
        total = count * each
        if total > 4 * GiB and shutil.disk_usage(OUT).free < 24 * GiB:
            curve.notes.append(f"{total / GiB:.0f} GiB skipped: not enough disk")
            continue
        # 4 GiB: the first four of the 16 x 1 GiB files.
        files = large_set(16, GiB)[:4] if count == 4 else large_set(count, each)
        warm(files)
        if total in MEASURED:  # measured above in this run (catalogue-large, -huge)
            mine, ref = MEASURED[total]
            deep = run_cmd(["hashdeep", "-c", "sha256", "-r", *files])[0]
        else:
            mine, root, _ = _catalogue_files(files, f"size-{total // MiB}", runs)
            ref = repeat(runs, lambda _, f=files: (two_core_reference(f)[0], 0.0))
            deep = run_cmd(["hashdeep", "-c", "sha256", "-r", root / "data"])[0]
            shutil.rmtree(root.parent, ignore_errors=True)
        curve.x.append(total / GiB)
        curve.series["custody catalogue"].append(mine.median)
        curve.series["2 x (openssl sha256 + b3sum -1)"].append(ref.median)
        curve.series["hashdeep -c sha256 -r (1 run)"].append(deep)
    CURVES[curve.name] = curve
    return []


def _photos() -> list[Path]:
    source = REPO.parent / "shared" / "corpus"
    if not source.is_dir():
        source = REPO / "samples" / "field-dump"
    return sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".heic")
                  and p.stat().st_size > 0)


def _small_sources() -> list[Path]:
    """Corpus files of 1-64 KiB (photos, audio, PDFs, raw images): what small files are."""
    source = REPO.parent / "shared" / "corpus"
    if not source.is_dir():
        source = REPO / "samples" / "field-dump"
    return sorted(p for p in source.rglob("*") if p.is_file() and 1024 <= p.stat().st_size
                  <= 64 * 1024 and p.name not in ("MANIFEST.json", "PROVENANCE.md"))


def _file_set(kind: str, count: int) -> Path:
    """``count`` distinct files (copies of corpus files with 16 random bytes appended),
    made once; smaller sets are hard links to the first files of the largest."""
    folder = OUT / "data" / f"{kind}-{count}"
    if folder.exists() and len(os.listdir(folder)) == count:
        return folder
    sources = _photos() if kind == "photos" else _small_sources()
    master = OUT / "data" / f"{kind}-master"
    master.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    have = len(os.listdir(master))
    for i in range(have, count):
        source = sources[i % len(sources)]
        data = source.read_bytes() + rng.randbytes(16)  # distinct content for each copy
        (master / f"F{i:06d}{source.suffix.lower()}").write_bytes(data)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name in sorted(os.listdir(master))[:count]:
        os.link(master / name, folder / name)
    return folder


def _catalogue_many(
    kind: str, count: int, runs: int, extra: Sequence[str] = ()
) -> tuple[Timing, Timing, Timing, float]:
    """custody catalogue (with ``extra`` options) vs exiftool -json -r + openssl dgst over
    ``count`` files. Returns (custody, exiftool, openssl, custody's peak RSS)."""
    source = _file_set(kind, count)
    root, env = fresh_root(f"{kind}-{count}")
    folder = root / "files"
    folder.mkdir()
    for name in os.listdir(source):
        os.link(source / name, folder / name)
    names = sorted(os.listdir(folder))
    openssl_cmd = ["bash", "-c", "cd files && find . -type f -print0 | sort -z | "
                   "xargs -0 openssl dgst -sha256"]
    sha: dict[str, str] = {}

    def openssl(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd(openssl_cmd, cwd=root)
        sha.update(digest_lines(text))
        expect(len(sha) == count, f"openssl hashed {len(sha)} of {count} files")
        return wall, rss

    def exiftool(_: int) -> tuple[float, float]:
        # -ext "*": every file, as custody reads every file (by default exiftool's scan
        # of a folder skips names without an extension it knows).
        wall, rss, text = run_cmd(["exiftool", "-json", "-r", "-ext", "*", "files"], cwd=root,
                                  ok=(0, 1))
        expect(len(json.loads(text)) == count, "exiftool did not read every file")
        return wall, rss

    def ours(_: int) -> tuple[float, float]:
        empty_ledger(root)
        wall, rss, _ = run_cmd([*CUSTODY, "catalogue", "files", *extra], env=env, cwd=root)
        got = recorded(root)
        expect(len(got) == count, f"{len(got)} items recorded, {count} expected")
        expect(by_name(got, "sha256") == sha, "recorded SHA-256 differs from openssl dgst")
        return wall, rss

    ossl = repeat(runs, openssl)
    exif = repeat(runs, exiftool)
    mine = repeat(runs, ours)
    expect(len(names) == count, "file set incomplete")
    shutil.rmtree(root.parent, ignore_errors=True)
    return mine, exif, ossl, mine.rss_mb


def bench_catalogue_photos(quick: bool, runs: int) -> list[Row]:
    count = 200 if quick else 2000
    mine, exif, ossl, rss = _catalogue_many("photos", count, runs)
    ref = exif.median + ossl.median
    ratio = mine.median / ref
    rows = [Row("catalogue-photos", f"{count} photos, s", mine.median, mine.spread, ref,
                f"{exif.spread} + {ossl.spread}", ratio,
                "<= 0.80x exiftool -json -r + openssl dgst (time)", ratio <= 0.80, rss,
                f"exiftool {exif.median:.2f} s + openssl {ossl.median:.2f} s")]
    if not quick and not OTHER_TREE:
        # Scaling of the metadata stage: one exiftool process (--jobs 1) against two.
        one, _, _, rss1 = _catalogue_many("photos", count, runs, ("--jobs", "1"))
        rows.append(Row("jobs-scaling-photos", f"{count} photos --jobs 1 vs default, s",
                        one.median, one.spread, mine.median, mine.spread,
                        one.median / mine.median, "(informational)", None, rss1,
                        f"{count / one.median:,.0f} files/s with 1 worker, "
                        f"{count / mine.median:,.0f} with 2"))
    return rows


def bench_catalogue_small(quick: bool, runs: int) -> list[Row]:
    counts = [500] if quick else SMALL_COUNTS
    curve = Curve("catalogue-files", "number of files (1-64 KiB each)", "seconds")
    curve.series = {"custody catalogue": [], "exiftool -json -r + openssl dgst": [],
                    "exiftool -json -r alone": []}
    rows = []
    per_file = {}
    for count in counts:
        # 100,000 files: one run of each tool unless asked for more (--runs-large): on the
        # shared machine three runs took hours; the table says how many runs each row had.
        n = runs if count < 100_000 else RUNS_LARGE
        mine, exif, ossl, rss = _catalogue_many("small", count, n)
        ref = exif.median + ossl.median
        per_file[count] = mine.median / count
        curve.x.append(count)
        curve.series["custody catalogue"].append(mine.median)
        curve.series["exiftool -json -r + openssl dgst"].append(ref)
        curve.series["exiftool -json -r alone"].append(exif.median)
        if count == counts[-1]:
            ratio = mine.median / ref
            rows.append(Row("catalogue-small", f"{count:,} small files (1-64 KiB), s, "
                            f"{n} run(s)",
                            mine.median, mine.spread, ref, f"{exif.spread} + {ossl.spread}",
                            ratio, "<= 0.80x exiftool -json -r + openssl dgst (time)",
                            ratio <= 0.80, rss,
                            f"exiftool {exif.median:.1f} s + openssl {ossl.median:.1f} s"))
    CURVES[curve.name] = curve
    if len(counts) > 1:
        base = per_file[counts[0]]
        worst = max(per_file.values(), key=lambda v: abs(v / base - 1))
        drift = worst / base - 1
        rows.append(Row("per-file-cost", f"custody ms per file, {counts[0]:,} -> {counts[-1]:,}",
                        per_file[counts[-1]] * 1000, "", base * 1000, "",
                        per_file[counts[-1]] / base, "flat within +-15 %", abs(drift) <= 0.15, None,
                        " / ".join(f"{c:,}: {v * 1000:.2f}" for c, v in per_file.items())))
    return rows


def _verify_files_common(quick: bool) -> tuple[list[Path], Path, dict[str, str]]:
    """A root holding the 2 GiB set, catalogued once (reused by the verify benchmarks)."""
    each = (32 if quick else 256) * MiB
    files = large_set(8, each)
    warm(files)
    root, env = fresh_root("verify-files")
    link_into(files, root / "data")
    run_cmd([*CUSTODY, "catalogue", "data"], env=env, cwd=root)
    return files, root, env


def bench_verify_files(quick: bool, runs: int) -> list[Row]:
    files, root, env = _verify_files_common(quick)
    mb = sum(f.stat().st_size for f in files) / MiB

    def full(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd([*CUSTODY, "verify", "--files-only", "--json"], env=env, cwd=root)
        doc = json.loads(text)
        expect(doc["verified"] and doc["files_checked"] == len(files), "verify did not pass")
        return wall, rss

    def fast(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd([*CUSTODY, "verify", "--fast", "--json"], env=env, cwd=root)
        doc = json.loads(text)
        expect(doc["fixity_ok"] and "verified" not in doc and doc["files_checked"] == len(files),
               "verify --fast did not pass")
        return wall, rss

    b3_expected = by_name(recorded(root), "blake3")

    def b3sum(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd(["b3sum", *files])
        expect(digest_lines(text) == b3_expected, "b3sum differs from the recorded BLAKE3")
        return wall, rss

    def bagit_validate(_: int) -> tuple[float, float]:
        return run_cmd([sys.executable, BAGIT, "--validate", "--processes", "2", bag])[:2]

    bag = OUT / "peers" / "verify-bag"
    shutil.rmtree(bag, ignore_errors=True)
    link_into(files, bag)
    run_cmd([sys.executable, BAGIT, "--sha256", "--sha512", "--processes", "2", bag])

    mine = repeat(runs, full)
    ref = repeat(runs, lambda _: (two_core_reference(files)[0], 0.0))
    quick_check = repeat(runs, fast)
    b3 = repeat(runs, b3sum)
    bagit = repeat(runs, bagit_validate)
    shutil.rmtree(bag, ignore_errors=True)
    ratio = ref.median / mine.median
    fast_vs_bagit = bagit.median / quick_check.median
    fast_vs_b3 = b3.median / quick_check.median
    return [
        Row("verify-files", f"verify --files-only, 8 x {files[0].stat().st_size // MiB} MiB, s",
            mine.median, mine.spread, ref.median, ref.spread, ratio,
            ">= 0.90x the SHA-256 + BLAKE3 reference (speed)", ratio >= 0.90, mine.rss_mb,
            f"{mb / mine.median:,.0f} MiB/s"),
        Row("verify-fast", "verify --fast (BLAKE3, all cores) vs bagit.py --validate "
            "--processes 2 (sha256+sha512 bag), s", quick_check.median, quick_check.spread,
            bagit.median, bagit.spread, fast_vs_bagit, ">= 2x faster than bagit.py --validate",
            fast_vs_bagit >= 2.0, quick_check.rss_mb, f"{mb / quick_check.median:,.0f} MiB/s"),
        Row("verify-fast-b3sum", "verify --fast vs b3sum (all cores), s", quick_check.median,
            quick_check.spread, b3.median, b3.spread, fast_vs_b3, ">= 0.90x b3sum (speed)",
            fast_vs_b3 >= 0.90, quick_check.rss_mb, f"b3sum {mb / b3.median:,.0f} MiB/s"),
    ]


def bench_bundle(quick: bool, runs: int) -> list[Row]:
    """export of 2 GiB against cp -r + sync; verify of that bundle against bagit.py."""
    files, root, env = _verify_files_common(quick)
    mb = sum(f.stat().st_size for f in files) / MiB
    run_cmd([*CUSTODY, "sign"], env=env, cwd=root)
    sha = by_name(recorded(root), "sha256")
    target = OUT / "export"

    def export(i: int) -> tuple[float, float]:
        out = target / f"bundle-{i}"
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        wall, rss, text = run_cmd([*CUSTODY, "export", "--all", "--out", out, "--json"], env=env,
                                  cwd=root)
        expect(json.loads(text)["payload_bytes"] == sum(f.stat().st_size for f in files),
               "export did not write every byte")
        expect(digest_lines((out / "manifest-sha256.txt").read_text()) == sha,
               "the bundle's manifest differs from openssl's digests")
        return wall, rss

    def cp_sync(i: int) -> tuple[float, float]:
        out = target / f"cp-{i}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run(["cp", "-r", str(root / "data"), str(out)], check=True)
        subprocess.run(["sync"], check=True)
        wall = time.perf_counter() - start
        expect(sorted(os.listdir(out)) == sorted(f.name for f in files), "cp missed files")
        return wall, 0.0

    def drop(_: int) -> None:
        for sub in list(target.glob("*")):
            shutil.rmtree(sub, ignore_errors=True)
        subprocess.run(["sync"], check=True)

    # Alternate, so both see the same state of the disk's write cache.
    ours_times, cp_times, rss = [], [], 0.0
    for i in range(runs):
        drop(i)
        wall, r = export(i)
        ours_times.append(wall)
        rss = max(rss, r)
        drop(i)
        cp_times.append(cp_sync(i)[0])
    mine, cp = Timing(ours_times, rss), Timing(cp_times)
    drop(0)
    bundle = target / "bundle-0"
    export(0)

    def verify_bundle(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd([*CUSTODY, "verify", bundle, "--json"], env=env)
        doc = json.loads(text)
        expect(doc["verified"] and doc["files_checked"] == len(files), "bundle did not verify")
        return wall, rss

    def bagit(_: int) -> tuple[float, float]:
        return run_cmd([sys.executable, BAGIT, "--validate", "--processes", "2", bundle])[:2]

    checked = repeat(runs, verify_bundle)
    bag = repeat(runs, bagit)
    ref = repeat(runs, lambda _: (two_core_reference(
        sorted((bundle / "data" / "data").glob("*.bin")))[0], 0.0))
    shutil.rmtree(target, ignore_errors=True)
    export_ratio = cp.median / mine.median
    return [
        Row("export", f"export --all of {mb:,.0f} MiB (durable), s", mine.median, mine.spread,
            cp.median, cp.spread, export_ratio, ">= 0.80x cp -r + sync (speed)",
            export_ratio >= 0.80, mine.rss_mb, f"{mb / mine.median:,.0f} MiB/s"),
        Row("bundle-verify", "verify BUNDLE vs bagit.py --validate --processes 2, s",
            checked.median, checked.spread, bag.median, bag.spread, bag.median / checked.median,
            "faster than bagit.py --validate (speed > 1)", checked.median < bag.median,
            checked.rss_mb, "re-hashes SHA-256 + BLAKE3 (the signed digests); "
            "manifest-sha512 names only"),
        Row("bundle-verify-ref", "verify BUNDLE vs the SHA-256 + BLAKE3 reference, s",
            checked.median, checked.spread, ref.median, ref.spread, ref.median / checked.median,
            ">= 0.90x reference (speed)", ref.median / checked.median >= 0.90, None, ""),
    ]


# --- ledgers --------------------------------------------------------------------------------

BIG_LEDGER = OUT / "ledger-10000000"


def big_items() -> int:
    """Item records in the big ledger: 10,000,000 when its build finished, or fewer when it
    was stopped earlier (``complete`` then holds the count reached; the table says so)."""
    try:
        return int((BIG_LEDGER / "complete").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _big_ledger_has(records: int) -> bool:
    """True when the 10,000,000-record ledger holds at least ``records`` records already
    (complete, or still being built: make_ledger.py logs each batch once it is durable)."""
    if (BIG_LEDGER / "complete").exists():
        return True
    try:
        last = (BIG_LEDGER / "build.log").read_text().split()[-2]
    except (OSError, IndexError):
        return False
    return last.isdigit() and int(last) >= records


def _ledger(records: int) -> tuple[Path, dict[str, str]]:
    """A real ledger of ``records`` signed items (a checkpoint every 10,000): a prefix of the
    10,000,000-record one when it exists (cut at a checkpoint, so itself a valid ledger),
    else built with bench/make_ledger.py and kept."""
    base = OUT / f"ledger-{records}"
    env = custody_env(base / "home")
    if (base / "complete").exists():
        return base / "root", env
    big = BIG_LEDGER / "root" / ".custody" / "ledger.jsonl"
    if _big_ledger_has(records) and records % 10_000 == 0 and records < max(big_items(), 1):
        shutil.rmtree(base, ignore_errors=True)
        shutil.copytree(BIG_LEDGER / "home", base / "home")
        root = base / "root"
        (root / ".custody").mkdir(parents=True)
        for name in ("config.toml", "keys", "timestamps"):
            source = BIG_LEDGER / "root" / ".custody" / name
            if source.is_dir():
                shutil.copytree(source, root / ".custody" / name)
            elif source.exists():
                shutil.copy2(source, root / ".custody" / name)
        (root / ".custody" / "cache").mkdir()
        lines = 1 + records + records // 10_000  # key, items, checkpoints
        with open(big, "rb") as src, open(root / ".custody" / "ledger.jsonl", "wb") as dst:
            for _ in range(lines):
                dst.write(src.readline())
        (base / "complete").write_text(str(records))
        return root, env
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    root = base / "root"
    subprocess.run([*CUSTODY, "init", str(root)], env={**os.environ, **env}, check=True,
                   capture_output=True)
    subprocess.run([*CUSTODY, "keys", "generate", "--name", "bench"], env={**os.environ, **env},
                   check=True, capture_output=True)
    subprocess.run([sys.executable, str(REPO / "bench" / "make_ledger.py"), str(root),
                    str(records)], env={**os.environ, **env}, check=True)
    (base / "complete").write_text(str(records))
    return root, env


def _verify_ledger(root: Path, env: dict[str, str], records: int, runs: int) -> Timing:
    def once(_: int) -> tuple[float, float]:
        wall, rss, text = run_cmd([*CUSTODY, "verify", "--ledger-only", "--json"], env=env,
                                  cwd=root)
        doc = json.loads(text)
        errors = [f for f in doc["findings"] if f["severity"] == "error"]
        expect(not errors and doc["ledger_size"] >= records, f"ledger did not verify: {errors[:3]}")
        return wall, rss

    return repeat(runs, once)


def bench_verify_ledger(quick: bool, runs: int) -> list[Row]:
    largest = big_items()
    sizes = [10_000] if quick else (
        LEDGER_SIZES or [10_000, 100_000, 1_000_000, largest or 10_000_000])
    curve = Curve("verify-ledger", "ledger records", "seconds / peak RSS (MB)")
    curve.series = {"custody verify --ledger-only (s)": [], "target 25,000 records/s (s)": [],
                    "sha256sum of the ledger file (s)": [], "peak RSS (MB)": []}
    rows = []
    for records in sizes:
        is_big = not quick and records == sizes[-1] and records == (largest or 10_000_000)
        if is_big and not largest:
            curve.notes.append("10,000,000 skipped: bench/out/ledger-10000000 not built")
            continue
        root, env = (BIG_LEDGER / "root", custody_env(BIG_LEDGER / "home")) if is_big else (
            _ledger(records))
        n = 1 if is_big else runs
        timing = _verify_ledger(root, env, records, n)
        read = run_cmd(["sha256sum", root / ".custody" / "ledger.jsonl"])[0]
        curve.x.append(records)
        curve.series["custody verify --ledger-only (s)"].append(timing.median)
        curve.series["target 25,000 records/s (s)"].append(records / 25_000)
        curve.series["sha256sum of the ledger file (s)"].append(read)
        curve.series["peak RSS (MB)"].append(timing.rss_mb)
        rate = records / timing.median
        if records == (sizes[0] if quick else 100_000) or is_big:
            rows.append(Row(f"verify-ledger-{records:,}", f"verify --ledger-only, {records:,} "
                            "records, records/s", rate, timing.spread + " s", 25_000, None,
                            rate / 25_000, ">= 25,000 records/s", rate >= 25_000, timing.rss_mb,
                            f"{n} run(s)"))
        if is_big:
            rows.append(Row("verify-ledger-rss", f"verify --ledger-only of {records:,} items, "
                            "peak RSS MB", timing.rss_mb, "", 1024, None, None, "< 1 GiB",
                            timing.rss_mb < 1024, timing.rss_mb,
                            "" if records >= 10_000_000 else "the build was stopped short of "
                            "10,000,000 (machine load); see docs/performance.md"))
    CURVES[curve.name] = curve
    return rows


def bench_million(quick: bool, runs: int) -> list[Row]:
    """Appending one file and an inclusion proof at the largest ledger available."""
    if quick:
        records = 10_000
        root, env = _ledger(records)
    elif big_items():
        records = big_items()
        root, env = BIG_LEDGER / "root", custody_env(BIG_LEDGER / "home")
    else:
        records = 1_000_000
        root, env = _ledger(records)
    run_cmd([*CUSTODY, "log", "--last", "1"], env=env, cwd=root)  # the index, built once
    script = (
        "import random, statistics, sys, time\n"
        "from custody.ledger.backends import open_ledger\n"
        "from custody.ledger.proofs import inclusion_document\n"
        "from custody.root import find_root\n"
        "with open_ledger(find_root(explicit=sys.argv[1])) as ledger:\n"
        "    n = ledger.index.size\n"
        "    inclusion_document(ledger, 0)  # open the index once\n"
        "    times = []\n"
        "    for _ in range(20):\n"
        "        t = time.perf_counter()\n"
        "        doc = inclusion_document(ledger, random.randrange(n - 200))\n"
        "        times.append(time.perf_counter() - t)\n"
        "        assert doc['tree_size'] > 0\n"
        "print(statistics.median(times))\n"
    )
    proof = float(subprocess.run([sys.executable, "-c", script, str(root)],
                                 env={**os.environ, **env}, check=True, capture_output=True,
                                 text=True).stdout)
    checked = []
    for _ in range(runs):
        out = OUT / "proof.json"
        wall = run_cmd([*CUSTODY, "proof", "inclusion", str(random.randrange(records)), "--out",
                        out], env=env, cwd=root)[0]
        run_cmd([*CUSTODY, "proof", "verify", out], env=env, cwd=root)
        checked.append(wall)
    appends = []
    for _ in range(runs):
        name = f"new-{time.time_ns()}.txt"
        (root / name).write_text(f"one new file, {name}\n")
        wall, _, text = run_cmd([*CUSTODY, "catalogue", name, "--json"], env=env, cwd=root)
        expect(json.loads(text)["added"] == 1, "the new file was not recorded")
        appends.append(wall)
    one = Timing(appends)
    return [
        Row("proof", f"inclusion proof at {records:,} records, ms", proof * 1000, "", None, None,
            None, "< 100 ms", proof < 0.1, None,
            f"whole command incl. start-up: {statistics.median(checked) * 1000:.0f} ms"),
        Row("append", f"catalogue one file into {records:,} records, ms", one.median * 1000,
            f"{min(appends) * 1000:.0f}-{max(appends) * 1000:.0f}", None, None, None, "< 500 ms",
            one.median < 0.5, None, "whole command"),
    ]


BENCHES: dict[str, Callable[[bool, int], list[Row]]] = {
    "startup": bench_startup,
    "hash": bench_hash,
    "hash-rss": bench_hash_memory,
    "catalogue-large": bench_catalogue_large,
    "catalogue-huge": bench_catalogue_huge,
    "size-curve": bench_size_curve,
    "verify-files": bench_verify_files,
    "bundle": bench_bundle,
    "catalogue-photos": bench_catalogue_photos,
    "catalogue-small": bench_catalogue_small,
    "verify-ledger": bench_verify_ledger,
    "million": bench_million,
}
QUICK = ("startup", "hash", "catalogue-large", "verify-files", "bundle", "catalogue-photos",
         "catalogue-small", "verify-ledger")


def render(rows: list[Row]) -> str:
    header = ("benchmark", "measure", "custody", "reference", "ratio", "target", "met",
              "RSS MB", "note")
    lines = [header]
    for r in rows:
        custody = f"{r.custody:,.2f}" + (f" [{r.custody_spread}]" if r.custody_spread else "")
        reference = "" if r.reference is None else f"{r.reference:,.2f}" + (
            f" [{r.reference_spread}]" if r.reference_spread else "")
        lines.append((
            r.name, r.measure, custody, reference,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.target, "" if r.met is None else ("yes" if r.met else "NO"),
            "" if r.rss_mb is None else f"{r.rss_mb:.0f}", r.note,
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes, < 2 minutes")
    parser.add_argument("--only", help="comma-separated benchmarks: " + ",".join(BENCHES))
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per measurement (>= 3)")
    parser.add_argument("--runs-large", type=int, default=1,
                        help="runs of the 100,000-file catalogue (default 1: it takes long)")
    parser.add_argument("--small-counts", help="file counts of the small-file curve "
                        "(default 1000,10000,100000)")
    parser.add_argument("--ledger-sizes", help="ledger sizes of the verify curve (default "
                        "10000,100000,1000000 and the big ledger)")
    parser.add_argument("--size-max", type=int, default=16,
                        help="largest total size of the size curve, GiB (default 16)")
    parser.add_argument("--plots", action="store_true", help="draw the growth curves (PNG)")
    parser.add_argument("--src", type=Path, default=REPO / "src",
                        help="the custody source tree to measure (another checkout's src/, "
                        "to compare before and after; rows needing new options are skipped)")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else (QUICK if args.quick else list(BENCHES))
    unknown = set(chosen) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    # Measure this repository's code (or --src), whatever the virtualenv's install points to.
    os.environ["PYTHONPATH"] = str(args.src.resolve())
    global OTHER_TREE, RUNS_LARGE, SMALL_COUNTS, LEDGER_SIZES, SIZE_MAX_GIB
    SIZE_MAX_GIB = args.size_max
    OTHER_TREE = args.src.resolve() != (REPO / "src").resolve()
    RUNS_LARGE = args.runs_large
    if args.small_counts:
        SMALL_COUNTS = [int(n) for n in args.small_counts.split(",")]
    if args.ledger_sizes:
        LEDGER_SIZES = [int(n) for n in args.ledger_sizes.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    started = time.time()
    loads = [load()]
    for name in chosen:
        print(f"running {name} ... ({load()})", file=sys.stderr, flush=True)
        try:
            rows.extend(BENCHES[name](args.quick, args.runs))
        except (WrongResult, json.JSONDecodeError) as exc:
            # A wrong result fails its benchmark (no time is reported); the others go on.
            rows.append(Row(name, "FAILED: " + str(exc).splitlines()[0][:160], 0.0, "", None,
                            None, None, "a checked result", False))
        loads.append(load())
        print(render(rows[-3:]), file=sys.stderr, flush=True)
        (OUT / "partial.json").write_text(json.dumps(
            {"rows": [asdict(r) for r in rows],
             "curves": {k: asdict(c) for k, c in CURVES.items()}}, indent=2))
    table = render(rows)
    print(table)
    summary = (f"code measured: {args.src.resolve()}; "
               f"{len(rows)} rows, {args.runs} runs each (median [min-max]), "
               f"{(time.time() - started) / 60:.1f} min; machine: {os.cpu_count()} cores, "
               f"{loads[0]} at start, {loads[-1]} at end")
    print(summary)
    (OUT / "results.json").write_text(json.dumps({
        "rows": [asdict(r) for r in rows], "curves": {k: asdict(c) for k, c in CURVES.items()},
        "summary": summary, "loads": loads,
    }, indent=2))
    (OUT / "table.md").write_text(table + "\n\n" + summary + "\n")
    if CURVES:
        previous = {}
        curves_file = OUT / "curves.json"
        if curves_file.exists():
            previous = json.loads(curves_file.read_text())
        previous.update({k: asdict(c) for k, c in CURVES.items()})
        curves_file.write_text(json.dumps(previous, indent=2))
    if args.plots:
        subprocess.run([sys.executable, str(REPO / "bench" / "plots.py")], check=True)
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
