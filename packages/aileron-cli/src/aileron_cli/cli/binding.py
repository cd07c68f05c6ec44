"""``aileron binding add|list|show|revoke|escrow``: credentials that connectors use, by name."""

from __future__ import annotations

import argparse

from aileron_cli.cli.common import (
    add_json_flag,
    add_passphrase_file,
    connect,
    parse_meta,
    print_fields,
    print_json,
    print_table,
    secret_from_stdin,
    sendable,
    unlocking,
    url_path,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser(
        "binding",
        help="Bind credentials in the vault to connector services.",
        description=(
            "A binding is named <kind>/<service>/<identity> (e.g. token/github/default); its"
            " secret lives in the vault under that name. Connectors use */<service>/default"
            " unless an action names another binding."
        ),
    )
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add = commands.add_parser(
        "add", help="Add a binding; the secret is read from stdin or a prompt."
    )
    add.add_argument("name", help="<kind>/<service>/<identity>, e.g. token/github/default")
    add.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    add_passphrase_file(add)
    add.set_defaults(handler=_add)
    listing = commands.add_parser("list", help="List bindings (never their secrets).")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    show = commands.add_parser("show", help="Show one binding.")
    show.add_argument("name")
    add_json_flag(show)
    show.set_defaults(handler=_show)
    revoke = commands.add_parser("revoke", help="Delete a binding and its secret.")
    revoke.add_argument("name")
    add_passphrase_file(revoke)
    revoke.set_defaults(handler=_revoke)
    escrow = commands.add_parser(
        "escrow",
        help="Move a binding's secret into the attached enclave.",
        description=(
            "Seal the binding's secret to the attached enclave (`aileron enclave attach`) and"
            " delete it from the vault; from then on the enclave injects it, and only into"
            " requests to the hosts of the connectors that use the binding's service (or the"
            " --host values given). There is no way to move it back: to change it, revoke the"
            " binding and add it again."
        ),
    )
    escrow.add_argument("name")
    escrow.add_argument(
        "--host",
        action="append",
        dest="hosts",
        metavar="HOST[:PORT]",
        help="a host the enclave may send the credential to (repeatable; default: the hosts"
        " of the installed connectors)",
    )
    add_passphrase_file(escrow)
    escrow.set_defaults(handler=_escrow)


def _add(args: argparse.Namespace) -> int:
    sendable(args.name, "the binding name")
    metadata = parse_meta(args.meta)
    value = secret_from_stdin(f"Secret for {args.name}")
    with connect() as client:
        unlocking(
            client,
            args,
            lambda: client.post(
                "bindings", {"name": args.name, "value": value, "metadata": metadata}
            ),
        )
    print(f"added binding {args.name}")
    return 0


def _escrow(args: argparse.Namespace) -> int:
    name = url_path(args.name, "the binding name")
    sendable(args.hosts, "--host")
    with connect() as client:
        record = unlocking(
            client,
            args,
            lambda: client.post(f"bindings/{name}/escrow", {"hosts": args.hosts}),
        )
    print(
        f"escrowed binding {args.name} as {record['escrow_id']} (hosts:"
        f" {', '.join(record['hosts'])}); the vault no longer holds its secret"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    with connect() as client:
        bindings = client.get("bindings")
    if args.json:
        print_json(bindings)
        return 0
    print_table(
        (
            (
                b["name"],
                b["kind"],
                b["service"],
                b["identity"],
                b["created_at"],
                "enclave" if b.get("escrow") else "vault",
            )
            for b in bindings
        ),
        ("NAME", "KIND", "SERVICE", "IDENTITY", "CREATED", "HELD BY"),
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    name = url_path(args.name, "the binding name")
    with connect() as client:
        binding = client.get(f"bindings/{name}")
    if args.json:
        print_json(binding)
    else:
        print_fields(binding.items())
    return 0


def _revoke(args: argparse.Namespace) -> int:
    name = url_path(args.name, "the binding name")
    with connect() as client:
        unlocking(client, args, lambda: client.delete(f"bindings/{name}"))
    print(f"revoked binding {args.name}")
    return 0
