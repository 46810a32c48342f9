"""Draw the growth curves measured by bench/run.py as PNG files (matplotlib, no display).

    .venv/bin/python bench/plots.py                    # bench/out/curves.json -> docs/performance/
    .venv/bin/python bench/plots.py --out somewhere/

Three figures, each with custody and the peers or the reference on the same axes:

* ``catalogue-files.png``: catalogue time against the number of small files (1k -> 100k),
  beside ``exiftool -json -r`` + ``openssl dgst``; and the cost per file, which must stay
  flat (+-15 %);
* ``catalogue-size.png``: catalogue time and throughput against total size
  (256 MiB -> 16 GiB), beside the two-core SHA-256 + BLAKE3 reference and ``hashdeep``;
* ``verify-ledger.png``: ``verify --ledger-only`` time and peak memory against the ledger
  size (10k -> 10M records), beside the 25,000 records/s and 1 GiB targets and the time
  to merely read and hash the ledger file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
STYLE = {"marker": "o", "linewidth": 1.8, "markersize": 5}


def _series(ax: Any, x: list[float], series: dict[str, list[float | None]],
            skip: tuple[str, ...] = ()) -> None:
    for name, values in series.items():
        if name in skip:
            continue
        points = [(a, b) for a, b in zip(x, values, strict=True) if b is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            dashed = name.startswith("target")
            ax.plot(xs, ys, label=name, linestyle="--" if dashed else "-",
                    **({"linewidth": 1.2} if dashed else STYLE))


def _ticks(ax: Any, x: list[float], label: Any) -> None:
    """The measured points as the x ticks, written plainly (not as powers of ten)."""
    ax.set_xticks(x)
    ax.set_xticklabels([label(v) for v in x])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def _count(v: float) -> str:
    if v >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    return f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"


def _finish(fig: Any, path: Path, title: str, notes: list[str]) -> None:
    fig.suptitle(title, fontsize=12)
    if notes:
        fig.text(0.01, 0.01, "; ".join(notes), fontsize=8, color="dimgray")
    fig.tight_layout(rect=(0, 0.04 if notes else 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def files_plot(curve: dict[str, Any], out: Path) -> Path:
    x = curve["x"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    _series(left, x, curve["series"])
    left.set(xscale="log", yscale="log", xlabel=curve["x_label"], ylabel="seconds (log)",
             title="catalogue time")
    _ticks(left, x, _count)
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    per_file = {name: [None if v is None else v / n * 1000 for v, n in zip(vals, x, strict=True)]
                for name, vals in curve["series"].items()}
    _series(right, x, per_file)
    base = per_file["custody catalogue"][0]
    if base is not None:
        right.axhspan(base * 0.85, base * 1.15, color="tab:blue", alpha=0.08,
                      label="custody at 1k files +-15 %")
    right.set(xscale="log", xlabel=curve["x_label"], ylabel="ms per file", ylim=(0, None),
              title="cost per file (flat is the target)")
    _ticks(right, x, _count)
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    path = out / "catalogue-files.png"
    _finish(fig, path, "custody catalogue of small files against exiftool + openssl",
            curve.get("notes", []))
    return path


def size_plot(curve: dict[str, Any], out: Path) -> Path:
    x = curve["x"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    _series(left, x, curve["series"])
    left.set(xscale="log", yscale="log", xlabel=curve["x_label"], ylabel="seconds (log)",
             title="catalogue time")
    _ticks(left, x, lambda v: f"{v:g}")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    speed = {name: [None if v is None else gib * 1024 / v for v, gib in zip(vals, x, strict=True)]
             for name, vals in curve["series"].items()}
    _series(right, x, speed)
    right.set(xscale="log", xlabel=curve["x_label"], ylabel="MiB/s", ylim=(0, None),
              title="throughput")
    _ticks(right, x, lambda v: f"{v:g}")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    path = out / "catalogue-size.png"
    _finish(fig, path, "custody catalogue of large files against the SHA-256 + BLAKE3 reference",
            curve.get("notes", []))
    return path


def ledger_plot(curve: dict[str, Any], out: Path) -> Path:
    x = curve["x"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    _series(left, x, curve["series"], skip=("peak RSS (MB)",))
    left.set(xscale="log", yscale="log", xlabel=curve["x_label"], ylabel="seconds (log)",
             title="verify --ledger-only time")
    _ticks(left, x, _count)
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    _series(right, x, {"custody peak RSS (MB)": curve["series"]["peak RSS (MB)"],
                       "target: 1 GiB": [1024.0 for _ in x]})
    right.set(xscale="log", xlabel=curve["x_label"], ylabel="MB", ylim=(0, None),
              title="peak memory")
    _ticks(right, x, _count)
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    path = out / "verify-ledger.png"
    _finish(fig, path, "custody verify --ledger-only against ledger size", curve.get("notes", []))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=Path, default=REPO / "bench" / "out" / "curves.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance")
    args = parser.parse_args()
    curves = json.loads(args.curves.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    drawers = {"catalogue-files": files_plot, "catalogue-size": size_plot,
               "verify-ledger": ledger_plot}
    for name, draw in drawers.items():
        if name in curves and curves[name]["x"]:
            print(draw(curves[name], args.out))


if __name__ == "__main__":
    main()
