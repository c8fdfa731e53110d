"""Subcommands of the ``llmsizing`` command line, one module each."""
