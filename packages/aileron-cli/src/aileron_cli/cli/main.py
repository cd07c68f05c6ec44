"""Entry point of the ``aileron`` command.

Start-up speed matters (``aileron --version`` is budgeted at 2.5x a bare interpreter), so this
module imports nothing at load time but the version: ``--version`` is answered before argparse
or any command module is imported, and each command imports the heavy libraries it needs
inside its handler.
"""

from __future__ import annotations

import os
import sys

from aileron_cli.__about__ import __version__

# Not `from typing import TYPE_CHECKING`: importing typing alone costs ~12 ms of the budget.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

DESCRIPTION = """\
Aileron: a local control plane for AI coding agents.

Your credentials stay in an encrypted vault that only the Aileron daemon can open; agents use
them through declared actions, with approvals for risky ones and an audit log of everything
Aileron executes."""


def _print_version(args: argparse.Namespace) -> int:
    print(f"aileron {__version__}")
    return 0


COMMANDS = (
    "status",
    "daemon",
    "vault",
    "connector",
    "action",
    "binding",
    "approval",
    "open",
    "enclave",
    "launch",
    "sandbox",
    "sessions",
    "audit",
    "usage",
)
"""The commands in ``--help`` order; each is registered by ``aileron_cli.cli.<name>``."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the command tree: all of it, or with ``only`` (one of :data:`COMMANDS`) just that
    command's branch (~0.1 s less for a command that runs: the other modules are not imported
    and their parsers not built; the branch parses and prints its help as in the whole tree)."""
    import argparse
    import importlib

    parser = argparse.ArgumentParser(
        prog="aileron",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aileron {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    version = subparsers.add_parser("version", help="Print the version of aileron.")
    version.set_defaults(handler=_print_version)
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"aileron_cli.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aileron`` command with ``argv`` (default: the process arguments)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["version"]):
        # The fast path: no parser, nothing else imported.
        print(f"aileron {__version__}")
        return 0
    from aileron_cli.cli.errors import EXIT_USAGE, report
    from aileron_core.errors import AileronError

    parser = build_parser(args[0] if args and args[0] in COMMANDS else None)
    namespace = parser.parse_args(args)
    handler = getattr(namespace, "handler", None)
    if handler is None:
        build_parser().print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = handler(namespace)
    except AileronError as error:
        return report(error)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`aileron audit export | head`): stop quietly, and keep Python
        # from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code
