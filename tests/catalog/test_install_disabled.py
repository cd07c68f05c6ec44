"""``POST /v1/actions`` with ``enabled``: what ``connector add`` relies on to install an
action disabled from its first moment, and to keep an installed action's state on update."""

from __future__ import annotations

from actions.support import echo_spec, manifest, restartable_daemon

from aileron_core.paths import Layout


def test_enabled_false_installs_disabled_and_none_keeps_the_state(layout: Layout) -> None:
    """enabled=false: disabled at once and after a restart; a reinstall without enabled keeps
    it disabled; enabled=true enables; a plain install of a new action is enabled as before."""
    with restartable_daemon(layout) as api:
        assert api.post("connectors", json={"spec": echo_spec("127.0.0.1:9")}).status_code == 201
        born = api.post("actions", json={"manifest": manifest("echo-say"), "enabled": False})
        assert born.status_code == 201 and born.json()["enabled"] is False
    with restartable_daemon(layout) as api:
        assert api.get("actions/echo-say").json()["enabled"] is False
        kept = api.post("actions", json={"manifest": manifest("echo-say")})
        assert kept.json()["enabled"] is False
        again = api.post("actions", json={"manifest": manifest("echo-say"), "enabled": True})
        assert again.json()["enabled"] is True
        plain = api.post("actions", json={"manifest": manifest("echo-careful")})
        assert plain.json()["enabled"] is True
