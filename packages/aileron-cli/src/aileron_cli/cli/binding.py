"""``aileron binding add|list|show|revoke|escrow|expose|unexpose``: credentials that connectors
use, by name, and that sandboxed sessions may have brokered by their egress proxy."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from aileron_cli.cli import binding_oauth
from aileron_cli.cli.common import (
    InputError,
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
    binding_oauth.add_options(add)
    _add_source_options(add)
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
    binding_oauth.register_reauthorize(commands)
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
    expose = commands.add_parser(
        "expose",
        help="Let sandboxed sessions use a binding through their egress proxy.",
        description=(
            "A sandboxed session launched with `--expose NAME` (or `[sandbox] expose` in"
            " config.toml) gets a sentinel in VAR instead of the secret; its egress proxy"
            " swaps in the real secret on requests to the --host values only (and refuses the"
            " sentinel anywhere else). By default the sentinel is replaced where it stands in the"
            " Authorization header (also inside Basic credentials, as git sends them); --header"
            " sets another header from a template (the sentinel in any header asks for it),"
            " --basic sets Authorization: Basic from a user:password template; {} stands for the"
            " secret."
        ),
        epilog=(
            "example: aileron binding expose token/github/default --host github.com"
            ' --host api.github.com --as GH_TOKEN --basic "x-access-token:{}"'
        ),
    )
    expose.add_argument("name")
    expose.add_argument(
        "--host",
        action="append",
        dest="hosts",
        required=True,
        metavar="HOST[:PORT]",
        help="an exact host name the secret may go to (repeatable; port 443 unless given)",
    )
    expose.add_argument(
        "--as",
        dest="variable",
        required=True,
        metavar="VAR",
        help="the container variable that holds the sentinel, e.g. GH_TOKEN",
    )
    form = expose.add_mutually_exclusive_group()
    form.add_argument(
        "--header", metavar="TEMPLATE", help='set this header, e.g. "Authorization: Bearer {}"'
    )
    form.add_argument(
        "--basic", metavar="TEMPLATE", help='set Basic credentials, e.g. "x-access-token:{}"'
    )
    expose.set_defaults(handler=_expose)
    unexpose = commands.add_parser(
        "unexpose", help="Stop brokering a binding to sandboxed sessions."
    )
    unexpose.add_argument("name")
    unexpose.set_defaults(handler=_unexpose)


def _add_source_options(add: argparse.ArgumentParser) -> None:
    """``--github-app …`` and ``--from-command …``: a secret the daemon makes at use time."""
    source = add.add_argument_group(
        "secrets made at use time",
        "Instead of a secret on stdin: a GitHub App installation (the daemon mints an"
        " installation token with the App's private key, kept in the vault, and reuses it"
        " until 5 minutes before it expires) or a command run on this machine, without a"
        " shell, whose standard output (whitespace stripped) is the secret for --ttl seconds."
        " The command's output is never logged or shown.",
    )
    kind = source.add_mutually_exclusive_group()
    kind.add_argument(
        "--github-app",
        action="store_true",
        help="a GitHub App installation; needs --app-id, --installation-id, --private-key-file",
    )
    kind.add_argument(
        "--from-command",
        metavar="COMMAND",
        help="a command whose output is the secret, e.g. 'gh auth token' (split like a shell"
        " would, but run without one)",
    )
    source.add_argument("--app-id", metavar="N", help="the App's id (its settings page)")
    source.add_argument("--installation-id", metavar="N", help="the installation's id")
    source.add_argument(
        "--private-key-file", metavar="PEM", help="the App's private key (.pem, from GitHub)"
    )
    source.add_argument(
        "--api-url",
        metavar="URL",
        help="GitHub's API (default https://api.github.com; GitHub Enterprise: https://HOST/api/v3)",
    )
    source.add_argument(
        "--ttl",
        type=int,
        metavar="SECONDS",
        help="how long the command's output is reused (default 300; 0: run it at every use)",
    )


def _source_value(args: argparse.Namespace) -> tuple[str, dict[str, str]] | None:
    """The vault value and metadata of a ``--github-app``/``--from-command`` binding, else
    ``None`` (the secret comes from stdin)."""
    import shlex
    from pathlib import Path

    from aileron_core.credential_sources import (
        DEFAULT_GITHUB_API,
        DEFAULT_TTL_S,
        CommandConfig,
        GitHubAppConfig,
        SourceConfigError,
    )

    app_options = ("app_id", "installation_id", "private_key_file", "api_url")
    if not args.github_app:
        given = [f"--{o.replace('_', '-')}" for o in app_options if getattr(args, o)]
        if given:
            raise InputError(f"{', '.join(given)} go with --github-app")
    if args.ttl is not None and args.from_command is None:
        raise InputError("--ttl goes with --from-command")
    try:
        if args.github_app:
            missing = [f"--{o.replace('_', '-')}" for o in app_options[:3] if not getattr(args, o)]
            if missing:
                raise InputError(f"--github-app needs {', '.join(missing)}")
            path = Path(args.private_key_file).expanduser()
            try:
                pem = path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as error:
                raise InputError(f"cannot read the private key file {path}: {error}") from None
            raw = json.dumps(
                {
                    "app_id": args.app_id,
                    "installation_id": args.installation_id,
                    "private_key": pem,
                    "api_url": args.api_url or DEFAULT_GITHUB_API,
                }
            )
            app = GitHubAppConfig.parse(raw.encode())
            app.signing_key()
            metadata = {
                "source": "github_app",
                "app_id": app.app_id,
                "installation_id": app.installation_id,
                "api_url": app.api_url,
            }
            return app.dumps(), metadata
        if args.from_command is not None:
            try:
                argv = shlex.split(args.from_command)
            except ValueError as error:
                raise InputError(f"--from-command cannot be split: {error}") from None
            ttl = DEFAULT_TTL_S if args.ttl is None else args.ttl
            raw = json.dumps({"argv": argv, "ttl_s": ttl})
            command = CommandConfig.parse(raw.encode())
            metadata = {"source": "command", "command": command.argv[0], "ttl_s": str(ttl)}
            return command.dumps(), metadata
    except SourceConfigError as error:
        raise InputError(error.message) from None
    return None


def _add(args: argparse.Namespace) -> int:
    sendable(args.name, "the binding name")
    if binding_oauth.wants_oauth2(args):
        return binding_oauth.add(args)
    metadata = parse_meta(args.meta)
    made = _source_value(args)
    if made is not None:
        value, made_metadata = made
        metadata = {**metadata, **made_metadata}
    else:
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


def exposure_text(exposure: Mapping[str, Any] | None) -> str:
    """One line for a binding's exposure: ``$VAR for HOST, HOST (form)``; ``-`` for none."""
    if not exposure:
        return "-"
    form = exposure["form"]
    how = form if exposure.get("template") is None else f'{form} "{exposure["template"]}"'
    return f"${exposure['variable']} for {', '.join(exposure['hosts'])} ({how})"


