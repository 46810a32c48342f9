"""The command line: parses arguments, calls the library, renders results. The only package
that imports typer or rich.

``custody.cli.fastpath`` answers ``--version`` and ``hash`` before typer loads, so this
``__init__`` imports nothing.
"""
