"""``aileron connector search|add|outdated|update|keys``: connectors from the signed catalog.

The catalog ships with the CLI (``aileron_cli.catalog``) and can be refreshed from
``[catalog] url``; every entry is verified against the trusted publisher keys before it is
shown or installed. ``add`` installs through the daemon's usual routes (``POST
/v1/connectors`` with the digest it verified, ``POST /v1/actions``), so the daemon validates
and audits exactly as for a manual install.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aileron_cli.cli.common import InputError, add_json_flag, connect, print_json, print_table
from aileron_core.paths import Layout

if TYPE_CHECKING:
    from aileron_cli.catalog import Catalog, CatalogEntry
    from aileron_core.client import DaemonClient


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the catalog's commands to ``aileron connector``."""
    search = commands.add_parser(
        "search",
        help="Search the connector catalog by name, tag or description.",
        description=(
            "List the catalog's connectors whose name, tags or description hold TEXT (all of"
            " them without TEXT), newest version of each. Entries not signed by a trusted"
            " publisher key are never listed; each is named on stderr with the reason."
        ),
    )
    search.add_argument("text", nargs="?", default="", metavar="TEXT")
    search.add_argument(
        "--refresh",
        nargs="?",
        const="",
        metavar="URL",
        help="first fetch the catalog from URL (default: [catalog] url in config.toml)",
    )
    add_json_flag(search)
    search.set_defaults(handler=_search)
    add = commands.add_parser(
        "add",
        help="Install a connector and its ready actions from the catalog.",
        description=(
            "Verify catalog entry NAME (its newest version, or VERSION) and install its"
            " connector and its actions through the daemon. The actions are installed disabled"
            " unless --enable; installing the version already installed changes nothing."
        ),
    )
    add.add_argument("ref", metavar="NAME[@VERSION]")
    add.add_argument("--enable", action="store_true", help="enable the entry's actions")
    add.set_defaults(handler=_add)
    outdated = commands.add_parser(
        "outdated", help="List installed connectors the catalog has newer versions of."
    )
    add_json_flag(outdated)
    outdated.set_defaults(handler=_outdated)
    update = commands.add_parser(
        "update",
        help="Install the catalog's newer versions of installed connectors.",
        description=(
            "Install the newest catalog version of each installed catalog connector (or of"
            " NAME) and its actions. Actions keep their enabled state; new ones are disabled."
        ),
    )
    update.add_argument("name", nargs="?", metavar="NAME")
    update.set_defaults(handler=_update)
    _register_keys(commands)


def _register_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser(
        "keys",
        help="The publisher keys catalog entries must be signed with.",
        description=(
            "Aileron trusts its own publisher key (built in) and the keys you trust, kept in"
            " ~/.aileron/catalog/keys.json. A revoked key's entries are refused."
        ),
    )
    verbs = keys.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = verbs.add_parser("list", help="List the trusted and revoked keys.")
    add_json_flag(listing)
    listing.set_defaults(handler=_keys_list)
    trust = verbs.add_parser("trust", help="Trust a publisher's Ed25519 public key.")
    trust.add_argument(
        "key", metavar="FILE|BASE64", help="a PEM public key file, or the raw key in base64"
    )
    trust.add_argument("--id", required=True, dest="key_id", help="the key id entries name")
    trust.set_defaults(handler=_keys_trust)
    revoke = verbs.add_parser("revoke", help="Refuse entries signed by key ID from now on.")
    revoke.add_argument("key_id", metavar="ID")
    revoke.set_defaults(handler=_keys_revoke)


def _directory() -> Path:
    return Layout().home / "catalog"


def _catalog() -> Catalog:
    from aileron_cli.catalog import load_catalog, load_keys

    directory = _directory()
    return load_catalog(directory, load_keys(directory))


def _search(args: argparse.Namespace) -> int:
    if args.refresh is not None:
        from aileron_cli.catalog.remote import configured_url, refresh

        url = args.refresh or configured_url(Layout().config)
        if not url:
            raise InputError(
                "there is no catalog URL to refresh from",
                hint="give one (`--refresh URL`) or set [catalog] url in config.toml",
            )
        count = refresh(url, _directory())
        print(f"fetched {count} entries from {url}", file=sys.stderr)
    catalog = _catalog()
    for refused in catalog.refused:
        print(f"aileron: {refused}", file=sys.stderr)
    found = catalog.search(args.text)
    if args.json:
        print_json(
            [
                {
                    "name": e.name,
                    "version": e.version,
                    "fqn": e.fqn,
                    "description": e.description,
                    "tags": list(e.tags),
                    "actions": sorted(e.actions),
                    "key_id": e.key_id,
                }
                for e in found
            ]
        )
        return 0
    print_table(
        ((e.name, e.version, ", ".join(e.tags), e.description) for e in found),
        ("NAME", "VERSION", "TAGS", "DESCRIPTION"),
    )
    return 0


def _add(args: argparse.Namespace) -> int:
    name, at, version = args.ref.partition("@")
    if not name or (at and not version):
        raise InputError(f"{args.ref!r} is not NAME or NAME@VERSION")
    entry = _catalog().find(name, version or None)
    with connect() as client:
        _install(client, entry, enable=args.enable)
    return 0


