"""``python -m custody`` and the ``custody`` console script.

``--version`` is answered before anything heavy is imported, so it stays fast.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from custody import __version__

        print(f"custody {__version__}")
        return
    from custody.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
