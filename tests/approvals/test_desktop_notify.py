"""Desktop notifications: the notifier on PATH gets the title and body as arguments of their
own (never script text), with what an agent chose escaped; none on PATH means none sent."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from aileron_cli.desktop_notify import notification_command, notify, pending_text

HOSTILE = {
    "id": "apr_1",
    "target": 'x" & do shell script "touch /tmp/pwned\x1b[2K<b>',
    "session_id": "ses_1",
    "agent": "claude",
}


def stand_in(folder: Path, name: str, exit_code: int = 0) -> Path:
    """An executable ``name`` that logs its arguments as one JSON line; the log's path."""
    folder.mkdir(exist_ok=True)
    log = folder / f"{name}.log"
    program = folder / name
    program.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"sys.exit({exit_code})\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return log


def test_pending_text_names_target_asker_and_link_escaped() -> None:
    """The title names the target, the body the id, the agent and the link; control
    characters are shown escaped, never sent raw."""
    title, body = pending_text(HOSTILE, "http://127.0.0.1:9/ui/approvals/apr_1")
    assert "\x1b" not in title and "\\x1b[2K" in title
    assert body == "apr_1, asked by claude\nhttp://127.0.0.1:9/ui/approvals/apr_1"


def test_notify_send_gets_each_value_as_an_argument_with_markup_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Linux, notify-send runs with the title and the body (its markup escaped) as its
    last two arguments."""
    log = stand_in(tmp_path / "bin", "notify-send")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    title, body = pending_text(HOSTILE, None)
    assert notify(title, body) is True
    (argv,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert argv == ["--app-name=Aileron", "--", title, body.replace("&", "&amp;")]
    command = notification_command("t", "<b>&</b>", platform="linux")
    assert command is not None and command[-1] == "&lt;b&gt;&amp;&lt;/b&gt;"


def test_osascript_gets_the_values_as_argv_not_as_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On macOS the AppleScript is fixed text that reads its arguments: a quote in the target
    cannot end a string and run a shell command."""
    log = stand_in(tmp_path / "bin", "osascript")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(sys, "platform", "darwin")
    title, body = pending_text(HOSTILE, None)
    assert notify(title, body) is True
    (argv,) = [json.loads(line) for line in log.read_text().splitlines()]
    script, values = argv[:-2], argv[-2:]
    assert values == [title, body]
    assert "touch" not in " ".join(script)
    assert script[1::2] == [
        "on run argv",
        "display notification (item 2 of argv) with title (item 1 of argv)",
        "end run",
    ]


def test_no_notifier_on_path_sends_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither program on PATH: no command, and notify says it sent nothing."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert notification_command("t", "b", platform="linux") is None
    assert notification_command("t", "b", platform="darwin") is None
    assert notify("t", "b") is False


def test_a_failing_notifier_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notifier that exits non-zero (no display session) makes notify return False."""
    stand_in(tmp_path / "bin", "notify-send", exit_code=1)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert notify("t", "b") is False