def _install(client: DaemonClient, entry: CatalogEntry, *, enable: bool) -> None:
    """Install ``entry``'s connector and actions, skipping what is already installed as is."""
    from aileron_core.actions import parse_action_manifest
    from aileron_core.canonical import canonical_json
    from aileron_core.connectors import parse_connector_spec, spec_digest

    digest = spec_digest(
        parse_connector_spec(canonical_json(entry.connector), source=f"catalog {entry.name}")
    )
    texts = {
        parse_action_manifest(text, source=f"catalog {entry.name}: {file}").name: text
        for file, text in sorted(entry.actions.items())
    }
    # The actions' state before the connector changes: installing a new version of it turns
    # the actions that need the old one into load errors until their new manifests land.
    listed = {a["name"]: a for a in client.get("actions")["actions"]}
    before = {
        name: (listed[name]["enabled"], client.get(f"actions/{name}")["manifest"])
        for name in texts
        if name in listed
    }
    installed = {c["fqn"]: c for c in client.get("connectors")}
    current = installed.get(entry.fqn)
    if current is not None and current["sha256"] == digest:
        print(f"{entry.fqn} {entry.version} is installed")
    else:
        client.post("connectors", {"spec": dict(entry.connector), "sha256": digest})
        print(f"installed {entry.fqn} {entry.version} (sha256 {digest}) from catalog {entry.name}")
    for name, text in texts.items():
        enabled, manifest = before.get(name, (None, None))
        if manifest == text and (enabled or not enable):
            print(f"  action {name} is installed ({'enabled' if enabled else 'disabled'})")
            continue
        # A new action is born disabled unless --enable; one installed before keeps its state
        # (the daemon keeps it by name), unless --enable.
        state: bool | None = True if enable else (None if name in before else False)
        done = client.post("actions", {"manifest": text, "enabled": state})
        print(f"  action {name} {done['version']} ({'enabled' if done['enabled'] else 'disabled'})")
    if not enable:
        print("enable an action with `aileron action enable NAME` (see `aileron action list`)")


def _outdated_rows(client: DaemonClient, catalog: Catalog) -> list[tuple[Any, CatalogEntry]]:
    """(installed connector, newer catalog entry) for each installed connector with one."""
    from aileron_cli.catalog import version_key

    rows = []
    for connector in client.get("connectors"):
        newest = catalog.newest_for_fqn(connector["fqn"])
        if newest is not None and version_key(newest.version) > version_key(connector["version"]):
            rows.append((connector, newest))
    return rows


def _outdated(args: argparse.Namespace) -> int:
    catalog = _catalog()
    with connect() as client:
        rows = _outdated_rows(client, catalog)
    if args.json:
        print_json(
            [
                {"name": e.name, "fqn": c["fqn"], "installed": c["version"], "latest": e.version}
                for c, e in rows
            ]
        )
        return 0
    print_table(
        ((e.name, c["fqn"], c["version"], e.version) for c, e in rows),
        ("NAME", "FQN", "INSTALLED", "LATEST"),
    )
    return 0


def _update(args: argparse.Namespace) -> int:
    catalog = _catalog()
    if args.name is not None:
        catalog.find(args.name)  # an unknown or refused name is an error, not "up to date"
    with connect() as client:
        rows = [
            (c, e)
            for c, e in _outdated_rows(client, catalog)
            if args.name is None or e.name == args.name
        ]
        for _connector, entry in rows:
            _install(client, entry, enable=False)
    if not rows:
        print("every catalog connector is up to date")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    import base64

    from aileron_cli.catalog import load_keys

    keys = load_keys(_directory())
    rows = [
        {
            "id": key_id,
            "key": base64.b64encode(key).decode(),
            "builtin": key_id in keys.builtin,
            "revoked": key_id in keys.revoked,
        }
        for key_id, key in sorted(keys.trusted.items())
    ]
    rows += [
        {"id": key_id, "key": None, "builtin": False, "revoked": True}
        for key_id in sorted(keys.revoked - set(keys.trusted))
    ]
    if args.json:
        print_json(rows)
        return 0
    print_table(
        (
            (
                r["id"],
                "built-in" if r["builtin"] else "yours",
                "revoked" if r["revoked"] else "trusted",
                r["key"] or "",
            )
            for r in rows
        ),
        ("ID", "SOURCE", "STATE", "PUBLIC KEY"),
    )
    return 0


def _keys_trust(args: argparse.Namespace) -> int:
    from aileron_cli.catalog import decode_public_key, trust_key

    source = Path(args.key)
    if source.is_file():
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read {args.key}: {error}") from error
    else:
        text = args.key
    trust_key(_directory(), args.key_id, decode_public_key(text))
    print(f"trusted key {args.key_id}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from aileron_cli.catalog import revoke_key

    revoke_key(_directory(), args.key_id)
    print(f"revoked key {args.key_id}: entries it signed are refused")
    return 0
