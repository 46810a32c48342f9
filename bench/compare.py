"""Before and after: two custody source trees on the same commands, runs interleaved.

    .venv/bin/python bench/compare.py BEFORE/src AFTER/src [--runs 3]

On a shared machine the load changes from minute to minute, so two separate benchmark runs
compare two different machines. Here each command runs once with the "before" tree, once
with the "after" tree, and again, ``--runs`` times, on the same inputs as bench/run.py
(8 x 256 MiB; 2,000 photos); every run's recorded SHA-256 digests are compared with
``openssl dgst``'s before its time counts. Prints the median [min-max] of each and the
ratio before/after (> 1: after is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: inputs, checks and timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    run.OUT.mkdir(parents=True, exist_ok=True)
    cases = {
        "catalogue 8 x 256 MiB": (run.large_set(8, 256 * run.MiB), "large"),
        "catalogue 2,000 photos": (
            sorted((run._file_set("photos", 2000)).iterdir()), "photos"
        ),
    }
    print(f"| command | before, s | after, s | before/after | ({run.load()}) |")
    print("|---|---|---|---|---|")
    for name, (files, kind) in cases.items():
        run.warm(files)
        sha = {os.path.basename(k): v for k, v in run.digest_lines(
            run.run_cmd(["openssl", "dgst", "-sha256", *files])[2]).items()}
        times: dict[str, list[float]] = {"before": [], "after": []}
        roots = {}
        for label in ("before", "after"):
            roots[label] = run.fresh_root(f"compare-{kind}-{label}")
            run.link_into(files, roots[label][0] / "data")
        for _ in range(args.runs):
            for label, tree in (("before", args.before), ("after", args.after)):
                root, env = roots[label]
                run.empty_ledger(root)
                wall, _, _ = run.run_cmd([*run.CUSTODY, "catalogue", "data"],
                                         env={**env, "PYTHONPATH": str(tree.resolve())},
                                         cwd=root)
                got = run.by_name(run.recorded(root), "sha256")
                run.expect(got == sha, f"{label}: recorded SHA-256 differs from openssl")
                times[label].append(wall)
        b, a = statistics.median(times["before"]), statistics.median(times["after"])
        print(f"| {name} | {b:.2f} [{min(times['before']):.2f}-{max(times['before']):.2f}] "
              f"| {a:.2f} [{min(times['after']):.2f}-{max(times['after']):.2f}] | {b / a:.2f} "
              f"| |")
    print(f"\n{args.runs} runs each, interleaved; {run.load()} at the end")


if __name__ == "__main__":
    main()
