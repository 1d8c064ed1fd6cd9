"""The `v2g` command: a click group whose subcommands live beside the code they run.

Each package owns its commands (``ledger/cli.py``, ``csms/cli.py``, ...); this module
only lists them and maps errors to a one-line message and an exit code, so that no
traceback reaches a user.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

# command name -> ("module:attribute", one-line help); imported only when the command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "csms": ("csms.cli:csms_command", "Run the CSMS (OCPP server)."),
    "stations": ("csms.cli_stations:stations_group", "Manage the station registry."),
    "tokens": ("csms.cli:tokens_group", "Manage the idToken registry."),
    "chargepoint": ("chargepoint.cli:chargepoint_command", "Run a simulated charging station."),
    "keys": ("ledger.cli:keys_group", "Generate and inspect Ed25519 key files."),
    "ledger": ("ledger.cli:ledger_group", "Create, inspect and verify the ledger."),
    "validator": ("ledger.cli:validator_command", "Run one validator."),
    "certs": ("csms.cli_certs:certs_group", "Create test certificates for TLS (profiles 2, 3)."),
    "operators": ("csms.cli_review:operators_group", "Manage review operators and auditors."),
    "sessions": ("csms.cli_review:sessions_group", "List, show and export settled sessions."),
    "dashboard": (
        "csms.cli_review:dashboard_command",
        "Serve a read-only dashboard of a data dir.",
    ),
    "simulate": ("simulators.cli:simulate_command", "Run a fleet scenario against a CSMS."),
    "demo": ("simulators.cli:demo_command", "CSMS, validators and a fleet of V2G sessions."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """v2g-bridge: settle vehicle-to-grid charging on a permissioned ledger."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the command, turn any unexpected error into one clear line."""
    try:
        return cli.main(args=argv, prog_name="v2g", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: never a traceback for a user
        if os.environ.get("V2G_DEBUG"):
            raise
        click.echo(f"v2g: error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
