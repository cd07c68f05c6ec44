"""Entry point of the ``aileron-enclave`` command.

``serve`` runs the escrow service (``AILERON_TEE_PROVIDER=local`` must be set);
``fingerprint`` prints the sha256 of its TLS certificate (what ``aileron enclave attach``
pins); ``registration-code`` prints the one-time code the next daemon registers with;
``measurement`` prints the hash of the installed enclave code. Errors are one line,
``aileron-enclave: error: <what> — <what to do>``, exit 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aileron_enclave.__about__ import __version__

if TYPE_CHECKING:
    from aileron_enclave.datadir import DataDir

DESCRIPTION = """\
Aileron's credential escrow service (the TEE side).

The daemon seals a binding's secret to this service and deletes its own copy; from then on the
service injects the credential into the requests the daemon asks it to make, only to the hosts
the credential was escrowed for. Only the local development provider exists in this build:
set AILERON_TEE_PROVIDER=local (no hardware isolation; attestations say debug: true)."""


def _data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where keys, certificate and escrows live (default: $AILERON_ENCLAVE_HOME,"
        " else ~/.aileron-enclave)",
    )


def _data_dir(args: argparse.Namespace) -> DataDir:
    from aileron_enclave.datadir import DataDir, default_data_dir

    return DataDir(args.data_dir if args.data_dir is not None else default_data_dir())


def _serve(args: argparse.Namespace) -> int:
    from aileron_enclave.provider import select_provider
    from aileron_enclave.server import parse_listen, serve

    provider = select_provider()
    listen = parse_listen(args.listen)
    data_dir = _data_dir(args)
    logging.basicConfig(
        level=logging.INFO if os.environ.get("AILERON_DEBUG") else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return serve(data_dir, listen, provider=provider)


def _fingerprint(args: argparse.Namespace) -> int:
    from aileron_enclave.datadir import Identity

    data_dir = _data_dir(args)
    print(Identity.load(data_dir).fingerprint)
    return 0


def _registration_code(args: argparse.Namespace) -> int:
    from aileron_enclave.auth import RegistrationCodes

    data_dir = _data_dir(args)
    data_dir.ensure()
    print(RegistrationCodes(data_dir.registration_code).current(new=args.new))
    return 0


def _measurement(args: argparse.Namespace) -> int:
    from aileron_enclave.measurement import measure

    print(measure())
    return 0


def build_parser() -> argparse.ArgumentParser:
    from aileron_enclave.server import DEFAULT_LISTEN

    parser = argparse.ArgumentParser(
        prog="aileron-enclave",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aileron-enclave {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="Serve the escrow API over HTTPS (needs AILERON_TEE_PROVIDER=local).",
        description="Serve the escrow API over HTTPS. The first start creates the data"
        " directory, the keys and a self-signed certificate. Once serving, DIR/listen.json"
        " holds the URL (with --listen HOST:0, the port the system chose) and the fingerprint.",
    )
    _data_dir_arg(serve)
    serve.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to listen on (default {DEFAULT_LISTEN}; port 0 = any free port)",
    )
    serve.set_defaults(handler=_serve)
    fingerprint = commands.add_parser(
        "fingerprint",
        help="Print the sha256 fingerprint (hex) of the service's TLS certificate.",
    )
    _data_dir_arg(fingerprint)
    fingerprint.set_defaults(handler=_fingerprint)
    code = commands.add_parser(
        "registration-code",
        help="Print the one-time code that lets the next daemon attach.",
        description="Print the one-time registration code (created if there is none). Each"
        " code registers one client, then the enclave replaces it.",
    )
    _data_dir_arg(code)
    code.add_argument("--new", action="store_true", help="replace the current code first")
    code.set_defaults(handler=_registration_code)
    measurement = commands.add_parser(
        "measurement", help="Print the sha256 measurement of the installed enclave code."
    )
    measurement.set_defaults(handler=_measurement)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aileron-enclave`` with ``argv`` (default: the process arguments)."""
    from aileron_core.errors import AileronError

    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = handler(args)
    except AileronError as error:
        if os.environ.get("AILERON_DEBUG") == "1":
            raise
        print(f"aileron-enclave: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
