"""Bouncy Castle's RFC 4998 implementation (``org.bouncycastle.tsp.ers``) as an independent
checker: tests/java/ErsCheck.java, compiled once per test module against the Debian jars
(``libbcprov-java``, ``libbcpkix-java``; scripts/setup.sh installs them and a JDK).

``compile_checker`` skips the calling test, saying why, when no JDK or jar is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

JARS = [Path(f"/usr/share/java/{j}.jar") for j in ("bcprov", "bcpkix", "bcutil")]
JAVA_SRC = Path(__file__).parent / "java" / "ErsCheck.java"


class BouncyCastle:
    def __init__(self, classes: Path, work: Path) -> None:
        self.classes = classes
        self.work = work
        self.n = 0

    def run(self, *args: str) -> tuple[bool, str]:
        cp = os.pathsep.join([str(self.classes), *map(str, JARS)])
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(self.work)}
        proc = subprocess.run(
            ["java", "-cp", cp, "ErsCheck", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
        out = (proc.stdout + proc.stderr).strip()
        return proc.returncode == 0 and out.startswith("OK"), out

    def _file(self, data: bytes, suffix: str) -> str:
        self.n += 1
        path = self.work / f"f{self.n}{suffix}"
        path.write_bytes(data)
        return str(path)

    def verify(
        self, record: bytes, data: bytes | Sequence[bytes], roots: Sequence[x509.Certificate]
    ) -> tuple[bool, str]:
        pem = b"".join(r.public_bytes(Encoding.PEM) for r in roots)
        members = [data] if isinstance(data, bytes) else list(data)
        files = [self._file(m, ".bin") for m in members]
        return self.run("verify", self._file(pem, ".pem"), self._file(record, ".ers"), *files)


def compile_checker(tmp_path_factory: pytest.TempPathFactory) -> BouncyCastle:
    if shutil.which("javac") is None or not all(j.exists() for j in JARS):
        pytest.skip("javac and Bouncy Castle jars are needed (scripts/setup.sh installs them)")
    classes = tmp_path_factory.mktemp("ers-java")
    cp = os.pathsep.join(map(str, JARS))
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(classes)}
    proc = subprocess.run(
        ["javac", "-nowarn", "-d", str(classes), "-cp", cp, str(JAVA_SRC)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return BouncyCastle(classes, tmp_path_factory.mktemp("ers-bc-work"))
