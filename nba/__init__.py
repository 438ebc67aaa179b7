"""The `nba` command: one entry point whose subcommands are the command groups' own CLIs (nba.cli)."""
