"""The ``vigil`` command. One module per command group; :func:`vigil.cli.main.main` returns the exit code."""
