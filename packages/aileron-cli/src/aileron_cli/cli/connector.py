"""``aileron connector install|list|show|remove``: the connector specs actions run against."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from aileron_cli.cli.common import (
    InputError,
    add_json_flag,
    connect,
    print_json,
    print_table,
    sendable,
    url_segment,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser(
        "connector",
        help="Install and inspect connector specs (aileron.connector.v1).",
        description=(
            "A connector spec declares the HTTP operations of one API, the hosts they may reach"
            " and the kind of credential they need. Specs are stored content-addressed."
        ),
    )
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    install = commands.add_parser("install", help="Install a spec from a file or an https URL.")
    install.add_argument("source", metavar="FILE|URL")
    install.add_argument(
        "--sha256", metavar="HEX", help="refuse the file unless its bytes hash to HEX"
    )
    install.set_defaults(handler=_install)
    listing = commands.add_parser("list", help="List installed connectors.")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    show = commands.add_parser("show", help="Show one connector's tools and operations.")
    show.add_argument("fqn")
    add_json_flag(show)
    show.set_defaults(handler=_show)
    remove = commands.add_parser("remove", help="Remove a connector.")
    remove.add_argument("fqn")
    remove.set_defaults(handler=_remove)


def _read_source(source: str) -> bytes:
    if source.startswith(("https://", "http://")):
        import httpx

        try:
            response = httpx.get(source, timeout=30.0, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise InputError(f"cannot fetch {source}: {error}") from error
        return response.content
    try:
        return Path(source).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {source}: {error.strerror or error}") from error


def _install(args: argparse.Namespace) -> int:
    data = _read_source(args.source)
    if args.sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != args.sha256.lower():
            raise InputError(
                f"{args.source} hashes to {actual}, not {args.sha256}",
                hint="check the source, or the digest you were given",
            )
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"{args.source} is not JSON: {error}") from error
    except RecursionError:
        raise InputError(f"{args.source} is nested too deeply to be a connector spec") from None
    if not isinstance(document, dict):
        raise InputError(f"{args.source} is not a JSON object")
    sendable(document, args.source)
    with connect() as client:
        installed = client.post("connectors", {"spec": document})
    print(f"installed {installed['fqn']} {installed['version']} (sha256 {installed['sha256']})")
    return 0


def _list(args: argparse.Namespace) -> int:
    with connect() as client:
        connectors = client.get("connectors")
    if args.json:
        print_json(connectors)
        return 0
    print_table(
        (
            (
                c["fqn"],
                c["version"],
                c["credential"]["service"],
                ", ".join(t["name"] for t in c["tools"]),
                c["sha256"][:12],
            )
            for c in connectors
        ),
        ("FQN", "VERSION", "SERVICE", "TOOLS", "SHA256"),
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    fqn = url_segment(args.fqn, "the connector FQN", slashes=True)
    with connect() as client:
        connector = client.get(f"connectors/{fqn}")
    if args.json:
        print_json(connector)
        return 0
    print(f"{connector['fqn']} {connector['version']} — {connector['description']}")
    print(f"credential: {connector['credential']['kind']} for {connector['credential']['service']}")
    rows = []
    for tool in connector["tools"]:
        for op in tool["operations"]:
            inputs = ", ".join(
                i["name"] + ("" if i.get("required", True) else "?") for i in op["inputs"]
            )
            approval = "approval" if op.get("approval") == "required" else ""
            rows.append((tool["name"], op["name"], op["method"], approval, inputs, op["summary"]))
    print_table(rows, ("TOOL", "OPERATION", "METHOD", "NEEDS", "INPUTS", "SUMMARY"))
    return 0


def _remove(args: argparse.Namespace) -> int:
    fqn = url_segment(args.fqn, "the connector FQN", slashes=True)
    with connect() as client:
        client.delete(f"connectors/{fqn}")
    print(f"removed {args.fqn}")
    return 0
