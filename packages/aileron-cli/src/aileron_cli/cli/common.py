"""What every command that talks to the daemon shares: connecting, secrets input, output."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aileron_core.errors import AileronError
from aileron_core.paths import Layout

if TYPE_CHECKING:
    from aileron_core.client import DaemonClient

T = TypeVar("T")

PASSPHRASE_ENV = "AILERON_VAULT_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
NEW_PASSPHRASE_ENV = "AILERON_VAULT_NEW_PASSPHRASE"  # noqa: S105 (likewise)


class InputError(AileronError):
    code = "invalid_input"


def connect() -> DaemonClient:
    """A client of the daemon: ``AILERON_API_URL`` + ``AILERON_TOKEN``, else the local one
    (auto-spawned if it is not running)."""
    from aileron_cli.lifecycle import ensure_daemon
    from aileron_core.client import DaemonClient

    override = os.environ.get("AILERON_API_URL")
    if override:
        return DaemonClient(override, os.environ.get("AILERON_TOKEN"))
    info = ensure_daemon(Layout())
    return DaemonClient(info.api_url, info.token)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def add_passphrase_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="FILE",
        help=f"read the vault passphrase from FILE (else ${PASSPHRASE_ENV}, else the terminal)",
    )


def _read_secret_file(path: Path) -> str:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}") from error
    value = text[:-1] if text.endswith("\n") else text
    if not value:
        raise InputError(f"{path} is empty")
    return value


def passphrase(
    args: argparse.Namespace,
    *,
    confirm: bool = False,
    env: str = PASSPHRASE_ENV,
    file_attr: str = "passphrase_file",
    prompt: str = "Vault passphrase: ",
) -> str:
    """The passphrase from ``--passphrase-file``, then ``$env``, then the terminal."""
    path = getattr(args, file_attr, None)
    if path is not None:
        return _read_secret_file(path)
    from_env = os.environ.get(env)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise InputError(
            "no passphrase available",
            hint=f"pass --passphrase-file FILE, set {env}, or run on a terminal",
        )
    value = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat it: ") != value:
        raise InputError("the two passphrases differ", hint="run the command again")
    if not value:
        raise InputError("an empty passphrase is not allowed")
    return value


def has_passphrase_source(args: argparse.Namespace) -> bool:
    return (
        getattr(args, "passphrase_file", None) is not None
        or bool(os.environ.get(PASSPHRASE_ENV))
        or sys.stdin.isatty()
    )


def secret_from_stdin(what: str) -> str:
    """A secret value from standard input (piped) or a hidden prompt; never from argv."""
    if sys.stdin.isatty():
        value = getpass.getpass(f"{what}: ")
        if getpass.getpass("Repeat it: ") != value:
            raise InputError("the two values differ", hint="run the command again")
    else:
        value = sys.stdin.read()
        if value.endswith("\n"):
            value = value[:-1]
    if not value:
        raise InputError(
            f"no {what} given", hint="pipe it on standard input or type it at the prompt"
        )
    return value


def unlocking(client: DaemonClient, args: argparse.Namespace, call: Callable[[], T]) -> T:
    """Run ``call``; if the vault is locked and a passphrase is at hand, unlock and retry once."""
    from aileron_core.client import ApiError

    try:
        return call()
    except ApiError as error:
        locked = error.code == "vault_locked" or (
            error.code == "binding_required" and error.details.get("vault") == "locked"
        )
        if not locked or not has_passphrase_source(args):
            raise
    client.post("vault/unlock", {"passphrase": passphrase(args)})
    return call()


def parse_meta(pairs: list[str]) -> dict[str, str]:
    """``--meta KEY=VALUE`` options as a mapping."""
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--meta {pair!r} is not KEY=VALUE")
        metadata[key] = value
    return metadata


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def print_table(rows: Iterable[Sequence[object]], headers: Sequence[str]) -> None:
    """Print rows as columns aligned under their headers."""
    table = [
        [str(h) for h in headers],
        *[["" if c is None else str(c) for c in row] for row in rows],
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def print_fields(pairs: Iterable[tuple[str, object]]) -> None:
    """Print ``key: value`` lines with the values aligned."""
    items = list(pairs)
    width = max((len(k) for k, _ in items), default=0)
    for key, value in items:
        print(f"{key + ':':<{width + 1}} {'' if value is None else value}")
