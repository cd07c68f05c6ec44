"""32 concurrent clients run actions through a real daemon while another reads the audit log."""

from __future__ import annotations

import collections
import json

import pytest
from reliability.support import (
    client,
    echo_server,
    log_problems,
    missing_events,
    open_sessions,
    read_audit,
    run_load,
    set_up,
)

from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

CLIENTS = 32
SECONDS = 10.0


@pytest.mark.slow
def test_every_run_acknowledged_under_load_has_its_events(
    layout: Layout, real_daemon: DaemonInfo
) -> None:
    """Under 32 clients plus an audit reader: no error, the chain verifies, and every 200 has
    its started/binding/succeeded events; the upstream saw each acknowledged run exactly once."""
    with echo_server() as echo:
        set_up(real_daemon, echo.host)
        sessions = open_sessions(real_daemon, CLIENTS)
        result = run_load(real_daemon, sessions, SECONDS)
        with client(real_daemon) as api:
            verify = api.get("audit/verify").json()
        seen = collections.Counter(json.loads(s.body)["message"] for s in echo.seen)

    assert result.problems == [], result.problems[:10]
    assert set(result.statuses) == {200}, result.statuses
    assert result.audit_reads > 0
    # Every client got through at least once: the load really was concurrent.
    assert {session for _, session in result.acked.values()} == {s for s, _ in sessions}
    assert verify["ok"] is True, verify
    records = read_audit(layout)
    assert missing_events(records, result.acked) == []
    succeeded = [r for r in records if r.type == "execution.succeeded"]
    assert len(succeeded) == len(result.acked)  # and no run that nobody was told about
    # Every client waited for its answers, so nothing was in flight at the end: exact counts.
    assert seen == collections.Counter(list(result.acked))
    assert log_problems(layout) == []
