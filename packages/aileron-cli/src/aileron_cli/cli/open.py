"""``aileron open [approval ID]``: a one-time login link to the approvals page, opened in the
browser.

The link is minted by the daemon for the human only (the admin API: an agent's process tree is
refused), is good once and for 60 seconds, and logs the browser in for 12 hours.
"""

from __future__ import annotations

import argparse
import os
import sys

from aileron_cli.cli.common import InputError, add_json_flag, connect, print_json, sendable


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "open",
        help="Open the approvals web page (prints a one-time login link).",
        description=(
            "Mints a one-time login link to the daemon's local approvals page (good once, for"
            " 60 s), prints it and opens it in the browser. `aileron open approval ID` lands on"
            " that approval. The page lists pending approvals live, shows each request in full"
            " and approves or denies; also sessions and the audit log."
        ),
    )
    command.add_argument(
        "target",
        nargs="*",
        metavar="approval ID",
        help="open on this approval (`approval ID`, or just the ID)",
    )
    command.add_argument(
        "--no-browser",
        action="store_true",
        help="print the link only (it is also only printed when no display is found)",
    )
    add_json_flag(command)
    command.set_defaults(handler=_open)


def approval_of(target: list[str]) -> str | None:
    """The approval id named by ``open``'s words: none, ``ID`` or ``approval ID``."""
    words = list(target)
    if words and words[0] == "approval":
        words = words[1:]
        if not words:
            raise InputError("`aileron open approval` needs the approval's id")
    if len(words) > 1:
        raise InputError("usage: aileron open [approval ID] [--no-browser]")
    return words[0] if words else None


def has_display() -> bool:
    """Whether a graphical browser can be opened (not on a headless Linux, where the standard
    library would start a text browser in this terminal)."""
    if sys.platform == "darwin" or os.name == "nt":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open(args: argparse.Namespace) -> int:
    approval = approval_of(args.target)
    with connect() as client:
        link = client.post("ui/links", {"approval": sendable(approval, "approval id")})
    if args.json:
        print_json(link)
    else:
        print(link["url"])
        print("(a one-time link, good for 60 s)", file=sys.stderr)
    if not args.no_browser and has_display():
        import webbrowser

        webbrowser.open(link["url"])
    return 0
