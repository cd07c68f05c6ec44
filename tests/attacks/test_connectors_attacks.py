"""Issue #22's new surfaces attacked: each test pins a hole that was open (and is now closed).

- The catalog: a key the user trusted for a mirror must not take over a name or connector that
  Aileron's own key publishes (an ``add``/``update`` would install the mirror's spec); an entry
  must install actions for its own connector only and show the version it installs.
- The token endpoint (OAuth2): an answer that never ends, or drips, must not hold the daemon.
- The 401 retry: an operation that may have acted (a POST answered by a redirect) is not sent
  again because the redirect's target answered 401.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from catalog.support import TEST_KEY_ID, echo_source, entries_of, public_b64, say_manifest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from executor.upstream_server import Reply, running
from fakes.github_app import FakeGitHubApp
from helpers import admin_http, aileron
from sources.support import audit_log, vault_with

from aileron_cli.catalog import Catalog, EntryRefused, TrustedKeys, sign_entry
from aileron_cli.catalog.build import build_catalog, entry_from_source
from aileron_cli.daemon.run.credentials import CredentialUnavailable
from aileron_cli.daemon.run.sources.command import CommandSource
from aileron_cli.daemon.run.sources.github_app import GitHubAppSource
from aileron_cli.daemon.run.sources.oauth2 import MAX_ANSWER_BYTES, TokenEndpoint, TokenUnreachable
from aileron_core.discovery import DaemonInfo
from aileron_core.network import Network

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


# --- token endpoints that answer too much or too slowly ---------------------------------------

HANG_GUARD_S = 30.0
"""Only so that a regression fails instead of hanging the suite; never a measurement."""


@asynccontextmanager
async def dripping() -> AsyncIterator[str]:
    """A local server that answers any request with a 200 head and then one body byte every
    50 ms, for ever: every read succeeds quickly, the answer never ends."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        writer.write(head + b"Content-Length: 100000000\r\n\r\n{")
        try:
            while True:
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)
        except (ConnectionError, asyncio.CancelledError):
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def test_a_token_endpoint_that_never_stops_answering_is_cut_off() -> None:
    """An endpoint streaming 256 MiB is read no further than the answer limit: the daemon
    neither buffers it nor waits for its end (the server sees the hang-up long before)."""
    total = 256 * 1024 * 1024
    with running() as upstream:
        upstream.replies["/token"] = Reply(stream_total=total)
        endpoint = TokenEndpoint(Network())

        async def scenario() -> None:
            await endpoint.post(upstream.url("/token"), {"grant_type": "refresh_token"})

        with pytest.raises(TokenUnreachable, match=f"more than {MAX_ANSWER_BYTES} bytes"):
            asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD_S))
        assert upstream.stream_done.wait(HANG_GUARD_S)
        assert upstream.streamed < total // 4


def test_a_token_endpoint_that_drips_is_given_up_on_as_a_whole() -> None:
    """An endpoint sending a byte every 50 ms never trips a per-read timeout; the exchange as a
    whole ends at the endpoint's timeout, unreachable (no refresh lock held for ever)."""

    async def scenario() -> None:
        async with dripping() as url:
            endpoint = TokenEndpoint(Network(), timeout_s=0.5)
            await endpoint.post(url + "/token", {"grant_type": "refresh_token"})

    with pytest.raises(TokenUnreachable, match="ReadTimeout"):
        asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD_S))


def test_a_github_app_endpoint_that_drips_is_given_up_on_as_a_whole(tmp_path: Path) -> None:
    """The App token exchange too ends at its timeout when the answer drips for ever."""

    async def scenario() -> None:
        with FakeGitHubApp() as github:
            value = json.dumps(
                {
                    "app_id": str(github.app_id),
                    "installation_id": str(github.installation_id),
                    "private_key": github.private_pem,
                    "api_url": "",
                }
            )
        async with dripping() as url:
            value = value.replace('"api_url": ""', json.dumps({"api_url": url})[1:-1])
            vault, binding = await vault_with(tmp_path, "app/github/default", value, "github_app")
            source = GitHubAppSource(vault, audit_log(tmp_path), timeout_s=0.5)
            await source.secret(binding)

    with pytest.raises(CredentialUnavailable, match="could not reach"):
        asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD_S))


# --- the command source ----------------------------------------------------------------------


def test_a_command_that_floods_its_output_is_killed_not_buffered(tmp_path: Path) -> None:
    """`yes` (endless output) is cut off past the output limit and refused as printing too
    much — not read into the daemon's memory until the timeout; its output is not quoted."""

    async def scenario() -> None:
        settings = json.dumps({"argv": ["yes", "leaked-line"], "ttl_s": 60})
        vault, binding = await vault_with(tmp_path, "cmd/flood/default", settings, "command")
        await CommandSource(vault, timeout_s=HANG_GUARD_S).secret(binding)

    with pytest.raises(CredentialUnavailable) as caught:
        asyncio.run(scenario())
    assert caught.value.reason == "command_failed", caught.value.reason
    assert "printed more than" in caught.value.message
    assert "leaked-line" not in str(caught.value) + json.dumps(caught.value.details)
