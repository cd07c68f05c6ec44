"""``aileron connector install|list|show|remove|enable|disable``: the connector specs actions run
against, and which of their operations agents may run directly (ADR 0017)."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from aileron_cli.cli import connector_catalog
from aileron_cli.cli.common import (
    InputError,
    add_json_flag,
    connect,
    print_json,
    print_table,
    sendable,
    url_segment,
)

_DIGEST = re.compile(r"[0-9a-f]{64}")


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
        "--sha256",
        metavar="HEX",
        help=(
            "refuse the spec unless its digest is HEX: the digest `install`, `list` and `show`"
            " print (sha256 of the canonical JSON of the normalized spec, so white space and key"
            " order do not matter), or the sha256 of the file's bytes (what `sha256sum FILE`"
            " prints)"
        ),
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
    for verb, word in (("disable", "Close"), ("enable", "Open")):
        switch = commands.add_parser(
            verb,
            help=f"{word} a connector (or one operation) to agents' direct runs.",
            description=(
                f"{word} connector FQN, or one of its operations, to agents: the operation"
                " subcommands of the sandbox shims and any direct run with a session token"
                " (POST /v1/connector-operations/run). Operations are open to agents unless"
                " disabled, and even then run only under the strictest approval that applies:"
                " their own, and that of every enabled action that wraps them; an operation a"
                " disabled action wraps stays closed. Your own runs and the agent's enabled"
                " actions are not affected."
            ),
        )
        switch.add_argument("fqn")
        switch.add_argument(
            "--operation", metavar="TOOL.OP", help="only this operation (e.g. issues.create)"
        )
        switch.set_defaults(handler=_switch, agents=verb == "enable")
    connector_catalog.register(commands)


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


def _pin(text: str) -> str:
    """``--sha256 HEX`` as 64 lower-case hex digits (a shortened digest does not pin)."""
    pin = text.strip().lower()
    if not _DIGEST.fullmatch(pin):
        raise InputError(
            f"--sha256 {text!r} is not a sha256 digest (64 hex digits)",
            hint="copy the whole digest `aileron connector install` or `list` printed",
        )
    return pin


def _install(args: argparse.Namespace) -> int:
    from aileron_core.client import ApiError

    data = _read_source(args.source)
    pin = None if args.sha256 is None else _pin(args.sha256)
    file_digest = hashlib.sha256(data).hexdigest()
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"{args.source} is not JSON: {error}") from error
    except RecursionError:
        raise InputError(f"{args.source} is nested too deeply to be a connector spec") from None
    if not isinstance(document, dict):
        raise InputError(f"{args.source} is not a JSON object")
    sendable(document, args.source)
    body: dict[str, Any] = {"spec": document}
    if pin is not None and pin != file_digest:
        body["sha256"] = pin  # the daemon checks the spec's digest as it installs
    with connect() as client:
        try:
            installed = client.post("connectors", body)
        except ApiError as error:
            if error.code != "digest_mismatch":
                raise
            raise InputError(
                f"{args.source}: the spec's digest is {error.details.get('actual')} and the"
                f" file's bytes hash to {file_digest}; neither is the pinned {pin}",
                hint="check the source, or the digest you were given",
            ) from None
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
                c["sha256"],
                _agents(c),
            )
            for c in connectors
        ),
        ("FQN", "VERSION", "SERVICE", "TOOLS", "SHA256", "AGENTS"),
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
    print(f"agents: {_agents(connector)}")
    print(f"sha256: {connector['sha256']}")
    verdicts = {(v["tool"], v["operation"]): v for v in connector.get("agent_operations", [])}
    rows = []
    for tool in connector["tools"]:
        for op in tool["operations"]:
            inputs = ", ".join(
                i["name"] + ("" if i.get("required", True) else "?") for i in op["inputs"]
            )
            approval = "approval" if op.get("approval") == "required" else ""
            verdict = verdicts.get((tool["name"], op["name"]))
            rows.append(
                (
                    tool["name"],
                    op["name"],
                    op["method"],
                    approval,
                    _agent_cell(verdict),
                    inputs,
                    op["summary"],
                )
            )
    print_table(rows, ("TOOL", "OPERATION", "METHOD", "NEEDS", "AGENTS", "INPUTS", "SUMMARY"))
    for verdict in verdicts.values():
        if verdict.get("reason"):
            print(f"{verdict['tool']}.{verdict['operation']}: {verdict['reason']}")
    return 0


def _agents(connector: dict[str, Any]) -> str:
    """Whether agents may run a connector's operations directly, for ``list`` and ``show``."""
    if not connector.get("agents", True):
        return "disabled"
    verdicts = connector.get("agent_operations", [])
    closed = sum(1 for v in verdicts if not v["allowed"])
    return f"{len(verdicts) - closed}/{len(verdicts)} operations" if closed else "enabled"


def _agent_cell(verdict: dict[str, Any] | None) -> str:
    """One operation's verdict for agents: ``direct``, ``approval`` or ``no``."""
    if verdict is None:
        return ""
    if not verdict["allowed"]:
        return "no"
    return "approval" if verdict["approval_required"] else "direct"


def _switch(args: argparse.Namespace) -> int:
    fqn = url_segment(args.fqn, "the connector FQN", slashes=True)
    body: dict[str, Any] = {"agents": args.agents}
    what = args.fqn
    if args.operation is not None:
        tool, dot, op = args.operation.partition(".")
        if not dot or not tool or not op:
            raise InputError(
                f"--operation {args.operation!r} is not TOOL.OP",
                hint="see the TOOL and OPERATION columns of `aileron connector show FQN`",
            )
        body |= {"tool": tool, "operation": op}
        what = f"operation {args.operation} of {args.fqn}"
    with connect() as client:
        client.request("PATCH", f"connectors/{fqn}", json=body)
    state = "open to" if args.agents else "closed to"
    print(f"{what} is {state} agents' direct runs")
    return 0


def _remove(args: argparse.Namespace) -> int:
    fqn = url_segment(args.fqn, "the connector FQN", slashes=True)
    with connect() as client:
        client.delete(f"connectors/{fqn}")
    print(f"removed {args.fqn}")
    return 0
