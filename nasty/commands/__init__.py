"""Subcommands of the `nasty` CLI, one module each (see nasty/cli.py)."""
