"""``python -m custody`` and the ``custody`` console script.

``--version``, plain ``hash``, ``bagit validate`` and ``verify --fast`` runs are answered
before the CLI framework is imported
(``custody.cli.fastpath``): start-up time counts when hashing.
"""

from __future__ import annotations

import sys

from custody.i18n import _


def main() -> None:
    try:
        from custody.cli.language import speak_for

        speak_for(sys.argv[1:])
        from custody.cli.fastpath import try_quick

        code = try_quick(sys.argv[1:])
        if code is None:
            from custody.cli.app import main as cli_main
    except KeyboardInterrupt:
        # Ctrl-C while the CLI is still loading: nothing has been read or written yet.
        sys.stderr.write(_("custody: interrupted") + "\n")
        sys.exit(130)
    if code is not None:
        sys.exit(code)
    cli_main()


if __name__ == "__main__":
    main()
