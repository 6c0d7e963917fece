"""CLI sub-commands, one module each (see ``ferbench.cli.COMMANDS``)."""