def _expose(args: argparse.Namespace) -> int:
    name = url_path(args.name, "the binding name")
    body = {
        "hosts": args.hosts,
        "variable": args.variable,
        "header": args.header,
        "basic": args.basic,
    }
    sendable(body, "the exposure")
    with connect() as client:
        binding = client.put(f"bindings/{name}/exposure", body)
    print(f"exposed binding {args.name}: {exposure_text(binding['exposure'])}")
    return 0


def _unexpose(args: argparse.Namespace) -> int:
    name = url_path(args.name, "the binding name")
    with connect() as client:
        client.delete(f"bindings/{name}/exposure")
    print(f"binding {args.name} is not exposed to sandboxed sessions")
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
                exposure_text(b.get("exposure")),
            )
            for b in bindings
        ),
        ("NAME", "KIND", "SERVICE", "IDENTITY", "CREATED", "HELD BY", "EXPOSED"),
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    name = url_path(args.name, "the binding name")
    with connect() as client:
        binding = client.get(f"bindings/{name}")
    if args.json:
        print_json(binding)
    else:
        print_fields({**binding, "exposure": exposure_text(binding.get("exposure"))}.items())
    return 0


def _revoke(args: argparse.Namespace) -> int:
    name = url_path(args.name, "the binding name")
    with connect() as client:
        unlocking(client, args, lambda: client.delete(f"bindings/{name}"))
    print(f"revoked binding {args.name}")
    return 0
