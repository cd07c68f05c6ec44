"""aileron-mcp notices actions installed, removed or disabled mid-session."""

from __future__ import annotations

from typing import Any

import anyio
from actions.support import manifest
from mcp import types
from mcp.client.session import IncomingMessage
from mcp.client.subscriptions import ToolsListChanged


def shout_manifest() -> str:
    """A third action, like echo-say under another name."""
    return manifest("echo-say").replace('name = "echo-say"', 'name = "echo-shout"', 1)


def names(listed: types.ListToolsResult) -> set[str]:
    return {t.name for t in listed.tools}


def test_every_tools_list_asks_the_daemon(rig: Any) -> None:
    """With the poll off, an action installed mid-session is in the very next tools/list."""

    async def scenario() -> tuple[set[str], set[str]]:
        async with rig.connect(poll_seconds=0) as client, rig.admin() as admin:
            before = names(await client.list_tools())
            installed = await admin.post("actions", json={"manifest": shout_manifest()})
            assert installed.status_code == 201, installed.text
            return before, names(await client.list_tools())

    before, after = rig.run(scenario)
    assert "echo_shout" not in before
    assert after == before | {"echo_shout"}


def test_a_change_sends_one_list_changed_notification(rig: Any) -> None:
    """Handshake era: install and disable each send notifications/tools/list_changed, once."""
    changed: list[types.ToolListChangedNotification] = []
    arrived = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        nonlocal arrived
        if isinstance(message, types.ToolListChangedNotification):
            changed.append(message)
            arrived.set()

    async def wait_for_one() -> None:
        nonlocal arrived
        with anyio.fail_after(5):
            await arrived.wait()
        arrived = anyio.Event()

    async def scenario() -> list[set[str]]:
        async with (
            rig.connect(poll_seconds=0.05, message_handler=on_message) as client,
            rig.admin() as admin,
        ):
            seen = [names(await client.list_tools())]
            await anyio.sleep(0.3)  # several polls with nothing new: no notification
            assert changed == []
            await admin.post("actions", json={"manifest": shout_manifest()})
            await wait_for_one()
            await anyio.sleep(0.3)  # the client has not re-listed yet: still only one
            assert len(changed) == 1
            seen.append(names(await client.list_tools()))
            await admin.patch("actions/echo-say", json={"enabled": False})
            await wait_for_one()
            seen.append(names(await client.list_tools()))
            return seen

    first, after_install, after_disable = rig.run(scenario)
    assert after_install == first | {"echo_shout"}
    assert after_disable == after_install - {"echo_say"}
    assert len(changed) == 2


def test_a_call_to_a_vanished_action_announces_the_change(rig: Any) -> None:
    """With the poll off, a call refused as a removed action triggers list_changed at once."""
    changed = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async def scenario() -> types.CallToolResult:
        async with (
            rig.connect(poll_seconds=0, message_handler=on_message) as client,
            rig.admin() as admin,
        ):
            await client.list_tools()
            assert (await admin.delete("actions/echo-careful")).status_code == 204
            result: types.CallToolResult = await client.call_tool("echo_careful", {"message": "x"})
            with anyio.fail_after(5):
                await changed.wait()
            assert "echo_careful" not in names(await client.list_tools())
            return result

    result = rig.run(scenario)
    assert result.is_error is True


def test_a_2026_client_hears_of_changes_on_its_listen_stream(rig: Any) -> None:
    """2026-07-28 era: the change arrives as a ToolsListChanged event on subscriptions/listen."""

    async def scenario() -> set[str]:
        async with (
            rig.connect(mode="auto", poll_seconds=0.05) as client,
            rig.admin() as admin,
        ):
            assert client.protocol_version == "2026-07-28"
            await client.list_tools()
            async with client.listen(tools_list_changed=True) as subscription:
                await admin.post("actions", json={"manifest": shout_manifest()})
                with anyio.fail_after(5):
                    event = await subscription.__anext__()
                assert isinstance(event, ToolsListChanged)
            return names(await client.list_tools())

    assert "echo_shout" in rig.run(scenario)
