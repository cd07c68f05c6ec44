"""Entry point of the ``aileron-enclave`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aileron_enclave.__about__ import __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aileron-enclave`` with ``argv`` (default: the process arguments)."""
    parser = argparse.ArgumentParser(
        prog="aileron-enclave",
        description="Aileron's credential escrow service (TEE side).",
    )
    parser.add_argument("--version", action="version", version=f"aileron-enclave {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, summary in (
        ("serve", "Serve the escrow API over HTTPS (AILERON_TEE_PROVIDER=local)."),
        ("fingerprint", "Print the sha256 fingerprint of the service certificate."),
    ):
        subparsers.add_parser(name, help=f"{summary} (not in this build yet)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    del args
    print(
        "aileron-enclave: error: the escrow service is not part of this build yet"
        " — see the README's 'What works today' section",
        file=sys.stderr,
    )
    return 1
