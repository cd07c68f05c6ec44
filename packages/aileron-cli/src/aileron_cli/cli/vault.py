"""``aileron vault …``: the encrypted vault, through the daemon (the CLI never derives a key).

There is deliberately no command that prints a secret.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aileron_cli.cli.common import (
    NEW_PASSPHRASE_ENV,
    add_json_flag,
    add_passphrase_file,
    connect,
    parse_meta,
    passphrase,
    print_json,
    print_table,
    secret_from_stdin,
    unlocking,
    url_path,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser(
        "vault",
        help="Create, unlock and manage the encrypted vault.",
        description=(
            "The vault holds your credentials, encrypted with a key derived from your passphrase"
            " (Argon2id). Only the daemon ever holds the key. Passphrase sources, in order:"
            " --passphrase-file, $AILERON_VAULT_PASSPHRASE, the terminal."
        ),
    )
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(
        name: str, help: str, handler: object, *, passphrase_file: bool = True
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help, description=help)
        if passphrase_file:
            add_passphrase_file(parser)
        parser.set_defaults(handler=handler)
        return parser

    command("init", "Create the vault (it is left unlocked).", _init)
    command("unlock", "Unlock the vault in the daemon.", _unlock)
    command(
        "restore-accept",
        "Unlock a vault.json older than the audit log's last signed head (a deliberate restore"
        " from a backup): its generation is moved forward and the acceptance is audited.",
        _restore_accept,
    )
    command("lock", "Make the daemon forget the vault key.", _lock, passphrase_file=False)
    add_json_flag(
        command(
            "status",
            "Show whether the vault is missing, locked or unlocked.",
            _status,
            passphrase_file=False,
        )
    )
    passwd = command("passwd", "Change the passphrase (re-wraps the data key).", _passwd)
    passwd.add_argument(
        "--new-passphrase-file",
        type=Path,
        metavar="FILE",
        help=f"read the new passphrase from FILE (else ${NEW_PASSPHRASE_ENV}, else the terminal)",
    )
    command("rotate", "Re-encrypt every entry under a new data key.", _rotate)
    add_json_flag(command("list", "List entry paths and metadata (never values).", _list))
    put = command("put", "Store a secret read from stdin or a hidden prompt.", _put)
    put.add_argument("path", help="entry path, e.g. api_key/openai/default")
    put.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata to store beside it (repeatable)",
    )
    delete = command("delete", "Delete an entry.", _delete)
    delete.add_argument("path")


def _init(args: argparse.Namespace) -> int:
    secret = passphrase(args, confirm=True, prompt="New vault passphrase: ")
    with connect() as client:
        client.post("vault/init", {"passphrase": secret})
    print("created the vault; it is unlocked")
    return 0


def _unlock(args: argparse.Namespace) -> int:
    with connect() as client:
        client.post("vault/unlock", {"passphrase": passphrase(args)})
    print("the vault is unlocked")
    return 0


def _restore_accept(args: argparse.Namespace) -> int:
    with connect() as client:
        status = client.post(
            "vault/unlock", {"passphrase": passphrase(args), "accept_restore": True}
        )
    if status.get("restore_accepted"):
        print("accepted the restored vault (audited as vault.restore_accepted); it is unlocked")
    else:
        print("the vault was not behind the audit log; it is unlocked (nothing to accept)")
    return 0


def _lock(args: argparse.Namespace) -> int:
    with connect() as client:
        client.post("vault/lock")
    print("the vault is locked")
    return 0


def _status(args: argparse.Namespace) -> int:
    with connect() as client:
        state = client.get("vault/status")
    if args.json:
        print_json(state)
    else:
        print(f"vault: {state['state']}")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    old = passphrase(args, prompt="Current passphrase: ")
    new = passphrase(
        args,
        confirm=True,
        env=NEW_PASSPHRASE_ENV,
        file_attr="new_passphrase_file",
        prompt="New passphrase: ",
    )
    with connect() as client:
        client.post("vault/passphrase", {"old": old, "new": new})
    print("changed the vault passphrase")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    with connect() as client:
        unlocking(client, args, lambda: client.post("vault/rotate"))
    print("re-encrypted every entry under a new data key")
    return 0


def _list(args: argparse.Namespace) -> int:
    with connect() as client:
        entries = unlocking(client, args, lambda: client.get("vault/entries"))
    if args.json:
        print_json(entries)
        return 0
    print_table(
        (
            (
                e["path"],
                e["updated_at"],
                ", ".join(f"{k}={v}" for k, v in sorted(e["metadata"].items())),
            )
            for e in entries
        ),
        ("PATH", "UPDATED", "METADATA"),
    )
    return 0


def _put(args: argparse.Namespace) -> int:
    path = url_path(args.path, "the entry path")
    metadata = parse_meta(args.meta)
    value = secret_from_stdin(f"Value for {args.path}")
    with connect() as client:
        unlocking(
            client,
            args,
            lambda: client.put(f"vault/entries/{path}", {"value": value, "metadata": metadata}),
        )
    print(f"stored {args.path}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    path = url_path(args.path, "the entry path")
    with connect() as client:
        unlocking(client, args, lambda: client.delete(f"vault/entries/{path}"))
    print(f"deleted {args.path}")
    return 0
