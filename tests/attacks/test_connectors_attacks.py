"""Issue #22's new surfaces attacked: each test pins a hole that was open (and is now closed).

- The catalog: a key the user trusted for a mirror must not take over a name or connector that
  Aileron's own key publishes (an ``add``/``update`` would install the mirror's spec); an entry
  must install actions for its own connector only and show the version it installs.
- The token endpoint (OAuth2): an answer that never ends, or drips, must not hold the daemon.
- The 401 retry: an operation that may have acted (a POST answered by a redirect) is not sent
  again because the redirect's target answered 401.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from catalog.support import TEST_KEY_ID, echo_source, entries_of, public_b64, say_manifest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from executor.upstream_server import Reply, running
from helpers import admin_http, aileron

from aileron_cli.catalog import Catalog, EntryRefused, TrustedKeys, sign_entry
from aileron_cli.catalog.build import build_catalog, entry_from_source
from aileron_core.discovery import DaemonInfo

OWN = Ed25519PrivateKey.generate()
OWN_ID = "aileron-own"
MIRROR = Ed25519PrivateKey.generate()
KEYS = TrustedKeys(
    {
        OWN_ID: base64.b64decode(public_b64(OWN)),
        TEST_KEY_ID: base64.b64decode(public_b64(MIRROR)),
    },
    frozenset(),
    frozenset({OWN_ID}),
)


def _entry(root: Path, version: str) -> dict[str, Any]:
    return entry_from_source(echo_source(root, version))


def test_a_mirror_key_cannot_take_over_a_shipped_name(tmp_path: Path) -> None:
    """An entry named like one Aileron's key signs, signed by another trusted key, is refused
    (name_taken) even when its version is newer: add and update keep the shipped one."""
    shipped = entries_of(build_catalog([_entry(tmp_path, "1.0.0")], OWN, OWN_ID))
    squatter = entries_of(build_catalog([_entry(tmp_path, "9.0.0")], MIRROR, TEST_KEY_ID))
    catalog = Catalog.build([*shipped, *squatter], KEYS)
    assert catalog.find("echo").version == "1.0.0"
    assert [e.version for e in catalog.search("echo")] == ["1.0.0"]
    newest = catalog.newest_for_fqn("local://echo")
    assert newest is not None and newest.key_id == OWN_ID
    assert [(r.entry, r.reason) for r in catalog.refused] == [("echo@9.0.0", "name_taken")]


def test_a_mirror_key_cannot_ship_a_shipped_connector_under_another_name(
    tmp_path: Path,
) -> None:
    """Another key's entry with a new name but the FQN of a shipped connector is refused, so
    `connector update` never replaces the shipped connector with it."""
    shipped = entries_of(build_catalog([_entry(tmp_path, "1.0.0")], OWN, OWN_ID))
    renamed = _entry(tmp_path, "9.0.0") | {"name": "echo-plus"}
    catalog = Catalog.build([*shipped, sign_entry(renamed, MIRROR, TEST_KEY_ID)], KEYS)
    newest = catalog.newest_for_fqn("local://echo")
    assert newest is not None and newest.version == "1.0.0"
    with pytest.raises(EntryRefused, match="published by Aileron's own key"):
        catalog.find("echo-plus")


def test_a_mirror_key_still_publishes_names_of_its_own(tmp_path: Path) -> None:
    """A trusted key's entries whose name and connector no built-in key publishes are offered."""
    mine = entries_of(build_catalog([_entry(tmp_path, "2.0.0")], MIRROR, TEST_KEY_ID))
    catalog = Catalog.build(mine, KEYS)
    assert catalog.refused == () and catalog.find("echo").key_id == TEST_KEY_ID


