"""``aileron enclave attach|status|detach``: the daemon's credential escrow service.

Attaching pins the enclave's certificate by its sha256 fingerprint, verifies a fresh
attestation and registers a client key with the enclave's one-time registration code; then
``aileron binding escrow NAME`` moves a binding's secret into the enclave.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from aileron_cli.cli.common import (
    InputError,
    add_json_flag,
    add_passphrase_file,
    connect,
    print_fields,
    print_json,
    print_table,
    unlocking,
)

CODE_ENV = "AILERON_ENCLAVE_CODE"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser(
        "enclave",
        help="Attach the daemon to an aileron-enclave escrow service.",
        description=(
            "An aileron-enclave holds escrowed credentials and injects them into the requests"
            " the daemon asks it to make, only to the hosts each one was escrowed for. Attach"
            " once, then move bindings into it with `aileron binding escrow NAME`."
        ),
    )
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    attach = commands.add_parser(
        "attach",
        help="Pin an enclave's certificate, verify its attestation, register with it.",
        description=(
            "Attach to the enclave at URL. The certificate it presents must have the sha256"
            " FINGERPRINT (`aileron-enclave fingerprint` prints it where the enclave runs);"
            " a fresh attestation must verify; then a new client key is registered with the"
            " enclave's one-time registration code (`aileron-enclave registration-code`)."
            f" Code sources, in order: --code-file, ${CODE_ENV}, the terminal. The client key"
            " is kept in the vault, so the vault must be unlocked."
        ),
    )
    attach.add_argument("url", help="the enclave's URL, e.g. https://127.0.0.1:9443")
    attach.add_argument(
        "--fingerprint", required=True, metavar="HEX", help="sha256 of its certificate"
    )
    attach.add_argument(
        "--code-file", type=Path, metavar="FILE", help="read the registration code from FILE"
    )
    attach.add_argument(
        "--measurement",
        metavar="HEX",
        help="refuse the enclave unless its code measurement is HEX",
    )
    add_passphrase_file(attach)
    attach.set_defaults(handler=_attach)
    status = commands.add_parser(
        "status", help="Show the attachment and check a fresh attestation."
    )
    add_json_flag(status)
    status.set_defaults(handler=_status)
    detach = commands.add_parser("detach", help="Unregister from the enclave and forget it.")
    detach.add_argument(
        "--force",
        action="store_true",
        help="detach even with escrowed bindings (they become unusable) or an unreachable enclave",
    )
    add_passphrase_file(detach)
    detach.set_defaults(handler=_detach)


def _registration_code(args: argparse.Namespace) -> str:
    import getpass

    if args.code_file is not None:
        try:
            code: str = args.code_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read {args.code_file}: {error}") from error
        if not code:
            raise InputError(f"{args.code_file} is empty")
        return code
    from_env = os.environ.get(CODE_ENV)
    if from_env:
        return str(from_env).strip()
    if not sys.stdin.isatty():
        raise InputError(
            "no registration code available",
            hint=f"pass --code-file FILE, set {CODE_ENV}, or run on a terminal",
        )
    code = str(getpass.getpass("Enclave registration code: ")).strip()
    if not code:
        raise InputError("an empty registration code is not allowed")
    return code


def _normalized(text: str, what: str) -> str:
    from aileron_core.enclave.encoding import normalize_fingerprint

    try:
        return normalize_fingerprint(text)
    except ValueError as error:
        raise InputError(f"--{what} {text!r}: {error}") from None


def _attach(args: argparse.Namespace) -> int:
    body = {
        "url": args.url,
        "fingerprint": _normalized(args.fingerprint, "fingerprint"),
        "registration_code": _registration_code(args),
        "measurement": _normalized(args.measurement, "measurement") if args.measurement else None,
    }
    with connect() as client:
        status = unlocking(client, args, lambda: client.post("enclave/attach", body))
    print(f"attached to the enclave at {status['url']}")
    if status.get("debug"):
        print(
            f"note: provider {status['provider']!r} is a debug provider: no hardware isolation"
            " (see the README)"
        )
    return 0


def _status(args: argparse.Namespace) -> int:
    with connect() as client:
        status: dict[str, Any] = client.get("enclave", verify="true")
    if args.json:
        print_json(status)
        return 0
    if not status["attached"]:
        print("enclave: not attached")
        return 0
    verdict = "yes" if status["verified"] else f"NO — {status['problem']}"
    print_fields(
        [
            ("enclave", status["url"]),
            ("fingerprint", status["fingerprint"]),
            ("provider", f"{status['provider']}{' (debug)' if status['debug'] else ''}"),
            ("measurement", status["measurement"]),
            ("client id", status["client_id"]),
            ("attached", status["attached_at"]),
            ("attestation", verdict),
        ]
    )
    if status["escrows"]:
        print()
        print_table(
            (
                (e["binding"], e["escrow_id"], ", ".join(e["hosts"]), e["escrowed_at"])
                for e in status["escrows"]
            ),
            ("BINDING", "ESCROW", "HOSTS", "ESCROWED"),
        )
    return 0


def _detach(args: argparse.Namespace) -> int:
    with connect() as client:
        done = unlocking(client, args, lambda: client.post("enclave/detach", {"force": args.force}))
    note = "" if done["unregistered"] else " (the enclave was not told: it was unreachable)"
    print(f"detached from the enclave{note}")
    if done["escrows_dropped"]:
        print(f"escrowed bindings now unusable: {', '.join(done['escrows_dropped'])}")
    return 0
