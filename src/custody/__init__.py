"""custody: evidence preservation and chain of custody.

The package is a library first; ``custody.cli.app`` is a thin Typer layer over it.
Importing the package stays cheap so that ``custody --version`` starts fast.
"""

__version__ = "0.1.0"
