"""``aileron binding add oauth2/<service>/<id> --connector FQN --client-id ID`` and
``aileron binding reauthorize NAME``: OAuth2 bindings, authorized in a browser (or with a
device code) through the daemon.

The daemon makes the authorize URL (PKCE, a ``state`` of its own, its loopback callback as the
redirect URI); this command prints it, opens it in the browser when there is a display (as
``aileron open`` does), and waits until the daemon says the flow is done or failed. With
``--device`` it prints the user code and where to enter it instead. No token ever reaches this
process: the daemon exchanges the code and keeps the tokens in the vault.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from aileron_cli.cli.common import (
    InputError,
    add_passphrase_file,
    connect,
    secret_from_stdin,
    sendable,
    unlocking,
    url_path,
)
from aileron_cli.cli.errors import UsageError

POLL_S = 1.0


def add_options(add: argparse.ArgumentParser) -> None:
    """The OAuth2 options of ``binding add``."""
    group = add.add_argument_group(
        "OAuth2 (a binding named oauth2/<service>/<identity>)",
        "Authorize in a browser (authorization code with PKCE; the daemon receives the"
        " redirect on 127.0.0.1) or with --device on a machine without one. The daemon keeps"
        " the refresh token in the vault and refreshes the access token before it expires;"
        " when the refresh is refused, run `aileron binding reauthorize NAME`.",
    )
    group.add_argument("--connector", metavar="FQN", help="the connector whose OAuth2 it uses")
    group.add_argument("--client-id", metavar="ID", help="the OAuth app's client id")
    group.add_argument(
        "--client-secret-stdin",
        action="store_true",
        help="read the app's client secret from standard input (public clients have none)",
    )
    group.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        metavar="SCOPE",
        help="a scope to ask for (repeatable; default: the connector's)",
    )
    _flow_options(group)


def _flow_options(group: Any) -> None:
    group.add_argument(
        "--device", action="store_true", help="the device flow: enter a code on another device"
    )
    group.add_argument(
        "--no-browser",
        action="store_true",
        help="print the URL only (it is also only printed when no display is found)",
    )


def wants_oauth2(args: argparse.Namespace) -> bool:
    """Whether ``binding add`` was asked for an OAuth2 binding."""
    oauth_options = args.connector or args.client_id or args.client_secret_stdin or args.scopes
    return bool(oauth_options) or str(args.name).startswith("oauth2/")


def register_reauthorize(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """``binding reauthorize NAME``."""
    command = commands.add_parser(
        "reauthorize",
        help="Authorize an OAuth2 binding again (when its refresh token is refused).",
        description=(
            "Runs the binding's OAuth2 authorization again with the client the vault holds for"
            " it, and replaces its tokens when done."
        ),
    )
    command.add_argument("name")
    _flow_options(command)
    add_passphrase_file(command)
    command.set_defaults(handler=_reauthorize)


def add(args: argparse.Namespace) -> int:
    """``binding add`` for an OAuth2 binding."""
    if args.connector is None or args.client_id is None:
        raise UsageError(
            f"an OAuth2 binding needs --connector and --client-id: aileron binding add"
            f" {args.name} --connector FQN --client-id ID [--client-secret-stdin]"
        )
    if args.meta:
        raise UsageError("--meta does not go with an OAuth2 binding")
    body: dict[str, Any] = {
        "name": args.name,
        "connector": args.connector,
        "client_id": args.client_id,
        "scopes": args.scopes,
        "device": args.device,
    }
    sendable(body, "the OAuth2 binding")
    if args.client_secret_stdin:
        body["client_secret"] = secret_from_stdin(f"Client secret for {args.name}")
    with connect() as client:
        flow = unlocking(client, args, lambda: client.post("bindings/oauth2", body))
        return _follow(client, flow, args, "authorized")


def _reauthorize(args: argparse.Namespace) -> int:
    name = url_path(args.name, "the binding name")
    with connect() as client:
        flow = unlocking(
            client,
            args,
            lambda: client.post(f"bindings/{name}/reauthorize", {"device": args.device}),
        )
        return _follow(client, flow, args, "reauthorized")


def _follow(client: Any, flow: dict[str, Any], args: argparse.Namespace, done: str) -> int:
    """Show the user what to do, then wait for the daemon to finish the flow."""
    from aileron_cli.cli.open import has_display

    if flow.get("user_code"):
        print(f"Enter the code {flow['user_code']} at {flow['verification_uri']}", flush=True)
        wait = float(flow.get("interval") or 5)
    else:
        print(f"Open this URL to authorize {flow['binding']}:", flush=True)
        print(flow["authorize_url"], flush=True)
        wait = POLL_S
        if not args.no_browser and has_display():
            import webbrowser

            webbrowser.open(flow["authorize_url"])
    print("waiting for the authorization (Ctrl-C to give up)…", file=sys.stderr, flush=True)
    while flow["status"] == "pending":
        time.sleep(wait)
        flow = client.get(f"bindings/oauth2/{flow['flow_id']}")
        wait = float(flow.get("interval") or wait)
    if flow["status"] == "failed":
        raise InputError(
            f"authorizing {flow['binding']} failed: {flow['reason']}",
            hint="check the client id and secret, then run the command again",
        )
    print(f"{done} binding {flow['binding']}")
    return 0
