"""Command groups that are specified but not built yet.

They are registered so that ``aileron --help`` shows the whole shape of the tool; running one
fails with a clear message instead of pretending to work.
"""

from __future__ import annotations

import argparse

from aileron_cli.cli.errors import NotYetAvailable

# (group, one-line help, its subcommands as the SPEC names them)
PLANNED: tuple[tuple[str, str, str], ...] = (
    ("sandbox", "Build and check agent sandbox images.", "build | check"),
    (
        "enclave",
        "Attach the daemon to an aileron-enclave escrow service.",
        "attach | status | detach",
    ),
)


def _not_available(args: argparse.Namespace) -> int:
    raise NotYetAvailable(
        f"'aileron {args.group}' is not part of this build yet",
        hint="see the README's 'What works today' section",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add every planned group as a command that explains it is not available yet."""
    for name, summary, usage in PLANNED:
        parser = subparsers.add_parser(
            name,
            help=f"{summary} (not in this build yet)",
            description=f"{summary}\n\nPlanned subcommands: {usage}.\nNot part of this build yet.",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.set_defaults(handler=_not_available, group=name)
