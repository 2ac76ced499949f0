"""The `workbench` command (`main.main`): one module a group of subcommands. `python -m workbench.cli` runs it too."""
