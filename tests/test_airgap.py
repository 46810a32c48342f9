"""Timestamps offline and across an air gap, with the loopback authority (tests/tsa.py).

* Offline, each unreachable authority is one line (with the checkpoints it was not asked
  for again), then the pending summary; ``--tsa`` replaces the configured list.
* The air-gapped round trip: ``--request-out`` on the evidence machine (no network needed),
  ``timestamp fetch`` in a separate process with no key, no root and no custody home, then
  ``--responses`` back home. The tokens are recorded exactly as an online run records
  them (same record shape, token files kept, ``verify`` with the authority's root says
  VERIFIED, ``openssl ts -verify`` accepts them). Replies that do not answer a request this
  root kept - another nonce, another checkpoint, a forged file - are refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import tomli_w
from tests.helpers import ledger_records
from tests.tsa import OPENSSL, running_tsa

from conftest import SAMPLES, Result, validate
from custody.errors import ExitCode

CLI = Callable[..., Result]


def configure(root: Path, *urls: str) -> None:
    path = root / ".custody" / "config.toml"
    document = tomllib.loads(path.read_text())
    document["timestamps"] = {"tsa": list(urls), "min_success": 1, "timeout": 5.0}
    path.write_text(tomli_w.dumps(document))


def make_root(tmp_path: Path, cli: CLI) -> Path:
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    shutil.copytree(SAMPLES / "misc" / "odd", root / "media")
    assert cli("catalogue", root / "media", "--root", root).code == 0
    return root


def test_offline_one_line_per_authority_and_tsa_replaces_the_list(
    tmp_path: Path, cli: CLI
) -> None:
    root = make_root(tmp_path, cli)
    dead = ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
    configure(root, *dead, "http://127.0.0.1:9/configured")
    assert cli("sign", "--root", root).code == 0  # a second pending checkpoint
    result = cli("timestamp", "--tsa", dead[0], "--tsa", dead[1], "--root", root)
    assert result.code == ExitCode.TIMESTAMP_PENDING
    lines = result.out.strip().splitlines()
    assert [line.split()[1].rstrip(":") for line in lines[:2]] == dead  # one per authority
    assert all("checkpoint(s) " in line for line in lines[:2])
    assert lines[2].startswith("PENDING") and len(lines) == 3
    assert "configured" not in result.out  # named authorities replace the configured list
    help_text = cli("timestamp", "--help").out
    assert "REPLACES the configured" in " ".join(help_text.split())


def test_air_gapped_round_trip(tmp_path: Path, cli: CLI) -> None:
    root = make_root(tmp_path, cli)
    with running_tsa(tmp_path, "ok", include_chain=True) as tsa:
        configure(root, "http://127.0.0.1:9/offline-default")
        requests = tmp_path / "requests.json"
        made = cli("timestamp", "--tsa", tsa.url, "--request-out", requests, "--root", root,
                   "--json")  # fmt: skip
        assert made.code == 0, made.err
        validate(made.json(), "cli-timestamp-requests.schema.json")
        document = json.loads(requests.read_text())
        validate(document, "timestamp-requests.schema.json")
        assert made.json()["requests"] == len(document["requests"]) == 1
        # The online machine: no key, no evidence root, no custody home, another folder.
        online = tmp_path / "online"
        online.mkdir()
        shutil.copy(requests, online / "requests.json")
        child_env = {"PATH": "/usr/bin:/bin", "HOME": str(online), "LANG": "C.UTF-8",
                     "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # fmt: skip
        fetched = subprocess.run(
            [sys.executable, "-m", "custody", "timestamp", "fetch", "requests.json", "--out",
             "replies.json", "--json"],
            cwd=online, env=child_env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert fetched.returncode == 0, fetched.stderr
        validate(json.loads(fetched.stdout), "cli-timestamp-fetch.schema.json")
        replies = json.loads((online / "replies.json").read_text())
        validate(replies, "timestamp-responses.schema.json")
        assert sorted(p.name for p in online.iterdir()) == ["replies.json", "requests.json"]
        # A forged reply (another nonce) and a reply for a request never made are refused.
        forged = json.loads(json.dumps(replies))
        forged["responses"][0]["nonce"] = "1234"
        (tmp_path / "forged.json").write_text(json.dumps(forged))
        refused = cli("timestamp", "--responses", tmp_path / "forged.json", "--root", root)
        assert refused.code == ExitCode.TIMESTAMP_PENDING and "made no such request" in refused.out
        # Back on the evidence machine: each reply checked against the request it kept.
        accepted = cli("timestamp", "--responses", online / "replies.json", "--tsa-root",
                       tsa.root_pem, "--root", root, "--json")  # fmt: skip
        assert accepted.code == 0, accepted.out + accepted.err
        validate(accepted.json(), "cli-timestamp.schema.json")
        again = cli("timestamp", "--responses", online / "replies.json", "--root", root)
        assert again.code == 0 and "already has its token" in again.out
        # Recorded exactly as an online run records a token.
        stamps = [r["signed"]["body"] for r in ledger_records(root)
                  if r["signed"]["type"] == "timestamp"]  # fmt: skip
        (stamp,) = stamps
        assert set(stamp) >= {"checkpoint", "imprint", "tsa", "gen_time", "serial",
                              "token_sha256", "token_file", "nonce"}  # fmt: skip
        assert stamp["nonce"] == document["requests"][0]["nonce"]
        token = root / ".custody" / stamp["token_file"]
        raw = base64.b64decode(replies["responses"][0]["response"])
        assert token.read_bytes() == raw
        assert hashlib.sha256(raw).hexdigest() == stamp["token_sha256"]
        checked = subprocess.run(
            [OPENSSL, "ts", "-verify", "-digest", stamp["imprint"], "-in", str(token),
             "-CAfile", str(tsa.root_pem), "-untrusted", str(tsa.chain_pem)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert "Verification: OK" in checked.stdout, checked.stdout + checked.stderr
        verified = cli("verify", "--root", root, "--tsa-root", tsa.root_pem, "--json")
        assert verified.code == 0, verified.out
        assert verified.json()["timestamps"][0]["record"] == len(ledger_records(root)) - 1
        # A requests file is hostile input on the online machine too.
        (online / "bad.json").write_text('{"format": "custody-timestamp-requests/1", '
                                         '"requests": [{"tsa": "file:///etc/passwd"}]}')
        bad = subprocess.run(
            [sys.executable, "-m", "custody", "timestamp", "fetch", "bad.json", "--out", "x"],
            cwd=online, env=child_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert bad.returncode == ExitCode.UNUSABLE_INPUT and bad.stderr.count("\n") == 1


def test_air_gap_options_that_cannot_apply_are_refused(tmp_path: Path, cli: CLI) -> None:
    root = make_root(tmp_path, cli)
    out = tmp_path / "r.json"
    both = cli("timestamp", "--request-out", out, "--responses", out, "--root", root)
    assert both.code == ExitCode.USAGE
    assert cli("timestamp", "--responses", out, "--tsa", "http://x", "--root", root).code == 2
    assert cli("timestamp", "--request-out", out, "--tsa-root", out, "--root", root).code == 2
    assert cli("timestamp", "--root", root, "fetch", out, "--out", out).code == ExitCode.USAGE
