"""``aileron action …``: install, inspect, run, enable/disable and remove actions."""

from __future__ import annotations

import argparse
import json
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
    sendable,
    unlocking,
    url_segment,
)
from aileron_cli.cli.errors import EXIT_PENDING


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser(
        "action",
        help="Install, inspect and run declared actions.",
        description=(
            "An action (a Markdown file with TOML front matter) declares inputs and the"
            " connector operations it runs. Agents see enabled actions as tools."
        ),
    )
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    install = commands.add_parser("install", help="Install an action manifest (NAME.md).")
    install.add_argument("file", type=Path)
    install.set_defaults(handler=_install)
    listing = commands.add_parser("list", help="List actions and manifests that failed to load.")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    show = commands.add_parser("show", help="Show one action.")
    show.add_argument("name")
    add_json_flag(show)
    show.set_defaults(handler=_show)
    run = commands.add_parser(
        "run",
        help="Run an action (exit 75 when it waits for approval).",
        description="Run an action through the daemon. Exit 75 when it waits for approval.",
    )
    run.add_argument("name")
    run.add_argument(
        "--arg", action="append", default=[], metavar="KEY=VALUE", help="one argument (repeatable)"
    )
    run.add_argument("--args", metavar="JSON", help="all arguments as one JSON object")
    add_json_flag(run)
    add_passphrase_file(run)
    run.set_defaults(handler=_run)
    for name, enabled in (("enable", True), ("disable", False)):
        toggle = commands.add_parser(name, help=f"{name.capitalize()} an action.")
        toggle.add_argument("name")
        toggle.set_defaults(handler=_toggle, enabled=enabled)
    remove = commands.add_parser("remove", help="Remove an action.")
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)


def _install(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {args.file}: {error}") from error
    with connect() as client:
        action = client.post("actions", {"manifest": text})
    print(f"installed action {action['name']} {action['version']}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with connect() as client:
        listing = client.get("actions")
    if args.json:
        print_json(listing)
        return 0
    print_table(
        (
            (
                a["name"],
                a["version"],
                "yes" if a["enabled"] else "no",
                "yes" if a["approval_required"] else "",
                a["description"].splitlines()[0][:60],
            )
            for a in listing["actions"]
        ),
        ("NAME", "VERSION", "ENABLED", "APPROVAL", "DESCRIPTION"),
    )
    for error in listing["load_errors"]:
        print(f"load error: {error['message']}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    name = url_segment(args.name, "the action name")
    with connect() as client:
        action = client.get(f"actions/{name}")
    if args.json:
        print_json(action)
        return 0
    print_fields(
        [
            ("name", action["name"]),
            ("version", action["version"]),
            ("enabled", action["enabled"]),
            ("approval", "required" if action["approval_required"] else "none"),
            ("connectors", ", ".join(action["connectors"])),
        ]
    )
    print_table(
        (
            (i["name"], i["type"], "yes" if i["required"] else "", i["description"])
            for i in action["inputs"]
        ),
        ("INPUT", "TYPE", "REQUIRED", "DESCRIPTION"),
    )
    print()
    print(action["description"])
    return 0


def _collect_args(args: argparse.Namespace, manifest_text: str | None) -> dict[str, Any]:
    """``--args`` JSON, then each ``--arg k=v`` coerced to the input's declared type."""
    from aileron_core.actions import parse_action_manifest
    from aileron_core.arguments import ArgsError, coerce_cli_arg

    collected: dict[str, Any] = {}
    if args.args is not None:
        try:
            loaded = json.loads(args.args)
        except ValueError as error:
            raise InputError(f"--args is not JSON: {error}") from error
        except RecursionError:
            raise InputError("--args is nested too deeply") from None
        if not isinstance(loaded, dict):
            raise InputError("--args must be a JSON object")
        collected.update(loaded)
    if args.arg:
        manifest = parse_action_manifest(manifest_text) if manifest_text else None
        for pair in args.arg:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise InputError(f"--arg {pair!r} is not KEY=VALUE")
            if manifest is None or manifest.find_input(key) is None:
                collected[key] = value  # the daemon names unknown arguments
                continue
            try:
                collected[key] = coerce_cli_arg(manifest, key, value)
            except ArgsError as error:
                raise InputError(str(error)) from error
    return dict(sendable(collected, "an argument"))


def _run(args: argparse.Namespace) -> int:
    name = url_segment(args.name, "the action name")
    with connect() as client:
        manifest = client.get(f"actions/{name}")["manifest"] if args.arg else None
        arguments = _collect_args(args, manifest)
        answer = unlocking(
            client,
            args,
            lambda: client.request("POST", f"actions/{name}/run", json={"args": arguments}),
        )
        if answer.get("status") == "pending_approval":
            if args.json:
                print_json(answer)
            else:
                print(answer["message"])
            return EXIT_PENDING
    if args.json:
        print_json(answer)
    else:
        result = answer["result"]
        print(result if isinstance(result, str) else json.dumps(result, indent=2, sort_keys=True))
    return 0


def _toggle(args: argparse.Namespace) -> int:
    name = url_segment(args.name, "the action name")
    with connect() as client:
        client.request("PATCH", f"actions/{name}", json={"enabled": args.enabled})
    print(f"{'enabled' if args.enabled else 'disabled'} {args.name}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    name = url_segment(args.name, "the action name")
    with connect() as client:
        client.delete(f"actions/{name}")
    print(f"removed action {args.name}")
    return 0