def test_an_entry_cannot_carry_actions_for_another_connector(tmp_path: Path) -> None:
    """A signed entry whose action runs (or requires) another connector is refused: adding
    "echo" must not install or replace an action that drives, say, GitHub."""
    entry = _entry(tmp_path, "1.0.0")
    hostile = say_manifest("1.0.0").replace("local://echo", "github://aileron-catalog/github")
    entry["actions"] = {**entry["actions"], "github-merge-pull.md": hostile}
    catalog = Catalog.build([sign_entry(entry, MIRROR, TEST_KEY_ID)], KEYS)
    assert catalog.entries == ()
    with pytest.raises(EntryRefused, match="github-merge-pull.md uses a connector other than"):
        catalog.find("echo")


def test_an_entry_shows_the_version_it_installs(tmp_path: Path) -> None:
    """An entry whose version differs from its connector's (search shows one, add installs the
    other; outdated would compare the wrong one) is refused."""
    entry = _entry(tmp_path, "1.0.0") | {"version": "7.0.0"}
    catalog = Catalog.build([sign_entry(entry, MIRROR, TEST_KEY_ID)], KEYS)
    assert catalog.entries == ()
    assert [r.reason for r in catalog.refused] == ["malformed"]
    assert "its version is not its connector's" in str(catalog.refused[0])


def test_the_shipped_catalog_passes_the_new_rules() -> None:
    """Every shipped entry keeps its version and its actions' connector to itself."""
    from aileron_cli.catalog.entries import SHIPPED

    document = json.loads(SHIPPED.read_text())
    from aileron_cli.catalog import load_keys

    catalog = Catalog.build(document["entries"], load_keys(Path("/nonexistent")))
    assert catalog.refused == ()
    assert len(catalog.entries) == len(document["entries"])


# --- the 401 retry ----------------------------------------------------------------------------


def _post_spec(host: str) -> dict[str, Any]:
    """A connector whose one operation is a POST (non-idempotent) to the local upstream."""
    return {
        "schema_version": "aileron.connector.v1",
        "connector": {"fqn": "local://tickets", "version": "1.0.0", "description": "Tickets."},
        "credential": {"service": "tickets", "kind": "bearer"},
        "tools": [
            {
                "name": "tickets",
                "description": "Tickets.",
                "operations": [
                    {
                        "name": "create",
                        "summary": "Create a ticket.",
                        "method": "POST",
                        "path": "/tickets",
                        "hosts": [host],
                        "scheme": "http",
                    }
                ],
            }
        ],
    }


CREATE = """+++
name = "tickets-create"
version = "1.0.0"

[[requires.connectors]]
fqn = "local://tickets"
version = "1.0.0"

[[execute]]
id = "create"
connector = "local://tickets"
tool = "tickets"
op = "create"
args = {}
+++
Create a ticket.
"""


@pytest.mark.slow
def test_a_post_answered_by_a_redirect_to_a_401_is_not_sent_twice(
    real_daemon: DaemonInfo,
) -> None:
    """A POST that acted and answered 303 to a page that answers 401 fails once: the runner's
    retry with a fresh secret (binding with a source) does not create the ticket again."""
    with running() as upstream:
        upstream.replies["/tickets"] = Reply(status=303, body=b"", headers={"Location": "/t/1"})
        upstream.replies["/t/1"] = Reply(status=401, body=b'{"message":"Bad credentials"}')
        with admin_http(real_daemon) as admin:
            admin.post("vault/init", json={"passphrase": "pw"}).raise_for_status()
            spec = {"spec": _post_spec(upstream.host)}
            admin.post("connectors", json=spec).raise_for_status()
            admin.post("actions", json={"manifest": CREATE}).raise_for_status()
        added = aileron("binding", "add", "cmd/tickets/default", "--from-command", "echo tok-1")
        assert added.returncode == 0, added.stderr
        done = aileron("action", "run", "tickets-create", "--json")
        assert done.returncode != 0
        assert "401" in done.stdout + done.stderr
        posts = [seen for seen in upstream.seen if seen.method == "POST"]
        assert len(posts) == 1, [seen.target for seen in upstream.seen]
