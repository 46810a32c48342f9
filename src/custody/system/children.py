"""The environment of every child process custody starts: explicit, minimal, no secrets.

custody starts programs that parse files an adversary may have crafted (exiftool, ffmpeg,
Chromium, GnuPG, yt-dlp). None of them may inherit the caller's environment: it may hold
``CUSTODY_PASSPHRASE`` (the key's passphrase), ``PGPASSWORD`` and other credentials, all
readable in ``/proc/<pid>/environ`` for as long as the child runs, and it may hold settings
that change what the child does (``LD_PRELOAD``, ``PERL5OPT``, ``EXIFTOOL_HOME``, a
``HOME`` with a user's ``.ExifTool_config`` or Chromium profile). ``child_env`` builds the
whole environment from nothing:

* ``PATH``  - the system folders, plus the folder of the program being run;
* ``LANG`` / ``LC_ALL`` - ``C.UTF-8``, so output and file names are read the same everywhere;
* ``TZ``    - ``UTC``;
* ``HOME`` / ``TMPDIR`` - a throw-away folder of the caller's where the child writes state
  (Chromium's profile and NSS database, GnuPG's keyring), else HOME is ``/nonexistent``
  (Debian's home for users without one); never the user's home;
* what the caller adds on purpose (``extra``), which may never be a secret variable.

Every ``subprocess`` call in ``src/`` passes ``env=child_env(...)`` (pyexiftool, which offers
no ``env`` argument, is given it through ``custody.evidence.exiftool``); tests/test_children.py
runs each command that starts a child with fake tools that record their environment.

Imports nothing from custody.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


# Never passed to a child, whatever a caller asks (docs/robustness.md, "Secrets").
SECRET_VARIABLES = frozenset({"CUSTODY_PASSPHRASE", "PGPASSWORD", "PGPASSFILE", "PGSERVICEFILE"})


# Debian Policy 9.2.1: the home of users who have none; it must never exist. A child that
# reads settings from HOME (exiftool's ~/.ExifTool_config, ffmpeg's presets) finds none,
# and nothing is created that a killed run could leave behind.
NO_HOME = "/nonexistent"


def child_env(
    home: str | os.PathLike[str] | None = None,
    *,
    program: str | os.PathLike[str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment for a child process; see the module docstring.

    ``home`` becomes HOME and TMPDIR: a throw-away folder of the caller's, for a child that
    writes state there. Without it HOME is ``/nonexistent`` and TMPDIR is not set (the
    system's temporary folder). ``program`` is the executable's path; its folder is put
    first on PATH so a tool installed beside it (a script's interpreter) is found.
    """
    folders = list(SYSTEM_PATH)
    if program is not None:
        here = os.path.dirname(os.fspath(program))
        if here and here not in folders:
            folders.insert(0, here)
    env = {
        "PATH": os.pathsep.join(folders),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "HOME": NO_HOME,
    }
    if home is not None:
        env["HOME"] = env["TMPDIR"] = os.fspath(home)
    for name, value in (extra or {}).items():
        if name in SECRET_VARIABLES:
            raise ValueError(f"{name} is never passed to a child process")
        env[name] = value
    return env
