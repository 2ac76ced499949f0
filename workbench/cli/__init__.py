"""The `workbench` command: one module a group of subcommands, gathered by `main`."""

from workbench.cli.main import main

__all__ = ["main"]
