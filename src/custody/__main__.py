"""``python -m custody`` and the ``custody`` console script.

``--version`` and plain ``hash`` runs are answered before the CLI framework is imported
(``custody.cli.fastpath``): start-up time counts when hashing.
"""

from __future__ import annotations

import sys


def main() -> None:
    from custody.cli.fastpath import try_quick

    code = try_quick(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from custody.cli.app import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
