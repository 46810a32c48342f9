"""What the signing agent saves per command (issue 17): a signing command run as a new
process, with the passphrase (one Argon2id unlock per command) and through the agent.

    python bench/agent_saving.py [RUNS]

Makes its own evidence root and custody home in a temporary folder, catalogues a few
sample files, then times ``custody event note 1 --text x`` RUNS times each way (wall time,
and CPU time of the child: user + system, which a busy machine disturbs less), and one
Argon2id unlock of the key file alone, in process (wall and CPU). Prints medians. The
numbers recorded in docs/robustness.md ("The signing agent") came from one run of it.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSPHRASE = "benchmark passphrase for the agent"
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "field-dump" / "misc" / "odd"


def custody(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "custody", *args],
        env=env, capture_output=True, stdin=subprocess.DEVNULL, check=True,
    )  # fmt: skip


def timed(runs: int, root: Path, env: dict[str, str]) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        custody("event", "note", "1", "--text", "x", "--root", str(root), env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory(prefix="custody-agent-bench-") as tmp:
        base = Path(tmp)
        runtime = base / "run"
        runtime.mkdir(mode=0o700)
        env = {**os.environ, "CUSTODY_HOME": str(base / "home"), "XDG_RUNTIME_DIR": str(runtime),
               "CUSTODY_PASSPHRASE": PASSPHRASE}  # fmt: skip
        env.pop("CUSTODY_ROOT", None)
        root = base / "evidence"
        custody("init", str(root), env=env)
        custody("keys", "generate", "--name", "Bench Mark", env=env)
        shutil.copytree(SAMPLES, root / "media")
        custody("catalogue", str(root / "media"), "--root", str(root), env=env)
        wall, cpu = timed(runs, root, env)
        print(f"with the passphrase: median wall {wall:.3f} s, CPU {cpu:.3f} s per command")
        custody("agent", "start", "--timeout", "10m", env=env)
        agent_env = {k: v for k, v in env.items() if k != "CUSTODY_PASSPHRASE"}
        try:
            a_wall, a_cpu = timed(runs, root, agent_env)
        finally:
            custody("agent", "stop", env=agent_env)
        print(f"through the agent:   median wall {a_wall:.3f} s, CPU {a_cpu:.3f} s per command")
        print(f"saved per command:   {wall - a_wall:.3f} s wall, {cpu - a_cpu:.3f} s CPU "
              "(and typing the passphrase)")  # fmt: skip
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from custody.keys.keyring import Keyring

        key = Keyring(base / "home" / "keys").list()[0]
        unlocks, unlock_cpus = [], []
        for _ in range(runs):
            start, cpu_start = time.perf_counter(), time.process_time()
            key.unlock(PASSPHRASE)
            unlocks.append(time.perf_counter() - start)
            unlock_cpus.append(time.process_time() - cpu_start)
        print(
            f"one Argon2id unlock alone (in process): median wall "
            f"{statistics.median(unlocks):.3f} s, CPU {statistics.median(unlock_cpus):.3f} s"
        )


if __name__ == "__main__":
    main()
