"""What every command that talks to the daemon shares: connecting, secrets input, output."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from aileron_core.errors import AileronError
from aileron_core.paths import Layout
from aileron_core.strict import show

if TYPE_CHECKING:
    from aileron_core.client import DaemonClient

T = TypeVar("T")

PASSPHRASE_ENV = "AILERON_VAULT_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
NEW_PASSPHRASE_ENV = "AILERON_VAULT_NEW_PASSPHRASE"  # noqa: S105 (likewise)


class InputError(AileronError):
    code = "invalid_input"


# -- what the CLI sends: names in URL paths, text in queries and bodies -------------------------

MAX_NAME_CHARS = 1024
"""Longer than any name or filter the daemon accepts (past its own limit it answers a clear
422), and short enough that a percent-encoded name always fits in a URL (httpx refuses URLs
past 64 KiB)."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def sendable(value: Any, what: str) -> Any:
    """``value`` (text, or JSON data) if it can be sent as JSON: every string UTF-8 text, no
    NaN or Infinity; else ``InputError``. A lone surrogate gets here from a ``\\ud800`` escape
    in JSON, or from argv or stdin bytes that are not UTF-8 (Python decodes them with
    ``surrogateescape``)."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as error:
        bad = error.object[error.start : error.end]
        raise InputError(
            f"{what} is not valid UTF-8 text (it holds {ascii(bad)})",
            hint="pass UTF-8 text: bytes that are not UTF-8, and lone surrogates, cannot be sent",
        ) from None
    except ValueError:
        raise InputError(f"{what} holds NaN or Infinity, which JSON cannot carry") from None
    except RecursionError:
        raise InputError(f"{what} is nested too deeply") from None
    return value


def query_text(value: str | None, what: str) -> str | None:
    """``value`` (a filter for the query string) if it can be sent, else ``InputError``."""
    if value is None:
        return None
    sendable(value, what)
    if len(value) > MAX_NAME_CHARS:
        raise InputError(f"{what} is {len(value)} characters long; at most {MAX_NAME_CHARS}")
    return value


def _name(value: str, what: str) -> str:
    sendable(value, what)
    if not value:
        raise InputError(f"{what} is empty")
    if len(value) > MAX_NAME_CHARS:
        raise InputError(f"{what} is {len(value)} characters long; at most {MAX_NAME_CHARS}")
    if _CONTROL.search(value):
        raise InputError(f"{what} {show(value)} holds a control character")
    return value


def url_segment(value: str, what: str, *, slashes: bool = False) -> str:
    """``value`` (an action name, an id) as one percent-encoded segment of an API path.

    Sent as it is, ``actions/{name}`` with a name holding ``..``, ``/``, ``?`` or ``#`` would
    reach another resource (httpx resolves dot segments) or lose the rest of the path; so a
    name is one segment, never empty, ``.`` or ``..``, and is percent-encoded. With
    ``slashes`` (a connector FQN, ``local://echo``) a ``/`` is allowed and sent as ``%2F``.
    """
    _name(value, what)
    if (not slashes and "/" in value) or value in (".", ".."):
        raise InputError(f"{what} {show(value)} is not a name: it holds '/' or is '.' or '..'")
    return quote(value, safe="")


def url_path(value: str, what: str) -> str:
    """``value`` (a ``/``-separated vault path or binding name) as percent-encoded segments;
    an empty, ``.`` or ``..`` segment is refused before anything is sent."""
    _name(value, what)
    if any(segment in ("", ".", "..") for segment in value.split("/")):
        raise InputError(
            f"{what} {show(value)} has an empty, '.' or '..' segment",
            hint="separate its segments with single '/' and use no '.' or '..' segment",
        )
    return "/".join(quote(segment, safe="") for segment in value.split("/"))


def connect() -> DaemonClient:
    """A client of the daemon: ``AILERON_API_URL`` + ``AILERON_TOKEN`` (through the Unix
    socket ``AILERON_API_SOCKET`` when set: the master token is accepted only there), else the
    local one (auto-spawned if it is not running)."""
    from aileron_cli.lifecycle import ensure_daemon
    from aileron_core.client import DaemonClient

    override = os.environ.get("AILERON_API_URL")
    if override:
        return DaemonClient(
            override,
            os.environ.get("AILERON_TOKEN"),
            unix_socket=os.environ.get("AILERON_API_SOCKET") or None,
        )
    info = ensure_daemon(Layout())
    return DaemonClient.for_daemon(info)


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
        return str(sendable(from_env, f"${env}"))
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
        try:
            value = sys.stdin.read()
        except UnicodeDecodeError as error:
            raise InputError(
                f"{what}: standard input is not UTF-8 text ({error.reason})",
                hint="pipe UTF-8 text",
            ) from None
        if value.endswith("\n"):
            value = value[:-1]
    if not value:
        raise InputError(
            f"no {what} given", hint="pipe it on standard input or type it at the prompt"
        )
    return str(sendable(value, what))


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
    return dict(sendable(metadata, "--meta"))


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
